/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fair.c - fair sharing of a busy mount between its open files (fair.h).
 *
 * Each waiting request sleeps on a condition variable of its own (on its
 * stack), signalled when it is granted, so a grant wakes exactly the
 * thread it is for.
 */
#include <errno.h>
#include <string.h>

#include "lib/clock.h"
#include "vfsd/fair.h"

/* how long a flow counts as reading ahead after its last such request */
#define FAIR_AHEAD_NS (1000 * (int64_t)1000000)

struct fair_waiter {
	uint64_t bytes;
	bool ahead; /* came through fair_enter_ahead() */
	bool granted;
	pthread_cond_t cond;
	struct fair_waiter *next;
};

void fair_init(struct fair_sched *s, unsigned max_reqs, uint64_t max_bytes,
	       bool on)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->max_reqs = max_reqs;
	s->max_bytes = max_bytes;
	s->on = on && (max_reqs || max_bytes);
}

void fair_set_ahead(struct fair_sched *s, unsigned max)
{
	s->max_ahead = max;
}

void fair_destroy(struct fair_sched *s)
{
	pthread_mutex_destroy(&s->lock);
}

/* Whether a request of `bytes` fits the capacity now; one request place
 * stays free for a file with nothing in flight (`idle`: one of those),
 * and such a file's small request fits whatever the bytes in flight: a
 * reader queued behind a streamer's turn must not then wait out the
 * streamer's megabyte too. */
static bool fits(const struct fair_sched *s, uint64_t bytes, bool idle)
{
	unsigned limit =
		idle || s->max_reqs < 2 ? s->max_reqs : s->max_reqs - 1;

	if (s->max_reqs && s->reqs >= limit)
		return false;
	if (s->max_bytes && s->bytes + bytes > s->max_bytes && s->bytes &&
	    !(idle && bytes <= s->max_bytes / FAIR_SMALL_DIV))
		return false;
	return true;
}

static void admit(struct fair_sched *s, struct fair_flow *f, uint64_t bytes)
{
	if (f->in_ring && !f->in_flight)
		s->starved--;
	s->reqs++;
	s->bytes += bytes;
	f->in_flight++;
}

static void ring_add(struct fair_sched *s, struct fair_flow *f)
{
	if (!s->ring) {
		f->next = f->prev = f;
		s->ring = f;
	} else {
		f->next = s->ring;
		f->prev = s->ring->prev;
		s->ring->prev->next = f;
		s->ring->prev = f;
	}
	f->in_ring = true;
	f->deficit = 0;
	if (!f->in_flight)
		s->starved++;
}

static void ring_del(struct fair_sched *s, struct fair_flow *f)
{
	if (f->next == f)
		s->ring = NULL;
	else {
		f->prev->next = f->next;
		f->next->prev = f->prev;
		if (s->ring == f)
			s->ring = f->next;
	}
	if (!f->in_flight)
		s->starved--;
	f->in_ring = false;
	f->deficit = 0;
}

static void grant(struct fair_sched *s, struct fair_flow *f)
{
	struct fair_waiter *w = f->head;

	f->head = w->next;
	if (!f->head)
		f->tail = NULL;
	admit(s, f, w->bytes);
	w->granted = true;
	pthread_cond_signal(&w->cond);
}

/*
 * Grant what the capacity allows, deficit round robin (s->lock held).
 * The head flow's next request goes when its deficit covers it; else the
 * flow gets its quantum and the next flow its turn.  A file with nothing
 * in flight is served at its arrival (fair_enter), not here: a waiting
 * streamer whose last request just finished has none in flight either.
 * While a waiting file has none (s->starved), files that arrive idle wait
 * their turn too: two of them taking turns would otherwise keep the mount
 * at its capacity, and the waiting file would never go.
 */
static bool ahead_alone(const struct fair_sched *s, const struct fair_flow *f);

/* A waiting file other than the ring's head with nothing in flight whose
 * next request fits, or NULL (s->lock held). */
static struct fair_flow *idle_fitting(struct fair_sched *s)
{
	for (struct fair_flow *f = s->ring->next; f != s->ring; f = f->next)
		if (!f->in_flight && fits(s, f->head->bytes, true))
			return f;
	return NULL;
}

