/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lower.h - the image store's own calls on the instance beneath its layer
 * (guestfs/layer.h): lease records, image headers.  They take the router's
 * place for the store's own files: a call past the thread's deadline
 * (backends/callctx.h) is not sent, a read-only mount is not written,
 * and a member the backend lacks gets an answer instead of a NULL call.
 * Paths are the mount's own (backend.h); nothing here is counted in the
 * mount's statistics or seen by the daemon's node table.
 */
#ifndef VFSD_GUESTFS_LOWER_H
#define VFSD_GUESTFS_LOWER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "backends/backend.h"

/* Where the store's files live, and what it may do there.  Set when the
 * layer is made, then only read. */
struct gfs_lower {
	struct vfs_mount *m; /* the instance beneath, the layer's */
	bool shared;         /* VFS_CAP_SHARED: locks are published */
	bool readonly;       /* the mount is read-only: nothing written */
	bool by_ino;         /* VFS_CAP_STABLE_INO: st_ino names a file */
	/* the mount was removed by force with files open (set once, by
	 * image_layer_revoke): its locks lapse, no new ones are granted */
	atomic_bool revoked;
};

int lower_getattr(const struct gfs_lower *l, const char *path, struct stat *st);
int lower_mkdir(const struct gfs_lower *l, const char *path, mode_t mode);
int lower_unlink(const struct gfs_lower *l, const char *path);
int lower_rmdir(const struct gfs_lower *l, const char *path);
int lower_rename(const struct gfs_lower *l, const char *from, const char *to);

/* *f is owned by the caller until lower_release(). */
int lower_create(const struct gfs_lower *l, const char *path, int flags,
		 mode_t mode, struct vfs_file **f);
int lower_open(const struct gfs_lower *l, const char *path, int flags,
	       struct vfs_file **f);
ssize_t lower_read(const struct gfs_lower *l, struct vfs_file *f, void *buf,
		   size_t size, off_t off);
ssize_t lower_write(const struct gfs_lower *l, struct vfs_file *f,
		    const void *buf, size_t size, off_t off);
int lower_fgetattr(const struct gfs_lower *l, struct vfs_file *f,
		   struct stat *st);
int lower_flush(const struct gfs_lower *l, struct vfs_file *f);
int lower_fsync(const struct gfs_lower *l, struct vfs_file *f);
void lower_release(const struct gfs_lower *l, struct vfs_file *f);

/* Call fill for every entry of directory `path` ("." and ".." too when
 * the backend lists them).  0 or -errno. */
int lower_list(const struct gfs_lower *l, const char *path, vfs_fill_fn fill,
	       void *ctx);

#endif /* VFSD_GUESTFS_LOWER_H */
