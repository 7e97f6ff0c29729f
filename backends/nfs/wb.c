// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * wb.c - write-behind: each mount's writer thread.
 *
 * Without the kernel's writeback cache (off for shared backends, so that
 * another host's changes are seen) a program's write(2) reaches us one
 * FUSE request at a time, and each waited for its WRITE's reply: one round
 * trip plus the server's work per MiB, nothing overlapped.  The kernel NFS
 * client instead answers write(2) from its page cache and writes behind.
 * This file does the same without a cache: an ordinary write is copied
 * into a job, queued, and answered at once; the mount's writer thread
 * sends the jobs on a libnfs context of its own and collects the replies.
 *
 * Nothing is reported as stable that is not: the data is UNSTABLE at the
 * server until flush (close) or fsync, which first wait for the file's
 * jobs and then COMMIT, as before.  A job that fails leaves its error on
 * the file, and the next write, flush or fsync returns it (the kernel
 * client's rule).  O_DIRECT, O_SYNC and O_DSYNC writes never come here.
 *
 * What could see the file behind the queued data waits for it first:
 * reads and attribute requests of the file, truncation, COMMIT, release.
 * Jobs of one file that overlap are never in flight together, so the
 * server cannot apply them out of order.  At most NFSB_WB_WINDOW bytes are
 * queued or in flight per mount; a writer beyond it waits.  At most
 * NFSB_WB_RPCS WRITEs are in flight on the thread's context: libnfs 4.0
 * walks every outstanding request of a context each time it is serviced
 * (its timeout scan), which for NFSv4's 3.5 KiB pieces (thousands per
 * 16 MiB) cost more than the writes (256 of them are 900 KiB a round trip);
 * later chunks of a job go out as earlier ones are answered, in order.
 *
 * The thread's context is used by the thread alone (libnfs 4.0 contexts
 * are not thread-safe).  A context that fails, or that answered nothing
 * for the mount's timeout while jobs were in flight, is destroyed (its pending
 * callbacks run with errors, failing their jobs with EIO) and rebuilt for
 * the next job.
 *
 * Lock order: nfsb_wb.lock, then nfsb_file.lock or nfsb_mount.lock (for
 * the rate limit of its warnings); the mount's open_lock is a leaf.
 */
#include <sys/eventfd.h>

#include "backends/nfs/internal.h"

#define NFSB_WB_WINDOW (16u << 20)
#define NFSB_WB_RPCS   256

struct nfsb_wjob {
	struct nfsb_wjob *next;
	struct nfsb_file *nf;
	off_t off;
	size_t len;
	int tries;          /* sends on a context that then failed */
	struct nfsb_wait w; /* the chunks' completion */
	size_t n;
	size_t sent;          /* c[0..sent) were handed to libnfs */
	struct nfsb_chunk *c; /* [n], in the same allocation */
	char *data;           /* ditto */
};

struct nfsb_wb {
	pthread_mutex_t lock;
	pthread_cond_t done;      /* a job completed */
	struct nfsb_wjob *queued; /* not sent yet, in order */
	struct nfsb_wjob **qtail;
	struct nfsb_wjob *flight; /* sent, in order (the thread's alone) */
	struct nfsb_wjob **ftail;
	unsigned rpcs; /* WRITEs in flight (ditto) */
	size_t bytes;  /* queued + in flight */
	bool stop;
	int evfd; /* wakes the thread */
	pthread_t thread;
	struct nfs_context *nfs; /* the thread's alone */
	double progress;         /* last reply, or send into an idle
				  * pipe (the thread's alone) */
};

static bool nfsb_wb_overlaps(const struct nfsb_wjob *j,
			     const struct nfsb_file *nf, off_t off, size_t len)
{
	for (; j; j = j->next)
		if (j->nf == nf && off < j->off + (off_t)j->len &&
		    j->off < off + (off_t)len)
			return true;
	return false;
}

