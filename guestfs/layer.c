/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * layer.c - the image store's stacking layer (layer.h): a table that
 * forwards every call to the instance beneath, with the locks, the write
 * fence, the hidden record directories and the image attributes added.
 * A member the instance beneath lacks is left out of the layer's own
 * table too, so that the router gives its usual answer for it; only the
 * extended attribute calls stay, for the image attributes are the
 * layer's own on every mount (readable, and refused with EPERM).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/callctx.h"
#include "backends/stack.h"
#include "guestfs/image.h"
#include "guestfs/layer.h"
#include "guestfs/lock.h"
#include "guestfs/lower.h"
#include "lib/log.h"

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

static struct layer_mount *layer_m(struct vfs_mount *m)
{
	return (struct layer_mount *)m;
}

static struct layer_file *layer_f(struct vfs_file *f)
{
	return (struct layer_file *)f;
}

/* On shared mounts the record directories are the daemon's own. */
static bool reserved(const struct layer_mount *lm, const char *path)
{
	return lm->lower.shared && path && glock_reserved(path);
}

static bool image_xattr(const char *name)
{
	return strncmp(name, IMAGE_XATTR_PREFIX, strlen(IMAGE_XATTR_PREFIX)) ==
	       0;
}

/* ---- keys and the write fence ------------------------------------------ */

/* The number of the file open as `path`, counted for one more open file
 * (name_put): a new one when no open file has that name; 0 on ENOMEM. */
static uint64_t name_get(struct layer_mount *lm, const char *path)
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

static void name_put(struct layer_mount *lm, uint64_t id)
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
static uint64_t name_find(struct layer_mount *lm, const char *path)
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
static void names_rename(struct layer_mount *lm, const char *from,
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
static void names_unlink(struct layer_mount *lm, const char *path)
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
static int file_key(struct layer_file *lf, const char *path,
		    struct glock_key *k)
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
static int path_key(struct layer_mount *lm, const char *path,
		    struct glock_key *k)
{
	struct stat st;
	int ret;

	*k = (struct glock_key){.lower = &lm->lower, .path = path};
	if (!lm->lower.by_ino) {
		k->ino = name_find(lm, path);
		return k->ino ? 0 : -ENOENT;
	}
	ret = lower_getattr(&lm->lower, path, &st);
	if (ret < 0)
		return ret;
	k->ino = (uint64_t)st.st_ino;
	return 0;
}

/* A change of a file's data in progress (see glock_write_begin). */
struct fence {
	struct glock_key k;
	int held;
	struct vfs_callctx saved;
};

/* Ends the fence; a change that missed the lease's deadline is an EIO
 * like any write after the lease, whatever the backend called it. */
static long fence_end(struct fence *fc, long ret)
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
static int fence_begin(struct layer_mount *lm, struct layer_file *lf,
		       const char *path, struct fence *fc)
{
	int64_t deadline;
	int ret;

	fc->held = 0;
	if (!lm->lower.shared || !glock_any(&lm->lower))
		return 0;
	ret = lf ? file_key(lf, NULL, &fc->k) : path_key(lm, path, &fc->k);
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
			fence_end(fc, 0);
			return -EIO;
		}
	}
	return 0;
}

/* ---- Instance ------------------------------------------------------------ */

static void layer_unmount(struct vfs_mount *m)
{
	struct layer_mount *lm = layer_m(m);

	glock_detach(&lm->lower);
	lm->lops->unmount(lm->lower.m);
	pthread_mutex_destroy(&lm->names_lock);
	free(lm);
}

static int layer_statfs(struct vfs_mount *m, const char *path,
			struct statvfs *st)
{
	struct layer_mount *lm = layer_m(m);

	return lm->lops->statfs(lm->lower.m, path, st);
}

static const char *layer_state(struct vfs_mount *m)
{
	struct layer_mount *lm = layer_m(m);

	return lm->lops->state(lm->lower.m);
}

/* ---- Namespace ----------------------------------------------------------- */

static int layer_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path))
		return -EPERM;
	return lm->lops->getattr(lm->lower.m, path, st);
}

static int layer_setattr(struct vfs_mount *m, const char *path,
			 struct vfs_file *f, const struct vfs_setattr *sa,
			 struct stat *st)
{
	struct layer_mount *lm = layer_m(m);
	struct layer_file *lf = f ? layer_f(f) : NULL;
	struct fence fc = {0};
	int ret;

