/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pool.c - the SFTP mount's connection pool and its maintenance thread
 * (reconnect with backoff, keepalives, cache expiry).
 *
 * The states, their meaning, the backoff policy and the reconnect count
 * are the remote core's (backends/remote/pool.h).  What is SFTP's own: a
 * transport error on one session fails them all (they share the server
 * and the path to it), but only a session made since the last such
 * failure does: an older one, busy then and failing only now, goes alone
 * (fail_epoch), as does one abandoned at a caller's deadline.  The
 * maintenance thread, not the callers, makes the connect attempts.  While DOWN,
 * one operation at a time (at most once a second) may wait for a fresh attempt:
 * a dead server then costs the FUSE thread pool one thread, not all of them.
 */
#include <alloca.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends/callctx.h"
#include "backends/sftp/internal.h"
#include "lib/log.h"

#define SFTP_BACKOFF_FIRST_MS  250
#define SFTP_BACKOFF_MAX_MS    5000
/* An operation on a DOWN mount may trigger an attempt this often. */
#define SFTP_PROBE_INTERVAL_MS 1000

/* ---- Pool ----------------------------------------------------------- */

static void *sftp_maint_main(void *arg);

int sftp_pool_init(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;
	p->n = sm->cfg.connections;
	p->conns = calloc(p->n, sizeof(*p->conns));
	if (!p->conns)
		return -ENOMEM;
	for (int i = 0; i < p->n; i++) {
		p->conns[i].idx = i;
		p->conns[i].sock = -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	remote_cond_init(&p->cond);
	remote_cond_init(&p->maint_cond);
	remote_pool_init(&p->rp, &sm->base, sm->cfg.display, &p->cond,
			 sm->cache, SFTP_BACKOFF_FIRST_MS, SFTP_BACKOFF_MAX_MS);
	clock_gettime(CLOCK_MONOTONIC, &p->next_attempt);
	p->last_attempt_end = p->next_attempt;
	return 0;
}

int sftp_pool_start(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;
	int rc;

	p->conns[0].up = true;
	p->conns[0].slot.gen = 1;
	rc = pthread_create(&p->maint, NULL, sftp_maint_main, sm);
	if (rc)
		return -rc;
	p->maint_started = true;
	return 0;
}

void sftp_pool_destroy(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;

	if (!p->conns)
		return;
	pthread_mutex_lock(&p->lock);
	p->closing = true;
	pthread_cond_broadcast(&p->cond);
	pthread_cond_broadcast(&p->maint_cond);
	pthread_mutex_unlock(&p->lock);
	if (p->maint_started)
		pthread_join(p->maint, NULL);
	for (int i = 0; i < p->n; i++) {
		struct sftp_conn *c = &p->conns[i];

		if (c->ssh)
			sftp_conn_close(c, c->up && !c->broken &&
						   p->rp.state ==
							   REMOTE_CONNECTED);
	}
	free(p->conns);
	p->conns = NULL;
	pthread_cond_destroy(&p->cond);
	pthread_cond_destroy(&p->maint_cond);
	pthread_mutex_destroy(&p->lock);
}

/*
 * A transport error on one session: the others talk to the same server
 * over the same path, so they are presumed dead too.  Idle ones are
 * reserved (busy) and returned in close_list for the caller to close
 * without the lock; busy ones are closed when they are checked in.
 *
 * A connection that dropped (server restarted) makes the mount
 * RECONNECTING: new calls wait for the reconnect, which is quick either
 * way.  A server that did not answer for a whole timeout makes it DOWN at
 * once: the reconnect would only hang as long again, and callers are
 * owed an answer within the timeout, so new calls fail fast meanwhile.
 */
static int sftp_pool_fail_locked(struct sftp_mount *sm, const char *why,
				 bool timed_out, struct sftp_conn **close_list)
{
	struct sftp_pool *p = &sm->pool;
	bool was_connected;
	int n = 0;

	p->fail_epoch++;
	for (int i = 0; i < p->n; i++) {
		struct sftp_conn *c = &p->conns[i];

		if (!c->up)
			continue;
		if (c->slot.busy) {
			c->doomed = true;
			continue;
		}
		c->up = false;
		c->slot.busy = true;
		close_list[n++] = c;
	}
	was_connected = p->rp.state == REMOTE_CONNECTED;
	remote_pool_broken_locked(&p->rp, timed_out, why);
	if (was_connected) {
		/* the maintenance thread reconnects at once */
		remote_pool_backoff_reset_locked(&p->rp);
		clock_gettime(CLOCK_MONOTONIC, &p->next_attempt);
		if (timed_out)
			/* counts as a failed attempt for the probe limit */
			p->last_attempt_end = p->next_attempt;
	}
	pthread_cond_signal(&p->maint_cond);
	return n;
}

void sftp_checkin_discard(struct sftp_mount *sm, struct sftp_conn *c)
{
	pthread_mutex_lock(&sm->pool.lock);
	c->doomed = true;
	pthread_mutex_unlock(&sm->pool.lock);
	sftp_checkin(sm, c);
}

void sftp_checkin(struct sftp_mount *sm, struct sftp_conn *c)
{
	struct sftp_pool *p = &sm->pool;
	struct sftp_conn **closing;
	bool abandoned = false;
	int n = 0;

	sftp_close_reap(c, false);
	clock_gettime(CLOCK_MONOTONIC, &c->last_io);
	if (c->fenced) {
		c->fenced = false;
		if (!c->broken)
			libssh2_session_set_timeout(c->ssh, sm->cfg.timeout_ms);
		else if (c->timed_out && vfs_call_expired())
			/* the caller's deadline, not a silent server: drop
			 * this connection only, the mount stays up */
			abandoned = true;
	}
	pthread_mutex_lock(&p->lock);
	if (!c->broken && !c->doomed) {
		c->slot.busy = false;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	closing = alloca(p->n * sizeof(*closing));
	c->up = false;
	if (abandoned) {
		c->slot.abandoned = true;
	} else if (c->broken && c->epoch != p->fail_epoch) {
		/* A session from before the pool's last failure, which
		 * was doomed then and is only now checked in: that
		 * failure was acted on, and the sessions made since are
		 * not this one's. */
		log_debug("%s: connection %d of an earlier failure closed",
			  sm->cfg.display, c->idx);
	} else if (c->broken) {
		char *msg = NULL;
		char why[200];

		libssh2_session_last_error(c->ssh, &msg, NULL, 0);
		snprintf(why, sizeof(why), "connection lost (%s)",
			 msg ? msg : "transport error");
		n = sftp_pool_fail_locked(sm, why, c->timed_out, closing);
	}
	pthread_mutex_unlock(&p->lock);

	sftp_conn_close(c, false);
	for (int i = 0; i < n; i++)
		sftp_conn_close(closing[i], false);

	pthread_mutex_lock(&p->lock);
	c->doomed = false;
	c->slot.busy = false;
	for (int i = 0; i < n; i++)
		closing[i]->slot.busy = false;
	pthread_cond_broadcast(&p->cond);
	pthread_cond_signal(&p->maint_cond);
	pthread_mutex_unlock(&p->lock);
}

/* The idle usable slot with the fewest open files, rotating on ties so
 * that metadata calls spread over the pool. */
static struct sftp_conn *sftp_pick_locked(struct sftp_pool *p)
{
	struct sftp_conn *best = NULL;
	unsigned start = p->rr++;

	for (int k = 0; k < p->n; k++) {
		struct sftp_conn *c = &p->conns[(start + k) % p->n];

		if (!c->up || c->slot.busy || c->doomed)
			continue;
		if (!best || c->nfiles < best->nfiles)
			best = c;
	}
	return best;
}

int sftp_checkout(struct sftp_mount *sm, int want, unsigned gen,
		  struct sftp_conn **out)
{
	struct sftp_pool *p = &sm->pool;
	struct remote_deadline dl;
	int ret = 0;

	/* a caller past its own deadline still gets -ESTALE or -EIO first
	 * (below), as those need no server */
	remote_deadline_start(&dl, sm->cfg.timeout_ms);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct sftp_conn *c = NULL;

		if (p->closing) {
			ret = -EIO;
			break;
		}
		if (want >= 0) {
			c = &p->conns[want];
			if (c->slot.gen != gen || !c->up) {
				ret = -ESTALE;
				break;
			}
			if (c->slot.busy)
				c = NULL;
		} else if (p->rp.state == REMOTE_DOWN) {
			unsigned seq = p->attempt_seq;

			if (p->probe_waiter ||
			    vfs_ts_ms_since(&p->last_attempt_end) <
				    SFTP_PROBE_INTERVAL_MS) {
				ret = -EIO;
				break;
			}
			/* this caller waits for one fresh attempt */
			p->probe_waiter = true;
			if (!p->connecting) {
				clock_gettime(CLOCK_MONOTONIC,
					      &p->next_attempt);
				pthread_cond_signal(&p->maint_cond);
			}
			while (p->attempt_seq == seq && !p->closing && !ret)
				ret = -pthread_cond_timedwait(&p->cond,
							      &p->lock, &dl.at);
			p->probe_waiter = false;
			if (ret) {
				ret = -ETIMEDOUT;
				break;
			}
			if (p->rp.state == REMOTE_DOWN) {
				ret = -EIO;
				break;
			}
			continue;
		} else {
			c = sftp_pick_locked(p);
		}
		if (c) {
			long budget = vfs_call_budget_ms(sm->cfg.timeout_ms);

			if (budget <= 0) {
				/* past the caller's deadline: send nothing */
				ret = -ETIMEDOUT;
				break;
			}
			c->slot.busy = true;
			if (budget < sm->cfg.timeout_ms) {
				/* so that a request that misses the deadline
				 * is abandoned with its connection */
				c->fenced = true;
				libssh2_session_set_timeout(c->ssh, budget);
			}
			*out = c;
			break;
		}
		if (pthread_cond_timedwait(&p->cond, &p->lock, &dl.at) ==
		    ETIMEDOUT) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void sftp_pool_count_file(struct sftp_mount *sm, int idx, int delta)
{
	pthread_mutex_lock(&sm->pool.lock);
	sm->pool.conns[idx].nfiles += delta;
	pthread_mutex_unlock(&sm->pool.lock);
}

const char *sftp_pool_state(struct sftp_mount *sm)
{
	enum remote_state s;

	pthread_mutex_lock(&sm->pool.lock);
	s = sm->pool.rp.state;
	pthread_mutex_unlock(&sm->pool.lock);
	return remote_state_name(s);
}

void sftp_pool_opened_locked(struct sftp_mount *sm, struct sftp_conn *c)
{
	struct sftp_pool *p = &sm->pool;

	/* counts a reconnect, or not, as for every backend */
	remote_slot_up_locked(&p->rp, &c->slot, c->ssh);
	c->up = true;
	c->doomed = false;
	/* a failure of this session is a new one, to be acted on */
	c->epoch = p->fail_epoch;
}

/* One (re)connect attempt for slot c (reserved busy by the caller). */
static void sftp_maint_connect_locked(struct sftp_mount *sm,
				      struct sftp_conn *c)
{
	struct sftp_pool *p = &sm->pool;
	struct vfs_error err;
	int rc;

	vfs_error_init(&err);
	p->connecting = true;
	pthread_mutex_unlock(&p->lock);
	rc = sftp_conn_open(sm, c, &err);
	pthread_mutex_lock(&p->lock);
	p->connecting = false;
	p->attempt_seq++;
	clock_gettime(CLOCK_MONOTONIC, &p->last_attempt_end);
	c->slot.busy = false;
	if (rc == 0 && p->closing) {
		c->slot.gen++;
		c->up = true;
	} else if (rc == 0) {
		sftp_pool_opened_locked(sm, c);
		p->next_attempt = p->last_attempt_end;
	} else {
		bool any_up = false;

		for (int i = 0; i < p->n; i++)
			any_up |= p->conns[i].up;
		vfs_ts_after_ms(&p->next_attempt, CLOCK_MONOTONIC,
				remote_pool_backoff_next_locked(&p->rp));
		if (!any_up && p->rp.state != REMOTE_DOWN)
			remote_pool_set_state_locked(&p->rp, REMOTE_DOWN,
						     err.msg);
		else if (any_up)
			log_warn_ratelimited(&sm->rl, "%s", err.msg);
	}
	pthread_cond_broadcast(&p->cond);
}

/* Send keepalives on idle sessions (the lock is dropped meanwhile). */
static void sftp_maint_keepalive_locked(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;

	for (int i = 0; i < p->n && !p->closing; i++) {
		struct sftp_conn *c = &p->conns[i];
		int next, rc;

		if (!c->up || c->slot.busy || c->doomed ||
		    vfs_ts_ms_since(&c->last_io) < sm->cfg.keepalive_s * 1000L)
			continue;
		c->slot.busy = true;
		pthread_mutex_unlock(&p->lock);
		rc = libssh2_keepalive_send(c->ssh, &next);
		if (rc)
			sftp_err(c, rc);
		pthread_mutex_lock(&p->lock);
		if (c->broken) {
			pthread_mutex_unlock(&p->lock);
			sftp_checkin(sm, c);
			pthread_mutex_lock(&p->lock);
		} else {
			clock_gettime(CLOCK_MONOTONIC, &c->last_io);
			c->slot.busy = false;
			pthread_cond_broadcast(&p->cond);
		}
	}
}

static void *sftp_maint_main(void *arg)
{
	struct sftp_mount *sm = arg;
	struct sftp_pool *p = &sm->pool;
	struct timespec last_expire;

	clock_gettime(CLOCK_MONOTONIC, &last_expire);
	pthread_mutex_lock(&p->lock);
	while (!p->closing) {
		struct sftp_conn *missing = NULL;
		struct timespec wake;

		for (int i = 0; i < p->n && !missing; i++)
			if (!p->conns[i].up && !p->conns[i].slot.busy)
				missing = &p->conns[i];
		if (missing && vfs_ts_ms_until(&p->next_attempt) <= 0) {
			missing->slot.busy = true;
			sftp_maint_connect_locked(sm, missing);
			continue;
		}
		if (sm->cfg.keepalive_s)
			sftp_maint_keepalive_locked(sm);
		if (vfs_ts_ms_since(&last_expire) >= 1000) {
			remote_cache_expire(sm->cache);
			clock_gettime(CLOCK_MONOTONIC, &last_expire);
		}
		vfs_ts_after_ms(&wake, CLOCK_MONOTONIC, 1000);
		if (missing && vfs_ts_ms_until(&p->next_attempt) < 1000)
			wake = p->next_attempt;
		if (!p->closing)
			pthread_cond_timedwait(&p->maint_cond, &p->lock, &wake);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}
