/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * links.c - one inode number for the names of one hard-linked file.
 *
 * SFTP v3 carries no inode numbers, so st_ino is a hash of the path and
 * the names of one file show different ones; tar --compare then reports
 * "Not linked to" and a second rsync -aH links every extra name again.
 * What this mount links itself (link(2), hardlink@openssh.com) it
 * remembers while it runs: the names form a group with the inode number
 * of its first name and a link count of its names, kept up through
 * unlink and rename.  Names linked before, by another host or on the
 * server are not known here and keep their own numbers.
 *
 * A group can go stale behind the mount's back (another host replaces a
 * name).  Names of one file show the same attributes at all times, so a
 * stat through the mount checks the name against another of its group
 * (sftp_lstat in attr.c) and a name whose attributes differ leaves the
 * group: claiming two files are one would make tools link or skip them.
 * Listings never give a grouped name's attributes (dir.c), so that the
 * kernel asks for them, checked.
 *
 * A group's link count is in the attributes cached for each of its
 * names, so every change of the group drops them from the cache.
 *
 * Locking: links->lock, taken before the cache's lock, which never calls
 * back here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sftp/internal.h"
#include "lib/hash.h"

#define SFTP_LINK_BUCKETS 1024

struct sftp_link;

struct sftp_lgroup {
	ino_t ino;
	int names;
	struct sftp_link *members; /* its names' entries */
};

struct sftp_link {
	char *path; /* mount-relative (owned) */
	struct sftp_lgroup *g;
	struct sftp_link *next;            /* in its hash bucket */
	struct sftp_link *gnext, **gpprev; /* in g->members */
};

struct sftp_links {
	struct remote_cache *cache; /* borrowed */
	pthread_mutex_t lock;
	size_t count;
	struct sftp_link *bucket[SFTP_LINK_BUCKETS];
};

struct sftp_links *sftp_links_new(struct remote_cache *cache)
{
	struct sftp_links *l = calloc(1, sizeof(*l));

	if (l) {
		l->cache = cache;
		pthread_mutex_init(&l->lock, NULL);
	}
	return l;
}

/* The link count changed: no name of g keeps its cached attributes. */
static void sftp_links_uncache_locked(struct sftp_links *l,
				      const struct sftp_lgroup *g)
{
	for (struct sftp_link *e = g->members; e; e = e->gnext)
		remote_cache_invalidate(l->cache, e->path);
}

/* Free an entry out of its bucket; out of its group too, the group with
 * its last name. */
static void sftp_link_free(struct sftp_link *e)
{
	*e->gpprev = e->gnext;
	if (e->gnext)
		e->gnext->gpprev = e->gpprev;
	if (--e->g->names == 0)
		free(e->g);
	free(e->path);
	free(e);
}

void sftp_links_free(struct sftp_links *l)
{
	if (!l)
		return;
	for (size_t b = 0; b < SFTP_LINK_BUCKETS; b++)
		while (l->bucket[b]) {
			struct sftp_link *e = l->bucket[b];

			l->bucket[b] = e->next;
			sftp_link_free(e);
		}
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static struct sftp_link **sftp_link_slot(struct sftp_links *l, const char *path)
{
	struct sftp_link **pp =
		&l->bucket[vfs_hash_str_from(VFS_HASH_FNV_BASIS_SHORT, path) %
			   SFTP_LINK_BUCKETS];

	while (*pp && strcmp((*pp)->path, path) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Take path's entry out (called with the lock). */
static void sftp_link_drop_locked(struct sftp_links *l, const char *path)
{
	struct sftp_link **pp = sftp_link_slot(l, path), *e = *pp;

	if (!e)
		return;
	sftp_links_uncache_locked(l, e->g);
	*pp = e->next;
	l->count--;
	sftp_link_free(e);
}

/* Put an entry for path into group g (called with the lock): 0 or
 * -ENOMEM. */
static int sftp_link_add_locked(struct sftp_links *l, const char *path,
				struct sftp_lgroup *g)
{
	struct sftp_link *e, **pp = sftp_link_slot(l, path);

	if (*pp && (*pp)->g == g)
		return 0;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return -ENOMEM;
	}
	sftp_link_drop_locked(l, path);
	pp = sftp_link_slot(l, path);
	e->g = g;
	g->names++;
	e->gnext = g->members;
	if (e->gnext)
		e->gnext->gpprev = &e->gnext;
	e->gpprev = &g->members;
	g->members = e;
	*pp = e;
	l->count++;
	return 0;
}

void sftp_links_linked(struct sftp_links *l, const char *from, const char *to,
		       ino_t from_ino)
{
	struct sftp_link *e;
	struct sftp_lgroup *g;

	pthread_mutex_lock(&l->lock);
	e = *sftp_link_slot(l, from);
	if (e) {
		g = e->g;
	} else {
		g = calloc(1, sizeof(*g));
		if (!g)
			goto out;
		g->ino = from_ino;
		if (sftp_link_add_locked(l, from, g) < 0) {
			free(g);
			goto out;
		}
	}
	/* a group of one left by a failed add is harmless */
	sftp_link_add_locked(l, to, g);
	sftp_links_uncache_locked(l, g);
out:
	pthread_mutex_unlock(&l->lock);
}

void sftp_links_gone(struct sftp_links *l, const char *path)
{
	pthread_mutex_lock(&l->lock);
	if (l->count)
		sftp_link_drop_locked(l, path);
	pthread_mutex_unlock(&l->lock);
}

void sftp_links_moved(struct sftp_links *l, const char *from, const char *to)
{
	size_t flen = strlen(from);
	struct sftp_link *moved = NULL;

	pthread_mutex_lock(&l->lock);
	if (!l->count)
		goto out;
	/* what `to` named is gone; then every name at or below `from` */
	sftp_link_drop_locked(l, to);
	for (size_t b = 0; b < SFTP_LINK_BUCKETS; b++) {
		struct sftp_link **pp = &l->bucket[b];

		while (*pp) {
			struct sftp_link *e = *pp;

			if (strncmp(e->path, from, flen) != 0 ||
			    (e->path[flen] != '\0' && e->path[flen] != '/')) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			l->count--;
			e->next = moved;
			moved = e;
		}
	}
	while (moved) {
		struct sftp_link *e = moved;
		size_t tlen = strlen(to), rest = strlen(e->path) - flen;
		char *p = malloc(tlen + rest + 1);

		moved = e->next;
		if (!p) {
			/* forgotten: the name keeps its own number */
			sftp_link_free(e);
			continue;
		}
		memcpy(p, to, tlen);
		memcpy(p + tlen, e->path + flen, rest + 1);
		free(e->path);
		e->path = p;
		{
			struct sftp_link **pp = sftp_link_slot(l, p);

			e->next = NULL;
			*pp = e;
			l->count++;
		}
	}
out:
	pthread_mutex_unlock(&l->lock);
}

bool sftp_links_get(struct sftp_links *l, const char *path, ino_t *ino,
		    nlink_t *nlink, char **other)
{
	struct sftp_link *e;
	bool found = false;

	if (other)
		*other = NULL;
	pthread_mutex_lock(&l->lock);
	if (!l->count)
		goto out;
	e = *sftp_link_slot(l, path);
	if (!e)
		goto out;
	found = true;
	*ino = e->g->ino;
	*nlink = (nlink_t)e->g->names;
	if (other && e->g->names > 1) {
		/* another name of the group, to check this one against */
		struct sftp_link *o = e->g->members;

		if (o == e)
			o = e->gnext;
		if (o)
			*other = strdup(o->path);
	}
out:
	pthread_mutex_unlock(&l->lock);
	return found;
}
