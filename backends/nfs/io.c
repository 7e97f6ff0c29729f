/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * io.c - reads and writes: a request split into chunks that are all in
 * flight at once; READ on the context's wire (wire.c, the data received
 * straight into the caller's buffer); WRITE through the raw RPC API (v3)
 * or our own COMPOUND on the wire (v4) so that every reply's verifier is
 * checked; the file's sticky error.
 */
#include "backends/nfs/internal.h"

void nfsb_read_overrun(const struct nfsb_chunk *c, size_t len)
{
	struct nfsb_mount *m;

	if (!c->nf)
		return;
	m = nfsb_m(c->nf->base.mount);
	if (!__atomic_exchange_n(&m->read_overrun_logged, true,
				 __ATOMIC_RELAXED))
		log_warn("%s: a READ of %zu bytes at %lld was answered with "
			 "%zu: the server is broken, such reads fail with EIO",
			 m->display, c->want, (long long)c->off, len);
}

/*
 * Start the READ of one chunk on op's wire (wire.c): its data arrives
 * straight in c->buf.  A server that answers more than was asked is broken
 * or hostile: which of its bytes belong at c->off cannot be known, so the
 * request fails with EIO instead of taking a clamped part of it (logged
 * once per mount).  Less than asked is a short read (nfsb_read_rests).
 * NFS3ERR_JUKEBOX is EIO: read(2) has no "try again" for a regular file.
 */
static int nfsb_start_read(struct nfsb_op *op, struct nfsb_file *nf,
			   struct nfsb_chunk *c)
{
	struct sockaddr_storage peer;
	const char *fh = nf->fh4;
	u_int fh_len = nf->fh4_len;
	bool low;

	if (op->m->version == 3) {
		struct nfs_fh *raw = nfsb_rawfh(nf->fh, NFSB_V3_FHSIZE);

		if (!raw)
			return -1;
		fh = raw->val;
		fh_len = (u_int)raw->len;
	}
	if (nfsb_wire_peer(nfs_get_fd(op->nfs), &peer, &low) < 0) {
		/* the context's socket is dead (the server restarted): a
		 * transport failure, so that it is rebuilt and the call
		 * tried again (nfsb_finish) */
		nfsb_wait_done(c->w, -ENOTCONN);
		return 0;
	}
	return nfsb_wire_read(op->wire, &peer, low, op->deadline,
			      op->m->version, fh, fh_len, c);
}

/* Cut [off, off + size) of buf into n requests of at most `chunk` bytes,
 * all counted in w. */
static void nfsb_chunks(struct nfsb_chunk *c, size_t n, struct nfsb_wait *w,
			struct nfsb_file *nf, const void *buf, off_t off,
			size_t size, size_t chunk)
{
	for (size_t i = 0; i < n; i++)
		c[i] = (struct nfsb_chunk){
			.w = w,
			.nf = nf,
			.buf = (char *)buf + i * chunk,
			.off = off + (off_t)(i * chunk),
			.want = size - i * chunk < chunk ? size - i * chunk
							 : chunk,
		};
}

static int nfsb_start_read_rest(struct nfsb_op *op, struct nfsb_wait *w,
				void *arg)
{
	struct nfsb_chunk *r = arg;

	r->w = w;
	r->got = 0;
	r->eof = false;
	return nfsb_start_read(op, r->nf, r);
}

/*
 * A server may answer a READ with fewer bytes than asked without being at
 * the end of the file: ask for the rest, on the same context, until it
 * says end of file.  A short read reaches the kernel as the end of the
 * file (it would zero the rest of a cached page).  Nothing at all and no
 * end of file is a broken server: EIO.
 */
static int nfsb_read_rests(struct nfsb_op *op, struct nfsb_chunk *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		while (c[i].got < c[i].want && !c[i].eof) {
			struct nfsb_chunk r = {
				.nf = c[i].nf,
				.buf = c[i].buf + c[i].got,
				.off = c[i].off + (off_t)c[i].got,
				.want = c[i].want - c[i].got,
			};
			int ret = nfsb_call_on(op, nfsb_start_read_rest, &r);

			if (ret < 0)
				return ret;
			if (r.got == 0 && !r.eof)
				return -EIO;
			c[i].got += r.got;
			c[i].eof = r.eof;
		}
		if (c[i].got < c[i].want)
			break; /* end of file */
	}
	return 0;
}

