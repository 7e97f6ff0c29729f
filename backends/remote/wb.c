// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * wb.c - the write-behind core (wb.h has the rules): queue, window,
 * ordering, drains, sticky errors, and the sync sender threads.
 *
 * Lock order: a driver's file lock (sftp), then wb->lock; under wb->lock
 * only ops->file_at's leaf locks (nfs: the mount's open_lock).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/remote/wb.h"

#define REMOTE_WB_THREADS_MAX 8
#define REMOTE_WB_HELD_MAX    16 /* files passed over in one take */

struct remote_wb {
	const struct remote_wb_ops *ops;
	void *ctx;
	pthread_mutex_t lock;
	pthread_cond_t work;                 /* queued, a file freed, stop */
	pthread_cond_t done;                 /* a job finished */
	struct remote_wjob *queued, **qtail; /* in order; protected by lock */
	struct remote_wjob *flight;          /* being sent; ditto */
	size_t bytes;                        /* queued + being sent; ditto */
	unsigned long long seq;              /* of the last job queued; ditto */
	size_t window, coalesce;
	bool stop; /* protected by lock */
	int nthreads;
	pthread_t threads[REMOTE_WB_THREADS_MAX];
};

static bool remote_wb_overlap(const struct remote_wjob *j,
			      const struct remote_wb_file *file, off_t off,
			      size_t len)
{
	return j->file == file && off < j->off + (off_t)j->len &&
	       j->off < off + (off_t)len;
}

/* Is a job of `file` overlapping [off, off+len) being sent?  Called with
 * wb->lock held. */
static bool remote_wb_busy_locked(const struct remote_wb *wb,
				  const struct remote_wb_file *file, off_t off,
				  size_t len)
{
	for (const struct remote_wjob *j = wb->flight; j; j = j->next)
		if (remote_wb_overlap(j, file, off, len))
			return true;
	return false;
}

/*
 * Take the oldest queued job that may go now and, up to `max` bytes, the
 * jobs of the same file queued after it that continue it; they move to
 * the flight list.  A job may go when no job being sent overlaps it and
 * it is the oldest queued job of its file.  Called with wb->lock held;
 * NULL if nothing may go.
 */
static struct remote_wjob *remote_wb_take_locked(struct remote_wb *wb,
						 size_t max)
{
	struct remote_wjob **pp, *first = NULL, *last = NULL;
	const struct remote_wb_file *held[REMOTE_WB_HELD_MAX];
	size_t nheld = 0, len = 0;
	off_t end = 0;

	for (pp = &wb->queued; *pp;) {
		struct remote_wjob *j = *pp;

		if (!first) {
			bool skip = false;

			for (size_t i = 0; i < nheld; i++)
				skip |= held[i] == j->file;
			if (!skip && remote_wb_busy_locked(wb, j->file, j->off,
							   j->len)) {
				if (nheld == REMOTE_WB_HELD_MAX)
					return NULL; /* rare: wait */
				held[nheld++] = j->file;
				skip = true;
			}
			if (skip) {
				pp = &j->next;
				continue;
			}
		} else if (j->file != first->file) {
			pp = &j->next;
			continue;
		} else if (j->off != end || len + j->len > max ||
			   remote_wb_busy_locked(wb, j->file, j->off, j->len)) {
			break; /* later jobs of this file stay in order */
		}
		*pp = j->next;
		if (wb->qtail == &j->next)
			wb->qtail = pp;
		j->run = NULL;
		if (last)
			last->run = j;
		else
			first = j;
		last = j;
		len += j->len;
		end = j->off + (off_t)j->len;
	}
	for (struct remote_wjob *j = first; j; j = j->run) {
		j->next = wb->flight;
		if (wb->flight)
			wb->flight->pprev = &j->next;
		j->pprev = &wb->flight;
		wb->flight = j;
	}
	return first;
}

/* The run starting at job is finished.  Called with wb->lock held. */
static void remote_wb_done_locked(struct remote_wb *wb, struct remote_wjob *job,
				  int err)
{
	struct remote_wjob *next;

	for (; job; job = next) {
		next = job->run;
		*job->pprev = job->next;
		if (job->next)
			job->next->pprev = job->pprev;
		if (err && !job->file->err)
			job->file->err = err;
		job->file->pending--;
		wb->bytes -= job->len;
		free(job);
	}
	pthread_cond_broadcast(&wb->done);
	/* another thread may be waiting for this file to be free */
	pthread_cond_broadcast(&wb->work);
}

