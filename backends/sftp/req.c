/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * req.c - the SFTP requests the backend sends, one function each, over a
 * checked-out session's channel (chan.h): built with proto.h, waited for
 * until the call's deadline, the answer mapped to 0, bytes or -errno.
 * Reads and writes larger than the server takes in one request go out as
 * a pipeline of requests, all in flight at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/callctx.h"
#include "backends/sftp/internal.h"

/* Requests of one read or write in flight at once (each up to the
 * server's max_read / max_write). */
#define SFTP_PIPE_MAX 64

/* ---- Sending and waiting -------------------------------------------- */

/* The request could not be sent or was not answered: what c learns. */
static int sftp_rpc_failed(struct sftp_conn *c, int rc)
{
	switch (rc) {
	case -ETIMEDOUT:
		if (c->fenced || sftp_chan_error(c->chan) != -ETIMEDOUT)
			/* the caller's own deadline, or a request that
			 * queued too long behind others while the server
			 * answered them: that request was abandoned (or
			 * never sent), the session goes on */
			return -ETIMEDOUT;
		c->broken = true;
		c->timed_out = true;
		return -ETIMEDOUT;
	case -ECANCELED:
		/* a write that missed its caller's deadline cut the
		 * session (chan.h: cancel_on_miss), maybe another call's */
		c->broken = true;
		c->cancelled = true;
		return c->fenced && vfs_call_expired() ? -ETIMEDOUT : -EIO;
	case -ENOMEM:
		return -ENOMEM;
	default:
		c->broken = true;
		return -EIO;
	}
}

/* A reply that breaks the protocol: the channel cannot be trusted. */
static int sftp_bad_reply(struct sftp_conn *c)
{
	sftp_chan_fail(c->chan, -EPROTO);
	c->broken = true;
	return -EIO;
}

/* Finish building r: -ENOMEM or -ENAMETOOLONG (a path longer than any
 * packet) if it cannot be sent. */
static int sftp_req_ready(struct sftp_req *r, size_t extra)
{
	int rc = sftp_buf_end(&r->pkt, extra);

	return rc == -EMSGSIZE ? -ENAMETOOLONG : rc;
}

/* Submit r on c's channel (0 or -errno, c updated). */
static int sftp_send(struct sftp_conn *c, struct sftp_req *r)
{
	int rc;

	if (c->broken)
		return -EIO;
	/* nothing goes out once the call's time is up (backends/callctx.h:
	 * a lock-fenced write must not be sent after its deadline); the
	 * session is fine */
	if (vfs_mono_s() >= c->deadline)
		return -ETIMEDOUT;
	r->cancel_on_miss = c->fenced && r->data;
	/* ... nor after it, from the engine's queue, before this thread
	 * wakes to give it up */
	r->send_by = r->cancel_on_miss ? c->deadline : 0;
	rc = sftp_chan_submit(c->chan, r);
	return rc ? sftp_rpc_failed(c, rc) : 0;
}

/* Wait for r, submitted by sftp_send (0 or -errno, c updated). */
static int sftp_await(struct sftp_conn *c, struct sftp_req *r)
{
	int rc = sftp_chan_wait(c->chan, r, c->deadline, !c->fenced);

	if (rc)
		return sftp_rpc_failed(c, rc);
	c->answered = true;
	return 0;
}

/* Send r and wait for its answer. */
static int sftp_rpc(struct sftp_conn *c, struct sftp_req *r)
{
	int rc = sftp_req_ready(r, r->data_len);

	if (rc == 0)
		rc = sftp_send(c, r);
	if (rc == 0)
		rc = sftp_await(c, r);
	return rc;
}

/* The errno of a STATUS reply (c->status keeps its code); a reply of any
 * other type than `want` breaks the protocol. */
static int sftp_reply(struct sftp_conn *c, struct sftp_req *r, uint8_t want,
		      struct sftp_reply *rep)
{
	if (r->type != SFTP_STATUS && r->type != want)
		return sftp_bad_reply(c);
	if (sftp_parse_reply(r->type, r->body, r->body_len, rep) < 0)
		return sftp_bad_reply(c);
	if (r->type == SFTP_STATUS) {
		c->status = rep->u.status.code;
		if (rep->u.status.code == SFTP_FX_OK)
			return want == SFTP_STATUS ? 0 : sftp_bad_reply(c);
		return sftp_status_errno(rep->u.status.code);
	}
	return 0;
}

