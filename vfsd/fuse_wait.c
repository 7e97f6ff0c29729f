/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_wait.c - reads and writes held back by their I/O limits wait here,
 * off the FUSE worker threads.
 *
 * libfuse serves the kernel's requests on at most VFSD_MAX_THREADS worker
 * threads.  A request that waited for its limit on a worker held that
 * worker: one user with enough threads writing to a file limited to a
 * few bytes a second held them all, and every other file, mount and user
 * of the daemon stopped with it.  Such a request is parked instead: its
 * worker goes back to the kernel's queue, and the request is answered
 * later, by the timer thread here admitting it (router_admit) and one of
 * a few executor threads doing its I/O, as QEMU's throttle groups queue
 * a request and restart it from a timer.
 *
 * Each open (struct fo_fh) has two FIFOs, its reads and its writes: each
 * is admitted in the order it came, and a request arriving while others
 * of its kind wait on the open queues behind them, so small requests
 * cannot starve a large one.  A read never waits behind a write (nor a
 * write behind a read): a limit on writes alone would hold the reads of
 * an image open for both, which it did not when waits held a thread.  A
 * write's data is copied when it is parked (the worker's buffer is reused
 * once the handler returns); the copies are bounded by FW_BYTES_MAX and
 * the parked requests by FW_PARKED_MAX.  Past them a request waits in its
 * worker, as before: memory stays bounded whatever the callers do.
 *
 * A parked request keeps its place among the kernel's background
 * requests (readahead, writeback, asynchronous direct I/O) until it is
 * answered; the budget of those is raised by the requests parked
 * (fuse_bg.c), so that what no limit holds back keeps its own.
 *
 * A parked request is given up (EINTR) when its caller is being killed
 * or vfsd stops (fo_given_up), looked at every FW_POLL_NS, and a read
 * when its whole process is gone or exiting (fuse_caller.c: the kernel's
 * readahead and asynchronous reads have no caller to interrupt them),
 * looked at every FW_ORPHAN_NS; a change of
 * the rules (qos_generation) has every parked request asked again at
 * once, so a raised limit applies within that time.
 *
 * Lock order: fw_lock, then qos.c's lock (router_admit).  The executors
 * call the router without fw_lock.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "vfsd/fuse_internal.h"

#define FW_BYTES_MAX   (256u << 20) /* write data parked, in all */
#define FW_PARKED_MAX  16384        /* requests parked, in all */
#define FW_EXEC_MAX    64           /* executor threads */
#define FW_EXEC_MOUNT  32 /* executors running requests of one mount */
#define FW_POLL_NS     (100 * 1000000LL)
#define FW_IDLE_NS     (10 * VFS_NS_PER_SEC) /* an idle executor ends */
#define FW_ORPHAN_NS   VFS_NS_PER_SEC        /* a read's process, looked at */
/* processes looked at in one pass at most (each costs tens of us of
 * /proc under fw_lock); the rest wait for a later pass */
#define FW_ORPHAN_PASS 64

struct fw_req {
	struct fw_req *next;
	fuse_req_t req;
	struct router_file *rf; /* a reference of its own */
	fuse_ino_t ino;         /* its node */
	struct router_admit adm;
	bool write;
	size_t size;
	off_t off;
	void *data;            /* a write's copy, owned */
	int64_t due;           /* when to ask its limits again */
	int64_t looked;        /* when fo_given_up() was last asked */
	int64_t orphan_looked; /* a read: when its process was last looked at */
	/* a read: its caller's process (fw_reader(); 0: unknown; -1: a
	 * page-cache read nobody waits for) */
	pid_t tgid;
	uint64_t gen; /* qos_generation() when last asked */
};

/* The parked reads, or writes, of one open, oldest first. */
struct fw_queue {
	struct fw_queue *next; /* in fw_queues */
	struct fo_fh *fh;      /* NULL once the open is released */
	bool write;            /* its requests' kind: fh->waitq[write] */
	struct fw_req *head, **tail;
};

/*
 * The admitted requests of one mount, oldest first, and how many of its
 * requests executors run.  An executor takes a request of a mount only
 * while fewer than FW_EXEC_MOUNT run: a mount whose backend hangs (its
 * calls end only at its timeout) holds at most that many executors, and
 * the others go on with the requests of the other mounts.
 */
