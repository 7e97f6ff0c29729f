/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cache.c - the attribute and directory-listing cache of the network
 * backends (cache.h has the rules).
 *
 * Everything is protected by remote_cache.lock, a leaf lock.
 *
 * Generations: every invalidation takes a new number from `gen` and
 * stamps it on the hash bucket of the path it drops (stamp[]), a clear
 * on `cleared`.  A put carries the number current before its fetch, and
 * is dropped when the bucket's stamp or `cleared` is newer: what it
 * fetched may predate the change.  The stamps stay when the entries go,
 * so an invalidation that left nothing to drop still counts; paths that
 * share a bucket only cost a put now and then.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/remote/cache.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/path.h"

/* Beyond this many entries the cache starts over rather than grow. */
#define REMOTE_CACHE_MAX        65536
/* Lookups that found nothing in one directory within a ttl before it
 * is listed (remote_cache_list_due), or more for a directory whose last
 * listing took more requests (one per REMOTE_CACHE_LIST_BATCH entries,
 * OpenSSH's READDIR): a listing must save at least what it costs.  The
 * most entries such a listing may have: a larger directory, or one that
 * cannot be listed, is not listed so again for REMOTE_CACHE_NOLIST_MS. */
#define REMOTE_CACHE_LIST_AFTER 4
#define REMOTE_CACHE_LIST_BATCH 100
#define REMOTE_CACHE_LIST_MAX   8192
#define REMOTE_CACHE_NOLIST_MS  60000

struct remote_cnode {
	struct remote_cnode *next; /* hash chain */
	char *path;                /* owned */
	bool has_attr;
	struct stat st;
	struct timespec attr_exp;
	struct remote_listing *ls; /* one reference, or NULL */
	struct timespec ls_exp;
	/* Names (track_names): as a directory, `names` is the number of
	 * the listing that made it known (0: not known) until names_exp;
	 * as a name, it is present while `present` equals its directory's
	 * number and present_exp has not passed. */
	uint64_t names;
	struct timespec names_exp;
	uint64_t present;
	struct timespec present_exp;
	/* as a directory: lookups below it that missed in the window
	 * ending at miss_exp, a listing for them on its way, none before
	 * nolist_exp; the entries of its last listing (until listed_exp) */
	unsigned misses;
	struct timespec miss_exp;
	bool listing;
	struct timespec nolist_exp;
	size_t listed;
	struct timespec listed_exp;
};

struct remote_cache {
	pthread_mutex_t lock;
	long ttl_ms;
	size_t nbuckets;
	size_t count;
	struct remote_cnode **buckets;
	uint64_t gen;       /* the last number handed out */
	uint64_t cleared;   /* gen of the last clear */
	uint64_t *stamp;    /* [nbuckets]: gen of the last invalidation */
	bool track_names;   /* remote_cache_track_names() */
	uint64_t names_seq; /* the last listing number handed out */
};

static bool remote_fresh(const struct timespec *exp)
{
	return vfs_ts_ms_until(exp) > 0;
}

/* The directory holding path's name: NULL for the root, which has none
 * (or out of memory). */
static char *remote_name_dir(const char *path)
{
	return strcmp(path, "/") == 0 ? NULL : vfs_path_parent(path);
}

/* Whether n holds anything still worth keeping. */
static bool remote_cnode_live(const struct remote_cnode *n)
{
	return n->has_attr || n->ls || n->listing ||
	       (n->names && remote_fresh(&n->names_exp)) ||
	       (n->present && remote_fresh(&n->present_exp)) ||
	       (n->misses && remote_fresh(&n->miss_exp)) ||
	       remote_fresh(&n->nolist_exp) ||
	       (n->listed && remote_fresh(&n->listed_exp));
}

static void remote_cache_mark_locked(struct remote_cache *c, const char *path,
				     bool present);