	if (reserved(lm, path))
		return -EPERM;
	if (sa->valid & VFS_SET_SIZE) {
		ret = fence_begin(lm, lf, path, &fc);
		if (ret < 0)
			return ret;
	}
	ret = lm->lops->setattr(lm->lower.m, path, lf ? lf->lower : NULL, sa,
				st);
	return (int)fence_end(&fc, ret);
}

static ssize_t layer_readlink(struct vfs_mount *m, const char *path, char *buf,
			      size_t size)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path))
		return -EPERM;
	return lm->lops->readlink(lm->lower.m, path, buf, size);
}

static int layer_mknod(struct vfs_mount *m, const char *path, mode_t mode,
		       dev_t rdev, const struct vfs_cred *cred, struct stat *st)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path))
		return -EPERM;
	return lm->lops->mknod(lm->lower.m, path, mode, rdev, cred, st);
}

static int layer_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
		       const struct vfs_cred *cred, struct stat *st)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path))
		return -EPERM;
	return lm->lops->mkdir(lm->lower.m, path, mode, cred, st);
}

static int layer_symlink(struct vfs_mount *m, const char *target,
			 const char *path, const struct vfs_cred *cred,
			 struct stat *st)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path))
		return -EPERM;
	return lm->lops->symlink(lm->lower.m, target, path, cred, st);
}

static int layer_link(struct vfs_mount *m, const char *from, const char *to,
		      struct stat *st)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, from) || reserved(lm, to))
		return -EPERM;
	return lm->lops->link(lm->lower.m, from, to, st);
}

static int layer_unlink(struct vfs_mount *m, const char *path)
{
	struct layer_mount *lm = layer_m(m);
	int ret;

	if (reserved(lm, path))
		return -EPERM;
	ret = lm->lops->unlink(lm->lower.m, path);
	if (ret == 0 && !lm->lower.by_ino)
		names_unlink(lm, path);
	return ret;
}

static int layer_rmdir(struct vfs_mount *m, const char *path)
{
	struct layer_mount *lm = layer_m(m);
	int ret;

	if (reserved(lm, path))
		return -EPERM;
	ret = lm->lops->rmdir(lm->lower.m, path);
	/* records of files gone with the directory's entries must not keep
	 * it from going */
	if (ret == -ENOTEMPTY && glock_rmdir_cleanup(&lm->lower, path) == 0)
		ret = lm->lops->rmdir(lm->lower.m, path);
	return ret;
}

static int layer_rename(struct vfs_mount *m, const char *from, const char *to,
			unsigned flags)
{
	struct layer_mount *lm = layer_m(m);
	int ret;

	if (reserved(lm, from) || reserved(lm, to))
		return -EPERM;
	ret = lm->lops->rename(lm->lower.m, from, to, flags);
	if (ret == 0 && !lm->lower.by_ino)
		names_rename(lm, from, to, flags);
	return ret;
}

/* Our directory streams are the instance's beneath, passed through. */
static int layer_opendir(struct vfs_mount *m, const char *path,
			 struct vfs_dir **out)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path))
		return -EPERM;
	return lm->lops->opendir(lm->lower.m, path, out);
}

struct hide_ctx {
	vfs_fill_fn fill;
	void *ctx;
};

static int hide_fill(void *p, const char *name, const struct stat *st,
		     unsigned flags, off_t next)
{
	struct hide_ctx *h = p;

	if (strcmp(name, GLOCK_DIR) == 0)
		return 0;
	return h->fill(h->ctx, name, st, flags, next);
}

static int layer_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
			 vfs_fill_fn fill, void *ctx)
{
	struct layer_mount *lm = layer_m(m);
	struct hide_ctx h = {.fill = fill, .ctx = ctx};

	if (!lm->lower.shared)
		return lm->lops->readdir(lm->lower.m, d, off, fill, ctx);
	return lm->lops->readdir(lm->lower.m, d, off, hide_fill, &h);
}

static void layer_releasedir(struct vfs_mount *m, struct vfs_dir *d)
{
	struct layer_mount *lm = layer_m(m);

	lm->lops->releasedir(lm->lower.m, d);
}

/* image facts are made up from the file's header, not stored; the rest
 * is the instance's, when it has extended attributes at all */
static ssize_t layer_getxattr(struct vfs_mount *m, const char *path,
			      const char *name, void *buf, size_t size)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path))
		return -EPERM;
	if (image_xattr(name))
		return image_getxattr(&lm->lower, path, name, buf, size);
	if (!lm->lops->getxattr)
		return -EOPNOTSUPP;
	return lm->lops->getxattr(lm->lower.m, path, name, buf, size);
}