struct fw_lane {
	struct fw_lane *next; /* in fw_lanes */
	const void *mount;    /* router_file_mount() */
	struct fw_req *head, **tail;
	unsigned busy;
};

static pthread_mutex_t fw_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fw_timer_cond, fw_exec_cond, fw_idle_cond;
static pthread_once_t fw_once = PTHREAD_ONCE_INIT;
static struct fw_queue *fw_queues; /* with a request parked */
static struct fw_lane *fw_lanes;   /* with a request admitted or running */
static size_t fw_parked, fw_bytes;
static unsigned fw_exec, fw_exec_idle, fw_nready;
static bool fw_timer_running, fw_stopping;
static pthread_t fw_timer_tid;

static void fw_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&fw_timer_cond, &a);
	pthread_cond_init(&fw_exec_cond, &a);
	pthread_cond_init(&fw_idle_cond, &a);
	pthread_condattr_destroy(&a);
}

/* Answer a request that never ran, and free it (without fw_lock). */
static void fw_fail(struct fw_req *r, int err)
{
	router_admit_drop(r->rf, &r->adm);
	fuse_reply_err(r->req, err);
	router_release(r->rf);
	free(r->data);
	free(r);
}

/* Run an admitted request and answer it (without fw_lock). */
static void fw_run(struct fw_req *r)
{
	if (r->write) {
		struct fuse_bufvec in = FUSE_BUFVEC_INIT(r->size);

		in.buf[0].mem = r->data;
		fo_write_admitted(r->req, r->ino, r->rf, &r->adm, &in, r->off);
	} else {
		fo_read_admitted(r->req, r->rf, &r->adm, r->size, r->off);
	}
	router_release(r->rf);
	free(r->data);
	free(r);
}

/*
 * The oldest admitted request of a mount with fewer than FW_EXEC_MOUNT
 * running, taken off and counted running in *lane; NULL when none may
 * run (fw_lock held).
 */
static struct fw_req *fw_take(struct fw_lane **lane)
{
	for (struct fw_lane *l = fw_lanes; l; l = l->next) {
		struct fw_req *r = l->head;

		if (!r || l->busy >= FW_EXEC_MOUNT)
			continue;
		l->head = r->next;
		if (!l->head)
			l->tail = &l->head;
		l->busy++;
		fw_nready--;
		fw_parked--;
		*lane = l;
		return r;
	}
	return NULL;
}

/* Free l, which has nothing left (fw_lock held). */
static void fw_lane_free(struct fw_lane *l)
{
	for (struct fw_lane **lp = &fw_lanes; *lp; lp = &(*lp)->next)
		if (*lp == l) {
			*lp = l->next;
			break;
		}
	free(l);
}

/* A request of l ran (fw_lock held). */
static void fw_done(struct fw_lane *l)
{
	if (!--l->busy && !l->head)
		fw_lane_free(l);
}

static void *fw_executor(void *arg)
{
	struct fw_lane *lane;
	struct fw_req *r;
	struct timespec ts;
	size_t copied;
	int ret;

	(void)arg;
	pthread_mutex_lock(&fw_lock);
	for (;;) {
		r = fw_take(&lane);
		if (r) {
			copied = r->write ? r->size : 0;
			pthread_mutex_unlock(&fw_lock);
			fw_run(r);
			pthread_mutex_lock(&fw_lock);
			fw_bytes -= copied; /* freed by fw_run */
			fw_done(lane);
			/* the idle ones may now take what waited for this */
			if (fw_nready)
				pthread_cond_broadcast(&fw_exec_cond);
			continue;
		}
		/* those of a mount at its FW_EXEC_MOUNT wait for it, even
		 * when vfsd stops: the executors that run its requests take
		 * them */
		if (fw_stopping)
			break;
		ts = vfs_ns_ts(vfs_mono_ns() + FW_IDLE_NS);
		fw_exec_idle++;
		ret = pthread_cond_timedwait(&fw_exec_cond, &fw_lock, &ts);
		fw_exec_idle--;
		if (ret == ETIMEDOUT && !fw_nready)
			break;
	}
	fw_exec--;
	pthread_cond_broadcast(&fw_idle_cond);
	pthread_mutex_unlock(&fw_lock);
	return NULL;
}

