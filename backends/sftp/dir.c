/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dir.c - directory listings: one READDIR pass per listing, its entries'
 * attributes fed to the cache, the listing itself cached.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/callctx.h"
#include "backends/sftp/internal.h"
#include "lib/path.h"

struct vfs_dir {
	struct remote_listing *ls;
};

/* The entries of one NAME reply into ls (and their attributes into the
 * cache). */
static int sftp_list_batch(struct sftp_mount *sm, struct sftp_conn *c,
			   const char *path, struct sftp_req *r,
			   struct remote_listing *ls, uint64_t gen)
{
	struct sftp_reply rep;
	int ret = 0;

	if (sftp_parse_reply(r->type, r->body, r->body_len, &rep) < 0)
		return -EIO;
	for (uint32_t i = 0; i < rep.u.name.count && !ret; i++) {
		char name[NAME_MAX * 4 + 1];
		struct sftp_attrs a;
		unsigned flags = 0;
		nlink_t nlink;
		ino_t ino;
		const char *n;
		struct stat st;
		size_t nlen;
		char *child;

		if (sftp_get_name(&rep.u.name.rest, &n, &nlen, &a) < 0) {
			sftp_chan_fail(c->chan, -EPROTO);
			c->broken = true;
			return -EIO;
		}
		/* a name no directory entry can have: not passed on */
		if (nlen == 0 || nlen >= sizeof(name) || memchr(n, '/', nlen) ||
		    memchr(n, '\0', nlen))
			continue;
		memcpy(name, n, nlen);
		name[nlen] = '\0';
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		/* the entry's mount-relative path: st_ino and cache key */
		if (!(child = vfs_path_child(path, name)))
			return -ENOMEM;
		sftp_attr_to_stat(sm, &a, child, &st);
		/* a name of a hard-link group is checked when stat'ed
		 * (links.c): the kernel must ask */
		if (sftp_attr_full(&a) &&
		    !sftp_links_get(sm->links, child, &ino, &nlink, NULL)) {
			flags = VFS_DIRENT_FULL;
			remote_cache_put_attr(sm->cache, child, &st, gen);
		}
		free(child);
		ret = vfs_dirbuf_add(&ls->db, name, &st, flags);
	}
	return ret;
}

/* path's listing into ls; -EFBIG once it has more than cap entries. */
static int sftp_list(struct sftp_mount *sm, struct sftp_conn *c,
		     const char *path, const char *rpath,
		     struct remote_listing *ls, size_t cap)
{
	uint64_t gen = remote_cache_gen(sm->cache);
	struct sftp_handle dh;
	int rc, ret = 0;

	rc = sftp_r_opendir(c, rpath, &dh);
	if (rc)
		return rc;
	/* OpenSSH answers a READDIR with up to 100 entries */
	for (;;) {
		struct sftp_req *r;

		rc = sftp_r_readdir(c, &dh, &r);
		if (rc)
			break;
		ret = sftp_list_batch(sm, c, path, r, ls, gen);
		sftp_req_put(c->chan, r);
		if (!ret && ls->db.n > cap)
			ret = -EFBIG;
		if (ret)
			break;
	}
	if (!ret && rc < 0)
		ret = rc;
	if (!c->broken)
		sftp_r_close_async(c, &dh);
	return ret;
}

/* Fetch path's listing from the server and put it in the cache: 0 and
 * *out (a reference for the caller), or -errno (-EFBIG: more than cap
 * entries). */
static int sftp_fetch_listing(struct sftp_mount *sm, const char *path,
			      size_t cap, struct remote_listing **out)
{
	struct remote_listing *ls = NULL;
	struct sftp_conn cc, *c = &cc;
	uint64_t gen;
	char *rpath;
	int rc, tries = 0;

	gen = remote_cache_gen(sm->cache);
	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	do {
		ls = remote_listing_new();
		if (!ls) {
			rc = -ENOMEM;
			break;
		}
		rc = sftp_checkout(sm, -1, 0, c);
		if (rc) {
			remote_listing_put(sm->cache, ls);
			break;
		}
		rc = sftp_list(sm, c, path, rpath, ls, cap);
		if (rc) {
			remote_listing_put(sm->cache, ls);
			ls = NULL;
		}
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	free(rpath);
	if (rc)
		return rc;
	remote_cache_put_listing(sm->cache, path, ls, gen);
	*out = ls;
	return 0;
}

bool sftp_list_if_due(struct sftp_mount *sm, const char *path)
{
	char *dir = remote_cache_list_due(sm->cache, path);
	struct remote_listing *ls;
	int rc;

	if (!dir)
		return false;
	rc = sftp_fetch_listing(sm, dir, remote_cache_list_max(), &ls);
	if (rc == 0)
		remote_listing_put(sm->cache, ls);
	/* (a timeout or a lost connection too: a directory is not worth
	 * listing from a server that slow) */
	remote_cache_list_end(sm->cache, dir, rc != 0);
	free(dir);
	return rc == 0;
}

int sftp_opendir(struct vfs_mount *m, const char *path, struct vfs_dir **out)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct remote_listing *ls;
	struct vfs_dir *d;
	int rc;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	/* lease records are read fresh (backends/callctx.h) */
	ls = vfs_callctx.fresh ? NULL
			       : remote_cache_get_listing(sm->cache, path);
	if (!ls) {
		rc = sftp_fetch_listing(sm, path, SIZE_MAX, &ls);
		if (rc) {
			free(d);
			return rc;
		}
	}
	d->ls = ls;
	*out = d;
	return 0;
}

int sftp_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
		 vfs_fill_fn fill, void *ctx)
{
	return vfs_dirbuf_fill(&d->ls->db, off, fill, ctx);
}

void sftp_releasedir(struct vfs_mount *m, struct vfs_dir *d)
{
	remote_listing_put(sftp_mount_of(m)->cache, d->ls);
	free(d);
}
