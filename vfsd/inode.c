/* SPDX-License-Identifier: GPL-2.0-or-later */
/* inode.c - the node table (see inode.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "vfsd/inode.h"

struct node_handle {
	void *h;
	struct node_handle *next;
};

struct node;

/* One name a node is known under: (parent, name) -> node. */
struct node_name {
	struct node *node;           /* what the name refers to */
	struct node *parent;         /* holds a ref on it */
	char *name;                  /* owned */
	struct node_name *hash_next; /* chain in by_name */
	struct node_name *next;      /* the node's next name */
};

struct node {
	uint64_t ino;
	struct node_handle *handles; /* open files of this node */
	/*
	 * The names the node is known under, the one a lookup found last
	 * first; paths use the first one that leads to the root.  Only
	 * non-directories have more than one (hard links).  None once
	 * unlinked or replaced (and for the root, which has no name).
	 */
	struct node_name *names;
	uint64_t nlookup; /* kernel references */
	uint64_t refs;    /* names whose parent this node is */
	/* identity of the backend object, to notice a replaced name */
	mode_t type;
	ino_t bino;
	dev_t bdev;
	/* nonzero: the node is in by_key under (space, bdev, bino), the one
	 * node of that backend object (see inode_lookup) */
	uint64_t space;
	/* close-to-open stamp */
	bool stamped;
	struct timespec mtime, ctime;
	off_t size;
	/* what inode_data_seen() saw last */
	bool seen;
	struct timespec seen_mtime, seen_ctime;
	off_t seen_size;
	struct node *ino_next;  /* chain in by_ino */
	struct node *key_next;  /* chain in by_key, while keyed */
	struct node *free_next; /* node_maybe_free_locked's work list */
};

/* Everything below is protected by table_lock. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node **by_ino, **by_key;
static struct node_name **by_name;
static size_t nbuckets; /* a power of two, for all three tables */
static uint64_t nnodes, nnames;
static uint64_t next_ino = INODE_ROOT + 1;
static struct node *root;

/* The three indexes' buckets (their values never leave the table). */
static uint64_t hash_ino(uint64_t ino)
{
	return vfs_hash_u64(ino);
}

static uint64_t hash_name(uint64_t parent, const char *name)
{
	return vfs_hash_str_from(VFS_HASH_FNV_BASIS ^ hash_ino(parent), name);
}

static uint64_t hash_key(uint64_t space, dev_t dev, ino_t ino)
{
	return hash_ino(hash_ino(space ^ (uint64_t)dev) ^ (uint64_t)ino);
}

static struct node **ino_slot(uint64_t ino)
{
	return &by_ino[hash_ino(ino) & (nbuckets - 1)];
}

static struct node_name **name_slot(uint64_t parent, const char *name)
{
	return &by_name[hash_name(parent, name) & (nbuckets - 1)];
}

static struct node **key_slot(uint64_t space, dev_t dev, ino_t ino)
{
	return &by_key[hash_key(space, dev, ino) & (nbuckets - 1)];
}

static struct node *find_ino_locked(uint64_t ino)
{
	struct node *n = *ino_slot(ino);

	while (n && n->ino != ino)
		n = n->ino_next;
	return n;
}

static struct node_name *find_name_locked(uint64_t parent, const char *name)
{
	struct node_name *nm = *name_slot(parent, name);

	while (nm &&
	       !(nm->parent->ino == parent && strcmp(nm->name, name) == 0))
		nm = nm->hash_next;
	return nm;
}

static struct node *find_key_locked(uint64_t space, const struct stat *st)
{
	struct node *n = *key_slot(space, st->st_dev, st->st_ino);

	while (n && !(n->space == space && n->bdev == st->st_dev &&
		      n->bino == st->st_ino))
		n = n->key_next;
	return n;
}

/*
 * Whether the object `st` describes is keyed by its backend inode number:
 * only where the backend's numbers are stable (space != 0), and never for
 * directories, which have one name and may be mount points.
 */
static bool keyable(uint64_t space, const struct stat *st)
{
	return space && st->st_ino && !S_ISDIR(st->st_mode);
}

