/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local.c - the "file" backend: a directory of this host.
 *
 * Confinement: the mount holds an O_PATH fd of its root, and every path is
 * resolved beneath it with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS) for the parent directory, then the final component
 * is used with *at() calls that never follow a symlink.  The kernel resolves
 * symlinks of the FUSE namespace itself (it asks readlink and looks the
 * target up), so a symlink met by the daemon inside a path means the tree
 * changed under a request in flight - for instance a directory swapped for
 * a link to /etc - and the request fails with ELOOP instead of leaving the
 * root.  Operations with no *at() form that refuses to follow (chmod,
 * truncate, xattrs) go through /proc/self/fd/N of an O_PATH|O_NOFOLLOW fd,
 * which names the inode already resolved, not a path.
 *
 * Paths of PATH_MAX bytes or more (the kernel sends any depth, each name
 * at most NAME_MAX) do not fit one openat2: they are resolved in pieces
 * (local_walk), with the same flags, each beneath the directory the one
 * before reached.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/callctx.h"
#include "lib/log.h"

/* Alignment O_DIRECT is held to; 4096 satisfies every block device and
 * filesystem we meet (512-byte sectors included). */
#define LOCAL_DIO_ALIGN 4096

struct local_mount {
	struct vfs_mount base; /* first: the router sees only this */
	int rootfd;            /* O_PATH|O_DIRECTORY of the root */
	bool root_user;        /* daemon runs as root: create as the caller */
};

struct local_file {
	struct vfs_file base; /* first */
	int fd;               /* as opened, O_DIRECT included */
	int bfd; /* buffered twin for unaligned O_DIRECT I/O, or -1 */
};

struct vfs_dir {
	DIR *dp;
	off_t pos; /* offset the stream is at, or -1 when unknown */
};

/* A resolved path: dirfd + final name, as *at() calls want them. */
struct local_path {
	int dirfd;
	bool own;           /* dirfd must be closed */
	const char *name;   /* "" for the root itself */
	char buf[PATH_MAX]; /* the parent's path, or a piece of it */
};

static struct local_mount *local_m(struct vfs_mount *m)
{
	return (struct local_mount *)m;
}

static struct local_file *local_f(struct vfs_file *f)
{
	return (struct local_file *)f;
}

static int local_openat2(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned long long)flags | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	if (fd < 0)
		return errno == EXDEV ? -EACCES : -errno;
	return (int)fd;
}

/*
 * Open the directory `dir` (dlen bytes, relative to the root) that is too
 * long for one openat2, as the kernel walks a path: in pieces of whole
 * components, each shorter than PATH_MAX and opened with local_openat2
 * beneath the directory the piece before reached.  Confinement holds by
 * induction: every piece stays beneath its start (RESOLVE_BENEATH), which
 * is beneath the root, and a symlink in any piece fails the walk (ELOOP),
 * as it fails one call.  `buf` (PATH_MAX bytes) holds each piece.
 * Returns an O_PATH fd the caller closes, or -errno.
 */
static int local_walk(struct local_mount *lm, const char *dir, size_t dlen,
		      char *buf)
{
	int cur = lm->rootfd;
	size_t off = 0;

	while (off < dlen) {
		size_t len = dlen - off;
		int fd;

		if (len >= PATH_MAX) {
			/* the last whole component that keeps the piece
			 * short; none when one name alone is that long (a
			 * loop, not memrchr: gcc's -fsanitize=undefined
			 * then believes dir may be NULL, -Werror=nonnull) */
			len = PATH_MAX - 2;
			while (len > 0 && dir[off + len] != '/')
				len--;
			if (len == 0) {
				fd = -ENAMETOOLONG;
				goto next;
			}
		}
		memcpy(buf, dir + off, len);
		buf[len] = '\0';
		fd = local_openat2(cur, buf, O_PATH | O_DIRECTORY);
	next:
		if (cur != lm->rootfd)
			close(cur);
		if (fd < 0)
			return fd;
		cur = fd;
		off += len + 1; /* and the '/' after the piece */
	}
	return cur;
}

/*
 * Split a mount-relative path into a confined parent dirfd and its final
 * component.  The root itself comes back as (rootfd, "").
 */
static int local_resolve(struct local_mount *lm, const char *path,
			 struct local_path *lp)
{
	const char *rel = path + 1, *slash;
	size_t dlen;
	int fd;

