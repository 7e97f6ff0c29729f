/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * session.c - one SSH session of the SFTP backend: TCP connect with a
 * timeout, handshake, host key check (known_hosts.c), authentication
 * (auth.c), the engine's channel on the SFTP subsystem (chan.c) and the
 * server's extensions and limits; its allocation arena; closing it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
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

/* The server's VERSION names an extension: the features a mount uses. */
static void sftp_feature(void *ctx, const char *name, size_t nlen,
			 const char *data, size_t dlen)
{
	static const struct {
		const char *name;
		size_t off;
	} known[] = {
		{"fsync@openssh.com", offsetof(struct sftp_features, fsync)},
		{"statvfs@openssh.com",
		 offsetof(struct sftp_features, statvfs)},
		{"hardlink@openssh.com",
		 offsetof(struct sftp_features, hardlink)},
		{"lsetstat@openssh.com",
		 offsetof(struct sftp_features, lsetstat)},
		{"posix-rename@openssh.com",
		 offsetof(struct sftp_features, posix_rename)},
		{"copy-data", offsetof(struct sftp_features, copy_data)},
		{"limits@openssh.com", offsetof(struct sftp_features, limits)},
	};
	struct sftp_features *f = ctx;

	(void)data;
	(void)dlen;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == nlen &&
		    memcmp(known[i].name, name, nlen) == 0)
			*(bool *)((char *)f + known[i].off) = true;
}

/* Requests as large as the server says it takes (limits@openssh.com),
 * capped by what a packet of ours may hold. */
static int sftp_sess_limits(struct sftp_mount *sm, struct sftp_sess *s,
			    const struct sftp_features *feat)
{
	const size_t cap = SFTP_MAX_PACKET - 1024;
	struct sftp_conn c = {.sm = sm, .s = s, .chan = s->chan, .idx = s->idx};
	struct sftp_chan_limits cl;
	struct sftp_limits l;
	int rc;

	if (!feat->limits)
		return 0;
	c.deadline = vfs_mono_s() + sm->cfg.timeout_ms / 1000.0;
	rc = sftp_r_limits(&c, &l);
	if (rc)
		return c.broken ? rc : 0; /* refused: the safe sizes stay */
	sftp_chan_limits(s->chan, &cl);
	if (l.max_read)
		cl.max_read = l.max_read < cap ? (size_t)l.max_read : cap;
	if (l.max_write)
		cl.max_write = l.max_write < cap ? (size_t)l.max_write : cap;
	cl.max_handles = (size_t)l.max_open_handles;
	sftp_chan_set_limits(s->chan, &cl);
	return 0;
}

int sftp_sess_open(struct sftp_mount *sm, struct sftp_sess *c, unsigned how,
		   struct vfs_error *err)
{
	struct sftp_features feat = {0};
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	char msg[200];
	int rc;

	c->failed = false;
	c->chan = NULL;
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
		char *m = NULL;

		libssh2_session_last_error(c->ssh, &m, NULL, 0);
		rc = vfs_error_set(
			err,
			rc == LIBSSH2_ERROR_TIMEOUT ? ETIMEDOUT : ECONNABORTED,
			"%s: SSH handshake with %s port %d failed: %s",
			sm->cfg.display, sm->cfg.host, sm->cfg.port,
			m ? m : "unknown error");
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

	if (how & SFTP_SESS_BARE)
		return 0;
	/* no reply wanted: the engine's loop sends them and collects
	 * nothing */
	if (sm->cfg.keepalive_s)
		libssh2_keepalive_config(c->ssh, 0, sm->cfg.keepalive_s);
	rc = sftp_chan_start(c->ssh, c->sock, sm->cfg.keepalive_s, sftp_feature,
			     &feat, &c->chan, msg, sizeof(msg));
	if (rc < 0) {
		rc = vfs_error_set(err, rc == -EPROTO ? EPROTO : -rc, "%s: %s",
				   sm->cfg.display, msg);
		goto err_session;
	}
	rc = sftp_sess_limits(sm, c, &feat);
	if (rc < 0) {
		rc = vfs_error_set(err, -rc,
				   "%s: connection lost while starting SFTP",
				   sm->cfg.display);
		goto err_session;
	}
	if (how & SFTP_SESS_FIRST)
		sm->feat = feat;
	return 0;

err_session:
	if (kh)
		libssh2_knownhost_free(kh);
	sftp_sess_close(c, false);
	return rc;
err_close:
	close(c->sock);
	c->sock = -1;
	return rc;
}

void sftp_sess_close(struct sftp_sess *c, bool graceful)
{
	if (c->sock >= 0 && !graceful) {
		/* An abortive close: what our kernel still holds of a
		 * write that failed must not reach the server once the
		 * network heals, where it would land after the writes that
		 * followed on another connection.  SO_LINGER 0 drops it and
		 * resets.  What the server already received is not ours to
		 * stop: sshd hands it on, and OpenSSH's sftp-server finishes
		 * the request it is running before its reply fails and it
		 * exits. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(c->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		/* makes every pending libssh2 read/write fail at once */
		shutdown(c->sock, SHUT_RDWR);
	}
	/* the loop ends first: the session is ours again after this */
	sftp_chan_stop(c->chan);
	c->chan = NULL;
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
}
