/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router_ns.c - the namespace calls on paths (router.h, "Namespace"):
 * each finds its path's mount and applies what is the same for every
 * backend (mount points, virtual directories, EXDEV across mounts, access
 * checks, inode numbers made the mount's) around the backend's call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/path.h"
#include "vfsd/router_internal.h"

/* Creating or removing a name that is (or leads to) a mount point. */
static int check_not_mount_point(const char *path)
{
	if (rt_is_mount_point(path) || (rt_is_virtual_dir(path)))
		return -EBUSY;
	return 0;
}

int router_getattr(const char *path, struct stat *st)
{
	const char *rel;
	struct router_mount *m = rt_resolve(path, &rel);
	int ret = -ENOENT;

	if (m) {
		ret = BCALL(m, ROP_GETATTR, m->ops->getattr(m->vm, rel, st));
		if (ret == 0)
			st->st_ino = mix_ino(m->id, st->st_ino);
		rt_mount_put(m);
		/* a directory leading to a prefix need not exist below */
		if (ret != -ENOENT || !rt_is_virtual_dir(path) ||
		    rt_is_mount_point(path))
			return ret;
	}
	if (rt_is_virtual_dir(path)) {
		rt_virtual_stat(path, st);
		return 0;
	}
	return ret;
}

int router_setattr(const char *path, struct router_file *f,
		   const struct vfs_setattr *sa, struct stat *st)
{
	const char *rel = NULL;
	struct router_mount *m;
	int ret;

	if (f) {
		if (!rt_file_ready(f, ROP_SETATTR, &ret))
			return ret;
		m = f->mount;
		rt_mount_get(m);
		if (path) {
			struct router_mount *pm = rt_resolve(path, &rel);

			if (pm != m)
				rel = NULL;
			if (pm)
				rt_mount_put(pm);
		}
	} else {
		m = rt_route_op(ROP_SETATTR, path, &rel, &ret);
		if (!m)
			return ret;
	}
	/* with a handle, no path (or one on another mount) is NULL: never
	 * "/", which a backend could take for the mount's root */
	ret = BCALL(m, ROP_SETATTR,
		    m->ops->setattr(m->vm, rel, f ? f->vf : NULL, sa, st));
	if (ret == 0)
		st->st_ino = mix_ino(m->id, st->st_ino);
	rt_mount_put(m);
	return ret;
}

int router_access(const char *path, int mask, const struct vfs_cred *cred)
{
	struct stat st;
	unsigned bits;
	int ret = router_getattr(path, &st);

	if (ret < 0 || mask == F_OK)
		return ret;
	if (mask & W_OK) {
		const char *rel;
		struct router_mount *m = rt_resolve(path, &rel);
		bool ro = !m || m->readonly;

		if (m)
			rt_mount_put(m);
		if (ro)
			return -EROFS;
	}
	if (cred->uid == 0) {
		if ((mask & X_OK) && !S_ISDIR(st.st_mode) &&
		    !(st.st_mode & 0111))
			return -EACCES;
		return 0;
	}
	if (cred->uid == st.st_uid)
		bits = (st.st_mode >> 6) & 7;
	else if (cred->gid == st.st_gid)
		bits = (st.st_mode >> 3) & 7;
	else
		bits = st.st_mode & 7;
	if (((mask & R_OK) && !(bits & 4)) || ((mask & W_OK) && !(bits & 2)) ||
	    ((mask & X_OK) && !(bits & 1)))
		return -EACCES;
	return 0;
}

ssize_t router_readlink(const char *path, char *buf, size_t size)
{
	const char *rel;
	struct router_mount *m = rt_resolve(path, &rel);
	ssize_t ret;
	int missing;

	if (!m)
		return rt_is_virtual_dir(path) ? -EINVAL : -ENOENT;
	if (rt_lacks(m, ROP_READLINK, &missing))
		return missing;
	ret = BCALL(m, ROP_READLINK, m->ops->readlink(m->vm, rel, buf, size));
	rt_mount_put(m);
	return ret;
}

/*
 * The mount a call creating `path` goes to (op: its row), with a
 * reference; else NULL with *ret the answer.  A mount point or a directory
 * leading to one already exists.
 */
struct router_mount *rt_route_create(enum rop op, const char *path,
				     const char **rel, int *ret)
{
	*ret = check_not_mount_point(path);
	if (*ret < 0) {
		*ret = *ret == -EBUSY ? -EEXIST : *ret;
		return NULL;
	}
	return rt_route_op(op, path, rel, ret);
}

/* The end of a creating call: the new object's st_ino made the mount's. */
static int created(struct router_mount *m, int ret, struct stat *st)
{
	if (ret == 0)
		st->st_ino = mix_ino(m->id, st->st_ino);
	rt_mount_put(m);
	return ret;
}

/*
 * The mode a creating call hands `m`: the caller's umask is still to be
 * applied (the kernel leaves it to us, FUSE_DONT_MASK).  A backend that
 * creates through a file system with default ACLs applies it itself, so
 * that a default ACL on the parent replaces it as it would there.
 */
mode_t rt_create_mode(const struct router_mount *m, mode_t mode,
		      const struct vfs_cred *cred)
{
	return rt_caps(m) & VFS_CAP_OWN_UMASK ? mode : mode & ~cred->umask;
}

int router_mknod(const char *path, mode_t mode, dev_t rdev,
		 const struct vfs_cred *cred, struct stat *st)
{
	const char *rel;
	int ret;
	struct router_mount *m = rt_route_create(ROP_MKNOD, path, &rel, &ret);
	mode_t type = mode & S_IFMT;

	if (!m)
		return ret;
	/* a FIFO, socket or device where there can be none: no round trip */
	if (type && type != S_IFREG && !(rt_caps(m) & VFS_CAP_MKNOD)) {
		rt_mount_put(m);
		return -EOPNOTSUPP;
	}
	return created(
		m,
		BCALL(m, ROP_MKNOD,
		      m->ops->mknod(m->vm, rel, rt_create_mode(m, mode, cred),
				    rdev, cred, st)),
		st);
}

int router_mkdir(const char *path, mode_t mode, const struct vfs_cred *cred,
		 struct stat *st)
{
	const char *rel;
	int ret;
	struct router_mount *m = rt_route_create(ROP_MKDIR, path, &rel, &ret);

	if (!m)
		return ret;
	return created(
		m,
		BCALL(m, ROP_MKDIR,
		      m->ops->mkdir(m->vm, rel, rt_create_mode(m, mode, cred),
				    cred, st)),
		st);
}

int router_symlink(const char *target, const char *path,
		   const struct vfs_cred *cred, struct stat *st)
{
	const char *rel;
	int ret;
	struct router_mount *m = rt_route_create(ROP_SYMLINK, path, &rel, &ret);

	if (!m)
		return ret;
	return created(m,
		       BCALL(m, ROP_SYMLINK,
			     m->ops->symlink(m->vm, target, rel, cred, st)),
		       st);
}

/* Two paths on one mount, or -EXDEV; refs on the returned mount. */
static struct router_mount *route_pair(const char *a, const char **rela,
				       const char *b, const char **relb,
				       int *err)
{
	struct router_mount *ma, *mb;

	ma = rt_route_rw(a, rela, err);
	if (!ma)
		return NULL;
	mb = rt_route_rw(b, relb, err);
	if (!mb) {
		rt_mount_put(ma);
		return NULL;
	}
	if (ma != mb) {
		rt_mount_put(ma);
		rt_mount_put(mb);
		*err = -EXDEV;
		return NULL;
	}
	rt_mount_put(mb);
	return ma;
}

int router_link(const char *from, const char *to, struct stat *st)
{
	const char *ra, *rb;
	struct router_mount *m;
	int ret = check_not_mount_point(to);

	if (ret < 0)
		return -EEXIST;
	m = route_pair(from, &ra, to, &rb, &ret);
	if (!m || rt_lacks(m, ROP_LINK, &ret))
		return ret;
	return created(m, BCALL(m, ROP_LINK, m->ops->link(m->vm, ra, rb, st)),
		       st);
}

/* The mount a call removing `path` goes to, as rt_route_op; a mount point
 * or a directory leading to one is busy. */
static struct router_mount *route_remove(enum rop op, const char *path,
					 const char **rel, int *ret)
{
	*ret = check_not_mount_point(path);
	if (*ret < 0)
		return NULL;
	return rt_route_op(op, path, rel, ret);
}

int router_unlink(const char *path)
{
	const char *rel;
	int ret;
	struct router_mount *m = route_remove(ROP_UNLINK, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_UNLINK, m->ops->unlink(m->vm, rel));
	rt_mount_put(m);
	return ret;
}

int router_rmdir(const char *path)
{
	const char *rel;
	int ret;
	struct router_mount *m = route_remove(ROP_RMDIR, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_RMDIR, m->ops->rmdir(m->vm, rel));
	rt_mount_put(m);
	return ret;
}

int router_rename(const char *from, const char *to, unsigned flags)
{
	const char *ra, *rb;
	struct router_mount *m;
	int ret;

	if (check_not_mount_point(from) < 0 || check_not_mount_point(to) < 0)
		return -EBUSY;
	m = route_pair(from, &ra, to, &rb, &ret);
	if (!m || rt_lacks(m, ROP_RENAME, &ret))
		return ret;
	if (flags && !(rt_caps(m) & VFS_CAP_RENAME_FLAGS) &&
	    flags != RENAME_NOREPLACE)
		ret = -EINVAL;
	else
		ret = BCALL(m, ROP_RENAME,
			    m->ops->rename(m->vm, ra, rb, flags));
	rt_mount_put(m);
	return ret;
}

int router_clone(const char *from, const char *to, struct vfs_error *err)
{
	const char *ra, *rb;
	struct router_mount *m;
	int ret;

	if (check_not_mount_point(from) < 0 || check_not_mount_point(to) < 0)
		return vfs_error_set(err, EBUSY, "%s or %s is a mount point",
				     from, to);
	m = route_pair(from, &ra, to, &rb, &ret);
	if (!m)
		return vfs_error_set(err, -ret, "%s to %s: %s", from, to,
				     strerror(-ret));
	if (!rt_lacks(m, ROP_CLONE, &ret)) {
		ret = BCALL(m, ROP_CLONE, m->ops->clone(m->vm, ra, rb, err));
		rt_mount_put(m);
	}
	if (ret == -EOPNOTSUPP && !err->msg[0])
		vfs_error_set(err, EOPNOTSUPP,
			      "%s: no server-side copy on this mount", from);
	return ret;
}

int router_statfs(const char *path, struct statvfs *st)
{
	const char *rel;
	struct router_mount *m = rt_resolve(path, &rel);
	int ret;

	if (!m) {
		memset(st, 0, sizeof(*st));
		st->f_bsize = st->f_frsize = 4096;
		st->f_namemax = 255;
		return 0;
	}
	ret = BCALL(m, ROP_STATFS, m->ops->statfs(m->vm, rel, st));
	rt_mount_put(m);
	return ret;
}

ssize_t router_getxattr(const char *path, const char *name, void *buf,
			size_t size)
{
	const char *rel;
	struct router_mount *m = rt_resolve(path, &rel);
	ssize_t ret;

	int missing;

	if (!m)
		return -ENODATA;
	if (rt_lacks(m, ROP_GETXATTR, &missing))
		return missing;
	ret = BCALL(m, ROP_GETXATTR,
		    m->ops->getxattr(m->vm, rel, name, buf, size));
	rt_mount_put(m);
	/* a directory leading to a prefix, not there below: none */
	if (ret == -ENOENT && rt_is_virtual_dir(path))
		ret = -ENODATA;
	return ret;
}

ssize_t router_listxattr(const char *path, char *buf, size_t size)
{
	const char *rel;
	struct router_mount *m = rt_resolve(path, &rel);
	ssize_t ret;

	int missing;

	if (!m)
		return 0;
	if (rt_lacks(m, ROP_LISTXATTR, &missing))
		return missing;
	ret = BCALL(m, ROP_LISTXATTR, m->ops->listxattr(m->vm, rel, buf, size));
	rt_mount_put(m);
	if (ret == -ENOENT && rt_is_virtual_dir(path))
		ret = 0;
	return ret;
}

int router_setxattr(const char *path, const char *name, const void *value,
		    size_t size, int flags)
{
	const char *rel;
	int ret;
	struct router_mount *m = rt_route_op(ROP_SETXATTR, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_SETXATTR,
		    m->ops->setxattr(m->vm, rel, name, value, size, flags));
	rt_mount_put(m);
	return ret;
}

int router_removexattr(const char *path, const char *name)
{
	const char *rel;
	int ret;
	struct router_mount *m = rt_route_op(ROP_REMOVEXATTR, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_REMOVEXATTR, m->ops->removexattr(m->vm, rel, name));
	rt_mount_put(m);
	return ret;
}
