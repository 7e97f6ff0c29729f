/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * namespace.c - names on the server: the status-only path calls
 * (nfsb_simple), readlink, mknod, mkdir, symlink, link, unlink, rmdir,
 * rename, and the owner of what we create.
 */
#include "backends/nfs/internal.h"

struct nfsb_simplereq {
	enum nfsb_simple what;
	const struct nfsb_args *g;
};

static int nfsb_start_simple(struct nfsb_op *op, struct nfsb_wait *w, void *arg)
{
	const struct nfsb_simplereq *r = arg;
	const struct nfsb_args *g = r->g;
	struct nfs_context *n = op->nfs;

	switch (r->what) {
	case NFSB_CHMOD:
		return nfs_lchmod_async(n, g->a, (int)g->x, nfsb_cb_status, w);
	case NFSB_CHOWN:
		return nfs_lchown_async(n, g->a, (int)g->x, (int)g->y,
					nfsb_cb_status, w);
	case NFSB_TRUNCATE:
		return nfs_truncate_async(n, g->a, (uint64_t)g->x,
					  nfsb_cb_status, w);
	case NFSB_UTIMES:
		return nfs_lutimes_async(n, g->a, g->tv, nfsb_cb_status, w);
	case NFSB_MKDIR:
		return nfs_mkdir2_async(n, g->a, (int)g->x, nfsb_cb_status, w);
	case NFSB_MKNOD:
		return nfs_mknod_async(n, g->a, (int)g->x, (int)g->y,
				       nfsb_cb_status, w);
	case NFSB_SYMLINK:
		return nfs_symlink_async(n, g->b, g->a, nfsb_cb_status, w);
	case NFSB_LINK:
		return nfs_link_async(n, g->b, g->a, nfsb_cb_status, w);
	case NFSB_UNLINK:
		return nfs_unlink_async(n, g->a, nfsb_cb_status, w);
	case NFSB_RMDIR:
		return nfs_rmdir_async(n, g->a, nfsb_cb_status, w);
	case NFSB_RENAME:
		return nfs_rename_async(n, g->b, g->a, nfsb_cb_status, w);
	}
	return -EINVAL;
}

/*
 * Run one status-only call with one retry on a broken connection.
 * Non-idempotent calls are retried too, but the server may have carried
 * out the first try before its reply was lost with the connection: the
 * callers of nfsb_simple_resent() then judge an EEXIST or ENOENT of the
 * retry by what the server holds, as the kernel's NFS client does (a
 * retried REMOVE's ENOENT is its success).
 */
int nfsb_simple_resent(struct nfsb_mount *m, enum nfsb_simple what,
		       const struct nfsb_args *g, bool *resent)
{
	struct nfsb_simplereq r = {what, g};

	return nfsb_call_resent(m, nfsb_start_simple, &r, resent);
}

int nfsb_simple(struct nfsb_mount *m, enum nfsb_simple what,
		const struct nfsb_args *g)
{
	bool resent;

	return nfsb_simple_resent(m, what, g, &resent);
}

/* One object seen twice: the same file handle's fileid on one file
 * system, and the same type. */
static bool nfsb_same_object(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT);
}

/* A call made again after its first reply was lost succeeds by what the
 * first try did: say so, since the answer vfsd got said otherwise. */
static void nfsb_log_resent(struct nfsb_mount *m, const char *what,
			    const char *full)
{
	log_info("%s: %s %s: done by the try whose reply was lost", m->display,
		 what, full);
}

/* Whether the directory holding `full` is setgid (then the server gave its
 * group to a new object there, as any file system does). */
static bool nfsb_parent_setgid(struct nfsb_mount *m, const char *full)
{
	char *dir = vfs_path_parent(full);
	struct stat st;
	bool sgid = false;

	if (dir) {
		sgid = nfsb_lstat_full(m, dir, &st, false) == 0 &&
		       (st.st_mode & S_ISGID);
	}
	free(dir);
	return sgid;
}

/*
 * New objects get the caller's owner when we run as root (the server saw
 * AUTH_SYS uid 0, or the uid= option), and the caller's group unless a
 * setgid directory chose it.  The server's chown clears setuid and setgid
 * bits of a regular file, so they are given back afterwards.
 *
 * A new file is changed through the handle its create returned: in a
 * directory that others may write to on the server, the name may meanwhile
 * hold something else.  libnfs returns no handle for mkdir, mknod and
 * symlink, so those go by name, and only while the name still shows an
 * object that the server gave our own identity (st, read just before): a
 * user who renames another user's object there in the meantime is not
 * given it.  What remains (an object of our own identity swapped in, a
 * directory of the path swapped for a symlink, which libnfs follows) is
 * closed only by creating with the caller's credentials and by handles
 * instead of paths (docs/security.md).
 */
