/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cache.c - the SFTP backend's attribute and directory-listing cache.
 *
 * Entries are keyed by mount-relative path and live for cache_ttl seconds
 * (0 disables the cache).  Our own changes invalidate them at once;
 * another client's changes are seen after the ttl, or at the next open()
 * (which revalidates).  Listings are refcounted because open directory
 * streams keep reading a listing after the cache has dropped it.
 *
 * Everything is protected by sftp_cache.lock, a leaf lock.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sftp/internal.h"

/* Beyond this many entries the cache starts over rather than grow. */
#define SFTP_CACHE_MAX	65536

struct sftp_cnode {
	struct sftp_cnode *next;	/* hash chain */
	char *path;			/* owned */
	bool has_attr;
	struct stat st;
	struct timespec attr_exp;
	struct sftp_listing *ls;	/* one reference, or NULL */
	struct timespec ls_exp;
};

struct sftp_cache {
	pthread_mutex_t lock;
	long ttl_ms;
	size_t nbuckets;
	size_t count;
	struct sftp_cnode **buckets;
};

static size_t sftp_hash(const char *s)
{
	size_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool sftp_fresh(const struct timespec *exp)
{
	return sftp_ts_ms_until(exp) > 0;
}

struct sftp_cache *sftp_cache_new(int ttl_s)
{
	struct sftp_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ttl_ms = ttl_s * 1000L;
	c->nbuckets = 4096;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

struct sftp_listing *sftp_listing_new(void)
{
	struct sftp_listing *l = calloc(1, sizeof(*l));

	if (l)
		l->refs = 1;
	return l;
}

static void sftp_listing_put_locked(struct sftp_listing *l)
{
	if (--l->refs == 0) {
		vfs_dirbuf_clear(&l->db);
		free(l);
	}
}

void sftp_listing_put(struct sftp_cache *c, struct sftp_listing *l)
{
	pthread_mutex_lock(&c->lock);
	sftp_listing_put_locked(l);
	pthread_mutex_unlock(&c->lock);
}

static void sftp_cnode_free(struct sftp_cnode *n)
{
	if (n->ls)
		sftp_listing_put_locked(n->ls);
	free(n->path);
	free(n);
}

static void sftp_cache_clear_locked(struct sftp_cache *c)
{
	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->buckets[i]) {
			struct sftp_cnode *n = c->buckets[i];

			c->buckets[i] = n->next;
			sftp_cnode_free(n);
		}
	}
	c->count = 0;
}

