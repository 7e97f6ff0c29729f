/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_ops.c - the libfuse low-level operations: the only file that knows
 * fuse_req_t.  Each request is turned into a node-table lookup (inode.c)
 * and a path-level router call (router.c), and every error is answered
 * here with fuse_reply_err(req, -ret): the one place where a negative errno
 * becomes the positive one libfuse wants.
 *
 * fi->fh of an open file holds a pointer to its struct fo_fh (below), of a
 * directory to the router's handle.  Only the kernel hands it back to us,
 * and it hands back exactly what we gave it.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "guestfs/image.h"
#include "guestfs/lock.h"
#include "lib/log.h"
#include "vfsd/fuse_ops.h"
#include "vfsd/inode.h"
#include "vfsd/passthrough.h"
#include "vfsd/router.h"

/* Largest request we negotiate: 1 MiB of data (256 pages). */
#define FO_MAX_IO (1u << 20)

static struct fuse_ops_config fo_cfg;
static struct fuse_session *fo_session; /* set before the loop starts */
static bool fo_writeback;        /* negotiated in init, read-only afterwards */
static bool fo_dont_mask;        /* the caller's umask reaches us, ditto */
static unsigned fo_kernel_minor; /* FUSE protocol 7.x of the kernel, ditto */

void fuse_ops_configure(const struct fuse_ops_config *cfg)
{
	fo_cfg = *cfg;
}

void fuse_ops_set_session(struct fuse_session *se)
{
	fo_session = se;
}

void fuse_ops_invalidate_path(const char *path)
{
	char *dir = strdup(path), *slash;
	uint64_t parent;

	if (!fo_session || !dir)
		goto out;
	slash = strrchr(dir, '/');
	if (!slash || !slash[1])
		goto out;
	*slash = '\0';
	parent = inode_find(*dir ? dir : "/");
	if (parent)
		fuse_lowlevel_notify_inval_entry(fo_session, parent, slash + 1,
						 strlen(slash + 1));
out:
	free(dir);
}

bool fuse_ops_writeback(void)
{
	return fo_writeback;
}

/*
 * One open of a file as the kernel knows it: the router's handle plus what
 * only the FUSE layer keeps per open.  Made by fo_open and fo_create, which
 * put it in fi->fh for the reply; freed by fo_release, or by the open
 * itself when its reply never reaches the kernel (then no release comes).
 * The handle is also listed in the node table (inode_handle_add) and
 * names the open to the lock table: both hold the router's handle, with
 * references of their own where they need one, never this struct.
 */
struct fo_fh {
	struct router_file *rf; /* one reference, dropped with the struct */
	/* set before the open's reply and only read after it: the kernel
	 * sends nothing for the handle before it has the reply */
	enum pt_mode pt_mode; /* how passthrough.c counts the open */
	bool wo_direct;       /* write-only, no page cache (see
			       * fo_write_only_direct) */
	/* a passthrough writer that may lack CAP_FSETID (see
	 * fo_pt_kill_on_close); cleared by a mode change through the handle
	 * (fo_setattr) while another worker may flush: atomic */
	atomic_bool pt_kill_on_close;
};

/* Takes over rf's reference: released with the struct, also on failure
 * (NULL). */
static struct fo_fh *fo_fh_new(struct router_file *rf)
{
	struct fo_fh *fh = calloc(1, sizeof(*fh));

	if (!fh) {
		router_release(rf);
		return NULL;
	}
	fh->rf = rf;
	fh->pt_mode = PT_UNTRACKED;
	atomic_init(&fh->pt_kill_on_close, false);
	return fh;
}

static void fo_fh_free(struct fo_fh *fh)
{
	router_release(fh->rf);
	free(fh);
}

static struct fo_fh *fo_fh(struct fuse_file_info *fi)
{
	return (struct fo_fh *)(uintptr_t)fi->fh;
}

static struct router_file *fo_file(struct fuse_file_info *fi)
{
	return fo_fh(fi)->rf;
}

static struct vfs_cred fo_cred(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return (struct vfs_cred){.uid = ctx->uid,
				 .gid = ctx->gid,
				 .pid = ctx->pid,
				 .umask = fo_dont_mask ? ctx->umask & 0777 : 0,
				 .ngroups = -1};
}

/*
 * The caller's supplementary groups, for the calls that create: a backend
 * that creates as the caller (backends/local.c) needs them to be granted
 * what the caller is granted through a group.  Read from /proc (libfuse's
 * fuse_req_getgroups), so only when the daemon can act as someone else.
 * More than FO_MAX_GROUPS are cut (libfuse reads no more either); with
 * default_permissions the kernel has checked the whole list already.
 */
#define FO_MAX_GROUPS 256

static void fo_cred_groups(fuse_req_t req, struct vfs_cred *cred, gid_t *buf)
{
	int n = -1;

	if (geteuid() == 0 && (cred->uid != 0 || cred->gid != 0))
		n = fuse_req_getgroups(req, FO_MAX_GROUPS, buf);
	cred->groups = buf;
	cred->ngroups = n < 0 ? -1 : n > FO_MAX_GROUPS ? FO_MAX_GROUPS : n;
}

static void fo_reply_err(fuse_req_t req, int ret)
{
	fuse_reply_err(req, ret < 0 ? -ret : EIO);
}

/*
 * On a backend without stable inode numbers each name of a hard-linked
 * file is its own node, and so its own kernel inode: a write through one
 * name is not seen in the other's cached size.  Such files are never
 * cached, which keeps them coherent at the price of a getattr per access.
 * Where all names are one node (inode_keyed) the kernel's one inode is
 * coherent by itself.
 */
static double fo_attr_timeout(fuse_ino_t ino, const struct stat *st,
			      double timeout)
{
	if (S_ISREG(st->st_mode) && st->st_nlink > 1 && !inode_keyed(ino))
		return 0;
	return timeout;
}

