/* SPDX-License-Identifier: GPL-2.0-or-later */
/* conn.c - the NFS contexts of the pool (its slots, checkout and backoff
 * are backends/remote/slots.c's) and the calls every operation shares. */
#include "backends/callctx.h"
#include "backends/nfs/internal.h"

/* ---- Connections ------------------------------------------------------ */

void nfsb_wait_init(struct nfsb_wait *w)
{
	w->pending = 0;
	w->err = 0;
	w->transport = false;
}

/* The codes libnfs completes a request with when no reply came (RPC
 * error, cancel, timeout): no NFS status maps to these. */
bool nfsb_is_transport(int err)
{
	return err == -EFAULT || err == -EINTR || err == -ETIMEDOUT ||
	       err == -ENOTCONN || err == -ECONNRESET || err == -EPIPE;
}

/* A request completed with `err`: -errno from NFS or a transport code. */
void nfsb_wait_done(struct nfsb_wait *w, int err)
{
	w->pending--;
	if (err >= 0)
		return;
	if (nfsb_is_transport(err)) {
		w->transport = true;
		err = -EIO;
	}
	if (!w->err)
		w->err = err;
}

/*
 * Run the context's event loop (and its wire's, if it has requests
 * pending) until every request counted in `w` has completed or the
 * deadline passes.  Returns 0, or -ETIMEDOUT/-EIO when the context is
 * unusable (the caller must destroy it before its frame, which the
 * callbacks point into, goes away).
 */
static int nfsb_drive(struct nfs_context *nfs, struct nfsb_wire *wire,
		      struct nfsb_wait *w, double deadline)
{
	while (w->pending > 0) {
		struct pollfd pfd[2];
		double left = deadline - vfs_mono_s();
		nfds_t n = 1;
		int ms;

		if (left <= 0)
			return -ETIMEDOUT;
		ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
		pfd[0].fd = nfs_get_fd(nfs);
		pfd[0].events = (short)nfs_which_events(nfs);
		pfd[0].revents = 0;
		if (pfd[0].fd < 0)
			return -EIO;
		if (nfsb_wire_busy(wire)) {
			pfd[1].fd = nfsb_wire_fd(wire);
			pfd[1].events = nfsb_wire_events(wire);
			pfd[1].revents = 0;
			n = 2;
		}
		if (poll(pfd, n, ms) < 0 && errno != EINTR)
			return -EIO;
		if (nfs_service(nfs, pfd[0].revents) < 0)
			return -EIO;
		if (n == 2 && nfsb_wire_service(wire, pfd[1].revents) < 0)
			return -EIO;
	}
	return 0;
}

void nfsb_cb_status(int err, struct nfs_context *nfs, void *data, void *priv)
{
	nfsb_wait_done(priv, err);
}

/* Build, configure and mount one context.  On failure *msg (if non-NULL)
 * gets libnfs's explanation. */
int nfsb_connect(struct nfsb_mount *m, double deadline,
		 struct nfs_context **out, char *msg, size_t msglen)
{
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *u;
	struct nfsb_wait w;
	int ret;

	if (!nfs)
		return -ENOMEM;
	/* Applies version, ports and uid/gid to the context. */
	u = nfs_parse_url_dir(nfs, m->libnfs_url);
	if (!u) {
		if (msg)
			snprintf(msg, msglen, "%s", nfs_get_error(nfs));
		ret = -EINVAL;
		goto err_destroy;
	}
	nfs_destroy_url(u);
	nfs_set_autoreconnect(nfs, 0);
	nfs_set_dircache(nfs, 0);
	/* Our deadline (nfsb_drive) decides; libnfs's own timer is only a
	 * backstop.  Were it to fire first, a timeout would look like a
	 * broken connection and be retried, doubling the wait. */
	nfs_set_timeout(nfs, (m->timeout + 2) * 1000);
	if (m->version == 4) {
		/* Each context is its own NFSv4 client: a SETCLIENTID with
		 * a name the server knows and a new verifier would make it
		 * drop the other contexts' state as a rebooted client's. */
		char name[96], verf[8];
		static unsigned long seq;
		unsigned long n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(name, sizeof(name), "vfsd-%ld-%lu-%ld.%09ld",
			 (long)getpid(), n, (long)ts.tv_sec, ts.tv_nsec);
		nfs4_set_client_name(nfs, name);
		for (size_t i = 0; i < sizeof(verf); i++)
			verf[i] = (char)(ts.tv_nsec >> (i * 3) ^ n >> i);
		nfs4_set_verifier(nfs, verf);
	}
	nfsb_wait_init(&w);
	w.pending = 1;
	if (nfs_mount_async(nfs, m->server, m->export, nfsb_cb_status, &w)) {
		w.pending = 0;
		w.err = -EIO;
	}
	ret = nfsb_drive(nfs, NULL, &w, deadline);
	if (ret == 0)
		ret = w.err;
	if (ret < 0) {
		if (msg) {
			const char *e = nfs_get_error(nfs);

			snprintf(msg, msglen, "%s",
				 ret == -ETIMEDOUT ? "no answer in time"
				 : e && *e         ? e
						   : strerror(-ret));
		}
		goto err_destroy;
	}
	*out = nfs;
	return 0;

err_destroy:
	nfs_destroy_context(nfs);
	return ret;
}