	lp->own = false;
	lp->dirfd = lm->rootfd;
	if (!*rel) {
		lp->name = "";
		return 0;
	}
	slash = strrchr(rel, '/');
	if (!slash) {
		lp->name = rel;
		return 0;
	}
	dlen = slash - rel;
	if (dlen < sizeof(lp->buf)) {
		memcpy(lp->buf, rel, dlen);
		lp->buf[dlen] = '\0';
		fd = local_openat2(lm->rootfd, lp->buf, O_PATH | O_DIRECTORY);
	} else {
		fd = local_walk(lm, rel, dlen, lp->buf);
	}
	if (fd < 0)
		return fd;
	lp->dirfd = fd;
	lp->own = true;
	lp->name = slash + 1;
	return 0;
}

static void local_path_done(struct local_path *lp)
{
	if (lp->own)
		close(lp->dirfd);
}

/*
 * An fd of the object at `path` itself, opened with `flags` beneath the
 * root.  A path too long for one openat2 opens its final name in the
 * parent local_resolve walked to.
 */
static int local_open_at(struct local_mount *lm, const char *path, int flags)
{
	struct local_path lp;
	int fd = local_openat2(lm->rootfd, path[1] ? path + 1 : ".", flags);

	/* costs nothing unless the one call failed */
	if (fd != -ENAMETOOLONG || strlen(path + 1) < PATH_MAX)
		return fd;
	fd = local_resolve(lm, path, &lp);
	if (fd < 0)
		return fd;
	fd = local_openat2(lp.dirfd, lp.name, flags);
	local_path_done(&lp);
	return fd;
}

/* An O_PATH fd of the object itself, never through a final symlink. */
static int local_open_path(struct local_mount *lm, const char *path)
{
	return local_open_at(lm, path, O_PATH | O_NOFOLLOW);
}

static int local_stat_at(struct local_path *lp, struct stat *st)
{
	int flags = AT_SYMLINK_NOFOLLOW | (*lp->name ? 0 : AT_EMPTY_PATH);

	return fstatat(lp->dirfd, lp->name, st, flags) < 0 ? -errno : 0;
}

/* ---- Instance ---------------------------------------------------- */

static const struct vfs_opt_spec local_opts[] = {
	{.name = "cache_ttl",
	 .type = VFS_OPT_INT,
	 .def = "1",
	 .min = 0,
	 .max = 3600,
	 .help = "seconds the kernel may cache attributes and names"},
	{.name = "shared",
	 .type = VFS_OPT_BOOL,
	 .def = "no",
	 .help = "the directory is on storage other hosts use too (a cluster "
		 "or network file system): cross-host locks and coherence"},
	{.name = "passthrough",
	 .type = VFS_OPT_BOOL,
	 .def = "yes",
	 .help = "let the kernel read and write open files directly (Linux "
		 "6.9+, not with shared = yes)"},
	{0}};

static int local_mount(const struct vfs_url *url, const struct vfs_opts *opts,
		       struct vfs_mount **out, struct vfs_error *err)
{
	struct local_mount *lm;
	struct stat st;
	int fd;

	if (url->host && *url->host && strcmp(url->host, "localhost") != 0)
		return vfs_error_set(
			err, EINVAL,
			"%s: file URLs take no host (file:///abs/path)",
			url->raw);
	fd = open(url->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		return vfs_error_set(err, e, "%s: %s: %s", url->raw, url->path,
				     strerror(e));
	}
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return vfs_error_set(err, ENOTDIR, "%s: not a directory",
				     url->raw);
	}
	/* openat2 arrived in Linux 5.6: refuse to run unconfined without it */
	{
		int probe = local_openat2(fd, ".", O_PATH);

		if (probe < 0) {
			close(fd);
			return vfs_error_set(
				err, -probe,
				"%s: openat2() unavailable (%s); Linux 5.6 or "
				"later is needed for confinement",
				url->raw, strerror(-probe));
		}
		close(probe);
	}
	lm = calloc(1, sizeof(*lm));
	if (!lm) {
		close(fd);
		return vfs_error_set(err, ENOMEM, "out of memory");
	}
	lm->rootfd = fd;
	lm->root_user = geteuid() == 0;
	lm->base.caps = VFS_CAP_PUNCH_HOLE | VFS_CAP_RENAME_FLAGS |
			VFS_CAP_MKNOD | VFS_CAP_STABLE_FSYNC |
			VFS_CAP_STABLE_INO | VFS_CAP_OWN_UMASK;
	/*
	 * A shared directory keeps every write on the daemon's path: a
	 * cross-host lock holder whose lease ran out must be stopped there.
	 */
	if (vfs_opts_get_bool(opts, "shared"))
		lm->base.caps |= VFS_CAP_SHARED;
	else if (vfs_opts_get_bool(opts, "passthrough"))
		lm->base.caps |= VFS_CAP_PASSTHROUGH;
	lm->base.attr_timeout = (double)vfs_opts_get_int(opts, "cache_ttl");
	lm->base.entry_timeout = lm->base.attr_timeout;
	*out = &lm->base;
	return 0;
}