/* The kernel entry for node e->ino, which has attributes st at path. */
static void fo_entry_fill(const char *path, const struct stat *st,
			  struct fuse_entry_param *e)
{
	e->generation = 1;
	e->attr = *st;
	router_timeouts(path, &e->attr_timeout, &e->entry_timeout, NULL);
	e->attr_timeout = fo_attr_timeout(e->ino, st, e->attr_timeout);
}

/* Turn new attributes for `name` in `parent` into a kernel entry. */
static int fo_make_entry(fuse_ino_t parent, const char *name, const char *path,
			 const struct stat *st, struct fuse_entry_param *e)
{
	int ret = 0;

	memset(e, 0, sizeof(*e));
	e->ino = inode_lookup(parent, name, st, router_ino_space(path), &ret);
	if (!e->ino)
		return ret;
	fo_entry_fill(path, st, e);
	return 0;
}

static void fo_init(void *userdata, struct fuse_conn_info *conn)
{
	unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_ATOMIC_O_TRUNC |
			FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
			FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_READDIRPLUS |
			FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_ASYNC_DIO |
			FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_CACHE_SYMLINKS;
	/*
	 * With writeback caching the kernel trusts its own file sizes and
	 * times over the backend's, so a change made by anyone but this
	 * mount (another host, a process using the directory itself) would
	 * not be seen.  Only on request, for backends nobody else touches.
	 */
	bool wb = fo_cfg.writeback == FO_WRITEBACK_ON;

	if (wb && router_any_shared())
		log_warn("writeback_cache = yes with a shared (network) mount: "
			 "changes made by other hosts may be missed");
	if (wb)
		want |= FUSE_CAP_WRITEBACK_CACHE;
	/*
	 * The caller's umask comes to us unapplied, so that a default ACL on
	 * the parent can take its place where the file system beneath has
	 * one (the router applies it for the others).
	 */
	want |= FUSE_CAP_DONT_MASK;
	/*
	 * With default_permissions the kernel checks access; POSIX ACLs make
	 * it consult system.posix_acl_access as the file system beneath
	 * would (it caches them, and drops them on setattr and setxattr).
	 * Never without default_permissions: the kernel would then start
	 * checking where the owner asked it not to.
	 */
	if (fo_cfg.posix_acl)
		want |= FUSE_CAP_POSIX_ACL;
	conn->want |= want & conn->capable;
	fo_writeback = (conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0;
	fo_dont_mask = (conn->want & FUSE_CAP_DONT_MASK) != 0;
	if (fo_cfg.posix_acl && !(conn->want & FUSE_CAP_POSIX_ACL))
		log_warn("the kernel does not offer FUSE POSIX ACLs: access is "
			 "checked on mode bits only");
	fo_kernel_minor = conn->proto_minor;
	conn->max_write = FO_MAX_IO;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	log_info("kernel writeback cache %s", fo_writeback ? "on" : "off");
	/*
	 * libfuse asks for FUSE_HANDLE_KILLPRIV (v1) by default, which
	 * leaves dropping setuid/setgid on write to us without telling us
	 * when: we do it for v2's flagged requests, or else the kernel does.
	 */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	if (pt_init(!fo_writeback))
		conn->want &= ~FUSE_CAP_SPLICE_READ;
}

static void fo_destroy(void *userdata)
{
}

static void fo_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct stat st;
	int ret = 0;
	char *path = inode_child_path(parent, name, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = glock_reserved(path) ? -EPERM : router_getattr(path, &st);
	if (ret == -ENOENT) {
		/* one name of a hard-linked file removed by someone else:
		 * the file's node goes by its other names from now on */
		inode_name_gone(parent, name);
		/* negative entry: the kernel may remember the miss, for as
		 * long as attributes (a file another host creates must show
		 * up as soon as its attributes would) */
		memset(&e, 0, sizeof(e));
		router_timeouts(path, &e.attr_timeout, &e.entry_timeout, NULL);
		if (e.entry_timeout > e.attr_timeout)
			e.entry_timeout = e.attr_timeout;
		e.attr_timeout = 0;
		free(path);
		fuse_reply_entry(req, &e);
		return;
	}
	if (ret == 0)
		ret = fo_make_entry(parent, name, path, &st, &e);
	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	fuse_reply_entry(req, &e);
}

static void fo_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void fo_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inode_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fo_handle_get(void *h)
{
	router_file_get(h);
}

/* An open handle of a node whose name is gone (unlinked while open). */
static struct router_file *fo_orphan_handle(fuse_ino_t ino)
{
	return inode_handle_find(ino, fo_handle_get);
}

/*
 * The open handle a request on node ino that came without one should use
 * (fstat, fchmod, fchown and futimens reach us by node, with no handle),
 * or NULL to go by path.  A node whose name is gone (unlinked while open)
 * has only its handles.  On shared storage a node with open files means
 * the file they have open, as an NFS client's inode means its file
 * handle, whatever another host did to the name since: after a rename
 * there, the path would reach whatever now has the old name.  A lookup
 * that finds another object under the name makes a new node
 * (inode_lookup), so stat(2) of the name moves on to that object.
 * `shared` is router_timeouts()'s answer for path.  Returns a reference
 * (router_release) or NULL.
 */
static struct router_file *fo_node_handle(fuse_ino_t ino, const char *path,
					  bool shared)
{
	if (path && (!shared || !inode_has_handles(ino)))
		return NULL;
	return fo_orphan_handle(ino);
}

/*
 * An open file on shared storage (a VM image another host may grow) is
 * never attribute-cached by the kernel: its size must be the server's the
 * moment it is asked, e.g. when a migrated VM resumes.
 */
static bool fo_open_shared(fuse_ino_t ino, const struct stat *st, bool shared)
{
	return shared && S_ISREG(st->st_mode) && inode_has_handles(ino);
}

static void fo_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	double attr_to = 0, entry_to;
	bool shared = false;
	struct stat st;
	int ret = 0;
	char *path = inode_path(ino, &ret);
	struct router_file *rf = NULL;

	if (path)
		router_timeouts(path, &attr_to, &entry_to, &shared);
	if (!fi)
		rf = fo_node_handle(ino, path, shared);
	if (fi) {
		ret = router_fgetattr(fo_file(fi), &st);
	} else if (rf) {
		ret = router_fgetattr(rf, &st);
		router_release(rf);
	} else if (path) {
		ret = router_getattr(path, &st);
	}
	/* else: inode_path's error (no name and no open handle left) */
	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	if (fo_open_shared(ino, &st, shared))
		attr_to = 0;
	fuse_reply_attr(req, &st, fo_attr_timeout(ino, &st, attr_to));
}

