/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pool.c - the SFTP mount's connection pool and its maintenance thread
 * (reconnect, keepalives, cache expiry).
 *
 * Checkout, put back, the states, the backoff and the reconnect count are
 * the remote core's (backends/remote/slots.h, pool.h), with the options
 * SFTP needs: the maintenance thread, not the callers, makes the connect
 * attempts (while DOWN, one operation at a time, at most once a second,
 * may wait for a fresh attempt: a dead server then costs the FUSE thread
 * pool one thread, not all of them); the least loaded session is picked
 * (files pinned to their session); a transport error on one session
 * fails them all (they share the server and the path to it), but only
 * those made since the last such failure (an older one, busy then and
 * failing only now, goes alone), as does one abandoned at a caller's
 * deadline.  What is SFTP's own: the sessions (session.c), how a
 * session's state maps to the way it is put back, fencing a call to the
 * caller's deadline, and the maintenance thread's body.
 */
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

/* The core drops a session (backends/remote/slots.h: ops->close). */
static void sftp_slot_close(void *drv, void *conn)
{
	(void)drv;
	sftp_conn_close(conn, false);
}

static const struct remote_slot_ops sftp_slot_ops = {
	.close = sftp_slot_close,
};

int sftp_pool_init(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;
	const struct remote_slots_opts o = {
		.timeout_ms = sm->cfg.timeout_ms,
		.connector = REMOTE_CONNECT_MAINT,
		.probe_interval_ms = SFTP_PROBE_INTERVAL_MS,
		.pick = REMOTE_PICK_LEAST_LOADED,
		.fail_all = true,
	};

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
	remote_pool_init(&p->rp, &sm->base, sm->cfg.display, &p->cond,
			 sm->cache, SFTP_BACKOFF_FIRST_MS, SFTP_BACKOFF_MAX_MS);
	if (remote_slots_init(&p->ss, &p->rp, &p->lock, &p->cond, &sm->rl,
			      &sftp_slot_ops, sm, (size_t)p->n, &o) < 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p->conns);
		p->conns = NULL;
		return -ENOMEM;
	}
	return 0;
}

