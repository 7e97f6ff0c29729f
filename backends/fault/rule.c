/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rule.c - the rules at work (see internal.h for the files of the fault
 * wrapper): for every call, the first rule that matches its operation and
 * path picks it, and the call is paused, delayed or failed as the rule
 * says, before the inner backend is asked or once it has answered.
 */
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/fault/internal.h"
#include "lib/clock.h"
#include "lib/log.h"

const char *const fault_op_names[FOP_COUNT] = {
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

struct fault_rule *fault_rule_find_locked(struct fault_mount *fm, unsigned id)
{
	struct fault_rule *r;

	for (r = fm->rules; r && r->id != id; r = r->next)
		;
	return r;
}

void fault_rule_free(struct fault_rule *r)
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

int fault_enter(struct fault_mount *fm, enum fault_op op, const char *a,
		const char *b, struct fault_act *act)
{
	fault_pick(fm, op, a, b, act);
	return act->rule && !act->after ? fault_act(fm, act) : 0;
}

long fault_leave(struct fault_mount *fm, const struct fault_act *act, long ret)
{
	int e;

	if (!act->rule || !act->after)
		return ret;
	e = fault_act(fm, act);
	return e < 0 ? e : ret;
}
