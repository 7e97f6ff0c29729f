// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * wb.c - write-behind for the NFS backend: the mount's writer thread, an
 * event-loop sender of the shared core (backends/remote/wb.h has the
 * queue's rules: window, order of overlapping jobs, drains, sticky
 * errors).
 *
 * The kernel NFS client answers write(2) from its page cache and writes
 * behind; we do the same without a cache: the core queues a copy of each
 * ordinary write, and the writer thread sends the jobs as UNSTABLE WRITEs
 * on a libnfs context of its own and collects the replies.  Nothing is
 * reported as stable that is not: flush (close) and fsync first wait for
 * the file's jobs and then COMMIT, as before.  A failed job's error is the
 * file's next write, flush or fsync's (the kernel client's rule).
 *
 * At most NFSB_WB_RPCS WRITEs are in flight on the thread's context:
 * libnfs 4.0 walks every outstanding request of a context each time it is
 * serviced (its timeout scan), which for NFSv4's small pieces (thousands
 * per window) costs more than the writes, while a few hundred in flight
 * already fill a round trip; later chunks of a job go out as earlier ones
 * are answered, in order.
 *
 * While the mount's callers are active (a pool call in progress, or one
 * ended less than NFSB_WB_IDLE_NS ago, but for a COMMIT: its writer goes
 * on writing, and nobody waits) the thread keeps no more than
 * NFSB_WB_SHARE bytes of WRITEs in flight (one WRITE at least), counted
 * in bytes, as a program's writes of 4 KiB are WRITEs of 4 KiB: the
 * server serves its requests from one pool of workers, so a reader's READ
 * waits behind every WRITE queued there, a whole window of them from a
 * page-cache writer (docs/performance.md, the "buffered" phase).  One
 * 1 MiB WRITE in flight already streams at the server's pace; alone, the
 * thread fills the window as before.  The fair sharing
 * of the router (vfsd/fair.h) counts a write-behind write as done once
 * queued, so this is where a page-cache writer is held to its share.
 *
 * The thread's context is used by the thread alone (libnfs 4.0 contexts
 * are not thread-safe), and so is its list of jobs in flight.  A context
 * that fails, or that answered nothing for the mount's timeout while jobs
 * were in flight, is destroyed (its pending callbacks run with errors,
 * failing their jobs with EIO) and rebuilt for the next job.
 *
 * Lock order: the core's lock, then the mount's open_lock (a leaf, in
 * nfsb_wb_file_at).  The thread takes nfsb_file.lock and nfsb_mount.lock
 * (for the rate limit of its warnings) with no other lock held.
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>

#include "backends/nfs/internal.h"

#define NFSB_WB_WINDOW  (16u << 20)
#define NFSB_WB_RPCS    256
#define NFSB_WB_SHARE   (1u << 20)
#define NFSB_WB_IDLE_NS 20000000 /* a qd-1 reader's gap is far less */

/* The sender's part of a job (remote_wjob.priv). */
struct nfsb_wjob {
	struct nfsb_wjob *next; /* in flight, in order (the thread's) */
	struct remote_wjob *job;
	int tries;          /* sends on a context that then failed */
	struct nfsb_wait w; /* the chunks' completion */
	size_t n;
	size_t sent; /* c[0..sent) were handed to libnfs */
	struct nfsb_chunk c[];
};

/* The writer thread's state, its alone but for evfd. */
struct nfsb_wb {
	struct nfsb_wjob *flight; /* taken from the core, in order */
	struct nfsb_wjob **ftail;
	unsigned rpcs; /* WRITEs in flight */
	size_t bytes;  /* ... their bytes, or more (nfsb_wb_count) */
	int evfd;      /* wakes the thread */
	pthread_t thread;
	struct nfs_context *nfs;
	struct nfsb_wire *wire; /* NFSv4: the context's WRITE connection */
	double progress;        /* last reply, or send into an idle pipe */
};

static struct nfsb_file *nfsb_wb_file(const struct remote_wb_file *wf)
{
	return (struct nfsb_file *)((char *)wf -
				    offsetof(struct nfsb_file, wbf));
}

/* Whether every chunk of j went out and came back (or j failed). */
static bool nfsb_wb_finished(const struct nfsb_wjob *j)
{
	return j->w.pending == 0 && (j->sent == j->n || j->w.err);
}

