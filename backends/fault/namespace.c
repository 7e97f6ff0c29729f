/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * namespace.c - the fault wrapper's path calls (see internal.h): each
 * asks the rules, then forwards to the inner backend.  Directory handles
 * are ours, wrapping the inner backend's, so that readdir matches the
 * path the directory was opened with.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/fault/internal.h"

/* Each backend's struct vfs_dir is its own; this is ours. */
struct vfs_dir {
	struct vfs_dir *inner; /* the inner backend's; owned */
	char *path;            /* as opened, for rules; owned */
};

int fault_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_GETATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->getattr(fm->inner, path, st);
	return (int)fault_leave(fm, &act, ret);
}

int fault_setattr(struct vfs_mount *m, const char *path, struct vfs_file *f,
		  const struct vfs_setattr *sa, struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_SETATTR,
			      path ? path
			      : f  ? fault_f(f)->path
				   : NULL,
			      NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->setattr(fm->inner, path, f ? fault_inner(f) : NULL, sa,
				st);
	return (int)fault_leave(fm, &act, ret);
}

ssize_t fault_readlink(struct vfs_mount *m, const char *path, char *buf,
		       size_t size)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	ssize_t ret = fault_enter(fm, FOP_READLINK, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->readlink(fm->inner, path, buf, size);
	return fault_leave(fm, &act, ret);
}

int fault_mknod(struct vfs_mount *m, const char *path, mode_t mode, dev_t rdev,
		const struct vfs_cred *cred, struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_MKNOD, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->mknod(fm->inner, path, mode, rdev, cred, st);
	return (int)fault_leave(fm, &act, ret);
}

int fault_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
		const struct vfs_cred *cred, struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_MKDIR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->mkdir(fm->inner, path, mode, cred, st);
	return (int)fault_leave(fm, &act, ret);
}

/* target is the link's content, not a name on this mount: path decides */
int fault_symlink(struct vfs_mount *m, const char *target, const char *path,
		  const struct vfs_cred *cred, struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_SYMLINK, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->symlink(fm->inner, target, path, cred, st);
	return (int)fault_leave(fm, &act, ret);
}

int fault_link(struct vfs_mount *m, const char *from, const char *to,
	       struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_LINK, from, to, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->link(fm->inner, from, to, st);
	return (int)fault_leave(fm, &act, ret);
}

int fault_unlink(struct vfs_mount *m, const char *path)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_UNLINK, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->unlink(fm->inner, path);
	return (int)fault_leave(fm, &act, ret);
}

int fault_rmdir(struct vfs_mount *m, const char *path)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_RMDIR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->rmdir(fm->inner, path);
	return (int)fault_leave(fm, &act, ret);
}

int fault_rename(struct vfs_mount *m, const char *from, const char *to,
		 unsigned flags)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_RENAME, from, to, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->rename(fm->inner, from, to, flags);
	return (int)fault_leave(fm, &act, ret);
}

int fault_opendir(struct vfs_mount *m, const char *path, struct vfs_dir **out)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	struct vfs_dir *d;
	long inj;
	int ret = fault_enter(fm, FOP_OPENDIR, path, NULL, &act);

	if (ret < 0)
		return ret;
	/* owned by the caller until fault_releasedir() */
	d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path))) {
		free(d);
		return -ENOMEM;
	}
	ret = fm->iops->opendir(fm->inner, path, &d->inner);
	inj = fault_leave(fm, &act, ret);
	if (ret == 0 && inj < 0)
		fm->iops->releasedir(fm->inner, d->inner);
	if (ret < 0 || inj < 0) {
		free(d->path);
		free(d);
		return (int)inj;
	}
	*out = d;
	return 0;
}

int fault_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
		  vfs_fill_fn fill, void *ctx)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_READDIR, d->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->readdir(fm->inner, d->inner, off, fill, ctx);
	return (int)fault_leave(fm, &act, ret);
}

void fault_releasedir(struct vfs_mount *m, struct vfs_dir *d)
{
	struct fault_mount *fm = fault_m(m);

	fm->iops->releasedir(fm->inner, d->inner);
	free(d->path);
	free(d);
}

ssize_t fault_getxattr(struct vfs_mount *m, const char *path, const char *name,
		       void *buf, size_t size)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	ssize_t ret = fault_enter(fm, FOP_GETXATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->getxattr(fm->inner, path, name, buf, size);
	return fault_leave(fm, &act, ret);
}

ssize_t fault_listxattr(struct vfs_mount *m, const char *path, char *buf,
			size_t size)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	ssize_t ret = fault_enter(fm, FOP_LISTXATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->listxattr(fm->inner, path, buf, size);
	return fault_leave(fm, &act, ret);
}

int fault_setxattr(struct vfs_mount *m, const char *path, const char *name,
		   const void *value, size_t size, int flags)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_SETXATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->setxattr(fm->inner, path, name, value, size, flags);
	return (int)fault_leave(fm, &act, ret);
}

int fault_removexattr(struct vfs_mount *m, const char *path, const char *name)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_REMOVEXATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->removexattr(fm->inner, path, name);
	return (int)fault_leave(fm, &act, ret);
}

int fault_clone(struct vfs_mount *m, const char *from, const char *to,
		struct vfs_error *err)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_CLONE, from, to, &act);

	if (ret == 0) {
		ret = fm->iops->clone(fm->inner, from, to, err);
		ret = (int)fault_leave(fm, &act, ret);
	}
	/* clone's errors are described; say where this one came from */
	if (ret < 0 && act.rule && act.error == -ret)
		vfs_error_set(err, -ret, "%s: %s (injected by fault rule %u)",
			      from, strerror(-ret), act.rule);
	return ret;
}
