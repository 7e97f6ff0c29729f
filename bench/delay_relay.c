/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * delay_relay.c - a TCP relay that adds a fixed one-way delay, at wire speed,
 * for benchmarks on a kernel without netem.
 *
 *   delay_relay DELAY_US TARGET_PORT...
 *
 * For each TARGET_PORT it listens on a free port of 127.0.0.1 and forwards
 * every connection to 127.0.0.1:TARGET_PORT, both ways; each byte leaves
 * DELAY_US microseconds after it arrived (never before the bytes ahead of it:
 * TCP keeps order), so a round trip gains 2 * DELAY_US.  Prints
 * "TARGET_PORT LISTEN_PORT" per port, then "ready", on stdout; runs until
 * killed.
 *
 * The data never enters this process: each direction of a connection has a
 * pipe, splice(2) moves what the socket received into it and, once due, out
 * to the other socket (page references, not copies), so the relay costs the
 * clients it sits under little CPU.  The pipe is the window: a direction
 * holds at most PIPE_BYTES (or what the kernel grants), which at 1 ms is far
 * above what two cores move.
 * tests/integration/netlab.py's DelayRelay (Python, with jitter, for tests
 * between network namespaces) copies every chunk and caps a stream at a few
 * hundred MiB/s; this one is for throughput figures.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS  8
#define MAX_CONNS  64
#define PIPE_BYTES (16 << 20)
#define MAX_RECS   65536 /* arrivals held per direction */

struct rec {
	int64_t due_ns;
	size_t len;
};

/* One direction of a connection: src -> pipe -> dst. */
struct dir {
	int src, dst;
	int pipe[2];
	struct rec *recs; /* ring of arrivals, oldest at head */
	size_t head, count;
	size_t held; /* bytes in the pipe */
	size_t cap;  /* what the pipe holds (F_GETPIPE_SZ) */
	bool full;   /* the last splice in found no room: wait for dir_out */
	bool src_eof, dst_blocked, done;
	bool readable; /* poll said src has something (or an end) */
};

struct conn {
	bool used;
	int a, b; /* client, server */
	struct dir d[2];
};

static int64_t delay_ns;
static struct conn conns[MAX_CONNS];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int listen_on(uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void sock_setup(int fd)
{
	int one = 1;

	/* the relay must not hold small packets back on top of the delay */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int dir_init(struct dir *d, int src, int dst)
{
	memset(d, 0, sizeof(*d));
	d->src = src;
	d->dst = dst;
	d->recs = calloc(MAX_RECS, sizeof(*d->recs));
	if (!d->recs || pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(d->recs);
		return -1;
	}
	/* root may exceed /proc/sys/fs/pipe-max-size; fall back quietly */
	if (fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_BYTES) < 0)
		fcntl(d->pipe[1], F_SETPIPE_SZ, 1 << 20);
	/* the window is what the pipe really holds */
	d->cap = (size_t)fcntl(d->pipe[1], F_GETPIPE_SZ);
	return 0;
}

static void dir_free(struct dir *d)
{
	close(d->pipe[0]);
	close(d->pipe[1]);
	free(d->recs);
}

static void conn_close(struct conn *c)
{
	dir_free(&c->d[0]);
	dir_free(&c->d[1]);
	close(c->a);
	close(c->b);
	c->used = false;
}

static void accept_one(int lfd, uint16_t target)
{
	int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), b;
	struct conn *c = NULL;

	if (a < 0)
		return;
	for (int i = 0; i < MAX_CONNS; i++)
		if (!conns[i].used) {
			c = &conns[i];
			break;
		}
	if (!c)
		fprintf(stderr,
			"delay_relay: more than %d connections: one refused\n",
			MAX_CONNS);
	b = c ? connect_to(target) : -1;
	if (b < 0) {
		close(a);
		return;
	}
	sock_setup(a);
	sock_setup(b);
	if (dir_init(&c->d[0], a, b) < 0) {
		close(a);
		close(b);
		return;
	}
	if (dir_init(&c->d[1], b, a) < 0) {
		dir_free(&c->d[0]);
		close(a);
		close(b);
		return;
	}
	c->a = a;
	c->b = b;
	c->used = true;
}

/* Take what src has into the pipe, stamped with its due time.  -1: the
 * connection failed. */
static int dir_in(struct dir *d)
{
	bool took = false;

	while (!d->src_eof && d->held < d->cap && d->count < MAX_RECS) {
		ssize_t n =
			splice(d->src, NULL, d->pipe[1], NULL, d->cap - d->held,
			       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);

		if (n == 0) {
			d->src_eof = true;
			break;
		}
		if (n < 0) {
			/* the socket is drained, or the pipe has no room (small
			 * pieces fill its slots before its bytes): a readable
			 * socket that gave nothing means the latter, and
			 * polling it again would spin until dir_out makes room
			 */
			if (errno == EAGAIN && !took && d->held)
				d->full = true;
			if (errno == EAGAIN)
				break;
			return errno == EINTR ? 0 : -1;
		}
		took = true;
		d->recs[(d->head + d->count) % MAX_RECS] =
			(struct rec){now_ns() + delay_ns, (size_t)n};
		d->count++;
		d->held += (size_t)n;
	}
	return 0;
}

