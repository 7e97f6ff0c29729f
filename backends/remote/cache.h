/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cache.h - the attribute and directory-listing cache of a network mount
 * (sftp, nfs), keyed by path and kept for the mount's cache_ttl.
 *
 * Entries live cache_ttl seconds each (attributes and a listing of one
 * path expire apart); 0 disables the cache.  Our own changes invalidate
 * them at once; another client's changes are seen after the ttl, or at
 * the next open() (which revalidates).  Listings are refcounted because
 * open directory streams keep reading a listing after the cache has
 * dropped it.  Beyond a bound the cache starts over rather than grow.
 *
 * A put races the invalidations: a reader that fetched attributes just
 * before our write changed them must not store its old answer after the
 * write dropped the entry.  So a reader takes remote_cache_gen() before
 * it fetches and passes it to the put, which is dropped if the path was
 * invalidated (or the cache cleared) since.  A put of what we fetched
 * after a change of our own takes it after that change's invalidation.
 *
 * The cache's lock is a leaf: take no other lock while holding it (the
 * calls below hold it only inside themselves).
 */
#ifndef VFSD_BACKENDS_REMOTE_CACHE_H
#define VFSD_BACKENDS_REMOTE_CACHE_H

#include <stdbool.h>
#include <sys/stat.h>

#include "backends/backend.h"

struct remote_cache;

/* A directory listing shared by the cache and open directory streams. */
struct remote_listing {
	struct vfs_dirbuf db;
	int refs; /* protected by the cache lock */
};

struct remote_cache *remote_cache_new(int ttl_s);
void remote_cache_free(struct remote_cache *c);
/* Copy a fresh cached lstat of path into *st: true on a hit. */
bool remote_cache_get_attr(struct remote_cache *c, const char *path,
			   struct stat *st);
/* The cache's generation: take it before fetching what a put stores. */
unsigned long remote_cache_gen(struct remote_cache *c);
/* Store path's lstat, fetched after `gen` was taken; dropped if path was
 * invalidated since. */
void remote_cache_put_attr(struct remote_cache *c, const char *path,
			   const struct stat *st, unsigned long gen);
/* A fresh listing of path with a reference for the caller, or NULL. */
struct remote_listing *remote_cache_get_listing(struct remote_cache *c,
						const char *path);
/* Store a listing (the cache takes its own reference), fetched after
 * `gen` was taken; dropped if path was invalidated since. */
void remote_cache_put_listing(struct remote_cache *c, const char *path,
			      struct remote_listing *l, unsigned long gen);
struct remote_listing *remote_listing_new(void);
void remote_listing_put(struct remote_cache *c, struct remote_listing *l);
/* Drop path's attributes and its parent's listing (a change by us). */
void remote_cache_invalidate(struct remote_cache *c, const char *path);
/* The name path was created, removed or renamed: drop as above and the
 * parent's attributes too, whose mtime, ctime and size changed with it. */
void remote_cache_invalidate_name(struct remote_cache *c, const char *path);
/* Drop path's listing (path is a directory whose entries changed). */
void remote_cache_invalidate_dir(struct remote_cache *c, const char *path);
/* Drop everything (a directory moved, or the connection was rebuilt). */
void remote_cache_clear(struct remote_cache *c);
/* Free expired entries; called now and then (sftp: by its maintenance
 * thread). */
void remote_cache_expire(struct remote_cache *c);

#endif /* VFSD_BACKENDS_REMOTE_CACHE_H */