/* The privilege bits a write by someone without CAP_FSETID drops. */
static mode_t fo_sxid_bits(mode_t mode)
{
	mode_t bits = mode & S_ISUID;

	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		bits |= S_ISGID;
	return S_ISREG(mode) ? bits : 0;
}

/*
 * The mode a write or truncate flagged by pt_request_kills_suidgid() must
 * leave, or 0 when nothing is to drop.  The kernel flags every write by
 * someone without CAP_FSETID, whatever the mode, so the common answer
 * ("no such bits") comes from the cached attributes of the path; only a
 * file that seems to have some is asked again through its open handle,
 * which is the object the change then applies to.
 */
static int fo_killed_mode(const char *path, struct router_file *rf,
			  mode_t *mode)
{
	struct stat st;
	int ret = path ? router_getattr(path, &st) : -ENOENT;

	*mode = 0;
	if (ret == 0 && !fo_sxid_bits(st.st_mode))
		return 0;
	if (rf)
		ret = router_fgetattr(rf, &st);
	if (ret < 0)
		return ret == -ENOENT ? 0 : ret;
	if (fo_sxid_bits(st.st_mode))
		*mode = st.st_mode & 07777 & ~fo_sxid_bits(st.st_mode);
	return 0;
}

/* Drop the bits of an open file: 1 if it had some, 0, or -errno. */
static int fo_drop_privs(const char *path, struct router_file *rf)
{
	struct vfs_setattr sa = {.valid = VFS_SET_MODE};
	struct stat st;
	int ret = fo_killed_mode(path, rf, &sa.mode);

	if (ret < 0 || !sa.mode)
		return ret;
	ret = router_setattr(path, rf, &sa, &st);
	return ret < 0 ? ret : 1;
}

/* The same for node `ino` the kernel knows (before a flagged write, after
 * a flagged open, when a passthrough writer closes). */
static int fo_kill_suidgid(fuse_ino_t ino, struct router_file *rf)
{
	int ret = 0;
	char *path = inode_path(ino, &ret);

	ret = fo_drop_privs(path, rf);
	free(path);
	/* the kernel still has the old mode cached (only attributes: no
	 * locks taken, safe inside a request) */
	if (ret > 0 && fo_session)
		fuse_lowlevel_notify_inval_inode(fo_session, ino, -1, 0);
	return ret < 0 ? ret : 0;
}

/*
 * A change of a file's data under a cross-host lock carries the lease's
 * deadline down to the backend (see glock_write_begin) and is counted, so
 * that releasing the lock waits for it.
 */
struct fo_fence {
	fuse_ino_t ino;
	int held; /* glock_write_begin's answer */
	struct vfs_callctx saved;
};

static int fo_fence_begin(fuse_ino_t ino, struct router_file *rf,
			  struct fo_fence *fc)
{
	int64_t deadline;

	fc->ino = ino;
	fc->held = glock_write_begin(ino, &deadline);
	if (fc->held < 0)
		return -EIO; /* lease lost: see guestfs/lock.h */
	if (fc->held > 0 && rf)
		/* under a cross-host lock nothing may linger in a
		 * write-behind queue past the lease */
		router_file_write_through(rf);
	fc->saved = vfs_callctx_push(fc->held > 0 ? deadline : 0, false);
	return 0;
}

/* Ends the fence; a change that missed the lease's deadline is an EIO
 * like any write after the lease, whatever the backend called it. */
static long fo_fence_end(struct fo_fence *fc, long ret)
{
	if (fc->held > 0 && ret < 0 && vfs_call_expired())
		ret = -EIO;
	vfs_callctx_pop(fc->saved);
	if (fc->held > 0)
		glock_write_end(fc->ino);
	return ret;
}

static void fo_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct router_file *rf = NULL, *orphan = NULL;
	struct vfs_setattr sa = {0};
	double attr_to = 0, entry_to;
	bool shared = false;
	struct stat st;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (path)
		router_timeouts(path, &attr_to, &entry_to, &shared);

	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.valid |= VFS_SET_MODE;
		sa.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.valid |= VFS_SET_UID;
		sa.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.valid |= VFS_SET_GID;
		sa.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		sa.valid |= VFS_SET_SIZE;
		sa.size = attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		sa.valid |= VFS_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME) {
		sa.valid |= VFS_SET_ATIME;
		sa.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		sa.valid |= VFS_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa.valid |= VFS_SET_MTIME;
		sa.mtime = attr->st_mtim;
	}
	if (fi) {
		rf = fo_file(fi);
	} else if (!path || !(sa.valid & VFS_SET_SIZE)) {
		/* truncate(2) of a name goes by the name: the handle at hand
		 * may be read-only, and ftruncate(2) comes with its own */
		rf = orphan = fo_node_handle(ino, path, shared);
		if (!rf && !path)
			return fo_reply_err(req, ret); /* inode_path's */
	}
	ret = 0;
	if (pt_request_kills_suidgid() && !(sa.valid & VFS_SET_MODE)) {
		/* a truncate or chown by someone without CAP_FSETID */
		ret = fo_killed_mode(path, rf, &sa.mode);
		if (sa.mode)
			sa.valid |= VFS_SET_MODE;
	}
	if (ret < 0) {
		/* the privileges could not be checked: change nothing */
	} else if (sa.valid & VFS_SET_SIZE) {
		struct fo_fence fc;

		ret = fo_fence_begin(ino, NULL, &fc);
		if (ret == 0)
			ret = (int)fo_fence_end(
				&fc, router_setattr(path, rf, &sa, &st));
	} else {
		ret = router_setattr(path, rf, &sa, &st);
	}
	/*
	 * Whoever could change the mode through this handle owns the file:
	 * setuid bits it sets are its own to keep (cp -p: fchmod before
	 * close), so closing it drops nothing (see fo_pt_kill_on_close).
	 */
	if (ret == 0 && fi && (to_set & FUSE_SET_ATTR_MODE))
		atomic_store(&fo_fh(fi)->pt_kill_on_close, false);
	if (orphan)
		router_release(orphan);
	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	if (sa.valid & VFS_SET_SIZE)
		inode_cache_stamp(ino, &st);
	if (fo_open_shared(ino, &st, shared))
		attr_to = 0;
	fuse_reply_attr(req, &st, fo_attr_timeout(ino, &st, attr_to));
}

