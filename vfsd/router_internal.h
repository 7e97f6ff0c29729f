/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router_internal.h - what the router's files share, and nothing outside
 * them may use (router.h is the router's API): the mount and open-file
 * structs, the backend contract as data (rt_rops[], router_ops.c) and the
 * helpers one file defines for the others, named rt_* so that no global
 * symbol of the router's files goes without its prefix.
 *
 *   router_table.c  the mount table: add, remove, ids, references, lookup
 *   router_ops.c    rt_rops[]: the contract checks and per-member dispatch
 *   router_ns.c     namespace calls on paths
 *   router_dir.c    directory streams
 *   router_file.c   open files
 *
 * Lock order: table_lock (a rwlock over the mount array) is a leaf; mounts
 * are reference counted so that a request keeps its mount alive without
 * holding the lock while the backend works.
 */
#ifndef VFSD_ROUTER_INTERNAL_H
#define VFSD_ROUTER_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/callctx.h"
#include "lib/options.h"
#include "vfsd/fair.h"
#include "vfsd/qos.h"
#include "vfsd/router.h"
#include "vfsd/stats.h"

/*
 * Run backend call `expr` on mount m, counted in its statistics in the
 * slot of op (an enum rop, see rt_rops[]).
 * Every backend call goes through here.  Past the calling thread's
 * deadline (backends/callctx.h: a write under a cross-host lock whose
 * lease ran out) nothing more is sent: whatever the backend.
 */
#define BCALL(m, op, expr)                                                     \
	({                                                                     \
		struct timespec t0_;                                           \
		__typeof__(expr) r_ = -ETIMEDOUT;                              \
		if (!vfs_call_expired()) {                                     \
			rt_stats_begin(m, op, &t0_);                           \
			r_ = (expr);                                           \
			rt_stats_end(m, op, &t0_, (long)r_);                   \
		}                                                              \
		r_;                                                            \
	})

/* The same for calls that free what the caller holds: always made. */
#define BCALL_ALWAYS(m, op, expr)                                              \
	({                                                                     \
		struct timespec t0_;                                           \
		rt_stats_begin(m, op, &t0_);                                   \
		__typeof__(expr) r_ = (expr);                                  \
		rt_stats_end(m, op, &t0_, (long)r_);                           \
		r_;                                                            \
	})

struct router_mount {
	char *prefix; /* normalised vfsd path, owned */
	size_t plen;
	char *display; /* URL without secrets, owned */
	const struct vfs_backend_ops *ops;
	struct vfs_mount *vm; /* owned; unmount()ed on last put */
	bool readonly;
	bool hidden;               /* left out of its parent's listing */
	bool layered;              /* vm is the image store's layer
				    * (guestfs/layer.h) over the backend's */
	unsigned id;               /* mixed into st_ino, see id_get();
				    * 0 until inserted */
	uint64_t space;            /* inode space: never reused */
	atomic_uint_fast64_t refs; /* the table holds one */
	atomic_uint_fast64_t open_files;
	atomic_bool revoked; /* removed by force: files fail EIO */
	enum router_origin origin;
	char *url;             /* as configured (may hold options) */
	struct vfs_opts opts;  /* config options as given, owned */
	struct timespec since; /* when it was mounted */
	struct mount_stats stats;
	struct fair_sched fair; /* fair sharing of its backend (fair.h) */
	/* bytes its files' read-ahead holds now, at most the backend's
	 * readahead_bytes (router_ra.c) */
	atomic_uint_fast64_t ra_held;
	unsigned ra_reading;          /* its segments being read (router_ra.c's
				       * q_lock) */
	_Atomic int64_t ra_reclaimed; /* when it last looked for idle files */
};

/* An open file (router.h): fi->fh of the FUSE layer's open refers to one. */
struct router_file {
	struct router_mount *mount; /* a reference, dropped with the last
				     * of refs */
	struct vfs_file *vf;        /* the backend's, released with it */
	unsigned long refs;         /* atomic */
	struct qos_file *qos;       /* its I/O limits (qos.h), owned; NULL
				     * when there was no memory for them */
	struct fair_flow flow;      /* its share of the mount (fair.h) */
	/* what `vfsctl files` and `top` show (router_foreach_file) */
	char *path; /* the vfsd path it was opened under, owned */
	struct router_file *reg_next, *reg_prev; /* the open-file registry */
	atomic_uint_fast64_t io_bytes[2], io_ops[2]; /* [write] */
	atomic_uint_fast64_t held_ns; /* waited for limits and its share */
	atomic_uint waiting;          /* requests held back now */
	/* its read-ahead (router_ra.c): made at its first read on a mount
	 * that reads ahead, freed with it; NULL: none */
	struct router_ra *_Atomic ra;
	/* the size the kernel was last told (router_ra_size), -1 unknown:
	 * its page-cache reads stop there, so the read-ahead does too */
	_Atomic int64_t ra_size;
};

/* router_file.c: a read of the read-ahead's (router_ra.c): as
 * router_read(), but it never waits for I/O limits (-EAGAIN instead), and
 * it shares the mount as fair_enter_ahead() says. */
ssize_t rt_read_ahead(struct router_file *f, void *buf, size_t size, off_t off);
/* router_file.c: router_release() in two steps, for a caller with
 * something to do before the backend's release of the file (a network
 * round trip, or a timeout): rt_file_put() drops a reference and says
 * whether it was the last; if so, the caller must call rt_file_free(). */
bool rt_file_put(struct router_file *f);
void rt_file_free(struct router_file *f);
/* router_ra.c: whether f's read-ahead window is open (its reads are a
 * sequential reader's, segments ahead of them). */
bool rt_ra_open(struct router_file *f);
/* router_ra.c: free f's read-ahead with f (no read of it is under way:
 * each holds a reference on f). */
void rt_ra_free(struct router_file *f);

/*
 * The backend contract as data: one row per member of struct
 * vfs_backend_ops the router calls (backends/backend.h says what each
 * does).  `missing` is what the router answers when a backend's table has
 * no such member, one answer per operation whatever the backend:
 *
 *  - MANDATORY: every table has it; router_add refuses a table without it
 *    (router_ops_check), so the router calls it without looking.
 *  - EMULATED: the router does the work itself (lseek's SEEK_DATA/HOLE,
 *    copy_range).
 *  - 0: there is nothing to do, so it succeeded (flush, fsync: the
 *    backend keeps nothing back; listxattr: no attributes, as the
 *    kernel's NFS client and ext4 answer for a file without any).
 *  - -EPERM for calls that make or remove names, or change attributes:
 *    what link(2), mkdir(2), symlink(2), mknod(2), unlink(2) and rename(2)
 *    say for "the file system does not support" that call.
 *  - -EOPNOTSUPP for the xattr calls and fallocate, as the kernel answers
 *    for a FUSE file system without them (and what cp, tar and libattr
 *    read as "none here"); and for clone, whose caller then copies.
 *  - -EINVAL for readlink: without symlinks nothing is one.
 *  - -EROFS for write: a backend that cannot write is read-only.
 *  - -ENOLCK for getlk and setlk: "no locks available", what fcntl(2)
 *    answers where a file system keeps none (the internal mounts; the
 *    image store's layer has them over every other).
 *
 * Never -ENOSYS: the kernel remembers an ENOSYS for the whole FUSE mount
 * (fc->no_fsync, no_setxattr...), i.e. for every vfsd mount at once, so one
 * backend's gap would switch the operation off for all of them.
 *
 * `mutates`: refused with -EROFS on a read-only mount before the backend
 * is asked.  `stat`: the statistics slot the call is counted in
 * (VOP_COUNT: not counted).
 */
enum rop {
	ROP_UNMOUNT,
	ROP_STATFS,
	ROP_GETATTR,
	ROP_SETATTR,
	ROP_READLINK,
	ROP_MKNOD,
	ROP_MKDIR,
	ROP_SYMLINK,
	ROP_LINK,
	ROP_UNLINK,
	ROP_RMDIR,
	ROP_RENAME,
	ROP_OPENDIR,
	ROP_READDIR,
	ROP_RELEASEDIR,
	ROP_GETXATTR,
	ROP_LISTXATTR,
	ROP_SETXATTR,
	ROP_REMOVEXATTR,
	ROP_CREATE,
	ROP_OPEN,
	ROP_READ,
	ROP_WRITE,
	ROP_FGETATTR,
	ROP_FLUSH,
	ROP_FSYNC,
	ROP_FALLOCATE,
	ROP_LSEEK,
	ROP_COPY_RANGE,
	ROP_CLONE,
	ROP_RELEASE,
	ROP_GETLK,
	ROP_SETLK,
	ROP_COUNT
};

#define MANDATORY INT_MIN
#define EMULATED  1

struct rop_row {
	const char *name; /* the member's name, for messages */
	size_t member;    /* offsetof(struct vfs_backend_ops, name) */
	int missing;      /* see above */
	bool mutates;
	enum vfs_op stat;
};

extern const struct rop_row rt_rops[ROP_COUNT];

/*
 * The statistics of BCALL: a row whose slot is VOP_COUNT is not counted
 * (there is no such slot).  Locks are such calls: a lock waited for is no
 * latency of the storage, nor is a conflict (EAGAIN) an error of it.
 */
static inline void rt_stats_begin(struct router_mount *m, enum rop op,
				  struct timespec *t0)
{
	if (rt_rops[op].stat != VOP_COUNT)
		stats_begin(&m->stats, t0);
}

static inline void rt_stats_end(struct router_mount *m, enum rop op,
				const struct timespec *t0, long ret)
{
	if (rt_rops[op].stat != VOP_COUNT)
		stats_end(&m->stats, rt_rops[op].stat, t0, ret);
}

/* router_table.c: the mount table */
void rt_mount_get(struct router_mount *m);
void rt_mount_put(struct router_mount *m);
struct router_mount *rt_resolve(const char *path, const char **rel);
bool rt_is_virtual_dir(const char *path);
bool rt_is_mount_point(const char *path);
char **rt_child_prefixes(const char *path, size_t *count);
void rt_virtual_stat(const char *path, struct stat *st);

/* router_ops.c: the checks a call makes against rt_rops[] */
bool rt_ops_has(const struct vfs_backend_ops *ops, enum rop op);
struct router_mount *rt_route_rw(const char *path, const char **rel, int *err);
bool rt_lacks(struct router_mount *m, enum rop op, int *ret);
struct router_mount *rt_route_op(enum rop op, const char *path,
				 const char **rel, int *ret);
bool rt_file_ready(const struct router_file *f, enum rop op, int *ret);

/* router_ns.c: what router_create (router_file.c) shares with the
 * calls that make names */
struct router_mount *rt_route_create(enum rop op, const char *path,
				     const char **rel, int *ret);
mode_t rt_create_mode(const struct router_mount *m, mode_t mode,
		      const struct vfs_cred *cred);

/* The instance at the bottom of m's stack: the backend's own, whose
 * counters are the mount's. */
static inline struct vfs_mount *rt_bottom(const struct router_mount *m)
{
	struct vfs_mount *vm = m->vm;

	while (vm->lower)
		vm = vm->lower;
	return vm;
}

/*
 * m's capabilities (VFS_CAP_*): the backend's, which may change while it
 * runs (an SFTP server's extensions after a reconnect), less what a layer
 * over it takes away: the only bit a layer may clear is
 * VFS_CAP_PASSTHROUGH, for files without a host fd (backend.h).
 */
static inline uint32_t rt_caps(const struct router_mount *m)
{
	uint32_t keep = ~0u;
	struct vfs_mount *vm = m->vm;

	for (; vm->lower; vm = vm->lower)
		keep &= vm->caps | ~(uint32_t)VFS_CAP_PASSTHROUGH;
	return vm->caps & keep;
}

static inline uint64_t mix_ino(unsigned id, uint64_t ino)
{
	return ino ^ ((uint64_t)id << 56);
}

#endif /* VFSD_ROUTER_INTERNAL_H */