struct remote_cache *remote_cache_new(int ttl_s)
{
	struct remote_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ttl_ms = ttl_s * 1000L;
	c->nbuckets = 4096;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	c->stamp = calloc(c->nbuckets, sizeof(*c->stamp));
	if (!c->buckets || !c->stamp) {
		free(c->buckets);
		free(c->stamp);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

struct remote_listing *remote_listing_new(void)
{
	struct remote_listing *l = calloc(1, sizeof(*l));

	if (l)
		l->refs = 1;
	return l;
}

static void remote_listing_put_locked(struct remote_listing *l)
{
	if (--l->refs == 0) {
		vfs_dirbuf_clear(&l->db);
		free(l);
	}
}

void remote_listing_put(struct remote_cache *c, struct remote_listing *l)
{
	pthread_mutex_lock(&c->lock);
	remote_listing_put_locked(l);
	pthread_mutex_unlock(&c->lock);
}

static void remote_cnode_free(struct remote_cnode *n)
{
	if (n->ls)
		remote_listing_put_locked(n->ls);
	free(n->path);
	free(n);
}

static void remote_cache_clear_locked(struct remote_cache *c)
{
	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->buckets[i]) {
			struct remote_cnode *n = c->buckets[i];

			c->buckets[i] = n->next;
			remote_cnode_free(n);
		}
	}
	c->count = 0;
}