static void fo_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	n = router_readlink(path, buf, sizeof(buf) - 1);
	free(path);
	if (n < 0)
		return fo_reply_err(req, (int)n);
	if ((size_t)n >= sizeof(buf) - 1)
		return fo_reply_err(req, -ENAMETOOLONG);
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* The tail shared by mknod, mkdir, symlink and link. */
static void fo_reply_new(fuse_req_t req, fuse_ino_t parent, const char *name,
			 const char *path, int ret, const struct stat *st)
{
	struct fuse_entry_param e;

	if (ret == 0)
		ret = fo_make_entry(parent, name, path, st, &e);
	if (ret < 0)
		return fo_reply_err(req, ret);
	fuse_reply_entry(req, &e);
}

static void fo_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct vfs_cred cred = fo_cred(req);
	gid_t groups[FO_MAX_GROUPS];
	struct stat st;
	int ret = 0;
	char *path = inode_child_path(parent, name, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	fo_cred_groups(req, &cred, groups);
	ret = router_mknod(path, mode, rdev, &cred, &st);
	fo_reply_new(req, parent, name, path, ret, &st);
	free(path);
}

static void fo_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct vfs_cred cred = fo_cred(req);
	gid_t groups[FO_MAX_GROUPS];
	struct stat st;
	int ret = 0;
	char *path = inode_child_path(parent, name, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	fo_cred_groups(req, &cred, groups);
	ret = router_mkdir(path, mode, &cred, &st);
	fo_reply_new(req, parent, name, path, ret, &st);
	free(path);
}

static void fo_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	struct vfs_cred cred = fo_cred(req);
	gid_t groups[FO_MAX_GROUPS];
	struct stat st;
	int ret = 0;
	char *path = inode_child_path(parent, name, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	fo_cred_groups(req, &cred, groups);
	ret = router_symlink(target, path, &cred, &st);
	fo_reply_new(req, parent, name, path, ret, &st);
	free(path);
}

static void fo_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct fuse_entry_param e;
	struct stat st;
	int ret = 0;
	char *from = inode_path(ino, &ret), *to;

	if (!from)
		return fo_reply_err(req, ret);
	to = inode_child_path(newparent, newname, &ret);
	if (!to) {
		free(from);
		return fo_reply_err(req, ret);
	}
	ret = router_link(from, to, &st);
	free(from);
	/*
	 * The new name is another name of node ino (one more kernel
	 * reference on it), so the kernel keeps one inode for the file; the
	 * attributes (nlink, ctime) refresh what it has cached for it.
	 */
	memset(&e, 0, sizeof(e));
	if (ret == 0)
		e.ino = inode_link(ino, newparent, newname, &st,
				   router_ino_space(to), &ret);
	if (e.ino)
		fo_entry_fill(to, &st, &e);
	free(to);
	if (ret < 0)
		return fo_reply_err(req, ret);
	fuse_reply_entry(req, &e);
}

static void fo_remove(fuse_req_t req, fuse_ino_t parent, const char *name,
		      bool dir)
{
	int ret = 0;
	char *path = inode_child_path(parent, name, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = dir ? router_rmdir(path) : router_unlink(path);
	if (ret == -ENOTEMPTY && glock_rmdir_cleanup(path) == 0)
		ret = router_rmdir(path);
	free(path);
	if (ret == 0)
		inode_unlink(parent, name);
	fuse_reply_err(req, -ret);
}

static void fo_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fo_remove(req, parent, name, false);
}

static void fo_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fo_remove(req, parent, name, true);
}

static void fo_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	int ret = 0;
	char *from = inode_child_path(parent, name, &ret), *to;

	if (!from)
		return fo_reply_err(req, ret);
	to = inode_child_path(newparent, newname, &ret);
	if (!to) {
		free(from);
		return fo_reply_err(req, ret);
	}
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		ret = -EINVAL;
	else
		ret = router_rename(from, to, flags);
	free(from);
	free(to);
	if (ret == 0)
		inode_rename(parent, name, newparent, newname, flags);
	fuse_reply_err(req, -ret);
}

/*
 * Open flags as the backend should see them.  With the writeback cache the
 * kernel may read pages of a file opened write-only and does O_APPEND
 * itself, so the backend opens read-write and without O_APPEND.
 */