void sftp_cache_free(struct sftp_cache *c)
{
	if (!c)
		return;
	sftp_cache_clear_locked(c);
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void sftp_cache_clear(struct sftp_cache *c)
{
	pthread_mutex_lock(&c->lock);
	sftp_cache_clear_locked(c);
	pthread_mutex_unlock(&c->lock);
}

static struct sftp_cnode **sftp_slot_locked(struct sftp_cache *c,
					    const char *path)
{
	struct sftp_cnode **pp = &c->buckets[sftp_hash(path) % c->nbuckets];

	while (*pp && strcmp((*pp)->path, path) != 0)
		pp = &(*pp)->next;
	return pp;
}

static struct sftp_cnode *sftp_node_locked(struct sftp_cache *c,
					   const char *path)
{
	struct sftp_cnode **pp = sftp_slot_locked(c, path), *n;

	if (*pp)
		return *pp;
	if (c->count >= SFTP_CACHE_MAX)
		sftp_cache_clear_locked(c);
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->path = strdup(path);
	if (!n->path) {
		free(n);
		return NULL;
	}
	pp = &c->buckets[sftp_hash(path) % c->nbuckets];
	n->next = *pp;
	*pp = n;
	c->count++;
	return n;
}

/* Remove n if it holds nothing any more. */
static void sftp_node_trim_locked(struct sftp_cache *c, const char *path)
{
	struct sftp_cnode **pp = sftp_slot_locked(c, path), *n = *pp;

	if (n && !n->has_attr && !n->ls) {
		*pp = n->next;
		sftp_cnode_free(n);
		c->count--;
	}
}

bool sftp_cache_get_attr(struct sftp_cache *c, const char *path,
			 struct stat *st)
{
	struct sftp_cnode *n;
	bool hit = false;

	if (!c->ttl_ms)
		return false;
	pthread_mutex_lock(&c->lock);
	n = *sftp_slot_locked(c, path);
	if (n && n->has_attr && sftp_fresh(&n->attr_exp)) {
		*st = n->st;
		hit = true;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void sftp_cache_put_attr(struct sftp_cache *c, const char *path,
			 const struct stat *st)
{
	struct sftp_cnode *n;

	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	n = sftp_node_locked(c, path);
	if (n) {
		n->st = *st;
		n->has_attr = true;
		sftp_ts_after_ms(&n->attr_exp, c->ttl_ms);
	}
	pthread_mutex_unlock(&c->lock);
}

struct sftp_listing *sftp_cache_get_listing(struct sftp_cache *c,
					    const char *path)
{
	struct sftp_listing *l = NULL;
	struct sftp_cnode *n;

	if (!c->ttl_ms)
		return NULL;
	pthread_mutex_lock(&c->lock);
	n = *sftp_slot_locked(c, path);
	if (n && n->ls && sftp_fresh(&n->ls_exp)) {
		l = n->ls;
		l->refs++;
	}
	pthread_mutex_unlock(&c->lock);
	return l;
}

void sftp_cache_put_listing(struct sftp_cache *c, const char *path,
			    struct sftp_listing *l)
{
	struct sftp_cnode *n;

	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	n = sftp_node_locked(c, path);
	if (n) {
		if (n->ls)
			sftp_listing_put_locked(n->ls);
		l->refs++;
		n->ls = l;
		sftp_ts_after_ms(&n->ls_exp, c->ttl_ms);
	}
	pthread_mutex_unlock(&c->lock);
}

static void sftp_drop_listing_locked(struct sftp_cache *c, const char *path)
{
	struct sftp_cnode *n = *sftp_slot_locked(c, path);

	if (n && n->ls) {
		sftp_listing_put_locked(n->ls);
		n->ls = NULL;
		sftp_node_trim_locked(c, path);
	}
}

static void sftp_drop_attr_locked(struct sftp_cache *c, const char *path)
{
	struct sftp_cnode *n = *sftp_slot_locked(c, path);

	if (n && n->has_attr) {
		n->has_attr = false;
		sftp_node_trim_locked(c, path);
	}
}

/* Drop path's attributes and its parent's listing, and with `name` the
 * parent's attributes too. */
static void sftp_invalidate(struct sftp_cache *c, const char *path,
			    bool name)
{
	const char *slash;
	char *parent;

	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	sftp_drop_attr_locked(c, path);
	slash = strrchr(path, '/');
	if (slash) {
		parent = slash == path ? strdup("/")
				       : strndup(path, slash - path);
		if (parent) {
			sftp_drop_listing_locked(c, parent);
			if (name)
				sftp_drop_attr_locked(c, parent);
			free(parent);
		} else {
			sftp_cache_clear_locked(c);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void sftp_cache_invalidate(struct sftp_cache *c, const char *path)
{
	sftp_invalidate(c, path, false);
}

void sftp_cache_invalidate_name(struct sftp_cache *c, const char *path)
{
	sftp_invalidate(c, path, true);
}

void sftp_cache_invalidate_dir(struct sftp_cache *c, const char *path)
{
	if (!c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	sftp_drop_listing_locked(c, path);
	pthread_mutex_unlock(&c->lock);
}

void sftp_cache_expire(struct sftp_cache *c)
{
	if (!c || !c->ttl_ms)
		return;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct sftp_cnode **pp = &c->buckets[i];

		while (*pp) {
			struct sftp_cnode *n = *pp;

			if (n->has_attr && !sftp_fresh(&n->attr_exp))
				n->has_attr = false;
			if (n->ls && !sftp_fresh(&n->ls_exp)) {
				sftp_listing_put_locked(n->ls);
				n->ls = NULL;
			}
			if (!n->has_attr && !n->ls) {
				*pp = n->next;
				sftp_cnode_free(n);
				c->count--;
			} else {
				pp = &n->next;
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
}