/* The job is done, successfully or not: the core frees it. */
static void nfsb_wb_complete(struct nfsb_mount *m, struct nfsb_wjob *j)
{
	struct remote_wjob *job = j->job;
	struct nfsb_file *nf = nfsb_wb_file(job->file);
	bool unstable = false, verf_bad = false;
	int err = j->w.err;

	for (size_t i = 0; i < j->n; i++) {
		unstable |= j->c[i].unstable;
		verf_bad |= j->c[i].verf_bad;
		if (!err && j->c[i].got < j->c[i].want)
			err = -EIO;
	}
	if (!err && verf_bad)
		err = -EIO; /* the server restarted: data may be lost */
	if (unstable) {
		pthread_mutex_lock(&nf->lock);
		nf->dirty = true;
		pthread_mutex_unlock(&nf->lock);
	}
	if (err)
		log_debug("%s: write-behind of %zu bytes at %lld failed: %s",
			  m->display, job->len, (long long)job->off,
			  strerror(-err));
	remote_wb_done(m->wbq, job, err);
}

/*
 * How many bytes of WRITEs may be in flight now (NFSB_WB_RPCS WRITEs at
 * most, one at least): any number alone, NFSB_WB_SHARE while the mount's
 * callers are active, which *shared tells.
 */
static size_t nfsb_wb_cap(struct nfsb_mount *m, bool *shared)
{
	/* the count first: a call that ended stored its time before it
	 * left the count (nfsb_put), so no count means that time is seen */
	unsigned calls = __atomic_load_n(&m->fg_calls, __ATOMIC_ACQUIRE);
	int64_t last = __atomic_load_n(&m->fg_ns, __ATOMIC_RELAXED);

	*shared = calls || vfs_mono_ns() - last < NFSB_WB_IDLE_NS;
	return *shared ? NFSB_WB_SHARE : SIZE_MAX;
}

/* Whether a WRITE of `want` bytes may go now, within `cap` bytes. */
static bool nfsb_wb_room(const struct nfsb_wb *wb, size_t cap, size_t want)
{
	if (wb->rpcs >= NFSB_WB_RPCS)
		return false;
	return wb->rpcs == 0 || (wb->bytes < cap && want <= cap - wb->bytes);
}

/* `vfsctl stats`: the most in flight after a send (only this thread
 * writes them) */
static void nfsb_wb_note(unsigned *max, unsigned rpcs)
{
	if (rpcs > __atomic_load_n(max, __ATOMIC_RELAXED))
		__atomic_store_n(max, rpcs, __ATOMIC_RELAXED);
}

static void nfsb_wb_note_bytes(unsigned long *max, size_t bytes)
{
	if (bytes > __atomic_load_n(max, __ATOMIC_RELAXED))
		__atomic_store_n(max, (unsigned long)bytes, __ATOMIC_RELAXED);
}

/*
 * Send j's chunks from c[j->sent] on that are not written in full (a short
 * write sends its rest), while there is room within `cap` bytes (in order:
 * false when a chunk had to wait).
 */
static bool nfsb_wb_send(struct nfsb_op *op, struct nfsb_wb *wb,
			 struct nfsb_wjob *j, size_t cap)
{
	for (; j->sent < j->n; j->sent++) {
		struct nfsb_chunk *c = &j->c[j->sent];

		if (j->w.err) {
			j->sent = j->n; /* a send failed: no more */
			break;
		}
		if (c->got == c->want && c->want)
			continue;
		if (c->got) {
			/* a server may write less than asked: the rest */
			c->buf += c->got;
			c->off += (off_t)c->got;
			c->want -= c->got;
			c->got = 0;
		}
		if (!nfsb_wb_room(wb, cap, c->want))
			return false;
		j->w.pending++;
		wb->rpcs++;
		wb->bytes += c->want;
		if (nfsb_start_write(op, c->nf, c, 0)) {
			j->w.pending--;
			wb->rpcs--;
			wb->bytes -= c->want;
			if (!j->w.err)
				j->w.err = -EIO;
		}
	}
	return true;
}

/* The replies still due on the thread's context, and their bytes: a
 * job's WRITEs are of its size or the mount's wsize, whichever is less
 * (its last and a short write's rest may be less: counted in full). */
