/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cache.c - attributes and directory listings of an NFS mount, kept for cache_ttl. */
#include "backends/nfs/internal.h"

/* ---- Attribute and listing cache -------------------------------------- */

/* FNV-1a */
uint64_t nfsb_hash64(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static unsigned nfsb_hash(const char *s)
{
	return (unsigned)(nfsb_hash64(s) % NFSB_CACHE_SLOTS);
}

void nfsb_listing_put_locked(struct nfsb_listing *l)
{
	if (l && --l->refs == 0) {
		vfs_dirbuf_clear(&l->db);
		free(l);
	}
}

static void nfsb_centry_free_locked(struct nfsb_centry *e)
{
	nfsb_listing_put_locked(e->list);
	free(e->path);
	free(e);
}

struct nfsb_centry *nfsb_cache_find_locked(struct nfsb_mount *m,
					   const char *path, bool create)
{
	unsigned h = nfsb_hash(path);
	struct nfsb_centry *e;

	for (e = m->cache[h]; e; e = e->next)
		if (strcmp(e->path, path) == 0)
			return e;
	if (!create)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->path = strdup(path);
	if (!e->path) {
		free(e);
		return NULL;
	}
	e->next = m->cache[h];
	m->cache[h] = e;
	return e;
}

void nfsb_cache_put_attr(struct nfsb_mount *m, const char *path,
			 const struct stat *st)
{
	struct nfsb_centry *e;

	if (m->cache_ttl <= 0)
		return;
	pthread_mutex_lock(&m->cache_lock);
	e = nfsb_cache_find_locked(m, path, true);
	if (e) {
		e->st = *st;
		e->has_st = true;
		e->expires = nfsb_now() + m->cache_ttl;
	}
	pthread_mutex_unlock(&m->cache_lock);
}

bool nfsb_cache_get_attr(struct nfsb_mount *m, const char *path,
			 struct stat *st)
{
	struct nfsb_centry *e;
	bool hit = false;

	if (m->cache_ttl <= 0)
		return false;
	pthread_mutex_lock(&m->cache_lock);
	e = nfsb_cache_find_locked(m, path, false);
	if (e && e->has_st && e->expires > nfsb_now()) {
		*st = e->st;
		hit = true;
	}
	pthread_mutex_unlock(&m->cache_lock);
	return hit;
}

/* Drop what we know of `path` (attributes and listing). */
static void nfsb_cache_drop_locked(struct nfsb_mount *m, const char *path)
{
	unsigned h = nfsb_hash(path);
	struct nfsb_centry **pp = &m->cache[h], *e;

	while ((e = *pp)) {
		if (strcmp(e->path, path) == 0) {
			*pp = e->next;
			nfsb_centry_free_locked(e);
			return;
		}
		pp = &e->next;
	}
}

/* The object at `path` changed, and so did its parent directory's listing
 * and times. */
void nfsb_invalidate(struct nfsb_mount *m, const char *path)
{
	char *parent;
	char *slash;

	if (m->cache_ttl <= 0)
		return;
	parent = strdup(path);
	pthread_mutex_lock(&m->cache_lock);
	nfsb_cache_drop_locked(m, path);
	if (parent) {
		slash = strrchr(parent, '/');
		if (slash) {
			if (slash == parent)
				slash[1] = '\0';
			else
				*slash = '\0';
			nfsb_cache_drop_locked(m, parent);
		}
	}
	pthread_mutex_unlock(&m->cache_lock);
	free(parent);
}

/* Renaming or removing a directory moves a whole subtree: forget all. */
void nfsb_cache_clear(struct nfsb_mount *m)
{
	pthread_mutex_lock(&m->cache_lock);
	for (size_t i = 0; i < NFSB_CACHE_SLOTS; i++) {
		struct nfsb_centry *e = m->cache[i], *next;

		for (; e; e = next) {
			next = e->next;
			nfsb_centry_free_locked(e);
		}
		m->cache[i] = NULL;
	}
	pthread_mutex_unlock(&m->cache_lock);
}

