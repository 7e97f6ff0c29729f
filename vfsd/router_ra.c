/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router_ra.c - read-ahead for the page-cache reads of network mounts.
 *
 * The kernel's own FUSE read-ahead keeps about read_ahead_kb (1 MiB, see
 * tune_bdi in main.c) of a sequential reader's file in flight: one or two
 * requests, each a round trip to the server.  On a network with latency
 * the reader waits about a round trip per megabyte.  Here a file that is
 * read sequentially gets a window of segments read ahead of its reader by
 * worker threads, through the mount's pool and its timeouts as any read,
 * and the kernel's next reads are answered from the segments.  The FUSE
 * layer replies from the segment's buffer itself (router_ra_read hands out
 * pinned pieces), so each byte is copied exactly as often as without
 * read-ahead.
 *
 * The window: nothing until two reads in a row continued the one before
 * them; then two segments, doubling at each sequential read up to
 * ra_window_max() and to twice the bytes read since the streak began; a
 * read elsewhere (a seek) empties it and drops what it held.  Nothing is
 * queued past the size the kernel knows (router_ra_size).  A segment
 * refused as too old (a mapping's reader asks no attributes) halves the
 * window for good.  The kernel's requests come on several threads, and with
 * POSIX_FADV_SEQUENTIAL it keeps twice its window in flight: while a
 * window is open, a read up to RA_LAG behind or ahead of the furthest one
 * is no seek.  A segment answered whole is freed at once; one no
 * sequential read can reach any more (RA_LAG) is dropped, unless a read
 * waits for it, and if reads asked for less than half of it, the reader
 * skips: that closes the window as a seek does.  A read
 * that finds its segment still queued reads that segment itself: the
 * server sends each byte once.
 *
 * Read-ahead data is served only while it is what a read would get:
 *  - the FUSE layer calls router_ra_drop() on every open of a node after
 *    a change through vfsd (a write, truncation, fallocate, a copy into
 *    it: whether it succeeded or not), a lock taken on it (another host
 *    may have written it before letting go of theirs), an open that found
 *    it changed, and an attribute request that found its size or times
 *    changed: the kernel asks for those before each read of an open file
 *    on a shared mount and drops its own pages then (auto_inval_data), so
 *    what was read ahead goes with them;
 *  - only whole answers: a request reaching past what a segment holds
 *    (the end of the file when it was read) is read from the server, so
 *    that the end of a file that grew since is never answered from here;
 *  - never for files with an I/O limit: a segment's read does not wait
 *    for limits (it fails instead), and the limit would count data that
 *    may never be read.
 * Reads with O_DIRECT and direct_io opens never come here (QEMU's
 * cache=none images read nothing ahead).
 *
 * Memory: a mount's segments hold at most its backend's readahead_bytes,
 * counted from when a segment is queued until it is freed; when it is
 * spent, files of the mount nobody read for RA_IDLE_NS give theirs up.
 * Threads: one pool of RA_WORKERS for all mounts, at most
 * RA_MOUNT_READERS of them on one mount at a time, so that a stalled
 * server holds no more.  A segment's read holds a reference on its
 * file: a close does not wait for it (a paused server would hold the
 * closer's thread), and the backend's release of the file follows when
 * the last read ends.  At exit, router_ra_quiesce() waits for every
 * worker to be done with its file.
 *
 * Locks: the node table's (the FUSE layer's drops), then a file's
 * ra->lock, then ra_list_lock, then other files' ra->lock only with
 * trylock (ra_reclaim), then q_lock.  A segment's state goes from QUEUED
 * to READING under q_lock (by the worker that takes it, or by a read
 * that takes it with ra->lock held too: seg_take), every other change
 * under ra->lock; it is atomic so that both may read it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "vfsd/router_internal.h"

#define RA_SEG           ((size_t)1 << 20) /* bytes per read-ahead READ */
#define RA_WORKERS       16
#define RA_MOUNT_READERS 3
/* a read that ends this close before where the furthest one ended, or
 * starts right there, is sequential: the kernel's readahead requests
 * reach our threads slightly out of order */
#define RA_SLACK         ((off_t)2 << 20)
/* once a window is open, the kernel may have two of its own windows in
 * flight (2 x read_ahead_kb each with POSIX_FADV_SEQUENTIAL, see
 * tune_bdi): a request may reach us this far behind the furthest one, or
 * as far ahead of those before it */
#define RA_LAG           ((off_t)4 << 20)
#define RA_WIN_MAX       ((size_t)32 << 20)
#define RA_IDLE_NS       (2 * (int64_t)1000000000)
/* a mount whose budget is spent looks for idle files this often at most */
#define RA_RECLAIM_NS    (100 * (int64_t)1000000)

enum ra_state { RA_QUEUED, RA_READING, RA_READY, RA_FAILED };

struct ra_seg {
	struct ra_seg *next;  /* in its file's list, by offset */
	struct ra_seg *qnext; /* in the work queue */
	struct router_ra *ra;
	off_t off;
	size_t len; /* asked */
	size_t got; /* READY: read, < len at the end of the file */
	atomic_int state;
	unsigned pins; /* replies sent from buf now */
	bool unlinked; /* dropped: freed when neither read nor pinned */
	bool served;   /* some of it answered a read */
	size_t used;   /* bytes of it answered, overlaps counted twice */
	size_t asked;  /* bytes of it sequential reads asked for, answered
			* from it or not, overlaps counted twice */
	int64_t sent;  /* vfs_mono_ns() when its read began */
	size_t win;    /* its file's window when it was queued */
	char *buf;     /* READY: got bytes, owned */
};

struct router_ra {
	pthread_mutex_t lock;
	pthread_cond_t cond;   /* a segment was read */
	struct router_file *f; /* not a reference: ra lives in f */
	struct ra_seg *segs;
	unsigned nsegs;
	off_t next; /* just past the furthest read so far */
	bool seen;  /* a read came */
	unsigned streak;
	uint64_t streak_bytes; /* sequential reads asked for, in the streak */
	size_t window;
	/* the window no longer grows past this (0: no bound): a segment
	 * went stale before its reader came to it */
	size_t ceiling;
	int64_t resumed; /* vfs_mono_ns() when a read ended a long pause */
	off_t end;       /* where the segments ahead end */
	off_t eof;       /* where a segment found the end of the file; -1 */
	unsigned jobs;   /* segments queued or being read */
	int64_t last;    /* vfs_mono_ns() of its last read */
	/* when the file's size and times were last found unchanged
	 * (router_ra_checked) */
	_Atomic int64_t checked;
	struct router_ra *lnext, **lpprev; /* in ra_list */
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct ra_seg *q_head, **q_tail = &q_head;
static unsigned q_threads, q_idle;
static unsigned q_busy; /* workers with a segment, until its release */
static pthread_cond_t q_done = PTHREAD_COND_INITIALIZER;

static pthread_mutex_t ra_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct router_ra *ra_list;
/* files whose read-ahead holds segments now */
static atomic_uint ra_busy;

static void *ra_worker(void *arg);

/*
 * Whether an idle worker should be woken for a queued segment that can be
 * taken now (its mount has fewer than RA_MOUNT_READERS being read): after
 * a segment is queued, after a worker took one (a second signal may have
 * found no other waiter), when a reader ends a segment's read, and before
 * a worker goes into the backend's release of a file whose last
 * reference was its segment's.  q_unlock_wake() signals once q_lock is dropped,
 * so that the woken worker does not wait for the lock.  One worker, not all: a
 * queued segment or an ended read lets one more be taken, and a woken worker
 * that finds nothing to take means no other worker could either.  Waking
 * them all cost each 1 MiB segment about a dozen context switches, most
 * of a sequential reader's CPU in vfsd.  A wake-up lost all the same (a
 * worker busy elsewhere, or glibc's condition variable) only delays the
 * segment: a returning worker takes it, or its reader reads it itself
 * (seg_take).  q_lock held.
 */
static bool q_should_wake(void)
{
	if (!q_idle)
		return false;
	for (struct ra_seg *s = q_head; s; s = s->qnext)
		if (s->ra->f->mount->ra_reading < RA_MOUNT_READERS)
			return true;
	return false;
}

/* Drop q_lock; then, if may_wake and q_should_wake() said so under it,
 * wake one idle worker. */
static void q_unlock_wake(bool may_wake)
{
	bool wake = may_wake && q_should_wake();

	pthread_mutex_unlock(&q_lock);
	if (wake)
		pthread_cond_signal(&q_cond);
}

/*
 * Segment buffers, kept for the next segment: a fresh 1 MiB from malloc
 * is a fresh mapping whose 256 pages fault in as the reply lands, which
 * cost a sequential reader a tenth of its pace on loopback.  At most
 * RA_POOL are kept.
 */
#define RA_POOL 8
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static char *pool[RA_POOL];
static unsigned pool_n;

static char *buf_get(void)
{
	char *b = NULL;

	pthread_mutex_lock(&pool_lock);
	if (pool_n)
		b = pool[--pool_n];
	pthread_mutex_unlock(&pool_lock);
	return b ? b : malloc(RA_SEG);
}

static void buf_put(char *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&pool_lock);
	if (pool_n < RA_POOL) {
		pool[pool_n++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	free(b);
}

static enum ra_state seg_state(const struct ra_seg *s)
{
	return (enum ra_state)atomic_load(&s->state);
}

/* Free a segment nobody reads or pins any more, with what it counted. */
static void seg_free(struct router_ra *ra, struct ra_seg *s)
{
	struct router_mount *m = ra->f->mount;

	if (!s->served && seg_state(s) == RA_READY)
		atomic_fetch_add_explicit(&m->stats.ra_dropped, s->got,
					  memory_order_relaxed);
	atomic_fetch_sub_explicit(&m->ra_held, s->len, memory_order_relaxed);
	buf_put(s->buf);
	free(s);
}

/* Take queued segment s out of the work queue (q_lock held). */
static void q_remove(struct ra_seg *s)
{
	struct ra_seg **qp = &q_head;

	while (*qp != s)
		qp = &(*qp)->qnext;
	*qp = s->qnext;
	if (q_tail == &s->qnext)
		q_tail = qp;
}

/* Take s out of ra's list (ra->lock held): freed now, or by whoever still
 * reads or pins it. */
static void seg_unlink(struct router_ra *ra, struct ra_seg *s)
{
	struct ra_seg **pp = &ra->segs;

	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	s->unlinked = true;
	if (!--ra->nsegs)
		atomic_fetch_sub(&ra_busy, 1);
	if (seg_state(s) == RA_QUEUED) {
		bool queued = false;

		pthread_mutex_lock(&q_lock);
		if (seg_state(s) == RA_QUEUED) {
			q_remove(s);
			queued = true;
		}
		pthread_mutex_unlock(&q_lock);
		if (queued) {
			/* the job's reference: never f's last, whoever drops
			 * holds one (a release drops before its own) */
			ra->jobs--;
			__atomic_sub_fetch(&ra->f->refs, 1, __ATOMIC_ACQ_REL);
			seg_free(ra, s);
			pthread_cond_broadcast(&ra->cond);
		}
		return;
	}
	if (seg_state(s) != RA_READING && !s->pins)
		seg_free(ra, s);
}

static void drop_all(struct router_ra *ra)
{
	while (ra->segs)
		seg_unlink(ra, ra->segs);
	ra->seen = false;
	ra->window = 0;
	ra->streak = 0;
	ra->streak_bytes = 0;
	ra->ceiling = 0;
	ra->end = 0;
	ra->eof = -1;
}

static size_t ra_window_max(uint64_t budget)
{
	size_t w = budget / 2 < RA_WIN_MAX ? (size_t)(budget / 2) : RA_WIN_MAX;

	return w < 2 * RA_SEG ? 2 * RA_SEG : w;
}

static struct router_ra *ra_get(struct router_file *f)
{
	struct router_ra *ra = atomic_load(&f->ra), *none = NULL;

	if (ra)
		return ra;
	ra = calloc(1, sizeof(*ra));
	if (!ra)
		return NULL;
	pthread_mutex_init(&ra->lock, NULL);
	pthread_cond_init(&ra->cond, NULL);
	ra->f = f;
	ra->eof = -1;
	if (!atomic_compare_exchange_strong(&f->ra, &none, ra)) {
		pthread_mutex_destroy(&ra->lock);
		pthread_cond_destroy(&ra->cond);
		free(ra);
		return none;
	}
	pthread_mutex_lock(&ra_list_lock);
	ra->lnext = ra_list;
	if (ra_list)
		ra_list->lpprev = &ra->lnext;
	ra->lpprev = &ra_list;
	ra_list = ra;
	pthread_mutex_unlock(&ra_list_lock);
	return ra;
}

/*
 * The mount's budget is spent: files of it that nobody read for
 * RA_IDLE_NS (left open, read no further) give up what they hold.  Called
 * with self->lock held, so other files' locks are only tried.
 */
static void ra_reclaim(struct router_ra *self, int64_t now)
{
	struct router_mount *m = self->f->mount;
	int64_t last = atomic_load(&m->ra_reclaimed);

	if (now - last < RA_RECLAIM_NS ||
	    !atomic_compare_exchange_strong(&m->ra_reclaimed, &last, now))
		return;
	pthread_mutex_lock(&ra_list_lock);
	for (struct router_ra *o = ra_list; o; o = o->lnext) {
		if (o == self || o->f->mount != m ||
		    pthread_mutex_trylock(&o->lock) != 0)
			continue;
		if (o->segs && now - o->last > RA_IDLE_NS)
			drop_all(o);
		pthread_mutex_unlock(&o->lock);
	}
	pthread_mutex_unlock(&ra_list_lock);
}

static bool budget_take(struct router_mount *m, uint64_t budget)
{
	uint64_t held = atomic_load_explicit(&m->ra_held, memory_order_relaxed);

	do {
		if (held + RA_SEG > budget)
			return false;
	} while (!atomic_compare_exchange_weak(&m->ra_held, &held,
					       held + RA_SEG));
	return true;
}

static void worker_start(void)
{
	pthread_t t;
	pthread_attr_t at;

	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, ra_worker, NULL) != 0) {
		/* the queued segment waits for a running worker, or is
		 * dropped with its file's window */
		pthread_mutex_lock(&q_lock);
		q_threads--;
		pthread_mutex_unlock(&q_lock);
		log_warn("read-ahead: no worker thread");
	}
	pthread_attr_destroy(&at);
}

/* Queue the read of [off, off + RA_SEG) (ra->lock held); false when the
 * mount's budget is spent or there is no memory. */
static bool seg_queue(struct router_ra *ra, off_t off, uint64_t budget,
		      int64_t now)
{
	struct router_mount *m = ra->f->mount;
	struct ra_seg *s, **pp;
	bool start = false;

	if (!budget_take(m, budget)) {
		ra_reclaim(ra, now);
		if (!budget_take(m, budget))
			return false;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		atomic_fetch_sub(&m->ra_held, RA_SEG);
		return false;
	}
	s->ra = ra;
	s->off = off;
	s->len = RA_SEG;
	s->win = ra->window;
	atomic_init(&s->state, RA_QUEUED);
	for (pp = &ra->segs; *pp && (*pp)->off < off; pp = &(*pp)->next)
		;
	s->next = *pp;
	*pp = s;
	if (!ra->nsegs++)
		atomic_fetch_add(&ra_busy, 1);
	ra->jobs++;
	router_file_get(ra->f); /* the job's */
	pthread_mutex_lock(&q_lock);
	*q_tail = s;
	q_tail = &s->qnext;
	if (!q_idle && q_threads < RA_WORKERS) {
		start = true;
		q_threads++;
	}
	q_unlock_wake(true);
	if (start)
		worker_start();
	return true;
}

/* Out of the queue, for this thread to read (q_lock held). */
static void seg_begin(struct ra_seg *s)
{
	s->ra->f->mount->ra_reading++;
	q_busy++;
	s->sent = vfs_mono_ns();
	atomic_store(&s->state, RA_READING);
}

/* The first queued segment whose mount has fewer than RA_MOUNT_READERS
 * being read, out of the queue (q_lock held); NULL: none. */
static struct ra_seg *q_take(void)
{
	for (struct ra_seg **qp = &q_head; *qp; qp = &(*qp)->qnext) {
		struct ra_seg *s = *qp;
		struct router_mount *m = s->ra->f->mount;

		if (m->ra_reading >= RA_MOUNT_READERS)
			continue;
		*qp = s->qnext;
		if (q_tail == &s->qnext)
			q_tail = qp;
		seg_begin(s);
		return s;
	}
	return NULL;
}

/* Read segment s, which seg_begin() gave this thread, and end its job;
 * worker: this thread is a worker, which looks for the next queued
 * segment right after. */
static void seg_read(struct ra_seg *s, bool worker)
{
	struct router_ra *ra = s->ra;
	struct router_file *f = ra->f;
	struct router_mount *m = f->mount;
	char *buf = buf_get();
	ssize_t n = buf ? rt_read_ahead(f, buf, s->len, s->off) : -ENOMEM;

	/* a worker wakes nobody for the mount's next segment here: it
	 * takes it itself in a moment (ra_worker), unless the backend's
	 * release of a closed file holds it up (below) */
	pthread_mutex_lock(&q_lock);
	m->ra_reading--;
	q_unlock_wake(!worker);

	pthread_mutex_lock(&ra->lock);
	s->buf = buf;
	ra->jobs--;
	if (n >= 0) {
		s->got = (size_t)n;
		atomic_store(&s->state, RA_READY);
		atomic_fetch_add_explicit(&m->stats.ra_read, (uint64_t)n,
					  memory_order_relaxed);
		if ((size_t)n < s->len && !s->unlinked &&
		    (ra->eof < 0 || s->off + n < ra->eof))
			ra->eof = s->off + n;
	} else {
		atomic_store(&s->state, RA_FAILED);
	}
	if (s->unlinked && !s->pins)
		seg_free(ra, s);
	pthread_mutex_unlock(&ra->lock);
	/* after the unlock, so that a woken reader does not wait for the
	 * lock; ra lives in f, which the job's reference keeps */
	pthread_cond_broadcast(&ra->cond);
	if (rt_file_put(f)) { /* the job's reference was the last */
		if (worker) {
			pthread_mutex_lock(&q_lock);
			q_unlock_wake(true);
		}
		rt_file_free(f); /* the backend's release */
	}
	pthread_mutex_lock(&q_lock);
	if (!--q_busy)
		pthread_cond_broadcast(&q_done);
	pthread_mutex_unlock(&q_lock);
}

static void *ra_worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct ra_seg *s;

		pthread_mutex_lock(&q_lock);
		q_idle++;
		while (!(s = q_take()))
			pthread_cond_wait(&q_cond, &q_lock);
		q_idle--;
		/* another segment may be takeable too */
		q_unlock_wake(true);
		seg_read(s, true);
	}
	return NULL;
}