static int fo_backend_flags(int flags)
{
	if (fo_writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags;
}

/*
 * Whether a file has no privileges a write would have to drop (setuid or
 * setgid bits, file capabilities).  Only such files may take a path on
 * which the kernel does not drop them itself and no write reaches us:
 * FUSE passthrough, and FOPEN_DIRECT_IO without FUSE_HANDLE_KILLPRIV_V2.
 *
 * O_DIRECT opens may take FUSE's direct-I/O path (FOPEN_DIRECT_IO), which
 * the page cache is bypassed on anyway.  It also spares every write the
 * kernel's security.capability lookup (a GETXATTR round trip under the
 * inode lock, when FUSE_HANDLE_KILLPRIV_V2 could not be negotiated), so
 * direct writes run in parallel.
 */
static bool fo_direct_io_ok(struct router_file *rf, const char *path,
			    const struct stat *known)
{
	struct stat st;

	if (known)
		st = *known;
	else if (router_fgetattr(rf, &st) < 0)
		return false;
	if (st.st_mode & (S_ISUID | S_ISGID))
		return false;
	return !path ||
	       router_getxattr(path, "security.capability", NULL, 0) < 0;
}

/*
 * Write-only opens on shared mounts skip the page cache (FOPEN_DIRECT_IO):
 * nothing can be read through them, and without the writeback cache every
 * write reaches us anyway, so the kernel's copy of each byte into the
 * page cache only cost CPU and memory (docs/performance.md has the
 * measurement).  The data now goes from the writer's buffer
 * to vfsd in one copy.  Pages of the file cached through other opens do
 * not get the new data: the kernel drops those of the written range after
 * each direct write (since FUSE 7.39, Linux 6.6, which is why older
 * kernels keep the page cache path; readers of an open shared file also
 * revalidate by size and times at each read, but SFTP's times have whole
 * seconds), and fo_flush makes the next open drop the rest.  Not for
 * files a write must drop privileges of without KILLPRIV_V2
 * (fo_direct_io_ok).
 */
static bool fo_write_only_direct(struct router_file *rf, const char *path,
				 const struct stat *known, int flags)
{
	return !fo_writeback && fo_kernel_minor >= 39 &&
	       (flags & O_ACCMODE) == O_WRONLY && router_file_is_shared(rf) &&
	       fo_direct_io_ok(rf, path, known);
}

/* Close-to-open: keep cached pages only if the file did not change. */
static void fo_open_cache_policy(fuse_ino_t ino, struct fo_fh *fh,
				 const char *path, struct fuse_file_info *fi,
				 const struct stat *known)
{
	struct router_file *rf = fh->rf;
	struct stat st;

	fi->keep_cache = 0;
	if (router_file_uncached(rf))
		fi->direct_io = 1;
	if (fi->flags & O_DIRECT) {
		fi->direct_io = fo_direct_io_ok(rf, path, known);
		return;
	}
	if (router_file_uncached(rf))
		return;
	if (fo_write_only_direct(rf, path, known, fi->flags)) {
		fi->direct_io = 1;
		fh->wo_direct = true;
		return;
	}
	if (known)
		st = *known;
	else if (router_fgetattr(rf, &st) < 0)
		return;
	fi->keep_cache = inode_cache_still_valid(ino, &st);
	inode_cache_stamp(ino, &st);
}

/*
 * Passthrough writes never reach us, so nobody drops setuid/setgid bits
 * the file gained while open (a chmod by its owner or root, by path or
 * another handle).  Such a file cannot be executed while open for writing
 * (ETXTBSY), so dropping the bits when a writer that may lack CAP_FSETID
 * closes it comes before anyone could run what it wrote.  "May lack" is
 * "is not uid 0": the daemon cannot see the caller's capabilities.  A
 * mode change through the handle itself clears the mark (fo_setattr).
 */
static bool fo_pt_kill_on_close(fuse_req_t req, const struct fo_fh *fh,
				int flags)
{
	return fh->pt_mode == PT_PASSTHROUGH &&
	       (flags & O_ACCMODE) != O_RDONLY && fuse_req_ctx(req)->uid != 0;
}

/* An open that truncates changes the data: under a cross-host lock it is
 * fenced like a write (fo_fence_begin). */
static int fo_open_trunc(fuse_ino_t ino, const char *path, int flags,
			 struct router_file **rf)
{
	struct fo_fence fc;
	int ret;

	if (!(flags & O_TRUNC))
		return router_open(path, fo_backend_flags(flags), rf);
	ret = fo_fence_begin(ino, NULL, &fc);
	if (ret == 0)
		ret = (int)fo_fence_end(
			&fc, router_open(path, fo_backend_flags(flags), rf));
	return ret;
}

static void fo_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct router_file *rf;
	enum pt_mode pt_mode;
	struct fo_fh *fh;
	bool pt_may_start;
	int ret = 0, pt_fd;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = fo_open_trunc(ino, path, fi->flags, &rf);
	if (ret < 0) {
		free(path);
		return fo_reply_err(req, ret);
	}
	if (fi->flags & O_TRUNC)
		inode_cache_invalidate(ino);
	if (pt_request_kills_suidgid()) {
		/* O_TRUNC by someone without CAP_FSETID */
		ret = fo_kill_suidgid(ino, rf);
		if (ret < 0) {
			free(path);
			router_release(rf);
			return fo_reply_err(req, ret);
		}
	}
	fh = fo_fh_new(rf);
	if (!fh) {
		free(path);
		return fo_reply_err(req, -ENOMEM);
	}
	fo_open_cache_policy(ino, fh, path, fi, NULL);
	pt_fd = router_file_passthrough_fd(rf);
	pt_may_start = pt_fd >= 0 && fo_direct_io_ok(rf, path, NULL);
	free(path);
	if (inode_handle_add(ino, rf) < 0) {
		fo_fh_free(fh);
		return fo_reply_err(req, -ENOMEM);
	}
	fi->fh = (uintptr_t)fh;
	fh->pt_mode = pt_open_begin(ino, pt_fd, pt_may_start, fi->fh);
	atomic_store(&fh->pt_kill_on_close,
		     fo_pt_kill_on_close(req, fh, fi->flags));
	pt_mode = fh->pt_mode;
	ret = fuse_reply_open(req, fi);
	/* from here on a release may have freed fh, unless the reply failed */
	if (pt_mode == PT_PASSTHROUGH)
		pt_open_end(ino);
	if (ret == -ENOENT) {
		/* the opener was interrupted: no release will come */
		pt_release(ino, fh->pt_mode);
		inode_handle_del(ino, rf);
		fo_fh_free(fh);
	}
}

