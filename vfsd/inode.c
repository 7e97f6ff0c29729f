/* SPDX-License-Identifier: GPL-2.0-or-later */
/* inode.c - the node table (see inode.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfsd/inode.h"

struct node_handle {
	void *h;
	struct node_handle *next;
};

struct node {
	uint64_t ino;
	struct node_handle *handles;	/* open files of this node */
	struct node *parent;	/* holds a ref on it; NULL for the root */
	char *name;		/* owned; meaningless once detached */
	uint64_t nlookup;	/* kernel references */
	uint64_t refs;		/* children that name this node as parent */
	bool attached;		/* reachable by (parent, name) */
	/* identity of the backend object, to notice a replaced name */
	mode_t type;
	ino_t bino;
	dev_t bdev;
	/* close-to-open stamp */
	bool stamped;
	struct timespec mtime, ctime;
	off_t size;
	struct node *ino_next;	/* chain in by_ino */
	struct node *name_next;	/* chain in by_name, while attached */
};

/* Everything below is protected by table_lock. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node **by_ino, **by_name;
static size_t nbuckets;	/* a power of two, for both tables */
static uint64_t nnodes;
static uint64_t next_ino = INODE_ROOT + 1;
static struct node *root;

static uint64_t hash_ino(uint64_t ino)
{
	ino ^= ino >> 33;
	ino *= 0xff51afd7ed558ccdULL;
	ino ^= ino >> 33;
	return ino;
}

static uint64_t hash_name(uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ULL ^ hash_ino(parent);

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return h;
}

static struct node **ino_slot(uint64_t ino)
{
	return &by_ino[hash_ino(ino) & (nbuckets - 1)];
}

static struct node **name_slot(uint64_t parent, const char *name)
{
	return &by_name[hash_name(parent, name) & (nbuckets - 1)];
}

static struct node *find_ino_locked(uint64_t ino)
{
	struct node *n = *ino_slot(ino);

	while (n && n->ino != ino)
		n = n->ino_next;
	return n;
}

static struct node *find_name_locked(uint64_t parent, const char *name)
{
	struct node *n = *name_slot(parent, name);

	while (n && !(n->parent->ino == parent && strcmp(n->name, name) == 0))
		n = n->name_next;
	return n;
}

static void name_remove_locked(struct node *n)
{
	struct node **pp = name_slot(n->parent->ino, n->name);

	while (*pp && *pp != n)
		pp = &(*pp)->name_next;
	if (*pp)
		*pp = n->name_next;
	n->name_next = NULL;
	n->attached = false;
}

static void name_insert_locked(struct node *n)
{
	struct node **pp = name_slot(n->parent->ino, n->name);

	n->name_next = *pp;
	*pp = n;
	n->attached = true;
}

/* Grow both tables when they get crowded; failure only costs speed. */
static void maybe_grow_locked(void)
{
	size_t nb = nbuckets * 2;
	struct node **bi, **bn;

	if (nnodes < nbuckets)
		return;
	bi = calloc(nb, sizeof(*bi));
	bn = calloc(nb, sizeof(*bn));
	if (!bi || !bn) {
		free(bi);
		free(bn);
		return;
	}
	for (size_t i = 0; i < nbuckets; i++) {
		struct node *n = by_ino[i], *next;

		for (; n; n = next) {
			size_t h = hash_ino(n->ino) & (nb - 1);

			next = n->ino_next;
			n->ino_next = bi[h];
			bi[h] = n;
		}
		for (n = by_name[i]; n; n = next) {
			size_t h = hash_name(n->parent->ino, n->name) & (nb - 1);

			next = n->name_next;
			n->name_next = bn[h];
			bn[h] = n;
		}
	}
	free(by_ino);
	free(by_name);
	by_ino = bi;
	by_name = bn;
	nbuckets = nb;
}

/* Free n if nothing references it, then walk up releasing parents. */
static void node_maybe_free_locked(struct node *n)
{
	while (n && n != root && n->nlookup == 0 && n->refs == 0) {
		struct node *parent = n->parent, **pp;

		if (n->attached)
			name_remove_locked(n);
		pp = ino_slot(n->ino);
		while (*pp != n)
			pp = &(*pp)->ino_next;
		*pp = n->ino_next;
		while (n->handles) {
			struct node_handle *nh = n->handles;

			n->handles = nh->next;
			free(nh);
		}
		free(n->name);
		free(n);
		nnodes--;
		parent->refs--;
		n = parent;
	}
}