/*
 * A read reached segment s while it waits in the queue (every worker the
 * mount may have is busy): its reader takes it and reads it itself, so
 * that the server sends those bytes once, not to the reader now and to
 * a worker later.  ra->lock held; false if a worker took it meanwhile.
 */
static bool seg_take(struct ra_seg *s)
{
	bool taken = false;

	pthread_mutex_lock(&q_lock);
	if (seg_state(s) == RA_QUEUED) {
		q_remove(s);
		seg_begin(s);
		taken = true;
	}
	pthread_mutex_unlock(&q_lock);
	return taken;
}

/* A sequential read asked for [off, off + size): note it in the segments
 * it overlaps (ra->lock held). */
static void ra_asked(struct router_ra *ra, size_t size, off_t off)
{
	off_t end = off + (off_t)size;

	for (struct ra_seg *s = ra->segs; s && s->off < end; s = s->next) {
		off_t from = s->off > off ? s->off : off;
		off_t to = s->off + (off_t)s->len < end ? s->off + (off_t)s->len
							: end;

		if (from < to)
			s->asked += (size_t)(to - from);
	}
}

/*
 * Drop the segments that end at `behind` or before it, but those a read
 * waits for (ra->lock held).  True if reads asked for less than half of
 * one of them: the reader skips, and the window must close, or a reader
 * that jumps a little ahead at every read would keep it open and have
 * most of the file read for the little it reads.  A sequential reader's
 * requests, however out of order, have each come by then (answered from
 * the segment or not: one refused as too old, or failed, still counts as
 * asked).  A reader that keeps its window is sent at most twice what it
 * asks for.
 */
