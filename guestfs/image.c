/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image.c - recognise VM disk images by their headers.
 *
 * qcow2 (docs/interop/qcow2.txt in QEMU): big-endian header with magic
 * "QFI\xfb", version, backing file offset/size, cluster bits, virtual size,
 * and from version 3 the incompatible-feature bits (0: dirty, 1: corrupt).
 * Anything else is raw, its virtual size the file's size.
 */
#include <endian.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "guestfs/image.h"
#include "guestfs/lock.h"
#include "guestfs/lower.h"

#define QCOW2_MAGIC 0x514649fbu

static uint32_t be32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t be64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

/* Whether the comma-separated `list` has the entry `item` (len bytes). */
static bool list_has(const char *list, const char *item, size_t len)
{
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");

		if (n == len && memcmp(p, item, len) == 0)
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

/* One scan of the lease records gives both the holders' host ids and
 * their instances. */
static void holders_fill(const struct gfs_lower *l, const char *path,
			 struct image_info *info)
{
	char tmp[sizeof(info->lock_holders)], *save = NULL;
	size_t used = 0;

	info->locked_by[0] = '\0';
	int ret = glock_holders_detail(l, path, info->lock_holders,
				       sizeof(info->lock_holders));

	if (ret < 0) {
		/* not "nobody": a record that could not be read may be a
		 * live holder's */
		snprintf(info->locked_by, sizeof(info->locked_by),
			 "unknown (%s)", strerror(-ret));
		snprintf(info->lock_holders, sizeof(info->lock_holders),
			 "unknown (%s)", strerror(-ret));
		return;
	}
	memcpy(tmp, info->lock_holders, sizeof(tmp));
	for (char *h = strtok_r(tmp, ",", &save); h;
	     h = strtok_r(NULL, ",", &save)) {
		size_t len = strcspn(h, " ");

		if (used + len + 2 >= sizeof(info->locked_by))
			break;
		if (list_has(info->locked_by, h, len))
			continue;
		used += (size_t)snprintf(
			info->locked_by + used, sizeof(info->locked_by) - used,
			"%s%.*s", used ? "," : "", (int)len, h);
	}
}

int image_probe(const struct gfs_lower *l, const char *path,
		struct image_info *info)
{
	unsigned char hdr[104];
	struct vfs_file *f;
	struct stat st;
	ssize_t n;
	int ret;

	memset(info, 0, sizeof(*info));
	ret = lower_open(l, path, O_RDONLY, &f);
	if (ret < 0)
		return ret;
	ret = lower_fgetattr(l, f, &st);
	if (ret < 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	info->file_size = (uint64_t)st.st_size;
	info->allocated = (uint64_t)st.st_blocks * 512;
	n = lower_read(l, f, hdr, sizeof(hdr), 0);
	if (n < 0) {
		ret = (int)n;
		goto out;
	}
	if (n >= 72 && be32(hdr) == QCOW2_MAGIC) {
		uint64_t boff = be64(hdr + 8);
		uint32_t blen = be32(hdr + 16), cbits = be32(hdr + 20);

		strcpy(info->format, "qcow2");
		info->qcow2_version = be32(hdr + 4);
		info->virtual_size = be64(hdr + 24);
		info->cluster_size = cbits < 32 ? 1u << cbits : 0;
		if (info->qcow2_version >= 3 && n >= 80) {
			uint64_t incompat = be64(hdr + 72);

			info->dirty = incompat & 1;
			info->corrupt = incompat & 2;
		}
		if (boff && blen && blen < sizeof(info->backing_file)) {
			n = lower_read(l, f, info->backing_file, blen,
				       (off_t)boff);
			if (n >= 0)
				info->backing_file[n] = '\0';
			else
				info->backing_file[0] = '\0';
		}
	} else {
		strcpy(info->format, "raw");
		info->virtual_size = (uint64_t)st.st_size;
	}
	ret = 0;
out:
	lower_release(l, f);
	if (ret == 0)
		holders_fill(l, path, info);
	return ret;
}

ssize_t image_getxattr(const struct gfs_lower *l, const char *path,
		       const char *name, void *buf, size_t size)
{
	const char *key = name + strlen(IMAGE_XATTR_PREFIX);
	struct image_info info;
	char val[1100];
	size_t len;
	int ret = image_probe(l, path, &info);

	if (ret < 0)
		return ret == -EINVAL ? -ENODATA : ret;
	if (strcmp(key, "format") == 0)
		snprintf(val, sizeof(val), "%s", info.format);
	else if (strcmp(key, "virtual_size") == 0)
		snprintf(val, sizeof(val), "%llu",
			 (unsigned long long)info.virtual_size);
	else if (strcmp(key, "allocated_size") == 0)
		snprintf(val, sizeof(val), "%llu",
			 (unsigned long long)info.allocated);
	else if (strcmp(key, "backing_file") == 0 && info.backing_file[0])
		snprintf(val, sizeof(val), "%s", info.backing_file);
	else if (strcmp(key, "cluster_size") == 0 && info.cluster_size)
		snprintf(val, sizeof(val), "%u", info.cluster_size);
	else if (strcmp(key, "dirty") == 0 && info.format[0] == 'q')
		snprintf(val, sizeof(val), "%d", info.dirty);
	else if (strcmp(key, "corrupt") == 0 && info.format[0] == 'q')
		snprintf(val, sizeof(val), "%d", info.corrupt);
	else if (strcmp(key, "locked_by") == 0)
		snprintf(val, sizeof(val), "%s", info.locked_by);
	else
		return -ENODATA;
	len = strlen(val);
	if (size == 0)
		return (ssize_t)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, val, len);
	return (ssize_t)len;
}