static void fo_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct vfs_cred cred = fo_cred(req);
	gid_t groups[FO_MAX_GROUPS];
	struct fuse_entry_param e;
	struct router_file *rf;
	enum pt_mode pt_mode;
	struct fo_fh *fh;
	struct stat st;
	int ret = 0, pt_fd;
	char *path = inode_child_path(parent, name, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	fo_cred_groups(req, &cred, groups);
	/*
	 * Always exclusive: the kernel sends CREATE for a name it believes
	 * absent (a cached negative entry, or the window between its LOOKUP
	 * and this), and a name that exists by now was never checked against
	 * the caller.  ESTALE makes the kernel look the name up afresh and
	 * open what it finds as any other file: permissions checked, O_TRUNC
	 * fenced by fo_open, a FIFO opened by the caller and not by a worker
	 * of ours.  So the file is always new: nothing to truncate, no
	 * privileges to drop, no lock to fence.
	 */
	ret = router_create(path, fo_backend_flags(fi->flags) | O_EXCL, mode,
			    &cred, &rf, &st);
	if (ret == -EEXIST && !(fi->flags & O_EXCL))
		ret = -ESTALE;
	if (ret == 0) {
		ret = fo_make_entry(parent, name, path, &st, &e);
		if (ret < 0)
			router_release(rf);
	}
	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	inode_cache_stamp(e.ino, &st);
	fh = fo_fh_new(rf);
	if (!fh || inode_handle_add(e.ino, rf) < 0) {
		inode_forget(e.ino, 1); /* fo_make_entry's lookup */
		if (fh)
			fo_fh_free(fh);
		return fo_reply_err(req, -ENOMEM);
	}
	if (!(fi->flags & O_DIRECT) &&
	    fo_write_only_direct(rf, NULL, &st, fi->flags)) {
		fi->direct_io = 1;
		fh->wo_direct = true;
	}
	fi->fh = (uintptr_t)fh;
	pt_fd = router_file_passthrough_fd(rf);
	fh->pt_mode = pt_open_begin(
		e.ino, pt_fd, pt_fd >= 0 && fo_direct_io_ok(rf, NULL, &st),
		fi->fh);
	atomic_store(&fh->pt_kill_on_close,
		     fo_pt_kill_on_close(req, fh, fi->flags));
	pt_mode = fh->pt_mode;
	ret = fuse_reply_create(req, &e, fi);
	/* from here on a release may have freed fh, unless the reply failed */
	if (pt_mode == PT_PASSTHROUGH)
		pt_open_end(e.ino);
	if (ret == -ENOENT) {
		pt_release(e.ino, fh->pt_mode);
		inode_handle_del(e.ino, rf);
		fo_fh_free(fh);
	}
}

static void fo_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct router_file *rf = fo_file(fi);
	struct router_zerocopy zc;
	void *buf;
	ssize_t n;
	int ret = router_zerocopy_begin(rf, false, size, off, &zc);

	if (ret < 0)
		return fo_reply_err(req, ret);
	if (ret > 0) {
		/* zero copy: libfuse splices from the backing file; zc
		 * holds rf, which the kernel may release once replied */
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = zc.fd;
		bv.buf[0].pos = off;
		router_zerocopy_end(
			&zc, fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE));
		return;
	}
	buf = vfs_scratch(VFS_SCRATCH_FUSE, size);
	if (!buf)
		return fo_reply_err(req, -ENOMEM);
	n = router_read(rf, buf, size, off);
	if (n < 0)
		return fo_reply_err(req, (int)n);
	fuse_reply_buf(req, buf, n);
}

static ssize_t fo_write_data(struct router_file *rf, struct fuse_bufvec *in,
			     off_t off)
{
	size_t size = fuse_buf_size(in);
	struct router_zerocopy zc;
	const void *data;
	ssize_t n = router_zerocopy_begin(rf, true, size, off, &zc);

	if (n < 0)
		return n;
	if (n > 0) {
		/* zero copy: libfuse splices into the backing file */
		struct fuse_bufvec out = FUSE_BUFVEC_INIT(size);

		out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		out.buf[0].fd = zc.fd;
		out.buf[0].pos = off;
		n = fuse_buf_copy(&out, in, 0);
		router_zerocopy_end(&zc, n);
		return n;
	}
	if (in->count == 1 && !(in->buf[0].flags & FUSE_BUF_IS_FD)) {
		data = in->buf[0].mem;
	} else {
		struct fuse_bufvec tmp = FUSE_BUFVEC_INIT(size);

		tmp.buf[0].mem = vfs_scratch(VFS_SCRATCH_FUSE, size);
		if (!tmp.buf[0].mem)
			return -ENOMEM;
		n = fuse_buf_copy(&tmp, in, 0);
		if (n < 0)
			return n;
		size = n;
		data = tmp.buf[0].mem;
	}
	return router_write(rf, data, size, off);
}

static void fo_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in,
			 off_t off, struct fuse_file_info *fi)
{
	struct router_file *rf = fo_file(fi);
	struct fo_fence fc;
	ssize_t n;
	int ret;

	if (pt_request_kills_suidgid()) {
		ret = fo_kill_suidgid(ino, rf);
		if (ret < 0)
			return fo_reply_err(req, ret);
	}
	ret = fo_fence_begin(ino, rf, &fc);
	if (ret < 0)
		return fo_reply_err(req, ret);
	n = fo_fence_end(&fc, fo_write_data(rf, in, off));
	if (n < 0)
		return fo_reply_err(req, (int)n);
	fuse_reply_write(req, n);
}

