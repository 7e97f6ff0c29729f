/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dir.c - directory listings: one READDIR pass per listing, its entries'
 * attributes fed to the cache, the listing itself cached.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/callctx.h"
#include "backends/sftp/internal.h"

struct vfs_dir {
	struct remote_listing *ls;
};

static int sftp_list(struct sftp_mount *sm, struct sftp_conn *c,
		     const char *path, const char *rpath,
		     struct remote_listing *ls)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	LIBSSH2_SFTP_HANDLE *dh;
	char name[NAME_MAX * 4 + 1];
	uint64_t gen = remote_cache_gen(sm->cache);
	int rc, ret = 0;

	dh = libssh2_sftp_open_ex(c->sftp, rpath, strlen(rpath), 0, 0,
				  LIBSSH2_SFTP_OPENDIR);
	if (!dh)
		return sftp_err(c, libssh2_session_last_errno(c->ssh));
	/* libssh2 fetches entries a batch (~100 from OpenSSH) at a time */
	while ((rc = libssh2_sftp_readdir_ex(dh, name, sizeof(name), NULL, 0,
					     &a)) > 0) {
		unsigned flags = 0;
		struct stat st;
		char *child;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		/* the entry's mount-relative path: st_ino and cache key */
		if (asprintf(&child, "%s/%s", strcmp(path, "/") ? path : "",
			     name) < 0) {
			ret = -ENOMEM;
			break;
		}
		sftp_attr_to_stat(&a, child, &st);
		if (sftp_attr_full(&a)) {
			flags = VFS_DIRENT_FULL;
			remote_cache_put_attr(sm->cache, child, &st, gen);
		}
		free(child);
		ret = vfs_dirbuf_add(&ls->db, name, &st, flags);
		if (ret < 0)
			break;
	}
	if (!ret && rc < 0)
		ret = sftp_err(c, rc);
	if (!c->broken)
		libssh2_sftp_close_handle(dh);
	return ret;
}

int sftp_opendir(struct vfs_mount *m, const char *path, struct vfs_dir **out)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct remote_listing *ls;
	struct sftp_conn *c;
	uint64_t gen;
	struct vfs_dir *d;
	char *rpath;
	int rc, tries = 0;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	/* lease records are read fresh (backends/callctx.h) */
	ls = vfs_callctx.fresh ? NULL
			       : remote_cache_get_listing(sm->cache, path);
	if (ls)
		goto done;
	gen = remote_cache_gen(sm->cache);
	rc = sftp_rpath(sm, path, &rpath);
	if (rc) {
		free(d);
		return rc;
	}
	do {
		ls = remote_listing_new();
		if (!ls) {
			rc = -ENOMEM;
			break;
		}
		rc = sftp_checkout(sm, -1, 0, &c);
		if (rc) {
			remote_listing_put(sm->cache, ls);
			break;
		}
		rc = sftp_list(sm, c, path, rpath, ls);
		if (rc) {
			remote_listing_put(sm->cache, ls);
			ls = NULL;
		}
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	free(rpath);
	if (rc) {
		free(d);
		return rc;
	}
	remote_cache_put_listing(sm->cache, path, ls, gen);
done:
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
