/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * attr.c - attributes: getattr and fgetattr, and setattr (mode, owner,
 * size, times) on an open file or through the /proc name of the inode a
 * path resolved to.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/local/internal.h"

int local_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	struct local_path lp;
	int ret = local_resolve(local_m(m), path, &lp);

	if (ret < 0)
		return ret;
	ret = local_stat_at(&lp, st);
	local_path_done(&lp);
	return ret;
}

int local_setattr(struct vfs_mount *m, const char *path, struct vfs_file *f,
		  const struct vfs_setattr *sa, struct stat *st)
{
	struct local_mount *lm = local_m(m);
	int fd = f ? local_f(f)->fd : -1;
	int pfd = -1, ret = 0;
	char proc[64];
	struct stat cur;

	if (fd < 0) {
		pfd = local_open_path(lm, path);
		if (pfd < 0)
			return pfd;
		if (fstat(pfd, &cur) < 0) {
			ret = -errno;
			goto out;
		}
		local_proc_path(pfd, proc, sizeof(proc));
	}

	if (sa->valid & VFS_SET_MODE) {
		if (fd >= 0)
			ret = fchmod(fd, sa->mode & 07777);
		else if (S_ISLNK(cur.st_mode))
			ret = (errno = EOPNOTSUPP, -1);
		else
			ret = chmod(proc, sa->mode & 07777);
		if (ret < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (sa->valid & (VFS_SET_UID | VFS_SET_GID)) {
		uid_t uid = sa->valid & VFS_SET_UID ? sa->uid : (uid_t)-1;
		gid_t gid = sa->valid & VFS_SET_GID ? sa->gid : (gid_t)-1;

		ret = fchownat(fd >= 0 ? fd : pfd, "", uid, gid,
			       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		if (ret < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (sa->valid & VFS_SET_SIZE) {
		if (vfs_call_expired()) /* see local_write, io.c */
			ret = (errno = ETIMEDOUT, -1);
		else if (fd >= 0)
			ret = ftruncate(fd, sa->size);
		else if (!S_ISREG(cur.st_mode))
			ret = (errno = S_ISDIR(cur.st_mode) ? EISDIR : EINVAL,
			       -1);
		else
			ret = truncate(proc, sa->size);
		if (ret < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (sa->valid & (VFS_SET_ATIME | VFS_SET_MTIME | VFS_SET_ATIME_NOW |
			 VFS_SET_MTIME_NOW)) {
		struct timespec ts[2] = {
			{.tv_nsec = UTIME_OMIT},
			{.tv_nsec = UTIME_OMIT},
		};

		if (sa->valid & VFS_SET_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (sa->valid & VFS_SET_ATIME)
			ts[0] = sa->atime;
		if (sa->valid & VFS_SET_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (sa->valid & VFS_SET_MTIME)
			ts[1] = sa->mtime;
		if (fd >= 0)
			ret = futimens(fd, ts);
		else if (S_ISLNK(cur.st_mode)) {
			/* no magic link for symlinks: by name, no follow */
			struct local_path lp;

			ret = local_resolve(lm, path, &lp);
			if (ret < 0)
				goto out;
			ret = utimensat(lp.dirfd, lp.name, ts,
					AT_SYMLINK_NOFOLLOW);
			if (ret < 0)
				ret = -errno;
			local_path_done(&lp);
			if (ret < 0)
				goto out;
		} else {
			ret = utimensat(AT_FDCWD, proc, ts, 0);
		}
		if (ret < 0) {
			ret = -errno;
			goto out;
		}
	}
	ret = fstat(fd >= 0 ? fd : pfd, st) < 0 ? -errno : 0;
out:
	if (pfd >= 0)
		close(pfd);
	return ret;
}

int local_fgetattr(struct vfs_file *f, struct stat *st)
{
	return fstat(local_f(f)->fd, st) < 0 ? -errno : 0;
}