static void nfsb_wb_count(struct nfsb_mount *m, struct nfsb_wb *wb)
{
	wb->rpcs = 0;
	wb->bytes = 0;
	for (struct nfsb_wjob *j = wb->flight; j; j = j->next) {
		size_t each = j->job->len < m->wsize ? j->job->len : m->wsize;

		wb->rpcs += (unsigned)j->w.pending;
		wb->bytes += (size_t)j->w.pending * each;
	}
}

/*
 * Destroy the context: its pending callbacks fail the jobs in flight.
 * After a socket error (an idle connection found dead: the server
 * restarted, say) those jobs go out once more on a fresh context, as the
 * pool's calls are retried once; rewriting the same bytes is harmless, and
 * if the server lost earlier unstable data the write verifier tells.  Jobs
 * that timed out are not retried: that would double the wait.
 */
static void nfsb_wb_kill(struct nfsb_mount *m, struct nfsb_wb *wb,
			 bool timed_out)
{
	pthread_mutex_lock(&m->lock);
	log_warn_ratelimited(&m->rl, "%s: write-behind connection lost (%s)",
			     m->display,
			     timed_out ? "no answer in time" : "socket error");
	pthread_mutex_unlock(&m->lock);
	if (wb->wire)
		nfsb_wire_reset(wb->wire);
	nfs_destroy_context(wb->nfs);
	wb->nfs = NULL;
	for (struct nfsb_wjob *j = wb->flight; j; j = j->next) {
		if (nfsb_wb_finished(j) && !j->w.transport)
			continue; /* answered before the end */
		/* a job none of which went out yet (the in-flight cap held
		 * it back) is not counted as sent */
		if (timed_out || (j->sent > 0 && j->tries++ > 0)) {
			j->w.pending = 0;
			j->w.err = -EIO;
			continue;
		}
		/* again from its first chunk not written in full, in its
		 * place: ahead of what was taken after it */
		nfsb_wait_init(&j->w);
		j->sent = 0;
		for (size_t i = 0; i < j->n; i++) {
			j->c[i].unstable = false;
			j->c[i].verf_bad = false;
		}
	}
	wb->rpcs = 0;
	wb->bytes = 0;
}

/* Whether some job in flight has chunks to send (on a context). */
static bool nfsb_wb_unsent(const struct nfsb_wb *wb)
{
	for (const struct nfsb_wjob *j = wb->flight; j; j = j->next)
		if (!nfsb_wb_finished(j))
			return true;
	return false;
}

/* Make the thread's context; on failure fail every job taken (the next
 * job tries anew).  Whether there is one. */
static bool nfsb_wb_connect(struct nfsb_mount *m, struct nfsb_wb *wb)
{
	char msg[256] = "";
	int ret;

	ret = nfsb_connect(m, vfs_mono_s() + m->timeout, &wb->nfs, msg,
			   sizeof(msg));
	if (ret == 0)
		return true;
	wb->nfs = NULL;
	pthread_mutex_lock(&m->lock);
	log_warn_ratelimited(&m->rl, "%s: write-behind cannot connect: %s",
			     m->display, msg[0] ? msg : strerror(-ret));
	pthread_mutex_unlock(&m->lock);
	while (wb->flight) {
		struct nfsb_wjob *j = wb->flight;

		wb->flight = j->next;
		j->w.err = -EIO;
		nfsb_wb_complete(m, j);
	}
	wb->ftail = &wb->flight;
	return false;
}

/* Complete the jobs that are finished; a short write's rests go out
 * next round. */