/* One sync sender: takes runs and sends each with ops->send. */
static void *remote_wb_main(void *arg)
{
	struct remote_wb *wb = arg;
	char *buf = NULL; /* the coalescing buffer, made on first need */

	pthread_mutex_lock(&wb->lock);
	for (;;) {
		struct remote_wjob *run;
		const char *data;
		size_t len = 0;
		int err = 0;

		run = remote_wb_take_locked(wb, wb->coalesce);
		if (!run) {
			if (wb->stop && !wb->queued)
				break;
			pthread_cond_wait(&wb->work, &wb->lock);
			continue;
		}
		pthread_mutex_unlock(&wb->lock);

		for (struct remote_wjob *j = run; j; j = j->run)
			len += j->len;
		data = run->data;
		if (run->run) {
			size_t at = 0;

			if (!buf)
				buf = malloc(wb->coalesce);
			if (buf) {
				for (struct remote_wjob *j = run; j;
				     j = j->run) {
					memcpy(buf + at, j->data, j->len);
					at += j->len;
				}
				data = buf;
			}
		}
		if (data == run->data && run->run) {
			/* no memory for one buffer: one by one */
			for (struct remote_wjob *j = run; j; j = j->run) {
				int ret =
					wb->ops->send(wb->ctx, j->file, j->data,
						      j->len, j->off);

				if (!err)
					err = ret;
			}
		} else {
			err = wb->ops->send(wb->ctx, run->file, data, len,
					    run->off);
		}

		pthread_mutex_lock(&wb->lock);
		remote_wb_done_locked(wb, run, err);
	}
	pthread_mutex_unlock(&wb->lock);
	free(buf);
	return NULL;
}

int remote_wb_new(struct remote_wb **out, const struct remote_wb_ops *ops,
		  void *ctx, int threads, size_t window, size_t coalesce)
{
	struct remote_wb *wb = calloc(1, sizeof(*wb));

	*out = NULL;
	if (!wb)
		return -ENOMEM;
	wb->ops = ops;
	wb->ctx = ctx;
	pthread_mutex_init(&wb->lock, NULL);
	pthread_cond_init(&wb->work, NULL);
	pthread_cond_init(&wb->done, NULL);
	wb->qtail = &wb->queued;
	wb->window = window;
	wb->coalesce = coalesce;
	if (threads > REMOTE_WB_THREADS_MAX)
		threads = REMOTE_WB_THREADS_MAX;
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&wb->threads[i], NULL, remote_wb_main, wb))
			break;
		wb->nthreads++;
	}
	if (threads > 0 && !wb->nthreads) {
		remote_wb_free(wb);
		return -EAGAIN;
	}
	*out = wb;
	return 0;
}

void remote_wb_stop(struct remote_wb *wb)
{
	pthread_mutex_lock(&wb->lock);
	wb->stop = true;
	pthread_cond_broadcast(&wb->work);
	pthread_mutex_unlock(&wb->lock);
	if (wb->ops->wake)
		wb->ops->wake(wb->ctx);
	for (int i = 0; i < wb->nthreads; i++)
		pthread_join(wb->threads[i], NULL);
	wb->nthreads = 0;
	remote_wb_drain_all(wb);
}

void remote_wb_free(struct remote_wb *wb)
{
	if (!wb)
		return;
	remote_wb_stop(wb);
	pthread_cond_destroy(&wb->done);
	pthread_cond_destroy(&wb->work);
	pthread_mutex_destroy(&wb->lock);
	free(wb);
}