static bool ra_behind(struct router_ra *ra, off_t behind)
{
	struct ra_seg *s = ra->segs, *next;
	bool skipped = false;

	for (; s && s->off + (off_t)s->len <= behind; s = next) {
		next = s->next;
		if (s->pins)
			continue;
		if (2 * s->asked < (seg_state(s) == RA_READY ? s->got : s->len))
			skipped = true;
		seg_unlink(ra, s);
	}
	return skipped;
}

/*
 * Drop the segments from `from` on if none of them is being read or
 * read yet, and queue from there again (ra->lock held): the window
 * shrank.
 */
static void ra_trim(struct router_ra *ra, off_t from)
{
	struct ra_seg *s = ra->segs, *first;

	while (s && s->off < from)
		s = s->next;
	first = s;
	for (; s; s = s->next)
		if (seg_state(s) != RA_QUEUED || s->pins)
			return;
	if (!first)
		return;
	ra->end = first->off;
	while (first) {
		s = first->next;
		seg_unlink(ra, first);
		first = s;
	}
}

/*
 * Answer [off, off + size) from the segments if they hold all of it
 * (ra->lock held).  A segment being read is waited for (pinned, so that a
 * drop meanwhile cannot free it); one still queued is read by the caller
 * (seg_take).  *stale: a segment that held the bytes but was refused as
 * too old; else left alone.
 */
