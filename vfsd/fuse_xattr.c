/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_xattr.c - the FUSE requests on extended attributes (the image
 * store's read-only user.vfsd.image.* ones come from its layer; the I/O
 * limits user.vfsd.qos.* are vfsd's own, qos.h).
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "vfsd/fuse_internal.h"
#include "vfsd/inode.h"
#include "lib/log.h"
#include "vfsd/qos.h"

/* The setting a user.vfsd.qos.NAME attribute names, or NULL when `name`
 * is not one of ours. */
static const char *qos_name(const char *name)
{
	size_t plen = strlen(QOS_XATTR_PREFIX);

	if (strncmp(name, QOS_XATTR_PREFIX, plen) != 0)
		return NULL;
	for (int i = 0; i < THROTTLE_NAMES; i++)
		if (strcmp(name + plen, throttle_names[i]) == 0)
			return throttle_names[i];
	return NULL;
}

/*
 * Setting (value != NULL) or removing a limit by its attribute.  Limits
 * are the administrator's: only root changes them, whoever owns the file
 * (a guest's owner must not lift its own cap).
 */
static int qos_xattr_change(fuse_req_t req, const char *path,
			    const char *setting, const char *value, size_t size,
			    int flags)
{
	struct vfs_error err = {0};
	uint64_t v = 0, cur;
	char buf[32];
	int has;

	if (fuse_req_ctx(req)->uid != 0)
		return -EPERM;
	qos_store_refresh(path);
	if (value) {
		if (size == 0 || size >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, value, size);
		buf[size] = '\0';
		/* "10\n" from a shell's echo is still the number meant */
		if (buf[size - 1] == '\n')
			buf[size - 1] = '\0';
		if (throttle_parse_value(buf, &v) < 0)
			return -EINVAL;
	}
	has = qos_get(path, setting, &cur) == 1;
	if ((flags & XATTR_CREATE) && has)
		return -EEXIST;
	if ((flags & XATTR_REPLACE || !value) && !has)
		return -ENODATA;
	if (qos_store_set(path, &setting, &v, 1, &err) < 0) {
		if (err.code == EINVAL)
			log_warn("setxattr %s%s on %s: %s", QOS_XATTR_PREFIX,
				 setting, path, err.msg);
		return -err.code;
	}
	return 0;
}

void fo_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags)
{
	int ret = 0;
	char *path = inode_path(ino, &ret);
	const char *setting = qos_name(name);

	if (!path)
		return fo_reply_err(req, ret);
	if (setting)
		ret = qos_xattr_change(req, path, setting, value, size, flags);
	else
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
	uint64_t v;
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
	if (qos_name(name))
		qos_store_refresh(path);
	if (qos_name(name) && qos_get(path, qos_name(name), &v) == 1) {
		char val[32];

		n = snprintf(val, sizeof(val), "%" PRIu64, v);
		if (size && (size_t)n > size)
			n = -ERANGE;
		else if (size)
			memcpy(buf, val, (size_t)n);
	} else {
		n = router_getxattr(path, name, buf, size);
	}
	/*
	 * With POSIX ACLs on, the kernel asks every backend for them and
	 * takes any answer but "none" as a failed permission check.  With
	 * them off it only passes a program's question on, uncached: a
	 * backend without ACLs then says so, as the file systems beneath
	 * (and sshfs) do, and `ls -l`, which asks for every entry, stops
	 * asking for the device after the first such answer.
	 */
	if (n == -EOPNOTSUPP && fo_is_acl_xattr(name) && fo_posix_acl)
		n = -ENODATA;
	free(path);
	fo_reply_xattr(req, n, buf, size);
	free(buf);
}

/* Whether the name list list[0..len) holds `name`. */
static bool list_has(const char *list, ssize_t len, const char *name)
{
	for (ssize_t off = 0; off < len; off += (ssize_t)strlen(list + off) + 1)
		if (strcmp(list + off, name) == 0)
			return true;
	return false;
}

/*
 * The backend's names, and the limits this daemon keeps on the file that
 * its backend does not (one without extended attributes): into buf of
 * `size` bytes, which is LIST_BUF when size is 0 (a size probe).
 */
#define LIST_BUF 65536
static ssize_t list_with_qos(const char *path, char *buf, size_t size)
{
	ssize_t n = router_listxattr(path, buf, size ? size : LIST_BUF);

	if (n < 0)
		return n;
	qos_store_refresh(path);
	for (int i = 0; i < THROTTLE_NAMES; i++) {
		char name[64];
		uint64_t v;
		size_t len;

		if (qos_get(path, throttle_names[i], &v) != 1)
			continue;
		len = (size_t)snprintf(name, sizeof(name), "%s%s",
				       QOS_XATTR_PREFIX, throttle_names[i]) +
		      1;
		if (list_has(buf, n, name))
			continue;
		if ((size_t)n + len > (size ? size : LIST_BUF))
			return -ERANGE;
		memcpy(buf + n, name, len);
		n += (ssize_t)len;
	}
	return n;
}

void fo_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	ssize_t n;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	if (!(buf = malloc(size ? size : LIST_BUF))) {
		free(path);
		return fo_reply_err(req, -ENOMEM);
	}
	n = list_with_qos(path, buf, size);
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
	if (qos_name(name))
		ret = qos_xattr_change(req, path, qos_name(name), NULL, 0, 0);
	else
		ret = router_removexattr(path, name);
	free(path);
	fuse_reply_err(req, -ret);
}