static int nfsb_slot_connect(void *drv, double by, void **conn, char *msg,
			     size_t msglen)
{
	struct nfs_context *nfs;
	int ret = nfsb_connect(drv, by, &nfs, msg, msglen);

	if (ret == 0)
		*conn = nfs;
	return ret;
}

const struct remote_slot_ops nfsb_slot_ops = {
	.connect = nfsb_slot_connect,
};

/*
 * Check out a connection for one call: the context of `want` if >= 0, else
 * any idle one; a missing context is rebuilt here (backends/remote/slots.h
 * has the rules: one rebuild at a time, the slot's own backoff beside a
 * working context, down with none left).
 */
int nfsb_get(struct nfsb_mount *m, int want, struct nfsb_op *op)
{
	struct remote_checkout co;
	int ret;

	op->m = m;
	op->dead = false;
	op->timed_out = false;
	op->abandoned = false;
	op->answered = false;
	op->own = false;
	/* before the deadline, nfsb_finish() drops the context at it */
	ret = remote_slots_get(&m->slots, want, &co);
	if (ret < 0)
		return ret;
	op->idx = co.idx;
	op->nfs = co.conn;
	op->wire = m->wires ? m->wires[co.idx] : NULL;
	op->deadline = co.deadline;
	op->caller_dl = co.caller_dl;
	__atomic_fetch_add(&m->fg_calls, 1, __ATOMIC_RELAXED);
	return 0;
}

/*
 * Give the connection back; forget it if the call found it broken
 * (nfsb_finish() destroyed it already).  A call the server answered shows
 * the server alive: a mount that was reconnecting or down is connected
 * again (calls on the contexts still alive go on while a broken one waits
 * for its rebuild, and would otherwise never say so).
 */
void nfsb_put(struct nfsb_op *op)
{
	enum remote_put how = REMOTE_PUT_IDLE;

	if (op->dead && op->abandoned)
		how = REMOTE_PUT_ABANDONED;
	else if (op->dead)
		how = op->timed_out ? REMOTE_PUT_TIMED_OUT : REMOTE_PUT_BROKEN;
	else if (op->answered)
		how = REMOTE_PUT_ANSWERED;
	/* a writer's own COMMIT is followed by its writes, not by a call
	 * that would wait behind them at the server */
	if (!op->own)
		__atomic_store_n(&op->m->fg_ns, vfs_mono_ns(),
				 __ATOMIC_RELAXED);
	/* after the time: nfsb_wb_cap() reads the count first */
	__atomic_fetch_sub(&op->m->fg_calls, 1, __ATOMIC_RELEASE);
	remote_slots_put(&op->m->slots, op->idx, how);
}

/*
 * A broken context dies at once, with its wire, while the frame of the
 * caller that queued its requests is alive: destroying runs the callbacks
 * of every request still queued (with a cancel status), and those point
 * into that frame.
 * nfsb_put() then forgets the connection.
 */
static void nfsb_kill(struct nfsb_op *op)
{
	op->dead = true;
	if (op->wire)
		nfsb_wire_reset(op->wire);
	nfs_destroy_context(op->nfs);
	op->nfs = NULL;
}

void nfsb_drop(struct nfsb_op *op)
{
	/* the server answered: nothing to count against it, and the next
	 * context of the slot is no reconnect */
	op->abandoned = true;
	nfsb_kill(op);
}

/*
 * Wait for the requests of `w` on op's context and fold the outcome into
 * one result.  A transport failure or timeout destroys the context.
 */
int nfsb_finish(struct nfsb_op *op, struct nfsb_wait *w)
{
	bool sent = w->pending > 0;
	int ret = nfsb_drive(op->nfs, op->wire, w, op->deadline);

	if (ret < 0) {
		const char *e = nfs_get_error(op->nfs);

		/* a caller's deadline that passed is no sign of a dead
		 * server.  op->deadline is rounded down to the ms, so when
		 * it is the caller's, vfs_call_expired() may not be true yet
		 * as the wait ends */
		op->abandoned = ret == -ETIMEDOUT &&
				(vfs_call_expired() || op->caller_dl);
		op->timed_out = ret == -ETIMEDOUT && !op->abandoned;
		log_debug("%s: connection %d lost: %s", op->m->display, op->idx,
			  ret == -ETIMEDOUT ? "no answer in time"
			  : e && *e         ? e
					    : "socket error");
		nfsb_kill(op);
		return ret;
	}
	if (w->transport) {
		const char *e = nfs_get_error(op->nfs);

		log_debug("%s: connection %d failed: %s", op->m->display,
			  op->idx, e && *e ? e : "no reply");
		nfsb_kill(op);
		return -EIO;
	}
	if (w->err == -ERANGE && op->m->version == 4) {
		/* libnfs 4.0.0 maps NFS4ERR_BAD_SEQID/OLD_STATEID/
		 * BAD_STATEID to ERANGE: this context's open state is out of
		 * step with the server and every later OPEN on it would
		 * fail.  Start it afresh. */
		pthread_mutex_lock(&op->m->lock);
		log_warn_ratelimited(&op->m->rl,
				     "%s: NFSv4 state lost on "
				     "connection %d (%s), reconnecting",
				     op->m->display, op->idx,
				     nfs_get_error(op->nfs));
		pthread_mutex_unlock(&op->m->lock);
		nfsb_kill(op);
		return -EIO;
	}
	if (sent)
		op->answered = true;
	return w->err;
}