static void local_unmount(struct vfs_mount *m)
{
	struct local_mount *lm = local_m(m);

	close(lm->rootfd);
	free(lm);
}

static int local_statfs(struct vfs_mount *m, const char *path,
			struct statvfs *st)
{
	return fstatvfs(local_m(m)->rootfd, st) < 0 ? -errno : 0;
}

/* ---- Namespace --------------------------------------------------- */

static int local_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	struct local_path lp;
	int ret = local_resolve(local_m(m), path, &lp);

	if (ret < 0)
		return ret;
	ret = local_stat_at(&lp, st);
	local_path_done(&lp);
	return ret;
}

/*
 * Give the calling thread the caller's umask for one creating call, so that
 * the file system beneath applies it, or a default ACL of the parent in its
 * place, as it would for the caller itself.  The umask belongs to the
 * process unless a thread has a filesystem context of its own, so each
 * thread that creates unshares its own once (CLONE_FS: cwd, root and umask,
 * none of which the daemon otherwise uses) and keeps setting it.  Where
 * that fails the mode is masked here, default ACLs aside.
 */
static __thread signed char local_own_fs; /* 0 unknown, 1 own, -1 failed */

static mode_t local_umask(mode_t mode, const struct vfs_cred *cred)
{
	if (!local_own_fs)
		local_own_fs = unshare(CLONE_FS) == 0 ? 1 : -1;
	if (local_own_fs < 0)
		return mode & ~cred->umask;
	umask(cred->umask);
	return mode;
}

/*
 * Creating calls run as their caller: for that one call the thread takes
 * the caller's fsuid, fsgid and groups, so the file system beneath makes
 * the object the caller's itself - owner, a setgid directory's group,
 * set-id bits the caller may have - and checks the caller's right to
 * make it (quotas aside: the thread keeps CAP_SYS_RESOURCE).  No chown follows,
 * so there is no moment in which another user could swap the new name for one
 * of theirs.  fsuid and fsgid belong to the thread; so do the groups when set
 * by the system call itself (glibc's setgroups() changes every thread).  The
 * kernel drops the thread's file capabilities with a non-zero fsuid and raises
 * them again with 0.  Groups vfsd could not learn (a caller in another PID
 * namespace) leave the primary group alone; with default_permissions the kernel
 * has checked the caller's whole list before.
 */
static gid_t local_groups0[NGROUPS_MAX]; /* the daemon's own */
static int local_ngroups0 = -1;
static uid_t local_uid0;
static gid_t local_gid0;
static pthread_once_t local_groups0_once = PTHREAD_ONCE_INIT;

static void local_groups0_read(void)
{
	local_uid0 = geteuid();
	local_gid0 = getegid();
	local_ngroups0 = getgroups(NGROUPS_MAX, local_groups0);
}

/*
 * Back to the daemon's own identity.  A worker that stayed someone else
 * would make the next caller's objects that user's, root's included: if the
 * kernel refuses the way back, the daemon stops rather than go on.
 */
static void local_restore(void)
{
	setfsuid(local_uid0);
	setfsgid(local_gid0);
	if (syscall(SYS_setgroups, (size_t)local_ngroups0, local_groups0) < 0 ||
	    (uid_t)setfsuid((uid_t)-1) != local_uid0 ||
	    (gid_t)setfsgid((gid_t)-1) != local_gid0) {
		log_err("cannot take back the daemon's own credentials after a "
			"create: stopping");
		abort();
	}
}

