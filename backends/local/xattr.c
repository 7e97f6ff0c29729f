/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xattr.c - extended attributes: get, list, set and remove.
 */
#include <errno.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backends/local/internal.h"

/*
 * xattrs: through the O_PATH fd's /proc path, which acts on the inode we
 * resolved.  Symlinks cannot carry user.* attributes on Linux, and their
 * magic link would be followed, so they are answered here.
 */
static int local_xattr_fd(struct vfs_mount *m, const char *path, char *proc,
			  size_t size, bool *is_link)
{
	struct stat st;
	int fd = local_open_path(local_m(m), path);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	*is_link = S_ISLNK(st.st_mode);
	local_proc_path(fd, proc, size);
	return fd;
}

ssize_t local_getxattr(struct vfs_mount *m, const char *path, const char *name,
		       void *buf, size_t size)
{
	char proc[64];
	bool is_link;
	ssize_t n;
	int fd = local_xattr_fd(m, path, proc, sizeof(proc), &is_link);

	if (fd < 0)
		return fd;
	if (is_link)
		n = -ENODATA;
	else if ((n = getxattr(proc, name, buf, size)) < 0)
		n = -errno;
	close(fd);
	return n;
}

ssize_t local_listxattr(struct vfs_mount *m, const char *path, char *buf,
			size_t size)
{
	char proc[64];
	bool is_link;
	ssize_t n;
	int fd = local_xattr_fd(m, path, proc, sizeof(proc), &is_link);

	if (fd < 0)
		return fd;
	if (is_link)
		n = 0;
	else if ((n = listxattr(proc, buf, size)) < 0)
		n = -errno;
	close(fd);
	return n;
}

int local_setxattr(struct vfs_mount *m, const char *path, const char *name,
		   const void *value, size_t size, int flags)
{
	char proc[64];
	bool is_link;
	int ret, fd = local_xattr_fd(m, path, proc, sizeof(proc), &is_link);

	if (fd < 0)
		return fd;
	if (is_link)
		ret = -EPERM;
	else
		ret = setxattr(proc, name, value, size, flags) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

int local_removexattr(struct vfs_mount *m, const char *path, const char *name)
{
	char proc[64];
	bool is_link;
	int ret, fd = local_xattr_fd(m, path, proc, sizeof(proc), &is_link);

	if (fd < 0)
		return fd;
	if (is_link)
		ret = -ENODATA;
	else
		ret = removexattr(proc, name) < 0 ? -errno : 0;
	close(fd);
	return ret;
}