/* A request that answers with a STATUS: send, wait, map. */
static int sftp_rpc_status(struct sftp_conn *c, struct sftp_req *r)
{
	struct sftp_reply rep;
	int rc = sftp_rpc(c, r);

	if (rc == 0)
		rc = sftp_reply(c, r, SFTP_STATUS, &rep);
	sftp_req_put(c->chan, r);
	return rc;
}

static struct sftp_req *sftp_req_begin(uint8_t type)
{
	struct sftp_req *r = sftp_req_new();

	if (r)
		sftp_buf_begin(&r->pkt, type, 0);
	return r;
}

static struct sftp_req *sftp_req_ext(const char *name)
{
	struct sftp_req *r = sftp_req_new();

	if (r)
		sftp_buf_begin_ext(&r->pkt, 0, name);
	return r;
}

static void sftp_put_handle(struct sftp_buf *b, const struct sftp_handle *h)
{
	sftp_put_str(b, h->h, h->len);
}

/* ---- Attributes ------------------------------------------------------ */

/* Send two requests back to back, so that both are answered in one
 * round trip: 0 once r1 went (*sent2: whether r2 did too), or -errno with
 * neither sent. */
static int sftp_send_pair(struct sftp_conn *c, struct sftp_req *r1,
			  struct sftp_req *r2, bool *sent2)
{
	int rc = sftp_req_ready(r1, 0);

	*sent2 = false;
	if (rc == 0)
		rc = sftp_req_ready(r2, 0);
	if (rc == 0)
		rc = sftp_send(c, r1);
	if (rc == 0)
		*sent2 = sftp_send(c, r2) == 0;
	return rc;
}

/* Wait for r, sent, and take the attributes of its ATTRS reply. */
static int sftp_await_attrs(struct sftp_conn *c, struct sftp_req *r,
			    struct sftp_attrs *a)
{
	struct sftp_reply rep;
	int rc = sftp_await(c, r);

	if (rc == 0)
		rc = sftp_reply(c, r, SFTP_ATTRS, &rep);
	if (rc == 0)
		*a = rep.u.attrs;
	return rc;
}

static int sftp_rpc_attrs(struct sftp_conn *c, struct sftp_req *r,
			  struct sftp_attrs *a)
{
	int rc = sftp_req_ready(r, r->data_len);

	if (rc == 0)
		rc = sftp_send(c, r);
	if (rc == 0)
		rc = sftp_await_attrs(c, r, a);
	sftp_req_put(c->chan, r);
	return rc;
}

int sftp_r_stat(struct sftp_conn *c, const char *rpath, bool follow,
		struct sftp_attrs *a)
{
	struct sftp_req *r = sftp_req_begin(follow ? SFTP_STAT : SFTP_LSTAT);

	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, rpath);
	return sftp_rpc_attrs(c, r, a);
}

int sftp_r_lstat_pair(struct sftp_conn *c, const char *rpath,
		      const char *rpath2, struct sftp_attrs *a,
		      struct sftp_attrs *a2, int *rc2)
{
	struct sftp_req *r1 = sftp_req_begin(SFTP_LSTAT);
	struct sftp_req *r2 = sftp_req_begin(SFTP_LSTAT);
	bool sent2 = false;
	int rc;

	*rc2 = -EIO;
	if (!r1 || !r2) {
		rc = -ENOMEM;
		goto out;
	}
	sftp_put_cstr(&r1->pkt, rpath);
	sftp_put_cstr(&r2->pkt, rpath2);
	rc = sftp_send_pair(c, r1, r2, &sent2);
	if (rc == 0)
		rc = sftp_await_attrs(c, r1, a);
	if (sent2)
		*rc2 = sftp_await_attrs(c, r2, a2);
out:
	sftp_req_put(c->chan, r1);
	sftp_req_put(c->chan, r2);
	return rc;
}

int sftp_r_fstat(struct sftp_conn *c, const struct sftp_handle *h,
		 struct sftp_attrs *a)
{
	struct sftp_req *r = sftp_req_begin(SFTP_FSTAT);