static bool ra_hit(struct router_ra *ra, size_t size, off_t off, int64_t ttl_ns,
		   struct router_ra_hit *hit, const struct ra_seg **stale)
{
	off_t pos = off, end = off + (off_t)size;
	struct ra_seg *s = ra->segs;
	bool whole;

	hit->iovcnt = 0;
	hit->len = 0;
	while (s && s->off + (off_t)s->len <= off)
		s = s->next;
	while (pos < end && s && s->off <= pos && hit->iovcnt < ROUTER_RA_IOV) {
		size_t take;
		bool own = false;

		s->pins++;
		hit->seg[hit->iovcnt++] = s;
		if (seg_state(s) == RA_QUEUED && seg_take(s)) {
			pthread_mutex_unlock(&ra->lock);
			seg_read(s, false);
			pthread_mutex_lock(&ra->lock);
			/* read for this request: as fresh as its own */
			own = true;
		}
		while (seg_state(s) == RA_READING)
			pthread_cond_wait(&ra->cond, &ra->lock);
		/* what a segment holds up to the end of the file when it
		 * was read: a request past that goes to the server; and
		 * once older than the attribute timeout, only if the file
		 * was found unchanged since its read began */
		if (s->unlinked || seg_state(s) != RA_READY ||
		    s->off + (off_t)s->got <= pos)
			break;
		if (!own && vfs_mono_ns() - s->sent >= ttl_ns &&
		    atomic_load(&ra->checked) <= s->sent) {
			*stale = s;
			break;
		}
		take = (size_t)(s->off + (off_t)s->got - pos);
		if (take > (size_t)(end - pos))
			take = (size_t)(end - pos);
		hit->iov[hit->iovcnt - 1].iov_base = s->buf + (pos - s->off);
		hit->iov[hit->iovcnt - 1].iov_len = take;
		hit->len += take;
		pos += (off_t)take;
		if (s->got < s->len)
			break;
		s = s->next;
	}
	whole = pos == end;
	/* a drop while we waited for a later segment took the earlier
	 * ones too: what they hold may predate a change */
	for (int i = 0; whole && i < hit->iovcnt; i++)
		whole = !hit->seg[i]->unlinked;
	if (whole) {
		for (int i = 0; i < hit->iovcnt; i++) {
			hit->seg[i]->served = true;
			hit->seg[i]->used += hit->iov[i].iov_len;
		}
		return true;
	}
	for (int i = 0; i < hit->iovcnt; i++) {
		s = hit->seg[i];
		if (!--s->pins && s->unlinked && seg_state(s) != RA_READING)
			seg_free(ra, s);
	}
	hit->iovcnt = 0;
	hit->len = 0;
	return false;
}

