/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router_ops.c - the backend contract as data (rt_rops[], described with
 * enum rop in router_internal.h) and the checks every router call makes
 * against it before its backend is asked: a table lacking a mandatory
 * member is refused at mount, a mutating call on a read-only mount gets
 * -EROFS, a member a backend lacks gets its row's answer.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lib/path.h"
#include "vfsd/router_internal.h"

#define ROW(op, miss, mut, st)                                                 \
	{                                                                      \
#op, offsetof(struct vfs_backend_ops, op), (miss), (mut), (st) \
	}

const struct rop_row rt_rops[ROP_COUNT] = {
	[ROP_UNMOUNT] = ROW(unmount, MANDATORY, false, VOP_COUNT),
	[ROP_STATFS] = ROW(statfs, MANDATORY, false, VOP_STATFS),
	[ROP_GETATTR] = ROW(getattr, MANDATORY, false, VOP_GETATTR),
	[ROP_SETATTR] = ROW(setattr, -EPERM, true, VOP_SETATTR),
	[ROP_READLINK] = ROW(readlink, -EINVAL, false, VOP_READLINK),
	[ROP_MKNOD] = ROW(mknod, -EPERM, true, VOP_MKNOD),
	[ROP_MKDIR] = ROW(mkdir, -EPERM, true, VOP_MKDIR),
	[ROP_SYMLINK] = ROW(symlink, -EPERM, true, VOP_SYMLINK),
	[ROP_LINK] = ROW(link, -EPERM, true, VOP_LINK),
	[ROP_UNLINK] = ROW(unlink, -EPERM, true, VOP_UNLINK),
	[ROP_RMDIR] = ROW(rmdir, -EPERM, true, VOP_RMDIR),
	[ROP_RENAME] = ROW(rename, -EPERM, true, VOP_RENAME),
	[ROP_OPENDIR] = ROW(opendir, MANDATORY, false, VOP_OPENDIR),
	[ROP_READDIR] = ROW(readdir, MANDATORY, false, VOP_READDIR),
	[ROP_RELEASEDIR] = ROW(releasedir, MANDATORY, false, VOP_COUNT),
	[ROP_GETXATTR] = ROW(getxattr, -EOPNOTSUPP, false, VOP_GETXATTR),
	[ROP_LISTXATTR] = ROW(listxattr, 0, false, VOP_LISTXATTR),
	[ROP_SETXATTR] = ROW(setxattr, -EOPNOTSUPP, true, VOP_SETXATTR),
	[ROP_REMOVEXATTR] =
		ROW(removexattr, -EOPNOTSUPP, true, VOP_REMOVEXATTR),
	[ROP_CREATE] = ROW(create, -EPERM, true, VOP_CREATE),
	[ROP_OPEN] = ROW(open, MANDATORY, false, VOP_OPEN),
	[ROP_READ] = ROW(read, MANDATORY, false, VOP_READ),
	[ROP_WRITE] = ROW(write, -EROFS, true, VOP_WRITE),
	[ROP_FGETATTR] = ROW(fgetattr, MANDATORY, false, VOP_GETATTR),
	[ROP_FLUSH] = ROW(flush, 0, false, VOP_FLUSH),
	[ROP_FSYNC] = ROW(fsync, 0, false, VOP_FSYNC),
	[ROP_FALLOCATE] = ROW(fallocate, -EOPNOTSUPP, true, VOP_FALLOCATE),
	[ROP_LSEEK] = ROW(lseek, EMULATED, false, VOP_LSEEK),
	[ROP_COPY_RANGE] = ROW(copy_range, EMULATED, true, VOP_COPY_RANGE),
	[ROP_CLONE] = ROW(clone, -EOPNOTSUPP, true, VOP_CLONE),
	[ROP_RELEASE] = ROW(release, MANDATORY, false, VOP_RELEASE),
	[ROP_GETLK] = ROW(getlk, -ENOLCK, false, VOP_COUNT),
	[ROP_SETLK] = ROW(setlk, -ENOLCK, false, VOP_COUNT),
};

/* Whether `ops` has the member of op. */
bool rt_ops_has(const struct vfs_backend_ops *ops, enum rop op)
{
	void (*fn)(void);

	memcpy(&fn, (const char *)ops + rt_rops[op].member, sizeof(fn));
	return fn != NULL;
}

/*
 * What a mount can do beyond the mandatory members, by name, in this
 * order: an optional member it has (op) or a capability bit (cap).
 */