/* Request start failed synchronously (no callback will come). */
void nfsb_start_failed(struct nfsb_op *op, struct nfsb_wait *w)
{
	const char *e = nfs_get_error(op->nfs);

	/* Bad arguments, no memory or an encoding failure: the context is
	 * still sound (a dead socket shows up in nfsb_drive()). */
	w->pending--;
	if (!w->err)
		w->err = -EIO;
	log_debug("%s: cannot queue request: %s", op->m->display, e ? e : "?");
}

/* Whether a failed call may be repeated once on a fresh connection
 * (backends/remote/pool.h).  A dead context fails its call with -EIO, or
 * -ETIMEDOUT when the server or the caller's deadline ran out; only the
 * former is retried. */
bool nfsb_retry(const struct nfsb_op *op, int ret, int *tries)
{
	return ret == -EIO &&
	       remote_retry_once(ret, op->dead && !op->timed_out, tries);
}

/* ---- Helpers ------------------------------------------------------------ */

char *nfsb_path(struct nfsb_mount *m, const char *path)
{
	return vfs_path_join(m->subdir, path);
}

void nfsb_stat_from64(struct stat *st, const struct nfs_stat_64 *s)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = s->nfs_dev;
	st->st_ino = s->nfs_ino;
	st->st_mode = s->nfs_mode;
	st->st_nlink = s->nfs_nlink;
	st->st_uid = s->nfs_uid;
	st->st_gid = s->nfs_gid;
	st->st_rdev = s->nfs_rdev;
	st->st_size = s->nfs_size;
	st->st_blksize = s->nfs_blksize ? s->nfs_blksize : 4096;
	/* from the bytes used: libnfs 4.0.0's NFSv4 stat counts its
	 * nfs_blocks in 4096-byte units, where st_blocks has 512 */
	st->st_blocks = s->nfs_used ? (blkcnt_t)((s->nfs_used + 511) / 512)
				    : (blkcnt_t)s->nfs_blocks;
	st->st_atim.tv_sec = s->nfs_atime;
	st->st_atim.tv_nsec = s->nfs_atime_nsec;
	st->st_mtim.tv_sec = s->nfs_mtime;
	st->st_mtim.tv_nsec = s->nfs_mtime_nsec;
	st->st_ctim.tv_sec = s->nfs_ctime;
	st->st_ctim.tv_nsec = s->nfs_ctime_nsec;
}

void nfsb_cb_stat(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nfsb_statreq *r = priv;

	if (err == 0)
		nfsb_stat_from64(r->st, data);
	nfsb_wait_done(r->w, err);
}

void nfsb_cb_ptr(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nfsb_ptrreq *r = priv;

	if (err == 0)
		r->ptr = data;
	nfsb_wait_done(r->w, err);
}

void nfsb_cb_strdup(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nfsb_ptrreq *r = priv;

	if (err == 0) {
		r->ptr = strdup(data);
		if (!r->ptr)
			err = -ENOMEM;
	}
	nfsb_wait_done(r->w, err);
}

int nfsb_lstat_on(struct nfsb_op *op, const char *full, struct stat *st)
{
	struct nfsb_wait w;
	struct nfsb_statreq r = {&w, st};

	nfsb_wait_init(&w);
	w.pending = 1;
	if (nfs_lstat64_async(op->nfs, full, nfsb_cb_stat, &r))
		nfsb_start_failed(op, &w);
	return nfsb_finish(op, &w);
}

/* lstat by export-relative path, through the cache. */
int nfsb_lstat_full(struct nfsb_mount *m, const char *full, struct stat *st,
		    bool use_cache)
{
	struct nfsb_op op;
	uint64_t gen;
	int ret, tries = 0;

	if (use_cache && !vfs_callctx.fresh &&
	    remote_cache_get_attr(m->cache, full, st))
		return 0;
	gen = remote_cache_gen(m->cache);
	do {
		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		ret = nfsb_lstat_on(&op, full, st);
		nfsb_put(&op);
	} while (nfsb_retry(&op, ret, &tries));
	if (ret == 0)
		remote_cache_put_attr(m->cache, full, st, gen);
	return ret;
}