int nfsb_chown_new(struct nfsb_mount *m, const char *full, struct nfsb_file *nf,
		   const struct vfs_cred *cred, struct stat *st)
{
	struct vfs_setattr sa = {.valid = VFS_SET_UID,
				 .uid = cred ? cred->uid : 0,
				 .gid = cred ? cred->gid : 0};
	mode_t sxid = st->st_mode & (S_ISUID | S_ISGID);
	int ret;

	if (!m->root_user || !cred)
		return 0;
	if (!nfsb_parent_setgid(m, full))
		sa.valid |= VFS_SET_GID;
	if (st->st_uid == cred->uid &&
	    (!(sa.valid & VFS_SET_GID) || st->st_gid == cred->gid))
		return 0;
	/* not what we made (any more), or a squashing server's: leave it;
	 * through an NFSv3 handle too, which libnfs 4.0 found by name */
	if (st->st_uid != m->auth_uid && (!nf || m->version == 3))
		return 0;
	ret = nf ? nfsb_fsetattr(nf, &sa) : nfsb_setattr_path(m, full, &sa);
	if (ret == 0 && S_ISREG(st->st_mode) && sxid) {
		struct vfs_setattr mode = {.valid = VFS_SET_MODE,
					   .mode = st->st_mode & 07777};

		ret = nf ? nfsb_fsetattr(nf, &mode)
			 : nfsb_setattr_path(m, full, &mode);
	}
	if (ret == 0) {
		st->st_uid = cred->uid;
		if (sa.valid & VFS_SET_GID)
			st->st_gid = cred->gid;
	}
	return ret;
}

/* What an exclusive CREATE just made looks like: an empty regular file
 * with one name, never renamed nor changed since (a rename sets its ctime
 * past its mtime). */
bool nfsb_fresh_file(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_nlink == 1 && st->st_size == 0 &&
	       st->st_mtim.tv_sec == st->st_ctim.tv_sec &&
	       st->st_mtim.tv_nsec == st->st_ctim.tv_nsec;
}

/* After creating `full`: fetch its attributes and fix the owner. */
static int nfsb_created(struct nfsb_mount *m, const char *full,
			const struct vfs_cred *cred, struct stat *st)
{
	uint64_t gen;
	int ret;

	nfsb_invalidate(m, full);
	gen = remote_cache_gen(m->cache);
	ret = nfsb_lstat_full(m, full, st, false);
	if (ret == 0)
		ret = nfsb_chown_new(m, full, NULL, cred, st);
	if (ret == 0)
		remote_cache_put_attr(m->cache, full, st, gen);
	return ret;
}

struct nfsb_readlinkreq {
	struct nfsb_ptrreq r; /* the target, malloc'd */
	const char *full;
};

static int nfsb_start_readlink(struct nfsb_op *op, struct nfsb_wait *w,
			       void *arg)
{
	struct nfsb_readlinkreq *rl = arg;

	free(rl->r.ptr); /* of a try that failed after all */
	rl->r = (struct nfsb_ptrreq){w, NULL};
	return nfs_readlink_async(op->nfs, rl->full, nfsb_cb_strdup, &rl->r);
}

/* The target of the symlink at `full` into *target (malloc'd): 0 or
 * -errno. */
static int nfsb_readlink_full(struct nfsb_mount *m, const char *full,
			      char **target)
{
	struct nfsb_readlinkreq rl = {{NULL, NULL}, full};
	int ret;

	if (m->version == 4)
		return nfsb_v4_readlink(m, full, target);
	ret = nfsb_call(m, nfsb_start_readlink, &rl);
	if (ret < 0)
		free(rl.r.ptr);
	else
		*target = rl.r.ptr;
	return ret;
}

/*
 * A resent MKDIR, MKNOD or SYMLINK answered EEXIST: whether `full` is now
 * what the first try asked for (its type; a device's number; a symlink's
 * target), which the first try then made.  Anything else there is the
 * genuine EEXIST.
 *
 * Nothing tells an object the first try made from one made by someone
 * else just before it arrived (the first try's lost reply was then that
 * EEXIST): so when we run as root, only an object the caller owns
 * already is taken as made.  One of our own identity would otherwise be
 * given to the caller (nfsb_created -> nfsb_chown_new): root's directory
 * to any user who can write its parent.
 */
