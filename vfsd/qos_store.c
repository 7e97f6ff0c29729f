/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qos_store.c - I/O limits kept as a file's own extended attributes
 * (qos.h: qos_store_set, qos_store_load), so that a VM's limits follow its
 * image to every host that serves it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "vfsd/qos.h"
#include "vfsd/router.h"

/* what a list of a file's attribute names may take here; a longer list
 * (ERANGE) is read as having none of ours, which only loses a limit */
#define LIST_MAX 65536

static void xattr_name(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s%s", QOS_XATTR_PREFIX, name);
}

/* Write settings i < n to the file's attributes: 0, -EOPNOTSUPP when its
 * backend keeps none (nothing was written), or another -errno. */
static int persist(const char *path, const char *const *names,
		   const uint64_t *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char xname[64], val[32];
		int ret;

		xattr_name(xname, sizeof(xname), names[i]);
		if (values[i]) {
			snprintf(val, sizeof(val), "%" PRIu64, values[i]);
			ret = router_setxattr(path, xname, val, strlen(val), 0);
		} else {
			ret = router_removexattr(path, xname);
			if (ret == -ENODATA)
				ret = 0;
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

int qos_store_set(const char *path, const char *const *names,
		  const uint64_t *values, size_t n, struct vfs_error *err)
{
	uint64_t old[THROTTLE_NAMES];
	enum qos_origin was = QOS_ORIGIN_RUNTIME;
	bool had = qos_origin_of(path, &was) == 0;
	struct stat st;
	int ret;

	if (n > THROTTLE_NAMES)
		return vfs_error_set(err, EINVAL, "too many settings");
	for (size_t i = 0; i < n; i++)
		if (qos_get(path, names[i], &old[i]) != 1)
			old[i] = 0;
	ret = router_getattr(path, &st);
	if (ret < 0)
		return vfs_error_set(err, -ret, "%s: %s", path, strerror(-ret));
	/* checked as a whole first: nothing is written for a bad set */
	ret = qos_set(path, names, values, n,
		      S_ISREG(st.st_mode) ? QOS_ORIGIN_XATTR
					  : QOS_ORIGIN_RUNTIME,
		      err);
	if (ret < 0 || !S_ISREG(st.st_mode))
		return ret;
	ret = persist(path, names, values, n);
	if (ret == -EOPNOTSUPP) {
		/* kept here only: shown as such in `vfsctl qos show` */
		struct vfs_error ignored = {0};

		qos_set(path, names, values, n, QOS_ORIGIN_RUNTIME, &ignored);
		return 0;
	}
	if (ret < 0) {
		struct vfs_error ignored = {0};

		/* what the attributes hold is unknown now; the rule goes
		 * back to what it was */
		qos_set(path, names, old, n, had ? was : QOS_ORIGIN_RUNTIME,
			&ignored);
		return vfs_error_set(err, -ret,
				     "%s: cannot store the limit as an "
				     "extended attribute: %s",
				     path, strerror(-ret));
	}
	return 0;
}

void qos_store_load(const char *path)
{
	uint64_t values[THROTTLE_NAMES] = {0};
	size_t plen = strlen(QOS_XATTR_PREFIX);
	enum qos_origin origin;
	struct vfs_error err = {0};
	bool found = false;
	char *list;
	ssize_t len;

	list = malloc(LIST_MAX);
	if (!list)
		return;
	len = router_listxattr(path, list, LIST_MAX);
	for (ssize_t off = 0; len > 0 && off < len;
	     off += (ssize_t)strlen(list + off) + 1) {
		const char *name = list + off;
		char val[32];
		ssize_t n;

		if (strncmp(name, QOS_XATTR_PREFIX, plen) != 0)
			continue;
		for (int i = 0; i < THROTTLE_NAMES; i++) {
			if (strcmp(name + plen, throttle_names[i]) != 0)
				continue;
			n = router_getxattr(path, name, val, sizeof(val) - 1);
			if (n < 0)
				break;
			val[n] = '\0';
			if (throttle_parse_value(val, &values[i]) < 0) {
				log_warn("%s: %s = '%.31s' is no plain decimal "
					 "integer: ignored",
					 path, name, val);
				values[i] = 0;
				break;
			}
			found = true;
		}
	}
	free(list);
	if (!found) {
		/* removed on another host, or never set */
		if (qos_origin_of(path, &origin) == 0 &&
		    origin == QOS_ORIGIN_XATTR)
			qos_clear(path);
		return;
	}
	if (qos_set(path, throttle_names, values, THROTTLE_NAMES,
		    QOS_ORIGIN_XATTR, &err) < 0)
		log_warn("%s: its user.vfsd.qos.* attributes are ignored: %s",
			 path, err.msg);
}

void qos_store_refresh(const char *path)
{
	enum qos_origin origin;

	if (qos_origin_of(path, &origin) == 0 && origin == QOS_ORIGIN_XATTR)
		qos_store_load(path);
}
