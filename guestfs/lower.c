/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lower.c - the image store's calls on the instance beneath its layer
 * (lower.h).  The answers for a missing member are the router's
 * (docs/architecture.md, "Backend contract").
 */
#include <errno.h>
#include <stdlib.h>

#include "backends/callctx.h"
#include "guestfs/lower.h"

/* The daemon's own files are root's, created with the modes given: no
 * umask, no caller to create as. */
static const struct vfs_cred root_cred = {.uid = 0, .gid = 0, .ngroups = 0};

/*
 * Past the thread's deadline nothing more is sent (what the router's
 * BCALL does for the calls it makes).  A backend's EAGAIN ("try again
 * later": NFS3ERR_JUKEBOX) becomes EIO here, the one place: to the lock
 * code EAGAIN means "held by another", and a server's hiccup is no
 * answer about any holder.
 */
#define LOWER_CALL(l, member, missing, mutates, ...)                           \
	({                                                                     \
		__typeof__((l)->m->ops->member(__VA_ARGS__)) r_;               \
		if (!(l)->m->ops->member)                                      \
			r_ = (missing);                                        \
		else if ((mutates) && (l)->readonly)                           \
			r_ = -EROFS;                                           \
		else if (vfs_call_expired())                                   \
			r_ = -ETIMEDOUT;                                       \
		else                                                           \
			r_ = (l)->m->ops->member(__VA_ARGS__);                 \
		if (r_ == -EAGAIN)                                             \
			r_ = -EIO;                                             \
		r_;                                                            \
	})

int lower_getattr(const struct gfs_lower *l, const char *path, struct stat *st)
{
	return LOWER_CALL(l, getattr, -EIO, false, l->m, path, st);
}

int lower_mkdir(const struct gfs_lower *l, const char *path, mode_t mode)
{
	struct stat st;

	return LOWER_CALL(l, mkdir, -EPERM, true, l->m, path, mode, &root_cred,
			  &st);
}

int lower_unlink(const struct gfs_lower *l, const char *path)
{
	return LOWER_CALL(l, unlink, -EPERM, true, l->m, path);
}

int lower_rmdir(const struct gfs_lower *l, const char *path)
{
	return LOWER_CALL(l, rmdir, -EPERM, true, l->m, path);
}

int lower_rename(const struct gfs_lower *l, const char *from, const char *to)
{
	return LOWER_CALL(l, rename, -EPERM, true, l->m, from, to, 0);
}

int lower_create(const struct gfs_lower *l, const char *path, int flags,
		 mode_t mode, struct vfs_file **f)
{
	struct stat st;
	int ret = LOWER_CALL(l, create, -EPERM, true, l->m, path, flags, mode,
			     &root_cred, f, &st);

	if (ret == 0)
		(*f)->mount = l->m;
	return ret;
}

int lower_open(const struct gfs_lower *l, const char *path, int flags,
	       struct vfs_file **f)
{
	int ret = LOWER_CALL(l, open, -EIO, false, l->m, path, flags, f);

	if (ret == 0)
		(*f)->mount = l->m;
	return ret;
}

ssize_t lower_read(const struct gfs_lower *l, struct vfs_file *f, void *buf,
		   size_t size, off_t off)
{
	return LOWER_CALL(l, read, -EIO, false, f, buf, size, off);
}

ssize_t lower_write(const struct gfs_lower *l, struct vfs_file *f,
		    const void *buf, size_t size, off_t off)
{
	return LOWER_CALL(l, write, -EROFS, true, f, buf, size, off);
}

int lower_fgetattr(const struct gfs_lower *l, struct vfs_file *f,
		   struct stat *st)
{
	return LOWER_CALL(l, fgetattr, -EIO, false, f, st);
}

int lower_flush(const struct gfs_lower *l, struct vfs_file *f)
{
	return LOWER_CALL(l, flush, 0, false, f);
}

int lower_fsync(const struct gfs_lower *l, struct vfs_file *f)
{
	return LOWER_CALL(l, fsync, 0, false, f, false);
}

void lower_release(const struct gfs_lower *l, struct vfs_file *f)
{
	/* always made: it frees what the caller holds */
	l->m->ops->release(f);
}

int lower_list(const struct gfs_lower *l, const char *path, vfs_fill_fn fill,
	       void *ctx)
{
	struct vfs_dir *d;
	int ret = LOWER_CALL(l, opendir, -EIO, false, l->m, path, &d);

	if (ret < 0)
		return ret;
	ret = LOWER_CALL(l, readdir, -EIO, false, l->m, d, 0, fill, ctx);
	l->m->ops->releasedir(l->m, d);
	return ret;
}
