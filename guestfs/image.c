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
#include "vfsd/report.h"
#include "vfsd/router.h"

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
static void holders_fill(const char *path, struct image_info *info)
{
	char tmp[sizeof(info->lock_holders)], *save = NULL;
	size_t used = 0;

	info->locked_by[0] = '\0';
	int ret = glock_holders_detail(path, info->lock_holders,
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

int image_probe(const char *path, struct image_info *info)
{
	unsigned char hdr[104];
	struct router_file *f;
	struct stat st;
	ssize_t n;
	int ret;

	memset(info, 0, sizeof(*info));
	ret = router_open(path, O_RDONLY, &f);
	if (ret < 0)
		return ret;
	ret = router_fgetattr(f, &st);
	if (ret < 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	info->file_size = (uint64_t)st.st_size;
	info->allocated = (uint64_t)st.st_blocks * 512;
	n = router_read(f, hdr, sizeof(hdr), 0);
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
			n = router_read(f, info->backing_file, blen,
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
	router_release(f);
	if (ret == 0)
		holders_fill(path, info);
	return ret;
}

ssize_t image_getxattr(const char *path, const char *name, void *buf,
		       size_t size)
{
	const char *key = name + strlen(IMAGE_XATTR_PREFIX);
	struct image_info info;
	char val[1100];
	size_t len;
	int ret = image_probe(path, &info);

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

static void info_json(FILE *out, const char *path, const struct image_info *i)
{
	fputs("{\"path\":", out);
	report_json_str(out, path);
	fputs(",\"format\":", out);
	report_json_str(out, i->format);
	fprintf(out,
		",\"virtual_size\":%llu,\"file_size\":%llu,\"allocated_size\":%"
		"llu",
		(unsigned long long)i->virtual_size,
		(unsigned long long)i->file_size,
		(unsigned long long)i->allocated);
	if (i->format[0] == 'q')
		fprintf(out,
			",\"qcow2_version\":%u,\"cluster_size\":%u,\"dirty\":%"
			"s,\"corrupt\":%s",
			i->qcow2_version, i->cluster_size,
			i->dirty ? "true" : "false",
			i->corrupt ? "true" : "false");
	fputs(",\"backing_file\":", out);
	if (i->backing_file[0])
		report_json_str(out, i->backing_file);
	else
		fputs("null", out);
	fputs(",\"locked_by\":[", out);
	{
		char tmp[sizeof(i->locked_by)], *save = NULL;
		int k = 0;

		memcpy(tmp, i->locked_by, sizeof(tmp));
		for (char *h = strtok_r(tmp, ",", &save); h;
		     h = strtok_r(NULL, ",", &save)) {
			if (k++)
				fputc(',', out);
			report_json_str(out, h);
		}
	}
	fputs("],\"lock_holders\":[", out);
	{
		char tmp[sizeof(i->lock_holders)], *save = NULL;
		int k = 0;

		memcpy(tmp, i->lock_holders, sizeof(tmp));
		for (char *h = strtok_r(tmp, ",", &save); h;
		     h = strtok_r(NULL, ",", &save)) {
			char host[256], token[32];
			int age = 0;

			if (sscanf(h, "%255s token=%31s age=%ds", host, token,
				   &age) != 3)
				continue;
			fprintf(out, "%s{\"host\":", k++ ? "," : "");
			report_json_str(out, host);
			fputs(",\"token\":", out);
			report_json_str(out, token);
			fprintf(out, ",\"age\":%d}", age);
		}
	}
	fputs("]}", out);
}

static void human_size(char *buf, size_t size, uint64_t v)
{
	static const char *const units[] = {"B",   "KiB", "MiB",
					    "GiB", "TiB", "PiB"};
	double d = (double)v;
	int u = 0;

	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", d, units[u]);
}

int image_cmd_info(FILE *out, const char *file, bool json,
		   struct vfs_error *err)
{
	struct image_info i;
	char v[32], a[32];
	int ret = image_probe(file, &i);

	if (ret < 0)
		return vfs_error_set(err, -ret, "%s: %s", file,
				     ret == -EINVAL ? "not a regular file"
						    : strerror(-ret));
	if (json) {
		info_json(out, file, &i);
		fputc('\n', out);
		return 0;
	}
	human_size(v, sizeof(v), i.virtual_size);
	human_size(a, sizeof(a), i.allocated);
	fprintf(out, "image:          %s\nformat:         %s\n", file,
		i.format);
	fprintf(out, "virtual size:   %s (%llu bytes)\n", v,
		(unsigned long long)i.virtual_size);
	fprintf(out, "file size:      %llu bytes\n",
		(unsigned long long)i.file_size);
	fprintf(out, "allocated:      %s\n", a);
	if (i.format[0] == 'q') {
		fprintf(out, "qcow2 version:  %u\ncluster size:   %u\n",
			i.qcow2_version, i.cluster_size);
		fprintf(out, "dirty:          %s\ncorrupt:        %s\n",
			i.dirty ? "yes" : "no", i.corrupt ? "yes" : "no");
	}
	fprintf(out, "backing file:   %s\n",
		i.backing_file[0] ? i.backing_file : "(none)");
	fprintf(out, "locked by:      %s\n",
		i.locked_by[0] ? i.locked_by : "(nobody)");
	if (i.lock_holders[0]) {
		char tmp[sizeof(i.lock_holders)], *save = NULL;

		memcpy(tmp, i.lock_holders, sizeof(tmp));
		for (char *h = strtok_r(tmp, ",", &save); h;
		     h = strtok_r(NULL, ",", &save))
			fprintf(out, "lock holder:    %s\n", h);
	}
	return 0;
}

struct list_ctx {
	char **names;
	size_t n;
};

static int list_collect(void *p, const struct stat *st, const char *name)
{
	struct list_ctx *c = p;
	char **grown;

	if (!S_ISREG(st->st_mode))
		return 0;
	grown = realloc(c->names, (c->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	c->names = grown;
	c->names[c->n] = strdup(name);
	return c->names[c->n] ? (int)(c->n++, 0) : -ENOMEM;
}

static int list_fill(void *p, const char *name, const struct stat *st,
		     unsigned flags, off_t next)
{
	/* names only: every candidate is opened and probed afterwards */
	if (name[0] == '.')
		return 0;
	return list_collect(p, st, name) < 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file counts as an image if it is qcow2, or raw with an image name. */
static bool looks_like_image(const char *name, const struct image_info *i)
{
	static const char *const ext[] = {".img", ".raw", ".qcow2", ".iso",
					  ".disk"};
	size_t len = strlen(name);

	if (strcmp(i->format, "qcow2") == 0)
		return true;
	for (size_t k = 0; k < sizeof(ext) / sizeof(ext[0]); k++) {
		size_t el = strlen(ext[k]);

		if (len > el && strcmp(name + len - el, ext[k]) == 0)
			return true;
	}
	return false;
}

int image_cmd_list(FILE *out, const char *dir, bool json, struct vfs_error *err)
{
	struct list_ctx c = {0};
	struct router_dir *d;
	int ret, shown = 0;

	ret = router_opendir(dir, &d);
	if (ret < 0)
		return vfs_error_set(err, -ret, "%s: %s", dir, strerror(-ret));
	ret = router_readdir(d, 0, list_fill, &c);
	router_releasedir(d);
	if (ret < 0)
		goto out;
	qsort(c.names, c.n, sizeof(*c.names), cmp_str);
	if (json)
		fputs("{\"images\":[", out);
	else
		fprintf(out, "%-28s %-6s %10s %10s  %-20s %s\n", "NAME",
			"FORMAT", "VIRTUAL", "ALLOCATED", "BACKING",
			"LOCKED BY");
	for (size_t k = 0; k < c.n; k++) {
		struct image_info i;
		char *path;

		if (asprintf(&path, "%s/%s", strcmp(dir, "/") ? dir : "",
			     c.names[k]) < 0) {
			ret = -ENOMEM;
			break;
		}
		if (image_probe(path, &i) == 0 &&
		    looks_like_image(c.names[k], &i)) {
			if (json) {
				if (shown)
					fputc(',', out);
				info_json(out, path, &i);
			} else {
				char v[32], a[32];

				human_size(v, sizeof(v), i.virtual_size);
				human_size(a, sizeof(a), i.allocated);
				fprintf(out, "%-28s %-6s %10s %10s  %-20s %s\n",
					c.names[k], i.format, v, a,
					i.backing_file[0] ? i.backing_file
							  : "-",
					i.locked_by[0] ? i.locked_by : "-");
			}
			shown++;
		}
		free(path);
	}
	if (json)
		fputs("]}\n", out);
out:
	for (size_t k = 0; k < c.n; k++)
		free(c.names[k]);
	free(c.names);
	return ret < 0 ? vfs_error_set(err, -ret, "%s: %s", dir, strerror(-ret))
		       : 0;
}
