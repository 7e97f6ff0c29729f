/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_ops.c - the libfuse low-level operations: the only files that know
 * fuse_req_t are this one and the others of the FUSE layer
 * (fuse_internal.h).  Each request is turned into a node-table lookup
 * (inode.c) and a path-level router call (router.h), and every error is
 * answered with fuse_reply_err(req, -ret) (fo_reply_err here): the one
 * place where a negative errno becomes the positive one libfuse wants.
 *
 * This file holds the configuration, init, the helpers every handler
 * shares and the operations table; the handlers are in fuse_entry.c
 * (names and attributes), fuse_file.c (open files), fuse_dir.c
 * (directories), fuse_xattr.c and fuse_lock.c (locks).  None knows of the
 * image store: it is a layer beneath the router (guestfs/layer.h).
 *
 * fi->fh of an open file holds a pointer to its struct fo_fh
 * (fuse_internal.h), of a directory to the router's handle.  Only the
 * kernel hands it back to us, and it hands back exactly what we gave it.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "vfsd/fuse_internal.h"
#include "vfsd/fuse_ops.h"
#include "vfsd/inode.h"

/* Largest request we negotiate: 1 MiB of data (256 pages). */
#define FO_MAX_IO (1u << 20)

static struct fuse_ops_config fo_cfg;
struct fuse_session *fo_session; /* set before the loop starts */
bool fo_writeback;               /* negotiated in init, read-only afterwards */
static bool fo_dont_mask;        /* the caller's umask reaches us, ditto */
bool fo_posix_acl;               /* the kernel checks POSIX ACLs, ditto */
unsigned fo_kernel_minor;        /* FUSE protocol 7.x of the kernel, ditto */

void fuse_ops_configure(const struct fuse_ops_config *cfg)
{
	fo_cfg = *cfg;
}

void fuse_ops_set_session(struct fuse_session *se)
{
	fo_session = se;
}

void fuse_ops_mounted(dev_t dev)
{
	fo_bg_set_dev(dev);
	/* before the first request is parked: nothing waits for it */
	fo_bg_prepare();
}

static void fo_fh_free_all(void);