int inode_table_init(void)
{
	nbuckets = 1024;
	by_ino = calloc(nbuckets, sizeof(*by_ino));
	by_name = calloc(nbuckets, sizeof(*by_name));
	root = calloc(1, sizeof(*root));
	if (!by_ino || !by_name || !root) {
		inode_table_destroy();
		return -ENOMEM;
	}
	root->ino = INODE_ROOT;
	root->nlookup = 1;
	root->attached = true;
	root->type = S_IFDIR;
	*ino_slot(INODE_ROOT) = root;
	nnodes = 1;
	return 0;
}

void inode_table_destroy(void)
{
	for (size_t i = 0; by_ino && i < nbuckets; i++) {
		struct node *n = by_ino[i], *next;

		for (; n; n = next) {
			next = n->ino_next;
			free(n->name);
			free(n);
		}
	}
	free(by_ino);
	free(by_name);
	by_ino = by_name = NULL;
	root = NULL;
	nnodes = 0;
}

uint64_t inode_lookup(uint64_t parent, const char *name, const struct stat *st,
		      int *err)
{
	struct node *p, *n;
	uint64_t ino = 0;

	pthread_mutex_lock(&table_lock);
	p = find_ino_locked(parent);
	if (!p) {
		*err = -ENOENT;
		goto out;
	}
	n = find_name_locked(parent, name);
	if (n && ((n->type && n->type != (st->st_mode & S_IFMT)) ||
		  (n->bino && (n->bino != st->st_ino ||
			       n->bdev != st->st_dev)))) {
		/* the name now means another object: give it a new id */
		name_remove_locked(n);
		node_maybe_free_locked(n);
		n = NULL;
	}
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n || !(n->name = strdup(name))) {
			free(n);
			*err = -ENOMEM;
			goto out;
		}
		n->ino = next_ino++;
		n->parent = p;
		p->refs++;
		n->ino_next = *ino_slot(n->ino);
		*ino_slot(n->ino) = n;
		name_insert_locked(n);
		nnodes++;
		maybe_grow_locked();
	}
	n->type = st->st_mode & S_IFMT;
	n->bino = st->st_ino;
	n->bdev = st->st_dev;
	n->nlookup++;
	ino = n->ino;
out:
	pthread_mutex_unlock(&table_lock);
	return ino;
}

void inode_forget(uint64_t ino, uint64_t count)
{
	struct node *n;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	if (n && n != root) {
		n->nlookup = count > n->nlookup ? 0 : n->nlookup - count;
		node_maybe_free_locked(n);
	}
	pthread_mutex_unlock(&table_lock);
}

static char *path_locked(struct node *n, const char *child, int *err)
{
	size_t len = child ? strlen(child) + 1 : 0;
	char *buf, *p;

	for (struct node *w = n; w != root; w = w->parent) {
		if (!w->attached) {
			*err = -ESTALE;
			return NULL;
		}
		len += strlen(w->name) + 1;
	}
	buf = malloc(len + 2);
	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	p = buf + len + 1;
	*p = '\0';
	if (child) {
		size_t l = strlen(child);

		p -= l;
		memcpy(p, child, l);
		*--p = '/';
	}
	for (struct node *w = n; w != root; w = w->parent) {
		size_t l = strlen(w->name);

		p -= l;
		memcpy(p, w->name, l);
		*--p = '/';
	}
	if (p == buf + len + 1)
		*--p = '/';
	memmove(buf, p, strlen(p) + 1);
	return buf;
}

char *inode_path(uint64_t ino, int *err)
{
	struct node *n;
	char *path = NULL;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	if (!n)
		*err = -ENOENT;
	else
		path = path_locked(n, NULL, err);
	pthread_mutex_unlock(&table_lock);
	return path;
}

char *inode_child_path(uint64_t parent, const char *name, int *err)
{
	struct node *n;
	char *path = NULL;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(parent);
	if (!n)
		*err = -ENOENT;
	else
		path = path_locked(n, name, err);
	pthread_mutex_unlock(&table_lock);
	return path;
}

void inode_unlink(uint64_t parent, const char *name)
{
	struct node *n;

	pthread_mutex_lock(&table_lock);
	n = find_name_locked(parent, name);
	if (n) {
		name_remove_locked(n);
		node_maybe_free_locked(n);
	}
	pthread_mutex_unlock(&table_lock);
}

/*
 * Give a detached node a new parent and name (consumed).  Returns the old
 * parent if it lost a reference, for the caller to release once every
 * move of the operation is done.
 */
static struct node *node_place_locked(struct node *n, struct node *np,
				      char *name)
{
	struct node *op = n->parent;

	free(n->name);
	n->name = name;
	n->parent = np;
	np->refs++;
	name_insert_locked(n);
	op->refs--;
	return op;
}

