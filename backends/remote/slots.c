/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * slots.c - the connection slots of a network backend's pool: checkout
 * until the call's deadline, one connect at a time, per-slot backoff, put
 * back (slots.h has the model).
 */
#include <alloca.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/callctx.h"

#include "backends/remote/slots.h"
#include "lib/clock.h"

int remote_slots_init(struct remote_slots *ss, struct remote_pool *rp,
		      pthread_mutex_t *lock, pthread_cond_t *cond,
		      struct log_ratelimit *rl,
		      const struct remote_slot_ops *ops, void *drv, size_t n,
		      const struct remote_slots_opts *o)
{
	memset(ss, 0, sizeof(*ss));
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
	ss->timeout_ms = o->timeout_ms;
	ss->connect_min_ms = o->connect_min_ms;
	ss->probe_interval_ms = o->probe_interval_ms;
	ss->connector = o->connector;
	ss->pick = o->pick;
	ss->fail_all = o->fail_all;
	ss->shared = o->shared;
	if (ss->connector == REMOTE_CONNECT_MAINT) {
		remote_cond_init(&ss->maint_cond);
		clock_gettime(CLOCK_MONOTONIC, &ss->next_attempt);
		ss->last_attempt_end = ss->next_attempt;
	}
	return 0;
}

void remote_slots_free(struct remote_slots *ss)
{
	if (ss->slot && ss->connector == REMOTE_CONNECT_MAINT)
		pthread_cond_destroy(&ss->maint_cond);
	free(ss->slot);
	ss->slot = NULL;
	ss->n = 0;
}

void remote_slots_close(struct remote_slots *ss)
{
	pthread_mutex_lock(ss->lock);
	ss->closing = true;
	pthread_cond_broadcast(ss->cond);
	if (ss->connector == REMOTE_CONNECT_MAINT)
		pthread_cond_broadcast(&ss->maint_cond);
	pthread_mutex_unlock(ss->lock);
}

