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
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/remote/cache.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/path.h"

/* Beyond this many entries the cache starts over rather than grow. */
#define REMOTE_CACHE_MAX 65536

struct remote_cnode {
	struct remote_cnode *next; /* hash chain */
	char *path;                /* owned */
	bool has_attr;
	struct stat st;
	struct timespec attr_exp;
	struct remote_listing *ls; /* one reference, or NULL */
	struct timespec ls_exp;
};

struct remote_cache {
	pthread_mutex_t lock;
	long ttl_ms;
	size_t nbuckets;
	size_t count;
	struct remote_cnode **buckets;
	uint64_t gen;     /* the last number handed out */
	uint64_t cleared; /* gen of the last clear */
	uint64_t *stamp;  /* [nbuckets]: gen of the last invalidation */
};

static bool remote_fresh(const struct timespec *exp)
{
	return vfs_ts_ms_until(exp) > 0;
}

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

	if (n && !n->has_attr && !n->ls) {
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

/* Drop path's attributes and its parent's listing, and with `name` the
 * parent's attributes too. */
static void remote_cache_invalidate_parent_locked(struct remote_cache *c,
						  const char *path, bool name)
{
	char *parent;

	remote_cache_drop_attr_locked(c, path);
	parent = vfs_path_parent(path);
	if (parent) {
		remote_cache_drop_listing_locked(c, parent);
		if (name)
			remote_cache_drop_attr_locked(c, parent);
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
	remote_cache_invalidate_parent_locked(c, path, name);
	pthread_mutex_unlock(&c->lock);
}

void remote_cache_invalidate_put(struct remote_cache *c, const char *path,
				 bool name, const struct stat *st, uint64_t gen)
{
	struct remote_cnode *n;
	bool stale;

	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	/* before our own invalidation stamps path: only the others' count */
	stale = remote_cache_stale_locked(c, path, gen);
	remote_cache_invalidate_parent_locked(c, path, name);
	n = stale ? NULL : remote_cache_node_locked(c, path);
	if (n) {
		n->st = *st;
		n->has_attr = true;
		vfs_ts_after_ms(&n->attr_exp, CLOCK_MONOTONIC, c->ttl_ms);
	}
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
	pthread_mutex_unlock(&c->lock);
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
			if (!n->has_attr && !n->ls) {
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
