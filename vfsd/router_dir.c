/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router_dir.c - directory streams (router.h, "Directories"): a backend's
 * stream with its inode numbers made the mount's, or, for a directory
 * that leads to prefixes, a listing read whole at opendir and merged with
 * the child prefixes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/path.h"
#include "vfsd/router_internal.h"

struct router_dir {
	struct router_mount *m; /* ref held, or NULL (virtual) */
	struct vfs_dir *vd;     /* backend stream, or NULL */
	struct vfs_dirbuf buf;  /* merged listing when vd == NULL */
	char *path;             /* owned, for rewinddir */
	bool read;              /* entries were asked for */
};

struct fill_mix {
	vfs_fill_fn fill;
	void *ctx;
	unsigned id;
};

static int fill_mixed(void *ctx, const char *name, const struct stat *st,
		      unsigned flags, off_t next)
{
	struct fill_mix *fm = ctx;
	struct stat s = *st;

	s.st_ino = mix_ino(fm->id, s.st_ino);
	return fm->fill(fm->ctx, name, &s, flags, next);
}

static int fill_collect(void *ctx, const char *name, const struct stat *st,
			unsigned flags, off_t next)
{
	return vfs_dirbuf_add(ctx, name, st, flags) < 0;
}

/*
 * A directory that leads to prefixes: the backend's entries (if a mount
 * covers it) with every child prefix shown as the mounted root it is.
 */
static int opendir_merged(struct router_dir *d, const char *path,
			  const char *rel, char **children, size_t nchildren)
{
	struct stat st;
	int ret = 0;

	if (d->m) {
		struct vfs_dir *vd;

		ret = BCALL(d->m, ROP_OPENDIR,
			    d->m->ops->opendir(d->m->vm, rel, &vd));
		if (ret == 0) {
			struct fill_mix fm = {fill_collect, &d->buf, d->m->id};

			ret = BCALL(d->m, ROP_READDIR,
				    d->m->ops->readdir(d->m->vm, vd, 0,
						       fill_mixed, &fm));
			d->m->ops->releasedir(d->m->vm, vd);
		}
		if (ret == -ENOENT)
			ret = 0;
		if (ret < 0)
			return ret;
	}
	if (!vfs_dirbuf_has(&d->buf, ".")) {
		router_getattr(path, &st);
		if (vfs_dirbuf_add(&d->buf, ".", &st, 0) < 0 ||
		    vfs_dirbuf_add(&d->buf, "..", &st, 0) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < nchildren; i++) {
		char *cp;
		bool found = false;

		if (!(cp = vfs_path_child(path, children[i])))
			return -ENOMEM;
		if (router_getattr(cp, &st) < 0)
			rt_virtual_stat(cp, &st);
		free(cp);
		for (size_t j = 0; j < d->buf.n; j++) {
			if (strcmp(d->buf.ents[j].name, children[i]) == 0) {
				d->buf.ents[j].st = st;
				d->buf.ents[j].flags = VFS_DIRENT_FULL;
				found = true;
			}
		}
		if (!found &&
		    vfs_dirbuf_add(&d->buf, children[i], &st, VFS_DIRENT_FULL))
			return -ENOMEM;
	}
	return 0;
}

int router_opendir(const char *path, struct router_dir **out)
{
	struct router_dir *d = calloc(1, sizeof(*d));
	const char *rel = "/";
	size_t nchildren;
	char **children;
	int ret;

	if (!d)
		return -ENOMEM;
	d->path = strdup(path);
	if (!d->path) {
		free(d);
		return -ENOMEM;
	}
	d->m = rt_resolve(path, &rel);
	children = rt_child_prefixes(path, &nchildren);
	if (nchildren) {
		ret = opendir_merged(d, path, rel, children, nchildren);
	} else if (!d->m) {
		ret = -ENOENT;
	} else {
		ret = BCALL(d->m, ROP_OPENDIR,
			    d->m->ops->opendir(d->m->vm, rel, &d->vd));
	}
	for (size_t i = 0; i < nchildren; i++)
		free(children[i]);
	free(children);
	if (ret < 0) {
		router_releasedir(d);
		return ret;
	}
	*out = d;
	return 0;
}

int router_readdir(struct router_dir *d, off_t off, vfs_fill_fn fill, void *ctx)
{
	struct fill_mix fm;

	if (off == 0 && d->read) {
		/*
		 * rewinddir(3): the stream must show the directory as it is
		 * now, as a new opendir would; listings read whole at opendir
		 * (NFS, SFTP, merged views) are read again.
		 */
		struct router_dir *nd, tmp;
		int ret = router_opendir(d->path, &nd);

		if (ret < 0)
			return ret;
		tmp = *d;
		*d = *nd;
		*nd = tmp;
		router_releasedir(nd);
	}
	d->read = true;
	if (!d->vd)
		return vfs_dirbuf_fill(&d->buf, off, fill, ctx);
	fm = (struct fill_mix){fill, ctx, d->m->id};
	return BCALL(d->m, ROP_READDIR,
		     d->m->ops->readdir(d->m->vm, d->vd, off, fill_mixed, &fm));
}

void router_releasedir(struct router_dir *d)
{
	if (d->vd)
		d->m->ops->releasedir(d->m->vm, d->vd);
	vfs_dirbuf_clear(&d->buf);
	if (d->m)
		rt_mount_put(d->m);
	free(d->path);
	free(d);
}