/*
 * Hand r to an executor, starting one when none is idle (fw_lock held):
 * false when there is none to take it (no thread could be started, no
 * memory), and the caller runs it.
 */
static bool fw_hand_over(struct fw_req *r)
{
	const void *mount = router_file_mount(r->rf);
	struct fw_lane *l;
	pthread_t tid;
	int err;

	for (l = fw_lanes; l && l->mount != mount; l = l->next)
		;
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l)
			return false;
		l->mount = mount;
		l->tail = &l->head;
		l->next = fw_lanes;
		fw_lanes = l;
	}
	/* an idle executor for each admitted request, up to the caps */
	if (fw_nready >= fw_exec_idle && l->busy < FW_EXEC_MOUNT &&
	    fw_exec < FW_EXEC_MAX) {
		err = pthread_create(&tid, NULL, fw_executor, NULL);
		if (err == 0) {
			pthread_detach(tid);
			fw_exec++;
		} else if (!fw_exec) {
			log_warn("I/O limits: cannot start a thread: %s",
				 strerror(err));
			if (!l->head && !l->busy)
				fw_lane_free(l);
			return false;
		}
	}
	r->next = NULL;
	*l->tail = r;
	l->tail = &r->next;
	fw_nready++;
	pthread_cond_signal(&fw_exec_cond);
	return true;
}

/* Take the head of q off (fw_lock held). */
static struct fw_req *fw_pop(struct fw_queue *q)
{
	struct fw_req *r = q->head;

	q->head = r->next;
	if (!q->head)
		q->tail = &q->head;
	return r;
}

/*
 * Move to *gone the requests of q given up, and to *revoked those of a
 * mount removed by force (fw_lock held): every one of them, not only its
 * head, since one whose caller was killed behind a wait of days would
 * keep its caller (and the unmount) for as long, and one of a removed
 * mount would wait that long for its EIO (a rule of a directory of the
 * mount outlives the removal).
 */
/* Whether parked read r's process is gone (fuse_caller.c); *last keeps
 * the answer for the last process looked at in this pass: the reads of
 * one open are mostly one process's readahead. */
static bool fw_orphaned(struct fw_req *r, int64_t now, pid_t *last_tgid,
			bool *last_gone, unsigned *budget)
{
	if (r->tgid < 0)
		return !r->write;
	if (r->write || !r->tgid || now - r->orphan_looked < FW_ORPHAN_NS)
		return false;
	if (r->tgid != *last_tgid) {
		if (!*budget)
			return false; /* a later pass looks */
		(*budget)--;
		*last_tgid = r->tgid;
		*last_gone = fo_process_gone(r->tgid);
	}
	r->orphan_looked = now;
	return *last_gone;
}

static void fw_reap(struct fw_queue *q, int64_t now, struct fw_req **gone,
		    struct fw_req **revoked, unsigned *budget)
{
	struct fw_req **rp = &q->head;
	pid_t last_tgid = 0;
	bool last_gone = false;

	while (*rp) {
		struct fw_req *r = *rp, **to = NULL;

		if (fw_stopping)
			to = gone;
		else if (router_file_revoked(r->rf))
			to = revoked;
		else if (now - r->looked >= FW_POLL_NS &&
			 (r->looked = now, fo_given_up(r->req)))
			to = gone;
		else if (fw_orphaned(r, now, &last_tgid, &last_gone, budget))
			to = gone;
		if (to) {
			*rp = r->next;
			fw_parked--;
			if (r->write)
				fw_bytes -= r->size;
			r->next = *to;
			*to = r;
			continue;
		}
		rp = &r->next;
	}
	q->tail = rp;
}

/*
 * One pass over the parked requests (fw_lock held): admit what may go,
 * move what is given up to *gone, what fails EIO to *revoked and what no
 * executor takes to *run, free the queues left empty.  Answers when to
 * pass again.
 */
static int64_t fw_pass(struct fw_req **gone, struct fw_req **revoked,
		       struct fw_req **run)
{
	int64_t now = vfs_mono_ns(), next = now + FW_POLL_NS;
	uint64_t gen = qos_generation();
	unsigned budget = FW_ORPHAN_PASS;

