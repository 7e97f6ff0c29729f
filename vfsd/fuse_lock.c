/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_lock.c - the FUSE requests on locks (getlk, setlk, flock) and the
 * locks a close or release gives up.  The locks themselves are the
 * backend's (the contract's getlk/setlk): the image store's layer keeps
 * them, across hosts on shared mounts.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>

#include "vfsd/fuse_internal.h"
#include "vfsd/inode.h"

static struct vfs_lock fo_vfs_lock(const struct flock *fl,
				   struct fuse_file_info *fi,
				   enum vfs_lock_kind kind)
{
	return (struct vfs_lock){
		.kind = kind,
		.type = fl->l_type,
		.start = fl->l_start,
		.end = fl->l_len ? fl->l_start + fl->l_len - 1 : INT64_MAX,
		.owner = fi->lock_owner,
		.pid = fl->l_pid,
	};
}

void fo_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock)
{
	struct vfs_lock lk = fo_vfs_lock(lock, fi, VFS_LOCK_POSIX);
	char *path = inode_path(ino, &(int){0});
	int ret = router_getlk(path, fo_file(fi), &lk);

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

static bool fo_interrupted(void *req)
{
	return fuse_req_interrupted(req);
}

static void fo_setlk_common(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi,
			    const struct vfs_lock *lk, bool wait)
{
	char *path = inode_path(ino, &(int){0});
	int ret =
		router_setlk(path, fo_file(fi), lk, wait, fo_interrupted, req);

	free(path);
	/* another host may have written the file before it let go of its
	 * lock: nothing read ahead before this one is served */
	if (ret == 0 && lk->type != F_UNLCK)
		fo_data_changed(ino);
	fuse_reply_err(req, -ret);
}

void fo_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock, int sleep)
{
	struct vfs_lock lk = fo_vfs_lock(lock, fi, VFS_LOCK_POSIX);

	fo_setlk_common(req, ino, fi, &lk, sleep != 0);
}

void fo_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct flock fl = {
		.l_type = (op & LOCK_EX)   ? F_WRLCK
			  : (op & LOCK_SH) ? F_RDLCK
					   : F_UNLCK,
	};
	struct vfs_lock lk = fo_vfs_lock(&fl, fi, VFS_LOCK_FLOCK);

	fo_setlk_common(req, ino, fi, &lk, !(op & LOCK_NB));
}

/* Give up every lock of `owner` of this kind on the file. */
static void fo_unlock_owner(fuse_ino_t ino, struct router_file *rf,
			    uint64_t owner, enum vfs_lock_kind kind)
{
	struct vfs_lock all = {
		.kind = kind,
		.type = F_UNLCK,
		.start = 0,
		.end = INT64_MAX,
		.owner = owner,
	};
	char *path = inode_path(ino, &(int){0});

	router_setlk(path, rf, &all, false, NULL, NULL);
	free(path);
}

void fo_lock_flush(fuse_ino_t ino, struct router_file *rf,
		   struct fuse_file_info *fi)
{
	/* close(2) drops the process's POSIX locks on the file */
	if (fi->lock_owner)
		fo_unlock_owner(ino, rf, fi->lock_owner, VFS_LOCK_POSIX);
}

void fo_lock_release(fuse_ino_t ino, struct router_file *rf,
		     struct fuse_file_info *fi)
{
	/* the open file's OFD locks go with its last reference (the
	 * backend's release) */
	if (fi->flock_release)
		fo_unlock_owner(ino, rf, fi->lock_owner, VFS_LOCK_FLOCK);
}
