/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chan.c - the SFTP engine (chan.h): one channel, one loop thread, any
 * number of requests in flight.
 *
 * One thread at a time drives the channel: calls libssh2 on it, and
 * completes requests.  Each turn it takes new submissions and abandoned
 * requests in (under the lock), writes what it can (dropping, unsent,
 * what is past its send-by time: chan.h), reads what has come,
 * and sleeps in poll() on the socket (in the directions libssh2 says it
 * waits for) and an eventfd that submitters and failing callers write to.
 *
 * The driver is the loop thread while the channel is busy.  A caller
 * that finds it idle, with no other caller waiting, drives the channel
 * itself until its own request completes: a lone metadata call then
 * costs no hand-off to the loop and back (two thread wake-ups, the larger
 * part of a round trip on loopback).  The loop takes over whatever that
 * caller leaves that no one will come back for: replies other threads
 * wait for, asynchronous requests, abandoned ones.  Idle, the loop drives
 * nothing, and wakes every SFTP_CHAN_IDLE_MS to read what the server sent
 * on its own.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backends/sftp/chan.h"
#include "backends/remote/pool.h"
#include "lib/clock.h"
#include "lib/log.h"

/* Requests on the wire at once; more wait in the submission queue. */
#define SFTP_CHAN_WINDOW     128
/* Small requests are gathered into one channel write of up to this. */
#define SFTP_CHAN_STAGE      (64u * 1024)
/* ... but a single request's packet of any size fits in the stage */
#define SFTP_CHAN_STAGE_CAP  (SFTP_MAX_PACKET + 64)
/* Replies are read from libssh2 this much at a time, and parsed from
 * there: libssh2 1.10 drains the socket to EAGAIN on every
 * libssh2_channel_read(), so a read per header and per body cost a few
 * recv() calls per reply. */
#define SFTP_CHAN_RXBUF      (64u * 1024)
/* ... except a DATA body with at least this much still to come, read
 * straight into its caller's buffer (no copy through ours) */
#define SFTP_CHAN_RXDIRECT   (16u * 1024)
/* What we let the server send before it waits for our window adjust:
 * many READ replies of up to 256 KiB are in flight at once. */
#define SFTP_CHAN_RXWINDOW   (8u * 1024 * 1024)
#define SFTP_CHAN_BUCKETS    256
/* Without limits@openssh.com: what every server takes (OpenSSH's own
 * client's defaults before it asked). */
#define SFTP_CHAN_SAFE_READ  (32u * 1024)
#define SFTP_CHAN_SAFE_WRITE (32u * 1024)
/* An idle loop reads the socket at least this often: what the server
 * sends unasked (its keepalive requests, a channel close) waits no
 * longer, well within OpenSSH's ClientAliveInterval at its smallest
 * useful settings. */
#define SFTP_CHAN_IDLE_MS    2000

/* Who drives the channel (calls libssh2, owns the loop-owned state). */
enum sftp_driver { SFTP_DRV_NONE, SFTP_DRV_LOOP, SFTP_DRV_CALLER };

/* A thread's wake-up; one per thread, shared by its requests. */
struct sftp_waiter {
	pthread_cond_t cond;
};

static __thread struct sftp_waiter sftp_tls_waiter;
static __thread bool sftp_tls_waiter_ready;

static struct sftp_waiter *sftp_waiter_self(void)
{
	if (!sftp_tls_waiter_ready) {
		remote_cond_init(&sftp_tls_waiter.cond);
		sftp_tls_waiter_ready = true;
	}
	return &sftp_tls_waiter;
}

/* The reply being read: its header, then its body or data. */
struct sftp_rx {
	uint8_t hdr[13]; /* length, type, id, and a DATA's length */
	size_t hdr_got, hdr_want;
	uint32_t len; /* the packet's length field */
	struct sftp_req *r;
	uint8_t *dst; /* where the rest goes */
	size_t got, want;
	bool in_body; /* the header is in, r found */
	bool discard; /* the body is dropped: the request was abandoned */
};

struct sftp_chan {
	LIBSSH2_SESSION *ssh; /* the loop's while it runs */
	LIBSSH2_CHANNEL *ch;
	int sock;
	int evfd;
	int keepalive_s;
	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	/* protected by lock */
	struct sftp_req *subq, **subq_tail; /* submitted, not yet taken */
	struct sftp_req *bucket[SFTP_CHAN_BUCKETS]; /* every request the
						     * engine holds, by id */
	unsigned nheld;                             /* requests in the table */
	unsigned nabandon; /* abandoned, not yet seen by the loop */
	uint32_t next_id;
	int err;           /* < 0: failed; every request fails with it */
	uint64_t rx_bytes; /* channel data read from the server so far */
	bool stop;
	enum sftp_driver driver;
	bool polling;             /* the driver sleeps in poll(): wake it */
	bool idle;                /* the loop sleeps driving nothing */
	unsigned nwait;           /* callers waiting while another drives */
	unsigned norphan;         /* held requests no caller comes back for
				   * (asynchronous, abandoned) */
	pthread_cond_t loop_cond; /* the loop waits for a caller's drive */
	struct sftp_chan_limits lim;

	/* the driver's own (the loop's, or a driving caller's) */
	struct sftp_req *sendq, **sendq_tail; /* taken, not fully written */
	unsigned nwire;                       /* written, reply not read */
	uint8_t *stage;                       /* [SFTP_CHAN_STAGE_CAP] */
	size_t stage_len, stage_off;
	struct sftp_req *direct; /* its data is written from the caller's
				  * buffer after the staged bytes */
	size_t direct_off;
	struct sftp_rx rx;
	uint8_t *rxbuf; /* [SFTP_CHAN_RXBUF]: read, not yet parsed */
	size_t rxpos, rxlen;
};