static void key_remove_locked(struct node *n)
{
	struct node **pp;

	if (!n->space)
		return;
	pp = key_slot(n->space, n->bdev, n->bino);
	while (*pp && *pp != n)
		pp = &(*pp)->key_next;
	if (*pp)
		*pp = n->key_next;
	n->key_next = NULL;
	n->space = 0;
}

static void name_hash_remove_locked(struct node_name *nm)
{
	struct node_name **pp = name_slot(nm->parent->ino, nm->name);

	while (*pp && *pp != nm)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = nm->hash_next;
	nm->hash_next = NULL;
}

static void name_hash_insert_locked(struct node_name *nm)
{
	struct node_name **pp = name_slot(nm->parent->ino, nm->name);

	nm->hash_next = *pp;
	*pp = nm;
}

/*
 * Forget name nm.  Its parent loses a reference and its node maybe its
 * last name; neither is freed here: the caller releases both (by id,
 * node_release_locked) once the operation's other changes are done.
 * A node without names is no longer the one node of its backend object:
 * a new object may get its inode number.
 */
static void name_drop_locked(struct node_name *nm)
{
	struct node *n = nm->node, *p = nm->parent;
	struct node_name **pp = &n->names;

	name_hash_remove_locked(nm);
	while (*pp != nm)
		pp = &(*pp)->next;
	*pp = nm->next;
	p->refs--;
	if (!n->names)
		key_remove_locked(n);
	free(nm->name);
	free(nm);
	nnames--;
}

/* Make nm the name paths of its node go through. */
static void name_to_front_locked(struct node_name *nm)
{
	struct node_name **pp = &nm->node->names;

	while (*pp != nm)
		pp = &(*pp)->next;
	*pp = nm->next;
	nm->next = nm->node->names;
	nm->node->names = nm;
}

/* Add the name (p, name) to n, first or last; name is consumed. */
static void name_add_locked(struct node *n, struct node *p, char *name,
			    struct node_name *nm, bool first)
{
	struct node_name **pp = &n->names;

	nm->node = n;
	nm->parent = p;
	nm->name = name;
	nm->next = NULL;
	p->refs++;
	while (*pp && !first)
		pp = &(*pp)->next;
	nm->next = *pp;
	*pp = nm;
	name_hash_insert_locked(nm);
	nnames++;
}

/* Give name nm a new parent and name (consumed); the old parent loses
 * its reference (the caller releases it, as after name_drop_locked). */
static void name_move_locked(struct node_name *nm, struct node *np, char *name)
{
	name_hash_remove_locked(nm);
	nm->parent->refs--;
	free(nm->name);
	nm->parent = np;
	nm->name = name;
	np->refs++;
	name_hash_insert_locked(nm);
}

/* Grow the tables when they get crowded; failure only costs speed. */
static void maybe_grow_locked(void)
{
	size_t nb = nbuckets * 2;
	struct node **bi, **bk;
	struct node_name **bn;

	if (nnodes < nbuckets && nnames < nbuckets)
		return;
	bi = calloc(nb, sizeof(*bi));
	bk = calloc(nb, sizeof(*bk));
	bn = calloc(nb, sizeof(*bn));
	if (!bi || !bk || !bn) {
		free(bi);
		free(bk);
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
			if (n->space) {
				h = hash_key(n->space, n->bdev, n->bino) &
				    (nb - 1);
				n->key_next = bk[h];
				bk[h] = n;
			}
			for (struct node_name *nm = n->names; nm;
			     nm = nm->next) {
				h = hash_name(nm->parent->ino, nm->name) &
				    (nb - 1);
				nm->hash_next = bn[h];
				bn[h] = nm;
			}
		}
	}
	free(by_ino);
	free(by_key);
	free(by_name);
	by_ino = bi;
	by_key = bk;
	by_name = bn;
	nbuckets = nb;
}

static bool node_unused(const struct node *n)
{
	return n != root && n->nlookup == 0 && n->refs == 0;
}

