/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wire.c - NFSv4 WRITEs on a TCP connection of our own.
 *
 * libnfs 4.0.0 encodes every COMPOUND into a fixed 4 KiB buffer, so it
 * cannot send a WRITE of 4 KiB or more (docs/nfs.md).  A wire is a second
 * connection to the same server and port as one libnfs context, on which
 * we encode PUTFH + WRITE ourselves and send the data from the caller's
 * buffer by sendmsg(): no copy, and WRITEs of the server's full wtmax.
 *
 * A wire is used exactly like its context: by the one thread that has the
 * context checked out (a pool slot) or owns it (the write-behind sender).
 * Its requests complete through the same nfsb_wait as the context's, and
 * it dies with its context (nfsb_wire_reset: the socket is reset, so that
 * no queued byte of a WRITE leaves after its caller gave it up, and every
 * request still pending fails as a transport error), in the caller's frame
 * that the requests point into.
 *
 * NFSv4.0 ties no state to a connection: a WRITE with the anonymous
 * stateid needs no SETCLIENTID, and its verifier is the server's, whatever
 * connection carried it.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "backends/nfs/internal.h"

#define NFSB_WIRE_PROG        100003 /* NFS */
#define NFSB_WIRE_VERS        4
#define NFSB_WIRE_COMPOUND    1
#define NFSB_WIRE_MACHINE     "vfsd" /* AUTH_SYS machinename */
#define NFSB_WIRE_RECMAX      4096   /* a WRITE reply is about 100 bytes */
#define NFSB_WIRE_RXBUF       16384
#define NFSB_WIRE_IOV         64 /* iovecs per writev() */
#define NFSB_WIRE_LOWPORT     1023
#define NFSB_WIRE_LOWPORT_MIN 600
/* record mark, call header, AUTH_SYS with NFSB_WIRE_MACHINE, AUTH_NONE
 * verifier, COMPOUND4args head, PUTFH of the longest handle, WRITE head */
#define NFSB_WIRE_HDR                                                          \
	(4 + 24 + (8 + 4 + 4 + 4 + 4 + 4 + 4) + 8 + 12 + (8 + NFS4_FHSIZE) +   \
	 (4 + 16 + 8 + 4 + 4))

struct nfsb_wreq {
	struct nfsb_wreq *next;
	struct nfsb_chunk *c;
	uint32_t xid;
	int iovcnt;
	struct iovec iov[3]; /* header, data, padding; what is left of
			      * them while being written */
	char hdr[NFSB_WIRE_HDR];
};

struct nfsb_wire {
	int fd; /* -1: not connected */
	uint32_t xid;
	uint32_t uid, gid;
	/* in order; the first may be partly written */
	struct nfsb_wreq *sendq, **sendq_tail;
	struct nfsb_wreq *flight; /* written, awaiting their replies */
	unsigned pending;         /* on sendq and flight */
	/* the reply being read: record marks, then the record */
	unsigned char mark[4];
	size_t mark_got;
	size_t frag_left;
	bool frag_last;
	unsigned char rec[NFSB_WIRE_RECMAX];
	size_t rec_len;
};

struct nfsb_wire *nfsb_wire_new(uint32_t uid, uint32_t gid)
{
	struct nfsb_wire *wi = calloc(1, sizeof(*wi));

	if (!wi)
		return NULL;
	wi->fd = -1;
	wi->uid = uid;
	wi->gid = gid;
	wi->sendq_tail = &wi->sendq;
	/* a fresh xid space per wire, so that a reply meant for a reset
	 * connection's request is unlikely to match a new one's */
	wi->xid = (uint32_t)(vfs_mono_ns() ^ (uintptr_t)wi);
	return wi;
}

void nfsb_wire_free(struct nfsb_wire *wi)
{
	if (!wi)
		return;
	nfsb_wire_reset(wi);
	free(wi);
}

static void nfsb_wire_done(struct nfsb_wire *wi, struct nfsb_wreq *q, int err)
{
	wi->pending--;
	nfsb_wait_done(q->c->w, err);
	free(q);
}