static void fo_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fo_fh *fh = fo_fh(fi);
	struct router_file *rf = fh->rf;
	int ret = router_flush(rf);

	if (atomic_load(&fh->pt_kill_on_close))
		fo_kill_suidgid(ino, rf); /* see fo_pt_kill_on_close */

	/* close(2) drops the process's POSIX locks on the file */
	if (fi->lock_owner) {
		char *path = inode_path(ino, &(int){0});

		glock_release_owner(ino, rf, path, fi->lock_owner, GLOCK_POSIX);
		free(path);
	}

	/* our own writes must not make the next open drop the cache, unless
	 * they bypassed it */
	if (fh->wo_direct) {
		inode_cache_invalidate(ino);
	} else if (ret == 0 && (fi->flags & O_ACCMODE) != O_RDONLY) {
		struct stat st;

		if (router_fgetattr(rf, &st) == 0)
			inode_cache_stamp(ino, &st);
	}
	fuse_reply_err(req, -ret);
}

static void fo_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fo_fh *fh = fo_fh(fi);
	struct router_file *rf = fh->rf;
	char *path = inode_path(ino, &(int){0});

	if (fi->flock_release)
		glock_release_owner(ino, rf, path, fi->lock_owner, GLOCK_FLOCK);
	glock_release_fh(ino, rf, path, rf);
	free(path);
	/* a shared writable mapping outlives close(): its writes end here */
	if (atomic_load(&fh->pt_kill_on_close))
		fo_kill_suidgid(ino, rf);
	pt_release(ino, fh->pt_mode);
	inode_handle_del(ino, rf);
	fo_fh_free(fh);
	fuse_reply_err(req, 0);
}

static void fo_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	fuse_reply_err(req, -router_fsync(fo_file(fi), datasync != 0));
}

static void fo_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct router_dir *d;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = router_opendir(path, &d);
	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)
		router_releasedir(d);
}

struct fo_dirfill {
	fuse_req_t req;
	fuse_ino_t dir;
	char *buf;
	size_t size, used;
	bool plus;
	bool shared; /* a shared mount's: lease records hidden */
	double attr_to, entry_to;
	uint64_t space; /* router_ino_space() of the directory */
};

static int fo_fill(void *ctx, const char *name, const struct stat *st,
		   unsigned flags, off_t next)
{
	struct fo_dirfill *f = ctx;
	size_t room = f->size - f->used, len;
	bool dots = name[0] == '.' &&
		    (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));

	if (glock_reserved_entry(name, f->shared))
		return 0; /* lock leases: vfsd's business only */

	if (!f->plus) {
		len = fuse_add_direntry(f->req, f->buf + f->used, room, name,
					st, next);
	} else {
		struct fuse_entry_param e = {.attr = *st};
		int err = 0;

		if ((flags & VFS_DIRENT_FULL) && !dots) {
			/* only children that are not directories are found
			 * by inode number, and those are on the directory's
			 * mount (mount points are directories) */
			e.ino = inode_lookup(f->dir, name, st, f->space, &err);
			e.generation = 1;
			e.attr_timeout = fo_attr_timeout(e.ino, st, f->attr_to);
			e.entry_timeout = f->entry_to;
		}
		len = fuse_add_direntry_plus(f->req, f->buf + f->used, room,
					     name, &e, next);
		if (len > room && e.ino)
			inode_forget(e.ino, 1); /* the kernel never saw it */
	}
	if (len > room)
		return 1;
	f->used += len;
	return 0;
}

static void fo_readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi, bool plus)
{
	struct router_dir *d = (struct router_dir *)(uintptr_t)fi->fh;
	struct fo_dirfill f = {.req = req,
			       .dir = ino,
			       .size = size,
			       .plus = plus,
			       .shared = router_dir_is_shared(d)};
	int ret = 0;

	f.buf = malloc(size);
	if (!f.buf)
		return fo_reply_err(req, -ENOMEM);
	if (plus) {
		char *path = inode_path(ino, &ret);

		f.attr_to = f.entry_to = 0;
		if (path) {
			router_timeouts(path, &f.attr_to, &f.entry_to, NULL);
			f.space = router_ino_space(path);
		}
		free(path);
	}
	ret = router_readdir(d, off, fo_fill, &f);
	/* entries already packed are worth more than the error */
	if (ret < 0 && f.used == 0)
		fo_reply_err(req, ret);
	else
		fuse_reply_buf(req, f.buf, f.used);
	free(f.buf);
}

static void fo_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fo_readdir_common(req, ino, size, off, fi, false);
}

static void fo_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	fo_readdir_common(req, ino, size, off, fi, true);
}

static void fo_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	router_releasedir((struct router_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void fo_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	/* directory operations are synchronous on every backend */
	fuse_reply_err(req, 0);
}

static void fo_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = router_statfs(path, &st);
	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	fuse_reply_statfs(req, &st);
}

static void fo_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	if (strncmp(name, IMAGE_XATTR_PREFIX, strlen(IMAGE_XATTR_PREFIX)) == 0)
		ret = -EPERM; /* read-only facts about the image */
	else
		ret = router_setxattr(path, name, value, size, flags);
	free(path);
	fuse_reply_err(req, -ret);
}

static bool fo_is_acl_xattr(const char *name)
{
	return strcmp(name, "system.posix_acl_access") == 0 ||
	       strcmp(name, "system.posix_acl_default") == 0;
}

/* getxattr/listxattr share the size-probe protocol. */
static void fo_reply_xattr(fuse_req_t req, ssize_t n, void *buf, size_t size)
{
	if (n < 0)
		fo_reply_err(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, n);
	else
		fuse_reply_buf(req, buf, n);
}

static void fo_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	void *buf = NULL;
	ssize_t n;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	if (size && !(buf = malloc(size))) {
		free(path);
		return fo_reply_err(req, -ENOMEM);
	}
	/* image facts are made up from the file's header, not stored */
	if (strncmp(name, IMAGE_XATTR_PREFIX, strlen(IMAGE_XATTR_PREFIX)) == 0)
		n = image_getxattr(path, name, buf, size);
	else
		n = router_getxattr(path, name, buf, size);
	/* the kernel asks every backend for ACLs once they are on, and takes
	 * any answer but "none" as a failed permission check */
	if (n == -EOPNOTSUPP && fo_is_acl_xattr(name))
		n = -ENODATA;
	free(path);
	fo_reply_xattr(req, n, buf, size);
	free(buf);
}