/*
 * Free n if nothing references it, then the parents that its names were
 * the last reference of, and so on up (a work list, not recursion: paths
 * may be thousands of directories deep).
 */
static void node_maybe_free_locked(struct node *n)
{
	struct node *todo = NULL;

	if (n && node_unused(n)) {
		n->free_next = NULL;
		todo = n;
	}
	while (todo) {
		struct node **pp;

		n = todo;
		todo = n->free_next;
		while (n->names) {
			struct node *p = n->names->parent;

			name_drop_locked(n->names);
			if (node_unused(p)) {
				p->free_next = todo;
				todo = p;
			}
		}
		key_remove_locked(n);
		pp = ino_slot(n->ino);
		while (*pp != n)
			pp = &(*pp)->ino_next;
		*pp = n->ino_next;
		while (n->handles) {
			struct node_handle *nh = n->handles;

			n->handles = nh->next;
			free(nh);
		}
		free(n);
		nnodes--;
	}
}

/* Release node `ino` if it is still there and unused: by id, because
 * freeing one node of an operation may have freed another already. */
static void node_release_locked(uint64_t ino)
{
	node_maybe_free_locked(find_ino_locked(ino));
}

int inode_table_init(void)
{
	nbuckets = 1024;
	by_ino = calloc(nbuckets, sizeof(*by_ino));
	by_key = calloc(nbuckets, sizeof(*by_key));
	by_name = calloc(nbuckets, sizeof(*by_name));
	root = calloc(1, sizeof(*root));
	if (!by_ino || !by_key || !by_name || !root) {
		free(root);
		root = NULL;
		inode_table_destroy();
		return -ENOMEM;
	}
	root->ino = INODE_ROOT;
	root->nlookup = 1;
	root->type = S_IFDIR;
	*ino_slot(INODE_ROOT) = root;
	nnodes = 1;
	nnames = 0;
	return 0;
}

void inode_table_destroy(void)
{
	for (size_t i = 0; by_ino && i < nbuckets; i++) {
		struct node *n = by_ino[i], *next;

		for (; n; n = next) {
			next = n->ino_next;
			while (n->names) {
				struct node_name *nm = n->names;

				n->names = nm->next;
				free(nm->name);
				free(nm);
			}
			while (n->handles) {
				struct node_handle *nh = n->handles;

				n->handles = nh->next;
				free(nh);
			}
			free(n);
		}
	}
	free(by_ino);
	free(by_key);
	free(by_name);
	by_ino = by_key = NULL;
	by_name = NULL;
	root = NULL;
	nnodes = nnames = 0;
}

/* Whether node n is the object st describes (as far as n knows it). */
static bool same_object(const struct node *n, const struct stat *st)
{
	if (n->type && n->type != (st->st_mode & S_IFMT))
		return false;
	return !n->bino || (n->bino == st->st_ino && n->bdev == st->st_dev);
}

/*
 * The heart of lookup and link: make (p, name) a name of the node of the
 * object st describes and take one kernel reference on that node.
 * `want`, when not NULL, is the node the caller knows the object by (the
 * source of a link); it is used if it is that object.  The ids of nodes
 * this dropped names of are put in *rel for the caller to release.
 *
 * A name a lookup found becomes the one paths go through: the backend has
 * just confirmed it, while another name may have been removed behind our
 * back since (and would fail every request of the node with ENOENT).  A
 * link's new name goes last: the source name has just worked too, and
 * staying on it spares path-keyed backend caches a switch.
 */
static struct node *attach_locked(struct node *p, const char *name,
				  const struct stat *st, uint64_t space,
				  struct node *want, uint64_t rel[2], int *err)
{
	struct node_name *nm = find_name_locked(p->ino, name), *fresh = NULL;
	struct node *n = NULL;
	char *copy = NULL;