ssize_t nfsb_read(struct vfs_file *f, void *buf, size_t size, off_t off)
{
	struct nfsb_file *nf = nfsb_f(f);
	struct nfsb_mount *m = nfsb_m(f->mount);
	size_t chunk = m->rsize, n = (size + chunk - 1) / chunk;
	struct nfsb_chunk stackc[8],
		*c = n <= 8 ? stackc : calloc(n, sizeof(*c));
	struct nfsb_op op;
	ssize_t ret;
	int tries = 0;

	if (!c)
		return -ENOMEM;
	nfsb_set_flushed(nf, false);
	/* what we wrote behind (through any handle of it) is not there
	 * yet */
	nfsb_wb_drain_file(nf);
	if (size == 0) {
		ret = 0;
		goto out;
	}
	/* every chunk in flight at once on one context: not nfsb_call */
	do {
		struct nfsb_wait w;
		size_t total = 0;

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			goto out;
		nfsb_wait_init(&w);
		nfsb_chunks(c, n, &w, nf, buf, off, size, chunk);
		for (size_t i = 0; i < n; i++) {
			w.pending++;
			if (nfsb_start_read(&op, nf, &c[i]))
				nfsb_start_failed(&op, &w);
		}
		ret = nfsb_finish(&op, &w);
		if (ret == 0)
			ret = nfsb_read_rests(&op, c, n);
		nfsb_put(&op);
		if (ret < 0)
			continue;
		/* Short only at end of file: stop at the first short chunk. */
		for (size_t i = 0; i < n; i++) {
			total += c[i].got;
			if (c[i].got < c[i].want)
				break;
		}
		ret = (ssize_t)total;
	} while (ret < 0 && nfsb_retry(&op, (int)ret, &tries));
out:
	if (c != stackc)
		free(c);
	return ret;
}

/* A WRITE reply for `c`: compare its verifier with the one of the file's
 * uncommitted data. */
void nfsb_note_write(struct nfsb_chunk *c, size_t count, bool unstable,
		     const char *verf)
{
	struct nfsb_file *nf = c->nf;

	c->got = count < c->want ? count : c->want;
	c->unstable = unstable;
	pthread_mutex_lock(&nf->lock);
	if (nf->verf_known && nf->dirty &&
	    memcmp(nf->verf, verf, sizeof(nf->verf)))
		c->verf_bad = true;
	memcpy(nf->verf, verf, sizeof(nf->verf));
	nf->verf_known = true;
	/* at once, not when the whole request is done: a resent rest of it
	 * must be compared against this verifier */
	if (unstable)
		nf->dirty = true;
	pthread_mutex_unlock(&nf->lock);
}

static void nfsb_cb_write3(struct rpc_context *rpc, int status, void *data,
			   void *priv)
{
	struct nfsb_chunk *c = priv;
	WRITE3res *res = data;
	int err = 0;

	if (status != RPC_STATUS_SUCCESS) {
		err = -EFAULT; /* no reply: transport */
	} else if (res->status != NFS3_OK) {
		err = nfsstat3_to_errno(res->status);
	} else {
		WRITE3resok *ok = &res->WRITE3res_u.resok;

		nfsb_note_write(c, ok->count, ok->committed == UNSTABLE,
				ok->verf);
	}
	nfsb_wait_done(c->w, err);
}

/* Start the WRITE of one chunk; `stable` is 0, 1 or 2 (UNSTABLE,
 * DATA_SYNC, FILE_SYNC: the same values in v3 and v4). */
int nfsb_start_write(struct nfsb_op *op, struct nfsb_file *nf,
		     struct nfsb_chunk *c, int stable)
{
	if (op->m->version == 3) {
		struct nfs_fh *raw = nfsb_rawfh(nf->fh, NFSB_V3_FHSIZE);
		WRITE3args a;

		if (!raw)
			return -1;
		memset(&a, 0, sizeof(a));
		a.file.data.data_len = (u_int)raw->len;
		a.file.data.data_val = raw->val;
		a.offset = (uint64_t)c->off;
		a.count = (count3)c->want;
		a.stable = stable;
		a.data.data_len = (u_int)c->want;
		a.data.data_val = c->buf;
		return rpc_nfs3_write_async(nfs_get_rpc_context(op->nfs),
					    nfsb_cb_write3, &a, c);
	}
	/* libnfs 4.0.0 cannot encode a WRITE of 4 KiB or more: wire.c.  A
	 * WRITE under its caller's deadline (a lock's) must not go out
	 * after it, though nfsb_drive may wake just past it. */
	return nfsb_wire_write(op->wire, nfs_get_fd(op->nfs), op->deadline,
			       op->caller_dl ? op->deadline : 0, nf, c, stable);
}

