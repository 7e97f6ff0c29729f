/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * session.c - one SSH session of the SFTP backend: TCP connect with a
 * timeout, handshake, host key check (known_hosts.c), authentication
 * (auth.c), the SFTP subsystem; its allocation arena; closing it, and
 * closing handles without waiting for the answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/sftp/internal.h"
#include "lib/log.h"

/* ---- Per-session allocation arena ----------------------------------- */

struct sftp_arena_hdr {
	struct sftp_arena_hdr *prev, *next;
} __attribute__((aligned(16)));

static void sftp_arena_link(struct sftp_arena *a, struct sftp_arena_hdr *h)
{
	h->prev = NULL;
	h->next = a->head;
	if (a->head)
		a->head->prev = h;
	a->head = h;
	a->count++;
}

static void sftp_arena_unlink(struct sftp_arena *a, struct sftp_arena_hdr *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		a->head = h->next;
	if (h->next)
		h->next->prev = h->prev;
	a->count--;
}

LIBSSH2_ALLOC_FUNC(sftp_arena_alloc)
{
	struct sftp_arena *a = *abstract;
	struct sftp_arena_hdr *h = malloc(sizeof(*h) + count);

	if (!h)
		return NULL;
	sftp_arena_link(a, h);
	return h + 1;
}

static LIBSSH2_FREE_FUNC(sftp_arena_free)
{
	struct sftp_arena *a = *abstract;
	struct sftp_arena_hdr *h;

	if (!ptr)
		return;
	h = (struct sftp_arena_hdr *)ptr - 1;
	sftp_arena_unlink(a, h);
	free(h);
}

static LIBSSH2_REALLOC_FUNC(sftp_arena_realloc)
{
	struct sftp_arena *a = *abstract;
	struct sftp_arena_hdr *h, *grown;

	if (!ptr)
		return sftp_arena_alloc(count, abstract);
	h = (struct sftp_arena_hdr *)ptr - 1;
	sftp_arena_unlink(a, h);
	grown = realloc(h, sizeof(*h) + count);
	if (!grown) {
		sftp_arena_link(a, h);
		return NULL;
	}
	sftp_arena_link(a, grown);
	return grown + 1;
}

/* Free whatever a dead session left behind. */
static void sftp_arena_release(struct sftp_arena *a)
{
	size_t n = a->count;

	while (a->head) {
		struct sftp_arena_hdr *h = a->head;

		a->head = h->next;
		free(h);
	}
	a->count = 0;
	if (n)
		log_debug(
			"sftp: freed %zu allocations left by a closed session",
			n);
}

/* ---- Sessions ------------------------------------------------------- */

/* TCP connect bounded by timeout_ms; returns a blocking socket or -errno. */
static int sftp_tcp_connect(struct sftp_mount *sm, struct vfs_error *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	struct timespec deadline;
	char port[16];
	int rc, fd = -1, last = ECONNREFUSED;

	snprintf(port, sizeof(port), "%d", sm->cfg.port);
	rc = getaddrinfo(sm->cfg.host, port, &hints, &res);
	if (rc)
		return vfs_error_set(
			err, EHOSTUNREACH, "%s: cannot resolve %s: %s",
			sm->cfg.display, sm->cfg.host, gai_strerror(rc));
	vfs_ts_after_ms(&deadline, CLOCK_MONOTONIC, sm->cfg.timeout_ms);
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t len = sizeof(last);
		int one = 1;

		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			long ms;

			if (errno != EINPROGRESS) {
				last = errno;
				goto next;
			}
			pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
			ms = vfs_ts_ms_until(&deadline);
			rc = ms > 0 ? poll(&pfd, 1, (int)ms) : 0;
			if (rc <= 0) {
				last = rc == 0 ? ETIMEDOUT : errno;
				goto next;
			}
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &len) <
				    0 ||
			    last)
				goto next;
		}
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
			last = errno;
			goto next;
		}
		/* SFTP requests are small and latency-bound */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		freeaddrinfo(res);
		return fd;
	next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return vfs_error_set(err, last, "%s: cannot connect to %s port %d: %s",
			     sm->cfg.display, sm->cfg.host, sm->cfg.port,
			     strerror(last));
}