static void nfsb_wb_reap(struct nfsb_mount *m, struct nfsb_wb *wb)
{
	struct nfsb_wjob **pp;

	for (pp = &wb->flight; *pp;) {
		struct nfsb_wjob *j = *pp;
		bool short_write = false;

		if (!nfsb_wb_finished(j)) {
			pp = &j->next;
			continue;
		}
		for (size_t i = 0; i < j->n; i++)
			short_write |=
				j->c[i].got < j->c[i].want && j->c[i].got > 0;
		if (short_write && !j->w.err && wb->nfs) {
			j->sent = 0;
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		nfsb_wb_complete(m, j);
	}
	wb->ftail = pp;
	nfsb_wb_count(m, wb);
}

static void *nfsb_wb_main(void *arg)
{
	struct nfsb_mount *m = arg;
	struct nfsb_wb *wb = m->wb;

	for (;;) {
		struct nfsb_op op = {.m = m, .idx = -1, .wire = wb->wire};
		struct remote_wjob *job;
		struct pollfd pfd[3];
		int npfd = 1, ms;

		/* what may go now joins the flight, in order */
		while ((job = remote_wb_take(m->wbq))) {
			struct nfsb_wjob *j = job->priv;

			j->next = NULL;
			*wb->ftail = j;
			wb->ftail = &j->next;
		}
		if (!wb->flight && remote_wb_stopping(m->wbq))
			break;
		if (nfsb_wb_unsent(wb) && !wb->nfs && !nfsb_wb_connect(m, wb))
			continue;
		op.nfs = wb->nfs;
		/* a WRITE on the wire goes by the mount's timeout: nothing
		 * waits for it but the job (its staleness is judged below) */
		op.deadline = vfs_mono_s() + m->timeout;
		if (wb->rpcs == 0)
			wb->progress = vfs_mono_s(); /* into an idle pipe */
		/* send as much as may be in flight */
		bool shared;
		size_t cap = nfsb_wb_cap(m, &shared);
		unsigned had = wb->rpcs;

		for (struct nfsb_wjob *j = wb->flight; j && wb->nfs;
		     j = j->next)
			if (!nfsb_wb_send(&op, wb, j, cap))
				break;
		if (wb->rpcs > had)
			nfsb_wb_note(shared ? &m->base.wb_shared_max
					    : &m->base.wb_max,
				     wb->rpcs);
		if (wb->rpcs > had && shared)
			nfsb_wb_note_bytes(&m->base.wb_shared_max_bytes,
					   wb->bytes);

		pfd[0] = (struct pollfd){.fd = wb->evfd, .events = POLLIN};
		if (wb->nfs && wb->flight) {
			pfd[1] = (struct pollfd){
				.fd = nfs_get_fd(wb->nfs),
				.events = (short)nfs_which_events(wb->nfs),
			};
			npfd = 2;
			if (nfsb_wire_busy(wb->wire)) {
				pfd[2] = (struct pollfd){
					.fd = nfsb_wire_fd(wb->wire),
					.events = nfsb_wire_events(wb->wire),
				};
				npfd = 3;
			}
		}
		/* libnfs checks its timers only in nfs_service() */
		ms = wb->flight ? 100 : -1;
		if (poll(pfd, (nfds_t)npfd, ms) < 0 && errno != EINTR)
			pfd[0].revents = 0;
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(wb->evfd, &v, sizeof(v)) < 0)
				v = 0;
		}
		int before = 0, after = 0;
		bool failed, late = false;

		for (struct nfsb_wjob *j = wb->flight; j; j = j->next)
			before += j->w.pending;
		failed = npfd >= 2 &&
			 (pfd[1].fd < 0 ||
			  nfs_service(wb->nfs, pfd[1].revents) < 0 ||
			  (npfd == 3 &&
			   nfsb_wire_service(wb->wire, pfd[2].revents) < 0));
		for (struct nfsb_wjob *j = wb->flight; j; j = j->next)
			after += j->w.pending;
		if (after < before)
			wb->progress = vfs_mono_s();
		/* late: no reply at all for a whole timeout; a slow link
		 * that keeps answering is not dead, however long the queue */
		if (!failed && wb->nfs && wb->flight)
			late = vfs_mono_s() - wb->progress > m->timeout;
		if (failed || late)
			nfsb_wb_kill(m, wb, late);
		nfsb_wb_reap(m, wb);
	}
	return NULL;
}

static void nfsb_wb_wake(void *ctx)
{
	struct nfsb_mount *m = ctx;
	uint64_t one = 1;

	if (write(m->wb->evfd, &one, sizeof(one)) < 0)
		log_debug("%s: eventfd: %s", m->display, strerror(errno));
}

/* The handle's path follows renames: read it under open_lock. */
static bool nfsb_wb_file_at(void *ctx, const struct remote_wb_file *wf,
			    const char *full)
{
	struct nfsb_mount *m = ctx;
	bool at;

	pthread_mutex_lock(&m->open_lock);
	at = strcmp(nfsb_wb_file(wf)->path, full) == 0;
	pthread_mutex_unlock(&m->open_lock);
	return at;
}