	if (nm && (!same_object(nm->node, st) ||
		   (want && nm->node != want && same_object(want, st)))) {
		/* the name now means another object */
		rel[0] = nm->node->ino;
		name_drop_locked(nm);
		nm = NULL;
	}
	if (nm) {
		n = nm->node;
		if (!want)
			name_to_front_locked(nm);
	} else if (want && same_object(want, st))
		n = want;
	else if (keyable(space, st))
		n = find_key_locked(space, st);
	if (n && !same_object(n, st)) {
		/* the number was reused by an object of another type: the
		 * node keyed by it is not this one's */
		key_remove_locked(n);
		n = NULL;
	}
	if (!nm) {
		copy = strdup(name);
		fresh = calloc(1, sizeof(*fresh));
	}
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (n) {
			n->ino = next_ino++;
			n->ino_next = *ino_slot(n->ino);
			*ino_slot(n->ino) = n;
			nnodes++;
		}
	}
	if (!n || (!nm && (!copy || !fresh))) {
		free(copy);
		free(fresh);
		if (n)
			rel[1] = n->ino; /* a node of its own, unused */
		*err = -ENOMEM;
		return NULL;
	}
	if (!nm)
		name_add_locked(n, p, copy, fresh, !want);
	if (!n->bino) {
		n->type = st->st_mode & S_IFMT;
		n->bino = st->st_ino;
		n->bdev = st->st_dev;
	}
	if (!n->space && keyable(space, st) && !find_key_locked(space, st)) {
		struct node **slot = key_slot(space, st->st_dev, st->st_ino);

		n->space = space;
		n->key_next = *slot;
		*slot = n;
	}
	n->nlookup++;
	maybe_grow_locked();
	return n;
}

static uint64_t lookup_common(uint64_t parent, const char *name,
			      const struct stat *st, uint64_t space,
			      uint64_t want_ino, int *err)
{
	uint64_t rel[2] = {0, 0}, ino = 0;
	struct node *p, *n, *want = NULL;

	pthread_mutex_lock(&table_lock);
	p = find_ino_locked(parent);
	if (want_ino)
		want = find_ino_locked(want_ino);
	if (!p || (want_ino && !want)) {
		*err = -ENOENT;
		goto out;
	}
	n = attach_locked(p, name, st, space, want, rel, err);
	if (n)
		ino = n->ino;
	node_release_locked(rel[0]);
	node_release_locked(rel[1]);
	node_release_locked(parent);
out:
	pthread_mutex_unlock(&table_lock);
	return ino;
}

uint64_t inode_lookup(uint64_t parent, const char *name, const struct stat *st,
		      uint64_t space, int *err)
{
	return lookup_common(parent, name, st, space, 0, err);
}

uint64_t inode_link(uint64_t ino, uint64_t newparent, const char *newname,
		    const struct stat *st, uint64_t space, int *err)
{
	return lookup_common(newparent, newname, st, space, ino, err);
}

