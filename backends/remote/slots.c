/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * slots.c - the connection slots of a network backend's pool: checkout
 * until the call's deadline, one connect at a time, per-slot backoff, put
 * back (slots.h has the model).
 */
#include <errno.h>
#include <stdlib.h>

#include "backends/callctx.h"

#include "backends/remote/slots.h"
#include "lib/clock.h"

int remote_slots_init(struct remote_slots *ss, struct remote_pool *rp,
		      pthread_mutex_t *lock, pthread_cond_t *cond,
		      struct log_ratelimit *rl,
		      const struct remote_slot_ops *ops, void *drv, size_t n,
		      long timeout_ms, unsigned connect_min_ms)
{
	ss->slot = calloc(n, sizeof(*ss->slot));
	if (!ss->slot)
		return -ENOMEM;
	ss->rp = rp;
	ss->lock = lock;
	ss->cond = cond;
	ss->rl = rl;
	ss->ops = ops;
	ss->drv = drv;
	ss->n = n;
	ss->timeout_ms = timeout_ms;
	ss->connect_min_ms = connect_min_ms;
	ss->connecting = false;
	ss->down_until = 0;
	return 0;
}

void remote_slots_free(struct remote_slots *ss)
{
	free(ss->slot);
	ss->slot = NULL;
	ss->n = 0;
}

void remote_slot_up_locked(struct remote_pool *rp, struct remote_slot *s,
			   void *conn)
{
	s->conn = conn;
	/* a reconnect if the slot had a connection that broke; not its
	 * first, nor one that replaces a connection given up at a caller's
	 * deadline (the server never failed).  Back from an outage, this
	 * drops the cache (the server may have changed meanwhile). */
	remote_pool_connected_locked(rp, s->gen > 0 && !s->abandoned);
	s->gen++;
	s->abandoned = false;
	s->retry_at = 0;
	s->backoff_ms = 0;
}

/* Whether any slot holds a connection (the server answered it once and
 * no call has found it broken since). */
static bool remote_slots_any_live_locked(const struct remote_slots *ss)
{
	for (size_t i = 0; i < ss->n; i++)
		if (ss->slot[i].conn)
			return true;
	return false;
}

/* at, on CLOCK_MONOTONIC, moved to vfs_mono_s() time `t` if sooner */
static void remote_wake_by(struct timespec *at, double t)
{
	double left = t - vfs_mono_s();
	struct timespec w;

	if (left < 0)
		left = 0;
	clock_gettime(CLOCK_MONOTONIC, &w);
	w.tv_sec += (time_t)left;
	w.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
	if (w.tv_nsec >= 1000000000L) {
		w.tv_sec++;
		w.tv_nsec -= 1000000000L;
	}
	if (w.tv_sec < at->tv_sec ||
	    (w.tv_sec == at->tv_sec && w.tv_nsec < at->tv_nsec))
		*at = w;
}

/* The slot a checkout may take now, or -1 (and *wake moved to when a
 * slot in its backoff may be tried). */
static int remote_slots_pick_locked(struct remote_slots *ss, int want,
				    struct timespec *wake)
{
	bool live = remote_slots_any_live_locked(ss);
	double now = vfs_mono_s();
	int idx = -1;

	if (want >= 0)
		return ss->slot[want].busy ? -1 : want;
	/* Prefer a live connection over one to make, and skip a slot that
	 * waits out its backoff. */
	for (size_t i = 0; i < ss->n; i++) {
		struct remote_slot *s = &ss->slot[i];

		if (s->busy)
			continue;
		if (!s->conn && live && now < s->retry_at) {
			remote_wake_by(wake, s->retry_at);
			continue;
		}
		if (idx < 0 || (s->conn && !ss->slot[idx].conn))
			idx = (int)i;
	}
	return idx;
}

/*
 * A slot whose connect fails while other slots have a connection is no
 * sign of a dead server (it may refuse one connection more, or one
 * attempt went wrong): the mount stays as it is (it does not even pass
 * through reconnecting), that slot waits its own backoff before it is
 * tried again, and the caller waits for one of the working connections
 * instead.  Only a failure with none left makes the mount down.
 */
int remote_slots_get(struct remote_slots *ss, int want,
		     struct remote_checkout *co)
{
	struct remote_deadline dl;
	struct remote_slot *s;
	double connect_by;
	char msg[256];
	void *conn;
	int idx, ret;
	bool others;

	remote_deadline_start(&dl, ss->timeout_ms);
	/* past the caller's deadline (backends/callctx.h): send nothing */
	if (dl.budget_ms <= 0)
		return -ETIMEDOUT;
	co->deadline = vfs_mono_s() + dl.budget_ms / 1000.0;
	co->caller_dl = dl.budget_ms < ss->timeout_ms;