void nfsb_wire_reset(struct nfsb_wire *wi)
{
	struct nfsb_wreq *lists[2] = {wi->sendq, wi->flight};

	if (wi->fd >= 0) {
		/* RST, not FIN: what our kernel still holds of a WRITE must
		 * not reach the server after this */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		(void)setsockopt(wi->fd, SOL_SOCKET, SO_LINGER, &lg,
				 sizeof(lg));
		close(wi->fd);
		wi->fd = -1;
	}
	wi->sendq = wi->flight = NULL;
	wi->sendq_tail = &wi->sendq;
	for (int i = 0; i < 2; i++)
		while (lists[i]) {
			struct nfsb_wreq *q = lists[i];

			lists[i] = q->next;
			nfsb_wire_done(wi, q, -EFAULT); /* transport */
		}
	wi->mark_got = 0;
	wi->frag_left = 0;
	wi->frag_last = false;
	wi->rec_len = 0;
}

bool nfsb_wire_busy(const struct nfsb_wire *wi)
{
	return wi && wi->pending > 0;
}

int nfsb_wire_fd(const struct nfsb_wire *wi)
{
	return wi->fd;
}

short nfsb_wire_events(const struct nfsb_wire *wi)
{
	return (short)(POLLIN | (wi->sendq ? POLLOUT : 0));
}

/* ---- Connecting ---------------------------------------------------------- */

/* A source port below 1024, as the libnfs context has (servers that
 * insist on one, knfsd's "secure", refuse others). */
static int nfsb_wire_bind_low(int fd, const struct sockaddr_storage *local)
{
	for (int port = NFSB_WIRE_LOWPORT; port >= NFSB_WIRE_LOWPORT_MIN;
	     port--) {
		struct sockaddr_storage a = *local;
		socklen_t len;

		if (a.ss_family == AF_INET6) {
			((struct sockaddr_in6 *)&a)->sin6_port =
				htons((uint16_t)port);
			len = sizeof(struct sockaddr_in6);
		} else {
			((struct sockaddr_in *)&a)->sin_port =
				htons((uint16_t)port);
			len = sizeof(struct sockaddr_in);
		}
		if (bind(fd, (struct sockaddr *)&a, len) == 0)
			return 0;
		if (errno != EADDRINUSE)
			return -errno;
	}
	return -EADDRINUSE;
}

static uint16_t nfsb_wire_port(const struct sockaddr_storage *a)
{
	return ntohs(a->ss_family == AF_INET6
			     ? ((const struct sockaddr_in6 *)a)->sin6_port
			     : ((const struct sockaddr_in *)a)->sin_port);
}

/* Connect to where the context `ctx_fd` is connected, by `deadline`. */
static int nfsb_wire_connect(struct nfsb_wire *wi, int ctx_fd, double deadline)
{
	struct sockaddr_storage peer, local;
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	int fd, one = 1, ret;

	if (ctx_fd < 0 || getpeername(ctx_fd, (struct sockaddr *)&peer, &plen))
		return -ENOTCONN;
	if (getsockname(ctx_fd, (struct sockaddr *)&local, &llen))
		return -ENOTCONN;
	if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	fd = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* none free (many mounts on one host): an ordinary port, which
	 * most servers take; one that insists denies the call */
	if (nfsb_wire_port(&local) < 1024 &&
	    (ret = nfsb_wire_bind_low(fd, &local)) < 0)
		log_debug("NFSv4 write connection: no port below 1024: %s",
			  strerror(-ret));
	if (connect(fd, (struct sockaddr *)&peer, plen) < 0) {
		int soerr = 0;
		socklen_t slen = sizeof(soerr);

		if (errno != EINPROGRESS) {
			ret = -errno;
			goto err_close;
		}
		for (;;) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			double left = deadline - vfs_mono_s();
			int n;

			if (left <= 0) {
				ret = -ETIMEDOUT;
				goto err_close;
			}
			n = poll(&pfd, 1, (int)(left * 1000) + 1);
			if (n > 0)
				break;
			if (n < 0 && errno != EINTR) {
				ret = -errno;
				goto err_close;
			}
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
			soerr = errno;
		if (soerr) {
			ret = -soerr;
			goto err_close;
		}
	}
	wi->fd = fd;
	return 0;

err_close:
	close(fd);
	return ret;
}