static void sftp_drive_own(struct sftp_chan *ch, struct sftp_req *r,
			   double deadline);

/* ---- Requests -------------------------------------------------------- */

struct sftp_req *sftp_req_new(void)
{
	struct sftp_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	sftp_buf_init(&r->pkt);
	r->refs = 1;
	return r;
}

static void sftp_req_free(struct sftp_req *r)
{
	sftp_buf_free(&r->pkt);
	free(r->body);
	free(r->own_data);
	free(r);
}

void sftp_req_put(struct sftp_chan *ch, struct sftp_req *r)
{
	int left;

	if (!r)
		return;
	if (ch) {
		pthread_mutex_lock(&ch->lock);
		left = --r->refs;
		pthread_mutex_unlock(&ch->lock);
	} else {
		left = --r->refs;
	}
	if (left == 0)
		sftp_req_free(r);
}

static void sftp_held_add_locked(struct sftp_chan *ch, struct sftp_req *r)
{
	struct sftp_req **b = &ch->bucket[r->id % SFTP_CHAN_BUCKETS];

	r->hnext = *b;
	*b = r;
	ch->nheld++;
}

static struct sftp_req *sftp_held_find_locked(struct sftp_chan *ch, uint32_t id)
{
	struct sftp_req *r = ch->bucket[id % SFTP_CHAN_BUCKETS];

	while (r && r->id != id)
		r = r->hnext;
	return r;
}

static void sftp_held_del_locked(struct sftp_chan *ch, struct sftp_req *r)
{
	struct sftp_req **pp = &ch->bucket[r->id % SFTP_CHAN_BUCKETS];

	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = r->hnext;
		ch->nheld--;
	}
	r->hnext = NULL;
}

/*
 * Complete r (the loop's, or a failing loop's): out of the table, its
 * waiter woken, or its callback run.  Called with the lock held; drops
 * it around a callback.  The engine's reference is dropped.
 */
static void sftp_complete_locked(struct sftp_chan *ch, struct sftp_req *r,
				 int err)
{
	sftp_held_del_locked(ch, r);
	if (!r->waiter)
		ch->norphan--;
	r->err = err;
	r->completed = true;
	if (r->done && !r->abandoned) {
		pthread_mutex_unlock(&ch->lock);
		r->done(r);
		pthread_mutex_lock(&ch->lock);
	} else if (r->waiter) {
		pthread_cond_broadcast(&r->waiter->cond);
	}
	if (--r->refs == 0)
		sftp_req_free(r);
}

/* ---- Callers ---------------------------------------------------------- */

