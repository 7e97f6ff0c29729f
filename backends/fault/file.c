/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file.c - the fault wrapper's open files (see internal.h): open and
 * create wrap the inner backend's handle in a struct fault_file, and every
 * call on it asks the rules with the path it was opened with, then
 * forwards to the inner handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/fault/internal.h"

/* The inner handle, carrying what the daemon set on ours since the last
 * call (write_through is the daemon's to set, at any time). */
struct vfs_file *fault_inner(struct vfs_file *f)
{
	struct fault_file *ff = fault_f(f);

	ff->inner->write_through = f->write_through;
	return ff->inner;
}

/*
 * Wrap the inner handle `in` of `path` into *out (owned by the caller
 * until release()).  On ENOMEM `in` is released.
 */
static int fault_file_new(struct fault_mount *fm, const char *path,
			  struct vfs_file *in, struct vfs_file **out)
{
	struct fault_file *ff;

	/* the router sets ->mount of the handle it sees, ours */
	in->mount = fm->inner;
	ff = calloc(1, sizeof(*ff));
	if (!ff || !(ff->path = strdup(path))) {
		free(ff);
		fm->iops->release(in);
		return -ENOMEM;
	}
	ff->fm = fm;
	ff->inner = in;
	/* what the backend decided at open, as it decided it */
	ff->base.flags = in->flags;
	ff->base.uncached = in->uncached;
	ff->base.write_through = in->write_through;
	/* no host fd: vfsd would read and write it without asking us */
	ff->base.host_fd = -1;
	*out = &ff->base;
	return 0;
}

static void fault_file_free(struct fault_file *ff)
{
	free(ff->path);
	free(ff);
}

/*
 * The end of open/create: the inner call's result was ret, *out our
 * handle if it succeeded.  A when=after error still fails the call, so
 * the handle is released (what the backend created stays).
 */
static int fault_opened(struct fault_mount *fm, const struct fault_act *act,
			int ret, struct vfs_file **out)
{
	long inj = fault_leave(fm, act, ret);

	if (ret == 0 && inj < 0) {
		struct fault_file *ff = fault_f(*out);

		fm->iops->release(ff->inner);
		fault_file_free(ff);
		*out = NULL;
	}
	return (int)inj;
}

int fault_create(struct vfs_mount *m, const char *path, int flags, mode_t mode,
		 const struct vfs_cred *cred, struct vfs_file **out,
		 struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	struct vfs_file *in;
	int ret = fault_enter(fm, FOP_CREATE, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->create(fm->inner, path, flags, mode, cred, &in, st);
	if (ret == 0)
		ret = fault_file_new(fm, path, in, out);
	return fault_opened(fm, &act, ret, out);
}

int fault_open(struct vfs_mount *m, const char *path, int flags,
	       struct vfs_file **out)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	struct vfs_file *in;
	int ret = fault_enter(fm, FOP_OPEN, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->open(fm->inner, path, flags, &in);
	if (ret == 0)
		ret = fault_file_new(fm, path, in, out);
	return fault_opened(fm, &act, ret, out);
}

ssize_t fault_read(struct vfs_file *f, void *buf, size_t size, off_t off)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	ssize_t ret = fault_enter(ff->fm, FOP_READ, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->read(fault_inner(f), buf, size, off);
	return fault_leave(ff->fm, &act, ret);
}

ssize_t fault_write(struct vfs_file *f, const void *buf, size_t size, off_t off)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	ssize_t ret = fault_enter(ff->fm, FOP_WRITE, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	/* the layer above asks for write-through on our handle; it is the
	 * backend's to honour (backend.h) */
	if (atomic_load(&f->write_through))
		atomic_store(&fault_inner(f)->write_through, true);
	ret = ff->fm->iops->write(fault_inner(f), buf, size, off);
	return fault_leave(ff->fm, &act, ret);
}

int fault_fgetattr(struct vfs_file *f, struct stat *st)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	int ret = fault_enter(ff->fm, FOP_FGETATTR, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->fgetattr(fault_inner(f), st);
	return (int)fault_leave(ff->fm, &act, ret);
}

int fault_flush(struct vfs_file *f)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	int ret = fault_enter(ff->fm, FOP_FLUSH, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->flush(fault_inner(f));
	return (int)fault_leave(ff->fm, &act, ret);
}

int fault_fsync(struct vfs_file *f, bool datasync)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	int ret = fault_enter(ff->fm, FOP_FSYNC, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->fsync(fault_inner(f), datasync);
	return (int)fault_leave(ff->fm, &act, ret);
}

int fault_fallocate(struct vfs_file *f, int mode, off_t off, off_t len)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	int ret = fault_enter(ff->fm, FOP_FALLOCATE, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->fallocate(fault_inner(f), mode, off, len);
	return (int)fault_leave(ff->fm, &act, ret);
}

off_t fault_lseek(struct vfs_file *f, off_t off, int whence)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	off_t ret = fault_enter(ff->fm, FOP_LSEEK, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->lseek(fault_inner(f), off, whence);
	return fault_leave(ff->fm, &act, ret);
}

ssize_t fault_copy_range(struct vfs_file *in, off_t off_in,
			 struct vfs_file *out, off_t off_out, size_t len,
			 unsigned flags)
{
	struct fault_mount *fm = fault_f(out)->fm;
	struct fault_act act;
	ssize_t ret = fault_enter(fm, FOP_COPY_RANGE, fault_f(in)->path,
				  fault_f(out)->path, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->copy_range(fault_inner(in), off_in, fault_inner(out),
				   off_out, len, flags);
	return fault_leave(fm, &act, ret);
}

/* The handle is freed whatever a rule says: release cannot be refused. */
int fault_release(struct vfs_file *f)
{
	struct fault_file *ff = fault_f(f);
	struct fault_mount *fm = ff->fm;
	struct fault_act act;
	int inj = fault_enter(fm, FOP_RELEASE, ff->path, NULL, &act);
	int ret = fm->iops->release(fault_inner(f));

	fault_file_free(ff);
	return inj < 0 ? inj : (int)fault_leave(fm, &act, ret);
}