static ssize_t layer_listxattr(struct vfs_mount *m, const char *path, char *buf,
			       size_t size)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path))
		return -EPERM;
	return lm->lops->listxattr(lm->lower.m, path, buf, size);
}

static int layer_setxattr(struct vfs_mount *m, const char *path,
			  const char *name, const void *value, size_t size,
			  int flags)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path) || image_xattr(name))
		return -EPERM; /* read-only facts about the image */
	if (!lm->lops->setxattr)
		return -EOPNOTSUPP; /* the router's answer (backend.h) */
	return lm->lops->setxattr(lm->lower.m, path, name, value, size, flags);
}

static int layer_removexattr(struct vfs_mount *m, const char *path,
			     const char *name)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path) || image_xattr(name))
		return -EPERM;
	if (!lm->lops->removexattr)
		return -EOPNOTSUPP;
	return lm->lops->removexattr(lm->lower.m, path, name);
}

/* ---- Open files ---------------------------------------------------------- */

/*
 * Wrap the handle `in` beneath, opened as `path`, into *out (owned by the
 * caller until release()).  On ENOMEM `in` is released.
 */
static int file_new(struct layer_mount *lm, const char *path,
		    struct vfs_file *in, const struct stat *st,
		    struct vfs_file **out)
{
	struct layer_file *lf;
	uint64_t ino = 0;

	/* the router sets ->mount of the handle it sees, ours */
	in->mount = lm->lower.m;
	if (!lm->lower.by_ino)
		ino = name_get(lm, path);
	else if (st)
		ino = (uint64_t)st->st_ino;
	lf = calloc(1, sizeof(*lf));
	if (!lf || (!lm->lower.by_ino && !ino)) {
		if (ino)
			name_put(lm, ino);
		free(lf);
		lm->lops->release(in);
		return -ENOMEM;
	}
	lf->lm = lm;
	lf->lower = in;
	atomic_init(&lf->ino, ino);
	lf->base.flags = in->flags;
	lf->base.uncached = in->uncached;
	atomic_init(&lf->base.write_through, atomic_load(&in->write_through));
	/* writes under a cross-host lock must pass the fence: no host fd to
	 * write to behind our back on shared mounts */
	lf->base.host_fd = lm->lower.shared ? -1 : in->host_fd;
	*out = &lf->base;
	return 0;
}

static int layer_create(struct vfs_mount *m, const char *path, int flags,
			mode_t mode, const struct vfs_cred *cred,
			struct vfs_file **out, struct stat *st)
{
	struct layer_mount *lm = layer_m(m);
	struct vfs_file *in;
	int ret;

	if (reserved(lm, path))
		return -EPERM;
	ret = lm->lops->create(lm->lower.m, path, flags, mode, cred, &in, st);
	return ret < 0 ? ret : file_new(lm, path, in, st, out);
}

static int layer_open(struct vfs_mount *m, const char *path, int flags,
		      struct vfs_file **out)
{
	struct layer_mount *lm = layer_m(m);
	struct fence fc = {0};
	struct vfs_file *in;
	int ret;

	if (reserved(lm, path))
		return -EPERM;
	/* an open that truncates changes the data: fenced like a write */
	if (flags & O_TRUNC) {
		ret = fence_begin(lm, NULL, path, &fc);
		if (ret < 0)
			return ret;
	}
	ret = (int)fence_end(&fc,
			     lm->lops->open(lm->lower.m, path, flags, &in));
	return ret < 0 ? ret : file_new(lm, path, in, NULL, out);
}

static ssize_t layer_read(struct vfs_file *f, void *buf, size_t size, off_t off)
{
	struct layer_file *lf = layer_f(f);

	return lf->lm->lops->read(lf->lower, buf, size, off);
}

static ssize_t layer_write(struct vfs_file *f, const void *buf, size_t size,
			   off_t off)
{
	struct layer_file *lf = layer_f(f);
	struct fence fc;
	ssize_t ret = fence_begin(lf->lm, lf, NULL, &fc);

	if (ret < 0)
		return ret;
	ret = lf->lm->lops->write(lf->lower, buf, size, off);
	return fence_end(&fc, ret);
}

/* Every open through FUSE asks this at once (its cache policy): the key
 * is then known before any lock, close or release needs it, so those need
 * no round trip that could fail (a close that cannot find its key would
 * keep its owner's locks). */
