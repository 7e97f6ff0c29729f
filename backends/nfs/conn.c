/* SPDX-License-Identifier: GPL-2.0-or-later */
/* conn.c - the NFS connection pool and the calls every operation shares. */
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
 * Run the context's event loop until every request counted in `w` has
 * completed or the deadline passes.  Returns 0, or -ETIMEDOUT/-EIO when
 * the context is unusable (the caller must destroy it before its frame,
 * which the callbacks point into, goes away).
 */
static int nfsb_drive(struct nfs_context *nfs, struct nfsb_wait *w,
		      double deadline)
{
	while (w->pending > 0) {
		struct pollfd pfd;
		double left = deadline - vfs_mono_s();
		int ms;

		if (left <= 0)
			return -ETIMEDOUT;
		ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
		pfd.fd = nfs_get_fd(nfs);
		pfd.events = (short)nfs_which_events(nfs);
		pfd.revents = 0;
		if (pfd.fd < 0)
			return -EIO;
		if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
			return -EIO;
		if (nfs_service(nfs, pfd.revents) < 0)
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
	ret = nfsb_drive(nfs, &w, deadline);
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

/* Whether any slot holds a context (the server answered it once and no
 * call has found it broken since). */
static bool nfsb_any_live_locked(struct nfsb_mount *m)
{
	for (size_t i = 0; i < m->nconn; i++)
		if (m->conns[i].nfs)
			return true;
	return false;
}

/* at, on CLOCK_MONOTONIC, moved to vfs_mono_s() time `t` if sooner */
static void nfsb_wake_by(struct timespec *at, double t)
{
	double left = t - vfs_mono_s();
	struct timespec w;

	if (left < 0)
		left = 0;
	clock_gettime(CLOCK_MONOTONIC, &w);
	w.tv_sec += (time_t)left;
	w.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
	if (w.tv_nsec >= 1000000000L) {
		w.tv_sec++;
		w.tv_nsec -= 1000000000L;
	}
	if (w.tv_sec < at->tv_sec ||
	    (w.tv_sec == at->tv_sec && w.tv_nsec < at->tv_nsec))
		*at = w;
}

void nfsb_conn_up_locked(struct nfsb_mount *m, struct nfsb_conn *c,
			 struct nfs_context *nfs)
{
	c->nfs = nfs;
	/* a reconnect if the slot had a context that broke; not its first,
	 * nor one that replaces a context given up at a caller's deadline
	 * (the server never failed) */
	remote_pool_connected_locked(&m->rp, c->gen > 0 && !c->abandoned);
	c->gen++;
	c->abandoned = false;
	c->retry_at = 0;
	c->backoff_ms = 0;
}

/*
 * Check out a connection for one call: the context of `want` if >= 0, else
 * any idle one.  A missing context is rebuilt here.  Fails fast with -EIO
 * while the mount is down, with -ETIMEDOUT if none came free before the
 * deadline.
 *
 * A slot whose rebuild fails while other slots have a context is no sign
 * of a dead server (it may refuse one connection more, or one attempt
 * went wrong): the mount stays as it is (it does not even pass through
 * reconnecting), that slot waits its own backoff (retry_at, doubling
 * with each failure of the slot, reset when it connects) before it is
 * tried again, and the caller waits for one of the working contexts
 * instead; such a rebuild gets only part of the call's budget.  Only a
 * failure with no context left makes the mount down.  A rebuild cut
 * short by the caller's own deadline (backends/callctx.h) says nothing
 * about the server and changes nothing.
 */
int nfsb_get(struct nfsb_mount *m, int want, struct nfsb_op *op)
{
	struct remote_deadline dl;
	struct nfsb_conn *c = NULL;
	struct nfs_context *nfs;
	double connect_by;
	char msg[256];
	int idx = -1, ret;
	bool others;

	remote_deadline_start(&dl, m->timeout * 1000L);
	/* past the caller's deadline (backends/callctx.h): send nothing;
	 * before it, nfsb_finish() drops the context at the deadline */
	if (dl.budget_ms <= 0)
		return -ETIMEDOUT;
	op->m = m;
	op->deadline = vfs_mono_s() + dl.budget_ms / 1000.0;
	op->dead = false;
	op->timed_out = false;
	op->abandoned = false;
	op->answered = false;
	op->caller_dl = dl.budget_ms < m->timeout * 1000L;

	pthread_mutex_lock(&m->lock);
again:
	for (;;) {
		struct timespec wake = dl.at;
		double now = vfs_mono_s();
		bool live = nfsb_any_live_locked(m);

		if (m->rp.state == REMOTE_DOWN && now < m->down_until) {
			pthread_mutex_unlock(&m->lock);
			return -EIO;
		}
		if (want >= 0) {
			if (!m->conns[want].busy)
				idx = want;
		} else {
			/* Prefer a live context over one to rebuild, and
			 * skip one whose rebuild waits out its backoff. */
			for (size_t i = 0; i < m->nconn; i++) {
				struct nfsb_conn *ci = &m->conns[i];

				if (ci->busy)
					continue;
				if (!ci->nfs && live && now < ci->retry_at) {
					nfsb_wake_by(&wake, ci->retry_at);
					continue;
				}
				if (idx < 0 || (ci->nfs && !m->conns[idx].nfs))
					idx = (int)i;
			}
		}
		if (idx >= 0 && (m->conns[idx].nfs || !m->reconnecting))
			break;
		/* A rebuild towards a server already known to be down: do
		 * not queue behind it. */
		if (idx >= 0 && m->rp.state == REMOTE_DOWN) {
			pthread_mutex_unlock(&m->lock);
			return -EIO;
		}
		idx = -1;
		if (pthread_cond_timedwait(&m->cond, &m->lock, &wake) ==
			    ETIMEDOUT &&
		    vfs_ts_ms_until(&dl.at) <= 0) {
			pthread_mutex_unlock(&m->lock);
			return -ETIMEDOUT;
		}
	}
	c = &m->conns[idx];
	c->busy = true;
	op->idx = idx;
	if (c->nfs) {
		op->nfs = c->nfs;
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	/* One rebuild at a time: a dead server costs one timeout, and the
	 * other callers wait for its outcome or fail fast once it is down. */
	m->reconnecting = true;
	others = nfsb_any_live_locked(m);
	connect_by = op->deadline;
	if (others && want < 0) {
		/* A working context may come free long before a connect
		 * that goes unanswered (a server at its connection limit,
		 * a firewall dropping new flows) gives up: spend a quarter
		 * of what is left on the connect, then wait for a working
		 * context with the rest.  At least NFSB_REBUILD_MIN_MS, so
		 * that a short budget still leaves a healthy server time
		 * for the handshake (portmapper, MOUNT, NULL). */
		double left = op->deadline - vfs_mono_s();
		double cap = left / 4;

		if (cap < NFSB_REBUILD_MIN_MS / 1000.0)
			cap = NFSB_REBUILD_MIN_MS / 1000.0;
		if (vfs_mono_s() + cap < connect_by)
			connect_by = vfs_mono_s() + cap;
	}
	/* (A first connect of a pool member changes no state, nor does the
	 * rebuild of a context given up at a caller's deadline, nor that of
	 * a slot beside a working context: the server answers that one.) */
	if (!others && m->rp.state == REMOTE_CONNECTED && c->gen > 0 &&
	    !c->abandoned)
		remote_pool_set_state_locked(&m->rp, REMOTE_RECONNECTING, NULL);
	pthread_mutex_unlock(&m->lock);

	ret = nfsb_connect(m, connect_by, &nfs, msg, sizeof(msg));

	pthread_mutex_lock(&m->lock);
	m->reconnecting = false;
	if (ret == 0) {
		nfsb_conn_up_locked(m, c, nfs);
		op->nfs = nfs;
	} else if (ret == -ETIMEDOUT && (vfs_call_expired() ||
					 (connect_by >= op->deadline &&
					  dl.budget_ms < m->timeout * 1000L))) {
		/* Cut short by the caller's own deadline (the budget was
		 * the caller's, and the connect had all of it: op->deadline
		 * is rounded down to the ms, so vfs_call_expired() alone
		 * may not be true yet): nothing is known about the server,
		 * so no state change, no backoff and no retry_at.  c->abandoned
		 * is left as it is: the slot's next rebuild is a reconnect
		 * exactly when this one would have been. */
		c->busy = false;
		log_debug("%s: connection %d: connect cut short by the "
			  "caller's deadline",
			  m->display, idx);
	} else if (nfsb_any_live_locked(m)) {
		/* The slot's own backoff: the calls the working contexts
		 * answer reset the pool's, and would have it retried at the
		 * first step forever. */
		unsigned delay = remote_backoff_next(&c->backoff_ms,
						     m->rp.backoff_first_ms,
						     m->rp.backoff_max_ms);

		c->busy = false;
		c->retry_at = vfs_mono_s() + delay / 1000.0;
		log_warn_ratelimited(&m->rl,
				     "%s: connection %d failed: %s "
				     "(again in %u ms)",
				     m->display, idx, msg, delay);
		pthread_cond_broadcast(&m->cond);
		/* wait for a working context with what is left */
		if (want < 0 && vfs_ts_ms_until(&dl.at) > 0) {
			idx = -1;
			goto again;
		}
		ret = ret == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
	} else {
		c->busy = false;
		m->down_until =
			vfs_mono_s() +
			remote_pool_backoff_next_locked(&m->rp) / 1000.0;
		log_warn_ratelimited(&m->rl, "%s: reconnect failed: %s",
				     m->display, msg);
		remote_pool_set_state_locked(&m->rp, REMOTE_DOWN, NULL);
		ret = ret == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/*
 * Give the connection back; destroy it if the call found it broken.  A
 * call the server answered shows the server alive: a mount that was
 * reconnecting or down is connected again (calls on the contexts still
 * alive go on while a broken one waits for its rebuild, and would
 * otherwise never say so).
 */
void nfsb_put(struct nfsb_op *op)
{
	struct nfsb_mount *m = op->m;
	struct nfsb_conn *c = &m->conns[op->idx];

	pthread_mutex_lock(&m->lock);
	if (op->dead) {
		/* nfsb_finish() destroyed the context already. */
		c->nfs = NULL;
		if (op->abandoned) {
			/* the caller's deadline, not the server: no state
			 * change, and its rebuild is no reconnect */
			c->abandoned = true;
		} else {
			if (op->timed_out)
				/* A server that does not answer: stop
				 * sending new calls its way for a while. */
				m->down_until = vfs_mono_s() +
						remote_pool_backoff_hold_locked(
							&m->rp) /
							1000.0;
			remote_pool_broken_locked(&m->rp, op->timed_out, NULL);
		}
	} else if (op->answered && m->rp.state != REMOTE_CONNECTED) {
		remote_pool_connected_locked(&m->rp, false);
	}
	c->busy = false;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/*
 * A broken context dies at once, while the frame of the caller that queued
 * its requests is alive: destroying runs the callbacks of every request
 * still queued (with a cancel status), and those point into that frame.
 * nfsb_put() then forgets the connection.
 */
static void nfsb_kill(struct nfsb_op *op)
{
	op->dead = true;
	nfs_destroy_context(op->nfs);
	op->nfs = NULL;
}

/*
 * Wait for the requests of `w` on op's context and fold the outcome into
 * one result.  A transport failure or timeout destroys the context.
 */
int nfsb_finish(struct nfsb_op *op, struct nfsb_wait *w)
{
	bool sent = w->pending > 0;
	int ret = nfsb_drive(op->nfs, w, op->deadline);

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