	if (!r)
		return -ENOMEM;
	sftp_put_handle(&r->pkt, h);
	return sftp_rpc_attrs(c, r, a);
}

int sftp_r_setstat(struct sftp_conn *c, const char *rpath, bool nofollow,
		   const struct sftp_attrs *a)
{
	struct sftp_req *r;

	if (nofollow && !c->sm->feat.lsetstat)
		return -EOPNOTSUPP;
	r = nofollow ? sftp_req_ext("lsetstat@openssh.com")
		     : sftp_req_begin(SFTP_SETSTAT);
	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, rpath);
	sftp_put_attrs(&r->pkt, a);
	return sftp_rpc_status(c, r);
}

int sftp_r_fsetstat(struct sftp_conn *c, const struct sftp_handle *h,
		    const struct sftp_attrs *a)
{
	struct sftp_req *r = sftp_req_begin(SFTP_FSETSTAT);

	if (!r)
		return -ENOMEM;
	sftp_put_handle(&r->pkt, h);
	sftp_put_attrs(&r->pkt, a);
	return sftp_rpc_status(c, r);
}

/* ---- Handles --------------------------------------------------------- */

static int sftp_rpc_handle(struct sftp_conn *c, struct sftp_req *r,
			   struct sftp_handle *h)
{
	struct sftp_reply rep;
	int rc = sftp_rpc(c, r);

	if (rc == 0)
		rc = sftp_reply(c, r, SFTP_HANDLE, &rep);
	if (rc == 0) {
		h->len = (uint16_t)rep.u.handle.len;
		memcpy(h->h, rep.u.handle.h, rep.u.handle.len);
	}
	sftp_req_put(c->chan, r);
	return rc;
}

int sftp_r_open(struct sftp_conn *c, const char *rpath, uint32_t pflags,
		const struct sftp_attrs *a, struct sftp_handle *h)
{
	static const struct sftp_attrs none = {0};
	struct sftp_req *r = sftp_req_begin(SFTP_OPEN);

	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, rpath);
	sftp_put_u32(&r->pkt, pflags);
	sftp_put_attrs(&r->pkt, a ? a : &none);
	return sftp_rpc_handle(c, r, h);
}

int sftp_r_open_lstat(struct sftp_conn *c, const char *rpath, uint32_t pflags,
		      const struct sftp_attrs *na, struct sftp_handle *h,
		      struct sftp_attrs *a, int *arc)
{
	struct sftp_req *ro = sftp_req_begin(SFTP_OPEN);
	struct sftp_req *rs = sftp_req_begin(SFTP_LSTAT);
	struct sftp_reply rep;
	bool sent_s = false;
	int rc = 0;

	*arc = -EIO;
	if (!ro || !rs) {
		rc = -ENOMEM;
		goto out;
	}
	sftp_put_cstr(&ro->pkt, rpath);
	sftp_put_u32(&ro->pkt, pflags);
	sftp_put_attrs(&ro->pkt, na);
	sftp_put_cstr(&rs->pkt, rpath);
	rc = sftp_send_pair(c, ro, rs, &sent_s);
	if (rc)
		goto out;
	rc = sftp_await(c, ro);
	if (rc == 0)
		rc = sftp_reply(c, ro, SFTP_HANDLE, &rep);
	if (rc == 0) {
		h->len = (uint16_t)rep.u.handle.len;
		memcpy(h->h, rep.u.handle.h, rep.u.handle.len);
	}
	if (sent_s)
		*arc = sftp_await_attrs(c, rs, a);
	if (rc == 0 && !sent_s && !c->broken)
		*arc = sftp_r_fstat(c, h, a);
out:
	sftp_req_put(c->chan, ro);
	sftp_req_put(c->chan, rs);
	return rc;
}

int sftp_r_opendir(struct sftp_conn *c, const char *rpath,
		   struct sftp_handle *h)
{
	struct sftp_req *r = sftp_req_begin(SFTP_OPENDIR);

	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, rpath);
	return sftp_rpc_handle(c, r, h);
}

int sftp_r_readdir(struct sftp_conn *c, const struct sftp_handle *h,
		   struct sftp_req **out)
{
	struct sftp_req *r = sftp_req_begin(SFTP_READDIR);
	struct sftp_reply rep;
	int rc;

