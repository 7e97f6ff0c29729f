/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fault.c - the test-only fault injection wrapper (see fault.h): any
 * backend's instance behind a table that forwards every call, after
 * delaying, failing or pausing the ones a rule picks.  This is how tests
 * of cross-host locks get a slow or stalled server, or a lease renewal
 * that fails, exactly where they want it (QEMU's blkdebug, SQLite's
 * test_vfs.c).
 *
 * Rules: a list per mount, evaluated in order for every call; the first
 * that matches the operation and the path acts on it:
 *
 *   op=OP[,OP...]  path=GLOB  delay=MS  error=ERRNO  pause  when=after
 *   skip=N  count=N
 *
 * Paths are mount-relative and matched with fnmatch(3) without
 * FNM_PATHNAME, so '*' crosses '/'.  Calls on open files match the path
 * the file was opened or created with; rename, link, copy_range and clone
 * match if either of their two names does.  A rule acts by pausing until
 * resumed, then sleeping `delay`, then failing with `error` without
 * calling the backend; with when=after all of that happens once the
 * backend has answered (the request was served, its reply is late or
 * lost).  release always reaches the backend, since a handle must be
 * freed whatever a rule says.
 *
 * Locking: fault_mount.lock protects the rule list and the wait state; it
 * is a leaf, never held across a backend call.
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/fault.h"
#include "lib/log.h"
#include "lib/options.h"
#include "lib/clock.h"
#include "lib/json.h"

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

static const char *const fault_op_names[FOP_COUNT] = {
	[FOP_GETATTR] = "getattr",   [FOP_SETATTR] = "setattr",
	[FOP_READLINK] = "readlink", [FOP_MKNOD] = "mknod",
	[FOP_MKDIR] = "mkdir",       [FOP_SYMLINK] = "symlink",
	[FOP_LINK] = "link",         [FOP_UNLINK] = "unlink",
	[FOP_RMDIR] = "rmdir",       [FOP_RENAME] = "rename",
	[FOP_OPENDIR] = "opendir",   [FOP_READDIR] = "readdir",
	[FOP_GETXATTR] = "getxattr", [FOP_LISTXATTR] = "listxattr",
	[FOP_SETXATTR] = "setxattr", [FOP_REMOVEXATTR] = "removexattr",
	[FOP_CREATE] = "create",     [FOP_OPEN] = "open",
	[FOP_READ] = "read",         [FOP_WRITE] = "write",
	[FOP_FGETATTR] = "fgetattr", [FOP_FLUSH] = "flush",
	[FOP_FSYNC] = "fsync",       [FOP_FALLOCATE] = "fallocate",
	[FOP_LSEEK] = "lseek",       [FOP_COPY_RANGE] = "copy_range",
	[FOP_CLONE] = "clone",       [FOP_RELEASE] = "release",
	[FOP_STATFS] = "statfs",
};

/* Longest delay a rule may ask for: an hour is beyond any test. */
#define FAULT_DELAY_MAX_MS (3600L * 1000)

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

/* Each backend's struct vfs_dir is its own; this is ours. */
struct vfs_dir {
	struct vfs_dir *inner; /* the inner backend's; owned */
	char *path;            /* as opened, for rules; owned */
};

/* What one call is to suffer, copied from the rule that picked it. */
struct fault_act {
	unsigned rule; /* 0: no rule matched */
	long delay_ms;
	int error;
	bool pause;
	bool after;
};

static struct fault_mount *fault_m(struct vfs_mount *m)
{
	return (struct fault_mount *)m;
}

static struct fault_file *fault_f(struct vfs_file *f)
{
	return (struct fault_file *)f;
}

/* ---- Rules: matching and acting --------------------------------------- */

static struct fault_rule *fault_rule_find_locked(struct fault_mount *fm,
						 unsigned id)
{
	struct fault_rule *r;

	for (r = fm->rules; r && r->id != id; r = r->next)
		;
	return r;
}

static void fault_rule_free(struct fault_rule *r)
{
	free(r->path);
	free(r);
}

static bool fault_path_match(const char *glob, const char *a, const char *b)
{
	return (a && fnmatch(glob, a, 0) == 0) ||
	       (b && fnmatch(glob, b, 0) == 0);
}

/* The first rule for `op` on path a (or b) decides what the call gets. */
static void fault_pick(struct fault_mount *fm, enum fault_op op, const char *a,
		       const char *b, struct fault_act *act)
{
	struct fault_rule *r;

	memset(act, 0, sizeof(*act));
	pthread_mutex_lock(&fm->lock);
	for (r = fm->detached ? NULL : fm->rules; r; r = r->next) {
		if (!(r->ops & (1u << op)) ||
		    (r->count && r->hits >= r->count) ||
		    !fault_path_match(r->path, a, b))
			continue;
		/* let through: a later rule may still act on this call */
		if (r->seen++ < r->skip)
			continue;
		r->hits++;
		*act = (struct fault_act){
			.rule = r->id,
			.delay_ms = r->delay_ms,
			.error = r->error,
			.pause = r->pause,
			.after = r->after,
		};
		break;
	}
	pthread_mutex_unlock(&fm->lock);
	if (act->rule)
		log_debug("%s: fault rule %u acts on %s %s%s%s", fm->what,
			  act->rule, fault_op_names[op], a ? a : "",
			  b ? " " : "", b ? b : "");
}