/* Called with wb->lock held: the job is done, successfully or not. */
static void nfsb_wb_complete(struct nfsb_wb *wb, struct nfsb_wjob *j)
{
	struct nfsb_file *nf = j->nf;
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
	pthread_mutex_lock(&nf->lock);
	if (unstable)
		nf->dirty = true;
	if (err && !nf->err)
		nf->err = err;
	pthread_mutex_unlock(&nf->lock);
	if (err)
		log_debug("%s: write-behind of %zu bytes at %lld failed: %s",
			  nfsb_m(nf->base.mount)->display, j->len,
			  (long long)j->off, strerror(-err));
	nf->wb_pending--;
	__atomic_sub_fetch(&wb->bytes, j->len, __ATOMIC_RELAXED);
	free(j);
	pthread_cond_broadcast(&wb->done);
}

/*
 * Send j's chunks from c[j->sent] on that are not written in full (a short
 * write sends its rest), while fewer than NFSB_WB_RPCS are in flight.
 */
static void nfsb_wb_send(struct nfsb_op *op, struct nfsb_wb *wb,
			 struct nfsb_wjob *j)
{
	for (; j->sent < j->n && wb->rpcs < NFSB_WB_RPCS; j->sent++) {
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
		j->w.pending++;
		wb->rpcs++;
		if (nfsb_start_write(op, j->nf, c, 0)) {
			j->w.pending--;
			wb->rpcs--;
			if (!j->w.err)
				j->w.err = -EIO;
		}
	}
}

/* Whether every chunk of j went out and came back (or j failed). */
static bool nfsb_wb_finished(const struct nfsb_wjob *j)
{
	return j->w.pending == 0 && (j->sent == j->n || j->w.err);
}

/* The replies still due on the thread's context. */
static void nfsb_wb_count(struct nfsb_wb *wb)
{
	wb->rpcs = 0;
	for (struct nfsb_wjob *j = wb->flight; j; j = j->next)
		wb->rpcs += (unsigned)j->w.pending;
}

/*
 * Destroy the context: its pending callbacks fail the jobs in flight.
 * After a socket error (an idle connection found dead: the server
 * restarted, say) those jobs go out once more on a fresh context, as the
 * pool's calls are retried once; rewriting the same bytes is harmless, and
 * if the server lost earlier unstable data the write verifier tells.  Jobs
 * that timed out are not retried: that would double the wait.  Called
 * with wb->lock held.
 */
static void nfsb_wb_kill(struct nfsb_mount *m, struct nfsb_wb *wb,
			 bool timed_out)
{
	pthread_mutex_lock(&m->lock);
	log_warn_ratelimited(&m->rl, "%s: write-behind connection lost (%s)",
			     m->display,
			     timed_out ? "no answer in time" : "socket error");
	pthread_mutex_unlock(&m->lock);
	nfs_destroy_context(wb->nfs);
	wb->nfs = NULL;
	struct nfsb_wjob **pp, *again = NULL, **again_tail = &again;

	for (pp = &wb->flight; *pp;) {
		struct nfsb_wjob *j = *pp;

		if (nfsb_wb_finished(j) && !j->w.transport) {
			pp = &j->next; /* answered before the end */
			continue;
		}
		/* a job none of which went out yet (the in-flight cap held
		 * it back) is not counted as sent */
		if (timed_out || (j->sent > 0 && j->tries++ > 0)) {
			j->w.pending = 0;
			j->w.err = -EIO;
			pp = &j->next;
			continue;
		}
		/* again from its first chunk not written in full */
		*pp = j->next;
		nfsb_wait_init(&j->w);
		j->sent = 0;
		for (size_t i = 0; i < j->n; i++) {
			j->c[i].unstable = false;
			j->c[i].verf_bad = false;
		}
		j->next = NULL;
		*again_tail = j;
		again_tail = &j->next;
	}
	wb->ftail = pp;
	wb->rpcs = 0;
	/* ahead of what is queued, in their order */
	if (again) {
		*again_tail = wb->queued;
		if (!wb->queued)
			wb->qtail = again_tail;
		wb->queued = again;
	}
}

