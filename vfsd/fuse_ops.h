/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fuse_ops.h - the libfuse low-level operations table of vfsd. */
#ifndef VFSD_FUSE_OPS_H
#define VFSD_FUSE_OPS_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

enum fo_writeback {
	FO_WRITEBACK_OFF, /* the default: coherent with other writers */
	FO_WRITEBACK_ON,  /* faster small writes; nobody else writes */
};

struct fuse_ops_config {
	enum fo_writeback writeback;
	/* mounted with default_permissions: let the kernel check POSIX
	 * ACLs too (FUSE_POSIX_ACL) */
	bool posix_acl;
};

/* Set before the session starts; read by the init callback. */
void fuse_ops_configure(const struct fuse_ops_config *cfg);

/* Whether the kernel writeback cache was negotiated. */
bool fuse_ops_writeback(void);

/*
 * Make the kernel forget its cached entry for `path` (a vfsd path), so the
 * next access asks vfsd again: used after mounts come and go.  A no-op
 * before the session exists or when the kernel never saw the path.
 */
void fuse_ops_invalidate_path(const char *path);
/*
 * A mount at `prefix` was removed: every node the kernel still holds of it
 * (an open directory, a cwd) is dead for good, its calls failing with
 * ESTALE.  Nodes are known by name only, and their names would otherwise
 * lead on into whatever is mounted there next, or into the mount beneath.
 * Mounts nested beneath the prefix are left alone: the directories on
 * the way to them (the prefix's own included) get new nodes that take
 * over the names leading to them (inode_replace_dir; the root stays the
 * root for the prefix "/"), so what the kernel holds of them goes on
 * working.
 * The prefix's own entry is then invalidated as fuse_ops_invalidate_path()
 * does, so the next lookup finds what is there now.
 */
void fuse_ops_forget_mount(const char *prefix);

struct fuse_session;
void fuse_ops_set_session(struct fuse_session *se);
/* The mount answers; `dev` is its st_dev, which names the kernel's FUSE
 * connection where /dev/fuse's fdinfo does not (Linux before 6.16):
 * fuse_bg.c changes that connection's budget of background requests. */
void fuse_ops_mounted(dev_t dev);
/* After the session's loop ended: answer the requests still waiting for
 * their I/O limits (EINTR) and wait for those admitted (fuse_wait.c). */
void fuse_ops_drain(void);

struct fuse_lowlevel_ops;
/* The table to hand to fuse_session_new(), with its size. */
const struct fuse_lowlevel_ops *fuse_ops_table(size_t *size);

#endif /* VFSD_FUSE_OPS_H */
