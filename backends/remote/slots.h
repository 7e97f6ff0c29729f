/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * slots.h - the connection slots of a network backend's pool: an array
 * of slots, each holding one driver connection (opaque here), and the one
 * implementation of checking a connection out until the call's deadline,
 * (re)connecting a slot and putting it back.  The mount's state machine,
 * reconnect count and backoff are pool.h's; this file makes the
 * transitions pool.h describes at the points where a slot changes.
 *
 * Two ways of connecting, chosen by the driver (remote_slots_opts):
 *
 * The caller connects (REMOTE_CONNECT_CALLER, nfs): a checkout takes an
 * idle slot with a connection, preferring one over a slot with none; a
 * slot with none is connected by the caller that took it, through
 * ops->connect, and at most one connect attempt runs at a time (a dead
 * server costs one timeout; the others wait for its outcome, or fail fast
 * once the mount is down).  A slot that fails to connect while another
 * slot holds a connection waits its own backoff (remote_backoff_next,
 * retry_at) and changes no state; with none left the mount is down and
 * new checkouts fail with -EIO until the pool's backoff has passed.
 *
 * A maintenance thread connects (REMOTE_CONNECT_MAINT, sftp): callers
 * never connect.  The driver's thread asks remote_slots_maint_next_locked()
 * for a slot to connect (one with no connection, once the pool's backoff
 * has passed), connects it without the lock and reports the outcome with
 * remote_slots_maint_done_locked(); the core wakes it (maint_cond) when a
 * connection is dropped.  A checkout takes only a slot with a connection
 * and otherwise waits until the call's deadline.  While the mount is down,
 * one checkout at a time, at most once per probe_interval_ms after the
 * last attempt ended, has an attempt made at once and waits for its
 * outcome; the others fail with -EIO at once, so that a dead server holds
 * one FUSE thread, not all of them.
 *
 * Driver options (deliberate differences, kept as data):
 *   connector       who connects (above).
 *   connect_min_ms  (caller) a connect beside working connections gets a
 *                   quarter of the call's budget, at least this, and the
 *                   caller then waits for a working connection with the
 *                   rest (nfs: a server at its connection limit must not
 *                   hold a call its whole timeout); 0: the whole budget.
 *   probe_interval_ms  (maint) see above.
 *   pick            REMOTE_PICK_FIRST_IDLE: the first idle slot with a
 *                   connection (nfs).  REMOTE_PICK_LEAST_LOADED: the idle
 *                   slot with the lowest load (remote_slots_load(): sftp
 *                   counts the open files whose handle lives on the
 *                   session), starting one further at each checkout so
 *                   that ties spread over the pool; on a shared pool a
 *                   remote_slots_get_packed() call packs instead.
 *   shared          false: a slot serves one call at a time (a libnfs
 *                   context is single-threaded).  true (sftp, whose
 *                   engine pipelines any number of calls on a session):
 *                   any number of calls check a slot out at once
 *                   (`users`), the pick counts them into the load, and a
 *                   connection to drop goes once its last user puts it
 *                   back (doomed until then).  REMOTE_CONNECT_MAINT
 *                   only.
 *   fail_all        a connection that broke or timed out takes all of the
 *                   pool's down (sftp: the sessions share the server and
 *                   the path to it): idle ones are dropped at once, busy
 *                   ones when they are put back.  Only those of the same
 *                   epoch, though: each such failure starts a new epoch
 *                   and a slot remembers the epoch its connect began
 *                   in (one that ends after a failure may be as dead as
 *                   the connections that failure dropped), so
 *                   that a late failure of a connection made before the
 *                   last failure (busy then, failing only now) drops that
 *                   connection alone and not the ones made since.
 *                   The first such failure of a connected mount resets
 *                   the backoff: the maintenance thread reconnects at
 *                   once.  Made for REMOTE_CONNECT_MAINT (with the caller
 *                   connecting, a timeout would not hold new checkouts
 *                   off through down_until).
 *   REMOTE_PUT_ANSWERED  a call answered on a connection makes a mount
 *                   that was reconnecting or down connected (nfs: its
 *                   other contexts go on while one is rebuilt, and
 *                   nothing else would say so).
 *
 * Pinning: remote_slots_get_pinned() checks out one given slot, and only
 * while it still holds the connection of generation `gen` (sftp: a file's
 * handle lives on one session), not doomed by fail_all; otherwise it
 * answers -ESTALE at once and
 * the caller reopens its handle elsewhere, instead of a connect.
 *
 * Who closes a dropped connection: with ops->close, the core (without the
 * lock, the slot still busy), for every connection it drops, the one put
 * back included; without it (nfs), the driver, which destroyed it before
 * putting it back.  fail_all needs ops->close.
 *
 * Locking: all fields are protected by the driver's pool lock (`lock`),
 * the one remote_pool's *_locked calls run under; `cond` is its
 * condition variable (on CLOCK_MONOTONIC, remote_cond_init), and
 * `maint_cond` (the core's) the maintenance thread's.
 */
#ifndef VFSD_BACKENDS_REMOTE_SLOTS_H
#define VFSD_BACKENDS_REMOTE_SLOTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "backends/remote/pool.h"
#include "lib/log.h"

struct remote_slot {
	void *conn;          /* the driver's, owned by the slot; NULL: none
			      * yet, or it broke (dropped) */
	bool busy;           /* checked out (not shared), or being connected
			      * or closed */
	int users;           /* shared: calls that have it checked out */
	int packed;          /* ... of them, remote_slots_get_packed()'s */
	double since;        /* shared: when a call last came back, or the
			      * first came while none was out (vfs_mono_s) */
	unsigned gen;        /* bumped by each connection made in the slot */
	bool abandoned;      /* the last connection was given up at a caller's
			      * deadline (not broken): its successor is no
			      * reconnect */
	unsigned backoff_ms; /* the slot's own backoff behind retry_at
			      * (remote_backoff_next); 0 once it connects */
	double retry_at;     /* a connect failed beside a working slot: not
			      * before this (vfs_mono_s) */
	int load;            /* REMOTE_PICK_LEAST_LOADED: remote_slots_load */
	bool doomed;         /* fail_all: drop the connection when put back */
	unsigned epoch;      /* fail_all: the pool's epoch when its connect
			      * began */
};

struct remote_slot_ops {
	/* Make a connection for the pool, giving up at `by` (vfs_mono_s)
	 * with -ETIMEDOUT.  Runs without the lock.  0 and *conn (owned by
	 * the slot from then), or -errno and, in msg, why.  Needed with
	 * REMOTE_CONNECT_CALLER only. */
	int (*connect)(void *drv, double by, void **conn, char *msg,
		       size_t msglen);
	/* Close a connection the core drops (see "Who closes" above); may
	 * be NULL.  Runs without the lock; the slot is busy meanwhile. */
	void (*close)(void *drv, void *conn);
};

enum remote_connector {
	REMOTE_CONNECT_CALLER, /* the checkout connects (nfs) */
	REMOTE_CONNECT_MAINT,  /* the driver's maintenance thread (sftp) */
};

enum remote_pick {
	REMOTE_PICK_FIRST_IDLE,   /* nfs */
	REMOTE_PICK_LEAST_LOADED, /* sftp */
};

/* The driver's choices ("Driver options" above); zero is nfs's. */
struct remote_slots_opts {
	long timeout_ms; /* the mount's timeout of one call */
	enum remote_connector connector;
	unsigned connect_min_ms;    /* REMOTE_CONNECT_CALLER */
	unsigned probe_interval_ms; /* REMOTE_CONNECT_MAINT */
	enum remote_pick pick;
	bool fail_all;
	bool shared;
};

struct remote_slots {
	struct remote_pool *rp;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	struct log_ratelimit *rl;
	const struct remote_slot_ops *ops;
	void *drv;                /* the ops' first argument */
	struct remote_slot *slot; /* [n], owned */
	size_t n;
	long timeout_ms;         /* the mount's timeout of one call */
	unsigned connect_min_ms; /* see "Driver options" above */
	unsigned probe_interval_ms;
	enum remote_connector connector;
	enum remote_pick pick;
	bool fail_all;
	bool shared;
	bool connecting;   /* a connect attempt runs */
	double down_until; /* (caller) while down, checkouts fail fast
			    * before */
	unsigned rr;       /* REMOTE_PICK_LEAST_LOADED: where to start */
	unsigned epoch;    /* fail_all: bumped by each failure of all */
	bool closing;      /* remote_slots_close(): checkouts fail */
	/* REMOTE_CONNECT_MAINT */
	pthread_cond_t maint_cond;        /* wakes the maintenance thread */
	bool probe_waiter;                /* a checkout waits for an attempt */
	unsigned attempt_seq;             /* bumped when an attempt ends */
	unsigned attempt_epoch;           /* fail_all: epoch when it began */
	struct timespec next_attempt;     /* CLOCK_MONOTONIC */
	struct timespec last_attempt_end; /* CLOCK_MONOTONIC */
};

/* A checked-out slot and the call's deadline. */
struct remote_checkout {
	int idx;
	void *conn;
	unsigned gen;    /* the slot's generation (remote_slots_get_pinned) */
	double deadline; /* vfs_mono_s */
	long budget_ms;  /* of the call, when the slot was taken */
	bool caller_dl;  /* the deadline is the caller's, sooner than the
			  * mount's timeout (backends/callctx.h) */
	bool packed;     /* by remote_slots_get_packed(): give it back with
			  * remote_slots_put_packed() */
};

/* How a connection comes back. */
enum remote_put {
	REMOTE_PUT_IDLE,      /* usable; nothing learnt of the server */
	REMOTE_PUT_ANSWERED,  /* usable, and the server answered the call */
	REMOTE_PUT_BROKEN,    /* it broke */
	REMOTE_PUT_TIMED_OUT, /* ... the server did not answer in time */
	REMOTE_PUT_ABANDONED, /* ... at the caller's deadline: no state
			       * change, and the next one is no reconnect */
	REMOTE_PUT_DISCARD,   /* usable, but out of step with the server
			       * (sftp): dropped, no state change */
};

/* n slots, none connected; ops, drv and o borrowed.  With
 * REMOTE_CONNECT_MAINT the first attempt is due at once.  -ENOMEM or 0. */
int remote_slots_init(struct remote_slots *ss, struct remote_pool *rp,
		      pthread_mutex_t *lock, pthread_cond_t *cond,
		      struct log_ratelimit *rl,
		      const struct remote_slot_ops *ops, void *drv, size_t n,
		      const struct remote_slots_opts *o);

/* Frees the array; the driver closes the connections in it first (and
 * stops its maintenance thread). */
void remote_slots_free(struct remote_slots *ss);

/* Unmount: checkouts fail with -EIO from now on and the waiting ones and
 * the maintenance thread are woken (it ends when it sees ss->closing). */
void remote_slots_close(struct remote_slots *ss);

/*
 * Check out a slot for one call: `want` if >= 0 (REMOTE_CONNECT_CALLER
 * only), else any idle one (see `pick`), connecting it if it has no
 * connection and the caller connects.  Fails at once with -ETIMEDOUT
 * past the caller's deadline, with -EIO while the mount is down (or when
 * its connect fails with none left, or its probe found it still down),
 * with -ETIMEDOUT if none came free (or the connect did not end) before
 * the call's remote_deadline.  A connect cut short by the caller's
 * deadline changes nothing.
 */
int remote_slots_get(struct remote_slots *ss, int want,
		     struct remote_checkout *co);

/* Check out slot idx while it holds the connection of generation gen
 * (see "Pinning" above): -ESTALE when it does not, -EIO on unmount,
 * else as remote_slots_get.  REMOTE_CONNECT_MAINT only. */
int remote_slots_get_pinned(struct remote_slots *ss, int idx, unsigned gen,
			    struct remote_checkout *co);

/*
 * As remote_slots_get(ss, -1, co), for a small data call that may be one
 * of many in flight, on a shared pool (REMOTE_CONNECT_MAINT): the slot
 * with the most such calls below `pack`, among those that have no other
 * calls out and whose calls come back (none out, or one back within
 * REMOTE_PACK_STALL_S); when none qualifies, the least loaded.  Many calls
 * in flight on one connection reach the server in fewer, larger packets
 * than the same calls spread over all of them; a slot busy with anything
 * else, or slow to answer, gets no more of them.  co->packed is set: put
 * it back with remote_slots_put_packed().
 */
#define REMOTE_PACK_STALL_S 0.1
int remote_slots_get_packed(struct remote_slots *ss, int pack,
			    struct remote_checkout *co);
/* remote_slots_put_why() for a remote_slots_get_packed() checkout. */
void remote_slots_put_packed(struct remote_slots *ss, int idx,
			     enum remote_put how, const char *why);

/* Give slot idx back (see enum remote_put). */
void remote_slots_put(struct remote_slots *ss, int idx, enum remote_put how);

/* The same, with why it broke for the log and the state (may be NULL). */
void remote_slots_put_why(struct remote_slots *ss, int idx, enum remote_put how,
			  const char *why);

/* Add delta to slot idx's load (REMOTE_PICK_LEAST_LOADED). */
void remote_slots_load(struct remote_slots *ss, int idx, int delta);

/* A connection was made in slot s: count a reconnect if the slot had one
 * that broke (not its first, nor one abandoned at a caller's deadline),
 * reset its backoff and make the mount connected. */
void remote_slot_up_locked(struct remote_pool *rp, struct remote_slot *s,
			   void *conn);

/* The same for slot idx of ss, which also enters the pool's epoch. */
void remote_slots_up_locked(struct remote_slots *ss, int idx, void *conn);

/* ---- The maintenance thread (REMOTE_CONNECT_MAINT) ---- */

/* The slot to connect now, reserved (busy) for it, or -1.  The caller
 * connects it without the lock, then calls remote_slots_maint_done_locked
 * (also when it failed). */
int remote_slots_maint_next_locked(struct remote_slots *ss);

/* The attempt on slot idx ended: rc 0 and conn (the slot owns it from
 * now, even on unmount) or -errno and msg (why, for the log and the
 * state).  A failure with no connection left makes the mount down; the
 * next attempt waits the pool's backoff. */
void remote_slots_maint_done_locked(struct remote_slots *ss, int idx, int rc,
				    void *conn, const char *msg);

/* Sleep until woken or `wake` (CLOCK_MONOTONIC), sooner if an attempt
 * falls due before. */
void remote_slots_maint_wait_locked(struct remote_slots *ss,
				    struct timespec wake);

/* Reserve slot idx if it has a connection, is idle and not doomed (for
 * the maintenance thread's own use of it, as a keepalive): its conn, or
 * NULL.  Give it back with remote_slots_put. */
void *remote_slots_take_locked(struct remote_slots *ss, int idx);

#endif /* VFSD_BACKENDS_REMOTE_SLOTS_H */