void inode_rename(uint64_t oldparent, const char *oldname, uint64_t newparent,
		  const char *newname, unsigned flags)
{
	struct node *src, *dst, *np, *op, *rel1 = NULL, *rel2 = NULL;
	char *n1 = strdup(newname), *n2 = strdup(oldname);

	pthread_mutex_lock(&table_lock);
	src = find_name_locked(oldparent, oldname);
	dst = find_name_locked(newparent, newname);
	np = find_ino_locked(newparent);
	op = find_ino_locked(oldparent);
	if (src)
		name_remove_locked(src);
	if (dst && dst != src)
		name_remove_locked(dst);
	if (!n1 || !n2 || !np || !op) {
		/* cannot mirror it: both names stay detached and the next
		 * lookups create fresh nodes */
		rel1 = src;
		rel2 = dst;
		goto out;
	}
	if (src) {
		rel1 = node_place_locked(src, np, n1);
		n1 = NULL;
	}
	if (dst && dst != src) {
		if (flags & RENAME_EXCHANGE) {
			rel2 = node_place_locked(dst, op, n2);
			n2 = NULL;
		} else {
			rel2 = dst;	/* replaced: only open files keep it */
		}
	}
out:
	if (rel1)
		node_maybe_free_locked(rel1);
	if (rel2)
		node_maybe_free_locked(rel2);
	pthread_mutex_unlock(&table_lock);
	free(n1);
	free(n2);
}

bool inode_cache_still_valid(uint64_t ino, const struct stat *st)
{
	struct node *n;
	bool valid = false;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	if (n && n->stamped && n->size == st->st_size &&
	    n->mtime.tv_sec == st->st_mtim.tv_sec &&
	    n->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	    n->ctime.tv_sec == st->st_ctim.tv_sec &&
	    n->ctime.tv_nsec == st->st_ctim.tv_nsec)
		valid = true;
	pthread_mutex_unlock(&table_lock);
	return valid;
}

void inode_cache_stamp(uint64_t ino, const struct stat *st)
{
	struct node *n;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	if (n) {
		n->stamped = true;
		n->size = st->st_size;
		n->mtime = st->st_mtim;
		n->ctime = st->st_ctim;
	}
	pthread_mutex_unlock(&table_lock);
}

void inode_cache_invalidate(uint64_t ino)
{
	struct node *n;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	if (n)
		n->stamped = false;
	pthread_mutex_unlock(&table_lock);
}

int inode_handle_add(uint64_t ino, void *h)
{
	struct node_handle *nh = malloc(sizeof(*nh));
	struct node *n;
	int ret = 0;

	if (!nh)
		return -ENOMEM;
	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	if (n) {
		nh->h = h;
		nh->next = n->handles;
		n->handles = nh;
	} else {
		free(nh);
		ret = -ENOENT;
	}
	pthread_mutex_unlock(&table_lock);
	return ret;
}

void inode_handle_del(uint64_t ino, void *h)
{
	struct node_handle **pp, *nh = NULL;
	struct node *n;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	for (pp = n ? &n->handles : NULL; pp && *pp; pp = &(*pp)->next) {
		if ((*pp)->h == h) {
			nh = *pp;
			*pp = nh->next;
			break;
		}
	}
	pthread_mutex_unlock(&table_lock);
	free(nh);
}

void *inode_handle_find(uint64_t ino, void (*get)(void *h))
{
	struct node *n;
	void *h = NULL;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	if (n && n->handles) {
		h = n->handles->h;
		get(h);
	}
	pthread_mutex_unlock(&table_lock);
	return h;
}

bool inode_has_handles(uint64_t ino)
{
	struct node *n;
	bool has;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	has = n && n->handles;
	pthread_mutex_unlock(&table_lock);
	return has;
}

uint64_t inode_find(const char *path)
{
	char buf[4096], *save = NULL, *name;
	struct node *n;
	uint64_t ino;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return 0;
	pthread_mutex_lock(&table_lock);
	n = root;
	for (name = strtok_r(buf, "/", &save); n && name;
	     name = strtok_r(NULL, "/", &save))
		n = find_name_locked(n->ino, name);
	ino = n ? n->ino : 0;
	pthread_mutex_unlock(&table_lock);
	return ino;
}

uint64_t inode_count(void)
{
	uint64_t c;

	pthread_mutex_lock(&table_lock);
	c = nnodes;
	pthread_mutex_unlock(&table_lock);
	return c;
}
