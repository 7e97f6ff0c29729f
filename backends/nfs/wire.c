/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wire.c - NFS READs and WRITEs on a TCP connection of our own.
 *
 * libnfs 4.0.0 encodes every COMPOUND into a fixed 4 KiB buffer, so it
 * cannot send a WRITE of 4 KiB or more (docs/nfs.md).  A wire is a second
 * connection to the same server and port as one libnfs context, on which
 * we encode PUTFH + WRITE ourselves and send the data from the caller's
 * buffer by sendmsg(): no copy, and WRITEs of the server's full wtmax.
 * READs (v3, and PUTFH + READ for v4) come the other way without a copy:
 * a reply's data is received straight into the caller's buffer once its
 * header is parsed (libnfs decodes into a buffer of its own, which the
 * caller then copies: a measurable share of a sequential reader's CPU).
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
#define NFSB_WIRE_COMPOUND    1      /* NFSPROC4_COMPOUND */
#define NFSB_WIRE_READ3       6      /* NFSPROC3_READ */
#define NFSB_WIRE_FATTR3      84     /* an encoded fattr3 */
#define NFSB_WIRE_MACHINE     "vfsd" /* AUTH_SYS machinename */
#define NFSB_WIRE_RECMAX      4096   /* a WRITE reply is about 100 bytes */
#define NFSB_WIRE_RXBUF       16384
/* bytes one nfsb_wire_service() takes in at most: its caller's deadline is
 * checked between calls, and a server that sends faster than we parse
 * would otherwise keep it in there */
#define NFSB_WIRE_RXBUDGET    (4u << 20)
#define NFSB_WIRE_IOV         64 /* iovecs per writev() */
#define NFSB_WIRE_LOWPORT     1023
#define NFSB_WIRE_LOWPORT_MIN 600
/* record mark, call header, AUTH_SYS with NFSB_WIRE_MACHINE, AUTH_NONE
 * verifier, COMPOUND4args head, PUTFH of the longest handle, WRITE head
 * (the longest of the calls) */
#define NFSB_WIRE_HDR                                                          \
	(4 + 24 + (8 + 4 + 4 + 4 + 4 + 4 + 4) + 8 + 12 + (8 + NFS4_FHSIZE) +   \
	 (4 + 16 + 8 + 4 + 4))

enum nfsb_wkind { NFSB_W_WRITE4, NFSB_W_READ3, NFSB_W_READ4 };

struct nfsb_wreq {
	struct nfsb_wreq *next;
	struct nfsb_chunk *c;
	enum nfsb_wkind kind;
	uint32_t xid;
	/* a WRITE under its caller's deadline (backends/callctx.h): no
	 * byte of it leaves after that (0: none) */
	double send_by;
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
	size_t max_read;          /* the largest READ asked on it */
	/* the reply being read: record marks, then the record: its head
	 * into rec, a READ's data into its buffer (sink), the rest dropped */
	unsigned char mark[4];
	size_t mark_got;
	size_t frag_left;
	bool frag_last;
	enum { NFSB_RX_HEAD, NFSB_RX_DATA, NFSB_RX_SKIP } phase;
	struct nfsb_wreq *cur; /* the request it answers, once known */
	unsigned char rec[NFSB_WIRE_RECMAX];
	size_t rec_len;
	char *sink; /* NULL: data dropped (a reply longer than asked) */
	size_t sink_left;
	/* a READ reply's outcome, from its head */
	int rd_err;
	size_t rd_len;
	bool rd_eof;
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

static void nfsb_wire_rx_reset(struct nfsb_wire *wi)
{
	wi->mark_got = 0;
	wi->frag_left = 0;
	wi->frag_last = false;
	wi->phase = NFSB_RX_HEAD;
	wi->cur = NULL;
	wi->rec_len = 0;
	wi->sink = NULL;
	wi->sink_left = 0;
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
	wi->cur = NULL; /* completed below */
	for (int i = 0; i < 2; i++)
		while (lists[i]) {
			struct nfsb_wreq *q = lists[i];

			lists[i] = q->next;
			nfsb_wire_done(wi, q, -EFAULT); /* transport */
		}
	nfsb_wire_rx_reset(wi);
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
static int nfsb_wire_bind_low(int fd, sa_family_t family)
{
	for (int port = NFSB_WIRE_LOWPORT; port >= NFSB_WIRE_LOWPORT_MIN;
	     port--) {
		struct sockaddr_storage a;
		socklen_t len;

		memset(&a, 0, sizeof(a));
		a.ss_family = family;
		if (family == AF_INET6) {
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

/* Connect to `peer` by `deadline`, from a port below 1024 if `low`. */
static int nfsb_wire_connect(struct nfsb_wire *wi,
			     const struct sockaddr_storage *peer, bool low,
			     double deadline)
{
	socklen_t plen = peer->ss_family == AF_INET6
				 ? sizeof(struct sockaddr_in6)
				 : sizeof(struct sockaddr_in);
	int fd, one = 1, ret;

	if (peer->ss_family != AF_INET && peer->ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	fd = socket(peer->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* none free (many mounts on one host): an ordinary port, which
	 * most servers take; one that insists denies the call */
	if (low && (ret = nfsb_wire_bind_low(fd, peer->ss_family)) < 0)
		log_debug("NFS connection of our own: no port below 1024: %s",
			  strerror(-ret));
	if (connect(fd, (const struct sockaddr *)peer, plen) < 0) {
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

int nfsb_wire_peer(int ctx_fd, struct sockaddr_storage *peer, bool *low)
{
	struct sockaddr_storage local;
	socklen_t plen = sizeof(*peer), llen = sizeof(local);

	if (ctx_fd < 0 ||
	    getpeername(ctx_fd, (struct sockaddr *)peer, &plen) < 0 ||
	    getsockname(ctx_fd, (struct sockaddr *)&local, &llen) < 0)
		return -ENOTCONN;
	*low = nfsb_wire_port(&local) < 1024;
	return 0;
}

/* Connected, or connect now; an idle connection the server closed
 * meanwhile (a restart, an idle timeout) is found out here rather than by
 * a failed request.  0 or -errno. */
static int nfsb_wire_ready(struct nfsb_wire *wi,
			   const struct sockaddr_storage *peer, bool low,
			   double deadline)
{
	int ret;

	if (wi->fd >= 0 && !wi->pending) {
		char b;

		if (recv(wi->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK))
			nfsb_wire_reset(wi);
	}
	if (wi->fd >= 0)
		return 0;
	ret = nfsb_wire_connect(wi, peer, low, deadline);
	if (ret < 0)
		log_debug("NFS connection of our own: %s", strerror(-ret));
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

/* The record mark's place, then the RPC call's head up to its
 * arguments.  Returns where the arguments go. */
static unsigned char *nfsb_wire_call(const struct nfsb_wire *wi,
				     const struct nfsb_wreq *q, uint32_t vers,
				     uint32_t proc)
{
	unsigned char *p = (unsigned char *)q->hdr + 4, *cred;

	p = nfsb_wire_u32(p, q->xid);
	p = nfsb_wire_u32(p, 0); /* CALL */
	p = nfsb_wire_u32(p, 2); /* RPC version */
	p = nfsb_wire_u32(p, NFSB_WIRE_PROG);
	p = nfsb_wire_u32(p, vers);
	p = nfsb_wire_u32(p, proc);
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
	return nfsb_wire_u32(p, 0);
}

/* A COMPOUND of PUTFH(fh) and the head of one more operation `op`, with
 * the anonymous stateid: no OPEN state is kept (nfsb_do_open). */
static unsigned char *nfsb_wire_putfh_op(unsigned char *p, const char *fh,
					 u_int fh_len, uint32_t op)
{
	p = nfsb_wire_u32(p, 0); /* tag: empty */
	p = nfsb_wire_u32(p, 0); /* minor version 0 */
	p = nfsb_wire_u32(p, 2);
	p = nfsb_wire_u32(p, OP_PUTFH);
	p = nfsb_wire_opaque(p, fh, fh_len);
	p = nfsb_wire_u32(p, op);
	memset(p, 0, 16);
	return p + 16;
}

static unsigned char *nfsb_wire_u64(unsigned char *p, uint64_t v)
{
	return nfsb_wire_u32(nfsb_wire_u32(p, (uint32_t)(v >> 32)),
			     (uint32_t)v);
}

/* Encode q's call into q->hdr (everything but a WRITE's data and its
 * padding) and set up its iovecs. */
static void nfsb_wire_encode(const struct nfsb_wire *wi, struct nfsb_wreq *q,
			     const char *fh, u_int fh_len, int stable)
{
	static const char zeros[4];
	const struct nfsb_chunk *c = q->c;
	unsigned char *h = (unsigned char *)q->hdr, *p;
	size_t pad = 0, data = 0, len;

	switch (q->kind) {
	case NFSB_W_WRITE4:
		p = nfsb_wire_call(wi, q, 4, NFSB_WIRE_COMPOUND);
		p = nfsb_wire_putfh_op(p, fh, fh_len, OP_WRITE);
		p = nfsb_wire_u64(p, (uint64_t)c->off);
		p = nfsb_wire_u32(p, (uint32_t)stable);
		p = nfsb_wire_u32(p, (uint32_t)c->want);
		data = c->want;
		pad = (4 - data % 4) % 4;
		break;
	case NFSB_W_READ4:
		p = nfsb_wire_call(wi, q, 4, NFSB_WIRE_COMPOUND);
		p = nfsb_wire_putfh_op(p, fh, fh_len, OP_READ);
		p = nfsb_wire_u64(p, (uint64_t)c->off);
		p = nfsb_wire_u32(p, (uint32_t)c->want);
		break;
	case NFSB_W_READ3:
	default:
		p = nfsb_wire_call(wi, q, 3, NFSB_WIRE_READ3);
		p = nfsb_wire_opaque(p, fh, fh_len);
		p = nfsb_wire_u64(p, (uint64_t)c->off);
		p = nfsb_wire_u32(p, (uint32_t)c->want);
		break;
	}
	len = (size_t)(p - h);
	nfsb_wire_u32(h, 0x80000000u | (uint32_t)(len - 4 + data + pad));
	q->iov[0].iov_base = q->hdr;
	q->iov[0].iov_len = len;
	q->iov[1].iov_base = c->buf;
	q->iov[1].iov_len = data;
	q->iov[2].iov_base = (void *)zeros;
	q->iov[2].iov_len = pad;
	q->iovcnt = 3;
}

/*
 * Write what the socket takes now, up to the first request whose send-by
 * time has passed: its caller, past the same deadline, gives it up and
 * resets the connection before another byte of it leaves (without this
 * check a driver that wakes just after the deadline, before the caller's
 * wait ends, would send it; one partly sent is held too, so that the
 * server never has it whole).  0, or -errno if the socket failed.
 */
static int nfsb_wire_flush(struct nfsb_wire *wi)
{
	while (wi->sendq) {
		struct iovec iov[NFSB_WIRE_IOV];
		int n = 0;
		ssize_t w;

		for (struct nfsb_wreq *q = wi->sendq;
		     q && n + 3 <= NFSB_WIRE_IOV; q = q->next) {
			if (q->send_by > 0 && vfs_mono_s() >= q->send_by)
				break;
			for (int i = 0; i < q->iovcnt; i++)
				if (q->iov[i].iov_len)
					iov[n++] = q->iov[i];
		}
		if (!n)
			return 0;
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

			if (!w)
				break;
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

/* Queue q (its chunk set) and write what the socket takes now. */
static void nfsb_wire_queue(struct nfsb_wire *wi, struct nfsb_wreq *q)
{
	*wi->sendq_tail = q;
	wi->sendq_tail = &q->next;
	wi->pending++;
	/* a failed socket shows in nfsb_wire_service() */
	(void)nfsb_wire_flush(wi);
}

/*
 * No connection could be made for c's request (`err`: the server
 * restarting, gone, or the context's own socket dead): that is a transport
 * failure, like a connection lost with the request on it, so that the
 * caller destroys the context and tries once more on a fresh one, instead
 * of failing the call with EIO on a context that stays in the pool.  Not
 * so when the call's time ran out connecting: a retry would double the
 * wait (the request is not queued).
 */
static int nfsb_wire_unreachable(struct nfsb_chunk *c, int err)
{
	if (err == -ETIMEDOUT)
		return -1;
	nfsb_wait_done(c->w, -ENOTCONN);
	return 0;
}

int nfsb_wire_write(struct nfsb_wire *wi, int ctx_fd, double deadline,
		    double send_by, const struct nfsb_file *nf,
		    struct nfsb_chunk *c, int stable)
{
	struct sockaddr_storage peer;
	struct nfsb_wreq *q;
	bool low;
	int ret;

	if (wi->fd < 0 || !wi->pending) {
		ret = nfsb_wire_peer(ctx_fd, &peer, &low);
		if (ret == 0)
			ret = nfsb_wire_ready(wi, &peer, low, deadline);
		if (ret < 0)
			return nfsb_wire_unreachable(c, ret);
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return -1;
	q->c = c;
	q->kind = NFSB_W_WRITE4;
	q->send_by = send_by;
	q->xid = wi->xid++;
	nfsb_wire_encode(wi, q, nf->fh4, nf->fh4_len, stable);
	nfsb_wire_queue(wi, q);
	return 0;
}

int nfsb_wire_read(struct nfsb_wire *wi, const struct sockaddr_storage *peer,
		   bool low, double deadline, int version, const char *fh,
		   u_int fh_len, struct nfsb_chunk *c)
{
	struct nfsb_wreq *q;
	int ret = nfsb_wire_ready(wi, peer, low, deadline);

	if (ret < 0)
		return nfsb_wire_unreachable(c, ret);
	q = calloc(1, sizeof(*q));
	if (!q)
		return -1;
	q->c = c;
	q->kind = version == 3 ? NFSB_W_READ3 : NFSB_W_READ4;
	if (c->want > wi->max_read)
		wi->max_read = c->want;
	q->xid = wi->xid++;
	nfsb_wire_encode(wi, q, fh, fh_len, 0);
	nfsb_wire_queue(wi, q);
	return 0;
}

/* ---- Replies ------------------------------------------------------------- */

/* The RPC reply's head after the xid: 0 when the call was accepted and
 * carried out, -EFAULT when not (denied, garbled: the caller treats it as
 * a broken connection); in->short_ if the bytes ran out first. */
static int nfsb_wire_accepted(struct nfsb_xdr_in *in)
{
	if (nfsb_xdr_get_u32(in) != 1) /* REPLY */
		return -EFAULT;
	if (nfsb_xdr_get_u32(in) != 0) /* MSG_ACCEPTED */
		return -EFAULT;
	nfsb_xdr_get_u32(in); /* verifier flavor */
	nfsb_xdr_skip(in, nfsb_xdr_get_u32(in));
	if (nfsb_xdr_get_u32(in) != 0) /* SUCCESS */
		return -EFAULT;
	return 0;
}

/*
 * The reply to a WRITE (the record after its xid): 0 with the result
 * noted, -errno from the server (NFS4ERR_*), or -EFAULT when the RPC itself
 * failed.
 */
static int nfsb_wire_write_reply(struct nfsb_wreq *q, struct nfsb_xdr_in *in)
{
	uint32_t status, nres, count, committed;
	const unsigned char *verf;
	int err = nfsb_wire_accepted(in);

	if (err < 0 || in->short_)
		return -EFAULT;
	status = nfsb_xdr_get_u32(in);
	nfsb_xdr_skip(in, nfsb_xdr_get_u32(in)); /* tag */
	nres = nfsb_xdr_get_u32(in);
	if (in->short_)
		return -EFAULT;
	if (status != NFS4_OK)
		return nfsstat4_to_errno((int)status);
	if (nres != 2 || nfsb_xdr_get_u32(in) != OP_PUTFH ||
	    nfsb_xdr_get_u32(in) != NFS4_OK ||
	    nfsb_xdr_get_u32(in) != OP_WRITE || nfsb_xdr_get_u32(in) != NFS4_OK)
		return -EIO;
	count = nfsb_xdr_get_u32(in);
	committed = nfsb_xdr_get_u32(in);
	verf = nfsb_xdr_skip(in, NFS4_VERIFIER_SIZE);
	if (in->short_ || !verf)
		return -EIO;
	nfsb_note_write(q->c, count, committed == UNSTABLE4,
			(const char *)verf);
	return 0;
}

/*
 * The head of a READ reply in rec, up to its data: -EAGAIN if more bytes
 * are needed; else 0 with rd_err (0, the server's -errno, or -EFAULT for a
 * failed RPC), rd_eof and rd_len (0 unless rd_err is 0) set, and *head the
 * bytes of rec before the data.
 */
static int nfsb_wire_read_head(struct nfsb_wire *wi, size_t *head)
{
	struct nfsb_xdr_in in = {.p = wi->rec, .left = wi->rec_len};
	bool v3 = wi->cur->kind == NFSB_W_READ3;
	uint32_t status;

	wi->rd_len = 0;
	wi->rd_eof = false;
	*head = wi->rec_len;   /* no data: all of it is head */
	nfsb_xdr_get_u32(&in); /* xid */
	wi->rd_err = nfsb_wire_accepted(&in);
	if (in.short_)
		return -EAGAIN;
	if (wi->rd_err)
		return 0;
	status = nfsb_xdr_get_u32(&in);
	if (v3) {
		if (nfsb_xdr_get_u32(&in)) /* post_op_attr */
			nfsb_xdr_skip(&in, NFSB_WIRE_FATTR3);
	} else {
		nfsb_xdr_skip(&in, nfsb_xdr_get_u32(&in)); /* tag */
		nfsb_xdr_get_u32(&in);                     /* results */
	}
	if (in.short_)
		return -EAGAIN;
	if (status != 0) {
		wi->rd_err = v3 ? nfsstat3_to_errno((int)status)
				: nfsstat4_to_errno((int)status);
		/* NFS3ERR_JUKEBOX: read(2) has no "try again" */
		if (wi->rd_err == -EAGAIN)
			wi->rd_err = -EIO;
		return 0;
	}
	if (v3) {
		nfsb_xdr_get_u32(&in); /* count */
	} else if (nfsb_xdr_get_u32(&in) != OP_PUTFH ||
		   nfsb_xdr_get_u32(&in) != NFS4_OK ||
		   nfsb_xdr_get_u32(&in) != OP_READ ||
		   nfsb_xdr_get_u32(&in) != NFS4_OK) {
		if (in.short_)
			return -EAGAIN;
		wi->rd_err = -EIO;
		return 0;
	}
	wi->rd_eof = nfsb_xdr_get_u32(&in) != 0;
	wi->rd_len = nfsb_xdr_get_u32(&in);
	if (in.short_)
		return -EAGAIN;
	*head = wi->rec_len - in.left;
	return 0;
}

/* A reply's xid is in: which request it answers (NULL: none of ours, one
 * the server sent twice, say; its record is dropped). */
static struct nfsb_wreq *nfsb_wire_match(struct nfsb_wire *wi, uint32_t xid)
{
	for (struct nfsb_wreq *q = wi->flight; q; q = q->next)
		if (q->xid == xid)
			return q;
	log_debug("NFS connection of our own: a reply to no request (xid %u)",
		  xid);
	return NULL;
}

static int nfsb_wire_body(struct nfsb_wire *wi, const unsigned char *p,
			  size_t n);

/* A READ reply's head is complete: what follows it goes to the request's
 * buffer, if it fits there. */
static int nfsb_wire_to_data(struct nfsb_wire *wi, size_t head)
{
	size_t extra = wi->rec_len - head;
	struct nfsb_chunk *c = wi->cur->c;

	wi->rec_len = head;
	if (wi->rd_err) {
		wi->phase = NFSB_RX_SKIP;
		return 0;
	}
	if (wi->rd_len > c->want) {
		/* a server that answers more than was asked is broken or
		 * hostile: whose bytes are where cannot be known */
		nfsb_read_overrun(c, wi->rd_len);
		wi->rd_err = -EIO;
		wi->sink = NULL;
	} else {
		wi->sink = c->buf;
	}
	wi->sink_left = wi->rd_len;
	wi->phase = wi->sink_left ? NFSB_RX_DATA : NFSB_RX_SKIP;
	return extra ? nfsb_wire_body(wi, wi->rec + head, extra) : 0;
}

/* Bytes of the current record: its head, a READ's data, or the rest. */
static int nfsb_wire_body(struct nfsb_wire *wi, const unsigned char *p,
			  size_t n)
{
	while (n) {
		size_t k;

		switch (wi->phase) {
		case NFSB_RX_DATA:
			k = n < wi->sink_left ? n : wi->sink_left;
			if (wi->sink) {
				memcpy(wi->sink, p, k);
				wi->sink += k;
			}
			wi->sink_left -= k;
			if (!wi->sink_left)
				wi->phase = NFSB_RX_SKIP;
			break;
		case NFSB_RX_SKIP:
			return 0; /* padding, or a record no one waits for */
		case NFSB_RX_HEAD:
		default:
			/* a READ's data may follow in the same bytes: what
			 * does not fit waits for the head to be parsed */
			k = sizeof(wi->rec) - wi->rec_len;
			if (!k)
				return -EPROTO;
			if (k > n)
				k = n;
			memcpy(wi->rec + wi->rec_len, p, k);
			wi->rec_len += k;
			if (!wi->cur && wi->rec_len >= 4) {
				wi->cur = nfsb_wire_match(
					wi, (uint32_t)wi->rec[0] << 24 |
						    (uint32_t)wi->rec[1] << 16 |
						    (uint32_t)wi->rec[2] << 8 |
						    wi->rec[3]);
				if (!wi->cur) {
					wi->phase = NFSB_RX_SKIP;
					return 0;
				}
			}
			if (wi->cur && wi->cur->kind != NFSB_W_WRITE4) {
				size_t head;

				if (nfsb_wire_read_head(wi, &head) == 0) {
					int ret = nfsb_wire_to_data(wi, head);

					if (ret < 0)
						return ret;
				}
			}
			break;
		}
		p += k;
		n -= k;
	}
	return 0;
}

/* The record ended: complete the request it answered. */
static int nfsb_wire_record_end(struct nfsb_wire *wi)
{
	struct nfsb_wreq *q = wi->cur, **pp;
	int err = 0;

	if (q) {
		if (q->kind == NFSB_W_WRITE4) {
			struct nfsb_xdr_in in = {.p = wi->rec + 4,
						 .left = wi->rec_len - 4};

			err = nfsb_wire_write_reply(q, &in);
		} else if (wi->phase == NFSB_RX_HEAD) {
			err = -EFAULT; /* cut before its data */
		} else if (wi->phase == NFSB_RX_DATA) {
			return -EPROTO; /* less data than it said */
		} else {
			err = wi->rd_err;
			if (!err) {
				q->c->got = wi->rd_len;
				q->c->eof = wi->rd_eof;
			}
		}
		for (pp = &wi->flight; *pp != q; pp = &(*pp)->next)
			;
		*pp = q->next;
		nfsb_wire_done(wi, q, err);
	}
	wi->phase = NFSB_RX_HEAD;
	wi->cur = NULL;
	wi->rec_len = 0;
	wi->sink = NULL;
	wi->sink_left = 0;
	return 0;
}

/* `n` bytes of the current fragment were taken. */
static int nfsb_wire_frag_took(struct nfsb_wire *wi, size_t n)
{
	wi->frag_left -= n;
	if (wi->frag_left)
		return 0;
	wi->mark_got = 0;
	return wi->frag_last ? nfsb_wire_record_end(wi) : 0;
}

/* Take in bytes of the stream: record marks and records.  -EPROTO for a
 * stream no server would send. */
static int nfsb_wire_take(struct nfsb_wire *wi, const unsigned char *p,
			  size_t n)
{
	while (n) {
		size_t take;
		int ret;

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
			/* longer than any reply to what we asked */
			if (wi->frag_left > NFSB_WIRE_RECMAX + wi->max_read)
				return -EPROTO;
			if (!wi->frag_left) {
				ret = nfsb_wire_frag_took(wi, 0);
				if (ret < 0)
					return ret;
			}
			continue;
		}
		take = n < wi->frag_left ? n : wi->frag_left;
		ret = nfsb_wire_body(wi, p, take);
		if (ret == 0)
			ret = nfsb_wire_frag_took(wi, take);
		if (ret < 0)
			return ret;
		p += take;
		n -= take;
	}
	return 0;
}

int nfsb_wire_service(struct nfsb_wire *wi, short revents)
{
	size_t took = 0;
	int ret;

	if (wi->fd < 0)
		return -ENOTCONN;
	if (revents & (POLLERR | POLLNVAL))
		return -EIO;
	ret = nfsb_wire_flush(wi);
	if (ret < 0)
		return ret;
	while (took < NFSB_WIRE_RXBUDGET) {
		unsigned char buf[NFSB_WIRE_RXBUF];
		ssize_t n;

		if (wi->mark_got == 4 && wi->phase == NFSB_RX_DATA &&
		    wi->sink && wi->frag_left) {
			/* a READ's data: straight into its buffer */
			size_t want = wi->sink_left < wi->frag_left
					      ? wi->sink_left
					      : wi->frag_left;

			n = recv(wi->fd, wi->sink, want, MSG_DONTWAIT);
			if (n > 0) {
				took += (size_t)n;
				wi->sink += n;
				wi->sink_left -= (size_t)n;
				if (!wi->sink_left)
					wi->phase = NFSB_RX_SKIP;
				ret = nfsb_wire_frag_took(wi, (size_t)n);
				if (ret < 0)
					return ret;
				continue;
			}
		} else {
			n = recv(wi->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n > 0) {
				took += (size_t)n;
				ret = nfsb_wire_take(wi, buf, (size_t)n);
				if (ret < 0)
					return ret;
				continue;
			}
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -errno;
		}
		/* the server closed it */
		return wi->pending ? -ECONNRESET : 0;
	}
	if (!wi->pending && (revents & POLLHUP))
		return -ECONNRESET;
	return 0;
}

void nfsb_wire_test_xid(struct nfsb_wire *wi, uint32_t xid)
{
	wi->xid = xid;
}

int nfsb_wire_feed(struct nfsb_wire *wi, const void *p, size_t n)
{
	return nfsb_wire_take(wi, p, n);
}
