/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * internal.h - private declarations of the test-only fault injection
 * wrapper (backends/fault.h), shared by its files in backends/fault/:
 *
 *   fault.c      the instance: wrap, detach, unmount, statfs, state, and
 *                the ops table (the overview of the rules is at its head)
 *   rule.c       the rules at work: picking the rule for a call, pausing,
 *                delaying, and what the call returns
 *   namespace.c  the forwarding path calls and directory listings
 *   file.c       the forwarding open-file calls and our file handles
 *   control.c    the `fault` control command: rule words parsed and
 *                printed, add, list, clear, resume
 *
 * Nothing here is visible to the rest of vfsd: the wrapper exports only
 * what fault.h declares.
 *
 * Locking: fault_mount.lock protects the rule list and the wait state; it
 * is a leaf, never held across a backend call.
 */
#ifndef VFSD_BACKENDS_FAULT_INTERNAL_H
#define VFSD_BACKENDS_FAULT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends/backend.h"
#include "backends/fault.h"

/* The operations a rule may pick, by their names in rules. */
enum fault_op {
	FOP_GETATTR,
	FOP_SETATTR,
	FOP_READLINK,
	FOP_MKNOD,
	FOP_MKDIR,
	FOP_SYMLINK,
	FOP_LINK,
	FOP_UNLINK,
	FOP_RMDIR,
	FOP_RENAME,
	FOP_OPENDIR,
	FOP_READDIR,
	FOP_GETXATTR,
	FOP_LISTXATTR,
	FOP_SETXATTR,
	FOP_REMOVEXATTR,
	FOP_CREATE,
	FOP_OPEN,
	FOP_READ,
	FOP_WRITE,
	FOP_FGETATTR,
	FOP_FLUSH,
	FOP_FSYNC,
	FOP_FALLOCATE,
	FOP_LSEEK,
	FOP_COPY_RANGE,
	FOP_CLONE,
	FOP_RELEASE,
	FOP_STATFS,
	FOP_COUNT
};

#define FOP_ALL ((uint32_t)((1ull << FOP_COUNT) - 1))
_Static_assert(FOP_COUNT <= 32, "fault_rule.ops holds one bit per op");

/* Each operation's name in rules and listings (rule.c). */
extern const char *const fault_op_names[FOP_COUNT];

struct fault_rule {
	struct fault_rule *next;
	unsigned id;
	uint32_t ops;  /* 1u << FOP_* */
	char *path;    /* fnmatch() glob, owned */
	long delay_ms; /* 0: none */
	int error;     /* positive errno, 0: none */
	bool pause;
	bool after;            /* act once the inner call has returned */
	unsigned long skip;    /* matches let through first */
	unsigned long count;   /* hits before the rule is spent; 0: never */
	unsigned long seen;    /* matches so far, skipped ones included */
	unsigned long hits;    /* matches the rule acted on */
	unsigned paused;       /* callers waiting in its pause now */
	unsigned long resumes; /* bumped by resume: ends the pauses under way */
};

struct fault_mount {
	struct vfs_mount base; /* first: the router sees only this */
	/* fault_ops with the members the inner backend lacks set to NULL,
	 * so that the router's view of what this mount can do is unchanged;
	 * base.ops points here */
	struct vfs_backend_ops ops;
	char name[32];           /* "fault+<inner name>", ops.name */
	char *what;              /* "mount /prefix", for logs; owned */
	struct vfs_mount *inner; /* owned: unmounted with us */
	const struct vfs_backend_ops *iops;

	pthread_mutex_t lock;     /* protects everything below */
	pthread_cond_t wake;      /* CLOCK_MONOTONIC: resume, clear,
				   * detach (delays wait on it too) */
	struct fault_rule *rules; /* evaluated in this order */
	unsigned next_id;
	bool detached; /* left the table: inject nothing */
};

/* An open file: host_fd is always -1, so every read and write of it
 * comes through here rather than straight to a host descriptor. */
struct fault_file {
	struct vfs_file base; /* first */
	struct fault_mount *fm;
	struct vfs_file *inner; /* owned until release() */
	char *path;             /* as opened, for rules; owned */
};

/* What one call is to suffer, copied from the rule that picked it. */
struct fault_act {
	unsigned rule; /* 0: no rule matched */
	long delay_ms;
	int error;
	bool pause;
	bool after;
};

