/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * layer_internal.h - what the files of the image store's layer share:
 * its instance and open file, the keys that name a file to the lock table
 * and the write fence (layer_key.c), the lock calls (layer_lock.c).  The
 * forwarding itself and the instance's life are layer.c's.  Not for use
 * outside guestfs/layer*.c.
 */
#ifndef VFSD_GUESTFS_LAYER_INTERNAL_H
#define VFSD_GUESTFS_LAYER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/callctx.h"
#include "guestfs/image.h"
#include "guestfs/lock.h"
#include "guestfs/lower.h"

/*
 * A file open through the layer on a backend without stable inode
 * numbers (SFTP), by its name now: the number that keys it in the lock
 * table.  Every open of one name shares it, and it follows the file
 * through renames and unlinks made through the layer, as the FUSE node
 * of the file does: a lock taken before a rename keeps others out under
 * the new name, and covers the writes through descriptors opened by it.
 */
struct layer_name {
	struct layer_name *next;
	char *path;    /* its name now, owned; NULL once unlinked or
			* replaced (its open files keep the number) */
	uint64_t id;   /* never 0, never reused within the instance */
	unsigned refs; /* open files */
};

struct layer_mount {
	struct vfs_mount base;      /* first */
	struct vfs_backend_ops ops; /* this instance's table */
	const struct vfs_backend_ops *lops;
	struct gfs_lower lower;     /* lower.m: owned, unmounted with us */
	pthread_mutex_t names_lock; /* protects names and last_id */
	struct layer_name *names;   /* without lower.by_ino only */
	uint64_t last_id;
	pthread_mutex_t qos_lock; /* one sidecar change at a time, and
				   * qos_none (layer_qos.c) */
	/* directories recently seen without sidecars, so that the open of
	 * each file there does not ask the server again (layer_qos.c) */
	struct layer_qos_none {
		char *dir;     /* owned, or NULL */
		int64_t until; /* CLOCK_MONOTONIC ns */
	} qos_none[16];
	unsigned qos_none_next;
	/* sidecars written through this layer so far: a directory found
	 * missing is noted only if none was written while it was asked */
	uint64_t qos_writes;
};

/* An open file.  ino is its key (lock.h): the layer's number for it
 * without stable inode numbers, set at open; else the backend's st_ino,
 * cached at the first fgetattr (0: not asked yet; several threads may
 * fill it at once, with the same value). */
struct layer_file {
	struct vfs_file base; /* first */
	struct layer_mount *lm;
	struct vfs_file *lower; /* owned until release() */
	_Atomic uint64_t ino;
};

static inline struct layer_mount *layer_m(struct vfs_mount *m)
{
	return (struct layer_mount *)m;
}

static inline struct layer_file *layer_f(struct vfs_file *f)
{
	return (struct layer_file *)f;
}

/* layer_qos.c: user.vfsd.qos.* kept beside the files where the backend
 * keeps no extended attributes (shared mounts only). */
#define LAYER_QOS_DIR ".vfsd-qos"
bool layer_qos_sidecar(const struct layer_mount *lm);
bool layer_qos_name(const char *name);
bool layer_qos_reserved(const char *path);
ssize_t layer_qos_get(struct layer_mount *lm, const char *path,
		      const char *name, void *buf, size_t size);
/* the sidecar's names, appended nowhere: into buf (size 0: the size) */
ssize_t layer_qos_list(struct layer_mount *lm, const char *path, char *buf,
		       size_t size);
/* set (value != NULL) or remove one; flags XATTR_CREATE/REPLACE */
int layer_qos_set(struct layer_mount *lm, const char *path, const char *name,
		  const void *value, size_t size, int flags);
/* the file `from` was renamed to `to` (NULL: unlinked) through the layer */
void layer_qos_moved(struct layer_mount *lm, const char *from, const char *to);
/* After a rename of from to to through the layer (any kind, before
 * layer_qos_moved): forget that sidecar directories at or below either
 * were seen missing. */
void layer_qos_renamed(struct layer_mount *lm, const char *from,
		       const char *to);
/* A hard link `to` of `from` was made: it gets a copy of from's stored
 * attributes (an own copy: a change through one name later is that
 * name's, as the sidecars are per name). */
void layer_qos_linked(struct layer_mount *lm, const char *from, const char *to);
/* before an rmdir that found only hidden entries left */
void layer_qos_rmdir_cleanup(struct layer_mount *lm, const char *dir);

/* On shared mounts the record directories, and the sidecars of
 * layer_qos.c, are the daemon's own. */
static inline bool reserved(const struct layer_mount *lm, const char *path)
{
	return lm->lower.shared && path &&
	       (glock_reserved(path) || layer_qos_reserved(path));
}

static inline bool image_xattr(const char *name)
{
	return strncmp(name, IMAGE_XATTR_PREFIX, strlen(IMAGE_XATTR_PREFIX)) ==
	       0;
}

/* A change of a file's data in progress (see glock_write_begin). */
struct fence {
	struct glock_key k;
	int held;
	struct vfs_callctx saved;
};

/* layer_key.c: the names of open files without stable inode numbers
 * (names_lock), the lock table's keys and the write fence. */
uint64_t layer_name_get(struct layer_mount *lm, const char *path);
void layer_name_put(struct layer_mount *lm, uint64_t id);
void layer_names_rename(struct layer_mount *lm, const char *from,
			const char *to, unsigned flags);
void layer_names_unlink(struct layer_mount *lm, const char *path);
int layer_file_key(struct layer_file *lf, const char *path,
		   struct glock_key *k);
int layer_path_key(struct layer_mount *lm, const char *path,
		   struct glock_key *k);
int layer_fence_begin(struct layer_mount *lm, struct layer_file *lf,
		      const char *path, struct fence *fc);
long layer_fence_end(struct fence *fc, long ret);

/* layer_lock.c: the getlk and setlk members of the layer's table. */
int layer_getlk(struct vfs_file *f, const char *path, struct vfs_lock *vl);
int layer_setlk(struct vfs_file *f, const char *path, const struct vfs_lock *vl,
		bool wait, bool (*interrupted)(void *), void *arg);

#endif /* VFSD_GUESTFS_LAYER_INTERNAL_H */
