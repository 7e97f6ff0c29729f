/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wb.h - the write-behind core of the network backends (backends/sftp/,
 * backends/nfs/): the job queue, the per-mount window, the ordering of a
 * file's overlapping jobs, drains and sticky per-file errors.  The drivers
 * keep only how jobs are sent.
 *
 * Without the kernel's writeback cache (off for shared mounts, so that
 * another host's changes are seen) a program's write(2) reaches us one
 * FUSE request at a time, and waiting for each one's reply leaves the
 * link idle between requests.  So an ordinary write is copied into a job,
 * queued and answered at once; a sender sends the jobs.  Nothing is
 * reported as stable that is not: flush and fsync drain the file first.
 *
 * Rules, the same for every driver:
 *
 * - Window: at most `window` bytes are queued or being sent per mount; a
 *   writer beyond it waits (a write larger than the window goes alone).
 * - Order: a job is taken only when no job of its file being sent
 *   overlaps it and it is the oldest queued job of its file, so that
 *   overlapping writes land in the order they were made, while parts of
 *   one file that do not overlap may go out at once.
 * - Errors: a failed job leaves its error on its file (the first one
 *   wins), for the file's next write, flush or fsync.  A flush (one
 *   descriptor's close) reports it and leaves it in place (a forked
 *   child's close must not take it from the owner); fsync takes it.
 * - Drains: whatever could see the file behind the queued data (reads,
 *   attributes, truncation, fsync, release, path-based calls) first waits
 *   for its jobs queued before it (not for those a writer queues
 *   meanwhile, which would hold it as long as the writer kept on): of one
 *   open file, of every file open at a path, or all.
 * - Writes under a cross-host lock (vfs_file.write_through), O_DIRECT and
 *   O_SYNC/O_DSYNC do not come here (the drivers decide).
 *
 * Senders, one of two kinds:
 *
 * - sync (sftp): remote_wb_new() starts `threads` sender threads, each
 *   taking a run of contiguous jobs of one file (up to `coalesce` bytes,
 *   copied into one buffer) and calling ops->send with no lock held.
 * - event loop (nfs): threads = 0; the driver's own thread takes jobs
 *   with remote_wb_take(), sends them as it likes and ends each with
 *   remote_wb_done(); ops->wake tells it that a job was queued or that
 *   the queue is stopping.
 *
 * Files: the driver embeds a zeroed struct remote_wb_file in each open
 * file; jobs point to it.  The file must stay allocated until
 * remote_wb_drain() of it returned (the drivers drain at release).
 *
 * Locking: the core's lock is taken inside the calls below only.  They
 * may be called with a driver's file lock held, but remote_wb_drain*()
 * must not be when the sender needs that lock (sftp's does).  Under the
 * core's lock only ops->file_at runs, which may take only leaf locks.
 */
#ifndef VFSD_BACKENDS_REMOTE_WB_H
#define VFSD_BACKENDS_REMOTE_WB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct remote_wb;

/* Write-behind state of one open file, embedded (zeroed) in the
 * driver's file.  Protected by the core's lock: use the calls below. */
struct remote_wb_file {
	unsigned pending; /* jobs queued or being sent */
	int err;          /* sticky: 0 or the first failure's -errno */
};

/* A queued write.  The core allocates and frees it; a sender reads it
 * between remote_wb_take() and remote_wb_done(). */
struct remote_wjob {
	struct remote_wjob *next, **pprev; /* the core's lists */
	struct remote_wjob *run;           /* the next job of a taken run */
	struct remote_wb_file *file;
	off_t off;
	size_t len;
	void *priv; /* ops->priv_size(len) bytes for the sender, or NULL */
	unsigned long long seq; /* the core's: its place in the queue */
	char *data;             /* a copy of the len bytes written */
};

struct remote_wb_ops {
	/* sync senders: write len bytes of data at off to the file,
	 * synchronously; 0 or -errno, which stays on the file.  Called by
	 * the core's threads with no lock held. */
	int (*send)(void *ctx, struct remote_wb_file *file, const char *data,
		    size_t len, off_t off);
	/* event loop: a job was queued, or the queue is stopping.  Called
	 * with no lock held.  May be NULL. */
	void (*wake)(void *ctx);
	/* Whether `file` is open at the mount-relative `path` (for
	 * remote_wb_drain_path()).  Called under the core's lock. */
	bool (*file_at)(void *ctx, const struct remote_wb_file *file,
			const char *path);
	/* Bytes of sender state a job of len bytes carries (job->priv),
	 * filled by init_job() when the job is made.  Both may be NULL. */
	size_t (*priv_size)(void *ctx, size_t len);
	void (*init_job)(void *ctx, struct remote_wjob *job);
};

/*
 * Make a queue of at most `window` bytes for the mount `ctx` (borrowed:
 * passed to every op).  threads > 0: start that many sync senders calling
 * ops->send with runs of up to `coalesce` bytes; threads = 0: the
 * driver's thread sends (see above).  *out gets the queue, which the
 * caller owns and frees with remote_wb_free().  0 or -errno.
 */
int remote_wb_new(struct remote_wb **out, const struct remote_wb_ops *ops,
		  void *ctx, int threads, size_t window, size_t coalesce);
/* Take no more jobs and send what is queued: waits until nothing is
 * queued or being sent and the core's threads have ended.  An event-loop
 * sender sees remote_wb_stopping() and ends; join it, then free. */
void remote_wb_stop(struct remote_wb *wb);
/* Stop (if not yet) and free.  NULL is fine. */
void remote_wb_free(struct remote_wb *wb);

/* Queue a copy of buf for `file`; waits while the window is full.
 * 0 or -ENOMEM. */
int remote_wb_write(struct remote_wb *wb, struct remote_wb_file *file,
		    const void *buf, size_t len, off_t off);

/* Wait until nothing of `file` queued before the call is queued or being
 * sent (what is written meanwhile is not waited for: a writer that never
 * pauses does not hold the drain).  wb may be NULL.  The file's error (if
 * any) is then there to take. */
void remote_wb_drain(struct remote_wb *wb, struct remote_wb_file *file);
/* The same for every file open at `path` (ops->file_at). */
void remote_wb_drain_path(struct remote_wb *wb, const char *path);
/* The same for every file. */
void remote_wb_drain_all(struct remote_wb *wb);

/* The file's sticky error, left in place (0 if none, or wb is NULL). */
int remote_wb_err(struct remote_wb *wb, struct remote_wb_file *file);
/* The file's sticky error, cleared: reported once. */
int remote_wb_take_err(struct remote_wb *wb, struct remote_wb_file *file);

/* ---- for an event-loop sender ---- */

/* The oldest queued job that may go now (see "Order"), now being sent,
 * or NULL.  Its job->run is NULL. */
struct remote_wjob *remote_wb_take(struct remote_wb *wb);
/* A job (and the rest of its run) was sent, or failed with err (<0):
 * the core frees it and wakes who waits for it. */
void remote_wb_done(struct remote_wb *wb, struct remote_wjob *job, int err);
/* Whether the queue is stopping and nothing is left to take. */
bool remote_wb_stopping(struct remote_wb *wb);

#endif /* VFSD_BACKENDS_REMOTE_WB_H */