static inline struct fault_mount *fault_m(struct vfs_mount *m)
{
	return (struct fault_mount *)m;
}

static inline struct fault_file *fault_f(struct vfs_file *f)
{
	return (struct fault_file *)f;
}

/* ---- fault.c ----------------------------------------------------------- */

/* vm as a fault mount, or NULL if another backend's instance. */
struct fault_mount *fault_mount_of(struct vfs_mount *vm);

/* ---- rule.c ------------------------------------------------------------ */

/* The rule numbered id, or NULL. */
struct fault_rule *fault_rule_find_locked(struct fault_mount *fm, unsigned id);
/* Free r, which is on no list (or on one being torn down). */
void fault_rule_free(struct fault_rule *r);

/*
 * Before the inner call: pick the rule for this call on path a (or b)
 * into *act and do what it asks beforehand.  0 to go on, or the -errno to
 * return at once.
 */
int fault_enter(struct fault_mount *fm, enum fault_op op, const char *a,
		const char *b, struct fault_act *act);
/* After the inner call returned ret: the result the caller gets. */
long fault_leave(struct fault_mount *fm, const struct fault_act *act, long ret);

/* ---- namespace.c ------------------------------------------------------- */

int fault_getattr(struct vfs_mount *m, const char *path, struct stat *st);
int fault_setattr(struct vfs_mount *m, const char *path, struct vfs_file *f,
		  const struct vfs_setattr *sa, struct stat *st);
ssize_t fault_readlink(struct vfs_mount *m, const char *path, char *buf,
		       size_t size);
int fault_mknod(struct vfs_mount *m, const char *path, mode_t mode, dev_t rdev,
		const struct vfs_cred *cred, struct stat *st);
int fault_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
		const struct vfs_cred *cred, struct stat *st);
int fault_symlink(struct vfs_mount *m, const char *target, const char *path,
		  const struct vfs_cred *cred, struct stat *st);
int fault_link(struct vfs_mount *m, const char *from, const char *to,
	       struct stat *st);
int fault_unlink(struct vfs_mount *m, const char *path);
int fault_rmdir(struct vfs_mount *m, const char *path);
int fault_rename(struct vfs_mount *m, const char *from, const char *to,
		 unsigned flags);
int fault_opendir(struct vfs_mount *m, const char *path, struct vfs_dir **out);
int fault_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
		  vfs_fill_fn fill, void *ctx);
void fault_releasedir(struct vfs_mount *m, struct vfs_dir *d);
ssize_t fault_getxattr(struct vfs_mount *m, const char *path, const char *name,
		       void *buf, size_t size);
ssize_t fault_listxattr(struct vfs_mount *m, const char *path, char *buf,
			size_t size);
int fault_setxattr(struct vfs_mount *m, const char *path, const char *name,
		   const void *value, size_t size, int flags);
int fault_removexattr(struct vfs_mount *m, const char *path, const char *name);
int fault_clone(struct vfs_mount *m, const char *from, const char *to,
		struct vfs_error *err);

/* ---- file.c ------------------------------------------------------------ */

/* The inner handle of ours, brought up to date with what the daemon set
 * on ours. */
struct vfs_file *fault_inner(struct vfs_file *f);

int fault_create(struct vfs_mount *m, const char *path, int flags, mode_t mode,
		 const struct vfs_cred *cred, struct vfs_file **out,
		 struct stat *st);
int fault_open(struct vfs_mount *m, const char *path, int flags,
	       struct vfs_file **out);
ssize_t fault_read(struct vfs_file *f, void *buf, size_t size, off_t off);
ssize_t fault_write(struct vfs_file *f, const void *buf, size_t size,
		    off_t off);
int fault_fgetattr(struct vfs_file *f, struct stat *st);
int fault_flush(struct vfs_file *f);
int fault_fsync(struct vfs_file *f, bool datasync);
int fault_fallocate(struct vfs_file *f, int mode, off_t off, off_t len);
off_t fault_lseek(struct vfs_file *f, off_t off, int whence);
ssize_t fault_copy_range(struct vfs_file *in, off_t off_in,
			 struct vfs_file *out, off_t off_out, size_t len,
			 unsigned flags);
int fault_release(struct vfs_file *f);

#endif /* VFSD_BACKENDS_FAULT_INTERNAL_H */
