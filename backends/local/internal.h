/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * internal.h - private declarations shared by the "file" backend's files
 * in backends/local/:
 *
 *   local.c      options, mount and unmount, statfs, the ops table (the
 *                confinement design is described at its head)
 *   resolve.c    paths resolved beneath the mount's root: openat2 with
 *                its RESOLVE_* flags, walks for paths of PATH_MAX or
 *                more, /proc/self/fd names of resolved inodes
 *   cred.c       creating calls run as their caller: the thread's fsuid,
 *                fsgid, groups and umask for one call
 *   attr.c       attributes: getattr, setattr, fgetattr
 *   namespace.c  readlink, mknod, mkdir, symlink, link, unlink, rmdir,
 *                rename
 *   dir.c        directory streams: opendir, readdir, releasedir
 *   xattr.c      extended attributes
 *   file.c       open files: create, open, flush, fsync, release
 *   io.c         read and write (O_DIRECT alignment), fallocate, lseek,
 *                copy_file_range
 *
 * Nothing here is visible to the rest of vfsd: the backend exports only
 * local_ops.
 */
#ifndef VFSD_BACKENDS_LOCAL_INTERNAL_H
#define VFSD_BACKENDS_LOCAL_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "backends/backend.h"

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

/* A resolved path: dirfd + final name, as *at() calls want them. */
struct local_path {
	int dirfd;
	bool own;           /* dirfd must be closed */
	const char *name;   /* "" for the root itself */
	char buf[PATH_MAX]; /* the parent's path, or a piece of it */
};

static inline struct local_mount *local_m(struct vfs_mount *m)
{
	return (struct local_mount *)m;
}

static inline struct local_file *local_f(struct vfs_file *f)
{
	return (struct local_file *)f;
}

/* resolve.c: every path a call is given goes through these */
int local_openat2(int dirfd, const char *path, int flags);
int local_resolve(struct local_mount *lm, const char *path,
		  struct local_path *lp);
void local_path_done(struct local_path *lp);
int local_open_at(struct local_mount *lm, const char *path, int flags);
int local_open_path(struct local_mount *lm, const char *path);
int local_stat_at(struct local_path *lp, struct stat *st);
int local_proc_path(int fd, char *buf, size_t size);

/* cred.c: around the one system call that creates */
mode_t local_umask(mode_t mode, const struct vfs_cred *cred);
int local_become(const struct local_mount *lm, const struct vfs_cred *cred);
void local_unbecome(int became);

/* attr.c */
int local_getattr(struct vfs_mount *m, const char *path, struct stat *st);
int local_setattr(struct vfs_mount *m, const char *path, struct vfs_file *f,
		  const struct vfs_setattr *sa, struct stat *st);
int local_fgetattr(struct vfs_file *f, struct stat *st);

/* namespace.c */
ssize_t local_readlink(struct vfs_mount *m, const char *path, char *buf,
		       size_t size);
int local_mknod(struct vfs_mount *m, const char *path, mode_t mode, dev_t rdev,
		const struct vfs_cred *cred, struct stat *st);
int local_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
		const struct vfs_cred *cred, struct stat *st);
int local_symlink(struct vfs_mount *m, const char *target, const char *path,
		  const struct vfs_cred *cred, struct stat *st);
int local_link(struct vfs_mount *m, const char *from, const char *to,
	       struct stat *st);
int local_unlink(struct vfs_mount *m, const char *path);
int local_rmdir(struct vfs_mount *m, const char *path);
int local_rename(struct vfs_mount *m, const char *from, const char *to,
		 unsigned flags);

/* dir.c */
int local_opendir(struct vfs_mount *m, const char *path, struct vfs_dir **out);
int local_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
		  vfs_fill_fn fill, void *ctx);
void local_releasedir(struct vfs_mount *m, struct vfs_dir *d);

/* xattr.c */
ssize_t local_getxattr(struct vfs_mount *m, const char *path, const char *name,
		       void *buf, size_t size);
ssize_t local_listxattr(struct vfs_mount *m, const char *path, char *buf,
			size_t size);
int local_setxattr(struct vfs_mount *m, const char *path, const char *name,
		   const void *value, size_t size, int flags);
int local_removexattr(struct vfs_mount *m, const char *path, const char *name);

/* file.c */
int local_create(struct vfs_mount *m, const char *path, int flags, mode_t mode,
		 const struct vfs_cred *cred, struct vfs_file **out,
		 struct stat *st);
int local_open(struct vfs_mount *m, const char *path, int flags,
	       struct vfs_file **out);
int local_flush(struct vfs_file *f);
int local_fsync(struct vfs_file *f, bool datasync);
int local_release(struct vfs_file *f);

/* io.c */
ssize_t local_read(struct vfs_file *f, void *buf, size_t size, off_t off);
ssize_t local_write(struct vfs_file *f, const void *buf, size_t size,
		    off_t off);
int local_fallocate(struct vfs_file *f, int mode, off_t off, off_t len);
off_t local_lseek(struct vfs_file *f, off_t off, int whence);
ssize_t local_copy_range(struct vfs_file *in, off_t off_in,
			 struct vfs_file *out, off_t off_out, size_t len,
			 unsigned flags);

#endif /* VFSD_BACKENDS_LOCAL_INTERNAL_H */