int sftp_conn_open(struct sftp_mount *sm, struct sftp_conn *c,
		   struct vfs_error *err)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	int rc;

	c->broken = false;
	c->arena.head = NULL;
	c->arena.count = 0;
	c->arena.password = NULL;
	c->sock = sftp_tcp_connect(sm, err);
	if (c->sock < 0)
		return c->sock;
	c->ssh = libssh2_session_init_ex(sftp_arena_alloc, sftp_arena_free,
					 sftp_arena_realloc, &c->arena);
	if (!c->ssh) {
		rc = vfs_error_set(err, ENOMEM, "out of memory");
		goto err_close;
	}
	libssh2_session_set_blocking(c->ssh, 1);
	libssh2_session_set_timeout(c->ssh, sm->cfg.timeout_ms);
	/* Only counter-mode ciphers (what OpenSSH still offers), fastest
	 * first with AES-NI; MACs with SHA extensions are cheap too.
	 * aes128-ctr comes with its keystream made in bulk where that is
	 * safe (ctr.c, which logs the outcome once). */
	sftp_ctr_engage();
	libssh2_session_method_pref(c->ssh, LIBSSH2_METHOD_CRYPT_CS,
				    "aes128-ctr,aes192-ctr,aes256-ctr");
	libssh2_session_method_pref(c->ssh, LIBSSH2_METHOD_CRYPT_SC,
				    "aes128-ctr,aes192-ctr,aes256-ctr");

	kh = libssh2_knownhost_init(c->ssh);
	if (!kh) {
		rc = vfs_error_set(err, ENOMEM, "out of memory");
		goto err_session;
	}
	rc = sftp_known_read(sm, kh, err);
	if (rc < 0)
		goto err_session;
	sftp_known_prefer(sm, c->ssh, kh);

	rc = libssh2_session_handshake(c->ssh, c->sock);
	if (rc) {
		char *msg = NULL;

		libssh2_session_last_error(c->ssh, &msg, NULL, 0);
		rc = vfs_error_set(
			err,
			rc == LIBSSH2_ERROR_TIMEOUT ? ETIMEDOUT : ECONNABORTED,
			"%s: SSH handshake with %s port %d failed: %s",
			sm->cfg.display, sm->cfg.host, sm->cfg.port,
			msg ? msg : "unknown error");
		goto err_session;
	}
	rc = sftp_known_check(sm, c->ssh, kh, err);
	if (rc < 0)
		goto err_session;
	libssh2_knownhost_free(kh);
	kh = NULL;

	rc = sftp_auth(sm, c, err);
	if (rc < 0)
		goto err_session;

	c->sftp = libssh2_sftp_init(c->ssh);
	if (!c->sftp) {
		bool transport;
		int e = sftp_libssh2_errno(libssh2_session_last_errno(c->ssh),
					   &transport);

		rc = transport ? vfs_error_set(err, -e,
					       "%s: connection lost while "
					       "starting SFTP",
					       sm->cfg.display)
			       : vfs_error_set(err, EPROTO,
					       "%s: the server refused the "
					       "SFTP subsystem",
					       sm->cfg.display);
		goto err_session;
	}
	/* no reply wanted: libssh2 1.10 would keep every unclaimed reply
	 * queued for the life of the session */
	if (sm->cfg.keepalive_s)
		libssh2_keepalive_config(c->ssh, 0, sm->cfg.keepalive_s);
	clock_gettime(CLOCK_MONOTONIC, &c->last_io);
	return 0;

err_session:
	if (kh)
		libssh2_knownhost_free(kh);
	sftp_conn_close(c, false);
	return rc;
err_close:
	close(c->sock);
	c->sock = -1;
	return rc;
}

void sftp_conn_close(struct sftp_conn *c, bool graceful)
{
	if (graceful)
		sftp_close_reap(c, true);
	if (c->sock >= 0 && !graceful) {
		/* An abortive close: what our kernel still holds of a
		 * write that failed must not reach the server once the
		 * network heals, where it would land after the writes that
		 * followed on another connection.  SO_LINGER 0 drops it and
		 * resets.  What the server already received is not ours to
		 * stop: sshd hands it on, and OpenSSH's sftp-server finishes
		 * the request it is running before its reply fails and it
		 * exits, so a piece of the failed write (libssh2 1.10 sends
		 * all of a call's pieces before the first ack) can still
		 * land after a later write of the same range. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(c->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		/* makes every pending libssh2 read/write fail at once */
		shutdown(c->sock, SHUT_RDWR);
	}
	if (c->sftp)
		libssh2_sftp_shutdown(c->sftp);
	if (c->ssh) {
		if (graceful)
			libssh2_session_disconnect(c->ssh, "unmount");
		libssh2_session_free(c->ssh);
	}
	sftp_arena_release(&c->arena);
	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
	c->ssh = NULL;
	c->sftp = NULL;
	c->nclosing = 0;
	c->broken = false;
	c->timed_out = false;
}

/* ---- Deferred closes ------------------------------------------------ */

/*
 * libssh2 keeps a close's progress in the handle itself, so several can
 * be outstanding; in non-blocking mode libssh2_sftp_close_handle() sends
 * FXP_CLOSE and returns EAGAIN while the answer is on its way.  A request
 * only partly written to the socket must be finished before anything
 * else is sent, so that case waits.
 */
int sftp_close_deferred(struct sftp_conn *c, LIBSSH2_SFTP_HANDLE *h)
{
	int rc;

	if (c->nclosing == SFTP_MAX_CLOSING)
		sftp_close_reap(c, true);
	if (c->broken)
		return -EIO;
	libssh2_session_set_blocking(c->ssh, 0);
	rc = libssh2_sftp_close_handle(h);
	if (rc == LIBSSH2_ERROR_EAGAIN &&
	    (libssh2_session_block_directions(c->ssh) &
	     LIBSSH2_SESSION_BLOCK_OUTBOUND)) {
		libssh2_session_set_blocking(c->ssh, 1);
		rc = libssh2_sftp_close_handle(h);
	}
	libssh2_session_set_blocking(c->ssh, 1);
	if (rc == LIBSSH2_ERROR_EAGAIN) {
		c->closing[c->nclosing++] = h;
		return 0;
	}
	return sftp_err(c, rc);
}

void sftp_close_reap(struct sftp_conn *c, bool wait)
{
	if (!c->nclosing || c->broken)
		return;
	libssh2_session_set_blocking(c->ssh, wait);
	while (c->nclosing && !c->broken) {
		int rc = libssh2_sftp_close_handle(c->closing[0]);

		if (rc == LIBSSH2_ERROR_EAGAIN) {
			if (!(libssh2_session_block_directions(c->ssh) &
			      LIBSSH2_SESSION_BLOCK_OUTBOUND))
				/* answers come in request order: the later
				 * ones are not here either */
				break;
			libssh2_session_set_blocking(c->ssh, 1);
			continue;
		}
		if (rc)
			/* the handle is freed either way; closing a plain
			 * file does not fail on OpenSSH in practice */
			log_debug("sftp: deferred close failed: %s",
				  strerror(-sftp_err(c, rc)));
		c->nclosing--;
		memmove(&c->closing[0], &c->closing[1],
			c->nclosing * sizeof(*c->closing));
	}
	libssh2_session_set_blocking(c->ssh, 1);
}
