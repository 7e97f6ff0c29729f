/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * namespace.c - names: readlink, the creating calls mknod, mkdir and
 * symlink (as the caller, see cred.c), link, unlink, rmdir and rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/local/internal.h"

ssize_t local_readlink(struct vfs_mount *m, const char *path, char *buf,
		       size_t size)
{
	struct local_path lp;
	ssize_t n;
	int ret = local_resolve(local_m(m), path, &lp);

	if (ret < 0)
		return ret;
	n = readlinkat(lp.dirfd, lp.name, buf, size);
	if (n < 0)
		n = -errno;
	local_path_done(&lp);
	return n;
}

/*
 * Shared tail of every creating call: stat the result.  If that fails the
 * new object is removed again, so the caller never sees an object it was
 * told does not exist.
 */
static int local_created(struct local_path *lp, struct stat *st, bool is_dir)
{
	int ret = local_stat_at(lp, st);

	if (ret < 0)
		unlinkat(lp->dirfd, lp->name, is_dir ? AT_REMOVEDIR : 0);
	return ret;
}

int local_mknod(struct vfs_mount *m, const char *path, mode_t mode, dev_t rdev,
		const struct vfs_cred *cred, struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path lp;
	int became, ret = local_resolve(lm, path, &lp);

	if (ret < 0)
		return ret;
	became = local_become(lm, cred);
	ret = became < 0 ? became
	      : mknodat(lp.dirfd, lp.name, local_umask(mode, cred), rdev) < 0
		      ? -errno
		      : 0;
	local_unbecome(became);
	if (ret == 0)
		ret = local_created(&lp, st, false);
	local_path_done(&lp);
	return ret;
}

int local_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
		const struct vfs_cred *cred, struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path lp;
	int became, ret = local_resolve(lm, path, &lp);

	if (ret < 0)
		return ret;
	became = local_become(lm, cred);
	ret = became < 0                                                ? became
	      : mkdirat(lp.dirfd, lp.name, local_umask(mode, cred)) < 0 ? -errno
									: 0;
	local_unbecome(became);
	if (ret == 0)
		ret = local_created(&lp, st, true);
	local_path_done(&lp);
	return ret;
}

int local_symlink(struct vfs_mount *m, const char *target, const char *path,
		  const struct vfs_cred *cred, struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path lp;
	int became, ret = local_resolve(lm, path, &lp);

	if (ret < 0)
		return ret;
	became = local_become(lm, cred);
	ret = became < 0                                 ? became
	      : symlinkat(target, lp.dirfd, lp.name) < 0 ? -errno
							 : 0;
	local_unbecome(became);
	if (ret == 0)
		ret = local_created(&lp, st, false);
	local_path_done(&lp);
	return ret;
}

int local_link(struct vfs_mount *m, const char *from, const char *to,
	       struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path a, b;
	int ret = local_resolve(lm, from, &a);

	if (ret < 0)
		return ret;
	ret = local_resolve(lm, to, &b);
	if (ret < 0)
		goto out_a;
	if (linkat(a.dirfd, a.name, b.dirfd, b.name, 0) < 0)
		ret = -errno;
	else
		ret = local_stat_at(&b, st);
	local_path_done(&b);
out_a:
	local_path_done(&a);
	return ret;
}

static int local_unlink_flags(struct vfs_mount *m, const char *path, int flags)
{
	struct local_path lp;
	int ret = local_resolve(local_m(m), path, &lp);

	if (ret < 0)
		return ret;
	if (!*lp.name)
		ret = -EBUSY;
	else if (unlinkat(lp.dirfd, lp.name, flags) < 0)
		ret = -errno;
	local_path_done(&lp);
	return ret;
}

int local_unlink(struct vfs_mount *m, const char *path)
{
	return local_unlink_flags(m, path, 0);
}

int local_rmdir(struct vfs_mount *m, const char *path)
{
	return local_unlink_flags(m, path, AT_REMOVEDIR);
}

int local_rename(struct vfs_mount *m, const char *from, const char *to,
		 unsigned flags)
{
	struct local_mount *lm = local_m(m);
	struct local_path a, b;
	int ret = local_resolve(lm, from, &a);

	if (ret < 0)
		return ret;
	ret = local_resolve(lm, to, &b);
	if (ret < 0)
		goto out_a;
	if (!*a.name || !*b.name)
		ret = -EBUSY;
	else if (vfs_call_expired()) /* see local_write, io.c */
		ret = -ETIMEDOUT;
	else if (renameat2(a.dirfd, a.name, b.dirfd, b.name, flags) < 0)
		ret = -errno;
	local_path_done(&b);
out_a:
	local_path_done(&a);
	return ret;
}