bool inode_keyed(uint64_t ino)
{
	struct node *n;
	bool keyed;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	keyed = n && n->space;
	pthread_mutex_unlock(&table_lock);
	return keyed;
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

/*
 * The name of n that paths go through: its first one whose directories
 * all still have their names (a name inside a removed directory leads
 * nowhere), or NULL.  Directories have one name, so only the first step
 * may choose.
 */
static struct node_name *usable_name_locked(const struct node *n)
{
	for (struct node_name *nm = n->names; nm; nm = nm->next) {
		const struct node *w = nm->parent;

		while (w != root && w->names)
			w = w->names->parent;
		if (w == root)
			return nm;
	}
	return NULL;
}

static char *path_locked(struct node *n, const char *child, int *err)
{
	size_t len = child ? strlen(child) + 1 : 0;
	struct node_name *first = NULL;
	char *buf, *p;

	if (n != root) {
		first = usable_name_locked(n);
		if (!first) {
			*err = -ESTALE;
			return NULL;
		}
	}
	for (struct node_name *nm = first; nm;) {
		len += strlen(nm->name) + 1;
		nm = nm->parent == root ? NULL : nm->parent->names;
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
	for (struct node_name *nm = first; nm;) {
		size_t l = strlen(nm->name);

		p -= l;
		memcpy(p, nm->name, l);
		*--p = '/';
		nm = nm->parent == root ? NULL : nm->parent->names;
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

/* Drop the name; with `keep_last`, not a node's only one. */
static void unlink_common(uint64_t parent, const char *name, bool keep_last)
{
	struct node_name *nm;
	uint64_t ino;

	pthread_mutex_lock(&table_lock);
	nm = find_name_locked(parent, name);
	if (nm && !(keep_last && !nm->next && nm->node->names == nm)) {
		ino = nm->node->ino;
		name_drop_locked(nm);
		node_release_locked(ino);
		node_release_locked(parent);
	}
	pthread_mutex_unlock(&table_lock);
}

void inode_unlink(uint64_t parent, const char *name)
{
	unlink_common(parent, name, false);
}

static bool name_kept(const char *name, const char *const *keep)
{
	for (; keep && *keep; keep++)
		if (strcmp(name, *keep) == 0)
			return true;
	return false;
}

int inode_unlink_children(uint64_t parent, const char *const *keep)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	bool nomem = false;

	/* The names are gathered first and dropped one by one afterwards:
	 * dropping one may free nodes and, up the tree, names in the chain
	 * being walked.  (Each bucket is searched, as names are hashed by
	 * parent and name: fine for a mount's removal.) */
	pthread_mutex_lock(&table_lock);
	for (size_t b = 0; b < nbuckets && !nomem; b++) {
		for (struct node_name *nm = by_name[b]; nm && !nomem;
		     nm = nm->hash_next) {
			if (nm->parent->ino != parent ||
			    name_kept(nm->name, keep))
				continue;
			if (n == cap) {
				char **grown;

				cap = cap ? cap * 2 : 16;
				grown = realloc(names, cap * sizeof(*names));
				if (!grown) {
					nomem = true;
					break;
				}
				names = grown;
			}
			names[n] = strdup(nm->name);
			if (names[n])
				n++;
			else
				nomem = true;
		}
	}
	pthread_mutex_unlock(&table_lock);
	for (size_t i = 0; i < n; i++) {
		if (!nomem)
			inode_unlink(parent, names[i]);
		free(names[i]);
	}
	free(names);
	return nomem ? -ENOMEM : 0;
}

int inode_replace_dir(uint64_t parent, const char *name,
		      const char *const *keep)
{
	size_t nkeep = 0;
	struct node_name *nm, *fresh = NULL;
	struct node *p, *old, *n = NULL;
	char *copy = NULL, **kcopy = NULL;
	uint64_t oino;
	int ret = -ENOMEM;

	while (keep && keep[nkeep])
		nkeep++;
	pthread_mutex_lock(&table_lock);
	p = find_ino_locked(parent);
	nm = p ? find_name_locked(parent, name) : NULL;
	if (!nm) {
		/* the kernel never saw it: nothing of it to kill */
		ret = 0;
		goto out;
	}
	old = nm->node;
	copy = strdup(name);
	fresh = calloc(1, sizeof(*fresh));
	kcopy = calloc(nkeep + 1, sizeof(*kcopy));
	n = calloc(1, sizeof(*n));
	if (!copy || !fresh || !kcopy || !n)
		goto out;
	for (size_t k = 0; k < nkeep; k++)
		if (!(kcopy[k] = strdup(keep[k])))
			goto out;
	n->ino = next_ino++;
	n->ino_next = *ino_slot(n->ino);
	*ino_slot(n->ino) = n;
	nnodes++;
	/* no identity: the next lookup's object is this one, whatever it
	 * is, as long as it is a directory */
	n->type = S_IFDIR;
	for (size_t k = 0; k < nkeep; k++) {
		struct node_name *cm = find_name_locked(old->ino, keep[k]);

		if (cm) {
			name_move_locked(cm, n, kcopy[k]);
			kcopy[k] = NULL;
		}
	}
	oino = old->ino;
	name_drop_locked(nm);
	name_add_locked(n, p, copy, fresh, true);
	copy = NULL;
	fresh = NULL;
	n = NULL;
	/* the old node has no name left: what remains beneath it is dead */
	node_release_locked(oino);
	ret = 0;
out:
	pthread_mutex_unlock(&table_lock);
	for (size_t k = 0; kcopy && k < nkeep; k++)
		free(kcopy[k]);
	free(kcopy);
	free(copy);
	free(fresh);
	free(n);
	return ret;
}

void inode_name_gone(uint64_t parent, const char *name)
{
	unlink_common(parent, name, true);
}

void inode_rename(uint64_t oldparent, const char *oldname, uint64_t newparent,
		  const char *newname, unsigned flags)
{
	struct node_name *src, *dst;
	struct node *np, *op;
	uint64_t rel = 0;
	char *n1 = strdup(newname), *n2 = strdup(oldname);

	pthread_mutex_lock(&table_lock);
	src = find_name_locked(oldparent, oldname);
	dst = find_name_locked(newparent, newname);
	np = find_ino_locked(newparent);
	op = find_ino_locked(oldparent);
	if (src && src == dst)
		goto out; /* a name renamed to itself */
	if (!n1 || !n2 || !np || !op) {
		/* cannot mirror it: both names go and the next lookups
		 * find the objects again */
		uint64_t rel2 = dst ? dst->node->ino : 0;

		rel = src ? src->node->ino : 0;
		if (src)
			name_drop_locked(src);
		if (dst)
			name_drop_locked(dst);
		node_release_locked(rel2);
		node_release_locked(rel);
		goto release;
	}
	if (dst && (flags & RENAME_EXCHANGE)) {
		name_move_locked(dst, op, n2);
		n2 = NULL;
	} else if (dst) {
		/* replaced: its node keeps its other names, if any */
		rel = dst->node->ino;
		name_drop_locked(dst);
	}
	if (src) {
		name_move_locked(src, np, n1);
		n1 = NULL;
	}
	node_release_locked(rel);
release:
	node_release_locked(oldparent);
	node_release_locked(newparent);
out:
	pthread_mutex_unlock(&table_lock);
	free(n1);
	free(n2);
}

/* Whether st has this size, mtime and ctime. */
static bool same_stamp(off_t size, const struct timespec *mtime,
		       const struct timespec *ctime, const struct stat *st)
{
	return size == st->st_size && mtime->tv_sec == st->st_mtim.tv_sec &&
	       mtime->tv_nsec == st->st_mtim.tv_nsec &&
	       ctime->tv_sec == st->st_ctim.tv_sec &&
	       ctime->tv_nsec == st->st_ctim.tv_nsec;
}

bool inode_cache_still_valid(uint64_t ino, const struct stat *st)
{
	struct node *n;
	bool valid = false;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	if (n && n->stamped && same_stamp(n->size, &n->mtime, &n->ctime, st))
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

bool inode_data_seen(uint64_t ino, const struct stat *st,
		     void (*each)(void *h, bool changed, void *arg), void *arg)
{
	struct node *n;
	bool changed = false;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	if (n) {
		changed = !n->seen || !same_stamp(n->seen_size, &n->seen_mtime,
						  &n->seen_ctime, st);
		n->seen = true;
		n->seen_size = st->st_size;
		n->seen_mtime = st->st_mtim;
		n->seen_ctime = st->st_ctim;
		for (struct node_handle *nh = n->handles; each && nh;
		     nh = nh->next)
			each(nh->h, changed, arg);
	}
	pthread_mutex_unlock(&table_lock);
	return changed;
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

void inode_handle_each(uint64_t ino, void (*fn)(void *h, void *arg), void *arg)
{
	struct node *n;

	pthread_mutex_lock(&table_lock);
	n = find_ino_locked(ino);
	for (struct node_handle *nh = n ? n->handles : NULL; nh; nh = nh->next)
		fn(nh->h, arg);
	pthread_mutex_unlock(&table_lock);
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
	struct node_name *nm;
	struct node *n;
	uint64_t ino;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return 0;
	pthread_mutex_lock(&table_lock);
	n = root;
	for (name = strtok_r(buf, "/", &save); n && name;
	     name = strtok_r(NULL, "/", &save)) {
		nm = find_name_locked(n->ino, name);
		n = nm ? nm->node : NULL;
	}
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