void remote_cache_free(struct remote_cache *c)
{
	if (!c)
		return;
	remote_cache_clear_locked(c);
	free(c->buckets);
	free(c->stamp);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Drop everything, and every put of a fetch made before. */
static void remote_cache_flush_locked(struct remote_cache *c)
{
	c->cleared = ++c->gen;
	remote_cache_clear_locked(c);
}

void remote_cache_clear(struct remote_cache *c)
{
	pthread_mutex_lock(&c->lock);
	remote_cache_flush_locked(c);
	pthread_mutex_unlock(&c->lock);
}

uint64_t remote_cache_gen(struct remote_cache *c)
{
	uint64_t gen;

	pthread_mutex_lock(&c->lock);
	gen = c->gen;
	pthread_mutex_unlock(&c->lock);
	return gen;
}

static size_t remote_cache_bucket(struct remote_cache *c, const char *path)
{
	return vfs_hash_str(path) % c->nbuckets;
}

/* Whether path was invalidated, or the cache cleared, after gen. */
static bool remote_cache_stale_locked(struct remote_cache *c, const char *path,
				      uint64_t gen)
{
	return c->cleared > gen || c->stamp[remote_cache_bucket(c, path)] > gen;
}

/* path's cached data is being dropped: puts of older fetches too. */
static void remote_cache_stamp_locked(struct remote_cache *c, const char *path)
{
	c->stamp[remote_cache_bucket(c, path)] = ++c->gen;
}

static struct remote_cnode **remote_cache_slot_locked(struct remote_cache *c,
						      const char *path)
{
	struct remote_cnode **pp =
		&c->buckets[vfs_hash_str(path) % c->nbuckets];

	while (*pp && strcmp((*pp)->path, path) != 0)
		pp = &(*pp)->next;
	return pp;
}

static struct remote_cnode *remote_cache_node_locked(struct remote_cache *c,
						     const char *path)
{
	struct remote_cnode **pp = remote_cache_slot_locked(c, path), *n;

	if (*pp)
		return *pp;
	if (c->count >= REMOTE_CACHE_MAX)
		remote_cache_clear_locked(c);
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->path = strdup(path);
	if (!n->path) {
		free(n);
		return NULL;
	}
	pp = &c->buckets[vfs_hash_str(path) % c->nbuckets];
	n->next = *pp;
	*pp = n;
	c->count++;
	return n;
}

/* Remove n if it holds nothing any more. */
static void remote_cache_trim_locked(struct remote_cache *c, const char *path)
{
	struct remote_cnode **pp = remote_cache_slot_locked(c, path), *n = *pp;

	if (n && !remote_cnode_live(n)) {
		*pp = n->next;
		remote_cnode_free(n);
		c->count--;
	}
}

bool remote_cache_get_attr(struct remote_cache *c, const char *path,
			   struct stat *st)
{
	struct remote_cnode *n;
	bool hit = false;

	if (!c->ttl_ms)
		return false;
	pthread_mutex_lock(&c->lock);
	n = *remote_cache_slot_locked(c, path);
	if (n && n->has_attr && remote_fresh(&n->attr_exp)) {
		*st = n->st;
		hit = true;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void remote_cache_put_attr(struct remote_cache *c, const char *path,
			   const struct stat *st, uint64_t gen)
{
	struct remote_cnode *n;

	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	n = remote_cache_stale_locked(c, path, gen)
		    ? NULL
		    : remote_cache_node_locked(c, path);
	if (n) {
		n->st = *st;
		n->has_attr = true;
		vfs_ts_after_ms(&n->attr_exp, CLOCK_MONOTONIC, c->ttl_ms);
	}
	/* found there (made by another client since the listing), also
	 * when the attributes may be old: marking costs a lookup at worst */
	if (c->track_names)
		remote_cache_mark_locked(c, path, true);
	pthread_mutex_unlock(&c->lock);
}

struct remote_listing *remote_cache_get_listing(struct remote_cache *c,
						const char *path)
{
	struct remote_listing *l = NULL;
	struct remote_cnode *n;

	if (!c->ttl_ms)
		return NULL;
	pthread_mutex_lock(&c->lock);
	n = *remote_cache_slot_locked(c, path);
	if (n && n->ls && remote_fresh(&n->ls_exp)) {
		l = n->ls;
		l->refs++;
	}
	pthread_mutex_unlock(&c->lock);
	return l;
}

/* The name `name` of directory `dir` ("/" for the root) as a path in
 * buf; false if it does not fit. */
static bool remote_child_path(char *buf, size_t cap, const char *dir,
			      const char *name)
{
	int len =
		snprintf(buf, cap, "%s/%s", strcmp(dir, "/") ? dir : "", name);

	return len > 0 && (size_t)len < cap;
}

/* dir's listing n->ls was just stored: every name in it is present, any
 * other absent, for as long as the listing is fresh.  Not for a listing
 * larger than the cache can hold beside what it has. */
static void remote_cache_know_locked(struct remote_cache *c, const char *dir,
				     struct remote_cnode *n)
{
	const struct vfs_dirbuf *db = &n->ls->db;
	char child[PATH_MAX];
	uint64_t seq;

	n->names = 0;
	if (db->n > REMOTE_CACHE_LIST_MAX ||
	    c->count + db->n >= REMOTE_CACHE_MAX)
		return;
	seq = ++c->names_seq;
	for (size_t i = 0; i < db->n; i++) {
		struct remote_cnode *e;

		if (!remote_child_path(child, sizeof(child), dir,
				       db->ents[i].name))
			return;
		e = remote_cache_node_locked(c, child);
		if (!e)
			return; /* out of memory: dir stays unknown */
		e->present = seq;
		e->present_exp = n->ls_exp;
	}
	n->names = seq;
	n->names_exp = n->ls_exp;
	n->listed = db->n;
	vfs_ts_after_ms(&n->listed_exp, CLOCK_MONOTONIC,
			REMOTE_CACHE_NOLIST_MS);
}

void remote_cache_put_listing(struct remote_cache *c, const char *path,
			      struct remote_listing *l, uint64_t gen)
{
	struct remote_cnode *n;

	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	n = remote_cache_stale_locked(c, path, gen)
		    ? NULL
		    : remote_cache_node_locked(c, path);
	if (n) {
		if (n->ls)
			remote_listing_put_locked(n->ls);
		l->refs++;
		n->ls = l;
		vfs_ts_after_ms(&n->ls_exp, CLOCK_MONOTONIC, c->ttl_ms);
		if (c->track_names)
			remote_cache_know_locked(c, path, n);
	}
	pthread_mutex_unlock(&c->lock);
}

static void remote_cache_drop_listing_locked(struct remote_cache *c,
					     const char *path)
{
	struct remote_cnode *n = *remote_cache_slot_locked(c, path);

	remote_cache_stamp_locked(c, path);
	if (n && n->ls) {
		remote_listing_put_locked(n->ls);
		n->ls = NULL;
		remote_cache_trim_locked(c, path);
	}
}

static void remote_cache_drop_attr_locked(struct remote_cache *c,
					  const char *path)
{
	struct remote_cnode *n = *remote_cache_slot_locked(c, path);

	remote_cache_stamp_locked(c, path);
	if (n && n->has_attr) {
		n->has_attr = false;
		remote_cache_trim_locked(c, path);
	}
}

/* dir's names are not known any more. */
static void remote_cache_unknow_locked(struct remote_cache *c, const char *dir)
{
	struct remote_cnode *n = *remote_cache_slot_locked(c, dir);

	if (n && n->names) {
		n->names = 0;
		remote_cache_trim_locked(c, dir);
	}
}

/* Record that path's name is (or is no longer) in its known directory. */
static void remote_cache_mark_locked(struct remote_cache *c, const char *path,
				     bool present)
{
	char *parent = remote_name_dir(path);
	struct remote_cnode *d, *n;

	if (!parent)
		return;
	d = *remote_cache_slot_locked(c, parent);
	if (d && d->names && remote_fresh(&d->names_exp)) {
		uint64_t names = d->names;
		struct timespec exp = d->names_exp;

		/* (making a node may start the cache over, d with it) */
		n = present ? remote_cache_node_locked(c, path)
			    : *remote_cache_slot_locked(c, path);
		if (n) {
			n->present = present ? names : 0;
			n->present_exp = exp;
			if (!present)
				remote_cache_trim_locked(c, path);
		} else if (present) {
			/* out of memory: the name cannot be recorded */
			d = *remote_cache_slot_locked(c, parent);
			if (d)
				d->names = 0;
		}
	}
	free(parent);
}

/* Drop path's attributes and its parent's listing, and with `name` the
 * parent's attributes too, and what is known of the parent's names
 * unless the caller records the change itself (`keep_names`). */
static void remote_cache_invalidate_parent_locked(struct remote_cache *c,
						  const char *path, bool name,
						  bool keep_names)
{
	char *parent;

	remote_cache_drop_attr_locked(c, path);
	parent = vfs_path_parent(path);
	if (parent) {
		remote_cache_drop_listing_locked(c, parent);
		if (name) {
			remote_cache_drop_attr_locked(c, parent);
			if (!keep_names)
				remote_cache_unknow_locked(c, parent);
		}
		free(parent);
	} else {
		remote_cache_flush_locked(c);
	}
}

static void remote_cache_invalidate_parent(struct remote_cache *c,
					   const char *path, bool name)
{
	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	remote_cache_invalidate_parent_locked(c, path, name, false);
	pthread_mutex_unlock(&c->lock);
}

/*
 * A change of ours to path, sent after `gen` was taken, was answered:
 * drop as remote_cache_invalidate{,_name}() do, then, unless path was
 * changed otherwise since, store the attributes it answered with (st;
 * NULL: path is gone) and, for a change of its name, record the name as
 * present or gone in its known directory.  Raced, the directory's names
 * are forgotten instead.
 */
static void remote_cache_answered_locked(struct remote_cache *c,
					 const char *path, bool name,
					 const struct stat *st, uint64_t gen)
{
	/* before our own invalidation stamps path: only the others' count */
	bool stale = remote_cache_stale_locked(c, path, gen);
	struct remote_cnode *n;

	remote_cache_invalidate_parent_locked(c, path, name, !stale);
	if (stale)
		return;
	n = st ? remote_cache_node_locked(c, path) : NULL;
	if (n) {
		n->st = *st;
		n->has_attr = true;
		vfs_ts_after_ms(&n->attr_exp, CLOCK_MONOTONIC, c->ttl_ms);
	}
	if (name)
		remote_cache_mark_locked(c, path, st != NULL);
}

void remote_cache_invalidate_put(struct remote_cache *c, const char *path,
				 bool name, const struct stat *st, uint64_t gen)
{
	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	remote_cache_answered_locked(c, path, name, st, gen);
	pthread_mutex_unlock(&c->lock);
}

void remote_cache_gone(struct remote_cache *c, const char *path, uint64_t gen)
{
	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	remote_cache_answered_locked(c, path, true, NULL, gen);
	pthread_mutex_unlock(&c->lock);
}

void remote_cache_invalidate(struct remote_cache *c, const char *path)
{
	remote_cache_invalidate_parent(c, path, false);
}

void remote_cache_invalidate_name(struct remote_cache *c, const char *path)
{
	remote_cache_invalidate_parent(c, path, true);
}

void remote_cache_invalidate_dir(struct remote_cache *c, const char *path)
{
	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	remote_cache_drop_listing_locked(c, path);
	remote_cache_unknow_locked(c, path);
	pthread_mutex_unlock(&c->lock);
}

void remote_cache_track_names(struct remote_cache *c)
{
	c->track_names = true;
}

bool remote_cache_absent(struct remote_cache *c, const char *path)
{
	struct remote_cnode *d, *n;
	bool absent = false;
	char *parent;

	if (!c->ttl_ms || !c->track_names)
		return false;
	parent = remote_name_dir(path);
	if (!parent)
		return false;
	pthread_mutex_lock(&c->lock);
	d = *remote_cache_slot_locked(c, parent);
	if (d && d->names && remote_fresh(&d->names_exp)) {
		/* a mark carries its listing's number and expiry: the
		 * number alone says it is current */
		n = *remote_cache_slot_locked(c, path);
		absent = !n || n->present != d->names;
	}
	pthread_mutex_unlock(&c->lock);
	free(parent);
	return absent;
}

char *remote_cache_list_due(struct remote_cache *c, const char *path)
{
	struct remote_cnode *d;
	char *parent;
	bool due = false;

	if (!c->ttl_ms || !c->track_names)
		return NULL;
	parent = remote_name_dir(path);
	if (!parent)
		return NULL;
	pthread_mutex_lock(&c->lock);
	d = remote_cache_node_locked(c, parent);
	if (d && !d->listing && !remote_fresh(&d->nolist_exp) &&
	    !(d->names && remote_fresh(&d->names_exp))) {
		if (!remote_fresh(&d->miss_exp)) {
			d->misses = 0;
			vfs_ts_after_ms(&d->miss_exp, CLOCK_MONOTONIC,
					c->ttl_ms);
		}
		size_t cost = remote_fresh(&d->listed_exp)
				      ? d->listed / REMOTE_CACHE_LIST_BATCH + 1
				      : 0;

		if (++d->misses >= REMOTE_CACHE_LIST_AFTER &&
		    d->misses >= cost) {
			d->misses = 0;
			d->listing = true;
			due = true;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (!due) {
		free(parent);
		return NULL;
	}
	return parent;
}

void remote_cache_list_end(struct remote_cache *c, const char *dir, bool failed)
{
	struct remote_cnode *d;

	pthread_mutex_lock(&c->lock);
	d = *remote_cache_slot_locked(c, dir);
	if (d) {
		d->listing = false;
		if (failed)
			vfs_ts_after_ms(&d->nolist_exp, CLOCK_MONOTONIC,
					REMOTE_CACHE_NOLIST_MS);
		remote_cache_trim_locked(c, dir);
	}
	pthread_mutex_unlock(&c->lock);
}

size_t remote_cache_list_max(void)
{
	return REMOTE_CACHE_LIST_MAX;
}

void remote_cache_expire(struct remote_cache *c)
{
	if (!c || !c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct remote_cnode **pp = &c->buckets[i];

		while (*pp) {
			struct remote_cnode *n = *pp;

			if (n->has_attr && !remote_fresh(&n->attr_exp))
				n->has_attr = false;
			if (n->ls && !remote_fresh(&n->ls_exp)) {
				remote_listing_put_locked(n->ls);
				n->ls = NULL;
			}
			if (!remote_cnode_live(n)) {
				*pp = n->next;
				remote_cnode_free(n);
				c->count--;
			} else {
				pp = &n->next;
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
}