	if (!r)
		return -ENOMEM;
	sftp_put_handle(&r->pkt, h);
	rc = sftp_rpc(c, r);
	if (rc == 0)
		rc = sftp_reply(c, r, SFTP_NAME, &rep);
	if (rc == 0) {
		*out = r;
		return 0;
	}
	sftp_req_put(c->chan, r);
	if (rc == -ENODATA) /* SSH_FX_EOF: the end of the listing */
		return 1;
	return rc;
}

int sftp_r_close(struct sftp_conn *c, const struct sftp_handle *h)
{
	struct sftp_req *r = sftp_req_begin(SFTP_CLOSE);

	if (!r)
		return -ENOMEM;
	sftp_put_handle(&r->pkt, h);
	return sftp_rpc_status(c, r);
}

static void sftp_close_done(struct sftp_req *r)
{
	/* closing a plain file does not fail on OpenSSH in practice; the
	 * handle is gone either way */
	(void)r;
}

int sftp_r_close_async(struct sftp_conn *c, const struct sftp_handle *h)
{
	struct sftp_req *r = sftp_req_begin(SFTP_CLOSE);
	int rc;

	if (!r)
		return -ENOMEM;
	sftp_put_handle(&r->pkt, h);
	r->done = sftp_close_done;
	rc = sftp_req_ready(r, 0);
	if (rc == 0)
		rc = sftp_send(c, r);
	sftp_req_put(c->chan, r);
	return rc;
}

/* ---- Data ------------------------------------------------------------ */

static size_t sftp_max_read(struct sftp_conn *c)
{
	struct sftp_chan_limits l;

	sftp_chan_limits(c->chan, &l);
	return l.max_read;
}

static size_t sftp_max_write(struct sftp_conn *c)
{
	struct sftp_chan_limits l;

	sftp_chan_limits(c->chan, &l);
	return l.max_write;
}

/*
 * Send one READ or WRITE of len bytes at off through h: a READ's data
 * goes to dst, a WRITE's comes from src.  The request, or NULL and *rc.
 */
static struct sftp_req *sftp_send_io(struct sftp_conn *c, uint8_t type,
				     const struct sftp_handle *h, uint64_t off,
				     size_t len, char *dst, const char *src,
				     int *rc)
{
	struct sftp_req *r = sftp_req_begin(type);

	if (!r) {
		*rc = -ENOMEM;
		return NULL;
	}
	sftp_put_handle(&r->pkt, h);
	sftp_put_u64(&r->pkt, off);
	sftp_put_u32(&r->pkt, (uint32_t)len);
	r->rbuf = dst;
	r->rcap = dst ? len : 0;
	r->data = src;
	r->data_len = src ? len : 0;
	*rc = sftp_req_ready(r, r->data_len);
	if (*rc == 0)
		*rc = sftp_send(c, r);
	if (*rc) {
		sftp_req_put(c->chan, r);
		return NULL;
	}
	return r;
}

/*
 * One batch of READs for [off, off+size) into buf, at most SFTP_PIPE_MAX
 * of `piece` bytes.  Returns the bytes read from the front of the range
 * (a short piece ends it: the caller asks again from there, or has
 * reached the end of file), *eof when the server said so, or -errno.
 */
static ssize_t sftp_pread_batch(struct sftp_conn *c,
				const struct sftp_handle *h, char *buf,
				size_t size, uint64_t off, size_t piece,
				bool *eof)
{
	struct sftp_req *rs[SFTP_PIPE_MAX];
	size_t n = 0, total = 0;
	bool stop = false;
	int rc = 0;

	for (size_t o = 0; o < size && n < SFTP_PIPE_MAX; o += piece) {
		size_t len = size - o < piece ? size - o : piece;
		struct sftp_req *r = sftp_send_io(c, SFTP_READ, h, off + o, len,
						  buf + o, NULL, &rc);

		if (!r)
			break;
		rs[n++] = r;
	}
	/* every request sent is waited for: it writes into buf */
	for (size_t i = 0; i < n; i++) {
		struct sftp_req *r = rs[i];
		int e = sftp_await(c, r);

		if (!stop && e) {
			rc = e;
			stop = true;
		} else if (!stop && r->type == SFTP_DATA) {
			total += r->rlen;
			stop = r->rlen < r->rcap;
		} else if (!stop) {
			struct sftp_reply rep;

			e = sftp_reply(c, r, SFTP_DATA, &rep);
			if (e == -ENODATA) /* SSH_FX_EOF */
				*eof = true;
			else
				rc = e ? e : sftp_bad_reply(c);
			stop = true;
		}
		sftp_req_put(c->chan, r);
	}
	if (rc && !total)
		return rc;
	return (ssize_t)total;
}

