/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pool.h - the part of a connection pool that every network backend
 * (backends/sftp/, backends/nfs/) shares: the mount's state machine, the
 * reconnect count, the reconnect backoff and the retry-once rule.  The
 * connection slots are slots.h's: their checkout, connect and put back
 * make these transitions for both drivers (their differences are
 * slots.h's options: who connects, the pick, fail-all, pinning), so that
 * `vfsctl mounts` means the same by each state for every backend.
 *
 * States, as `vfsctl mounts` shows them:
 *
 *   connected     the server answers: the last connect attempt succeeded
 *                 (or, nfs, a call on a connection still alive got its
 *                 answer) and no call has since found a connection
 *                 broken.
 *   reconnecting  a connection broke (closed or reset: the server went
 *                 away and may be back at once, as after a restart).  New
 *                 calls wait, within their timeout, for a new connection;
 *                 calls on connections still alive go on.
 *   down          the server did not answer within the mount's timeout, or
 *                 a connect attempt failed and no connection is up (one
 *                 that is up shows the server alive; a slot that fails
 *                 beside it waits the backoff alone).  New calls fail at
 *                 once with
 *                 EIO instead of each waiting a whole timeout, so a dead
 *                 server holds no FUSE threads; new attempts are made after
 *                 the backoff delay (and at most one call at a time waits
 *                 for one), and the first that succeeds makes the mount
 *                 connected again.
 *
 * Transitions: connected -> reconnecting (a connection broke) or -> down
 * (a call timed out); reconnecting -> connected (an attempt succeeded) or
 * -> down (it failed, or a call timed out); down -> connected (an attempt
 * succeeded, or a call was answered).  A first connect of a pool member
 * changes no state, nor does a connection abandoned at a caller's deadline
 * (backends/callctx.h: the server did not fail, the call ran out of
 * time); such a slot is marked (remote_slot.abandoned) and its new
 * connection is no reconnect.
 *
 * Cache: coming back to connected (from reconnecting or down) drops the
 * mount's attribute and listing cache (backends/remote/cache.h).  The
 * server may have changed while we could not see it (restarted from a
 * snapshot, written by others while the path to it was cut), and what
 * was cached before would be served for up to cache_ttl more.
 *
 * Backoff: after a failed attempt the next one waits first_ms, and each
 * further failure doubles the wait up to max_ms; a success resets it.
 * The limits are the driver's (its connect costs differ), the policy is
 * this one.  A driver whose slots reconnect one by one (nfs) keeps a
 * backoff per slot with remote_backoff_next() for a slot that fails
 * beside a working one: that slot's failures change no state, and the
 * calls the working ones answer must not reset its backoff.  A connect
 * attempt cut short by the caller's deadline is no failure: no state
 * change and no backoff step.
 *
 * Deadlines: a checkout waits for a connection (or for the outcome of a
 * connect attempt) until the call's remote_deadline, on CLOCK_MONOTONIC.
 *
 * Locking: every remote_pool_*_locked call runs under the driver's pool
 * lock, which also protects the fields below; `cond` is the driver's
 * condition variable for "a connection or the state changed", broadcast
 * on every state change.
 */
#ifndef VFSD_BACKENDS_REMOTE_POOL_H
#define VFSD_BACKENDS_REMOTE_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/remote/cache.h"

enum remote_state { REMOTE_CONNECTED, REMOTE_RECONNECTING, REMOTE_DOWN };

struct remote_pool {
	struct vfs_mount *vm; /* reconnects are counted in vm->reconnects */
	const char *display;  /* for messages: the URL, no secrets */
	pthread_cond_t *cond; /* the driver's; broadcast on a change */
	struct remote_cache *cache; /* the mount's, or NULL: cleared on
				     * the way back to connected */
	enum remote_state state;
	unsigned backoff_first_ms, backoff_max_ms;
	unsigned backoff_ms; /* in force; 0: no failure since a success */
};

/*
 * One call's deadline for a checkout: the mount's timeout, or the
 * caller's own deadline (backends/callctx.h) when that comes sooner.
 */
struct remote_deadline {
	long budget_ms;     /* left at the start; <= 0: the caller's
			     * deadline has passed, send nothing */
	struct timespec at; /* when, on CLOCK_MONOTONIC (at least now) */
};

void remote_deadline_start(struct remote_deadline *d, long timeout_ms);

/* Make `cond` wait on the clock of remote_deadline.at, so that a jump of
 * the wall clock can neither cut a wait short nor stretch it. */
void remote_cond_init(pthread_cond_t *cond);

/* Start connected (the mount's first connection is made before).  cache
 * (borrowed, may be NULL) is the mount's attribute and listing cache, to
 * be dropped when the mount comes back after an outage. */
void remote_pool_init(struct remote_pool *rp, struct vfs_mount *vm,
		      const char *display, pthread_cond_t *cond,
		      struct remote_cache *cache, unsigned backoff_first_ms,
		      unsigned backoff_max_ms);

/* "connected", "reconnecting" or "down". */
const char *remote_state_name(enum remote_state s);

/* Enter state s (nothing if already there): logs it, with `why` if not
 * NULL, and wakes the waiters on cond.  Into connected from reconnecting
 * or down, it clears the cache (the cache's lock is a leaf, taken under
 * the pool lock). */
void remote_pool_set_state_locked(struct remote_pool *rp, enum remote_state s,
				  const char *why);

/* A connection was made.  `again`: its slot had one before that broke
 * (not one abandoned at a caller's deadline), so this is a reconnect and
 * is counted.  Resets the backoff; the mount is connected. */
void remote_pool_connected_locked(struct remote_pool *rp, bool again);

/* One step of the backoff policy on a counter of the caller's: first_ms
 * after no failure (*backoff_ms == 0), then doubling up to max_ms.
 * Returns the new delay.  For a driver's per-slot backoff (nfs), which
 * is not the pool's (see "Backoff" above). */
unsigned remote_backoff_next(unsigned *backoff_ms, unsigned first_ms,
			     unsigned max_ms);

/* A connect attempt failed: the delay before the next one, in ms (first,
 * then doubling up to the maximum).  The caller sets the state. */
unsigned remote_pool_backoff_next_locked(struct remote_pool *rp);

/* The delay in force, at least the first one, without growing it: for a
 * server that stopped answering a call (no attempt was made). */
unsigned remote_pool_backoff_hold_locked(struct remote_pool *rp);

/* Forget earlier failures: the next failed attempt waits the first
 * delay again. */
void remote_pool_backoff_reset_locked(struct remote_pool *rp);

/* A call's connection broke: the mount is down if the server did not
 * answer in time, else reconnecting (if it was connected). */
void remote_pool_broken_locked(struct remote_pool *rp, bool timed_out,
			       const char *why);

/*
 * Whether a failed call may be made once more on a fresh connection: its
 * connection broke (an idle socket found dead, a server restarted), the
 * failure was not a timeout (which would only be waited for again, past
 * what the caller is owed) and it is the first retry.  ret is the call's
 * 0/-errno, *tries counts the retries (start at 0).
 */
bool remote_retry_once(int ret, bool broke, int *tries);

#endif /* VFSD_BACKENDS_REMOTE_POOL_H */
