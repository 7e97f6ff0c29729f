/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pool.c - the SFTP mount's connection pool and its maintenance thread
 * (reconnect, cache expiry).
 *
 * Checkout, put back, the states, the backoff and the reconnect count are
 * the remote core's (backends/remote/slots.h, pool.h), with the options
 * SFTP needs: the maintenance thread, not the callers, makes the connect
 * attempts (while DOWN, one operation at a time, at most once a second,
 * may wait for a fresh attempt: a dead server then costs the FUSE thread
 * pool one thread, not all of them); the least loaded session is picked
 * (files pinned to their session), but small direct I/O is packed
 * (sftp_checkout_data); a transport error on one session
 * fails them all (they share the server and the path to it), but only
 * those made since the last such failure (an older one, busy then and
 * failing only now, goes alone).  Sessions are shared: the engine
 * pipelines any number of calls on one, so a checkout only counts the
 * call.  What is SFTP's own: the sessions (session.c), how what a call
 * learnt of its session maps to the way it is put back, and the
 * maintenance thread's body.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	struct sftp_sess *s = conn;

	sftp_sess_close(s, false);
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
		.shared = true,
	};

	p->n = sm->cfg.connections;
	p->sess = calloc(p->n, sizeof(*p->sess));
	if (!p->sess)
		return -ENOMEM;
	for (int i = 0; i < p->n; i++) {
		p->sess[i].idx = i;
		p->sess[i].sock = -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	remote_cond_init(&p->cond);
	remote_pool_init(&p->rp, &sm->base, sm->cfg.display, &p->cond,
			 sm->cache, SFTP_BACKOFF_FIRST_MS, SFTP_BACKOFF_MAX_MS);
	if (remote_slots_init(&p->ss, &p->rp, &p->lock, &p->cond, &sm->rl,
			      &sftp_slot_ops, sm, (size_t)p->n, &o) < 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p->sess);
		p->sess = NULL;
		return -ENOMEM;
	}
	return 0;
}

int sftp_pool_start(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;
	int rc;

	p->ss.slot[0].conn = &p->sess[0];
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

	if (!p->sess)
		return;
	remote_slots_close(&p->ss);
	if (p->maint_started)
		pthread_join(p->maint, NULL);
	for (int i = 0; i < p->n; i++) {
		struct sftp_sess *s = &p->sess[i];

		if (s->ssh)
			sftp_sess_close(s, p->ss.slot[i].conn &&
						   !p->ss.slot[i].doomed &&
						   p->rp.state ==
							   REMOTE_CONNECTED);
	}
	remote_slots_free(&p->ss);
	free(p->sess);
	p->sess = NULL;
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

/*
 * Give c back, as what the call learnt says: usable (the server answered:
 * a mount that was reconnecting is connected); cut because a write missed
 * its caller's deadline (dropped, no state change: the server is fine);
 * or broken, which fails the pool (the core's fail_all: the sessions of
 * the same epoch go, the mount is reconnecting, or down if the server did
 * not answer in time).
 */
void sftp_checkin(struct sftp_mount *sm, struct sftp_conn *c)
{
	enum remote_put how = REMOTE_PUT_IDLE;
	const char *why = NULL;

	if (c->cancelled) {
		how = REMOTE_PUT_ABANDONED;
	} else if (c->broken) {
		why = c->timed_out ? "the server did not answer in time"
				   : "connection lost";
		how = c->timed_out ? REMOTE_PUT_TIMED_OUT : REMOTE_PUT_BROKEN;
	} else if (c->answered) {
		how = REMOTE_PUT_ANSWERED;
	}
	if (c->packed)
		remote_slots_put_packed(&sm->pool.ss, c->idx, how, why);
	else
		remote_slots_put_why(&sm->pool.ss, c->idx, how, why);
	c->chan = NULL;
	c->s = NULL;
}

static void sftp_checked_out(struct sftp_mount *sm,
			     const struct remote_checkout *co,
			     struct sftp_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->sm = sm;
	c->s = co->conn;
	c->chan = c->s->chan;
	c->idx = co->idx;
	c->gen = co->gen;
	c->deadline = co->deadline;
	c->fenced = co->caller_dl;
	c->packed = co->packed;
}

int sftp_checkout(struct sftp_mount *sm, int want, unsigned gen,
		  struct sftp_conn *c)
{
	struct remote_checkout co;
	int ret;

	if (want >= 0)
		ret = remote_slots_get_pinned(&sm->pool.ss, want, gen, &co);
	else
		ret = remote_slots_get(&sm->pool.ss, -1, &co);
	if (ret < 0)
		return ret;
	sftp_checked_out(sm, &co, c);
	return 0;
}

int sftp_checkout_data(struct sftp_mount *sm, size_t size, struct sftp_conn *c)
{
	struct remote_checkout co;
	int ret;

	if (size > SFTP_PACK_MAX)
		return sftp_checkout(sm, -1, 0, c);
	ret = remote_slots_get_packed(&sm->pool.ss, SFTP_PACK_CALLS, &co);
	if (ret < 0)
		return ret;
	sftp_checked_out(sm, &co, c);
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

/* One (re)connect attempt for slot idx (reserved by the core). */
static void sftp_maint_connect_locked(struct sftp_mount *sm, int idx)
{
	struct sftp_pool *p = &sm->pool;
	struct sftp_sess *s = &p->sess[idx];
	struct vfs_error err;
	int rc;

	vfs_error_init(&err);
	pthread_mutex_unlock(&p->lock);
	rc = sftp_sess_open(sm, s, 0, &err);
	pthread_mutex_lock(&p->lock);
	remote_slots_maint_done_locked(&p->ss, idx, rc, s, err.msg);
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
