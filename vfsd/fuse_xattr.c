/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_xattr.c - the FUSE requests on extended attributes (the image
 * store's read-only user.vfsd.image.* ones come from its layer).
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vfsd/fuse_internal.h"
#include "vfsd/inode.h"

void fo_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags)
{
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = router_setxattr(path, name, value, size, flags);
	free(path);
	fuse_reply_err(req, -ret);
}

static bool fo_is_acl_xattr(const char *name)
{
	return strcmp(name, "system.posix_acl_access") == 0 ||
	       strcmp(name, "system.posix_acl_default") == 0;
}

/* getxattr/listxattr share the size-probe protocol. */
static void fo_reply_xattr(fuse_req_t req, ssize_t n, void *buf, size_t size)
{
	if (n < 0)
		fo_reply_err(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, n);
	else
		fuse_reply_buf(req, buf, n);
}

void fo_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	void *buf = NULL;
	ssize_t n;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	if (size && !(buf = malloc(size))) {
		free(path);
		return fo_reply_err(req, -ENOMEM);
	}
	n = router_getxattr(path, name, buf, size);
	/* the kernel asks every backend for ACLs once they are on, and takes
	 * any answer but "none" as a failed permission check */
	if (n == -EOPNOTSUPP && fo_is_acl_xattr(name))
		n = -ENODATA;
	free(path);
	fo_reply_xattr(req, n, buf, size);
	free(buf);
}

void fo_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	ssize_t n;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	if (size && !(buf = malloc(size))) {
		free(path);
		return fo_reply_err(req, -ENOMEM);
	}
	n = router_listxattr(path, buf, size);
	free(path);
	fo_reply_xattr(req, n, buf, size);
	free(buf);
}

void fo_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = router_removexattr(path, name);
	free(path);
	fuse_reply_err(req, -ret);
}