	for (struct fw_queue **qp = &fw_queues; *qp;) {
		struct fw_queue *q = *qp;

		fw_reap(q, now, gone, revoked, &budget);
		while (q->head) {
			struct fw_req *r = q->head;

			if (now >= r->due || gen != r->gen) {
				int64_t wait;

				r->gen = gen;
				wait = router_admit(r->rf, r->write, r->size,
						    &r->adm);
				if (!wait) {
					fw_pop(q);
					if (!fw_hand_over(r)) {
						fw_parked--;
						if (r->write)
							fw_bytes -= r->size;
						r->next = *run;
						*run = r;
					}
					continue;
				}
				r->due = now + wait;
			}
			if (r->due < next)
				next = r->due;
			break; /* the rest of the open waits behind it */
		}
		if (q->head) {
			qp = &q->next;
			continue;
		}
		*qp = q->next;
		if (q->fh)
			q->fh->waitq[q->write] = NULL;
		free(q);
	}
	return next;
}

static void *fw_timer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&fw_lock);
	for (;;) {
		struct fw_req *gone = NULL, *revoked = NULL, *run = NULL;
		int64_t next = fw_pass(&gone, &revoked, &run);

		/* what left since (executors took it, it was given up) */
		fo_bg_set(fw_parked);

		if (gone || revoked || run) {
			pthread_mutex_unlock(&fw_lock);
			while (gone) {
				struct fw_req *r = gone;

				gone = r->next;
				fw_fail(r, EINTR);
			}
			while (revoked) {
				struct fw_req *r = revoked;

				revoked = r->next;
				fw_fail(r, EIO);
			}
			while (run) {
				struct fw_req *r = run;

				run = r->next;
				fw_run(r);
			}
			pthread_mutex_lock(&fw_lock);
			continue;
		}
		if (fw_stopping)
			break;
		struct timespec ts = vfs_ns_ts(next);

		pthread_cond_timedwait(&fw_timer_cond, &fw_lock, &ts);
	}
	pthread_mutex_unlock(&fw_lock);
	return NULL;
}

/* Start the timer thread unless it runs (fw_lock held): false when it
 * cannot be. */
static bool fw_timer_start(void)
{
	if (fw_timer_running)
		return true;
	if (pthread_create(&fw_timer_tid, NULL, fw_timer, NULL) != 0)
		return false;
	fw_timer_running = true;
	return true;
}

/*
 * A parked read's process (fw_req.tgid), while its thread is there to ask.
 * A thread already gone (killed while the kernel held its request back and
 * vfsd had yet to read it) names none.  A direct read then waits: the rest
 * of a process that lives on may reap it.  So does one through an open a
 * kernel thread reads through (a loop device's: others wait for its
 * reads).  A page-cache read is taken for the process that last read
 * through the open, asked as any, and with none known is nobody's (-1: a
 * reader that still wants the pages reads them again itself).
 */
static pid_t fw_reader(struct fo_fh *fh, pid_t tid, bool cached)
{
	bool kernel;
	pid_t tgid = fo_caller_tgid(tid, &kernel);
	int last = atomic_load(&fh->reader);

	if (kernel)
		atomic_store(&fh->reader, FO_READER_KERNEL);
	else if (tgid > 0 && last != FO_READER_KERNEL && last != tgid)
		/* unless a kernel thread's came meanwhile */
		atomic_compare_exchange_strong(&fh->reader, &last, tgid);
	if (tgid >= 0)
		return tgid;
	if (!cached || last == FO_READER_KERNEL)
		return 0;
	return last > 0 ? last : -1;
}

int fo_wait_park(fuse_req_t req, struct fo_fh *fh, bool write, bool cached,
		 size_t size, off_t off, struct fuse_bufvec *in,
		 struct router_admit *a)
{
	struct fw_queue *q;
	struct fw_req *r;
	int64_t wait = 0;
	bool room;