static int layer_fgetattr(struct vfs_file *f, struct stat *st)
{
	struct layer_file *lf = layer_f(f);
	int ret = lf->lm->lops->fgetattr(lf->lower, st);

	if (ret == 0 && lf->lm->lower.by_ino && !atomic_load(&lf->ino))
		atomic_store(&lf->ino, (uint64_t)st->st_ino);
	return ret;
}

static int layer_flush(struct vfs_file *f)
{
	struct layer_file *lf = layer_f(f);

	return lf->lm->lops->flush(lf->lower);
}

static int layer_fsync(struct vfs_file *f, bool datasync)
{
	struct layer_file *lf = layer_f(f);

	return lf->lm->lops->fsync(lf->lower, datasync);
}

static int layer_fallocate(struct vfs_file *f, int mode, off_t off, off_t len)
{
	struct layer_file *lf = layer_f(f);
	struct fence fc;
	int ret = fence_begin(lf->lm, lf, NULL, &fc);

	if (ret < 0)
		return ret;
	ret = lf->lm->lops->fallocate(lf->lower, mode, off, len);
	return (int)fence_end(&fc, ret);
}

static off_t layer_lseek(struct vfs_file *f, off_t off, int whence)
{
	struct layer_file *lf = layer_f(f);

	return lf->lm->lops->lseek(lf->lower, off, whence);
}

static ssize_t layer_copy_range(struct vfs_file *in, off_t off_in,
				struct vfs_file *out, off_t off_out, size_t len,
				unsigned flags)
{
	struct layer_file *li = layer_f(in), *lo = layer_f(out);
	struct fence fc;
	ssize_t ret = fence_begin(lo->lm, lo, NULL, &fc);

	if (ret < 0)
		return ret;
	ret = lo->lm->lops->copy_range(li->lower, off_in, lo->lower, off_out,
				       len, flags);
	return fence_end(&fc, ret);
}

static int layer_clone(struct vfs_mount *m, const char *from, const char *to,
		       struct vfs_error *err)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, from) || reserved(lm, to))
		return vfs_error_set(err, EPERM, "%s: reserved name",
				     reserved(lm, from) ? from : to);
	return lm->lops->clone(lm->lower.m, from, to, err);
}

static int layer_release(struct vfs_file *f)
{
	struct layer_file *lf = layer_f(f);
	struct layer_mount *lm = lf->lm;
	int ret;

	/* OFD locks end with their open file: the kernel sends no unlock.
	 * A file that set one knows its key (getlk/setlk found it). */
	if ((!lm->lower.by_ino || atomic_load(&lf->ino)) &&
	    glock_any(&lm->lower)) {
		struct glock_key k;

		if (file_key(lf, NULL, &k) == 0)
			glock_release_fh(&k, lf);
	}
	ret = lm->lops->release(lf->lower);
	if (!lm->lower.by_ino)
		name_put(lm, atomic_load(&lf->ino));
	free(lf);
	return ret;
}

/* ---- Locks --------------------------------------------------------------- */

static struct glock to_glock(const struct vfs_lock *vl, struct layer_file *lf)
{
	return (struct glock){
		.kind = vl->kind == VFS_LOCK_FLOCK ? GLOCK_FLOCK : GLOCK_POSIX,
		.type = vl->type,
		.start = vl->start,
		.end = vl->end,
		.owner = vl->owner,
		.pid = vl->pid,
		.fh = lf,
	};
}

static int layer_getlk(struct vfs_file *f, const char *path,
		       struct vfs_lock *vl)
{
	struct layer_file *lf = layer_f(f);
	struct glock lk = to_glock(vl, lf);
	struct glock_key k;
	int ret = file_key(lf, path, &k);

	if (ret == 0)
		ret = glock_test(&k, &lk);
	if (ret < 0)
		return ret;
	vl->type = lk.type;
	if (lk.type != F_UNLCK) {
		vl->start = lk.start;
		vl->end = lk.end;
		vl->pid = lk.pid;
	}
	return 0;
}

