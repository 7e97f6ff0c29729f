/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_lock.c - the FUSE requests on locks (getlk, setlk, flock) and the
 * hooks the other handlers call around them: the fence of a data change
 * under a cross-host lock, the locks a close or release drops, the lease
 * records hidden from lookups and listings, the image store's xattrs.
 * The only file of the FUSE layer that calls into guestfs/.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "guestfs/image.h"
#include "guestfs/lock.h"
#include "vfsd/fuse_internal.h"
#include "vfsd/inode.h"

int fo_fence_begin(fuse_ino_t ino, struct router_file *rf, struct fo_fence *fc)
{
	int64_t deadline;

	fc->ino = ino;
	fc->held = glock_write_begin(ino, &deadline);
	if (fc->held < 0)
		return -EIO; /* lease lost: see guestfs/lock.h */
	if (fc->held > 0 && rf)
		/* under a cross-host lock nothing may linger in a
		 * write-behind queue past the lease */
		router_file_write_through(rf);
	fc->saved = vfs_callctx_push(fc->held > 0 ? deadline : 0, false);
	return 0;
}

/* Ends the fence; a change that missed the lease's deadline is an EIO
 * like any write after the lease, whatever the backend called it. */
long fo_fence_end(struct fo_fence *fc, long ret)
{
	if (fc->held > 0 && ret < 0 && vfs_call_expired())
		ret = -EIO;
	vfs_callctx_pop(fc->saved);
	if (fc->held > 0)
		glock_write_end(fc->ino);
	return ret;
}

static struct glock fo_glock(const struct flock *fl, struct fuse_file_info *fi,
			     enum glock_kind kind)
{
	return (struct glock){
		.kind = kind,
		.type = fl->l_type,
		.start = fl->l_start,
		.end = fl->l_len ? fl->l_start + fl->l_len - 1 : INT64_MAX,
		.owner = fi->lock_owner,
		.pid = fl->l_pid,
		.fh = fo_file(fi),
	};
}

void fo_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock)
{
	struct glock lk = fo_glock(lock, fi, GLOCK_POSIX);
	char *path = inode_path(ino, &(int){0});
	int ret = glock_test(ino, fo_file(fi), path, &lk);

	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	lock->l_type = lk.type;
	if (lk.type != F_UNLCK) {
		lock->l_start = lk.start;
		lock->l_len = lk.end == INT64_MAX ? 0 : lk.end - lk.start + 1;
		lock->l_pid = lk.pid;
	}
	fuse_reply_lock(req, lock);
}

/* Under a cross-host lock the handle writes through from now on (see
 * fo_write_buf), before its first write, too. */
static void fo_lock_taken(fuse_ino_t ino, struct fuse_file_info *fi, int ret)
{
	if (ret == 0 && glock_write_check(ino) > 0)
		router_file_write_through(fo_file(fi));
}

static bool fo_interrupted(void *req)
{
	return fuse_req_interrupted(req);
}

void fo_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock, int sleep)
{
	struct glock lk = fo_glock(lock, fi, GLOCK_POSIX);
	char *path = inode_path(ino, &(int){0});
	int ret = glock_set(ino, fo_file(fi), path, &lk, sleep != 0,
			    fo_interrupted, req);

	free(path);
	fo_lock_taken(ino, fi, ret);
	fuse_reply_err(req, -ret);
}

void fo_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct flock fl = {
		.l_type = (op & LOCK_EX)   ? F_WRLCK
			  : (op & LOCK_SH) ? F_RDLCK
					   : F_UNLCK,
	};
	struct glock lk = fo_glock(&fl, fi, GLOCK_FLOCK);
	char *path = inode_path(ino, &(int){0});
	int ret = glock_set(ino, fo_file(fi), path, &lk, !(op & LOCK_NB),
			    fo_interrupted, req);

	free(path);
	fo_lock_taken(ino, fi, ret);
	fuse_reply_err(req, -ret);
}

bool fo_lock_reserved(const char *path)
{
	return glock_reserved(path);
}

bool fo_lock_reserved_entry(const char *name, bool shared)
{
	return glock_reserved_entry(name, shared);
}

int fo_lock_rmdir_cleanup(const char *path)
{
	return glock_rmdir_cleanup(path);
}

void fo_lock_flush(fuse_ino_t ino, struct router_file *rf,
		   struct fuse_file_info *fi)
{
	/* close(2) drops the process's POSIX locks on the file */
	if (fi->lock_owner) {
		char *path = inode_path(ino, &(int){0});

		glock_release_owner(ino, rf, path, fi->lock_owner, GLOCK_POSIX);
		free(path);
	}
}

void fo_lock_release(fuse_ino_t ino, struct router_file *rf,
		     struct fuse_file_info *fi)
{
	char *path = inode_path(ino, &(int){0});

	if (fi->flock_release)
		glock_release_owner(ino, rf, path, fi->lock_owner, GLOCK_FLOCK);
	glock_release_fh(ino, rf, path, rf);
	free(path);
}

bool fo_image_xattr(const char *name)
{
	return strncmp(name, IMAGE_XATTR_PREFIX, strlen(IMAGE_XATTR_PREFIX)) ==
	       0;
}

ssize_t fo_image_getxattr(const char *path, const char *name, void *buf,
			  size_t size)
{
	return image_getxattr(path, name, buf, size);
}