static size_t nfsb_wb_chunks(const struct nfsb_mount *m, size_t len)
{
	return (len + m->wsize - 1) / m->wsize;
}

static size_t nfsb_wb_priv_size(void *ctx, size_t len)
{
	size_t size = sizeof(struct nfsb_wjob) +
		      nfsb_wb_chunks(ctx, len) * sizeof(struct nfsb_chunk);

	/* the job's data follows */
	return (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
}

/* Cut the job into WRITEs of the mount's wsize. */
static void nfsb_wb_init_job(void *ctx, struct remote_wjob *job)
{
	struct nfsb_mount *m = ctx;
	struct nfsb_wjob *j = job->priv;
	size_t chunk = m->wsize, size = job->len;

	*j = (struct nfsb_wjob){.job = job, .n = nfsb_wb_chunks(m, size)};
	nfsb_wait_init(&j->w);
	for (size_t i = 0; i < j->n; i++)
		j->c[i] = (struct nfsb_chunk){
			.w = &j->w,
			.nf = nfsb_wb_file(job->file),
			.buf = job->data + i * chunk,
			.off = job->off + (off_t)(i * chunk),
			.want = size - i * chunk < chunk ? size - i * chunk
							 : chunk,
		};
}

static const struct remote_wb_ops nfsb_wb_ops = {
	.wake = nfsb_wb_wake,
	.file_at = nfsb_wb_file_at,
	.priv_size = nfsb_wb_priv_size,
	.init_job = nfsb_wb_init_job,
};

int nfsb_wb_init(struct nfsb_mount *m)
{
	struct nfsb_wb *wb = calloc(1, sizeof(*wb));
	int ret;

	if (!wb)
		return -ENOMEM;
	wb->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wb->evfd < 0) {
		ret = -errno;
		goto err_free;
	}
	wb->ftail = &wb->flight;
	if (m->version == 4) {
		wb->wire = nfsb_wire_new(m->auth_uid, m->auth_gid);
		if (!wb->wire) {
			ret = -ENOMEM;
			goto err_close;
		}
	}
	m->wb = wb;
	ret = remote_wb_new(&m->wbq, &nfsb_wb_ops, m, 0, NFSB_WB_WINDOW, 0);
	if (ret < 0)
		goto err_close;
	if (pthread_create(&wb->thread, NULL, nfsb_wb_main, m) != 0) {
		ret = -EAGAIN;
		goto err_queue;
	}
	return 0;

err_queue:
	remote_wb_free(m->wbq);
	m->wbq = NULL;
err_close:
	nfsb_wire_free(wb->wire);
	close(wb->evfd);
	m->wb = NULL;
err_free:
	free(wb);
	return ret;
}

void nfsb_wb_stop(struct nfsb_mount *m)
{
	struct nfsb_wb *wb = m->wb;

	if (!wb)
		return;
	remote_wb_stop(m->wbq);
	pthread_join(wb->thread, NULL);
	remote_wb_free(m->wbq);
	m->wbq = NULL;
	if (wb->nfs)
		nfs_destroy_context(wb->nfs);
	nfsb_wire_free(wb->wire);
	close(wb->evfd);
	free(wb);
	m->wb = NULL;
}

ssize_t nfsb_wb_write(struct nfsb_file *nf, const void *buf, size_t size,
		      off_t off)
{
	int ret = remote_wb_write(nfsb_m(nf->base.mount)->wbq, &nf->wbf, buf,
				  size, off);

	return ret < 0 ? ret : (ssize_t)size;
}

void nfsb_wb_drain(struct nfsb_file *nf)
{
	remote_wb_drain(nfsb_m(nf->base.mount)->wbq, &nf->wbf);
}

void nfsb_wb_drain_path(struct nfsb_mount *m, const char *full)
{
	remote_wb_drain_path(m->wbq, full);
}

void nfsb_wb_drain_file(struct nfsb_file *nf)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);
	char *path;

	nfsb_wb_drain(nf);
	if (!m->wbq)
		return;
	pthread_mutex_lock(&m->open_lock);
	path = strdup(nf->path);
	pthread_mutex_unlock(&m->open_lock);
	if (path)
		nfsb_wb_drain_path(m, path);
	free(path);
}