static void fo_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	ssize_t n;
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	if (size && !(buf = malloc(size))) {
		free(path);
		return fo_reply_err(req, -ENOMEM);
	}
	n = router_listxattr(path, buf, size);
	free(path);
	fo_reply_xattr(req, n, buf, size);
	free(buf);
}

static void fo_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	if (strncmp(name, IMAGE_XATTR_PREFIX, strlen(IMAGE_XATTR_PREFIX)) == 0)
		ret = -EPERM;
	else
		ret = router_removexattr(path, name);
	free(path);
	fuse_reply_err(req, -ret);
}

static void fo_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct vfs_cred cred = fo_cred(req);
	int ret = 0;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = router_access(path, mask, &cred);
	free(path);
	fuse_reply_err(req, -ret);
}

static void fo_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	struct fo_fence fc;
	int ret = fo_fence_begin(ino, fo_file(fi), &fc);

	if (ret == 0)
		ret = (int)fo_fence_end(&fc, router_fallocate(fo_file(fi), mode,
							      offset, length));
	if (ret == 0)
		inode_cache_invalidate(ino);
	fuse_reply_err(req, -ret);
}

static void fo_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	off_t r = router_lseek(fo_file(fi), off, whence);

	if (r < 0)
		return fo_reply_err(req, (int)r);
	fuse_reply_lseek(req, r);
}

static void fo_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	struct fo_fence fc;
	ssize_t n = fo_fence_begin(ino_out, fo_file(fi_out), &fc);

	if (n == 0)
		n = fo_fence_end(&fc,
				 router_copy_range(fo_file(fi_in), off_in,
						   fo_file(fi_out), off_out,
						   len, (unsigned)flags));

	if (n < 0)
		return fo_reply_err(req, (int)n);
	inode_cache_invalidate(ino_out);
	fuse_reply_write(req, n);
}

static struct glock fo_glock(const struct flock *fl, struct fuse_file_info *fi,
			     enum glock_kind kind)
{
	return (struct glock){
		.kind = kind,
		.type = fl->l_type,
		.start = fl->l_start,
		.end = fl->l_len ? fl->l_start + fl->l_len - 1 : INT64_MAX,
		.owner = fi->lock_owner,
		.pid = fl->l_pid,
		.fh = fo_file(fi),
	};
}

static void fo_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	struct glock lk = fo_glock(lock, fi, GLOCK_POSIX);
	char *path = inode_path(ino, &(int){0});
	int ret = glock_test(ino, fo_file(fi), path, &lk);

	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	lock->l_type = lk.type;
	if (lk.type != F_UNLCK) {
		lock->l_start = lk.start;
		lock->l_len = lk.end == INT64_MAX ? 0 : lk.end - lk.start + 1;
		lock->l_pid = lk.pid;
	}
	fuse_reply_lock(req, lock);
}

/* Under a cross-host lock the handle writes through from now on (see
 * fo_write_buf), before its first write, too. */
static void fo_lock_taken(fuse_ino_t ino, struct fuse_file_info *fi, int ret)
{
	if (ret == 0 && glock_write_check(ino) > 0)
		router_file_write_through(fo_file(fi));
}

static bool fo_interrupted(void *req)
{
	return fuse_req_interrupted(req);
}

static void fo_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	struct glock lk = fo_glock(lock, fi, GLOCK_POSIX);
	char *path = inode_path(ino, &(int){0});
	int ret = glock_set(ino, fo_file(fi), path, &lk, sleep != 0,
			    fo_interrupted, req);

	free(path);
	fo_lock_taken(ino, fi, ret);
	fuse_reply_err(req, -ret);
}

static void fo_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     int op)
{
	struct flock fl = {
		.l_type = (op & LOCK_EX)   ? F_WRLCK
			  : (op & LOCK_SH) ? F_RDLCK
					   : F_UNLCK,
	};
	struct glock lk = fo_glock(&fl, fi, GLOCK_FLOCK);
	char *path = inode_path(ino, &(int){0});
	int ret = glock_set(ino, fo_file(fi), path, &lk, !(op & LOCK_NB),
			    fo_interrupted, req);

	free(path);
	fo_lock_taken(ino, fi, ret);
	fuse_reply_err(req, -ret);
}

static const struct fuse_lowlevel_ops fo_ops = {
	.init = fo_init,
	.destroy = fo_destroy,
	.lookup = fo_lookup,
	.forget = fo_forget,
	.forget_multi = fo_forget_multi,
	.getattr = fo_getattr,
	.setattr = fo_setattr,
	.readlink = fo_readlink,
	.mknod = fo_mknod,
	.mkdir = fo_mkdir,
	.symlink = fo_symlink,
	.link = fo_link,
	.unlink = fo_unlink,
	.rmdir = fo_rmdir,
	.rename = fo_rename,
	.open = fo_open,
	.create = fo_create,
	.read = fo_read,
	.write_buf = fo_write_buf,
	.flush = fo_flush,
	.release = fo_release,
	.fsync = fo_fsync,
	.opendir = fo_opendir,
	.readdir = fo_readdir,
	.readdirplus = fo_readdirplus,
	.releasedir = fo_releasedir,
	.fsyncdir = fo_fsyncdir,
	.statfs = fo_statfs,
	.setxattr = fo_setxattr,
	.getxattr = fo_getxattr,
	.listxattr = fo_listxattr,
	.removexattr = fo_removexattr,
	.access = fo_access,
	.fallocate = fo_fallocate,
	.lseek = fo_lseek,
	.copy_file_range = fo_copy_file_range,
	.getlk = fo_getlk,
	.setlk = fo_setlk,
	.flock = fo_flock,
};

const struct fuse_lowlevel_ops *fuse_ops_table(size_t *size)
{
	*size = sizeof(fo_ops);
	return &fo_ops;
}
