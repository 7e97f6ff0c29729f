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
 * invalidated (or the cache cleared) since.  A put of attributes a
 * change of our own answered takes it before sending that change too,
 * and stores them with remote_cache_invalidate_put(), which applies the
 * change's own invalidation and still sees every other one since.
 *
 * The cache's lock is a leaf: take no other lock while holding it (the
 * calls below hold it only inside themselves).
 */
#ifndef VFSD_BACKENDS_REMOTE_CACHE_H
#define VFSD_BACKENDS_REMOTE_CACHE_H

#include <stdbool.h>
#include <stdint.h>
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
uint64_t remote_cache_gen(struct remote_cache *c);
/* Store path's lstat, fetched after `gen` was taken; dropped if path was
 * invalidated since. */
void remote_cache_put_attr(struct remote_cache *c, const char *path,
			   const struct stat *st, uint64_t gen);
/* A fresh listing of path with a reference for the caller, or NULL. */
struct remote_listing *remote_cache_get_listing(struct remote_cache *c,
						const char *path);
/* Store a listing (the cache takes its own reference), fetched after
 * `gen` was taken; dropped if path was invalidated since. */
void remote_cache_put_listing(struct remote_cache *c, const char *path,
			      struct remote_listing *l, uint64_t gen);
struct remote_listing *remote_listing_new(void);
void remote_listing_put(struct remote_cache *c, struct remote_listing *l);
/* Drop path's attributes and its parent's listing (a change by us). */
void remote_cache_invalidate(struct remote_cache *c, const char *path);
/* The name path was created, removed or renamed: drop as above and the
 * parent's attributes too, whose mtime, ctime and size changed with it. */
void remote_cache_invalidate_name(struct remote_cache *c, const char *path);
/* A change of ours to path was answered with its attributes `st`: drop as
 * remote_cache_invalidate() (with `name`: _invalidate_name()) does, and
 * then store st, unless path was invalidated or the cache cleared after
 * `gen` (taken before the change was sent) by anything but this call. */
void remote_cache_invalidate_put(struct remote_cache *c, const char *path,
				 bool name, const struct stat *st,
				 uint64_t gen);
/* Drop path's listing (path is a directory whose entries changed). */
void remote_cache_invalidate_dir(struct remote_cache *c, const char *path);
/* Drop everything (a directory moved, or the connection was rebuilt). */
void remote_cache_clear(struct remote_cache *c);
/* Free expired entries; called now and then (sftp: by its maintenance
 * thread). */
void remote_cache_expire(struct remote_cache *c);

#endif /* VFSD_BACKENDS_REMOTE_CACHE_H */