	pthread_mutex_lock(ss->lock);
again:
	for (;;) {
		struct timespec wake = dl.at;

		if (ss->rp->state == REMOTE_DOWN &&
		    vfs_mono_s() < ss->down_until) {
			pthread_mutex_unlock(ss->lock);
			return -EIO;
		}
		idx = remote_slots_pick_locked(ss, want, &wake);
		if (idx >= 0 && (ss->slot[idx].conn || !ss->connecting))
			break;
		/* A connect towards a server already known to be down: do
		 * not queue behind it. */
		if (idx >= 0 && ss->rp->state == REMOTE_DOWN) {
			pthread_mutex_unlock(ss->lock);
			return -EIO;
		}
		if (pthread_cond_timedwait(ss->cond, ss->lock, &wake) ==
			    ETIMEDOUT &&
		    vfs_ts_ms_until(&dl.at) <= 0) {
			pthread_mutex_unlock(ss->lock);
			return -ETIMEDOUT;
		}
	}
	s = &ss->slot[idx];
	s->busy = true;
	co->idx = idx;
	if (s->conn) {
		co->conn = s->conn;
		pthread_mutex_unlock(ss->lock);
		return 0;
	}
	/* One connect at a time: a dead server costs one timeout, and the
	 * other callers wait for its outcome or fail fast once it is down. */
	ss->connecting = true;
	others = remote_slots_any_live_locked(ss);
	connect_by = co->deadline;
	if (others && want < 0 && ss->connect_min_ms) {
		/* A working connection may come free long before a connect
		 * that goes unanswered gives up: spend a quarter of what is
		 * left on the connect, then wait for a working one with the
		 * rest.  At least connect_min_ms, so that a short budget
		 * still leaves a healthy server time for the handshake. */
		double cap = (co->deadline - vfs_mono_s()) / 4;

		if (cap < ss->connect_min_ms / 1000.0)
			cap = ss->connect_min_ms / 1000.0;
		if (vfs_mono_s() + cap < connect_by)
			connect_by = vfs_mono_s() + cap;
	}
	/* (A first connect of a slot changes no state, nor does that of a
	 * slot whose connection was given up at a caller's deadline, nor
	 * that of a slot beside a working one: the server answers that.) */
	if (!others && ss->rp->state == REMOTE_CONNECTED && s->gen > 0 &&
	    !s->abandoned)
		remote_pool_set_state_locked(ss->rp, REMOTE_RECONNECTING, NULL);
	pthread_mutex_unlock(ss->lock);

	msg[0] = '\0';
	ret = ss->ops->connect(ss->drv, connect_by, &conn, msg, sizeof(msg));

	pthread_mutex_lock(ss->lock);
	ss->connecting = false;
	if (ret == 0) {
		remote_slot_up_locked(ss->rp, s, conn);
		co->conn = conn;
	} else if (ret == -ETIMEDOUT &&
		   (vfs_call_expired() ||
		    (connect_by >= co->deadline && co->caller_dl))) {
		/* Cut short by the caller's own deadline (the budget was
		 * the caller's, and the connect had all of it: co->deadline
		 * is rounded down to the ms, so vfs_call_expired() alone
		 * may not be true yet): nothing is known about the server,
		 * so no state change, no backoff and no retry_at.
		 * s->abandoned is left as it is: the slot's next connect is
		 * a reconnect exactly when this one would have been. */
		s->busy = false;
		log_debug("%s: connection %d: connect cut short by the "
			  "caller's deadline",
			  ss->rp->display, idx);
	} else if (remote_slots_any_live_locked(ss)) {
		/* The slot's own backoff: the calls the working connections
		 * answer reset the pool's, and would have it retried at the
		 * first step forever. */
		unsigned delay = remote_backoff_next(&s->backoff_ms,
						     ss->rp->backoff_first_ms,
						     ss->rp->backoff_max_ms);

		s->busy = false;
		s->retry_at = vfs_mono_s() + delay / 1000.0;
		log_warn_ratelimited(ss->rl,
				     "%s: connection %d failed: %s "
				     "(again in %u ms)",
				     ss->rp->display, idx, msg, delay);
		pthread_cond_broadcast(ss->cond);
		/* wait for a working connection with what is left */
		if (want < 0 && vfs_ts_ms_until(&dl.at) > 0)
			goto again;
		ret = ret == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
	} else {
		s->busy = false;
		ss->down_until =
			vfs_mono_s() +
			remote_pool_backoff_next_locked(ss->rp) / 1000.0;
		log_warn_ratelimited(ss->rl, "%s: reconnect failed: %s",
				     ss->rp->display, msg);
		remote_pool_set_state_locked(ss->rp, REMOTE_DOWN, NULL);
		ret = ret == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	pthread_cond_broadcast(ss->cond);
	pthread_mutex_unlock(ss->lock);
	return ret;
}

void remote_slots_put(struct remote_slots *ss, int idx, enum remote_put how)
{
	struct remote_slot *s = &ss->slot[idx];

	pthread_mutex_lock(ss->lock);
	switch (how) {
	case REMOTE_PUT_IDLE:
		break;
	case REMOTE_PUT_ANSWERED:
		/* the server is alive: calls on the connections still up go
		 * on while a broken one waits for its connect, and would
		 * otherwise never say so */
		if (ss->rp->state != REMOTE_CONNECTED)
			remote_pool_connected_locked(ss->rp, false);
		break;
	case REMOTE_PUT_ABANDONED:
		/* the caller's deadline, not the server: no state change,
		 * and the slot's next connection is no reconnect */
		s->conn = NULL;
		s->abandoned = true;
		break;
	case REMOTE_PUT_TIMED_OUT:
		/* A server that does not answer: stop sending new calls its
		 * way for a while. */
		ss->down_until =
			vfs_mono_s() +
			remote_pool_backoff_hold_locked(ss->rp) / 1000.0;
		/* fall through */
	case REMOTE_PUT_BROKEN:
		s->conn = NULL;
		remote_pool_broken_locked(ss->rp, how == REMOTE_PUT_TIMED_OUT,
					  NULL);
		break;
	}
	s->busy = false;
	pthread_cond_broadcast(ss->cond);
	pthread_mutex_unlock(ss->lock);
}