static void *nfsb_wb_main(void *arg)
{
	struct nfsb_mount *m = arg;
	struct nfsb_wb *wb = m->wb;

	pthread_mutex_lock(&wb->lock);
	while (!wb->stop || wb->queued || wb->flight) {
		struct nfsb_op op = {.m = m, .idx = -1};
		struct pollfd pfd[2];
		int npfd = 1, ms;

		if (wb->queued && !wb->nfs) {
			struct nfs_context *nfs = NULL;
			char msg[256] = "";
			int ret;

			pthread_mutex_unlock(&wb->lock);
			ret = nfsb_connect(m, vfs_mono_s() + m->timeout, &nfs,
					   msg, sizeof(msg));
			pthread_mutex_lock(&wb->lock);
			if (ret < 0) {
				/* fail what waits; the next job tries anew */
				pthread_mutex_lock(&m->lock);
				log_warn_ratelimited(
					&m->rl,
					"%s: write-behind cannot connect: %s",
					m->display,
					msg[0] ? msg : strerror(-ret));
				pthread_mutex_unlock(&m->lock);
				while (wb->queued) {
					struct nfsb_wjob *j = wb->queued;

					wb->queued = j->next;
					j->w.err = -EIO;
					nfsb_wb_complete(wb, j);
				}
				wb->qtail = &wb->queued;
				continue;
			}
			wb->nfs = nfs;
		}
		op.nfs = wb->nfs;
		if (wb->queued && !wb->flight)
			wb->progress = vfs_mono_s();
		/* what is queued joins the flight, in order */
		if (wb->queued) {
			*wb->ftail = wb->queued;
			wb->ftail = wb->qtail;
			wb->queued = NULL;
			wb->qtail = &wb->queued;
		}
		/* send as much of it as may be in flight */
		for (struct nfsb_wjob *j = wb->flight;
		     j && wb->nfs && wb->rpcs < NFSB_WB_RPCS; j = j->next)
			nfsb_wb_send(&op, wb, j);
		pthread_mutex_unlock(&wb->lock);

		pfd[0] = (struct pollfd){.fd = wb->evfd, .events = POLLIN};
		if (wb->nfs && wb->flight) {
			pfd[1] = (struct pollfd){
				.fd = nfs_get_fd(wb->nfs),
				.events = (short)nfs_which_events(wb->nfs),
			};
			npfd = 2;
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
		failed =
			npfd == 2 && (pfd[1].fd < 0 ||
				      nfs_service(wb->nfs, pfd[1].revents) < 0);
		for (struct nfsb_wjob *j = wb->flight; j; j = j->next)
			after += j->w.pending;
		if (after < before)
			wb->progress = vfs_mono_s();
		/* late: no reply at all for a whole timeout; a slow link
		 * that keeps answering is not dead, however long the queue */
		if (!failed && wb->nfs && wb->flight)
			late = vfs_mono_s() - wb->progress > m->timeout;

		pthread_mutex_lock(&wb->lock);
		if (failed || late)
			nfsb_wb_kill(m, wb, late);
		struct nfsb_wjob **pp;

		for (pp = &wb->flight; *pp;) {
			struct nfsb_wjob *j = *pp;
			bool short_write = false;

			if (!nfsb_wb_finished(j)) {
				pp = &j->next;
				continue;
			}
			for (size_t i = 0; i < j->n; i++)
				short_write |= j->c[i].got < j->c[i].want &&
					       j->c[i].got > 0;
			if (short_write && !j->w.err && wb->nfs) {
				j->sent = 0; /* the rests go out next round */
				pp = &j->next;
				continue;
			}
			*pp = j->next;
			nfsb_wb_complete(wb, j);
		}
		wb->ftail = pp;
		nfsb_wb_count(wb);
	}
	pthread_mutex_unlock(&wb->lock);
	return NULL;
}

int nfsb_wb_init(struct nfsb_mount *m)
{
	struct nfsb_wb *wb = calloc(1, sizeof(*wb));

	if (!wb)
		return -ENOMEM;
	wb->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wb->evfd < 0) {
		free(wb);
		return -errno;
	}
	pthread_mutex_init(&wb->lock, NULL);
	pthread_cond_init(&wb->done, NULL);
	wb->qtail = &wb->queued;
	wb->ftail = &wb->flight;
	m->wb = wb;
	if (pthread_create(&wb->thread, NULL, nfsb_wb_main, m) != 0) {
		m->wb = NULL;
		close(wb->evfd);
		pthread_cond_destroy(&wb->done);
		pthread_mutex_destroy(&wb->lock);
		free(wb);
		return -EAGAIN;
	}
	return 0;
}