static const struct {
	const char *name;
	enum rop op; /* ROP_COUNT: by cap */
	uint32_t cap;
} cap_names[] = {
	{"symlink", ROP_SYMLINK, 0},
	{"hardlink", ROP_LINK, 0},
	{"special_files", ROP_COUNT, VFS_CAP_MKNOD},
	{"rename_exchange", ROP_COUNT, VFS_CAP_RENAME_FLAGS},
	{"xattr", ROP_LISTXATTR, 0},
	{"fallocate", ROP_FALLOCATE, 0},
	{"punch_hole", ROP_COUNT, VFS_CAP_PUNCH_HOLE},
	{"seek_data", ROP_LSEEK, 0},
	{"copy_range", ROP_COPY_RANGE, 0},
	{"clone", ROP_CLONE, 0},
	{"stable_fsync", ROP_COUNT, VFS_CAP_STABLE_FSYNC},
	{"stable_ino", ROP_COUNT, VFS_CAP_STABLE_INO},
	{"shared", ROP_COUNT, VFS_CAP_SHARED},
	{"acl_umask", ROP_COUNT, VFS_CAP_OWN_UMASK},
};

size_t router_caps(const struct router_view *v, const char **names, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++) {
		const struct vfs_backend_ops *ops =
			cap_names[i].op == ROP_LISTXATTR && v->backend_ops
				? v->backend_ops
				: v->ops;
		bool has = cap_names[i].op == ROP_COUNT
				   ? (v->caps & cap_names[i].cap) != 0
				   : rt_ops_has(ops, cap_names[i].op);

		if (has && n < max)
			names[n++] = cap_names[i].name;
	}
	return n;
}

int router_ops_check(const struct vfs_backend_ops *ops, bool by_url,
		     struct vfs_error *err)
{
	const char *name = ops->name ? ops->name : "(unnamed)";

	if (!ops->name)
		return vfs_error_set(err, EINVAL,
				     "backend %s: mandatory member 'name' "
				     "missing from its ops table",
				     name);
	if (by_url && !ops->mount)
		return vfs_error_set(err, EINVAL,
				     "backend %s: mandatory member 'mount' "
				     "missing from its ops table",
				     name);
	for (int op = 0; op < ROP_COUNT; op++)
		if (rt_rops[op].missing == MANDATORY && !rt_ops_has(ops, op))
			return vfs_error_set(err, EINVAL,
					     "backend %s: mandatory member "
					     "'%s' missing from its ops table",
					     name, rt_rops[op].name);
	return 0;
}

/*
 * The mount for a path an operation will change.  NULL with *err set when
 * nothing may be changed there: no mount (-EROFS inside a virtual directory,
 * else -ENOENT) or a read-only mount.
 */
struct router_mount *rt_route_rw(const char *path, const char **rel, int *err)
{
	struct router_mount *m = rt_resolve(path, rel);

	if (!m) {
		/* inside a virtual directory nothing may be created */
		char *parent = vfs_path_parent(path);

		*err = rt_is_virtual_dir(path) ||
				       (parent && rt_is_virtual_dir(parent))
			       ? -EROFS
			       : -ENOENT;
		free(parent);
		return NULL;
	}
	if (m->readonly) {
		rt_mount_put(m);
		*err = -EROFS;
		return NULL;
	}
	return m;
}

/*
 * Whether m's backend lacks op (an optional member): then m's reference is
 * dropped and *ret is the row's answer (rt_rops[]).
 */
bool rt_lacks(struct router_mount *m, enum rop op, int *ret)
{
	if (rt_ops_has(m->ops, op))
		return false;
	*ret = rt_rops[op].missing;
	rt_mount_put(m);
	return true;
}

/*
 * The mount for operation op on `path`, with a reference, when the call is
 * its backend's to answer; else NULL and *ret the answer: no mount
 * (-ENOENT, or -EROFS in a virtual directory when op mutates), a read-only
 * mount when op mutates, or the row's answer for a member it lacks.
 */
struct router_mount *rt_route_op(enum rop op, const char *path,
				 const char **rel, int *ret)
{
	struct router_mount *m;

	if (rt_rops[op].mutates) {
		m = rt_route_rw(path, rel, ret);
	} else {
		m = rt_resolve(path, rel);
		*ret = -ENOENT;
	}
	if (!m || rt_lacks(m, op, ret))
		return NULL;
	return m;
}

/*
 * Whether a call of op on open file f is its backend's to answer; else *ret
 * is the answer: -EIO once its mount was removed by force, -EROFS when op
 * mutates a read-only mount, the row's answer for a member it lacks.
 */
bool rt_file_ready(const struct router_file *f, enum rop op, int *ret)
{
	const struct router_mount *m = f->mount;

	if (atomic_load(&m->revoked))
		*ret = -EIO;
	else if (rt_rops[op].mutates && m->readonly)
		*ret = -EROFS;
	else if (!rt_ops_has(m->ops, op))
		*ret = rt_rops[op].missing;
	else
		return true;
	return false;
}