/* A caller waiting in fault_pause()/fault_delay(). */
struct fault_waiter {
	struct fault_mount *fm;
	unsigned rule;         /* pausing rule, 0 for a delay */
	unsigned long gen;     /* its resumes when the pause began */
	struct timespec until; /* end of a delay */
	int cancel_state;      /* to restore */
};

/*
 * Cancelled while waiting.  libfuse cancels its workers when the session
 * ends (their cancellation is off while they serve a request, so only
 * here can it strike), and a paused worker must not keep vfsd from
 * exiting.  Undo our part of the count and drop the lock that
 * pthread_cond_wait took back.
 */
static void fault_wait_cancelled(void *p)
{
	struct fault_waiter *w = p;
	struct fault_rule *r =
		w->rule ? fault_rule_find_locked(w->fm, w->rule) : NULL;

	if (r)
		r->paused--;
	pthread_mutex_unlock(&w->fm->lock);
}

/* A pause ends on resume, on removal of its rule and on detach. */
static bool fault_pause_over_locked(struct fault_mount *fm,
				    const struct fault_waiter *w)
{
	struct fault_rule *r = fault_rule_find_locked(fm, w->rule);

	return fm->detached || !r || r->resumes != w->gen;
}

static void fault_pause(struct fault_mount *fm, unsigned id)
{
	struct fault_waiter w = {.fm = fm, .rule = id};
	struct fault_rule *r;

	pthread_mutex_lock(&fm->lock);
	r = fault_rule_find_locked(fm, id);
	/* cleared or detached since it picked this call: no pause */
	if (r && !fm->detached) {
		w.gen = r->resumes;
		r->paused++;
		log_info("%s: fault rule %u pauses a call until it is resumed "
			 "or cleared",
			 fm->what, id);
		pthread_cleanup_push(fault_wait_cancelled, &w);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &w.cancel_state);
		while (!fault_pause_over_locked(fm, &w))
			pthread_cond_wait(&fm->wake, &fm->lock);
		pthread_setcancelstate(w.cancel_state, NULL);
		pthread_cleanup_pop(0);
		r = fault_rule_find_locked(fm, id);
		if (r)
			r->paused--;
	}
	pthread_mutex_unlock(&fm->lock);
}

/* Sleep ms milliseconds, less if the mount is detached meanwhile. */
static void fault_delay(struct fault_mount *fm, long ms)
{
	struct fault_waiter w = {.fm = fm};

	vfs_ts_after_ms(&w.until, CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&fm->lock);
	pthread_cleanup_push(fault_wait_cancelled, &w);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &w.cancel_state);
	while (!fm->detached && pthread_cond_timedwait(&fm->wake, &fm->lock,
						       &w.until) != ETIMEDOUT)
		;
	pthread_setcancelstate(w.cancel_state, NULL);
	pthread_cleanup_pop(0);
	pthread_mutex_unlock(&fm->lock);
}

/* Carry out a picked rule: pause, delay, then its error (-errno) or 0. */
static int fault_act(struct fault_mount *fm, const struct fault_act *a)
{
	if (a->pause)
		fault_pause(fm, a->rule);
	if (a->delay_ms)
		fault_delay(fm, a->delay_ms);
	return -a->error;
}

/*
 * Before the inner call: pick the rule for this call into *act and do
 * what it asks beforehand.  0 to go on, or the -errno to return at once.
 */
static int fault_enter(struct fault_mount *fm, enum fault_op op, const char *a,
		       const char *b, struct fault_act *act)
{
	fault_pick(fm, op, a, b, act);
	return act->rule && !act->after ? fault_act(fm, act) : 0;
}

/* After the inner call returned ret: the result the caller gets. */
static long fault_leave(struct fault_mount *fm, const struct fault_act *act,
			long ret)
{
	int e;

	if (!act->rule || !act->after)
		return ret;
	e = fault_act(fm, act);
	return e < 0 ? e : ret;
}

/* ---- Instance ------------------------------------------------------------ */

static void fault_unmount(struct vfs_mount *m)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_rule *r, *next;

	fm->iops->unmount(fm->inner);
	for (r = fm->rules; r; r = next) {
		next = r->next;
		fault_rule_free(r);
	}
	pthread_cond_destroy(&fm->wake);
	pthread_mutex_destroy(&fm->lock);
	free(fm->what);
	free(fm);
}

static int fault_statfs(struct vfs_mount *m, const char *path,
			struct statvfs *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_STATFS, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->statfs(fm->inner, path, st);
	return (int)fault_leave(fm, &act, ret);
}

/*
 * Always present (NULL would mean "always connected", which is what we
 * answer for an inner backend without one).  The router reads the
 * reconnect count of our base right after asking this, so pass on the
 * inner one's here.
 */