	/* an open with requests parked: this one queues behind them */
	if (!__atomic_load_n(&fh->waitq[write], __ATOMIC_ACQUIRE)) {
		wait = router_admit(fh->rf, write, size, a);
		if (!wait)
			return 0;
	}
	pthread_once(&fw_once, fw_init);
	fo_bg_prepare();
	r = calloc(1, sizeof(*r));
	q = calloc(1, sizeof(*q));
	if (write && r)
		r->data = malloc(size ? size : 1);
	if (!r || !q || (write && !r->data))
		goto wait_here;

	/* room for it, reserved before its data is copied */
	pthread_mutex_lock(&fw_lock);
	room = !fw_stopping && fw_parked < FW_PARKED_MAX &&
	       (!write || fw_bytes + size <= FW_BYTES_MAX) && fw_timer_start();
	if (room) {
		fw_parked++;
		if (write)
			fw_bytes += size;
		/* at once: its place in the kernel is taken already */
		fo_bg_set(fw_parked);
	}
	pthread_mutex_unlock(&fw_lock);
	if (!room)
		goto wait_here;

	if (write) {
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
		ssize_t n;

		dst.buf[0].mem = r->data;
		n = fuse_buf_copy(&dst, in, 0);
		if (n < 0 || (size_t)n != size) {
			/* what the kernel sent cannot be read twice */
			pthread_mutex_lock(&fw_lock);
			fw_parked--;
			fw_bytes -= size;
			pthread_mutex_unlock(&fw_lock);
			router_admit_drop(fh->rf, a);
			fuse_reply_err(req, n < 0 ? (int)-n : EIO);
			free(q);
			free(r->data);
			free(r);
			return 1;
		}
	}
	/* one behind others waits as much as they do, and is shown so */
	if (!wait)
		router_admit_queued(fh->rf, a);
	r->req = req;
	router_file_get(fh->rf);
	r->rf = fh->rf;
	r->ino = fh->ino;
	r->adm = *a;
	r->write = write;
	r->size = size;
	r->off = off;
	r->looked = vfs_mono_ns();
	r->orphan_looked = r->looked;
	if (!write)
		r->tgid = fw_reader(fh, fuse_req_ctx(req)->pid, cached);
	r->due = r->looked + wait;
	r->gen = qos_generation();

	pthread_mutex_lock(&fw_lock);
	if (!fh->waitq[write]) {
		q->fh = fh;
		q->write = write;
		q->tail = &q->head;
		q->next = fw_queues;
		fw_queues = q;
		__atomic_store_n(&fh->waitq[write], q, __ATOMIC_RELEASE);
		q = NULL;
	}
	*fh->waitq[write]->tail = r;
	fh->waitq[write]->tail = &r->next;
	/* the timer may sleep past a new queue's due time */
	pthread_cond_signal(&fw_timer_cond);
	pthread_mutex_unlock(&fw_lock);
	free(q);
	return 1;

wait_here:
	/* in this worker, as without parking: memory stays bounded (the
	 * wait router_admit() began goes on in the router's gate) */
	if (r)
		free(r->data);
	free(r);
	free(q);
	return 0;
}

void fo_wait_forget(struct fo_fh *fh)
{
	if (!__atomic_load_n(&fh->waitq[0], __ATOMIC_ACQUIRE) &&
	    !__atomic_load_n(&fh->waitq[1], __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&fw_lock);
	/* the kernel releases an open only when no request of it is left:
	 * this is for one that did anyway (its requests hold their own
	 * references) */
	for (int w = 0; w < 2; w++) {
		if (fh->waitq[w])
			fh->waitq[w]->fh = NULL;
		fh->waitq[w] = NULL;
	}
	pthread_mutex_unlock(&fw_lock);
}

void fo_wait_stop(void)
{
	pthread_once(&fw_once, fw_init);
	pthread_mutex_lock(&fw_lock);
	fw_stopping = true;
	pthread_cond_broadcast(&fw_timer_cond);
	pthread_cond_broadcast(&fw_exec_cond);
	if (fw_timer_running) {
		pthread_mutex_unlock(&fw_lock);
		pthread_join(fw_timer_tid, NULL);
		pthread_mutex_lock(&fw_lock);
		fw_timer_running = false;
	}
	/* the executors finish what was admitted (each call ends within its
	 * mount's timeout) */
	while (fw_exec)
		pthread_cond_wait(&fw_idle_cond, &fw_lock);
	pthread_mutex_unlock(&fw_lock);
}