void remote_slots_load(struct remote_slots *ss, int idx, int delta)
{
	pthread_mutex_lock(ss->lock);
	ss->slot[idx].load += delta;
	pthread_mutex_unlock(ss->lock);
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

void remote_slots_up_locked(struct remote_slots *ss, int idx, void *conn)
{
	struct remote_slot *s = &ss->slot[idx];

	remote_slot_up_locked(ss->rp, s, conn);
	s->doomed = false;
	/* a failure of this connection is a new one, to be acted on */
	s->epoch = ss->epoch;
}

/* Whether any slot holds a connection (the server answered it once and
 * no call has found it broken since).  A doomed one does not count: it
 * is out on a call and will be dropped when put back (fail_all), so the
 * mount must not wait on it as if it worked. */
static bool remote_slots_any_live_locked(const struct remote_slots *ss)
{
	for (size_t i = 0; i < ss->n; i++)
		if (ss->slot[i].conn && !ss->slot[i].doomed)
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

/* The idle slot with a connection that `pick` prefers, or -1. */
static int remote_slots_pick_live_locked(struct remote_slots *ss)
{
	unsigned start;
	int best = -1;

	if (ss->pick == REMOTE_PICK_FIRST_IDLE) {
		for (size_t i = 0; i < ss->n; i++) {
			const struct remote_slot *s = &ss->slot[i];

			if (s->conn && !s->busy && !s->doomed)
				return (int)i;
		}
		return -1;
	}
	/* the lowest load, starting one further each time so that calls
	 * spread over the pool on ties */
	start = ss->rr++;
	for (size_t k = 0; k < ss->n; k++) {
		size_t i = (start + k) % ss->n;
		const struct remote_slot *s = &ss->slot[i];

		if (!s->conn || s->busy || s->doomed)
			continue;
		if (best < 0 ||
		    s->load + s->users <
			    ss->slot[best].load + ss->slot[best].users)
			best = (int)i;
	}
	return best;
}

/* For a shared pool's data call (remote_slots_get_packed): the live slot
 * with the most such calls below `pack` and no other calls, whose calls
 * come back; else the least loaded; -1: none idle. */
static int remote_slots_pick_packed_locked(struct remote_slots *ss, int pack)
{
	double now = vfs_mono_s();
	unsigned start = ss->rr++;
	int best = -1;

	for (size_t k = 0; k < ss->n; k++) {
		size_t i = (start + k) % ss->n;
		const struct remote_slot *s = &ss->slot[i];

		if (!s->conn || s->busy || s->doomed || s->packed >= pack ||
		    s->users != s->packed ||
		    (s->users && now - s->since > REMOTE_PACK_STALL_S))
			continue;
		if (best < 0 || s->packed > ss->slot[best].packed)
			best = (int)i;
	}
	return best >= 0 ? best : remote_slots_pick_live_locked(ss);
}

/* The slot a checkout may take now, or -1 (and *wake moved to when a
 * slot in its backoff may be tried). */
static int remote_slots_pick_locked(struct remote_slots *ss, int want,
				    struct timespec *wake)
{
	bool live = remote_slots_any_live_locked(ss);
	double now = vfs_mono_s();
	int idx;

	if (want >= 0)
		return ss->slot[want].busy ? -1 : want;
	/* Prefer a live connection over one to make, and skip a slot that
	 * waits out its backoff. */
	idx = remote_slots_pick_live_locked(ss);
	if (idx >= 0)
		return idx;
	for (size_t i = 0; i < ss->n; i++) {
		struct remote_slot *s = &ss->slot[i];

		if (s->busy)
			continue;
		if (!s->conn && live && now < s->retry_at) {
			remote_wake_by(wake, s->retry_at);
			continue;
		}
		if (idx < 0)
			idx = (int)i;
	}
	return idx;
}

/*
 * While the mount is down (REMOTE_CONNECT_MAINT): one checkout at a time,
 * and at most once per probe_interval_ms after the last attempt ended,
 * has an attempt made at once and waits for its outcome (0: try again);
 * the others fail fast with -EIO.
 */
static int remote_slots_probe_locked(struct remote_slots *ss,
				     const struct timespec *until)
{
	unsigned seq = ss->attempt_seq;
	int ret = 0;

	if (ss->probe_waiter ||
	    vfs_ts_ms_since(&ss->last_attempt_end) < ss->probe_interval_ms)
		return -EIO;
	ss->probe_waiter = true;
	if (!ss->connecting) {
		clock_gettime(CLOCK_MONOTONIC, &ss->next_attempt);
		pthread_cond_signal(&ss->maint_cond);
	}
	while (ss->attempt_seq == seq && !ss->closing && !ret)
		ret = pthread_cond_timedwait(ss->cond, ss->lock, until);
	ss->probe_waiter = false;
	if (ret)
		return -ETIMEDOUT;
	if (ss->rp->state == REMOTE_DOWN)
		return -EIO;
	return 0;
}

/* The checkout when a maintenance thread connects; pinned: slot want at
 * generation gen only.  A caller past its own deadline still gets -ESTALE
 * or -EIO first, as those need no server. */
static int remote_slots_wait_get(struct remote_slots *ss, int want,
				 unsigned gen, bool pinned, int pack,
				 struct remote_checkout *co)
{
	struct remote_deadline dl;
	int ret = 0;

	remote_deadline_start(&dl, ss->timeout_ms);
	pthread_mutex_lock(ss->lock);
	for (;;) {
		int idx = -1;

		if (ss->closing) {
			ret = -EIO;
			break;
		}
		if (want >= 0) {
			const struct remote_slot *s = &ss->slot[want];

			/* (a doomed one is dropped when put back: waiting for
			 * its call would only delay the -ESTALE) */
			if (pinned &&
			    (s->gen != gen || !s->conn || s->doomed)) {
				ret = -ESTALE;
				break;
			}
			if (!s->busy && s->conn)
				idx = want;
		} else if (ss->rp->state == REMOTE_DOWN) {
			ret = remote_slots_probe_locked(ss, &dl.at);
			if (ret)
				break;
			continue;
		} else if (pack > 0 && ss->shared) {
			idx = remote_slots_pick_packed_locked(ss, pack);
		} else {
			idx = remote_slots_pick_live_locked(ss);
		}
		if (idx >= 0) {
			struct remote_slot *s = &ss->slot[idx];
			long budget = vfs_call_budget_ms(ss->timeout_ms);

			if (budget <= 0) {
				/* past the caller's deadline: send nothing */
				ret = -ETIMEDOUT;
				break;
			}
			if (ss->shared) {
				if (!s->users)
					s->since = vfs_mono_s();
				s->users++;
				if (pack > 0)
					s->packed++;
			} else {
				s->busy = true;
			}
			co->packed = ss->shared && pack > 0;
			co->idx = idx;
			co->conn = s->conn;
			co->gen = s->gen;
			co->budget_ms = budget;
			co->deadline = vfs_mono_s() + budget / 1000.0;
			co->caller_dl = budget < ss->timeout_ms;
			break;
		}
		if (pthread_cond_timedwait(ss->cond, ss->lock, &dl.at) ==
		    ETIMEDOUT) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(ss->lock);
	return ret;
}

int remote_slots_get_pinned(struct remote_slots *ss, int idx, unsigned gen,
			    struct remote_checkout *co)
{
	return remote_slots_wait_get(ss, idx, gen, true, 0, co);
}

int remote_slots_get_packed(struct remote_slots *ss, int pack,
			    struct remote_checkout *co)
{
	return remote_slots_wait_get(ss, -1, 0, false, pack, co);
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

	co->packed = false;
	if (ss->connector == REMOTE_CONNECT_MAINT)
		return remote_slots_wait_get(ss, want, 0, false, 0, co);
	remote_deadline_start(&dl, ss->timeout_ms);
	/* past the caller's deadline (backends/callctx.h): send nothing */
	if (dl.budget_ms <= 0)
		return -ETIMEDOUT;
	co->deadline = vfs_mono_s() + dl.budget_ms / 1000.0;
	co->budget_ms = dl.budget_ms;
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
	co->gen = s->gen;
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
		remote_slots_up_locked(ss, idx, conn);
		co->gen = s->gen;
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

/*
 * fail_all: a connection of the current epoch broke, so the others, which
 * talk to the same server over the same path, are presumed dead too.
 * Idle ones are dropped and reserved (busy), their indexes returned in
 * drop for the caller to close without the lock; busy ones are doomed
 * (dropped when put back).
 *
 * A connection that dropped (server restarted) makes the mount
 * reconnecting: new calls wait for the reconnect, which is quick either
 * way.  A server that did not answer for a whole timeout makes it down at
 * once: the reconnect would only hang as long again, and callers are
 * owed an answer within the timeout, so new calls fail fast meanwhile.
 */
static size_t remote_slots_fail_all_locked(struct remote_slots *ss,
					   bool timed_out, const char *why,
					   int *drop, void **dconn)
{
	bool was_connected = ss->rp->state == REMOTE_CONNECTED;
	size_t n = 0;

	ss->epoch++;
	for (size_t i = 0; i < ss->n; i++) {
		struct remote_slot *s = &ss->slot[i];

		if (!s->conn)
			continue;
		if (s->busy || s->users) {
			s->doomed = true;
			continue;
		}
		drop[n] = (int)i;
		dconn[n++] = s->conn;
		s->conn = NULL;
		s->busy = true;
	}
	remote_pool_broken_locked(ss->rp, timed_out, why);
	if (was_connected && ss->connector == REMOTE_CONNECT_MAINT) {
		/* the maintenance thread reconnects at once */
		remote_pool_backoff_reset_locked(ss->rp);
		clock_gettime(CLOCK_MONOTONIC, &ss->next_attempt);
		if (timed_out)
			/* counts as a failed attempt for the probe limit */
			ss->last_attempt_end = ss->next_attempt;
	}
	return n;
}

void remote_slots_put(struct remote_slots *ss, int idx, enum remote_put how)
{
	remote_slots_put_why(ss, idx, how, NULL);
}

static void remote_slots_put_call(struct remote_slots *ss, int idx,
				  enum remote_put how, const char *why,
				  bool packed)
{
	struct remote_slot *s = &ss->slot[idx];
	int *drop = NULL;
	void **dconn = NULL;
	void *conn = NULL, *keep = NULL;
	size_t ndrop = 0;

	if (ss->fail_all) {
		drop = alloca(ss->n * sizeof(*drop));
		dconn = alloca(ss->n * sizeof(*dconn));
	}
	pthread_mutex_lock(ss->lock);
	if (ss->shared) {
		s->users--;
		if (packed)
			s->packed--;
		s->since = vfs_mono_s();
	}
	if (s->doomed && (how == REMOTE_PUT_IDLE || how == REMOTE_PUT_ANSWERED))
		/* fail_all took the pool down while it was out */
		how = REMOTE_PUT_DISCARD;
	if (how != REMOTE_PUT_IDLE && how != REMOTE_PUT_ANSWERED) {
		conn = s->conn;
		if (ss->shared && s->users && conn) {
			/* others still have it out: it is dropped when the
			 * last of them puts it back (as doomed); the state
			 * changes now */
			s->doomed = true;
			keep = conn;
			conn = NULL;
		}
	}
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
	case REMOTE_PUT_DISCARD:
		/* dropped, the server is fine: no state change (its
		 * successor is a reconnect, as after any drop) */
		s->conn = NULL;
		break;
	case REMOTE_PUT_ABANDONED:
		/* the caller's deadline, not the server: no state change,
		 * and the slot's next connection is no reconnect */
		s->conn = NULL;
		s->abandoned = true;
		break;
	case REMOTE_PUT_TIMED_OUT:
	case REMOTE_PUT_BROKEN:
		s->conn = NULL;
		if (ss->fail_all && s->epoch != ss->epoch) {
			/* a connection from before the pool's last failure,
			 * doomed then and only now put back: that failure was
			 * acted on, and the connections made since are not
			 * this one's */
			log_debug("%s: connection %d of an earlier failure "
				  "closed",
				  ss->rp->display, idx);
		} else if (ss->fail_all) {
			ndrop = remote_slots_fail_all_locked(
				ss, how == REMOTE_PUT_TIMED_OUT, why, drop,
				dconn);
		} else {
			if (how == REMOTE_PUT_TIMED_OUT)
				/* A server that does not answer: stop
				 * sending new calls its way for a while. */
				ss->down_until =
					vfs_mono_s() +
					remote_pool_backoff_hold_locked(
						ss->rp) /
						1000.0;
			remote_pool_broken_locked(
				ss->rp, how == REMOTE_PUT_TIMED_OUT, why);
		}
		break;
	}
	if (keep)
		s->conn = keep;
	if (!ss->ops->close || (!conn && !ndrop)) {
		if (!ss->shared)
			s->busy = false;
		pthread_cond_broadcast(ss->cond);
		if (conn && ss->connector == REMOTE_CONNECT_MAINT)
			pthread_cond_signal(&ss->maint_cond);
		pthread_mutex_unlock(ss->lock);
		return;
	}
	if (conn)
		/* (shared: not yet) reserved while it closes, so that no
		 * connect goes into the slot meanwhile */
		s->busy = true;
	pthread_mutex_unlock(ss->lock);

	if (conn)
		ss->ops->close(ss->drv, conn);
	for (size_t i = 0; i < ndrop; i++)
		ss->ops->close(ss->drv, dconn[i]);

	pthread_mutex_lock(ss->lock);
	if (conn) {
		s->doomed = false;
		s->busy = false;
	}
	for (size_t i = 0; i < ndrop; i++)
		ss->slot[drop[i]].busy = false;
	pthread_cond_broadcast(ss->cond);
	if (ss->connector == REMOTE_CONNECT_MAINT)
		pthread_cond_signal(&ss->maint_cond);
	pthread_mutex_unlock(ss->lock);
}

void remote_slots_put_why(struct remote_slots *ss, int idx, enum remote_put how,
			  const char *why)
{
	remote_slots_put_call(ss, idx, how, why, false);
}

void remote_slots_put_packed(struct remote_slots *ss, int idx,
			     enum remote_put how, const char *why)
{
	remote_slots_put_call(ss, idx, how, why, true);
}

/* ---- The maintenance thread ------------------------------------------ */

/* A slot with no connection that nobody is connecting, or -1. */
static int remote_slots_missing_locked(const struct remote_slots *ss)
{
	for (size_t i = 0; i < ss->n; i++)
		if (!ss->slot[i].conn && !ss->slot[i].busy)
			return (int)i;
	return -1;
}

int remote_slots_maint_next_locked(struct remote_slots *ss)
{
	int idx = remote_slots_missing_locked(ss);

	if (idx < 0 || ss->closing || vfs_ts_ms_until(&ss->next_attempt) > 0)
		return -1;
	ss->slot[idx].busy = true;
	ss->connecting = true;
	ss->attempt_epoch = ss->epoch;
	return idx;
}

void remote_slots_maint_done_locked(struct remote_slots *ss, int idx, int rc,
				    void *conn, const char *msg)
{
	struct remote_slot *s = &ss->slot[idx];

	ss->connecting = false;
	ss->attempt_seq++;
	clock_gettime(CLOCK_MONOTONIC, &ss->last_attempt_end);
	s->busy = false;
	if (rc == 0 && ss->closing) {
		/* kept for the driver to close */
		s->conn = conn;
		s->gen++;
	} else if (rc == 0) {
		remote_slots_up_locked(ss, idx, conn);
		/* begun before a failure of all that came meanwhile, it may
		 * be as dead as those: its own failure then goes alone, and
		 * not with the connections made since */
		s->epoch = ss->attempt_epoch;
		ss->next_attempt = ss->last_attempt_end;
	} else {
		bool any_up = remote_slots_any_live_locked(ss);

		vfs_ts_after_ms(&ss->next_attempt, CLOCK_MONOTONIC,
				remote_pool_backoff_next_locked(ss->rp));
		if (!any_up && ss->rp->state != REMOTE_DOWN)
			remote_pool_set_state_locked(ss->rp, REMOTE_DOWN, msg);
		else if (any_up)
			log_warn_ratelimited(ss->rl, "%s", msg);
	}
	pthread_cond_broadcast(ss->cond);
}

void remote_slots_maint_wait_locked(struct remote_slots *ss,
				    struct timespec wake)
{
	if (ss->closing)
		return;
	if (remote_slots_missing_locked(ss) >= 0 &&
	    vfs_ts_ms_until(&ss->next_attempt) < vfs_ts_ms_until(&wake))
		wake = ss->next_attempt;
	pthread_cond_timedwait(&ss->maint_cond, ss->lock, &wake);
}

void *remote_slots_take_locked(struct remote_slots *ss, int idx)
{
	struct remote_slot *s = &ss->slot[idx];

	if (!s->conn || s->busy || s->doomed)
		return NULL;
	s->busy = true;
	return s->conn;
}
