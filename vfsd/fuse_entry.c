/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_entry.c - the FUSE requests on names and attributes: lookup, forget,
 * getattr, setattr (with the emulation of FUSE_HANDLE_KILLPRIV_V2: the
 * setuid/setgid bits a write or truncate by someone without CAP_FSETID
 * drops), access, readlink, and the calls that make, link, remove and
 * rename names.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfsd/fuse_internal.h"
#include "lib/clock.h"
#include "vfsd/inode.h"
#include "vfsd/qos.h"

void fo_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct stat st;
	int ret = 0;
	char *path = inode_child_path(parent, name, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	ret = router_getattr(path, &st);
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

void fo_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(ino, nlookup);
	fuse_reply_none(req);
}

void fo_forget_multi(fuse_req_t req, size_t count,
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

void fo_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	double attr_to = 0, entry_to;
	bool shared = false;
	struct stat st;
	int ret = 0;
	char *path = inode_path(ino, &ret);
	struct router_file *rf = NULL;
	int64_t asked = vfs_mono_ns();

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
	/* the kernel drops its pages of a file whose size or times changed
	 * (auto_inval_data): what was read ahead of it goes too */
	fo_data_checked(ino, &st, asked);
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
int fo_killed_mode(const char *path, struct router_file *rf, mode_t *mode)
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
int fo_kill_suidgid(fuse_ino_t ino, struct router_file *rf)
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

void fo_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
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
	/* a truncation, failed or not: see fo_write_admitted */
	if (sa.valid & VFS_SET_SIZE)
		fo_data_changed(ino);
	if (ret < 0)
		return fo_reply_err(req, ret);
	if (sa.valid & VFS_SET_SIZE)
		inode_cache_stamp(ino, &st);
	/* its attributes may show another host's change (the kernel drops
	 * its pages then) */
	fo_data_seen(ino, &st);
	if (fo_open_shared(ino, &st, shared))
		attr_to = 0;
	fuse_reply_attr(req, &st, fo_attr_timeout(ino, &st, attr_to));
}

void fo_readlink(fuse_req_t req, fuse_ino_t ino)
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

void fo_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	      dev_t rdev)
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

void fo_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
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

void fo_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
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

void fo_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
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
	if (ret == 0)
		qos_path_gone(path);
	free(path);
	if (ret == 0)
		inode_unlink(parent, name);
	fuse_reply_err(req, -ret);
}

void fo_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fo_remove(req, parent, name, false);
}

void fo_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fo_remove(req, parent, name, true);
}

void fo_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags)
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
	if (ret == 0) {
		/* the limits stored with the files moved with them: read
		 * again at their next open */
		qos_path_gone(from);
		qos_path_gone(to);
	}
	free(from);
	free(to);
	if (ret == 0)
		inode_rename(parent, name, newparent, newname, flags);
	fuse_reply_err(req, -ret);
}

void fo_access(fuse_req_t req, fuse_ino_t ino, int mask)
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