/* ---- Sending ------------------------------------------------------------- */

static unsigned char *nfsb_wire_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	return p + 4;
}

static unsigned char *nfsb_wire_opaque(unsigned char *p, const void *data,
				       size_t len)
{
	size_t pad = (4 - len % 4) % 4;

	p = nfsb_wire_u32(p, (uint32_t)len);
	memcpy(p, data, len);
	memset(p + len, 0, pad);
	return p + len + pad;
}

/* Everything of the record before the data: the record mark (one
 * fragment), the RPC call and the COMPOUND up to WRITE's data length. */
static size_t nfsb_wire_encode(const struct nfsb_wire *wi, struct nfsb_wreq *q,
			       const struct nfsb_file *nf, int stable)
{
	const struct nfsb_chunk *c = q->c;
	unsigned char *h = (unsigned char *)q->hdr, *p = h + 4;
	unsigned char *cred;
	size_t pad = (4 - c->want % 4) % 4, len;

	p = nfsb_wire_u32(p, q->xid);
	p = nfsb_wire_u32(p, 0); /* CALL */
	p = nfsb_wire_u32(p, 2); /* RPC version */
	p = nfsb_wire_u32(p, NFSB_WIRE_PROG);
	p = nfsb_wire_u32(p, NFSB_WIRE_VERS);
	p = nfsb_wire_u32(p, NFSB_WIRE_COMPOUND);
	p = nfsb_wire_u32(p, 1); /* AUTH_SYS */
	cred = p;
	p += 4;                  /* its length, below */
	p = nfsb_wire_u32(p, 0); /* stamp */
	p = nfsb_wire_opaque(p, NFSB_WIRE_MACHINE, strlen(NFSB_WIRE_MACHINE));
	p = nfsb_wire_u32(p, wi->uid);
	p = nfsb_wire_u32(p, wi->gid);
	p = nfsb_wire_u32(p, 0); /* no supplementary groups */
	nfsb_wire_u32(cred, (uint32_t)(p - cred - 4));
	p = nfsb_wire_u32(p, 0); /* verifier: AUTH_NONE */
	p = nfsb_wire_u32(p, 0);
	p = nfsb_wire_u32(p, 0); /* tag: empty */
	p = nfsb_wire_u32(p, 0); /* minor version 0 */
	p = nfsb_wire_u32(p, 2); /* PUTFH, WRITE */
	p = nfsb_wire_u32(p, OP_PUTFH);
	p = nfsb_wire_opaque(p, nf->fh4, nf->fh4_len);
	p = nfsb_wire_u32(p, OP_WRITE);
	memset(p, 0, 16); /* the anonymous stateid: no OPEN state is kept */
	p += 16;
	p = nfsb_wire_u32(p, (uint32_t)((uint64_t)c->off >> 32));
	p = nfsb_wire_u32(p, (uint32_t)c->off);
	p = nfsb_wire_u32(p, (uint32_t)stable);
	p = nfsb_wire_u32(p, (uint32_t)c->want);
	len = (size_t)(p - h);
	nfsb_wire_u32(h, 0x80000000u | (uint32_t)(len - 4 + c->want + pad));
	return len;
}