int router_ra_read(struct router_file *f, size_t size, off_t off,
		   struct router_ra_hit *hit)
{
	struct router_mount *m = f->mount;
	uint64_t budget = rt_bottom(m)->readahead_bytes;
	struct router_ra *ra = atomic_load(&f->ra);
	int64_t now, fsize;
	off_t lag, ahead;
	bool seq, found;
	const struct ra_seg *stale = NULL;
	size_t cap;
	int64_t ttl_ns = (int64_t)(m->vm->attr_timeout * 1e9);

	hit->f = f;
	hit->iovcnt = 0;
	/* (offsets near the largest off_t would overflow the window's) */
	if (!size || !budget || off < 0 || off > INT64_MAX / 4 ||
	    size > INT64_MAX / 4 || f->vf->uncached ||
	    atomic_load(&m->revoked)) {
		if (ra)
			router_ra_drop(f);
		return 0;
	}
	if (!ra && !(ra = ra_get(f)))
		return 0;
	now = vfs_mono_ns();
	pthread_mutex_lock(&ra->lock);
	if (ra->last && now - ra->last >= ttl_ns)
		ra->resumed = now; /* after a pause as long as segments last */
	ra->last = now;
	/* a random reader has no window: only while one is open do reads
	 * that far out of order count as the stream's */
	lag = ra->window ? RA_LAG : RA_SLACK;
	ahead = ra->window && RA_LAG > (off_t)size ? RA_LAG : (off_t)size;
	seq = ra->seen && off + (off_t)size + lag >= ra->next &&
	      off <= ra->next + ahead;
	if (seq)
		ra_asked(ra, size, off);
	if (seq && off + (off_t)size > ra->next) {
		off_t span = (off_t)(size > RA_SEG ? size : RA_SEG);

		ra->next = off + (off_t)size;
		/* a read that still counts as sequential begins no
		 * earlier */
		seq = !ra_behind(ra, ra->next - RA_LAG - span);
	}
	/* a limit would count data read ahead that may never be read */
	if (!seq || qos_file_limited(f->qos)) {
		drop_all(ra);
		ra->seen = true;
		ra->streak = 1;
		ra->streak_bytes = size;
		ra->next = off + (off_t)size;
		pthread_mutex_unlock(&ra->lock);
		return 0;
	}
	ra->streak_bytes += size;
	/* two reads in a row continued the one before: a sequential
	 * reader, not a random one that happened to land close by */
	if (++ra->streak < 3) {
		pthread_mutex_unlock(&ra->lock);
		return 0;
	}
	/* doubling, within the budget's share, twice what the reader took
	 * (not its number of requests: a reader of a little in small
	 * requests, `head` or a file's header, is sent little ahead) and
	 * the ceiling; never under two segments */
	cap = ra->streak_bytes < RA_WIN_MAX
		      ? (2 * (size_t)ra->streak_bytes) & ~(RA_SEG - 1)
		      : 2 * RA_WIN_MAX;
	if (cap > ra_window_max(budget))
		cap = ra_window_max(budget);
	if (ra->ceiling && cap > ra->ceiling)
		cap = ra->ceiling;
	ra->window = ra->window ? 2 * ra->window : 2 * RA_SEG;
	if (ra->window > cap)
		ra->window = cap > 2 * RA_SEG ? cap : 2 * RA_SEG;
	found = ra_hit(ra, size, off, ttl_ns, hit, &stale);
	/* a reader that asks no attributes (a mapping's faults) and takes
	 * longer than the attribute timeout to come to a segment has it
	 * refused, and the bytes read twice: from now on the window reaches
	 * half as far ahead as when that segment was queued, down to two
	 * segments (those queued before a bound was set count once), and
	 * what lies queued beyond goes.  Not if the reader paused that long
	 * since the segment's read: that says nothing of its pace (the
	 * segment is read again, as before).  (stale is still linked, so
	 * alive, while ra->lock is held.) */
	if (stale && stale->sent > ra->resumed &&
	    (!ra->ceiling || stale->win <= ra->ceiling)) {
		ra->ceiling = stale->win / 2 > 2 * RA_SEG ? stale->win / 2
							  : 2 * RA_SEG;
		if (ra->window > ra->ceiling)
			ra->window = ra->ceiling;
		ra_trim(ra, ra->next + (off_t)ra->window);
	}
	/* the window ahead of the furthest read: queue what it lacks, up
	 * to the size the kernel knows (it reads no further; a read past it
	 * says it learnt a larger one: then only a short segment tells) */
	fsize = atomic_load(&f->ra_size);
	if (fsize >= 0 && off >= fsize) {
		/* (its reads end on a page: only one that begins past the
		 * size says it knows a larger one) */
		atomic_compare_exchange_strong(&f->ra_size, &fsize, -1);
		fsize = -1;
	}
	if (ra->end < ra->next)
		ra->end = ra->next;
	while (ra->end < ra->next + (off_t)ra->window &&
	       (ra->eof < 0 || ra->end < ra->eof) &&
	       (fsize < 0 || ra->end < fsize) &&
	       seg_queue(ra, ra->end, budget, now))
		ra->end += (off_t)RA_SEG;
	pthread_mutex_unlock(&ra->lock);
	if (!found)
		return 0;
	router_file_get(f); /* the kernel may release f once replied */
	atomic_fetch_add_explicit(&m->stats.ra_served, hit->len,
				  memory_order_relaxed);
	return 1;
}

