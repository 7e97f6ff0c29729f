/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * backend.c - the list of built-in backends and helpers shared by them.
 * Adding a backend: one extern line and one table entry here, one source
 * line in backends/meson.build.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/fault.h"

extern const struct vfs_backend_ops local_ops;
extern const struct vfs_backend_ops nfs_ops;
extern const struct vfs_backend_ops sftp_ops;

const struct vfs_backend_ops *const backend_all[] = {
	&local_ops,
	&nfs_ops,
	&sftp_ops,
	NULL,
};

const struct vfs_backend_ops *backend_find(const char *scheme)
{
	/* fault+X is X's table (and X's options): the router wraps the
	 * instance in the test-only fault backend (fault.h) */
	if (fault_scheme(scheme))
		scheme += sizeof(FAULT_SCHEME_PREFIX) - 1;
	for (size_t i = 0; backend_all[i]; i++)
		if (strcmp(backend_all[i]->name, scheme) == 0)
			return backend_all[i];
	return NULL;
}

int vfs_dirbuf_add(struct vfs_dirbuf *db, const char *name,
		   const struct stat *st, unsigned flags)
{
	struct vfs_dirbuf_ent *e;

	if (db->n == db->cap) {
		size_t cap = db->cap ? db->cap * 2 : 32;
		struct vfs_dirbuf_ent *grown =
			realloc(db->ents, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		db->ents = grown;
		db->cap = cap;
	}
	e = &db->ents[db->n];
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	e->st = *st;
	e->flags = flags;
	db->n++;
	return 0;
}

bool vfs_dirbuf_has(const struct vfs_dirbuf *db, const char *name)
{
	for (size_t i = 0; i < db->n; i++)
		if (strcmp(db->ents[i].name, name) == 0)
			return true;
	return false;
}

int vfs_dirbuf_fill(const struct vfs_dirbuf *db, off_t off, vfs_fill_fn fill,
		    void *ctx)
{
	if (off < 0)
		return -EINVAL;
	for (size_t i = off; i < db->n; i++) {
		const struct vfs_dirbuf_ent *e = &db->ents[i];

		if (fill(ctx, e->name, &e->st, e->flags, (off_t)i + 1))
			break;
	}
	return 0;
}

void vfs_dirbuf_clear(struct vfs_dirbuf *db)
{
	for (size_t i = 0; i < db->n; i++)
		free(db->ents[i].name);
	free(db->ents);
	memset(db, 0, sizeof(*db));
}

struct vfs_scratch_set {
	void *p[VFS_SCRATCH_SLOTS];
	size_t cap[VFS_SCRATCH_SLOTS];
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v)
{
	struct vfs_scratch_set *s = v;

	for (int i = 0; i < VFS_SCRATCH_SLOTS; i++)
		free(s->p[i]);
	free(s);
}

static void scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

void *vfs_scratch(enum vfs_scratch_slot slot, size_t size)
{
	struct vfs_scratch_set *s;

	pthread_once(&scratch_once, scratch_init);
	s = pthread_getspecific(scratch_key);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || pthread_setspecific(scratch_key, s) != 0) {
			free(s);
			return NULL;
		}
	}
	if (size > s->cap[slot]) {
		void *p;

		if (posix_memalign(&p, 4096, size))
			return NULL;
		free(s->p[slot]);
		s->p[slot] = p;
		s->cap[slot] = size;
	}
	return s->p[slot];
}