static const char *fault_state(struct vfs_mount *m)
{
	struct fault_mount *fm = fault_m(m);

	__atomic_store_n(
		&m->reconnects,
		__atomic_load_n(&fm->inner->reconnects, __ATOMIC_RELAXED),
		__ATOMIC_RELAXED);
	return fm->iops->state ? fm->iops->state(fm->inner) : "connected";
}

/* ---- Namespace ----------------------------------------------------------- */

/* The inner handle, carrying what the daemon set on ours since the last
 * call (write_through is the daemon's to set, at any time). */
static struct vfs_file *fault_inner(struct vfs_file *f)
{
	struct fault_file *ff = fault_f(f);

	ff->inner->write_through = f->write_through;
	return ff->inner;
}

static int fault_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_GETATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->getattr(fm->inner, path, st);
	return (int)fault_leave(fm, &act, ret);
}

static int fault_setattr(struct vfs_mount *m, const char *path,
			 struct vfs_file *f, const struct vfs_setattr *sa,
			 struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_SETATTR,
			      path ? path
			      : f  ? fault_f(f)->path
				   : NULL,
			      NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->setattr(fm->inner, path, f ? fault_inner(f) : NULL, sa,
				st);
	return (int)fault_leave(fm, &act, ret);
}

static ssize_t fault_readlink(struct vfs_mount *m, const char *path, char *buf,
			      size_t size)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	ssize_t ret = fault_enter(fm, FOP_READLINK, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->readlink(fm->inner, path, buf, size);
	return fault_leave(fm, &act, ret);
}

static int fault_mknod(struct vfs_mount *m, const char *path, mode_t mode,
		       dev_t rdev, const struct vfs_cred *cred, struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_MKNOD, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->mknod(fm->inner, path, mode, rdev, cred, st);
	return (int)fault_leave(fm, &act, ret);
}

static int fault_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
		       const struct vfs_cred *cred, struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_MKDIR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->mkdir(fm->inner, path, mode, cred, st);
	return (int)fault_leave(fm, &act, ret);
}

/* target is the link's content, not a name on this mount: path decides */
static int fault_symlink(struct vfs_mount *m, const char *target,
			 const char *path, const struct vfs_cred *cred,
			 struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_SYMLINK, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->symlink(fm->inner, target, path, cred, st);
	return (int)fault_leave(fm, &act, ret);
}

static int fault_link(struct vfs_mount *m, const char *from, const char *to,
		      struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_LINK, from, to, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->link(fm->inner, from, to, st);
	return (int)fault_leave(fm, &act, ret);
}

static int fault_unlink(struct vfs_mount *m, const char *path)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_UNLINK, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->unlink(fm->inner, path);
	return (int)fault_leave(fm, &act, ret);
}

static int fault_rmdir(struct vfs_mount *m, const char *path)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_RMDIR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->rmdir(fm->inner, path);
	return (int)fault_leave(fm, &act, ret);
}

static int fault_rename(struct vfs_mount *m, const char *from, const char *to,
			unsigned flags)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_RENAME, from, to, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->rename(fm->inner, from, to, flags);
	return (int)fault_leave(fm, &act, ret);
}

static int fault_opendir(struct vfs_mount *m, const char *path,
			 struct vfs_dir **out)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	struct vfs_dir *d;
	long inj;
	int ret = fault_enter(fm, FOP_OPENDIR, path, NULL, &act);

	if (ret < 0)
		return ret;
	/* owned by the caller until fault_releasedir() */
	d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path))) {
		free(d);
		return -ENOMEM;
	}
	ret = fm->iops->opendir(fm->inner, path, &d->inner);
	inj = fault_leave(fm, &act, ret);
	if (ret == 0 && inj < 0)
		fm->iops->releasedir(fm->inner, d->inner);
	if (ret < 0 || inj < 0) {
		free(d->path);
		free(d);
		return (int)inj;
	}
	*out = d;
	return 0;
}

static int fault_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
			 vfs_fill_fn fill, void *ctx)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_READDIR, d->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->readdir(fm->inner, d->inner, off, fill, ctx);
	return (int)fault_leave(fm, &act, ret);
}

static void fault_releasedir(struct vfs_mount *m, struct vfs_dir *d)
{
	struct fault_mount *fm = fault_m(m);

	fm->iops->releasedir(fm->inner, d->inner);
	free(d->path);
	free(d);
}

static ssize_t fault_getxattr(struct vfs_mount *m, const char *path,
			      const char *name, void *buf, size_t size)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	ssize_t ret = fault_enter(fm, FOP_GETXATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->getxattr(fm->inner, path, name, buf, size);
	return fault_leave(fm, &act, ret);
}

static ssize_t fault_listxattr(struct vfs_mount *m, const char *path, char *buf,
			       size_t size)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	ssize_t ret = fault_enter(fm, FOP_LISTXATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->listxattr(fm->inner, path, buf, size);
	return fault_leave(fm, &act, ret);
}

static int fault_setxattr(struct vfs_mount *m, const char *path,
			  const char *name, const void *value, size_t size,
			  int flags)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_SETXATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->setxattr(fm->inner, path, name, value, size, flags);
	return (int)fault_leave(fm, &act, ret);
}

