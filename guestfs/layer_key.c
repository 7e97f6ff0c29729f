/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * layer_key.c - how the image store's layer names a file to the lock
 * table (struct glock_key: the backend's inode number where it is stable,
 * else a number of the layer's own that follows the open file's name),
 * and the write fence every change of a file's data passes on shared
 * mounts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guestfs/layer_internal.h"

/* The number of the file open as `path`, counted for one more open file
 * (name_put): a new one when no open file has that name; 0 on ENOMEM. */
uint64_t layer_name_get(struct layer_mount *lm, const char *path)
{
	struct layer_name *n;
	uint64_t id = 0;

	pthread_mutex_lock(&lm->names_lock);
	for (n = lm->names; n; n = n->next)
		if (n->path && strcmp(n->path, path) == 0)
			break;
	if (!n && (n = calloc(1, sizeof(*n)))) {
		n->path = strdup(path);
		if (n->path) {
			n->id = ++lm->last_id;
			n->next = lm->names;
			lm->names = n;
		} else {
			free(n);
			n = NULL;
		}
	}
	if (n) {
		n->refs++;
		id = n->id;
	}
	pthread_mutex_unlock(&lm->names_lock);
	return id;
}

void layer_name_put(struct layer_mount *lm, uint64_t id)
{
	pthread_mutex_lock(&lm->names_lock);
	for (struct layer_name **pp = &lm->names; *pp; pp = &(*pp)->next) {
		struct layer_name *n = *pp;

		if (n->id != id)
			continue;
		if (--n->refs == 0) {
			*pp = n->next;
			free(n->path);
			free(n);
		}
		break;
	}
	pthread_mutex_unlock(&lm->names_lock);
}

/* The number of the open file named `path`, or 0 when none is open. */
static uint64_t layer_name_find(struct layer_mount *lm, const char *path)
{
	uint64_t id = 0;

	pthread_mutex_lock(&lm->names_lock);
	for (struct layer_name *n = lm->names; n && !id; n = n->next)
		if (n->path && strcmp(n->path, path) == 0)
			id = n->id;
	pthread_mutex_unlock(&lm->names_lock);
	return id;
}

/* What follows `dir` in `path` ("" for dir itself, "/..." below it), or
 * NULL when path is neither. */
static const char *name_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strncmp(path, dir, n) != 0 || (path[n] && path[n] != '/'))
		return NULL;
	return path + n;
}

/* A rename made through the layer: the names of open files follow it;
 * what it replaced has no name any more. */
void layer_names_rename(struct layer_mount *lm, const char *from,
			const char *to, unsigned flags)
{
	pthread_mutex_lock(&lm->names_lock);
	for (struct layer_name *n = lm->names; n; n = n->next) {
		const char *rest, *dest;
		char *moved = NULL;

		if (!n->path)
			continue;
		if ((rest = name_under(n->path, from)))
			dest = to;
		else if ((rest = name_under(n->path, to)))
			dest = flags & RENAME_EXCHANGE ? from : NULL;
		else
			continue;
		/* out of memory: the name is forgotten, and a later open of
		 * it is another file to the lock table */
		if (dest && asprintf(&moved, "%s%s", dest, rest) < 0)
			moved = NULL;
		free(n->path);
		n->path = moved;
	}
	pthread_mutex_unlock(&lm->names_lock);
}

/* An unlink made through the layer: the open file has no name now. */
void layer_names_unlink(struct layer_mount *lm, const char *path)
{
	pthread_mutex_lock(&lm->names_lock);
	for (struct layer_name *n = lm->names; n; n = n->next) {
		if (n->path && strcmp(n->path, path) == 0) {
			free(n->path);
			n->path = NULL;
		}
	}
	pthread_mutex_unlock(&lm->names_lock);
}

/* The lock table's key for lf, whose name now is `path` (NULL: none). */
int layer_file_key(struct layer_file *lf, const char *path, struct glock_key *k)
{
	const struct gfs_lower *l = &lf->lm->lower;

	*k = (struct glock_key){
		.lower = l, .ino = atomic_load(&lf->ino), .path = path};
	if (!l->by_ino)
		return 0;
	if (!k->ino) {
		struct stat st;
		int ret = lower_fgetattr(l, lf->lower, &st);

		if (ret < 0)
			return ret;
		k->ino = (uint64_t)st.st_ino;
		atomic_store(&lf->ino, k->ino);
	}
	return 0;
}

/* The key of the file named `path`, for a change made by name: -ENOENT
 * without stable inode numbers when no open file has that name (none can
 * carry a lock then). */
int layer_path_key(struct layer_mount *lm, const char *path,
		   struct glock_key *k)
{
	struct stat st;
	int ret;

	*k = (struct glock_key){.lower = &lm->lower, .path = path};
	if (!lm->lower.by_ino) {
		k->ino = layer_name_find(lm, path);
		return k->ino ? 0 : -ENOENT;
	}
	ret = lower_getattr(&lm->lower, path, &st);
	if (ret < 0)
		return ret;
	k->ino = (uint64_t)st.st_ino;
	return 0;
}

/* Ends the fence; a change that missed the lease's deadline is an EIO
 * like any write after the lease, whatever the backend called it. */
long layer_fence_end(struct fence *fc, long ret)
{
	if (fc->held <= 0)
		return ret;
	if (ret < 0 && vfs_call_expired())
		ret = -EIO;
	vfs_callctx_pop(fc->saved);
	glock_write_end(&fc->k);
	return ret;
}

/*
 * Before a change of the data of lf (or, when lf is NULL, of the file
 * `path`): -EIO when its cross-host locks are lost; under one, the change
 * carries the lease's deadline and lf writes through from now on, so
 * nothing lingers in a write-behind queue past the lease.  Only shared
 * mounts with some lock taken pay for a key.
 */
int layer_fence_begin(struct layer_mount *lm, struct layer_file *lf,
		      const char *path, struct fence *fc)
{
	int64_t deadline;
	int ret;

	fc->held = 0;
	if (!lm->lower.shared || !glock_any(&lm->lower))
		return 0;
	ret = lf ? layer_file_key(lf, NULL, &fc->k)
		 : layer_path_key(lm, path, &fc->k);
	if (ret < 0)
		/* no such file: the change fails by itself, unfenced */
		return ret == -ENOENT ? 0 : ret;
	fc->held = glock_write_begin(&fc->k, &deadline);
	if (fc->held < 0)
		return -EIO; /* lease lost: see lock.h */
	if (fc->held > 0) {
		if (lf)
			atomic_store(&lf->lower->write_through, true);
		fc->saved = vfs_callctx_push(deadline, false);
		if (vfs_call_expired()) {
			layer_fence_end(fc, 0);
			return -EIO;
		}
	}
	return 0;
}
