/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * callctx.h - what the daemon tells a backend about the calls one thread
 * is making, beyond their arguments.
 *
 * Cross-host locks (guestfs/lease.c) need two things from every backend
 * that the ops table has no parameter for:
 *
 *  - A deadline.  A write made under a lock is valid only while the lock's
 *    lease is; past that, another host may own the file.  A backend must
 *    not start a request after the deadline (-ETIMEDOUT), must stop
 *    waiting for one at the deadline, and must then drop the connection it
 *    went out on, so that nothing it queued is delivered later (no resend
 *    on a new connection either).  The mount's own timeout still applies:
 *    the earlier of the two wins.
 *  - Fresh answers.  Lease records must be read from the server, never
 *    from an attribute or listing cache, or a host could miss another's
 *    record.
 *
 * Both are per thread: the caller sets them around its backend calls with
 * vfs_callctx_push() / vfs_callctx_pop(), so they reach every call the
 * router makes on its behalf, whatever the backend.
 */
#ifndef VFSD_CALLCTX_H
#define VFSD_CALLCTX_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/clock.h" /* vfs_mono_ns */

struct vfs_callctx {
	int64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
	bool fresh;          /* bypass attribute and listing caches */
};

extern __thread struct vfs_callctx vfs_callctx;

/* Set the thread's context; returns the previous one for _pop(). */
static inline struct vfs_callctx vfs_callctx_push(int64_t deadline_ns,
						  bool fresh)
{
	struct vfs_callctx old = vfs_callctx;

	/* a nested deadline never extends an outer one */
	if (old.deadline_ns && (!deadline_ns || old.deadline_ns < deadline_ns))
		deadline_ns = old.deadline_ns;
	vfs_callctx.deadline_ns = deadline_ns;
	vfs_callctx.fresh = fresh || old.fresh;
	return old;
}

static inline void vfs_callctx_pop(struct vfs_callctx old)
{
	vfs_callctx = old;
}

/*
 * Milliseconds a call starting now may take: the mount's `timeout_ms`, cut
 * short by the thread's deadline.  <= 0 means the deadline has passed: the
 * request must not be sent.
 */
static inline long vfs_call_budget_ms(long timeout_ms)
{
	int64_t left;

	if (!vfs_callctx.deadline_ns)
		return timeout_ms;
	left = (vfs_callctx.deadline_ns - vfs_mono_ns()) / 1000000;
	return left < timeout_ms ? (long)left : timeout_ms;
}

/* True when the thread's deadline has passed. */
static inline bool vfs_call_expired(void)
{
	return vfs_callctx.deadline_ns &&
	       vfs_mono_ns() >= vfs_callctx.deadline_ns;
}

#endif /* VFSD_CALLCTX_H */
