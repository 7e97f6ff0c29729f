/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chan.h - the SFTP engine: one SSH channel on the "sftp" subsystem of a
 * libssh2 session, driven by one thread at a time: its event-loop thread,
 * or a caller that finds the channel idle and drives it until its own
 * request is answered.  Any number of threads put requests on it
 * (proto.h packets) and wait for their replies, which are matched by
 * request id; requests from many threads and files are on the wire
 * together, up to a bounded window.
 *
 * The engine owns the session once sftp_chan_start() returns: no one
 * else may call libssh2 on it until sftp_chan_stop().  It writes requests as
 * the socket takes them (small ones gathered into one SSH packet, a
 * WRITE's data straight from the caller's buffer), and reads replies as
 * they come (a READ's data straight into the caller's buffer).
 *
 * Failure: a transport error, a malformed reply, or a caller whose wait
 * passes the mount's timeout (sftp_chan_wait with `fatal`) fails the
 * channel: every request still on it completes with the error, and new
 * ones are refused with it.  A caller whose own, shorter deadline passes
 * (backends/callctx.h) abandons its request instead: the channel goes on,
 * the engine finishes sending it from a copy if it had begun, and drops
 * the reply.
 *
 * Lifetime of a request: sftp_req_new() gives the caller a reference;
 * sftp_chan_submit() takes one for the engine, dropped once the request
 * has completed.  Memory the caller lends (`data`, `rbuf`) is the
 * engine's until sftp_chan_wait() returns (completed or abandoned).
 */
#ifndef VFSD_BACKENDS_SFTP_CHAN_H
#define VFSD_BACKENDS_SFTP_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libssh2.h>

#include "backends/sftp/proto.h"

struct sftp_chan;
struct sftp_waiter;

struct sftp_req {
	/* Set by the caller before sftp_chan_submit(): */
	struct sftp_buf pkt; /* the request, its id left 0 (set at submit),
			      * finished with sftp_buf_end(b, data_len) */
	const void *data;    /* sent right after pkt (a WRITE's bytes) */
	size_t data_len;
	void *rbuf;  /* a DATA reply's bytes go here (a READ) */
	size_t rcap; /* ... at most this many: more is -EPROTO */
	/* Async: called by the thread driving the channel (the loop, or
	 * any caller waiting for its own request) once the request
	 * completed, without the engine's lock; NULL: a thread waits for
	 * it.  Must not block, take locks a caller may hold while it
	 * waits, or call into the channel. */
	void (*done)(struct sftp_req *r);
	void *priv;
	/* A miss of the caller's own deadline must not let the request
	 * leave later (a write under a lock's lease): not yet written, it
	 * is dropped (by the driver at its send_by time, or when its
	 * caller gives it up); written in part or whole, the channel
	 * fails with -ECANCELED (the socket is then reset, so that what
	 * our kernel still holds never leaves) instead of the request
	 * being abandoned.  What the server already received it may still
	 * apply (docs/locking.md, fault model). */
	bool cancel_on_miss;
	/* vfs_mono_s() past which no byte of the request may be written (0:
	 * none).  The driver checks it under the lock as it takes the
	 * request from the send queue onto the wire, and completes a late
	 * one with -ETIMEDOUT instead, unsent: the caller's deadline is
	 * otherwise only checked when the caller wakes from its wait,
	 * after the driver may already have written it.  A request begun
	 * in time is never cut short by it (a packet cut short would
	 * corrupt the stream): cancel_on_miss says what its caller's
	 * deadline means then. */
	double send_by;

	/* Set by the engine once completed: */
	int err;       /* 0: a reply is in type/body/rlen; -errno: none */
	uint8_t type;  /* the reply's packet type */
	uint8_t *body; /* reply after its type byte (id first), owned by
			* the request; NULL for a DATA reply into rbuf */
	size_t body_len;
	size_t rlen; /* DATA into rbuf: bytes placed there */

	/* The engine's (protected by the channel's lock): */
	int refs;
	uint32_t id;
	bool completed, abandoned;
	bool wired;       /* written (or being written) to the channel */
	uint64_t rx_mark; /* the channel's bytes read when submitted */
	struct sftp_waiter *waiter;
	uint8_t *own_data;      /* an abandoned request's unsent data, copied */
	struct sftp_req *next;  /* submission or send order */
	struct sftp_req *hnext; /* in-flight table */
};

/* Ranges the engine keeps to, from limits@openssh.com when the server
 * sends it, else safe defaults. */
struct sftp_chan_limits {
	size_t max_read;    /* bytes of one READ */
	size_t max_write;   /* bytes of one WRITE's data */
	size_t max_handles; /* 0: no limit told */
};

/* A new request with one reference (the caller's), or NULL. */
struct sftp_req *sftp_req_new(void);
/* Drop a reference; the last frees pkt, body and the request. */
void sftp_req_put(struct sftp_chan *ch, struct sftp_req *r);

/*
 * Open the channel on ssh (blocking, under the session's timeout), start
 * the subsystem, exchange INIT/VERSION, hand the session to the loop
 * thread.  ssh and sock stay the caller's to free after sftp_chan_stop().
 * `ext` is called for each extension the server names (for features).
 * 0 and *out, or -errno with msg saying why.
 */
int sftp_chan_start(LIBSSH2_SESSION *ssh, int sock, int keepalive_s,
		    void (*ext)(void *ctx, const char *name, size_t nlen,
				const char *data, size_t dlen),
		    void *ctx, struct sftp_chan **out, char *msg,
		    size_t msglen);
/*
 * Fail every request still on the channel with -ESHUTDOWN, stop the loop
 * thread and free the channel (the SSH channel too, if it was left in a
 * state to close).  The session is the caller's again afterwards.
 */
void sftp_chan_stop(struct sftp_chan *ch);

/* Set the limits the server told (after limits@openssh.com). */
void sftp_chan_set_limits(struct sftp_chan *ch,
			  const struct sftp_chan_limits *l);
void sftp_chan_limits(struct sftp_chan *ch, struct sftp_chan_limits *out);

/*
 * Put r on the channel.  Its id is set and written into pkt.  0, or the
 * channel's error (r is not taken; the caller still holds its reference).
 */
int sftp_chan_submit(struct sftp_chan *ch, struct sftp_req *r);
/*
 * Wait until r completed or `deadline` (vfs_mono_s) passes.  At the
 * deadline: with `fatal`, if the server sent nothing since r was
 * submitted, the channel fails with -ETIMEDOUT (the server did not answer
 * within the mount's timeout).  Without `fatal`, or if the server did
 * answer others meanwhile (r queued behind them on a slow link), r is
 * abandoned and the call returns -ETIMEDOUT; a request with data is then
 * handled as cancel_on_miss (dropped if not yet sent, else the channel
 * fails with -ECANCELED).  Returns r->err; sftp_chan_error() tells the
 * two -ETIMEDOUT apart.
 */
int sftp_chan_wait(struct sftp_chan *ch, struct sftp_req *r, double deadline,
		   bool fatal);
/* Fail the channel with err (< 0); requests on it complete with it. */
void sftp_chan_fail(struct sftp_chan *ch, int err);
/* The channel's error: 0 while it works. */
int sftp_chan_error(struct sftp_chan *ch);

/* Requests on the wire or queued (for picking the least loaded). */
unsigned sftp_chan_inflight(struct sftp_chan *ch);

#endif /* VFSD_BACKENDS_SFTP_CHAN_H */
