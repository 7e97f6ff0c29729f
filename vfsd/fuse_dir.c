/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_dir.c - the FUSE requests on directories: opendir, readdir and
 * readdirplus (which make nodes of the entries they list), releasedir,
 * fsyncdir; and statfs.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <stdlib.h>

#include "vfsd/fuse_internal.h"
#include "vfsd/inode.h"

void fo_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct router_dir *d;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = router_opendir(path, &d);
	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)
		router_releasedir(d);
}

struct fo_dirfill {
	fuse_req_t req;
	fuse_ino_t dir;
	char *buf;
	size_t size, used;
	bool plus;
	double attr_to, entry_to;
	bool shared;
	uint64_t space; /* router_ino_space() of the directory */
};

static int fo_fill(void *ctx, const char *name, const struct stat *st,
		   unsigned flags, off_t next)
{
	struct fo_dirfill *f = ctx;
	size_t room = f->size - f->used, len;
	bool dots = name[0] == '.' &&
		    (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));

	if (!f->plus) {
		len = fuse_add_direntry(f->req, f->buf + f->used, room, name,
					st, next);
	} else {
		struct fuse_entry_param e = {.attr = *st};
		int err = 0;

		if ((flags & VFS_DIRENT_FULL) && !dots) {
			/* only children that are not directories are found
			 * by inode number, and those are on the directory's
			 * mount (mount points are directories) */
			e.ino = inode_lookup(f->dir, name, st, f->space, &err);
			e.generation = 1;
			e.attr_timeout = fo_entry_attr_timeout(
				e.ino, st, f->attr_to, f->shared);
			e.entry_timeout = f->entry_to;
		}
		len = fuse_add_direntry_plus(f->req, f->buf + f->used, room,
					     name, &e, next);
		if (len > room && e.ino)
			inode_forget(e.ino, 1); /* the kernel never saw it */
	}
	if (len > room)
		return 1;
	f->used += len;
	return 0;
}

static void fo_readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi, bool plus)
{
	struct router_dir *d = (struct router_dir *)(uintptr_t)fi->fh;
	struct fo_dirfill f = {
		.req = req, .dir = ino, .size = size, .plus = plus};
	int ret = 0;

	f.buf = malloc(size);
	if (!f.buf)
		return fo_reply_err(req, -ENOMEM);
	if (plus) {
		char *path = inode_path(ino, &ret);

		f.attr_to = f.entry_to = 0;
		if (path) {
			router_timeouts(path, &f.attr_to, &f.entry_to,
					&f.shared);
			f.space = router_ino_space(path);
		}
		free(path);
	}
	ret = router_readdir(d, off, fo_fill, &f);
	/* entries already packed are worth more than the error */
	if (ret < 0 && f.used == 0)
		fo_reply_err(req, ret);
	else
		fuse_reply_buf(req, f.buf, f.used);
	free(f.buf);
}

void fo_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	fo_readdir_common(req, ino, size, off, fi, false);
}

void fo_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	fo_readdir_common(req, ino, size, off, fi, true);
}

void fo_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	router_releasedir((struct router_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void fo_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	/* directory operations are synchronous on every backend */
	fuse_reply_err(req, 0);
}

void fo_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = router_statfs(path, &st);
	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	fuse_reply_statfs(req, &st);
}