static int local_become(const struct local_mount *lm,
			const struct vfs_cred *cred)
{
	const gid_t *groups = cred->ngroups < 0 ? &cred->gid : cred->groups;
	size_t n = cred->ngroups < 0 ? 1 : (size_t)cred->ngroups;

	/* root's creations are root's: nothing to become */
	if (!lm->root_user || (cred->uid == 0 && cred->gid == 0))
		return 0;
	pthread_once(&local_groups0_once, local_groups0_read);
	if (local_ngroups0 < 0)
		return -EPERM;
	if (syscall(SYS_setgroups, n, groups) < 0)
		return -errno;
	setfsgid(cred->gid);
	setfsuid(cred->uid);
	if ((uid_t)setfsuid((uid_t)-1) != cred->uid ||
	    (gid_t)setfsgid((gid_t)-1) != cred->gid) {
		local_restore();
		return -EPERM;
	}
	return 1;
}

/* After local_become(): `became` is what it returned, whatever the call
 * in between did.  errno is kept. */
static void local_unbecome(int became)
{
	int e = errno;

	if (became > 0)
		local_restore();
	errno = e;
}

static int local_proc_path(int fd, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
	return 0;
}

static int local_setattr(struct vfs_mount *m, const char *path,
			 struct vfs_file *f, const struct vfs_setattr *sa,
			 struct stat *st)
{
	struct local_mount *lm = local_m(m);
	int fd = f ? local_f(f)->fd : -1;
	int pfd = -1, ret = 0;
	char proc[64];
	struct stat cur;

	if (fd < 0) {
		pfd = local_open_path(lm, path);
		if (pfd < 0)
			return pfd;
		if (fstat(pfd, &cur) < 0) {
			ret = -errno;
			goto out;
		}
		local_proc_path(pfd, proc, sizeof(proc));
	}