void fuse_ops_drain(void)
{
	/* libfuse cancelled its workers where a fault rule paused them;
	 * the threads of parked requests wait for theirs to end */
	router_detach_faults();
	fo_wait_stop();
	fo_fh_free_all();
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

/* Where prefix p lies strictly beneath directory dir: the rest of p after
 * dir's "/", else NULL. */
static const char *fo_beneath(const char *dir, const char *p)
{
	size_t len = strlen(dir);

	if (len == 1)
		return p[1] ? p + 1 : NULL;
	return strncmp(p, dir, len) == 0 && p[len] == '/' ? p + len + 1 : NULL;
}

/*
 * A mount with others still mounted beneath it (`below`, their prefixes)
 * was removed: directory `dir`'s node dies, and so does every name in it
 * but those on the way to them, and so on down to each of them.  A new
 * node of no identity takes dir's name and the names kept (the directory
 * there now is another object: vfsd's virtual one, or the root of the
 * next mount at the prefix), so what the kernel holds of the mounts
 * beneath goes on working, and what it holds of the removed one answers
 * ESTALE.  The root stays the root (prefix "/").  0, or -ENOMEM (maybe
 * done in part).
 */
static int fo_forget_beneath(const char *dir, char *const *below)
{
	size_t n = 0, nkeep = 0;
	char **keep;
	uint64_t ino;
	int ret = 0;

	while (below[n])
		n++;
	keep = calloc(n + 1, sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *rest = fo_beneath(dir, below[i]);
		size_t clen;
		bool dup = false;

		if (!rest)
			continue;
		clen = strcspn(rest, "/");
		for (size_t k = 0; k < nkeep && !dup; k++)
			dup = strlen(keep[k]) == clen &&
			      strncmp(keep[k], rest, clen) == 0;
		if (dup)
			continue;
		keep[nkeep] = strndup(rest, clen);
		if (!keep[nkeep]) {
			ret = -ENOMEM;
			goto out;
		}
		nkeep++;
	}
	if (!dir[1]) {
		ret = inode_unlink_children(INODE_ROOT,
					    (const char *const *)keep);
	} else {
		char *up = strdup(dir), *slash;

		if (!up) {
			ret = -ENOMEM;
			goto out;
		}
		slash = strrchr(up, '/');
		*slash = '\0';
		ino = inode_find(*up ? up : "/");
		if (ino)
			ret = inode_replace_dir(ino, slash + 1,
						(const char *const *)keep);
		free(up);
	}
	for (size_t k = 0; k < nkeep && ret == 0; k++) {
		char *child;
		bool mounted = false;

		if (asprintf(&child, "%s%s%s", dir, dir[1] ? "/" : "",
			     keep[k]) < 0) {
			ret = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < n && !mounted; i++)
			mounted = strcmp(child, below[i]) == 0;
		/* a mount beneath: its nodes are its own */
		if (!mounted)
			ret = fo_forget_beneath(child, below);
		free(child);
	}
out:
	for (size_t k = 0; k < nkeep; k++)
		free(keep[k]);
	free(keep);
	return ret;
}

void fuse_ops_forget_mount(const char *prefix)
{
	char **below = router_prefixes_beneath(prefix);
	char *dir, *slash;
	uint64_t parent;

	/* With mounts beneath (for the root prefix, at least vfsd's own),
	 * only what is not on the way to them dies. */
	if (below && below[0] && fo_forget_beneath(prefix, below) == 0)
		goto out;
	/* Else (or out of memory: too much rather than too little) the
	 * prefix's node loses its name: the paths of the nodes beneath it
	 * end there. */
	dir = strdup(prefix);
	if (dir) {
		slash = strrchr(dir, '/');
		if (slash && slash[1]) {
			*slash = '\0';
			parent = inode_find(*dir ? dir : "/");
			if (parent)
				inode_unlink(parent, slash + 1);
		} else if (slash) {
			inode_unlink_children(INODE_ROOT, NULL);
		}
		free(dir);
	}
out:
	for (size_t i = 0; below && below[i]; i++)
		free(below[i]);
	free(below);
	fuse_ops_invalidate_path(prefix);
}

bool fuse_ops_writeback(void)
{
	return fo_writeback;
}

/* Takes over rf's reference: released with the struct, also on failure
 * (NULL). */
/*
 * Every handle, so that those the kernel never released go at exit: a
 * vfsd ended (SIGTERM, an unmount) while programs still hold files open
 * gets no RELEASE for them, and their backend handles (write-behind
 * queues, server handles, locks) must still be closed, not forgotten.
 */
static pthread_mutex_t fh_all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fo_fh *fh_all;

struct fo_fh *fo_fh_new(struct router_file *rf)
{
	struct fo_fh *fh = calloc(1, sizeof(*fh));

	if (!fh) {
		router_release(rf);
		return NULL;
	}
	fh->rf = rf;
	fh->pt_mode = PT_UNTRACKED;
	atomic_init(&fh->pt_kill_on_close, false);
	pthread_mutex_lock(&fh_all_lock);
	fh->all_next = fh_all;
	if (fh_all)
		fh_all->all_pprev = &fh->all_next;
	fh->all_pprev = &fh_all;
	fh_all = fh;
	pthread_mutex_unlock(&fh_all_lock);
	return fh;
}

void fo_fh_free(struct fo_fh *fh)
{
	pthread_mutex_lock(&fh_all_lock);
	*fh->all_pprev = fh->all_next;
	if (fh->all_next)
		fh->all_next->all_pprev = fh->all_pprev;
	pthread_mutex_unlock(&fh_all_lock);
	fo_wait_forget(fh);
	router_release(fh->rf);
	free(fh);
}

/* After the loop: the handles the kernel will never release now. */
static void fo_fh_free_all(void)
{
	size_t n = 0;

	for (;;) {
		struct fo_fh *fh;

		pthread_mutex_lock(&fh_all_lock);
		fh = fh_all;
		pthread_mutex_unlock(&fh_all_lock);
		if (!fh)
			break;
		router_ra_drop(fh->rf);
		fo_fh_free(fh);
		n++;
	}
	/* reads ahead under way hold their files: the last releases come
	 * when they end (fault rules were detached: within the timeouts) */
	router_ra_quiesce();
	if (n)
		log_info("closed %zu file%s still open at the end", n,
			 n == 1 ? "" : "s");
}

struct fo_fh *fo_fh(struct fuse_file_info *fi)
{
	return (struct fo_fh *)(uintptr_t)fi->fh;
}

struct router_file *fo_file(struct fuse_file_info *fi)
{
	return fo_fh(fi)->rf;
}

struct vfs_cred fo_cred(fuse_req_t req)
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

void fo_cred_groups(fuse_req_t req, struct vfs_cred *cred, gid_t *buf)
{
	int n = -1;

	if (geteuid() == 0 && (cred->uid != 0 || cred->gid != 0))
		n = fuse_req_getgroups(req, FO_MAX_GROUPS, buf);
	cred->groups = buf;
	cred->ngroups = n < 0 ? -1 : n > FO_MAX_GROUPS ? FO_MAX_GROUPS : n;
}

void fo_reply_err(fuse_req_t req, int ret)
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
double fo_attr_timeout(fuse_ino_t ino, const struct stat *st, double timeout)
{
	if (S_ISREG(st->st_mode) && st->st_nlink > 1 && !inode_keyed(ino))
		return 0;
	return timeout;
}

/* The kernel entry for node e->ino, which has attributes st at path. */
void fo_entry_fill(const char *path, const struct stat *st,
		   struct fuse_entry_param *e)
{
	bool shared;

	e->generation = 1;
	e->attr = *st;
	router_timeouts(path, &e->attr_timeout, &e->entry_timeout, &shared);
	e->attr_timeout =
		fo_entry_attr_timeout(e->ino, st, e->attr_timeout, shared);
}

double fo_entry_attr_timeout(fuse_ino_t ino, const struct stat *st,
			     double timeout, bool shared)
{
	/* the kernel drops its pages of a file whose times it finds
	 * changed here, and what was read ahead of it must go with them;
	 * an open file on shared storage is never attribute-cached (see
	 * fo_getattr), whichever request brought its attributes */
	fo_data_seen(ino, st);
	if (shared && S_ISREG(st->st_mode) && timeout > 0 &&
	    inode_has_handles(ino))
		return 0;
	return fo_attr_timeout(ino, st, timeout);
}

/* Turn new attributes for `name` in `parent` into a kernel entry. */
int fo_make_entry(fuse_ino_t parent, const char *name, const char *path,
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
	fo_posix_acl = (conn->want & FUSE_CAP_POSIX_ACL) != 0;
	if (fo_cfg.posix_acl && !(conn->want & FUSE_CAP_POSIX_ACL))
		log_warn("the kernel does not offer FUSE POSIX ACLs: access is "
			 "checked on mode bits only");
	fo_kernel_minor = conn->proto_minor;
	conn->max_write = FO_MAX_IO;
	conn->max_background = FO_MAX_BACKGROUND;
	conn->congestion_threshold = FO_CONGESTION_THRESHOLD;
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