int remote_wb_write(struct remote_wb *wb, struct remote_wb_file *file,
		    const void *buf, size_t len, off_t off)
{
	size_t priv = wb->ops->priv_size ? wb->ops->priv_size(wb->ctx, len) : 0;
	struct remote_wjob *j = malloc(sizeof(*j) + priv + len);

	if (!j)
		return -ENOMEM;
	*j = (struct remote_wjob){.file = file, .off = off, .len = len};
	j->priv = priv ? j + 1 : NULL;
	j->data = (char *)(j + 1) + priv;
	memcpy(j->data, buf, len);
	if (wb->ops->init_job)
		wb->ops->init_job(wb->ctx, j);
	pthread_mutex_lock(&wb->lock);
	while (wb->bytes && wb->bytes + len > wb->window)
		pthread_cond_wait(&wb->done, &wb->lock);
	wb->bytes += len;
	file->pending++;
	j->seq = ++wb->seq;
	*wb->qtail = j;
	wb->qtail = &j->next;
	pthread_cond_signal(&wb->work);
	pthread_mutex_unlock(&wb->lock);
	if (wb->ops->wake)
		wb->ops->wake(wb->ctx);
	return 0;
}

/*
 * Is a job queued by `seq` (of `file` if not NULL, else of a file open at
 * `path`) still queued or being sent?
 * Jobs queued after the drain began are not waited for: a writer that
 * keeps writing would otherwise hold a reader's drain (or its own
 * fsync's) until it paused.  Called with wb->lock held.
 */
static bool remote_wb_has_locked(const struct remote_wb *wb,
				 const struct remote_wb_file *file,
				 const char *path, unsigned long long seq)
{
	const struct remote_wjob *lists[2] = {wb->queued, wb->flight};
	const struct remote_wb_file *last = NULL;

	for (int i = 0; i < 2; i++)
		for (const struct remote_wjob *j = lists[i]; j; j = j->next) {
			if (j->seq > seq || (file && j->file != file))
				continue;
			if (!path)
				return true;
			/* runs of one file are common: ask once */
			if (j->file == last)
				continue;
			if (wb->ops->file_at(wb->ctx, j->file, path))
				return true;
			last = j->file;
		}
	return false;
}

void remote_wb_drain(struct remote_wb *wb, struct remote_wb_file *file)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	for (unsigned long long seq = wb->seq;
	     file->pending && remote_wb_has_locked(wb, file, NULL, seq);)
		pthread_cond_wait(&wb->done, &wb->lock);
	pthread_mutex_unlock(&wb->lock);
}

void remote_wb_drain_path(struct remote_wb *wb, const char *path)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	for (unsigned long long seq = wb->seq;
	     wb->bytes && remote_wb_has_locked(wb, NULL, path, seq);)
		pthread_cond_wait(&wb->done, &wb->lock);
	pthread_mutex_unlock(&wb->lock);
}

void remote_wb_drain_all(struct remote_wb *wb)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	while (wb->queued || wb->flight)
		pthread_cond_wait(&wb->done, &wb->lock);
	pthread_mutex_unlock(&wb->lock);
}

static int remote_wb_get_err(struct remote_wb *wb, struct remote_wb_file *file,
			     bool take)
{
	int err;

	if (!wb)
		return 0;
	pthread_mutex_lock(&wb->lock);
	err = file->err;
	if (take)
		file->err = 0;
	pthread_mutex_unlock(&wb->lock);
	return err;
}

int remote_wb_err(struct remote_wb *wb, struct remote_wb_file *file)
{
	return remote_wb_get_err(wb, file, false);
}

int remote_wb_take_err(struct remote_wb *wb, struct remote_wb_file *file)
{
	return remote_wb_get_err(wb, file, true);
}

struct remote_wjob *remote_wb_take(struct remote_wb *wb)
{
	struct remote_wjob *j;

	pthread_mutex_lock(&wb->lock);
	j = remote_wb_take_locked(wb, 0);
	pthread_mutex_unlock(&wb->lock);
	return j;
}

void remote_wb_done(struct remote_wb *wb, struct remote_wjob *job, int err)
{
	pthread_mutex_lock(&wb->lock);
	remote_wb_done_locked(wb, job, err);
	pthread_mutex_unlock(&wb->lock);
}

bool remote_wb_stopping(struct remote_wb *wb)
{
	bool stopping;

	pthread_mutex_lock(&wb->lock);
	stopping = wb->stop && !wb->queued;
	pthread_mutex_unlock(&wb->lock);
	return stopping;
}