static int fault_removexattr(struct vfs_mount *m, const char *path,
			     const char *name)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_REMOVEXATTR, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->removexattr(fm->inner, path, name);
	return (int)fault_leave(fm, &act, ret);
}

/* ---- Open files ---------------------------------------------------------- */

/*
 * Wrap the inner handle `in` of `path` into *out (owned by the caller
 * until release()).  On ENOMEM `in` is released.
 */
static int fault_file_new(struct fault_mount *fm, const char *path,
			  struct vfs_file *in, struct vfs_file **out)
{
	struct fault_file *ff;

	/* the router sets ->mount of the handle it sees, ours */
	in->mount = fm->inner;
	ff = calloc(1, sizeof(*ff));
	if (!ff || !(ff->path = strdup(path))) {
		free(ff);
		fm->iops->release(in);
		return -ENOMEM;
	}
	ff->fm = fm;
	ff->inner = in;
	/* what the backend decided at open, as it decided it */
	ff->base.flags = in->flags;
	ff->base.uncached = in->uncached;
	ff->base.write_through = in->write_through;
	/* no host fd: vfsd would read and write it without asking us */
	ff->base.host_fd = -1;
	*out = &ff->base;
	return 0;
}

static void fault_file_free(struct fault_file *ff)
{
	free(ff->path);
	free(ff);
}

/*
 * The end of open/create: the inner call's result was ret, *out our
 * handle if it succeeded.  A when=after error still fails the call, so
 * the handle is released (what the backend created stays).
 */
static int fault_opened(struct fault_mount *fm, const struct fault_act *act,
			int ret, struct vfs_file **out)
{
	long inj = fault_leave(fm, act, ret);

	if (ret == 0 && inj < 0) {
		struct fault_file *ff = fault_f(*out);

		fm->iops->release(ff->inner);
		fault_file_free(ff);
		*out = NULL;
	}
	return (int)inj;
}