static bool nfsb_resent_made(struct nfsb_mount *m, const char *full,
			     const struct vfs_cred *cred, mode_t mode,
			     dev_t rdev, const char *target)
{
	struct stat st;
	char *link = NULL;
	bool made;

	if (nfsb_lstat_full(m, full, &st, false) < 0 ||
	    (st.st_mode & S_IFMT) != (mode & S_IFMT))
		return false;
	if (m->root_user && cred && st.st_uid != cred->uid)
		return false;
	if ((S_ISCHR(mode) || S_ISBLK(mode)) && st.st_rdev != rdev)
		return false;
	if (!S_ISLNK(mode))
		return true;
	made = nfsb_readlink_full(m, full, &link) == 0 &&
	       strcmp(link, target) == 0;
	free(link);
	return made;
}

ssize_t nfsb_readlink(struct vfs_mount *vm, const char *path, char *buf,
		      size_t size)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	char *target = NULL;
	ssize_t len;
	int ret;

	if (!full)
		return -ENOMEM;
	ret = nfsb_readlink_full(m, full, &target);
	free(full);
	if (ret < 0)
		return ret;
	len = (ssize_t)strlen(target);
	memcpy(buf, target, (size_t)len < size ? (size_t)len : size);
	free(target);
	return len;
}

int nfsb_mknod(struct vfs_mount *vm, const char *path, mode_t mode, dev_t rdev,
	       const struct vfs_cred *cred, struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	int ret;

	if (!full)
		return -ENOMEM;
	g = (struct nfsb_args){.a = full, .x = mode, .y = (long long)rdev};
	if (S_ISREG(mode)) {
		struct vfs_file *f;

		free(full);
		ret = vm->ops->create(vm, path, O_CREAT | O_EXCL | O_WRONLY,
				      mode, cred, &f, st);
		if (ret == 0)
			vm->ops->release(f);
		return ret;
	}
	if (m->version == 4) {
		ret = nfsb_v4_mknod(m, full, mode, rdev);
	} else {
		bool resent;

		ret = nfsb_simple_resent(m, NFSB_MKNOD, &g, &resent);
		if (ret == -EEXIST && resent &&
		    nfsb_resent_made(m, full, cred, mode, rdev, NULL)) {
			nfsb_log_resent(m, "mknod", full);
			ret = 0;
		}
	}
	if (ret == 0)
		ret = nfsb_created(m, full, cred, st);
	else
		nfsb_invalidate(m, full);
	free(full);
	return ret;
}

int nfsb_mkdir(struct vfs_mount *vm, const char *path, mode_t mode,
	       const struct vfs_cred *cred, struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	bool resent;
	int ret;

	if (!full)
		return -ENOMEM;
	g = (struct nfsb_args){.a = full, .x = mode & 07777};
	ret = nfsb_simple_resent(m, NFSB_MKDIR, &g, &resent);
	if (ret == -EEXIST && resent &&
	    nfsb_resent_made(m, full, cred, S_IFDIR, 0, NULL)) {
		nfsb_log_resent(m, "mkdir", full);
		ret = 0;
	}
	if (ret == 0)
		ret = nfsb_created(m, full, cred, st);
	else
		nfsb_invalidate(m, full);
	free(full);
	return ret;
}

int nfsb_symlink(struct vfs_mount *vm, const char *target, const char *path,
		 const struct vfs_cred *cred, struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	bool resent;
	int ret;

	if (!full)
		return -ENOMEM;
	g = (struct nfsb_args){.a = full, .b = target};
	ret = nfsb_simple_resent(m, NFSB_SYMLINK, &g, &resent);
	if (ret == -EEXIST && resent &&
	    nfsb_resent_made(m, full, cred, S_IFLNK, 0, target)) {
		nfsb_log_resent(m, "symlink", full);
		ret = 0;
	}
	if (ret == 0)
		ret = nfsb_created(m, full, cred, st);
	else
		nfsb_invalidate(m, full);
	free(full);
	return ret;
}