ssize_t sftp_r_pread(struct sftp_conn *c, const struct sftp_handle *h,
		     char *buf, size_t size, uint64_t off)
{
	size_t piece = sftp_max_read(c), total = 0;
	bool eof = false;

	while (total < size && !eof) {
		ssize_t n = sftp_pread_batch(c, h, buf + total, size - total,
					     off + total, piece, &eof);

		if (n < 0)
			return total ? (ssize_t)total : n;
		if (n == 0 && !eof)
			/* an empty DATA: no progress, call it the end */
			break;
		total += (size_t)n;
	}
	return (ssize_t)total;
}

int sftp_r_pwrite(struct sftp_conn *c, const struct sftp_handle *h,
		  const char *buf, size_t size, uint64_t off, size_t *done)
{
	size_t piece = sftp_max_write(c), front = 0, o = 0;
	int rc = 0;

	while (o < size && !rc) {
		struct sftp_req *rs[SFTP_PIPE_MAX];
		size_t n = 0;
		bool stop = false;

		for (; o < size && n < SFTP_PIPE_MAX; o += piece) {
			size_t len = size - o < piece ? size - o : piece;
			struct sftp_req *r =
				sftp_send_io(c, SFTP_WRITE, h, off + o, len,
					     NULL, buf + o, &rc);

			if (!r)
				break;
			rs[n++] = r;
		}
		for (size_t i = 0; i < n; i++) {
			struct sftp_req *r = rs[i];
			struct sftp_reply rep;
			int e = sftp_await(c, r);

			if (e == 0)
				e = sftp_reply(c, r, SFTP_STATUS, &rep);
			if (e && !rc)
				rc = e;
			if (e)
				stop = true;
			else if (!stop)
				front += r->data_len;
			sftp_req_put(c->chan, r);
		}
	}
	if (done)
		*done = front;
	return rc;
}

/* ---- Names ----------------------------------------------------------- */

static int sftp_rpc_path(struct sftp_conn *c, uint8_t type, const char *rpath)
{
	struct sftp_req *r = sftp_req_begin(type);

	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, rpath);
	return sftp_rpc_status(c, r);
}

int sftp_r_remove(struct sftp_conn *c, const char *rpath)
{
	return sftp_rpc_path(c, SFTP_REMOVE, rpath);
}

int sftp_r_rmdir(struct sftp_conn *c, const char *rpath)
{
	return sftp_rpc_path(c, SFTP_RMDIR, rpath);
}

int sftp_r_mkdir(struct sftp_conn *c, const char *rpath,
		 const struct sftp_attrs *a)
{
	struct sftp_req *r = sftp_req_begin(SFTP_MKDIR);

	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, rpath);
	sftp_put_attrs(&r->pkt, a);
	return sftp_rpc_status(c, r);
}

int sftp_r_rename(struct sftp_conn *c, const char *from, const char *to,
		  bool posix)
{
	struct sftp_req *r;

	if (posix && !c->sm->feat.posix_rename)
		return -EOPNOTSUPP;
	r = posix ? sftp_req_ext("posix-rename@openssh.com")
		  : sftp_req_begin(SFTP_RENAME);
	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, from);
	sftp_put_cstr(&r->pkt, to);
	return sftp_rpc_status(c, r);
}

int sftp_r_symlink(struct sftp_conn *c, const char *target,
		   const char *linkpath)
{
	struct sftp_req *r = sftp_req_begin(SFTP_SYMLINK);

	if (!r)
		return -ENOMEM;
	/* OpenSSH reads SYMLINK's two paths in the opposite order to the
	 * draft (its PROTOCOL, 4.1): target first */
	sftp_put_cstr(&r->pkt, target);
	sftp_put_cstr(&r->pkt, linkpath);
	return sftp_rpc_status(c, r);
}

