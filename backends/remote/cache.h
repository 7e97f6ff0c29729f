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
#include <stddef.h>
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

/*
 * Names of directories (a backend opts in with remote_cache_track_names()
 * once, before use, if it calls remote_cache_gone() for its removals and
 * invalidates every other change of a name with _invalidate_name() or
 * _invalidate_put(.., true, ..)).  A directory whose listing is fresh in
 * the cache is "known" for as long: a name in it that the listing did
 * not have, and that no change of ours or lookup made since, is absent,
 * and a lookup of it needs no request (remote_cache_absent()).  Another
 * client's new file then shows within the ttl, as it would through the
 * kernel's own negative entries.  A change of a name that the cache
 * cannot follow (a failed or racing one, a rename) forgets what is known
 * of the directory.
 *
 * A burst of lookups that missed in one directory (a stat of each of its
 * files by name, the names a tar or cp is about to create) lists it:
 * remote_cache_list_due() says when (more such lookups for a directory
 * whose last listing took more requests, so that a listing saves what it
 * costs), and the caller lists it, puts the listing, and calls
 * remote_cache_list_end().  A directory of more than
 * remote_cache_list_max() entries, or one that could not be listed, is
 * not listed so again for a minute.
 */
void remote_cache_track_names(struct remote_cache *c);
/* Whether path's name is absent from its known directory. */
bool remote_cache_absent(struct remote_cache *c, const char *path);
/* Note that a lookup of path missed the cache; path's directory if it is
 * to be listed now (the caller owns the string and must call
 * remote_cache_list_end() with it), else NULL. */
char *remote_cache_list_due(struct remote_cache *c, const char *path);
/* The listing remote_cache_list_due() asked for is done (put, or not);
 * failed: it could not be made (a directory we may search but not read,
 * say) or stopped at remote_cache_list_max() entries. */
void remote_cache_list_end(struct remote_cache *c, const char *dir,
			   bool failed);
size_t remote_cache_list_max(void);
/* We removed path (a request sent after `gen` was taken): drop as
 * remote_cache_invalidate_name() does, keeping its directory known with
 * path absent from it. */
void remote_cache_gone(struct remote_cache *c, const char *path, uint64_t gen);

#endif /* VFSD_BACKENDS_REMOTE_CACHE_H */