/* Send what is due.  -1: the connection failed. */
static int dir_out(struct dir *d, int64_t now)
{
	d->dst_blocked = false;
	while (d->count && d->recs[d->head].due_ns <= now) {
		struct rec *r = &d->recs[d->head];
		ssize_t n = splice(d->pipe[0], NULL, d->dst, NULL, r->len,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);

		if (n < 0) {
			if (errno == EAGAIN) {
				d->dst_blocked = true;
				return 0;
			}
			return errno == EINTR ? 0 : -1;
		}
		r->len -= (size_t)n;
		d->held -= (size_t)n;
		d->full = false;
		if (!r->len) {
			d->head = (d->head + 1) % MAX_RECS;
			d->count--;
		}
	}
	if (d->src_eof && !d->count && !d->done) {
		shutdown(d->dst, SHUT_WR);
		d->done = true;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int lfd[MAX_PORTS];
	uint16_t target[MAX_PORTS], lport;
	int nports = argc - 2;

	if (argc < 3 || nports > MAX_PORTS) {
		fprintf(stderr,
			"usage: delay_relay DELAY_US TARGET_PORT... "
			"(at most %d ports)\n",
			MAX_PORTS);
		return 2;
	}
	char *end;
	long long us = strtoll(argv[1], &end, 10);

	if (!*argv[1] || *end || us < 0 || us > 10000000) {
		fprintf(stderr,
			"delay_relay: bad delay '%s' (microseconds, at "
			"most 10 s)\n",
			argv[1]);
		return 2;
	}
	delay_ns = us * 1000;
	signal(SIGPIPE, SIG_IGN);
	/* the benchmark's shell may die without stopping us */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	/* the default 50 us of timer slack would be added to every delay */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	for (int i = 0; i < nports; i++) {
		target[i] = (uint16_t)atoi(argv[i + 2]);
		lfd[i] = listen_on(&lport);
		if (lfd[i] < 0 || !target[i]) {
			fprintf(stderr,
				"delay_relay: listening for port %s: %s\n",
				argv[i + 2], strerror(errno));
			return 1;
		}
		printf("%u %u\n", target[i], lport);
	}
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		struct pollfd pfd[MAX_PORTS + 4 * MAX_CONNS];
		struct dir *owner[MAX_PORTS + 4 * MAX_CONNS];
		int n = 0;
		int64_t now = now_ns(), wait = -1;

		for (int i = 0; i < nports; i++) {
			pfd[n] = (struct pollfd){lfd[i], POLLIN, 0};
			owner[n++] = NULL;
		}
		for (int i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &conns[i];

			if (!c->used)
				continue;
			for (int k = 0; k < 2; k++) {
				struct dir *d = &c->d[k];

				if (!d->src_eof && !d->full &&
				    d->held < d->cap && d->count < MAX_RECS) {
					pfd[n] = (struct pollfd){d->src, POLLIN,
								 0};
					owner[n++] = d;
					d->readable = false;
				}
				if (d->dst_blocked) {
					pfd[n] = (struct pollfd){d->dst,
								 POLLOUT, 0};
					owner[n++] =
						NULL; /* dir_out retries it */
				} else if (d->count) {
					int64_t w =
						d->recs[d->head].due_ns - now;

					if (w < 0)
						w = 0;
					if (wait < 0 || w < wait)
						wait = w;
				}
			}
		}
		/* ppoll: poll's millisecond grain would add up to 1 ms to
		 * each delay */
		struct timespec ts = {wait / 1000000000, wait % 1000000000};

		if (ppoll(pfd, (nfds_t)n, wait < 0 ? NULL : &ts, NULL) < 0 &&
		    errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++)
			if (owner[i] && pfd[i].revents)
				owner[i]->readable = true;
		for (int i = 0; i < nports; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(lfd[i], target[i]);
		now = now_ns();
		for (int i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &conns[i];

			if (!c->used)
				continue;
			for (int k = 0; k < 2; k++)
				if ((c->d[k].readable &&
				     dir_in(&c->d[k]) < 0) ||
				    dir_out(&c->d[k], now) < 0) {
					conn_close(c);
					break;
				}
			if (!c->used)
				continue;
			if (c->d[0].done && c->d[1].done) {
				conn_close(c);
				continue;
			}
		}
	}
}