	if (sa->valid & VFS_SET_MODE) {
		if (fd >= 0)
			ret = fchmod(fd, sa->mode & 07777);
		else if (S_ISLNK(cur.st_mode))
			ret = (errno = EOPNOTSUPP, -1);
		else
			ret = chmod(proc, sa->mode & 07777);
		if (ret < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (sa->valid & (VFS_SET_UID | VFS_SET_GID)) {
		uid_t uid = sa->valid & VFS_SET_UID ? sa->uid : (uid_t)-1;
		gid_t gid = sa->valid & VFS_SET_GID ? sa->gid : (gid_t)-1;

		ret = fchownat(fd >= 0 ? fd : pfd, "", uid, gid,
			       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		if (ret < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (sa->valid & VFS_SET_SIZE) {
		if (vfs_call_expired()) /* see local_write */
			ret = (errno = ETIMEDOUT, -1);
		else if (fd >= 0)
			ret = ftruncate(fd, sa->size);
		else if (!S_ISREG(cur.st_mode))
			ret = (errno = S_ISDIR(cur.st_mode) ? EISDIR : EINVAL,
			       -1);
		else
			ret = truncate(proc, sa->size);
		if (ret < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (sa->valid & (VFS_SET_ATIME | VFS_SET_MTIME | VFS_SET_ATIME_NOW |
			 VFS_SET_MTIME_NOW)) {
		struct timespec ts[2] = {
			{.tv_nsec = UTIME_OMIT},
			{.tv_nsec = UTIME_OMIT},
		};

		if (sa->valid & VFS_SET_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (sa->valid & VFS_SET_ATIME)
			ts[0] = sa->atime;
		if (sa->valid & VFS_SET_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (sa->valid & VFS_SET_MTIME)
			ts[1] = sa->mtime;
		if (fd >= 0)
			ret = futimens(fd, ts);
		else if (S_ISLNK(cur.st_mode)) {
			/* no magic link for symlinks: by name, no follow */
			struct local_path lp;

			ret = local_resolve(lm, path, &lp);
			if (ret < 0)
				goto out;
			ret = utimensat(lp.dirfd, lp.name, ts,
					AT_SYMLINK_NOFOLLOW);
			if (ret < 0)
				ret = -errno;
			local_path_done(&lp);
			if (ret < 0)
				goto out;
		} else {
			ret = utimensat(AT_FDCWD, proc, ts, 0);
		}
		if (ret < 0) {
			ret = -errno;
			goto out;
		}
	}
	ret = fstat(fd >= 0 ? fd : pfd, st) < 0 ? -errno : 0;
out:
	if (pfd >= 0)
		close(pfd);
	return ret;
}

static ssize_t local_readlink(struct vfs_mount *m, const char *path, char *buf,
			      size_t size)
{
	struct local_path lp;
	ssize_t n;
	int ret = local_resolve(local_m(m), path, &lp);

	if (ret < 0)
		return ret;
	n = readlinkat(lp.dirfd, lp.name, buf, size);
	if (n < 0)
		n = -errno;
	local_path_done(&lp);
	return n;
}

/*
 * Shared tail of every creating call: stat the result.  If that fails the
 * new object is removed again, so the caller never sees an object it was
 * told does not exist.
 */
static int local_created(struct local_path *lp, struct stat *st, bool is_dir)
{
	int ret = local_stat_at(lp, st);

	if (ret < 0)
		unlinkat(lp->dirfd, lp->name, is_dir ? AT_REMOVEDIR : 0);
	return ret;
}

static int local_mknod(struct vfs_mount *m, const char *path, mode_t mode,
		       dev_t rdev, const struct vfs_cred *cred, struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path lp;
	int became, ret = local_resolve(lm, path, &lp);

	if (ret < 0)
		return ret;
	became = local_become(lm, cred);
	ret = became < 0 ? became
	      : mknodat(lp.dirfd, lp.name, local_umask(mode, cred), rdev) < 0
		      ? -errno
		      : 0;
	local_unbecome(became);
	if (ret == 0)
		ret = local_created(&lp, st, false);
	local_path_done(&lp);
	return ret;
}

static int local_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
		       const struct vfs_cred *cred, struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path lp;
	int became, ret = local_resolve(lm, path, &lp);

	if (ret < 0)
		return ret;
	became = local_become(lm, cred);
	ret = became < 0                                                ? became
	      : mkdirat(lp.dirfd, lp.name, local_umask(mode, cred)) < 0 ? -errno
									: 0;
	local_unbecome(became);
	if (ret == 0)
		ret = local_created(&lp, st, true);
	local_path_done(&lp);
	return ret;
}

static int local_symlink(struct vfs_mount *m, const char *target,
			 const char *path, const struct vfs_cred *cred,
			 struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path lp;
	int became, ret = local_resolve(lm, path, &lp);

	if (ret < 0)
		return ret;
	became = local_become(lm, cred);
	ret = became < 0                                 ? became
	      : symlinkat(target, lp.dirfd, lp.name) < 0 ? -errno
							 : 0;
	local_unbecome(became);
	if (ret == 0)
		ret = local_created(&lp, st, false);
	local_path_done(&lp);
	return ret;
}

static int local_link(struct vfs_mount *m, const char *from, const char *to,
		      struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path a, b;
	int ret = local_resolve(lm, from, &a);

	if (ret < 0)
		return ret;
	ret = local_resolve(lm, to, &b);
	if (ret < 0)
		goto out_a;
	if (linkat(a.dirfd, a.name, b.dirfd, b.name, 0) < 0)
		ret = -errno;
	else
		ret = local_stat_at(&b, st);
	local_path_done(&b);
out_a:
	local_path_done(&a);
	return ret;
}

static int local_unlink_flags(struct vfs_mount *m, const char *path, int flags)
{
	struct local_path lp;
	int ret = local_resolve(local_m(m), path, &lp);

	if (ret < 0)
		return ret;
	if (!*lp.name)
		ret = -EBUSY;
	else if (unlinkat(lp.dirfd, lp.name, flags) < 0)
		ret = -errno;
	local_path_done(&lp);
	return ret;
}

static int local_unlink(struct vfs_mount *m, const char *path)
{
	return local_unlink_flags(m, path, 0);
}

static int local_rmdir(struct vfs_mount *m, const char *path)
{
	return local_unlink_flags(m, path, AT_REMOVEDIR);
}

static int local_rename(struct vfs_mount *m, const char *from, const char *to,
			unsigned flags)
{
	struct local_mount *lm = local_m(m);
	struct local_path a, b;
	int ret = local_resolve(lm, from, &a);

	if (ret < 0)
		return ret;
	ret = local_resolve(lm, to, &b);
	if (ret < 0)
		goto out_a;
	if (!*a.name || !*b.name)
		ret = -EBUSY;
	else if (vfs_call_expired()) /* see local_write */
		ret = -ETIMEDOUT;
	else if (renameat2(a.dirfd, a.name, b.dirfd, b.name, flags) < 0)
		ret = -errno;
	local_path_done(&b);
out_a:
	local_path_done(&a);
	return ret;
}

static int local_opendir(struct vfs_mount *m, const char *path,
			 struct vfs_dir **out)
{
	struct vfs_dir *d;
	int fd = local_open_at(local_m(m), path, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return fd;
	d = calloc(1, sizeof(*d));
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		int e = errno;

		close(fd);
		free(d);
		return -e;
	}
	d->pos = 0;
	*out = d;
	return 0;
}

static int local_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
			 vfs_fill_fn fill, void *ctx)
{
	int dfd = dirfd(d->dp);

	if (off != d->pos) {
		seekdir(d->dp, off);
		d->pos = off;
	}
	for (;;) {
		struct dirent *de;
		struct stat st;
		unsigned flags = VFS_DIRENT_FULL;

		errno = 0;
		de = readdir(d->dp);
		if (!de) {
			if (errno) {
				d->pos = -1;
				return -errno;
			}
			return 0;
		}
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			/* removed since readdir saw it: report the name only */
			memset(&st, 0, sizeof(st));
			st.st_ino = de->d_ino;
			st.st_mode = (mode_t)DTTOIF(de->d_type);
			flags = 0;
		}
		if (fill(ctx, de->d_name, &st, flags, de->d_off)) {
			/* the stream is past an entry the caller did not take
			 */
			d->pos = -1;
			return 0;
		}
		d->pos = de->d_off;
	}
}

static void local_releasedir(struct vfs_mount *m, struct vfs_dir *d)
{
	closedir(d->dp);
	free(d);
}

/*
 * xattrs: through the O_PATH fd's /proc path, which acts on the inode we
 * resolved.  Symlinks cannot carry user.* attributes on Linux, and their
 * magic link would be followed, so they are answered here.
 */
static int local_xattr_fd(struct vfs_mount *m, const char *path, char *proc,
			  size_t size, bool *is_link)
{
	struct stat st;
	int fd = local_open_path(local_m(m), path);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	*is_link = S_ISLNK(st.st_mode);
	local_proc_path(fd, proc, size);
	return fd;
}

static ssize_t local_getxattr(struct vfs_mount *m, const char *path,
			      const char *name, void *buf, size_t size)
{
	char proc[64];
	bool is_link;
	ssize_t n;
	int fd = local_xattr_fd(m, path, proc, sizeof(proc), &is_link);

	if (fd < 0)
		return fd;
	if (is_link)
		n = -ENODATA;
	else if ((n = getxattr(proc, name, buf, size)) < 0)
		n = -errno;
	close(fd);
	return n;
}

static ssize_t local_listxattr(struct vfs_mount *m, const char *path, char *buf,
			       size_t size)
{
	char proc[64];
	bool is_link;
	ssize_t n;
	int fd = local_xattr_fd(m, path, proc, sizeof(proc), &is_link);

	if (fd < 0)
		return fd;
	if (is_link)
		n = 0;
	else if ((n = listxattr(proc, buf, size)) < 0)
		n = -errno;
	close(fd);
	return n;
}

static int local_setxattr(struct vfs_mount *m, const char *path,
			  const char *name, const void *value, size_t size,
			  int flags)
{
	char proc[64];
	bool is_link;
	int ret, fd = local_xattr_fd(m, path, proc, sizeof(proc), &is_link);

	if (fd < 0)
		return fd;
	if (is_link)
		ret = -EPERM;
	else
		ret = setxattr(proc, name, value, size, flags) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

static int local_removexattr(struct vfs_mount *m, const char *path,
			     const char *name)
{
	char proc[64];
	bool is_link;
	int ret, fd = local_xattr_fd(m, path, proc, sizeof(proc), &is_link);

	if (fd < 0)
		return fd;
	if (is_link)
		ret = -ENODATA;
	else
		ret = removexattr(proc, name) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* ---- Open files -------------------------------------------------- */

static int local_file_new(struct vfs_mount *m, int fd, int flags,
			  struct vfs_file **out)
{
	struct local_file *lf = calloc(1, sizeof(*lf));

	if (!lf)
		return -ENOMEM;
	lf->fd = fd;
	lf->bfd = -1;
	if (flags & O_DIRECT) {
		/*
		 * O_DIRECT needs aligned buffers, offsets and sizes.  FUSE
		 * buffers are not aligned and callers may send any size, so
		 * unaligned requests take a buffered twin of the same open
		 * file; the kernel keeps the two coherent.
		 */
		char proc[64];

		local_proc_path(fd, proc, sizeof(proc));
		lf->bfd = open(proc, (flags & O_ACCMODE) | O_CLOEXEC);
		if (lf->bfd < 0) {
			int e = errno;

			free(lf);
			return -e;
		}
	}
	lf->base.mount = m;
	lf->base.flags = flags;
	lf->base.host_fd = fd;
	*out = &lf->base;
	return 0;
}

static int local_create(struct vfs_mount *m, const char *path, int flags,
			mode_t mode, const struct vfs_cred *cred,
			struct vfs_file **out, struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path lp;
	int fd, became, ret = local_resolve(lm, path, &lp);

	if (ret < 0)
		return ret;
	if (vfs_call_expired()) {
		/* see local_write: a lease record or an O_TRUNC */
		local_path_done(&lp);
		return -ETIMEDOUT;
	}
	/*
	 * Only a file made here is the caller's: one that exists already is
	 * opened as it is, never given away (vfsd always asks O_EXCL; the
	 * fallback serves callers that do not).
	 */
	flags |= O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	became = local_become(lm, cred);
	if (became < 0) {
		ret = became;
		goto out;
	}
	fd = openat(lp.dirfd, lp.name, flags | O_EXCL, local_umask(mode, cred));
	if (fd < 0 && errno == EEXIST && !(flags & O_EXCL)) {
		/* a FIFO or a device is not ours to open: O_NONBLOCK covers
		 * a swap between the two calls */
		flags &= ~O_CREAT;
		if (fstatat(lp.dirfd, lp.name, st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st->st_mode))
			errno = EEXIST;
		else
			fd = openat(lp.dirfd, lp.name, flags | O_NONBLOCK);
		if (fd >= 0 && !(flags & O_NONBLOCK) &&
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
			close(fd);
			fd = -1;
		}
		if (fd >= 0 && (fstat(fd, st) < 0 || !S_ISREG(st->st_mode))) {
			close(fd);
			fd = -1;
			errno = EEXIST;
		}
		if (fd >= 0) {
			local_unbecome(became);
			goto opened;
		}
	}
	local_unbecome(became);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	flags |= O_EXCL;
	ret = fstat(fd, st) < 0 ? -errno : 0;
opened:
	if (ret == 0)
		ret = local_file_new(m, fd, flags, out);
	if (ret < 0) {
		close(fd);
		if (flags & O_EXCL)
			unlinkat(lp.dirfd, lp.name, 0);
	}
out:
	local_path_done(&lp);
	return ret;
}

static int local_open(struct vfs_mount *m, const char *path, int flags,
		      struct vfs_file **out)
{
	struct local_path lp;
	int fd, ret = local_resolve(local_m(m), path, &lp);

	if (ret < 0)
		return ret;
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
	/* the kernel opens FIFOs and devices itself; we see regular files */
	fd = openat(lp.dirfd, *lp.name ? lp.name : ".",
		    flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
	} else {
		ret = local_file_new(m, fd, flags, out);
		if (ret < 0)
			close(fd);
	}
	local_path_done(&lp);
	return ret;
}

static bool local_aligned(const void *buf, size_t size, off_t off)
{
	return ((uintptr_t)buf | size | (size_t)off) % LOCAL_DIO_ALIGN == 0;
}

static ssize_t local_pread_all(int fd, void *buf, size_t size, off_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n =
			pread(fd, (char *)buf + done, size - done, off + done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static ssize_t local_pwrite_all(int fd, const void *buf, size_t size, off_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pwrite(fd, (const char *)buf + done, size - done,
				   off + done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += n;
	}
	return done;
}

static ssize_t local_read(struct vfs_file *f, void *buf, size_t size, off_t off)
{
	struct local_file *lf = local_f(f);
	void *bb;
	ssize_t n;

	if (!(f->flags & O_DIRECT) || local_aligned(buf, size, off))
		return local_pread_all(lf->fd, buf, size, off);
	if (size % LOCAL_DIO_ALIGN || off % LOCAL_DIO_ALIGN)
		return local_pread_all(lf->bfd, buf, size, off);
	bb = vfs_scratch(VFS_SCRATCH_BACKEND, size);
	if (!bb)
		return -ENOMEM;
	n = local_pread_all(lf->fd, bb, size, off);
	if (n > 0)
		memcpy(buf, bb, n);
	return n;
}

static ssize_t local_write(struct vfs_file *f, const void *buf, size_t size,
			   off_t off)
{
	struct local_file *lf = local_f(f);
	bool append = f->flags & O_APPEND;
	void *bb;

	/* a write the kernel was handed cannot be called back: past a
	 * lease's deadline (backends/callctx.h) it is never handed over */
	if (vfs_call_expired())
		return -ETIMEDOUT;
	if (!(f->flags & O_DIRECT) || local_aligned(buf, size, off))
		return local_pwrite_all(lf->fd, buf, size, off);
	if (size % LOCAL_DIO_ALIGN || off % LOCAL_DIO_ALIGN || append)
		return local_pwrite_all(lf->bfd, buf, size, off);
	bb = vfs_scratch(VFS_SCRATCH_BACKEND, size);
	if (!bb)
		return -ENOMEM;
	memcpy(bb, buf, size);
	return local_pwrite_all(lf->fd, bb, size, off);
}

static int local_fgetattr(struct vfs_file *f, struct stat *st)
{
	return fstat(local_f(f)->fd, st) < 0 ? -errno : 0;
}

static int local_flush(struct vfs_file *f)
{
	/*
	 * close() of a duplicate reports deferred errors of filesystems that
	 * have them (a directory that is itself an NFS mount) at the moment
	 * the application closes, as a direct open would.
	 */
	int fd = dup(local_f(f)->fd);

	if (fd < 0)
		return -errno;
	return close(fd) < 0 ? -errno : 0;
}

static int local_fsync(struct vfs_file *f, bool datasync)
{
	int fd = local_f(f)->fd;

	return (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
}

static int local_fallocate(struct vfs_file *f, int mode, off_t off, off_t len)
{
	if (vfs_call_expired()) /* see local_write */
		return -ETIMEDOUT;
	return fallocate(local_f(f)->fd, mode, off, len) < 0 ? -errno : 0;
}

static off_t local_lseek(struct vfs_file *f, off_t off, int whence)
{
	off_t r = lseek(local_f(f)->fd, off, whence);

	return r < 0 ? -errno : r;
}

static ssize_t local_copy_range(struct vfs_file *in, off_t off_in,
				struct vfs_file *out, off_t off_out, size_t len,
				unsigned flags)
{
	loff_t oi = off_in, oo = off_out;
	ssize_t n;

	if (vfs_call_expired()) /* see local_write */
		return -ETIMEDOUT;
	n = copy_file_range(local_f(in)->fd, &oi, local_f(out)->fd, &oo, len,
			    flags);
	return n < 0 ? -errno : n;
}

static int local_release(struct vfs_file *f)
{
	struct local_file *lf = local_f(f);
	int ret = close(lf->fd) < 0 ? -errno : 0;

	if (lf->bfd >= 0)
		close(lf->bfd);
	free(lf);
	return ret;
}

const struct vfs_backend_ops local_ops = {
	.name = "file",
	.opts = local_opts,
	.mount = local_mount,
	.unmount = local_unmount,
	.statfs = local_statfs,
	.getattr = local_getattr,
	.setattr = local_setattr,
	.readlink = local_readlink,
	.mknod = local_mknod,
	.mkdir = local_mkdir,
	.symlink = local_symlink,
	.link = local_link,
	.unlink = local_unlink,
	.rmdir = local_rmdir,
	.rename = local_rename,
	.opendir = local_opendir,
	.readdir = local_readdir,
	.releasedir = local_releasedir,
	.getxattr = local_getxattr,
	.listxattr = local_listxattr,
	.setxattr = local_setxattr,
	.removexattr = local_removexattr,
	.create = local_create,
	.open = local_open,
	.read = local_read,
	.write = local_write,
	.fgetattr = local_fgetattr,
	.flush = local_flush,
	.fsync = local_fsync,
	.fallocate = local_fallocate,
	.lseek = local_lseek,
	.copy_range = local_copy_range,
	.release = local_release,
};