static void dispatch(struct fair_sched *s)
{
	while (s->ring) {
		struct fair_flow *f = s->ring;
		struct fair_waiter *w = f->head;

		if (!fits(s, w->bytes, !f->in_flight) &&
		    !(w->ahead && ahead_alone(s, f))) {
			/* The turn's file cannot go (a megabyte beside what
			 * is in flight): a file with nothing in flight behind
			 * it may, as it would have at its arrival, uncharged.
			 * Not past a file that has nothing in flight itself:
			 * small files passing it could keep the bytes from
			 * ever draining for its request. */
			struct fair_flow *g =
				f->in_flight ? idle_fitting(s) : NULL;

			if (!g)
				return;
			grant(s, g);
			if (!g->head)
				ring_del(s, g);
			continue;
		}
		if (f->deficit < w->bytes) {
			f->deficit += (uint64_t)FAIR_QUANTUM *
				      (f->weight ? f->weight : 100) / 100;
			s->ring = f->next;
			continue;
		}
		f->deficit -= w->bytes;
		grant(s, f);
		if (!f->head)
			ring_del(s, f);
	}
}

static bool enter(struct fair_sched *s, struct fair_flow *f, uint64_t bytes,
		  unsigned weight, bool ahead)
{
	struct fair_waiter w = {.bytes = bytes, .ahead = ahead};
	int64_t t0;

	if (!s->on)
		return false;
	pthread_mutex_lock(&s->lock);
	f->weight = weight;
	if ((!f->in_flight && !f->head && !s->starved) ||
	    (!s->ring && fits(s, bytes, false))) {
		admit(s, f, bytes);
		pthread_mutex_unlock(&s->lock);
		return true;
	}
	t0 = vfs_mono_ns();
	pthread_cond_init(&w.cond, NULL);
	if (f->tail)
		f->tail->next = &w;
	else
		f->head = &w;
	f->tail = &w;
	if (!f->in_ring)
		ring_add(s, f);
	dispatch(s);
	while (!w.granted)
		pthread_cond_wait(&w.cond, &s->lock);
	s->waited++;
	s->waited_ns += (uint64_t)(vfs_mono_ns() - t0);
	pthread_mutex_unlock(&s->lock);
	pthread_cond_destroy(&w.cond);
	return true;
}

/* f reads ahead alone on the mount with room for one more of its
 * requests (fair_enter_ahead; s->lock held). */
static bool ahead_alone(const struct fair_sched *s, const struct fair_flow *f)
{
	return (!s->ring || (s->ring == f && f->next == f)) &&
	       s->reqs == f->in_flight && f->in_flight < s->max_ahead &&
	       vfs_mono_ns() < f->ahead_until;
}

bool fair_enter_ahead(struct fair_sched *s, struct fair_flow *f, uint64_t bytes,
		      unsigned weight)
{
	if (!s->on)
		return false;
	pthread_mutex_lock(&s->lock);
	f->ahead_until = vfs_mono_ns() + FAIR_AHEAD_NS;
	if (!f->head && ahead_alone(s, f)) {
		f->weight = weight;
		admit(s, f, bytes);
		pthread_mutex_unlock(&s->lock);
		return true;
	}
	pthread_mutex_unlock(&s->lock);
	return enter(s, f, bytes, weight, true);
}

bool fair_enter(struct fair_sched *s, struct fair_flow *f, uint64_t bytes,
		unsigned weight)
{
	return enter(s, f, bytes, weight, false);
}

void fair_exit(struct fair_sched *s, struct fair_flow *f, uint64_t bytes)
{
	pthread_mutex_lock(&s->lock);
	s->reqs--;
	s->bytes -= bytes;
	if (!--f->in_flight && f->in_ring)
		s->starved++;
	dispatch(s);
	pthread_mutex_unlock(&s->lock);
}

void fair_snapshot(struct fair_sched *s, struct fair_view *v)
{
	pthread_mutex_lock(&s->lock);
	*v = (struct fair_view){
		.on = s->on,
		.max_reqs = s->max_reqs,
		.reqs = s->reqs,
		.max_bytes = s->max_bytes,
		.bytes = s->bytes,
		.waited = s->waited,
		.waited_ms = s->waited_ns / 1000000,
	};
	pthread_mutex_unlock(&s->lock);
}