int nfsb_link(struct vfs_mount *vm, const char *from, const char *to,
	      struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *ffrom = nfsb_path(m, from), *fto = nfsb_path(m, to);
	struct nfsb_args g;
	struct stat src;
	bool resent;
	int ret = -ENOMEM;

	if (!ffrom || !fto)
		goto out;
	g = (struct nfsb_args){.a = fto, .b = ffrom};
	ret = nfsb_simple_resent(m, NFSB_LINK, &g, &resent);
	nfsb_invalidate(m, fto);
	nfsb_invalidate(m, ffrom); /* nlink and ctime changed */
	if (ret == 0) {
		ret = nfsb_lstat_full(m, fto, st, false);
	} else if (ret == -EEXIST && resent &&
		   nfsb_lstat_full(m, fto, st, false) == 0 &&
		   nfsb_lstat_full(m, ffrom, &src, false) == 0 &&
		   nfsb_same_object(st, &src)) {
		/* the new name is the file linked: the first try's */
		nfsb_log_resent(m, "link", fto);
		ret = 0;
	}
out:
	free(ffrom);
	free(fto);
	return ret;
}

int nfsb_unlink(struct vfs_mount *vm, const char *path)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	struct stat st;
	bool linked = false;
	int ret;

	if (!full)
		return -ENOMEM;
	/* Other names of a hard-linked inode change nlink: if it may have
	 * some, forget every cached attribute, else just this name's. */
	if (!remote_cache_get_attr(m->cache, full, &st) || st.st_nlink != 1 ||
	    S_ISDIR(st.st_mode))
		linked = true;
	ret = nfsb_silly_rename(m, full);
	if (ret == 0) {
		bool resent;

		g = (struct nfsb_args){.a = full};
		ret = nfsb_simple_resent(m, NFSB_UNLINK, &g, &resent);
		if (ret == -ENOENT && resent) {
			nfsb_log_resent(m, "remove", full);
			ret = 0;
		}
	} else if (ret > 0) {
		ret = 0;
	}
	if (linked)
		remote_cache_clear(m->cache);
	else
		nfsb_invalidate(m, full);
	free(full);
	return ret;
}

int nfsb_rmdir(struct vfs_mount *vm, const char *path)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	bool resent;
	int ret;

	if (!full)
		return -ENOMEM;
	g = (struct nfsb_args){.a = full};
	ret = nfsb_simple_resent(m, NFSB_RMDIR, &g, &resent);
	if (ret == -ENOENT && resent) {
		nfsb_log_resent(m, "rmdir", full);
		ret = 0;
	}
	remote_cache_clear(m->cache);
	free(full);
	return ret;
}

int nfsb_rename_full(struct nfsb_mount *m, const char *from, const char *to)
{
	struct nfsb_args g = {.a = to, .b = from};
	struct stat before, after;
	bool known, resent;
	int ret;

	/* The source's identity, to know it at the target should the reply
	 * be lost: from the cache where it has it (the kernel looked the
	 * name up just before), else one more round trip. */
	known = nfsb_lstat_full(m, from, &before, true) == 0;
	ret = nfsb_simple_resent(m, NFSB_RENAME, &g, &resent);
	if (ret == -ENOENT && resent && known &&
	    nfsb_lstat_full(m, to, &after, false) == 0 &&
	    nfsb_same_object(&before, &after)) {
		nfsb_log_resent(m, "rename", from);
		ret = 0;
	}
	return ret;
}

int nfsb_rename(struct vfs_mount *vm, const char *from, const char *to,
		unsigned flags)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *ffrom, *fto;
	int ret = -ENOMEM;

	/* NFS RENAME replaces atomically but knows no flags: NOREPLACE is
	 * a check before the RENAME (not atomic against other clients). */
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	ffrom = nfsb_path(m, from);
	fto = nfsb_path(m, to);
	if (!ffrom || !fto)
		goto out;
	if (flags & RENAME_NOREPLACE) {
		struct stat st;

		ret = nfsb_lstat_full(m, fto, &st, false);
		if (ret == 0)
			ret = -EEXIST;
		if (ret != -ENOENT)
			goto out;
	}
	/* A target open here would lose its handles: keep it aside. */
	if (strcmp(ffrom, fto) != 0) {
		ret = nfsb_silly_rename(m, fto);
		if (ret < 0)
			goto out;
	}
	ret = nfsb_rename_full(m, ffrom, fto);
	if (ret == 0) {
		pthread_mutex_lock(&m->open_lock);
		nfsb_moved_locked(m, ffrom, fto, false);
		pthread_mutex_unlock(&m->open_lock);
	}
	remote_cache_clear(m->cache);
out:
	free(ffrom);
	free(fto);
	return ret;
}