void nfsb_wb_stop(struct nfsb_mount *m)
{
	struct nfsb_wb *wb = m->wb;
	uint64_t one = 1;

	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	wb->stop = true;
	pthread_mutex_unlock(&wb->lock);
	if (write(wb->evfd, &one, sizeof(one)) < 0)
		log_debug("%s: eventfd: %s", m->display, strerror(errno));
	pthread_join(wb->thread, NULL);
	if (wb->nfs)
		nfs_destroy_context(wb->nfs);
	close(wb->evfd);
	pthread_cond_destroy(&wb->done);
	pthread_mutex_destroy(&wb->lock);
	free(wb);
	m->wb = NULL;
}

ssize_t nfsb_wb_write(struct nfsb_file *nf, const void *buf, size_t size,
		      off_t off)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);
	struct nfsb_wb *wb = m->wb;
	size_t chunk = m->wsize, n = (size + chunk - 1) / chunk;
	struct nfsb_wjob *j;
	uint64_t one = 1;

	j = malloc(sizeof(*j) + n * sizeof(*j->c) + size);
	if (!j)
		return -ENOMEM;
	*j = (struct nfsb_wjob){.nf = nf, .off = off, .len = size, .n = n};
	j->c = (struct nfsb_chunk *)(j + 1);
	j->data = (char *)(j->c + n);
	memcpy(j->data, buf, size);
	nfsb_wait_init(&j->w);
	for (size_t i = 0; i < n; i++)
		j->c[i] = (struct nfsb_chunk){
			.w = &j->w,
			.nf = nf,
			.buf = j->data + i * chunk,
			.off = off + (off_t)(i * chunk),
			.want = size - i * chunk < chunk ? size - i * chunk
							 : chunk,
		};

	pthread_mutex_lock(&wb->lock);
	while ((wb->bytes && wb->bytes + size > NFSB_WB_WINDOW) ||
	       nfsb_wb_overlaps(wb->queued, nf, off, size) ||
	       nfsb_wb_overlaps(wb->flight, nf, off, size))
		pthread_cond_wait(&wb->done, &wb->lock);
	__atomic_add_fetch(&wb->bytes, size, __ATOMIC_RELAXED);
	nf->wb_pending++;
	*wb->qtail = j;
	wb->qtail = &j->next;
	pthread_mutex_unlock(&wb->lock);
	if (write(wb->evfd, &one, sizeof(one)) < 0)
		log_debug("%s: eventfd: %s", m->display, strerror(errno));
	return (ssize_t)size;
}

void nfsb_wb_drain(struct nfsb_file *nf)
{
	struct nfsb_wb *wb = nfsb_m(nf->base.mount)->wb;

	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	while (nf->wb_pending)
		pthread_cond_wait(&wb->done, &wb->lock);
	pthread_mutex_unlock(&wb->lock);
}

void nfsb_wb_drain_path(struct nfsb_mount *m, const char *full)
{
	struct nfsb_wb *wb = m->wb;
	bool busy;

	if (!wb || !__atomic_load_n(&wb->bytes, __ATOMIC_RELAXED))
		return;
	/* Waiting for the whole queue is simpler than for the files open at
	 * `full`, and the queue is short; only wait if one of them has
	 * data in it, though. */
	pthread_mutex_lock(&wb->lock);
	do {
		busy = false;
		pthread_mutex_lock(&m->open_lock);
		for (struct nfsb_file *nf = m->open_files; nf;
		     nf = nf->open_next)
			if (nf->wb_pending && strcmp(nf->path, full) == 0)
				busy = true;
		pthread_mutex_unlock(&m->open_lock);
		if (busy)
			pthread_cond_wait(&wb->done, &wb->lock);
	} while (busy);
	pthread_mutex_unlock(&wb->lock);
}

void nfsb_wb_drain_file(struct nfsb_file *nf)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);
	char *path;

	nfsb_wb_drain(nf);
	if (!m->wb || !__atomic_load_n(&m->wb->bytes, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&m->open_lock);
	path = strdup(nf->path);
	pthread_mutex_unlock(&m->open_lock);
	if (path)
		nfsb_wb_drain_path(m, path);
	free(path);
}