static void sftp_chan_kick(struct sftp_chan *ch)
{
	uint64_t one = 1;

	/* a full counter still wakes the loop */
	if (write(ch->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("sftp: waking the channel's loop: %s",
			  strerror(errno));
}

int sftp_chan_submit(struct sftp_chan *ch, struct sftp_req *r)
{
	bool kick;
	int err;

	if (r->pkt.len < 9)
		return -EINVAL;
	pthread_mutex_lock(&ch->lock);
	err = ch->err;
	if (err) {
		pthread_mutex_unlock(&ch->lock);
		return err;
	}
	/* 0 is never used, so that a reply to "no id" is no one's */
	if (++ch->next_id == 0)
		ch->next_id = 1;
	r->id = ch->next_id;
	r->pkt.p[5] = (uint8_t)(r->id >> 24);
	r->pkt.p[6] = (uint8_t)(r->id >> 16);
	r->pkt.p[7] = (uint8_t)(r->id >> 8);
	r->pkt.p[8] = (uint8_t)r->id;
	r->completed = false;
	r->abandoned = false;
	r->wired = false;
	r->err = 0;
	r->waiter = r->done ? NULL : sftp_waiter_self();
	if (!r->waiter)
		ch->norphan++;
	r->rx_mark = ch->rx_bytes;
	r->refs++;
	r->next = NULL;
	*ch->subq_tail = r;
	ch->subq_tail = &r->next;
	sftp_held_add_locked(ch, r);
	/* A sleeping driver must see it; an idle loop only if no caller
	 * will wait for it (and drive). */
	kick = ch->polling || (ch->idle && r->done);
	if (ch->polling)
		ch->polling = false;
	pthread_mutex_unlock(&ch->lock);
	if (kick)
		sftp_chan_kick(ch);
	return 0;
}

static void sftp_chan_fail_locked(struct sftp_chan *ch, int err)
{
	if (!ch->err)
		ch->err = err;
}

void sftp_chan_fail(struct sftp_chan *ch, int err)
{
	pthread_mutex_lock(&ch->lock);
	sftp_chan_fail_locked(ch, err);
	pthread_mutex_unlock(&ch->lock);
	sftp_chan_kick(ch);
}

int sftp_chan_error(struct sftp_chan *ch)
{
	int err;

	pthread_mutex_lock(&ch->lock);
	err = ch->err;
	pthread_mutex_unlock(&ch->lock);
	return err;
}

unsigned sftp_chan_inflight(struct sftp_chan *ch)
{
	unsigned n;

	pthread_mutex_lock(&ch->lock);
	n = ch->nheld;
	pthread_mutex_unlock(&ch->lock);
	return n;
}

int sftp_chan_wait(struct sftp_chan *ch, struct sftp_req *r, double deadline,
		   bool fatal)
{
	struct timespec at;
	double left = deadline - vfs_mono_s();
	int err;

	if (left < 0)
		left = 0;
	vfs_ts_after_ms(&at, CLOCK_MONOTONIC, (long)(left * 1000) + 1);
	pthread_mutex_lock(&ch->lock);
	while (!r->completed) {
		int wrc;

		/* No one drives: a lone caller drives, until r is answered.
		 * With other callers waiting the loop drives for all: a
		 * caller would hand over at each reply of its own, and each
		 * hand-over costs the wake-ups driving saves (4 KiB random
		 * reads at queue depth 16 lost 10-25% that way). */
		if (ch->driver == SFTP_DRV_NONE && !ch->err) {
			if (!ch->nwait) {
				sftp_drive_own(ch, r, deadline);
				if (r->completed)
					break;
			} else if (ch->idle) {
				sftp_chan_kick(ch);
			}
		}
		ch->nwait++;
		wrc = pthread_cond_timedwait(&r->waiter->cond, &ch->lock, &at);
		ch->nwait--;
		if (wrc != ETIMEDOUT)
			continue;
		if (r->completed)
			break;
		/* Fatal only if the server sent nothing at all while r was
		 * on the channel.  If it answered others meanwhile, r waited
		 * behind their requests on a slow link: that is no dead
		 * server, and failing the channel would fail every call on
		 * it and take the mount down.  r is given up alone instead,
		 * as at a caller's own deadline; a write already (partly)
		 * sent still cuts the channel, so that it cannot land after
		 * its caller was told it failed (cancel_on_miss). */
		if (fatal && ch->rx_bytes != r->rx_mark) {
			fatal = false;
			if (r->data)
				r->cancel_on_miss = true;
		}
		if (fatal) {
			/* the server did not answer in the mount's time: the
			 * loop fails everything on the channel, this too */
			sftp_chan_fail_locked(ch, -ETIMEDOUT);
			pthread_mutex_unlock(&ch->lock);
			sftp_chan_kick(ch);
			pthread_mutex_lock(&ch->lock);
			while (!r->completed)
				pthread_cond_wait(&r->waiter->cond, &ch->lock);
			break;
		}
		/* The caller's own deadline: hand r to the engine, which
		 * stops using the caller's memory before this returns. */
		r->abandoned = true;
		ch->nabandon++;
		pthread_mutex_unlock(&ch->lock);
		sftp_chan_kick(ch);
		pthread_mutex_lock(&ch->lock);
		while (!r->completed && r->abandoned && r->waiter)
			pthread_cond_wait(&r->waiter->cond, &ch->lock);
		if (!r->completed) {
			pthread_mutex_unlock(&ch->lock);
			return -ETIMEDOUT;
		}
		break;
	}
	err = r->err;
	pthread_mutex_unlock(&ch->lock);
	return err;
}

/* ---- The loop: taking requests in ------------------------------------ */

/* Make an abandoned request the engine's alone (called with the lock):
 * its unsent data copied, its DATA reply to be dropped, its waiter let
 * go.  False: out of memory (the channel must fail). */
static bool sftp_adopt_locked(struct sftp_chan *ch, struct sftp_req *r)
{
	if (r->cancel_on_miss && !r->wired) {
		struct sftp_req **pp = &ch->sendq;

		while (*pp && *pp != r)
			pp = &(*pp)->next;
		if (*pp) {
			*pp = r->next;
			if (!r->next)
				ch->sendq_tail = pp;
			r->next = NULL;
		}
		/* the waiter sees it completed, not abandoned */
		r->abandoned = false;
		sftp_complete_locked(ch, r, -ETIMEDOUT);
		return true;
	}
	if (r->cancel_on_miss) {
		sftp_chan_fail_locked(ch, -ECANCELED);
		return true;
	}
	if (r == ch->direct && r->data) {
		size_t rest = r->data_len - ch->direct_off;

		r->own_data = malloc(rest ? rest : 1);
		if (!r->own_data)
			return false;
		memcpy(r->own_data, (const char *)r->data + ch->direct_off,
		       rest);
		r->data = r->own_data;
		r->data_len = rest;
		ch->direct_off = 0;
	} else if (r->data) {
		/* not begun: it goes out whole, from the copy */
		r->own_data = malloc(r->data_len ? r->data_len : 1);
		if (!r->own_data)
			return false;
		memcpy(r->own_data, r->data, r->data_len);
		r->data = r->own_data;
	}
	if (ch->rx.r == r && !ch->rx.discard && ch->rx.dst == r->rbuf) {
		ch->rx.dst = NULL;
		ch->rx.discard = true;
	}
	r->rbuf = NULL;
	r->rcap = (size_t)-1; /* its DATA is dropped whatever its size */
	pthread_cond_broadcast(&r->waiter->cond);
	r->waiter = NULL;
	/* no one comes back for it now: a driving caller that stops must
	 * leave its reply to the loop, and its completion counts it out */
	ch->norphan++;
	return true;
}

/* Take new submissions, adopt abandoned requests.  Called with the
 * lock; false: the channel failed (err set). */
static bool sftp_take_locked(struct sftp_chan *ch)
{
	if (ch->subq) {
		*ch->sendq_tail = ch->subq;
		ch->sendq_tail = ch->subq_tail;
		ch->subq = NULL;
		ch->subq_tail = &ch->subq;
	}
	if (ch->nabandon) {
		for (size_t b = 0; b < SFTP_CHAN_BUCKETS; b++) {
			struct sftp_req *r = ch->bucket[b], *next;

			for (; r; r = next) {
				next = r->hnext;
				if (!r->abandoned || !r->waiter)
					continue;
				if (!sftp_adopt_locked(ch, r)) {
					sftp_chan_fail_locked(ch, -ENOMEM);
					return false;
				}
			}
		}
		ch->nabandon = 0;
	}
	return !ch->err;
}

/* Complete everything the engine holds with the channel's error. */
static void sftp_fail_all_locked(struct sftp_chan *ch)
{
	ch->sendq = NULL;
	ch->sendq_tail = &ch->sendq;
	ch->subq = NULL;
	ch->subq_tail = &ch->subq;
	ch->direct = NULL;
	ch->stage_len = ch->stage_off = 0;
	ch->rx.r = NULL;
	ch->rxpos = ch->rxlen = 0;
	for (size_t b = 0; b < SFTP_CHAN_BUCKETS; b++)
		while (ch->bucket[b])
			sftp_complete_locked(ch, ch->bucket[b], ch->err);
	ch->nwire = 0;
	ch->nabandon = 0;
}

/* ---- The loop: writing ------------------------------------------------ */

/* r, at the head of the send queue, passed its send-by time before any
 * byte of it was staged: take it off, unsent, and complete it as
 * sftp_adopt_locked does a cancel_on_miss request not yet wired, which
 * its caller would have given up had it woken in time.  Called with the
 * lock, by the driver; drops it around an asynchronous request's
 * callback. */
static void sftp_drop_late_locked(struct sftp_chan *ch, struct sftp_req *r)
{
	ch->sendq = r->next;
	if (!ch->sendq)
		ch->sendq_tail = &ch->sendq;
	r->next = NULL;
	if (r->abandoned && r->waiter) {
		/* given up, not yet adopted: this is its adoption (and its
		 * waiter sees it completed, not abandoned) */
		r->abandoned = false;
		ch->nabandon--;
	}
	sftp_complete_locked(ch, r, -ETIMEDOUT);
}

/* Fill the stage with whole small requests, in order; a request whose
 * data does not fit has its packet staged and its data written directly
 * after.  A request past its send-by time is dropped instead: what is
 * staged goes to the socket at once, with no check in between.  True if
 * one was (it completed).  Called with the lock, by the driver (sendq is
 * the driver's). */
static bool sftp_stage(struct sftp_chan *ch)
{
	bool dropped = false;

	ch->stage_len = ch->stage_off = 0;
	while (ch->sendq && ch->nwire < SFTP_CHAN_WINDOW && !ch->direct) {
		struct sftp_req *r = ch->sendq;
		size_t need = r->pkt.len + r->data_len;

		if (r->send_by > 0 && vfs_mono_s() >= r->send_by) {
			sftp_drop_late_locked(ch, r);
			dropped = true;
			continue;
		}
		if (ch->stage_len &&
		    ch->stage_len + r->pkt.len > SFTP_CHAN_STAGE)
			break;
		/* (sftp_buf_end keeps a packet within SFTP_MAX_PACKET + 4,
		 * and an empty stage takes that) */
		memcpy(ch->stage + ch->stage_len, r->pkt.p, r->pkt.len);
		ch->stage_len += r->pkt.len;
		if (ch->stage_len <= SFTP_CHAN_STAGE &&
		    need - r->pkt.len <= SFTP_CHAN_STAGE - ch->stage_len) {
			if (r->data_len)
				memcpy(ch->stage + ch->stage_len, r->data,
				       r->data_len);
			ch->stage_len += r->data_len;
		} else {
			ch->direct = r;
			ch->direct_off = 0;
		}
		ch->sendq = r->next;
		if (!ch->sendq)
			ch->sendq_tail = &ch->sendq;
		r->next = NULL;
		r->wired = true;
		ch->nwire++;
	}
	return dropped;
}

/*
 * Write what can be written.  The data of `direct` is read from the
 * caller's buffer without the lock: an abandoning caller waits for the
 * loop's next turn, which copies it first (sftp_adopt_locked).  Returns
 * bytes written (0: nothing to write or the socket is full) or -errno;
 * *dropped is set if late requests were dropped (completed) meanwhile.
 */
static ssize_t sftp_write_some(struct sftp_chan *ch, bool *dropped)
{
	ssize_t total = 0;

	for (;;) {
		ssize_t n;

		if (ch->stage_off == ch->stage_len && !ch->direct) {
			pthread_mutex_lock(&ch->lock);
			if (sftp_stage(ch))
				*dropped = true;
			pthread_mutex_unlock(&ch->lock);
			if (!ch->stage_len)
				return total;
		}
		if (ch->stage_off < ch->stage_len) {
			n = libssh2_channel_write(
				ch->ch, (char *)ch->stage + ch->stage_off,
				ch->stage_len - ch->stage_off);
			if (n == LIBSSH2_ERROR_EAGAIN)
				return total;
			if (n < 0)
				return -ECONNRESET;
			ch->stage_off += (size_t)n;
			total += n;
			continue;
		}
		/* the stage is out: the direct request's data follows */
		n = libssh2_channel_write(
			ch->ch, (const char *)ch->direct->data + ch->direct_off,
			ch->direct->data_len - ch->direct_off);
		if (n == LIBSSH2_ERROR_EAGAIN)
			return total;
		if (n < 0)
			return -ECONNRESET;
		ch->direct_off += (size_t)n;
		total += n;
		if (ch->direct_off == ch->direct->data_len) {
			pthread_mutex_lock(&ch->lock);
			ch->direct = NULL;
			pthread_mutex_unlock(&ch->lock);
		}
	}
}

/* ---- The loop: reading ------------------------------------------------ */

static ssize_t sftp_read_into(struct sftp_chan *ch, void *dst, size_t len)
{
	ssize_t n = libssh2_channel_read(ch->ch, dst, len);

	if (n == LIBSSH2_ERROR_EAGAIN)
		return 0;
	if (n < 0)
		return -ECONNRESET;
	if (n == 0 && libssh2_channel_eof(ch->ch))
		return -ECONNRESET;
	return n;
}

static uint32_t sftp_be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* The header of a reply is in: find its request and where the rest goes.
 * 0 or -EPROTO. */
static int sftp_rx_begin(struct sftp_chan *ch)
{
	struct sftp_rx *x = &ch->rx;
	uint8_t type = x->hdr[4];
	uint32_t id = sftp_be32_at(x->hdr + 5);
	struct sftp_req *r;

	pthread_mutex_lock(&ch->lock);
	r = sftp_held_find_locked(ch, id);
	/* a reply to a request not yet (or not wholly) written is no
	 * reply to it */
	if (r && (!r->wired || r == ch->direct))
		r = NULL;
	x->r = r;
	x->discard = false;
	if (!r) {
		pthread_mutex_unlock(&ch->lock);
		return -EPROTO;
	}
	if (type == SFTP_DATA && x->hdr_want == 13) {
		uint32_t dlen = sftp_be32_at(x->hdr + 9);

		if (dlen != x->len - 9 ||
		    (r->rcap != (size_t)-1 && (!r->rbuf || dlen > r->rcap))) {
			pthread_mutex_unlock(&ch->lock);
			return -EPROTO;
		}
		r->type = type;
		r->rlen = dlen;
		x->want = dlen;
		x->dst = r->rbuf;
		x->discard = !r->rbuf;
	} else {
		/* the body after the type byte, the id already read */
		uint8_t *body = malloc(x->len - 1);

		if (!body) {
			pthread_mutex_unlock(&ch->lock);
			return -ENOMEM;
		}
		memcpy(body, x->hdr + 5, 4);
		free(r->body);
		r->body = body;
		r->body_len = x->len - 1;
		r->type = type;
		x->dst = body + 4;
		x->want = x->len - 5;
	}
	x->got = 0;
	pthread_mutex_unlock(&ch->lock);
	return 0;
}

/* Where the rest of the body being read goes, or NULL to drop it: an
 * abandoned request's buffer is the caller's again (sftp_adopt_locked
 * switched it to discard). */
static uint8_t *sftp_rx_dst(struct sftp_chan *ch)
{
	struct sftp_rx *x = &ch->rx;
	uint8_t *dst;

	pthread_mutex_lock(&ch->lock);
	dst = x->discard ? NULL : x->dst + x->got;
	pthread_mutex_unlock(&ch->lock);
	return dst;
}

/* Take up to `avail` bytes of input at `in` into the reply being read.
 * Returns bytes taken or -errno. */
static ssize_t sftp_rx_take(struct sftp_chan *ch, const uint8_t *in,
			    size_t avail)
{
	struct sftp_rx *x = &ch->rx;
	size_t k;
	int rc;

	if (x->in_body) {
		uint8_t *dst = sftp_rx_dst(ch);

		k = x->want - x->got < avail ? x->want - x->got : avail;
		if (dst)
			memcpy(dst, in, k);
		x->got += k;
		return (ssize_t)k;
	}
	k = x->hdr_want - x->hdr_got < avail ? x->hdr_want - x->hdr_got : avail;
	memcpy(x->hdr + x->hdr_got, in, k);
	x->hdr_got += k;
	if (x->hdr_got == 9 && x->hdr_want == 9) {
		x->len = sftp_be32_at(x->hdr);
		if (x->len < 5 || x->len > SFTP_MAX_PACKET + 1024)
			return -EPROTO;
		if (x->hdr[4] == SFTP_DATA) {
			if (x->len < 9)
				return -EPROTO;
			x->hdr_want = 13;
		}
	}
	if (x->hdr_got == x->hdr_want) {
		rc = sftp_rx_begin(ch);
		if (rc < 0)
			return rc;
		x->in_body = true;
	}
	return (ssize_t)k;
}

/* Read what has come.  Returns bytes read (0: none yet) or -errno. */
static ssize_t sftp_read_some(struct sftp_chan *ch)
{
	struct sftp_rx *x = &ch->rx;
	ssize_t total = 0;

	for (;;) {
		ssize_t n;

		if (x->in_body && x->got == x->want) {
			/* a whole reply */
			pthread_mutex_lock(&ch->lock);
			if (x->r) {
				if (x->discard && x->r->type == SFTP_DATA)
					x->r->rlen = 0;
				ch->nwire--;
				sftp_complete_locked(ch, x->r, 0);
			}
			pthread_mutex_unlock(&ch->lock);
			memset(x, 0, sizeof(*x));
			x->hdr_want = 9;
			continue;
		}
		if (ch->rxpos < ch->rxlen) {
			n = sftp_rx_take(ch, ch->rxbuf + ch->rxpos,
					 ch->rxlen - ch->rxpos);
			if (n < 0)
				return n;
			ch->rxpos += (size_t)n;
			continue;
		}
		if (x->in_body && x->want - x->got >= SFTP_CHAN_RXDIRECT) {
			uint8_t *dst = sftp_rx_dst(ch);

			if (dst) {
				n = sftp_read_into(ch, dst, x->want - x->got);
				if (n <= 0)
					return n < 0 ? n : total;
				total += n;
				x->got += (size_t)n;
				continue;
			}
		}
		n = sftp_read_into(ch, ch->rxbuf, SFTP_CHAN_RXBUF);
		if (n <= 0)
			return n < 0 ? n : total;
		total += n;
		ch->rxpos = 0;
		ch->rxlen = (size_t)n;
	}
}

/* ---- Driving ---------------------------------------------------------- */

/*
 * Send a keepalive when one is due (no reply wanted, see session.c); the
 * poll timeout until the next, or -1.  Only with nothing of ours on its
 * way and the socket taking data: libssh2 1.10 leaves a keepalive the
 * socket did not take pending and counts it sent, and then refuses every
 * other packet until that one goes, which it retries only at the next
 * interval.  Any driver's: a caller driving while it waits for a slow
 * reply sends them too.
 */
static int sftp_keepalive(struct sftp_chan *ch)
{
	int next = 0;

	if (!ch->keepalive_s)
		return -1;
	if (ch->stage_off < ch->stage_len || ch->direct || ch->sendq ||
	    (libssh2_session_block_directions(ch->ssh) &
	     LIBSSH2_SESSION_BLOCK_OUTBOUND))
		return ch->keepalive_s * 1000;
	/* EAGAIN: tried again on the next turn */
	libssh2_keepalive_send(ch->ssh, &next);
	return next > 0 ? next * 1000 : 1000;
}

/*
 * One turn of the driver: take submissions and abandoned requests in,
 * write what the socket takes, read what has come.  1: something moved
 * (turn again), 0: nothing to do until the socket or a kick says so, -1:
 * the channel failed and everything on it completed with its error.
 */
static int sftp_drive_turn(struct sftp_chan *ch)
{
	ssize_t w, rd;
	bool dropped = false;

	pthread_mutex_lock(&ch->lock);
	if (ch->stop && !ch->err)
		ch->err = -ESHUTDOWN;
	if (!sftp_take_locked(ch) || ch->err) {
		sftp_fail_all_locked(ch);
		pthread_mutex_unlock(&ch->lock);
		return -1;
	}
	pthread_mutex_unlock(&ch->lock);

	w = sftp_write_some(ch, &dropped);
	rd = w < 0 ? 0 : sftp_read_some(ch);
	if (rd > 0 || w < 0 || rd < 0) {
		pthread_mutex_lock(&ch->lock);
		if (rd > 0)
			ch->rx_bytes += (uint64_t)rd;
		if (w < 0 || rd < 0)
			sftp_chan_fail_locked(ch, w < 0 ? (int)w : (int)rd);
		pthread_mutex_unlock(&ch->lock);
		return 1;
	}
	/* a driving caller's own request may be among those dropped */
	if (w > 0 || dropped)
		return 1;
	/* A write that waited for the server's window may have read
	 * channel data into libssh2's queue: take it before sleeping on
	 * the socket. */
	return libssh2_poll_channel_read(ch->ch, 0) ? 1 : 0;
}

/* Something for the driver came in since its turn began: a submission,
 * an abandoned request, a failure or a stop.  Called with the lock. */
static bool sftp_work_came_locked(struct sftp_chan *ch)
{
	return ch->subq || ch->nabandon || ch->err || ch->stop;
}

/*
 * The driver sleeps until the socket is ready in the directions libssh2
 * waits for, a kick, or timeout_ms; at once if work came in since its
 * turn began (a submitter saw no one polling and did not kick).
 */
static void sftp_drive_sleep(struct sftp_chan *ch, int timeout_ms)
{
	struct pollfd pfd[2];
	uint64_t drain;
	int dirs, rc, err = 0;

	pthread_mutex_lock(&ch->lock);
	if (sftp_work_came_locked(ch)) {
		pthread_mutex_unlock(&ch->lock);
		return;
	}
	ch->polling = true;
	pthread_mutex_unlock(&ch->lock);

	dirs = libssh2_session_block_directions(ch->ssh);
	pfd[0] = (struct pollfd){.fd = ch->sock, .events = POLLIN};
	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		pfd[0].events |= POLLOUT;
	pfd[1] = (struct pollfd){.fd = ch->evfd, .events = POLLIN};
	rc = poll(pfd, 2, timeout_ms);
	if (rc < 0 && errno != EINTR)
		err = -errno;
	else if (rc > 0 && pfd[0].revents & (POLLERR | POLLHUP) &&
		 !(pfd[0].revents & POLLIN))
		err = -ECONNRESET;
	if (rc > 0 && pfd[1].revents & POLLIN)
		if (read(ch->evfd, &drain, sizeof(drain)) < 0)
			(void)0;
	pthread_mutex_lock(&ch->lock);
	ch->polling = false;
	if (err)
		sftp_chan_fail_locked(ch, err);
	pthread_mutex_unlock(&ch->lock);
}

/* Work a driver that stops leaves to the loop: requests someone waits
 * for or no one will come back for, or a failure to finish.  Requests
 * of callers that are not waiting yet are not: each drives its own when
 * it comes to wait.  Called with the lock, by the driver. */
static bool sftp_loop_needed_locked(struct sftp_chan *ch)
{
	return ch->nwait || ch->norphan || ch->nabandon || ch->err || ch->stop;
}

/*
 * Drive the channel from a caller until r completed or `deadline`
 * passed (then the loop takes over, and sftp_chan_wait's deadline rules
 * apply).  Called with the lock and the channel without a driver;
 * returns with the lock.
 */
static void sftp_drive_own(struct sftp_chan *ch, struct sftp_req *r,
			   double deadline)
{
	bool hand_over;

	ch->driver = SFTP_DRV_CALLER;
	while (!r->completed) {
		double left = deadline - vfs_mono_s();
		int rc;

		if (left <= 0)
			break;
		pthread_mutex_unlock(&ch->lock);
		rc = sftp_drive_turn(ch);
		if (rc == 0) {
			/* the loop, waiting for this caller to stop, cannot
			 * send the keepalives that fall due meanwhile */
			int ms = (int)(left * 1000) + 1;
			int ka = sftp_keepalive(ch);

			sftp_drive_sleep(ch, ka >= 0 && ka < ms ? ka : ms);
		}
		pthread_mutex_lock(&ch->lock);
		if (rc < 0)
			break;
	}
	ch->driver = SFTP_DRV_NONE;
	hand_over = !r->completed || sftp_loop_needed_locked(ch);
	/* a loop that wanted to drive meanwhile waits for this */
	pthread_cond_signal(&ch->loop_cond);
	/* An idle loop is kicked by every driver that leaves it work, and
	 * `idle` stays set until the loop itself wakes: the kick may be
	 * read by the next caller that drives (its poll watches the same
	 * eventfd) before the loop's poll sees it, and that caller must
	 * then kick again when it stops. */
	if (hand_over && ch->idle)
		sftp_chan_kick(ch);
}

/* ---- The loop --------------------------------------------------------- */

/* Become the driver, after a driving caller if there is one.  Called
 * with the lock. */
static void sftp_loop_drive_locked(struct sftp_chan *ch)
{
	while (ch->driver == SFTP_DRV_CALLER)
		pthread_cond_wait(&ch->loop_cond, &ch->lock);
	ch->driver = SFTP_DRV_LOOP;
}

static void *sftp_chan_loop(void *arg)
{
	struct sftp_chan *ch = arg;

	pthread_mutex_lock(&ch->lock);
	sftp_loop_drive_locked(ch);
	pthread_mutex_unlock(&ch->lock);
	for (;;) {
		struct pollfd pfd;
		uint64_t drain;
		int rc, timeout;
		bool busy;

		rc = sftp_drive_turn(ch);
		if (rc > 0)
			continue;
		pthread_mutex_lock(&ch->lock);
		if (rc < 0 && ch->stop) {
			ch->driver = SFTP_DRV_NONE;
			pthread_mutex_unlock(&ch->lock);
			break;
		}
		busy = rc == 0 && (ch->nwire || ch->sendq || ch->direct ||
				   ch->stage_off < ch->stage_len || ch->subq ||
				   ch->nabandon);
		pthread_mutex_unlock(&ch->lock);
		if (busy) {
			sftp_drive_sleep(ch, sftp_keepalive(ch));
			continue;
		}
		/*
		 * Nothing on the wire: stop driving, so that the next caller
		 * drives its request itself.  A failed channel only refuses
		 * (submit checks err) until it is stopped.
		 */
		timeout = rc < 0 ? -1 : sftp_keepalive(ch);
		if (rc == 0 && (timeout < 0 || timeout > SFTP_CHAN_IDLE_MS))
			timeout = SFTP_CHAN_IDLE_MS;
		pthread_mutex_lock(&ch->lock);
		if (rc == 0 && sftp_work_came_locked(ch)) {
			pthread_mutex_unlock(&ch->lock);
			continue;
		}
		ch->driver = SFTP_DRV_NONE;
		ch->idle = true;
		pthread_mutex_unlock(&ch->lock);

		pfd = (struct pollfd){.fd = ch->evfd, .events = POLLIN};
		if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
			log_debug("sftp: the channel's loop cannot wait: %s",
				  strerror(errno));

		pthread_mutex_lock(&ch->lock);
		ch->idle = false;
		sftp_loop_drive_locked(ch);
		pthread_mutex_unlock(&ch->lock);
		/* the driver's alone: a kick for a driving caller stays
		 * for it to see */
		if (read(ch->evfd, &drain, sizeof(drain)) < 0)
			(void)0;
	}
	return NULL;
}

/* ---- Start and stop --------------------------------------------------- */

/* Read one whole packet in blocking mode (setup only): its type and
 * body (malloc'd).  0 or -errno. */
static int sftp_read_packet_blocking(LIBSSH2_CHANNEL *c, uint8_t *type,
				     uint8_t **body, size_t *len)
{
	uint8_t hdr[5];
	size_t got = 0;
	uint32_t n;

	while (got < sizeof(hdr)) {
		ssize_t r = libssh2_channel_read(c, (char *)hdr + got,
						 sizeof(hdr) - got);

		if (r <= 0)
			return r == LIBSSH2_ERROR_TIMEOUT ? -ETIMEDOUT
							  : -ECONNRESET;
		got += (size_t)r;
	}
	n = sftp_be32_at(hdr);
	if (n < 1 || n > SFTP_MAX_PACKET)
		return -EPROTO;
	*type = hdr[4];
	*len = n - 1;
	*body = malloc(*len ? *len : 1);
	if (!*body)
		return -ENOMEM;
	for (got = 0; got < *len;) {
		ssize_t r = libssh2_channel_read(c, (char *)*body + got,
						 *len - got);

		if (r <= 0) {
			free(*body);
			*body = NULL;
			return r == LIBSSH2_ERROR_TIMEOUT ? -ETIMEDOUT
							  : -ECONNRESET;
		}
		got += (size_t)r;
	}
	return 0;
}

static int sftp_write_blocking(LIBSSH2_CHANNEL *c, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = libssh2_channel_write(c, (const char *)p, len);

		if (n < 0)
			return n == LIBSSH2_ERROR_TIMEOUT ? -ETIMEDOUT
							  : -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sftp_chan_start(LIBSSH2_SESSION *ssh, int sock, int keepalive_s,
		    void (*ext)(void *ctx, const char *name, size_t nlen,
				const char *data, size_t dlen),
		    void *ctx, struct sftp_chan **out, char *msg, size_t msglen)
{
	struct sftp_chan *ch = calloc(1, sizeof(*ch));
	struct sftp_buf b;
	uint8_t type = 0, *body = NULL;
	uint32_t version;
	size_t len = 0;
	int rc;

	if (!ch) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	ch->ssh = ssh;
	ch->sock = sock;
	ch->keepalive_s = keepalive_s;
	ch->evfd = -1;
	ch->subq_tail = &ch->subq;
	ch->sendq_tail = &ch->sendq;
	ch->lim.max_read = SFTP_CHAN_SAFE_READ;
	ch->lim.max_write = SFTP_CHAN_SAFE_WRITE;
	ch->rx.hdr_want = 9;
	pthread_mutex_init(&ch->lock, NULL);
	remote_cond_init(&ch->loop_cond);
	ch->stage = malloc(SFTP_CHAN_STAGE_CAP);
	ch->rxbuf = malloc(SFTP_CHAN_RXBUF);
	ch->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!ch->stage || !ch->rxbuf || ch->evfd < 0) {
		rc = ch->evfd < 0 ? -errno : -ENOMEM;
		snprintf(msg, msglen, "cannot set up the channel: %s",
			 strerror(-rc));
		goto err;
	}
	ch->ch = libssh2_channel_open_ex(
		ssh, "session", sizeof("session") - 1, SFTP_CHAN_RXWINDOW,
		LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
	if (!ch->ch) {
		rc = libssh2_session_last_errno(ssh) == LIBSSH2_ERROR_TIMEOUT
			     ? -ETIMEDOUT
			     : -ECONNRESET;
		snprintf(msg, msglen, "cannot open an SSH channel");
		goto err;
	}
	if (libssh2_channel_subsystem(ch->ch, "sftp")) {
		rc = -EPROTO;
		snprintf(msg, msglen, "the server refused the SFTP subsystem");
		goto err;
	}
	/* the server's stderr is not ours to keep */
	libssh2_channel_handle_extended_data2(
		ch->ch, LIBSSH2_CHANNEL_EXTENDED_DATA_IGNORE);

	sftp_buf_init(&b);
	sftp_buf_begin(&b, SFTP_INIT, 0);
	sftp_put_u32(&b, 3);
	rc = sftp_buf_end(&b, 0);
	if (rc == 0)
		rc = sftp_write_blocking(ch->ch, b.p, b.len);
	sftp_buf_free(&b);
	if (rc == 0)
		rc = sftp_read_packet_blocking(ch->ch, &type, &body, &len);
	if (rc < 0) {
		snprintf(msg, msglen, "starting SFTP: %s", strerror(-rc));
		goto err;
	}
	if (type != SFTP_VERSION ||
	    sftp_parse_version(body, len, &version, ext, ctx) < 0 ||
	    version < 3) {
		free(body);
		rc = -EPROTO;
		snprintf(msg, msglen,
			 "the server does not speak SFTP version 3");
		goto err;
	}
	free(body);

	libssh2_session_set_blocking(ssh, 0);
	rc = -pthread_create(&ch->thread, NULL, sftp_chan_loop, ch);
	if (rc) {
		libssh2_session_set_blocking(ssh, 1);
		snprintf(msg, msglen, "cannot start a thread: %s",
			 strerror(-rc));
		goto err;
	}
	/* (named for ps and top, and for the tests that watch it) */
	pthread_setname_np(ch->thread, "sftp-chan");
	ch->started = true;
	*out = ch;
	return 0;

err:
	if (ch->ch)
		libssh2_channel_free(ch->ch);
	if (ch->evfd >= 0)
		close(ch->evfd);
	free(ch->stage);
	free(ch->rxbuf);
	pthread_cond_destroy(&ch->loop_cond);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
	return rc;
}

void sftp_chan_stop(struct sftp_chan *ch)
{
	if (!ch)
		return;
	pthread_mutex_lock(&ch->lock);
	ch->stop = true;
	pthread_mutex_unlock(&ch->lock);
	sftp_chan_kick(ch);
	if (ch->started)
		pthread_join(ch->thread, NULL);
	/* blocking again, for the session's owner; a channel on a working
	 * session closes cleanly (its sftp-server exits), one on a dead
	 * one is freed at once (the socket was shut down) */
	libssh2_session_set_blocking(ch->ssh, 1);
	if (ch->ch)
		libssh2_channel_free(ch->ch);
	close(ch->evfd);
	free(ch->stage);
	free(ch->rxbuf);
	pthread_cond_destroy(&ch->loop_cond);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}

void sftp_chan_set_limits(struct sftp_chan *ch,
			  const struct sftp_chan_limits *l)
{
	pthread_mutex_lock(&ch->lock);
	ch->lim = *l;
	pthread_mutex_unlock(&ch->lock);
}

void sftp_chan_limits(struct sftp_chan *ch, struct sftp_chan_limits *out)
{
	pthread_mutex_lock(&ch->lock);
	*out = ch->lim;
	pthread_mutex_unlock(&ch->lock);
}