ssize_t sftp_r_readlink(struct sftp_conn *c, const char *rpath, char *buf,
			size_t size)
{
	struct sftp_req *r = sftp_req_begin(SFTP_READLINK);
	struct sftp_reply rep;
	struct sftp_attrs a;
	const char *name;
	size_t nlen;
	int rc;

	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, rpath);
	rc = sftp_rpc(c, r);
	if (rc == 0)
		rc = sftp_reply(c, r, SFTP_NAME, &rep);
	if (rc == 0 && (rep.u.name.count != 1 ||
			sftp_get_name(&rep.u.name.rest, &name, &nlen, &a) < 0))
		rc = sftp_bad_reply(c);
	if (rc == 0) {
		memcpy(buf, name, nlen < size ? nlen : size);
		if (nlen < size)
			buf[nlen] = '\0';
		rc = (int)nlen;
	}
	sftp_req_put(c->chan, r);
	return rc;
}

int sftp_r_link(struct sftp_conn *c, const char *from, const char *to)
{
	struct sftp_req *r;

	if (!c->sm->feat.hardlink)
		return -EPERM; /* link(2) where links cannot be made */
	r = sftp_req_ext("hardlink@openssh.com");
	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, from);
	sftp_put_cstr(&r->pkt, to);
	return sftp_rpc_status(c, r);
}

/* ---- Extensions with replies of their own ------------------------------ */

static int sftp_rpc_ext(struct sftp_conn *c, struct sftp_req *r,
			struct sftp_reply *rep)
{
	int rc = sftp_rpc(c, r);

	if (rc == 0)
		rc = sftp_reply(c, r, SFTP_EXTENDED_REPLY, rep);
	return rc;
}

int sftp_r_statvfs(struct sftp_conn *c, const char *rpath,
		   struct sftp_statvfs *v)
{
	struct sftp_req *r;
	struct sftp_reply rep;
	int rc;

	if (!c->sm->feat.statvfs)
		return -EOPNOTSUPP;
	r = sftp_req_ext("statvfs@openssh.com");
	if (!r)
		return -ENOMEM;
	sftp_put_cstr(&r->pkt, rpath);
	rc = sftp_rpc_ext(c, r, &rep);
	if (rc == 0 && sftp_parse_statvfs(&rep.u.ext, v) < 0)
		rc = sftp_bad_reply(c);
	sftp_req_put(c->chan, r);
	return rc;
}

int sftp_r_limits(struct sftp_conn *c, struct sftp_limits *l)
{
	struct sftp_req *r = sftp_req_ext("limits@openssh.com");
	struct sftp_reply rep;
	int rc;

	if (!r)
		return -ENOMEM;
	rc = sftp_rpc_ext(c, r, &rep);
	if (rc == 0 && sftp_parse_limits(&rep.u.ext, l) < 0)
		rc = sftp_bad_reply(c);
	sftp_req_put(c->chan, r);
	return rc;
}

int sftp_r_fsync(struct sftp_conn *c, const struct sftp_handle *h)
{
	struct sftp_req *r;

	if (!c->sm->feat.fsync)
		return -EOPNOTSUPP;
	r = sftp_req_ext("fsync@openssh.com");
	if (!r)
		return -ENOMEM;
	sftp_put_handle(&r->pkt, h);
	return sftp_rpc_status(c, r);
}

int sftp_r_copy_data(struct sftp_conn *c, const struct sftp_handle *h,
		     uint64_t off, uint64_t len, const struct sftp_handle *dh,
		     uint64_t doff)
{
	struct sftp_req *r;

	if (!c->sm->feat.copy_data)
		return -EOPNOTSUPP;
	r = sftp_req_ext("copy-data");
	if (!r)
		return -ENOMEM;
	sftp_put_handle(&r->pkt, h);
	sftp_put_u64(&r->pkt, off);
	sftp_put_u64(&r->pkt, len);
	sftp_put_handle(&r->pkt, dh);
	sftp_put_u64(&r->pkt, doff);
	return sftp_rpc_status(c, r);
}