/* One chunk's WRITE, for nfsb_call_on. */
struct nfsb_writereq {
	struct nfsb_file *nf;
	struct nfsb_chunk *c;
	int stable;
};

static int nfsb_start_write1(struct nfsb_op *op, struct nfsb_wait *w, void *arg)
{
	struct nfsb_writereq *r = arg;

	r->c->w = w;
	return nfsb_start_write(op, r->nf, r->c, r->stable);
}

int nfsb_take_err(struct nfsb_file *nf)
{
	int err = remote_wb_take_err(nfsb_m(nf->base.mount)->wbq, &nf->wbf);

	pthread_mutex_lock(&nf->lock);
	if (!err)
		err = nf->lost;
	nf->lost = 0;
	nf->told = false;
	pthread_mutex_unlock(&nf->lock);
	return err;
}

int nfsb_flush_err(struct nfsb_file *nf)
{
	int err = remote_wb_err(nfsb_m(nf->base.mount)->wbq, &nf->wbf);

	pthread_mutex_lock(&nf->lock);
	if (!err)
		err = nf->lost;
	if (err)
		nf->told = true;
	pthread_mutex_unlock(&nf->lock);
	return err;
}

ssize_t nfsb_write(struct vfs_file *f, const void *buf, size_t size, off_t off)
{
	struct nfsb_file *nf = nfsb_f(f);
	struct nfsb_mount *m = nfsb_m(f->mount);
	size_t chunk = m->wsize, n = (size + chunk - 1) / chunk;
	struct nfsb_chunk stackc[8], *c;
	int stable = (f->flags & O_SYNC) == O_SYNC ? 2
		     : (f->flags & O_DSYNC)        ? 1
						   : 0;
	struct nfsb_op op;
	bool unstable = false, verf_bad = false;
	ssize_t ret;
	int tries = 0;

	nfsb_set_flushed(nf, false);
	ret = nfsb_take_err(nf);
	if (ret < 0)
		return ret;
	if (size == 0)
		return 0;
	if (m->wb && !stable && !(f->flags & O_DIRECT) && !f->write_through) {
		ret = nfsb_wb_write(nf, buf, size, off);
		nfsb_invalidate_file(nf);
		return ret;
	}
	/* synchronous: nothing of ours, through any handle of the file,
	 * may still be on its way to land after this */
	nfsb_wb_drain_file(nf);
	c = n <= 8 ? stackc : calloc(n, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* every chunk in flight at once on one context: not nfsb_call */
	do {
		struct nfsb_wait w;

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			goto out;
		nfsb_wait_init(&w);
		nfsb_chunks(c, n, &w, nf, buf, off, size, chunk);
		for (size_t i = 0; i < n; i++) {
			w.pending++;
			if (nfsb_start_write(&op, nf, &c[i], stable))
				nfsb_start_failed(&op, &w);
		}
		ret = nfsb_finish(&op, &w);
		/* A server may write less than asked: send the rest, one
		 * chunk at a time (rare, never seen with ganesha). */
		for (size_t i = 0; ret == 0 && i < n; i++) {
			while (ret == 0 && c[i].got < c[i].want) {
				struct nfsb_chunk *ci = &c[i];
				struct nfsb_writereq wr = {nf, ci, stable};
				bool was_unstable = ci->unstable;

				ci->buf += ci->got;
				ci->off += (off_t)ci->got;
				ci->want -= ci->got;
				ci->got = 0;
				ret = nfsb_call_on(&op, nfsb_start_write1, &wr);
				ci->unstable |= was_unstable;
				if (ret == 0 && ci->got == 0)
					ret = -EIO;
			}
		}
		nfsb_put(&op);
		if (ret < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			unstable |= c[i].unstable;
			verf_bad |= c[i].verf_bad;
		}
	} while (ret < 0 && nfsb_retry(&op, (int)ret, &tries));
	if (ret < 0)
		goto out;

	pthread_mutex_lock(&nf->lock);
	/* A new verifier while earlier unstable data was not committed: the
	 * server restarted and may have lost it.  The new data stays dirty
	 * for the next COMMIT. */
	ret = verf_bad ? -EIO : (ssize_t)size;
	if (unstable)
		nf->dirty = true;
	pthread_mutex_unlock(&nf->lock);
	nfsb_invalidate_file(nf);
out:
	if (c != stackc)
		free(c);
	return ret;
}