int sftp_pool_start(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;
	int rc;

	p->ss.slot[0].conn = &p->conns[0];
	p->ss.slot[0].gen = 1;
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
	remote_slots_close(&p->ss);
	if (p->maint_started)
		pthread_join(p->maint, NULL);
	for (int i = 0; i < p->n; i++) {
		struct sftp_conn *c = &p->conns[i];

		if (c->ssh)
			sftp_conn_close(c, p->ss.slot[i].conn && !c->broken &&
						   p->rp.state ==
							   REMOTE_CONNECTED);
	}
	remote_slots_free(&p->ss);
	free(p->conns);
	p->conns = NULL;
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

/*
 * Give c back, as the state of its session says: usable; dropped though
 * the server is fine (discard); given up at the caller's deadline (the
 * mount stays up); or broken, which fails the pool (the core's fail_all:
 * the sessions of the same epoch go, the mount is reconnecting, or down
 * if the server did not answer in time).
 */
static void sftp_checkin_how(struct sftp_mount *sm, struct sftp_conn *c,
			     bool discard)
{
	enum remote_put how = REMOTE_PUT_IDLE;
	bool abandoned = false;
	char why[200];

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
	why[0] = '\0';
	if (c->broken) {
		char *msg = NULL;

		libssh2_session_last_error(c->ssh, &msg, NULL, 0);
		snprintf(why, sizeof(why), "connection lost (%s)",
			 msg ? msg : "transport error");
		how = abandoned      ? REMOTE_PUT_ABANDONED
		      : c->timed_out ? REMOTE_PUT_TIMED_OUT
				     : REMOTE_PUT_BROKEN;
	} else if (discard) {
		how = REMOTE_PUT_DISCARD;
	}
	remote_slots_put_why(&sm->pool.ss, c->idx, how, why[0] ? why : NULL);
}

void sftp_checkin_discard(struct sftp_mount *sm, struct sftp_conn *c)
{
	sftp_checkin_how(sm, c, true);
}

void sftp_checkin(struct sftp_mount *sm, struct sftp_conn *c)
{
	sftp_checkin_how(sm, c, false);
}

int sftp_checkout(struct sftp_mount *sm, int want, unsigned gen,
		  struct sftp_conn **out)
{
	struct remote_checkout co;
	struct sftp_conn *c;
	int ret;

	if (want >= 0)
		ret = remote_slots_get_pinned(&sm->pool.ss, want, gen, &co);
	else
		ret = remote_slots_get(&sm->pool.ss, -1, &co);
	if (ret < 0)
		return ret;
	c = co.conn;
	c->gen = co.gen;
	if (co.caller_dl) {
		/* so that a request that misses the deadline is abandoned
		 * with its connection */
		c->fenced = true;
		libssh2_session_set_timeout(c->ssh, co.budget_ms);
	}
	*out = c;
	return 0;
}

void sftp_pool_count_file(struct sftp_mount *sm, int idx, int delta)
{
	remote_slots_load(&sm->pool.ss, idx, delta);
}

bool sftp_pool_up(struct sftp_mount *sm, int idx)
{
	bool up;

	pthread_mutex_lock(&sm->pool.lock);
	up = sm->pool.ss.slot[idx].conn != NULL;
	pthread_mutex_unlock(&sm->pool.lock);
	return up;
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
	/* counts a reconnect, or not, as for every backend */
	remote_slots_up_locked(&sm->pool.ss, c->idx, c);
}

/* One (re)connect attempt for slot idx (reserved by the core). */
static void sftp_maint_connect_locked(struct sftp_mount *sm, int idx)
{
	struct sftp_pool *p = &sm->pool;
	struct sftp_conn *c = &p->conns[idx];
	struct vfs_error err;
	int rc;

	vfs_error_init(&err);
	pthread_mutex_unlock(&p->lock);
	rc = sftp_conn_open(sm, c, &err);
	pthread_mutex_lock(&p->lock);
	remote_slots_maint_done_locked(&p->ss, idx, rc, c, err.msg);
}

/* Send keepalives on idle sessions (the lock is dropped meanwhile). */
static void sftp_maint_keepalive_locked(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;

	for (int i = 0; i < p->n && !p->ss.closing; i++) {
		struct sftp_conn *c = &p->conns[i];
		int next, rc;

		/* (last_io is the checked-out caller's: read it only of an
		 * idle slot) */
		if (!p->ss.slot[i].conn || p->ss.slot[i].busy ||
		    vfs_ts_ms_since(&c->last_io) <
			    sm->cfg.keepalive_s * 1000L ||
		    !remote_slots_take_locked(&p->ss, i))
			continue;
		pthread_mutex_unlock(&p->lock);
		rc = libssh2_keepalive_send(c->ssh, &next);
		if (rc)
			sftp_err(c, rc);
		if (c->broken) {
			sftp_checkin(sm, c);
		} else {
			clock_gettime(CLOCK_MONOTONIC, &c->last_io);
			remote_slots_put(&p->ss, i, REMOTE_PUT_IDLE);
		}
		pthread_mutex_lock(&p->lock);
	}
}

static void *sftp_maint_main(void *arg)
{
	struct sftp_mount *sm = arg;
	struct sftp_pool *p = &sm->pool;
	struct timespec last_expire;

	clock_gettime(CLOCK_MONOTONIC, &last_expire);
	pthread_mutex_lock(&p->lock);
	while (!p->ss.closing) {
		struct timespec wake;
		int idx = remote_slots_maint_next_locked(&p->ss);

		if (idx >= 0) {
			sftp_maint_connect_locked(sm, idx);
			continue;
		}
		if (sm->cfg.keepalive_s)
			sftp_maint_keepalive_locked(sm);
		if (vfs_ts_ms_since(&last_expire) >= 1000) {
			remote_cache_expire(sm->cache);
			clock_gettime(CLOCK_MONOTONIC, &last_expire);
		}
		vfs_ts_after_ms(&wake, CLOCK_MONOTONIC, 1000);
		remote_slots_maint_wait_locked(&p->ss, wake);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}
