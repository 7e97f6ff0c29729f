/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * layer_lock.c - the lock members of the image store's layer: POSIX, OFD
 * and flock locks of files open through it go to the lock table (lock.h),
 * which keeps them in the daemon and, on shared mounts, across hosts.
 */
#include <fcntl.h>
#include <stdint.h>

#include "guestfs/layer_internal.h"

static struct glock to_glock(const struct vfs_lock *vl, struct layer_file *lf)
{
	return (struct glock){
		.kind = vl->kind == VFS_LOCK_FLOCK ? GLOCK_FLOCK : GLOCK_POSIX,
		.type = vl->type,
		.start = vl->start,
		.end = vl->end,
		.owner = vl->owner,
		.pid = vl->pid,
		.fh = lf,
	};
}

int layer_getlk(struct vfs_file *f, const char *path, struct vfs_lock *vl)
{
	struct layer_file *lf = layer_f(f);
	struct glock lk = to_glock(vl, lf);
	struct glock_key k;
	int ret = layer_file_key(lf, path, &k);

	if (ret == 0)
		ret = glock_test(&k, &lk);
	if (ret < 0)
		return ret;
	vl->type = lk.type;
	if (lk.type != F_UNLCK) {
		vl->start = lk.start;
		vl->end = lk.end;
		vl->pid = lk.pid;
	}
	return 0;
}

int layer_setlk(struct vfs_file *f, const char *path, const struct vfs_lock *vl,
		bool wait, bool (*interrupted)(void *), void *arg)
{
	struct layer_file *lf = layer_f(f);
	struct glock lk = to_glock(vl, lf);
	struct glock_key k;
	int ret;

	bool all =
		vl->type == F_UNLCK && vl->start == 0 && vl->end == INT64_MAX;

	/* every close(2) drops its owner's locks: with none on this mount,
	 * there is nothing to look up */
	if (all && !glock_any(&lf->lm->lower))
		return 0;
	ret = layer_file_key(lf, path, &k);
	if (ret < 0)
		return ret;
	if (all) {
		/* only an owner that holds some: nothing is published for
		 * the others' closes */
		glock_release_owner(&k, lk.owner, lk.kind);
		return 0;
	}
	ret = glock_set(&k, &lk, wait, interrupted, arg);
	/* under a cross-host lock the file writes through from now on,
	 * before its first write too */
	if (ret == 0 && glock_write_check(&k) > 0)
		atomic_store(&lf->lower->write_through, true);
	return ret;
}
