/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image_cmd.c - `vfsctl image list DIR` and `vfsctl image info FILE`: the
 * image store's facts about files (guestfs/image.h), probed by its layer
 * over the file's mount, as a table or JSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guestfs/layer.h"
#include "lib/json.h"
#include "lib/path.h"
#include "vfsd/image_cmd.h"
#include "vfsd/router.h"

static int probe_at(struct vfs_mount *vm, const char *rel, void *info)
{
	return image_layer_probe(vm, rel, info);
}

/* Probe the image at vfsd path `path`: 0 or -errno (-EINVAL: not a
 * regular file, -EOPNOTSUPP: on no mount the image store serves). */
static int probe(const char *path, struct image_info *info)
{
	return router_with_path(path, probe_at, info);
}

static void info_json(FILE *out, const char *path, const struct image_info *i)
{
	fputs("{\"path\":", out);
	vfs_json_str(out, path);
	fputs(",\"format\":", out);
	vfs_json_str(out, i->format);
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
		vfs_json_str(out, i->backing_file);
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
			vfs_json_str(out, h);
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
			vfs_json_str(out, host);
			fputs(",\"token\":", out);
			vfs_json_str(out, token);
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
	int ret = probe(file, &i);

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

		if (!(path = vfs_path_child(dir, c.names[k]))) {
			ret = -ENOMEM;
			break;
		}
		if (probe(path, &i) == 0 && looks_like_image(c.names[k], &i)) {
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
