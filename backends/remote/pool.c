/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pool.c - the connection-pool core of the network backends: one state
 * machine, one reconnect count, one backoff policy, one retry rule
 * (pool.h has the meaning of each state).
 */
#include <errno.h>

#include "backends/callctx.h"

#include "backends/remote/pool.h"
#include "lib/log.h"

static const char *const remote_state_names[] = {
	[REMOTE_CONNECTED] = "connected",
	[REMOTE_RECONNECTING] = "reconnecting",
	[REMOTE_DOWN] = "down",
};

void remote_deadline_start(struct remote_deadline *d, long timeout_ms)
{
	long ms;

	d->budget_ms = vfs_call_budget_ms(timeout_ms);
	ms = d->budget_ms > 0 ? d->budget_ms : 0;
	clock_gettime(CLOCK_MONOTONIC, &d->at);
	d->at.tv_sec += ms / 1000;
	d->at.tv_nsec += (ms % 1000) * 1000000L;
	if (d->at.tv_nsec >= 1000000000L) {
		d->at.tv_sec++;
		d->at.tv_nsec -= 1000000000L;
	}
}

void remote_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
}

void remote_pool_init(struct remote_pool *rp, struct vfs_mount *vm,
		      const char *display, pthread_cond_t *cond,
		      struct remote_cache *cache, unsigned backoff_first_ms,
		      unsigned backoff_max_ms)
{
	rp->vm = vm;
	rp->display = display;
	rp->cond = cond;
	rp->cache = cache;
	rp->state = REMOTE_CONNECTED;
	rp->backoff_first_ms = backoff_first_ms;
	rp->backoff_max_ms = backoff_max_ms;
	rp->backoff_ms = 0;
}

const char *remote_state_name(enum remote_state s)
{
	return remote_state_names[s];
}

void remote_pool_set_state_locked(struct remote_pool *rp, enum remote_state s,
				  const char *why)
{
	if (rp->state == s)
		return;
	rp->state = s;
	if (s == REMOTE_CONNECTED) {
		/* whatever was cached before the outage may be out of date,
		 * and a fetch that started before it must not be stored
		 * either (a clear drops those puts too) */
		if (rp->cache)
			remote_cache_clear(rp->cache);
		log_info("%s: %s", rp->display, remote_state_names[s]);
	} else {
		log_warn("%s: %s%s%s", rp->display, remote_state_names[s],
			 why ? ": " : "", why ? why : "");
	}
	pthread_cond_broadcast(rp->cond);
}

void remote_pool_connected_locked(struct remote_pool *rp, bool again)
{
	if (again)
		__atomic_fetch_add(&rp->vm->reconnects, 1, __ATOMIC_RELAXED);
	rp->backoff_ms = 0;
	remote_pool_set_state_locked(rp, REMOTE_CONNECTED, NULL);
}

unsigned remote_backoff_next(unsigned *backoff_ms, unsigned first_ms,
			     unsigned max_ms)
{
	*backoff_ms = *backoff_ms ? *backoff_ms * 2 : first_ms;
	if (*backoff_ms > max_ms)
		*backoff_ms = max_ms;
	return *backoff_ms;
}

unsigned remote_pool_backoff_next_locked(struct remote_pool *rp)
{
	return remote_backoff_next(&rp->backoff_ms, rp->backoff_first_ms,
				   rp->backoff_max_ms);
}

unsigned remote_pool_backoff_hold_locked(struct remote_pool *rp)
{
	if (!rp->backoff_ms)
		rp->backoff_ms = rp->backoff_first_ms;
	return rp->backoff_ms;
}

void remote_pool_backoff_reset_locked(struct remote_pool *rp)
{
	rp->backoff_ms = 0;
}

void remote_pool_broken_locked(struct remote_pool *rp, bool timed_out,
			       const char *why)
{
	if (timed_out)
		remote_pool_set_state_locked(rp, REMOTE_DOWN, why);
	else if (rp->state == REMOTE_CONNECTED)
		remote_pool_set_state_locked(rp, REMOTE_RECONNECTING, why);
}

bool remote_retry_once(int ret, bool broke, int *tries)
{
	return ret < 0 && ret != -ETIMEDOUT && broke && (*tries)++ == 0;
}
