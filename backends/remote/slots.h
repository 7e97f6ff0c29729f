/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * slots.h - the connection slots of a network backend's pool: an array
 * of slots, each holding one driver connection (opaque here), and the one
 * implementation of checking a connection out until the call's deadline,
 * (re)connecting a slot and putting it back.  The mount's state machine,
 * reconnect count and backoff are pool.h's; this file makes the
 * transitions pool.h describes at the points where a slot changes.
 *
 * Model (the caller connects): a checkout takes an idle slot with a
 * connection, preferring one over a slot with none; a slot with none is
 * connected by the caller that took it, through ops->connect, and at
 * most one connect attempt runs at a time (a dead server costs one
 * timeout; the others wait for its outcome, or fail fast once the mount
 * is down).  A slot that fails to connect while another slot holds a
 * connection waits its own backoff (remote_backoff_next, retry_at) and
 * changes no state; with none left the mount is down and new checkouts
 * fail with -EIO until the pool's backoff has passed.
 *
 * Driver options (deliberate differences, kept as data):
 *   connect_min_ms  a connect beside working connections gets a quarter
 *                   of the call's budget, at least this, and the caller
 *                   then waits for a working connection with the rest
 *                   (nfs: a server at its connection limit must not
 *                   hold a call its whole timeout); 0: the whole budget.
 *   REMOTE_PUT_ANSWERED  a call answered on a connection makes a mount
 *                   that was reconnecting or down connected (nfs: its
 *                   other contexts go on while one is rebuilt, and
 *                   nothing else would say so).
 *
 * The SFTP driver does not use the checkout here: its connect attempts are
 * made by a maintenance thread, a timeout on one session fails them all
 * and pins files to sessions (backends/sftp/pool.c); it shares the
 * per-slot bookkeeping (struct remote_slot, remote_slot_up_locked).
 *
 * Locking: all fields are protected by the driver's pool lock (`lock`),
 * the one remote_pool's *_locked calls run under; `cond` is its
 * condition variable (on CLOCK_MONOTONIC, remote_cond_init).
 */
#ifndef VFSD_BACKENDS_REMOTE_SLOTS_H
#define VFSD_BACKENDS_REMOTE_SLOTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "backends/remote/pool.h"
#include "lib/log.h"

struct remote_slot {
	void *conn;          /* the driver's, owned by the slot; NULL: none
			      * yet, or it broke (the driver destroyed it) */
	bool busy;           /* checked out, or being connected */
	unsigned gen;        /* bumped by each connection made in the slot */
	bool abandoned;      /* the last connection was given up at a caller's
			      * deadline (not broken): its successor is no
			      * reconnect */
	unsigned backoff_ms; /* the slot's own backoff behind retry_at
			      * (remote_backoff_next); 0 once it connects */
	double retry_at;     /* a connect failed beside a working slot: not
			      * before this (vfs_mono_s) */
};

struct remote_slot_ops {
	/* Make a connection for the pool, giving up at `by` (vfs_mono_s)
	 * with -ETIMEDOUT.  Runs without the lock.  0 and *conn (owned by
	 * the slot from then), or -errno and, in msg, why. */
	int (*connect)(void *drv, double by, void **conn, char *msg,
		       size_t msglen);
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
	bool connecting;         /* a connect attempt runs */
	double down_until;       /* while down, checkouts fail fast before */
};

/* A checked-out slot and the call's deadline. */
struct remote_checkout {
	int idx;
	void *conn;
	double deadline; /* vfs_mono_s */
	bool caller_dl;  /* the deadline is the caller's, sooner than the
			  * mount's timeout (backends/callctx.h) */
};

/* How a connection comes back. */
enum remote_put {
	REMOTE_PUT_IDLE,      /* usable; nothing learnt of the server */
	REMOTE_PUT_ANSWERED,  /* usable, and the server answered the call */
	REMOTE_PUT_BROKEN,    /* it broke (the driver destroyed it) */
	REMOTE_PUT_TIMED_OUT, /* ... the server did not answer in time */
	REMOTE_PUT_ABANDONED, /* ... at the caller's deadline: no state
			       * change, and the next one is no reconnect */
};

/* n slots, none connected; ops and drv borrowed.  -ENOMEM or 0. */
int remote_slots_init(struct remote_slots *ss, struct remote_pool *rp,
		      pthread_mutex_t *lock, pthread_cond_t *cond,
		      struct log_ratelimit *rl,
		      const struct remote_slot_ops *ops, void *drv, size_t n,
		      long timeout_ms, unsigned connect_min_ms);

/* Frees the array; the driver destroys the connections in it first. */
void remote_slots_free(struct remote_slots *ss);

/*
 * Check out a slot for one call: `want` if >= 0, else any idle one,
 * connecting it if it has no connection.  Fails at once with -ETIMEDOUT
 * past the caller's deadline, with -EIO while the mount is down (or when
 * its connect fails with none left), with -ETIMEDOUT if none came free
 * (or the connect did not end) before the call's remote_deadline.  A
 * connect cut short by the caller's deadline changes nothing.
 */
int remote_slots_get(struct remote_slots *ss, int want,
		     struct remote_checkout *co);

/* Give slot idx back (see enum remote_put). */
void remote_slots_put(struct remote_slots *ss, int idx, enum remote_put how);

/* A connection was made in slot s: count a reconnect if the slot had one
 * that broke (not its first, nor one abandoned at a caller's deadline),
 * reset its backoff and make the mount connected. */
void remote_slot_up_locked(struct remote_pool *rp, struct remote_slot *s,
			   void *conn);

#endif /* VFSD_BACKENDS_REMOTE_SLOTS_H */
