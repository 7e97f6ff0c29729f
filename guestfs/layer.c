/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * layer.c - the image store's stacking layer (layer.h): a table that
 * forwards every call to the instance beneath, with the locks
 * (layer_lock.c), the write fence (layer_key.c), the hidden record
 * directories and the image attributes added.
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
#include "guestfs/layer_internal.h"
#include "guestfs/lock.h"
#include "guestfs/lower.h"
#include "lib/log.h"

/* ---- Instance ------------------------------------------------------------ */

static void layer_unmount(struct vfs_mount *m)
{
	struct layer_mount *lm = layer_m(m);

	glock_detach(&lm->lower);
	lm->lops->unmount(lm->lower.m);
	pthread_mutex_destroy(&lm->names_lock);
	pthread_mutex_destroy(&lm->qos_lock);
	for (size_t i = 0; i < sizeof(lm->qos_none) / sizeof(*lm->qos_none);
	     i++)
		free(lm->qos_none[i].dir);
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
		ret = layer_fence_begin(lm, lf, path, &fc);
		if (ret < 0)
			return ret;
	}
	ret = lm->lops->setattr(lm->lower.m, path, lf ? lf->lower : NULL, sa,
				st);
	return (int)layer_fence_end(&fc, ret);
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

	int ret;

	if (reserved(lm, from) || reserved(lm, to))
		return -EPERM;
	ret = lm->lops->link(lm->lower.m, from, to, st);
	/* the new name is the same file: its stored limits too */
	if (ret == 0 && layer_qos_sidecar(lm))
		layer_qos_linked(lm, from, to);
	return ret;
}

static int layer_unlink(struct vfs_mount *m, const char *path)
{
	struct layer_mount *lm = layer_m(m);
	int ret;

	if (reserved(lm, path))
		return -EPERM;
	ret = lm->lops->unlink(lm->lower.m, path);
	if (ret == 0 && !lm->lower.by_ino)
		layer_names_unlink(lm, path);
	if (ret == 0 && layer_qos_sidecar(lm))
		layer_qos_moved(lm, path, NULL);
	return ret;
}

static int layer_rmdir(struct vfs_mount *m, const char *path)
{
	struct layer_mount *lm = layer_m(m);
	int ret;

	if (reserved(lm, path))
		return -EPERM;
	ret = lm->lops->rmdir(lm->lower.m, path);
	/* records and sidecars of files gone with the directory's entries
	 * must not keep it from going */
	if (ret == -ENOTEMPTY && lm->lower.shared) {
		layer_qos_rmdir_cleanup(lm, path);
		glock_rmdir_cleanup(&lm->lower, path);
		ret = lm->lops->rmdir(lm->lower.m, path);
	}
	/* the directory's own attributes go with it, as a file's do */
	if (ret == 0 && layer_qos_sidecar(lm))
		layer_qos_moved(lm, path, NULL);
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
		layer_names_rename(lm, from, to, flags);
	/* an exchange swaps the sidecars through a third name */
	if (ret == 0 && layer_qos_sidecar(lm)) {
		layer_qos_renamed(lm, from, to);
		if (flags & RENAME_EXCHANGE) {
			char *tmp;

			if (asprintf(&tmp, "%s.vfsd-swap~", from) >= 0) {
				layer_qos_moved(lm, from, tmp);
				layer_qos_moved(lm, to, from);
				layer_qos_moved(lm, tmp, to);
				free(tmp);
			}
		} else {
			layer_qos_moved(lm, from, to);
		}
	}
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

	if (strcmp(name, GLOCK_DIR) == 0 || strcmp(name, LAYER_QOS_DIR) == 0)
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
	if (layer_qos_name(name) && layer_qos_sidecar(lm))
		return layer_qos_get(lm, path, name, buf, size);
	if (!lm->lops->getxattr)
		return -EOPNOTSUPP;
	return lm->lops->getxattr(lm->lower.m, path, name, buf, size);
}

static ssize_t layer_listxattr(struct vfs_mount *m, const char *path, char *buf,
			       size_t size)
{
	struct layer_mount *lm = layer_m(m);
	ssize_t n = 0, q;

	if (reserved(lm, path))
		return -EPERM;
	if (lm->lops->listxattr) {
		n = lm->lops->listxattr(lm->lower.m, path, buf, size);
		if (n < 0 || !layer_qos_sidecar(lm))
			return n;
	} else if (!layer_qos_sidecar(lm)) {
		return 0; /* the router's answer for none (backend.h) */
	}
	q = layer_qos_list(lm, path, size ? buf + n : NULL,
			   size ? size - (size_t)n : 0);
	return q < 0 ? q : n + q;
}

static int layer_setxattr(struct vfs_mount *m, const char *path,
			  const char *name, const void *value, size_t size,
			  int flags)
{
	struct layer_mount *lm = layer_m(m);

	if (reserved(lm, path) || image_xattr(name))
		return -EPERM; /* read-only facts about the image */
	if (layer_qos_name(name) && layer_qos_sidecar(lm))
		return lm->lower.readonly ? -EROFS
					  : layer_qos_set(lm, path, name, value,
							  size, flags);
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
	if (layer_qos_name(name) && layer_qos_sidecar(lm))
		return lm->lower.readonly
			       ? -EROFS
			       : layer_qos_set(lm, path, name, NULL, 0, 0);
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
		ino = layer_name_get(lm, path);
	else if (st)
		ino = (uint64_t)st->st_ino;
	lf = calloc(1, sizeof(*lf));
	if (!lf || (!lm->lower.by_ino && !ino)) {
		if (ino)
			layer_name_put(lm, ino);
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
		ret = layer_fence_begin(lm, NULL, path, &fc);
		if (ret < 0)
			return ret;
	}
	ret = (int)layer_fence_end(
		&fc, lm->lops->open(lm->lower.m, path, flags, &in));
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
	ssize_t ret = layer_fence_begin(lf->lm, lf, NULL, &fc);

	if (ret < 0)
		return ret;
	ret = lf->lm->lops->write(lf->lower, buf, size, off);
	return layer_fence_end(&fc, ret);
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
	int ret = layer_fence_begin(lf->lm, lf, NULL, &fc);

	if (ret < 0)
		return ret;
	ret = lf->lm->lops->fallocate(lf->lower, mode, off, len);
	return (int)layer_fence_end(&fc, ret);
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
	ssize_t ret = layer_fence_begin(lo->lm, lo, NULL, &fc);

	if (ret < 0)
		return ret;
	ret = lo->lm->lops->copy_range(li->lower, off_in, lo->lower, off_out,
				       len, flags);
	return layer_fence_end(&fc, ret);
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

		if (layer_file_key(lf, NULL, &k) == 0)
			glock_release_fh(&k, lf);
	}
	ret = lm->lops->release(lf->lower);
	if (!lm->lower.by_ino)
		layer_name_put(lm, atomic_load(&lf->ino));
	free(lf);
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
	VFS_STACK_MEMBER(removexattr), VFS_STACK_MEMBER(listxattr),
	VFS_STACK_MEMBER(getlk),       VFS_STACK_MEMBER(setlk),
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
	pthread_mutex_init(&lm->qos_lock, NULL);
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
