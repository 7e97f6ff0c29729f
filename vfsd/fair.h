/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fair.h - fair sharing of a busy mount between its open files.
 *
 * A network backend serves a few requests at once (NFS: one per
 * connection; SFTP: what fits in its sessions' pipelines); the rest wait
 * inside it in arrival order, so a file streaming 1 MiB writes at queue
 * depth 8 puts every other file's 4 KiB read behind megabytes of its
 * data.  The router therefore admits a mount's reads and writes itself:
 *
 *  - A file with nothing in flight is admitted at once: a small
 *    synchronous reader never waits behind a streamer here.  Only while
 *    a waiting file has nothing in flight either does it take its turn
 *    (below), or a few such readers could hold that file back for ever.
 *  - Beyond that, requests go while the mount has fewer than its
 *    capacity in flight (vfs_mount.share_reqs requests, share_bytes
 *    bytes, whichever the backend sets), less one request kept for a file
 *    that has none in flight: one arriving, or a waiting one whose last
 *    request is done.  Such a file's small request (FAIR_SMALL_DIV) goes
 *    past the bytes in flight, and such a file goes before a turn that
 *    cannot go while that turn's file has requests in flight (never past
 *    a file with none, which could then wait for ever).
 *  - The others wait in one queue per file, served by deficit round robin
 *    in bytes (quantum FAIR_QUANTUM times the file's weight / 100), so
 *    that each busy file gets its share of the capacity, whatever its
 *    request sizes.
 *
 * Only mounts whose backend states a capacity take part, and only while
 * their `qos.fair` option is not 0.
 */
#ifndef VFSD_FAIR_H
#define VFSD_FAIR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fair_waiter;
struct fair_flow;

/* A mount's scheduler; zeroed, then fair_init(). */
struct fair_sched {
	pthread_mutex_t lock;
	unsigned max_reqs;  /* requests in flight; 0: no bound */
	unsigned max_ahead; /* a lone reading-ahead flow's (fair_set_ahead) */
	uint64_t max_bytes; /* bytes in flight; 0: no bound */
	bool on;
	unsigned reqs;          /* in flight now */
	uint64_t bytes;         /* in flight now */
	struct fair_flow *ring; /* flows with waiters, in round-robin order */
	unsigned starved;       /* of them, those with nothing in flight */
	uint64_t waited;        /* requests that waited */
	uint64_t waited_ns;     /* their summed wait */
};

/* One open file's part (in struct router_file); zeroed is ready. */
struct fair_flow {
	unsigned in_flight;
	unsigned weight; /* 0: 100 */
	uint64_t deficit;
	struct fair_waiter *head, *tail;
	struct fair_flow *next, *prev; /* in the ring while it has waiters */
	bool in_ring;
	int64_t ahead_until; /* reads ahead until then (fair_enter_ahead) */
};

/* bytes a flow of weight 100 may send per round while others wait */
#define FAIR_QUANTUM   (128u << 10)
/* a request of at most share_bytes / FAIR_SMALL_DIV is small: a file
 * with nothing in flight sends it beyond the bytes in flight */
#define FAIR_SMALL_DIV 16

/* What `vfsctl stats` shows of a mount's scheduler. */
struct fair_view {
	bool on;
	unsigned max_reqs, reqs;
	uint64_t max_bytes, bytes;
	uint64_t waited, waited_ms;
};
void fair_snapshot(struct fair_sched *s, struct fair_view *v);

void fair_init(struct fair_sched *s, unsigned max_reqs, uint64_t max_bytes,
	       bool on);
void fair_destroy(struct fair_sched *s);

/* Wait until the request of `bytes` on flow f, whose weight is now
 * `weight` (0: 100), may go to the backend.  Returns whether it was
 * counted (fair_exit() must follow). */
bool fair_enter(struct fair_sched *s, struct fair_flow *f, uint64_t bytes,
		unsigned weight);
/*
 * fair_enter() for a read of flow f while f reads ahead (router_ra.c),
 * its read-ahead's and its reader's own.  While f is the only flow with
 * requests in flight or waiting, up to the scheduler's max_ahead of its
 * requests go at once, past the mount's capacity (which is set for a
 * busy server: a lone reader on a network with latency needs several
 * requests in flight); beyond, in arrival order.  With other flows busy,
 * as fair_enter().  fair_set_ahead() sets max_ahead (0, the default:
 * never past the capacity); the backend says what leaves a newcomer
 * room (vfs_mount.share_ahead).
 */
void fair_set_ahead(struct fair_sched *s, unsigned max);
bool fair_enter_ahead(struct fair_sched *s, struct fair_flow *f, uint64_t bytes,
		      unsigned weight);
/* The request fair_enter() counted is done. */
void fair_exit(struct fair_sched *s, struct fair_flow *f, uint64_t bytes);

#endif
