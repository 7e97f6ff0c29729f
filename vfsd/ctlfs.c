/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctlfs.c - the /.vfsd/ directory, an internal backend.  Each file's text
 * is made when it is opened (a consistent snapshot for that reader) and
 * served uncached (FOPEN_DIRECT_IO, so the kernel reads to the end
 * whatever the size says), so every open shows the present state.  A
 * stat makes no text and says size 0, as /proc does: the list of open
 * files costs what the open files make it, and any user may stat it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vfsd/ctlfs.h"
#include "vfsd/qos.h"
#include "vfsd/report.h"

struct ctlfs_mount {
	struct vfs_mount base; /* first */
	const struct vfsd_status *status;
	struct timespec born;
};

struct ctlfs_file {
	struct vfs_file base; /* first */
	char *text;           /* owned */
	size_t len;
	int idx; /* which of ctlfs_names */
};

struct vfs_dir {
	struct vfs_dirbuf buf;
};

static const char *const ctlfs_names[] = {
	"status",     "status.json", "mounts",     "mounts.json", "stats",
	"stats.json", "files",       "files.json", "qos",         "qos.json",
};
#define CTLFS_NFILES (sizeof(ctlfs_names) / sizeof(ctlfs_names[0]))

static int ctlfs_index(const char *path)
{
	for (size_t i = 0; i < CTLFS_NFILES; i++)
		if (path[0] == '/' && strcmp(path + 1, ctlfs_names[i]) == 0)
			return (int)i;
	return -1;
}

/* The text of file i as a new string (caller frees). */
static char *ctlfs_render(struct ctlfs_mount *cm, int i, size_t *len)
{
	bool json = strstr(ctlfs_names[i], ".json") != NULL;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	switch (i / 2) {
	case 0:
		report_status(f, json, cm->status);
		break;
	case 1:
		report_mounts(f, json);
		break;
	case 2:
		report_stats(f, NULL, json, NULL);
		break;
	case 3:
		report_files(f, NULL, json);
		break;
	default:
		qos_report(f, NULL, json);
		break;
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void ctlfs_stat(struct ctlfs_mount *cm, int i, size_t len,
		       struct stat *st)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	memset(st, 0, sizeof(*st));
	st->st_ino = i < 0 ? 1 : (ino_t)i + 2;
	/* files and qos name files of every user, in directories the
	 * reader may have no right to list: the daemon's user's alone */
	st->st_mode = i < 0    ? S_IFDIR | 0555
		      : i >= 6 ? S_IFREG | 0400
			       : S_IFREG | 0444;
	st->st_nlink = i < 0 ? 2 : 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_size = (off_t)len;
	st->st_blksize = 4096;
	st->st_atim = st->st_ctim = cm->born;
	/* the content changes all the time */
	st->st_mtim = i < 0 ? cm->born : now;
}

static int ctlfs_statfs(struct vfs_mount *m, const char *path,
			struct statvfs *st)
{
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_namemax = 255;
	return 0;
}

static int ctlfs_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	struct ctlfs_mount *cm = (struct ctlfs_mount *)m;
	int i = ctlfs_index(path);

	if (strcmp(path, "/") == 0) {
		ctlfs_stat(cm, -1, 0, st);
		return 0;
	}
	if (i < 0)
		return -ENOENT;
	ctlfs_stat(cm, i, 0, st);
	return 0;
}

static int ctlfs_opendir(struct vfs_mount *m, const char *path,
			 struct vfs_dir **out)
{
	struct ctlfs_mount *cm = (struct ctlfs_mount *)m;
	struct vfs_dir *d;
	struct stat st;
	int ret = 0;

	if (strcmp(path, "/") != 0)
		return ctlfs_index(path) < 0 ? -ENOENT : -ENOTDIR;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	ctlfs_stat(cm, -1, 0, &st);
	ret = vfs_dirbuf_add(&d->buf, ".", &st, 0);
	if (!ret)
		ret = vfs_dirbuf_add(&d->buf, "..", &st, 0);
	for (size_t i = 0; i < CTLFS_NFILES && !ret; i++) {
		ctlfs_stat(cm, (int)i, 0, &st);
		ret = vfs_dirbuf_add(&d->buf, ctlfs_names[i], &st, 0);
	}
	if (ret) {
		vfs_dirbuf_clear(&d->buf);
		free(d);
		return ret;
	}
	*out = d;
	return 0;
}

static int ctlfs_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
			 vfs_fill_fn fill, void *ctx)
{
	return vfs_dirbuf_fill(&d->buf, off, fill, ctx);
}

static void ctlfs_releasedir(struct vfs_mount *m, struct vfs_dir *d)
{
	vfs_dirbuf_clear(&d->buf);
	free(d);
}

static int ctlfs_open(struct vfs_mount *m, const char *path, int flags,
		      struct vfs_file **out)
{
	struct ctlfs_mount *cm = (struct ctlfs_mount *)m;
	struct ctlfs_file *cf;
	int i = ctlfs_index(path);

	if (strcmp(path, "/") == 0)
		return -EISDIR;
	if (i < 0)
		return -ENOENT;
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	cf = calloc(1, sizeof(*cf));
	if (!cf)
		return -ENOMEM;
	cf->text = ctlfs_render(cm, i, &cf->len);
	if (!cf->text) {
		free(cf);
		return -ENOMEM;
	}
	cf->idx = i;
	cf->base.flags = flags;
	cf->base.host_fd = -1;
	cf->base.uncached = true;
	*out = &cf->base;
	return 0;
}

static ssize_t ctlfs_read(struct vfs_file *f, void *buf, size_t size, off_t off)
{
	struct ctlfs_file *cf = (struct ctlfs_file *)f;

	if (off < 0)
		return -EINVAL;
	if ((size_t)off >= cf->len)
		return 0;
	if (size > cf->len - off)
		size = cf->len - off;
	memcpy(buf, cf->text + off, size);
	return (ssize_t)size;
}

static int ctlfs_fgetattr(struct vfs_file *f, struct stat *st)
{
	struct ctlfs_file *cf = (struct ctlfs_file *)f;

	ctlfs_stat((struct ctlfs_mount *)f->mount, cf->idx, cf->len, st);
	return 0;
}

static int ctlfs_release(struct vfs_file *f)
{
	struct ctlfs_file *cf = (struct ctlfs_file *)f;

	free(cf->text);
	free(cf);
	return 0;
}

static void ctlfs_unmount(struct vfs_mount *m)
{
	free(m);
}

static const struct vfs_backend_ops ctlfs_ops = {
	.name = "vfsd",
	.unmount = ctlfs_unmount,
	.statfs = ctlfs_statfs,
	.getattr = ctlfs_getattr,
	.opendir = ctlfs_opendir,
	.readdir = ctlfs_readdir,
	.releasedir = ctlfs_releasedir,
	.open = ctlfs_open,
	.read = ctlfs_read,
	.fgetattr = ctlfs_fgetattr,
	.release = ctlfs_release,
};

struct vfs_mount *ctlfs_new(const struct vfsd_status *st)
{
	struct ctlfs_mount *cm = calloc(1, sizeof(*cm));

	if (!cm)
		return NULL;
	cm->base.ops = &ctlfs_ops;
	cm->status = st;
	clock_gettime(CLOCK_REALTIME, &cm->born);
	cm->base.attr_timeout = 0;
	cm->base.entry_timeout = 60;
	return &cm->base;
}