void router_ra_done(struct router_ra_hit *hit)
{
	struct router_file *f = hit->f;
	struct router_ra *ra = atomic_load(&f->ra);

	pthread_mutex_lock(&ra->lock);
	for (int i = 0; i < hit->iovcnt; i++) {
		struct ra_seg *s = hit->seg[i];

		if (--s->pins)
			continue;
		if (s->unlinked)
			seg_free(ra, s);
		else if (s->used >= s->got)
			/* all of it answered: the kernel has it now */
			seg_unlink(ra, s);
	}
	pthread_mutex_unlock(&ra->lock);
	hit->iovcnt = 0;
	router_release(f);
}

void router_ra_drop(struct router_file *f)
{
	struct router_ra *ra = atomic_load(&f->ra);

	if (!ra)
		return;
	pthread_mutex_lock(&ra->lock);
	drop_all(ra);
	pthread_mutex_unlock(&ra->lock);
}

void router_ra_quiesce(void)
{
	pthread_mutex_lock(&q_lock);
	while (q_head || q_busy)
		pthread_cond_wait(&q_done, &q_lock);
	pthread_mutex_unlock(&q_lock);
}

bool rt_ra_open(struct router_file *f)
{
	struct router_ra *ra = atomic_load(&f->ra);

	/* a racy look: only which admission a read asks for */
	return ra && __atomic_load_n(&ra->window, __ATOMIC_RELAXED);
}

void router_ra_checked(struct router_file *f, int64_t when)
{
	struct router_ra *ra = atomic_load(&f->ra);
	int64_t was;

	if (!ra)
		return;
	was = atomic_load(&ra->checked);
	while (was < when &&
	       !atomic_compare_exchange_weak(&ra->checked, &was, when))
		;
}

void router_ra_size(struct router_file *f, off_t size)
{
	atomic_store(&f->ra_size, (int64_t)size);
}

bool router_ra_active(void)
{
	return atomic_load(&ra_busy) != 0;
}

void rt_ra_free(struct router_file *f)
{
	struct router_ra *ra = atomic_load(&f->ra);

	if (!ra)
		return;
	pthread_mutex_lock(&ra_list_lock);
	*ra->lpprev = ra->lnext;
	if (ra->lnext)
		ra->lnext->lpprev = ra->lpprev;
	pthread_mutex_unlock(&ra_list_lock);
	/* no job is left (each held a reference on f) and no hit (each
	 * holds one too): only idle segments */
	pthread_mutex_lock(&ra->lock);
	drop_all(ra);
	pthread_mutex_unlock(&ra->lock);
	pthread_mutex_destroy(&ra->lock);
	pthread_cond_destroy(&ra->cond);
	free(ra);
}