static int fault_create(struct vfs_mount *m, const char *path, int flags,
			mode_t mode, const struct vfs_cred *cred,
			struct vfs_file **out, struct stat *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	struct vfs_file *in;
	int ret = fault_enter(fm, FOP_CREATE, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->create(fm->inner, path, flags, mode, cred, &in, st);
	if (ret == 0)
		ret = fault_file_new(fm, path, in, out);
	return fault_opened(fm, &act, ret, out);
}

static int fault_open(struct vfs_mount *m, const char *path, int flags,
		      struct vfs_file **out)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	struct vfs_file *in;
	int ret = fault_enter(fm, FOP_OPEN, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->open(fm->inner, path, flags, &in);
	if (ret == 0)
		ret = fault_file_new(fm, path, in, out);
	return fault_opened(fm, &act, ret, out);
}

static ssize_t fault_read(struct vfs_file *f, void *buf, size_t size, off_t off)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	ssize_t ret = fault_enter(ff->fm, FOP_READ, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->read(fault_inner(f), buf, size, off);
	return fault_leave(ff->fm, &act, ret);
}

static ssize_t fault_write(struct vfs_file *f, const void *buf, size_t size,
			   off_t off)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	ssize_t ret = fault_enter(ff->fm, FOP_WRITE, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->write(fault_inner(f), buf, size, off);
	return fault_leave(ff->fm, &act, ret);
}

static int fault_fgetattr(struct vfs_file *f, struct stat *st)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	int ret = fault_enter(ff->fm, FOP_FGETATTR, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->fgetattr(fault_inner(f), st);
	return (int)fault_leave(ff->fm, &act, ret);
}

static int fault_flush(struct vfs_file *f)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	int ret = fault_enter(ff->fm, FOP_FLUSH, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->flush(fault_inner(f));
	return (int)fault_leave(ff->fm, &act, ret);
}

static int fault_fsync(struct vfs_file *f, bool datasync)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	int ret = fault_enter(ff->fm, FOP_FSYNC, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->fsync(fault_inner(f), datasync);
	return (int)fault_leave(ff->fm, &act, ret);
}

static int fault_fallocate(struct vfs_file *f, int mode, off_t off, off_t len)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	int ret = fault_enter(ff->fm, FOP_FALLOCATE, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->fallocate(fault_inner(f), mode, off, len);
	return (int)fault_leave(ff->fm, &act, ret);
}

static off_t fault_lseek(struct vfs_file *f, off_t off, int whence)
{
	struct fault_file *ff = fault_f(f);
	struct fault_act act;
	off_t ret = fault_enter(ff->fm, FOP_LSEEK, ff->path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = ff->fm->iops->lseek(fault_inner(f), off, whence);
	return fault_leave(ff->fm, &act, ret);
}

static ssize_t fault_copy_range(struct vfs_file *in, off_t off_in,
				struct vfs_file *out, off_t off_out, size_t len,
				unsigned flags)
{
	struct fault_mount *fm = fault_f(out)->fm;
	struct fault_act act;
	ssize_t ret = fault_enter(fm, FOP_COPY_RANGE, fault_f(in)->path,
				  fault_f(out)->path, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->copy_range(fault_inner(in), off_in, fault_inner(out),
				   off_out, len, flags);
	return fault_leave(fm, &act, ret);
}

static int fault_clone(struct vfs_mount *m, const char *from, const char *to,
		       struct vfs_error *err)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_CLONE, from, to, &act);

	if (ret == 0) {
		ret = fm->iops->clone(fm->inner, from, to, err);
		ret = (int)fault_leave(fm, &act, ret);
	}
	/* clone's errors are described; say where this one came from */
	if (ret < 0 && act.rule && act.error == -ret)
		vfs_error_set(err, -ret, "%s: %s (injected by fault rule %u)",
			      from, strerror(-ret), act.rule);
	return ret;
}

/* The handle is freed whatever a rule says: release cannot be refused. */
static int fault_release(struct vfs_file *f)
{
	struct fault_file *ff = fault_f(f);
	struct fault_mount *fm = ff->fm;
	struct fault_act act;
	int inj = fault_enter(fm, FOP_RELEASE, ff->path, NULL, &act);
	int ret = fm->iops->release(fault_inner(f));

	fault_file_free(ff);
	return inj < 0 ? inj : (int)fault_leave(fm, &act, ret);
}

/*
 * The template of every instance's table (fault_wrap() copies it).
 * There is no mount: a fault mount is made by wrapping another backend's
 * instance, never from a URL of its own.
 */
static const struct vfs_backend_ops fault_ops = {
	.name = "fault",
	.unmount = fault_unmount,
	.statfs = fault_statfs,
	.state = fault_state,
	.getattr = fault_getattr,
	.setattr = fault_setattr,
	.readlink = fault_readlink,
	.mknod = fault_mknod,
	.mkdir = fault_mkdir,
	.symlink = fault_symlink,
	.link = fault_link,
	.unlink = fault_unlink,
	.rmdir = fault_rmdir,
	.rename = fault_rename,
	.opendir = fault_opendir,
	.readdir = fault_readdir,
	.releasedir = fault_releasedir,
	.getxattr = fault_getxattr,
	.listxattr = fault_listxattr,
	.setxattr = fault_setxattr,
	.removexattr = fault_removexattr,
	.create = fault_create,
	.open = fault_open,
	.read = fault_read,
	.write = fault_write,
	.fgetattr = fault_fgetattr,
	.flush = fault_flush,
	.fsync = fault_fsync,
	.fallocate = fault_fallocate,
	.lseek = fault_lseek,
	.copy_range = fault_copy_range,
	.clone = fault_clone,
	.release = fault_release,
};

/* Keep a member only where the inner backend has it. */
#define FAULT_AS_INNER(fm, member)                                             \
	do {                                                                   \
		if (!(fm)->iops->member)                                       \
			(fm)->ops.member = NULL;                               \
	} while (0)

int fault_wrap(struct vfs_mount **vm, const char *what, struct vfs_error *err)
{
	struct vfs_mount *inner = *vm;
	struct fault_mount *fm;
	pthread_condattr_t ca;
	int ret;

	/* owned by the router from here, freed by fault_unmount() */
	fm = calloc(1, sizeof(*fm));
	if (!fm || !(fm->what = strdup(what)))
		goto nomem;
	if (pthread_condattr_init(&ca) != 0)
		goto nomem;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	ret = pthread_cond_init(&fm->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (ret != 0)
		goto nomem;
	pthread_mutex_init(&fm->lock, NULL);
	fm->inner = inner;
	fm->iops = inner->ops;
	fm->next_id = 1;

	snprintf(fm->name, sizeof(fm->name), FAULT_SCHEME_PREFIX "%s",
		 fm->iops->name);
	fm->ops = fault_ops;
	fm->ops.name = fm->name;
	fm->ops.opts = fm->iops->opts;
	FAULT_AS_INNER(fm, statfs);
	FAULT_AS_INNER(fm, getattr);
	FAULT_AS_INNER(fm, setattr);
	FAULT_AS_INNER(fm, readlink);
	FAULT_AS_INNER(fm, mknod);
	FAULT_AS_INNER(fm, mkdir);
	FAULT_AS_INNER(fm, symlink);
	FAULT_AS_INNER(fm, link);
	FAULT_AS_INNER(fm, unlink);
	FAULT_AS_INNER(fm, rmdir);
	FAULT_AS_INNER(fm, rename);
	FAULT_AS_INNER(fm, opendir);
	FAULT_AS_INNER(fm, readdir);
	FAULT_AS_INNER(fm, releasedir);
	FAULT_AS_INNER(fm, getxattr);
	FAULT_AS_INNER(fm, listxattr);
	FAULT_AS_INNER(fm, setxattr);
	FAULT_AS_INNER(fm, removexattr);
	FAULT_AS_INNER(fm, create);
	FAULT_AS_INNER(fm, open);
	FAULT_AS_INNER(fm, read);
	FAULT_AS_INNER(fm, write);
	FAULT_AS_INNER(fm, fgetattr);
	FAULT_AS_INNER(fm, flush);
	FAULT_AS_INNER(fm, fsync);
	FAULT_AS_INNER(fm, fallocate);
	FAULT_AS_INNER(fm, lseek);
	FAULT_AS_INNER(fm, copy_range);
	FAULT_AS_INNER(fm, clone);
	FAULT_AS_INNER(fm, release);

	fm->base.ops = &fm->ops;
	/* our handles have no host fd, so the kernel cannot pass through */
	fm->base.caps = inner->caps & ~VFS_CAP_PASSTHROUGH;
	fm->base.attr_timeout = inner->attr_timeout;
	fm->base.entry_timeout = inner->entry_timeout;
	fm->base.reconnects = inner->reconnects;
	log_warn("%s: fault injection is on (%s): for tests only, never in "
		 "production",
		 what, fm->name);
	*vm = &fm->base;
	return 0;
nomem:
	if (fm)
		free(fm->what);
	free(fm);
	inner->ops->unmount(inner);
	return vfs_error_set(err, ENOMEM, "%s: out of memory", what);
}

void fault_detach(struct vfs_mount *vm)
{
	struct fault_mount *fm;

	if (vm->ops->unmount != fault_unmount)
		return;
	fm = fault_m(vm);
	pthread_mutex_lock(&fm->lock);
	fm->detached = true;
	pthread_cond_broadcast(&fm->wake);
	pthread_mutex_unlock(&fm->lock);
}

/* ---- Control ------------------------------------------------------------- */

#define FAULT_RULE_WORDS                                                       \
	"op=OP[,OP...] [path=GLOB] delay=MS|error=ERRNO|pause [when=after] "   \
	"[skip=N] [count=N]"
#define FAULT_USAGE                                                            \
	"usage: fault PREFIX add " FAULT_RULE_WORDS                            \
	" | fault PREFIX list | fault PREFIX clear [ID] | fault PREFIX "       \
	"resume [ID]"

/* An errno by name (EIO, eio) or number; 0 if it is neither. */
static int fault_errno(const char *s)
{
	static const struct {
		const char *name;
		int code;
	} aliases[] = {
		/* names strerrorname_np() does not give: it knows one per
		 * number */
		{"EWOULDBLOCK", EWOULDBLOCK},
		{"ENOTSUP", ENOTSUP},
		{"EDEADLOCK", EDEADLOCK},
	};
	long l;

	if (vfs_parse_long(s, 1, 4095, &l) == 0)
		return (int)l;
	for (int e = 1; e < 4096; e++) {
		const char *name = strerrorname_np(e);

		if (name && strcasecmp(name, s) == 0)
			return e;
	}
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcasecmp(aliases[i].name, s) == 0)
			return aliases[i].code;
	return 0;
}

/* op=OP[,OP...] or op=*, into a mask of 1u << FOP_*; 0 if a name is bad
 * (*bad then points at it, for the message). */
static uint32_t fault_ops_parse(char *list, char **bad)
{
	uint32_t mask = 0;
	char *save = NULL;

	if (!*list) {
		*bad = list;
		return 0;
	}
	for (char *w = strtok_r(list, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		int op;

		if (strcmp(w, "*") == 0) {
			mask |= FOP_ALL;
			continue;
		}
		for (op = 0; op < FOP_COUNT; op++)
			if (strcmp(fault_op_names[op], w) == 0)
				break;
		if (op == FOP_COUNT) {
			*bad = w;
			return 0;
		}
		mask |= 1u << op;
	}
	if (!mask)
		*bad = list;
	return mask;
}

static int fault_count_parse(const char *s, unsigned long *out)
{
	long l;

	if (vfs_parse_long(s, 0, LONG_MAX, &l) < 0)
		return -EINVAL;
	*out = (unsigned long)l;
	return 0;
}

/*
 * Parse the words of a rule into *r (r->path owned by it on success and
 * on failure alike).  Messages name the offending word.
 */
static int fault_rule_parse(char **words, int n, struct fault_rule *r,
			    const char *prefix, struct vfs_error *err)
{
	enum {
		W_OP,
		W_PATH,
		W_DELAY,
		W_ERROR,
		W_PAUSE,
		W_WHEN,
		W_SKIP,
		W_COUNT
	};
	static const char *const keys[] = {"op",    "path", "delay", "error",
					   "pause", "when", "skip",  "count"};
	unsigned seen = 0;

	for (int i = 0; i < n; i++) {
		char word[512], *eq, *val, *bad = NULL;
		size_t k;
		long l;

		snprintf(word, sizeof(word), "%s", words[i]);
		eq = strchr(words[i], '=');
		if (eq)
			*eq = '\0';
		val = eq ? eq + 1 : NULL;
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strcmp(keys[k], words[i]) == 0)
				break;
		if (k == sizeof(keys) / sizeof(keys[0]) ||
		    (k == W_PAUSE) != !val)
			return vfs_error_set(
				err, EINVAL,
				"fault %s: '%s': not a rule word (%s)", prefix,
				word, FAULT_RULE_WORDS);
		if (seen & (1u << k))
			return vfs_error_set(err, EINVAL,
					     "fault %s: '%s': %s given twice",
					     prefix, word, keys[k]);
		seen |= 1u << k;
		switch (k) {
		case W_OP:
			r->ops = fault_ops_parse(val, &bad);
			if (!r->ops)
				return vfs_error_set(
					err, EINVAL,
					"fault %s: '%s': unknown operation "
					"'%s' (getattr, setattr, readlink, "
					"mknod, mkdir, symlink, link, unlink, "
					"rmdir, rename, opendir, readdir, "
					"getxattr, listxattr, setxattr, "
					"removexattr, create, open, read, "
					"write, fgetattr, flush, fsync, "
					"fallocate, lseek, copy_range, clone, "
					"release, statfs or *)",
					prefix, word, bad);
			break;
		case W_PATH:
			if (!*val)
				return vfs_error_set(
					err, EINVAL,
					"fault %s: '%s': empty path glob",
					prefix, word);
			free(r->path);
			r->path = strdup(val);
			if (!r->path)
				return vfs_error_set(err, ENOMEM,
						     "out of memory");
			break;
		case W_DELAY:
			if (vfs_parse_long(val, 0, FAULT_DELAY_MAX_MS, &l) < 0)
				return vfs_error_set(err, EINVAL,
						     "fault %s: '%s': delay is "
						     "milliseconds, 0 to %ld",
						     prefix, word,
						     FAULT_DELAY_MAX_MS);
			r->delay_ms = l;
			break;
		case W_ERROR:
			r->error = fault_errno(val);
			if (!r->error)
				return vfs_error_set(
					err, EINVAL,
					"fault %s: '%s': not an errno name or "
					"number (EIO, ENOSPC, ETIMEDOUT, "
					"ESTALE, EACCES, 5...)",
					prefix, word);
			break;
		case W_PAUSE:
			r->pause = true;
			break;
		case W_WHEN:
			if (strcmp(val, "before") != 0 &&
			    strcmp(val, "after") != 0)
				return vfs_error_set(err, EINVAL,
						     "fault %s: '%s': when is "
						     "before or after",
						     prefix, word);
			r->after = strcmp(val, "after") == 0;
			break;
		case W_SKIP:
		case W_COUNT:
			if (fault_count_parse(val, k == W_SKIP ? &r->skip
							       : &r->count) < 0)
				return vfs_error_set(err, EINVAL,
						     "fault %s: '%s': %s is a "
						     "number of calls",
						     prefix, word, keys[k]);
			break;
		}
	}
	if (!(seen & (1u << W_OP)))
		return vfs_error_set(err, EINVAL,
				     "fault %s: a rule needs op=OP (or op=* "
				     "for every operation)",
				     prefix);
	if (!r->delay_ms && !r->error && !r->pause)
		return vfs_error_set(err, EINVAL,
				     "fault %s: a rule needs delay=MS (not 0), "
				     "error=ERRNO or pause",
				     prefix);
	if (!r->path) {
		r->path = strdup("*");
		if (!r->path)
			return vfs_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* The rule in the words that make it, defaults left out. */
static void fault_rule_print(FILE *out, const struct fault_rule *r)
{
	const char *sep = "";

	fputs("op=", out);
	if (r->ops == FOP_ALL) {
		fputc('*', out);
	} else {
		for (int op = 0; op < FOP_COUNT; op++) {
			if (!(r->ops & (1u << op)))
				continue;
			fprintf(out, "%s%s", sep, fault_op_names[op]);
			sep = ",";
		}
	}
	if (strcmp(r->path, "*") != 0)
		fprintf(out, " path=%s", r->path);
	if (r->pause)
		fputs(" pause", out);
	if (r->delay_ms)
		fprintf(out, " delay=%ld", r->delay_ms);
	if (r->error) {
		const char *name = strerrorname_np(r->error);

		if (name)
			fprintf(out, " error=%s", name);
		else
			fprintf(out, " error=%d", r->error);
	}
	if (r->after)
		fputs(" when=after", out);
	if (r->skip)
		fprintf(out, " skip=%lu", r->skip);
	if (r->count)
		fprintf(out, " count=%lu", r->count);
}

static bool fault_rule_spent(const struct fault_rule *r)
{
	return r->count && r->hits >= r->count;
}

static int fault_cmd_add(struct fault_mount *fm, struct fault_cmd *c)
{
	/* owned by the rule list once added */
	struct fault_rule *r = calloc(1, sizeof(*r)), **tail;
	unsigned id;
	int ret;

	if (!r)
		return vfs_error_set(c->err, ENOMEM, "out of memory");
	ret = fault_rule_parse(c->argv + 1, c->argc - 1, r, c->prefix, c->err);
	if (ret < 0) {
		fault_rule_free(r);
		return ret;
	}
	pthread_mutex_lock(&fm->lock);
	id = r->id = fm->next_id++;
	for (tail = &fm->rules; *tail; tail = &(*tail)->next)
		;
	*tail = r;
	/* r is the list's now: a clear may free it once we unlock */
	pthread_mutex_unlock(&fm->lock);
	if (c->json)
		fprintf(c->out, "{\"id\":%u}\n", id);
	else
		fprintf(c->out, "%u\n", id);
	return 0;
}

static void fault_rule_json(FILE *out, const struct fault_rule *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	const char *sep = "";

	if (mem) {
		fault_rule_print(mem, r);
		fclose(mem);
	}
	fprintf(out, "{\"id\":%u,\"rule\":", r->id);
	vfs_json_str(out, text ? text : "");
	free(text);
	fputs(",\"op\":[", out);
	for (int op = 0; op < FOP_COUNT; op++) {
		if (!(r->ops & (1u << op)))
			continue;
		fprintf(out, "%s\"%s\"", sep, fault_op_names[op]);
		sep = ",";
	}
	fputs("],\"path\":", out);
	vfs_json_str(out, r->path);
	fprintf(out, ",\"delay_ms\":%ld,\"error\":", r->delay_ms);
	if (r->error)
		vfs_json_str(out, strerrorname_np(r->error));
	else
		fputs("null", out);
	fprintf(out,
		",\"errno\":%d,\"pause\":%s,\"when\":\"%s\",\"skip\":%lu,"
		"\"count\":%lu,\"seen\":%lu,\"hits\":%lu,\"paused\":%u,"
		"\"spent\":%s}",
		r->error, r->pause ? "true" : "false",
		r->after ? "after" : "before", r->skip, r->count, r->seen,
		r->hits, r->paused, fault_rule_spent(r) ? "true" : "false");
}

static int fault_cmd_list(struct fault_mount *fm, struct fault_cmd *c)
{
	const char *sep = "";

	pthread_mutex_lock(&fm->lock);
	if (c->json) {
		fputs("{\"prefix\":", c->out);
		vfs_json_str(c->out, c->prefix);
		fputs(",\"rules\":[", c->out);
	} else {
		fprintf(c->out, "%-4s %-8s %-6s %s\n", "ID", "HITS", "PAUSED",
			"RULE");
	}
	for (struct fault_rule *r = fm->rules; r; r = r->next) {
		if (c->json) {
			fputs(sep, c->out);
			fault_rule_json(c->out, r);
			sep = ",";
			continue;
		}
		fprintf(c->out, "%-4u %-8lu %-6u ", r->id, r->hits, r->paused);
		fault_rule_print(c->out, r);
		fputs(fault_rule_spent(r) ? " (spent)\n" : "\n", c->out);
	}
	if (c->json)
		fputs("]}\n", c->out);
	pthread_mutex_unlock(&fm->lock);
	return 0;
}

/* clear and resume: every rule, or the one named. */
static int fault_cmd_each(struct fault_mount *fm, struct fault_cmd *c,
			  bool clear)
{
	struct fault_rule **pp, *r;
	unsigned long n = 0;
	long id = 0;

	if (c->argc == 2 && vfs_parse_long(c->argv[1], 1, UINT_MAX, &id) < 0)
		return vfs_error_set(c->err, EINVAL,
				     "fault %s %s: '%s' is not a rule id",
				     c->prefix, c->argv[0], c->argv[1]);
	pthread_mutex_lock(&fm->lock);
	if (id && !fault_rule_find_locked(fm, (unsigned)id)) {
		pthread_mutex_unlock(&fm->lock);
		return vfs_error_set(c->err, ENOENT, "fault %s: no rule %ld",
				     c->prefix, id);
	}
	for (pp = &fm->rules; (r = *pp);) {
		if (id && r->id != (unsigned)id) {
			pp = &r->next;
			continue;
		}
		if (clear) {
			/* its paused callers see it gone and go on */
			*pp = r->next;
			fault_rule_free(r);
			n++;
			continue;
		}
		n += r->paused;
		r->resumes++;
		pp = &r->next;
	}
	pthread_cond_broadcast(&fm->wake);
	pthread_mutex_unlock(&fm->lock);
	if (c->json)
		fprintf(c->out, "{\"%s\":%lu}\n", clear ? "cleared" : "resumed",
			n);
	else if (clear)
		fprintf(c->out, "cleared %lu rule%s\n", n, n == 1 ? "" : "s");
	else
		fprintf(c->out, "resumed %lu caller%s\n", n, n == 1 ? "" : "s");
	return 0;
}

int fault_command(struct vfs_mount *vm, void *p)
{
	struct fault_cmd *c = p;
	const char *sub = c->argc ? c->argv[0] : "";
	struct fault_mount *fm;

	if (vm->ops->unmount != fault_unmount)
		return vfs_error_set(c->err, EOPNOTSUPP,
				     "fault %s: not a fault+ mount (backend "
				     "%s); mount it with a fault+ URL "
				     "(fault+file:///dir) to inject faults",
				     c->prefix, vm->ops->name);
	fm = fault_m(vm);
	if (strcmp(sub, "add") == 0 && c->argc >= 2)
		return fault_cmd_add(fm, c);
	if (strcmp(sub, "list") == 0 && c->argc == 1)
		return fault_cmd_list(fm, c);
	if (strcmp(sub, "clear") == 0 && c->argc <= 2)
		return fault_cmd_each(fm, c, true);
	if (strcmp(sub, "resume") == 0 && c->argc <= 2)
		return fault_cmd_each(fm, c, false);
	return vfs_error_set(c->err, EINVAL, "%s", FAULT_USAGE);
}