static int layer_setlk(struct vfs_file *f, const char *path,
		       const struct vfs_lock *vl, bool wait,
		       bool (*interrupted)(void *), void *arg)
{
	struct layer_file *lf = layer_f(f);
	struct glock lk = to_glock(vl, lf);
	struct glock_key k;
	int ret;

	bool all =
		vl->type == F_UNLCK && vl->start == 0 && vl->end == INT64_MAX;

	/* every close(2) drops its owner's locks: with none on this mount,
	 * there is nothing to look up */
	if (all && !glock_any(&lf->lm->lower))
		return 0;
	ret = file_key(lf, path, &k);
	if (ret < 0)
		return ret;
	if (all) {
		/* only an owner that holds some: nothing is published for
		 * the others' closes */
		glock_release_owner(&k, lk.owner, lk.kind);
		return 0;
	}
	ret = glock_set(&k, &lk, wait, interrupted, arg);
	/* under a cross-host lock the file writes through from now on,
	 * before its first write too */
	if (ret == 0 && glock_write_check(&k) > 0)
		atomic_store(&lf->lower->write_through, true);
	return ret;
}

/*
 * The template of every instance's table (image_layer_wrap() copies it).
 * There is no mount: the layer is made over another backend's instance,
 * never from a URL of its own.
 */
static const struct vfs_backend_ops layer_ops = {
	.unmount = layer_unmount,
	.statfs = layer_statfs,
	.state = layer_state,
	.getattr = layer_getattr,
	.setattr = layer_setattr,
	.readlink = layer_readlink,
	.mknod = layer_mknod,
	.mkdir = layer_mkdir,
	.symlink = layer_symlink,
	.link = layer_link,
	.unlink = layer_unlink,
	.rmdir = layer_rmdir,
	.rename = layer_rename,
	.opendir = layer_opendir,
	.readdir = layer_readdir,
	.releasedir = layer_releasedir,
	.getxattr = layer_getxattr,
	.listxattr = layer_listxattr,
	.setxattr = layer_setxattr,
	.removexattr = layer_removexattr,
	.create = layer_create,
	.open = layer_open,
	.read = layer_read,
	.write = layer_write,
	.fgetattr = layer_fgetattr,
	.flush = layer_flush,
	.fsync = layer_fsync,
	.fallocate = layer_fallocate,
	.lseek = layer_lseek,
	.copy_range = layer_copy_range,
	.clone = layer_clone,
	.release = layer_release,
	.getlk = layer_getlk,
	.setlk = layer_setlk,
};

/*
 * Kept whatever the instance beneath has: the layer answers the
 * user.vfsd.image.* attributes itself, and keeps the locks itself.
 */
static const size_t layer_keep[] = {
	VFS_STACK_MEMBER(getxattr),    VFS_STACK_MEMBER(setxattr),
	VFS_STACK_MEMBER(removexattr), VFS_STACK_MEMBER(getlk),
	VFS_STACK_MEMBER(setlk),
};

int image_layer_wrap(struct vfs_mount **vm, bool readonly, const char *what,
		     struct vfs_error *err)
{
	struct vfs_mount *in = *vm;
	struct layer_mount *lm = calloc(1, sizeof(*lm));

	if (!lm) {
		in->ops->unmount(in);
		return vfs_error_set(err, ENOMEM, "%s: out of memory", what);
	}
	pthread_mutex_init(&lm->names_lock, NULL);
	lm->lops = in->ops;
	lm->lower = (struct gfs_lower){
		.m = in,
		.shared = in->caps & VFS_CAP_SHARED,
		.readonly = readonly,
		.by_ino = in->caps & VFS_CAP_STABLE_INO,
	};
	vfs_stack_ops(&lm->ops, &layer_ops, lm->lops, layer_keep,
		      sizeof(layer_keep) / sizeof(*layer_keep));
	lm->ops.name = lm->lops->name;
	lm->ops.opts = lm->lops->opts;

	lm->base.ops = &lm->ops;
	lm->base.lower = in;
	/* host fds only where nothing needs fencing (file_new) */
	lm->base.caps = in->caps;
	if (lm->lower.shared)
		lm->base.caps &= ~VFS_CAP_PASSTHROUGH;
	lm->base.attr_timeout = in->attr_timeout;
	lm->base.entry_timeout = in->entry_timeout;
	*vm = &lm->base;
	return 0;
}

int image_layer_probe(struct vfs_mount *vm, const char *path,
		      struct image_info *info)
{
	struct layer_mount *lm;

	if (vm->ops->unmount != layer_unmount)
		return -EOPNOTSUPP;
	lm = layer_m(vm);
	if (reserved(lm, path))
		return -EPERM;
	return image_probe(&lm->lower, path, info);
}

void image_layer_revoke(struct vfs_mount *vm)
{
	struct layer_mount *lm;

	if (vm->ops->unmount != layer_unmount)
		return;
	lm = layer_m(vm);
	atomic_store(&lm->lower.revoked, true);
	glock_revoke(&lm->lower);
}