/* Write what the socket takes now.  0, or -errno if the socket failed. */
static int nfsb_wire_flush(struct nfsb_wire *wi)
{
	while (wi->sendq) {
		struct iovec iov[NFSB_WIRE_IOV];
		int n = 0;
		ssize_t w;

		for (struct nfsb_wreq *q = wi->sendq;
		     q && n + 3 <= NFSB_WIRE_IOV; q = q->next)
			for (int i = 0; i < q->iovcnt; i++)
				if (q->iov[i].iov_len)
					iov[n++] = q->iov[i];
		w = sendmsg(wi->fd,
			    &(struct msghdr){.msg_iov = iov,
					     .msg_iovlen = (size_t)n},
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		/* retire what went out: whole requests to the flight */
		while (wi->sendq) {
			struct nfsb_wreq *q = wi->sendq;
			bool left = false;

			for (int i = 0; i < q->iovcnt; i++) {
				size_t take = (size_t)w < q->iov[i].iov_len
						      ? (size_t)w
						      : q->iov[i].iov_len;

				q->iov[i].iov_base =
					(char *)q->iov[i].iov_base + take;
				q->iov[i].iov_len -= take;
				w -= (ssize_t)take;
				left |= q->iov[i].iov_len > 0;
			}
			if (left)
				break;
			wi->sendq = q->next;
			if (!wi->sendq)
				wi->sendq_tail = &wi->sendq;
			q->next = wi->flight;
			wi->flight = q;
		}
	}
	return 0;
}

int nfsb_wire_write(struct nfsb_wire *wi, int ctx_fd, double deadline,
		    const struct nfsb_file *nf, struct nfsb_chunk *c,
		    int stable)
{
	static const char zeros[4];
	struct nfsb_wreq *q;
	int ret;

	if (wi->fd >= 0 && !wi->pending) {
		/* idle: the server may have closed it meanwhile (a restart,
		 * an idle timeout); find out now rather than by a failed
		 * request */
		char b;

		if (recv(wi->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK))
			nfsb_wire_reset(wi);
	}
	if (wi->fd < 0) {
		ret = nfsb_wire_connect(wi, ctx_fd, deadline);
		if (ret < 0) {
			log_debug("NFSv4 write connection: %s", strerror(-ret));
			return -1;
		}
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return -1;
	q->c = c;
	q->xid = wi->xid++;
	q->iov[0].iov_base = q->hdr;
	q->iov[0].iov_len = nfsb_wire_encode(wi, q, nf, stable);
	q->iov[1].iov_base = c->buf;
	q->iov[1].iov_len = c->want;
	q->iov[2].iov_base = (void *)zeros;
	q->iov[2].iov_len = (4 - c->want % 4) % 4;
	q->iovcnt = 3;
	*wi->sendq_tail = q;
	wi->sendq_tail = &q->next;
	wi->pending++;
	/* a failed socket shows in nfsb_wire_service() */
	(void)nfsb_wire_flush(wi);
	return 0;
}

/* ---- Replies ------------------------------------------------------------- */

struct nfsb_wire_in {
	const unsigned char *p;
	size_t left;
	bool bad; /* ran out */
};

static uint32_t nfsb_wire_get(struct nfsb_wire_in *in)
{
	uint32_t v;

	if (in->left < 4) {
		in->bad = true;
		in->left = 0;
		return 0;
	}
	v = (uint32_t)in->p[0] << 24 | (uint32_t)in->p[1] << 16 |
	    (uint32_t)in->p[2] << 8 | in->p[3];
	in->p += 4;
	in->left -= 4;
	return v;
}

static const unsigned char *nfsb_wire_skip(struct nfsb_wire_in *in, size_t n)
{
	const unsigned char *at = in->p;

	n = (n + 3) & ~(size_t)3;
	if (in->left < n) {
		in->bad = true;
		in->left = 0;
		return NULL;
	}
	in->p += n;
	in->left -= n;
	return at;
}

/*
 * Decode the reply to q: 0 with the WRITE's result noted, -errno from the
 * server (NFS4ERR_*), or -EFAULT when the RPC itself failed (denied, not
 * accepted, garbled), which the caller treats as a broken connection.
 */
static int nfsb_wire_reply(struct nfsb_wreq *q, struct nfsb_wire_in *in)
{
	uint32_t status, nres, count, committed;
	const unsigned char *verf;

	if (nfsb_wire_get(in) != 1) /* REPLY */
		return -EFAULT;
	if (nfsb_wire_get(in) != 0) /* MSG_ACCEPTED */
		return -EFAULT;
	nfsb_wire_get(in); /* verifier flavor */
	nfsb_wire_skip(in, nfsb_wire_get(in));
	if (nfsb_wire_get(in) != 0 || in->bad) /* SUCCESS */
		return -EFAULT;
	status = nfsb_wire_get(in);
	nfsb_wire_skip(in, nfsb_wire_get(in)); /* tag */
	nres = nfsb_wire_get(in);
	if (in->bad)
		return -EFAULT;
	if (status != NFS4_OK)
		return nfsstat4_to_errno((int)status);
	if (nres != 2 || nfsb_wire_get(in) != OP_PUTFH ||
	    nfsb_wire_get(in) != NFS4_OK || nfsb_wire_get(in) != OP_WRITE ||
	    nfsb_wire_get(in) != NFS4_OK)
		return -EIO;
	count = nfsb_wire_get(in);
	committed = nfsb_wire_get(in);
	verf = nfsb_wire_skip(in, NFS4_VERIFIER_SIZE);
	if (in->bad || !verf)
		return -EIO;
	nfsb_note_write(q->c, count, committed == UNSTABLE4,
			(const char *)verf);
	return 0;
}

/* A whole record is in wi->rec: complete its request.  A reply to no
 * request of ours (one the server sent twice, say) is dropped. */
static void nfsb_wire_record(struct nfsb_wire *wi)
{
	struct nfsb_wire_in in = {.p = wi->rec, .left = wi->rec_len};
	uint32_t xid = nfsb_wire_get(&in);
	struct nfsb_wreq **pp;

	if (in.bad)
		return;
	for (pp = &wi->flight; *pp; pp = &(*pp)->next)
		if ((*pp)->xid == xid) {
			struct nfsb_wreq *q = *pp;

			*pp = q->next;
			nfsb_wire_done(wi, q, nfsb_wire_reply(q, &in));
			return;
		}
	log_debug("NFSv4 write connection: a reply to no request (xid %u)",
		  xid);
}

/* Take in bytes of the stream: record marks and records.  -EPROTO for a
 * stream no server would send. */
static int nfsb_wire_take(struct nfsb_wire *wi, const unsigned char *p,
			  size_t n)
{
	while (n) {
		size_t take;

		if (wi->mark_got < 4) {
			wi->mark[wi->mark_got++] = *p++;
			n--;
			if (wi->mark_got < 4)
				continue;
			wi->frag_last = wi->mark[0] & 0x80;
			wi->frag_left = ((size_t)(wi->mark[0] & 0x7f) << 24) |
					((size_t)wi->mark[1] << 16) |
					((size_t)wi->mark[2] << 8) |
					wi->mark[3];
			if (wi->rec_len + wi->frag_left > sizeof(wi->rec))
				return -EPROTO;
		}
		take = n < wi->frag_left ? n : wi->frag_left;
		memcpy(wi->rec + wi->rec_len, p, take);
		wi->rec_len += take;
		wi->frag_left -= take;
		p += take;
		n -= take;
		if (wi->frag_left)
			continue;
		wi->mark_got = 0;
		if (wi->frag_last) {
			nfsb_wire_record(wi);
			wi->rec_len = 0;
		}
	}
	return 0;
}

int nfsb_wire_service(struct nfsb_wire *wi, short revents)
{
	int ret;

	if (wi->fd < 0)
		return -ENOTCONN;
	if (revents & (POLLERR | POLLNVAL))
		return -EIO;
	ret = nfsb_wire_flush(wi);
	if (ret < 0)
		return ret;
	for (;;) {
		unsigned char buf[NFSB_WIRE_RXBUF];
		ssize_t n = recv(wi->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -errno;
		}
		if (n == 0) /* the server closed it */
			return wi->pending ? -ECONNRESET : 0;
		ret = nfsb_wire_take(wi, buf, (size_t)n);
		if (ret < 0)
			return ret;
	}
	if (!wi->pending && (revents & POLLHUP))
		return -ECONNRESET;
	return 0;
}
