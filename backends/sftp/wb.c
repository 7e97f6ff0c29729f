// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * wb.c - write-behind for the SFTP backend.
 *
 * The kernel's writeback cache is off for shared mounts, so a program's
 * writes reach us one FUSE request at a time, and each used to wait until
 * the server had acknowledged every SSH packet of it: the pipeline ran dry
 * between requests.  sshfs answers a write as soon as it is sent; so do
 * we, more carefully: an ordinary write is copied into a queue and
 * answered, and writer threads send the queue.  Contiguous queued writes of
 * one file go out as one large write (libssh2 keeps all of its packets in
 * flight), which also turns a program's small writes into large ones.
 *
 * The queue knows nothing of SFTP: the backend gives it a function that
 * writes synchronously and leaves a failure on the file, reported by the
 * file's next write, flush or fsync.  Everything that could look at the
 * file behind the queued data waits for it first (sftp.c calls
 * sftp_wb_drain / sftp_wb_drain_path).  Writes that overlap are sent in
 * the order they were made; others of the same file may go out on two
 * connections at once, which is what spreads libssh2's encryption (one
 * core per session) over the machine.  At most `window` bytes are queued
 * per mount; a writer beyond it waits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sftp/internal.h"

#define SFTP_WB_COALESCE    (8u << 20) /* largest write sent at once */
#define SFTP_WB_THREADS_MAX 8

struct sftp_wjob {
	struct sftp_wjob *next;
	void *file;
	char *path; /* the file's path when queued (owned) */
	off_t off;
	size_t len;
	char data[];
};

struct sftp_wb {
	pthread_mutex_t lock;
	pthread_cond_t work;            /* queued, or stop */
	pthread_cond_t done;            /* a write finished */
	struct sftp_wjob *head, **tail; /* queued, in order */
	/* what each thread is writing: file, path and range */
	void *busy[SFTP_WB_THREADS_MAX];
	const char *busy_path[SFTP_WB_THREADS_MAX];
	off_t busy_off[SFTP_WB_THREADS_MAX];
	size_t busy_len[SFTP_WB_THREADS_MAX];
	size_t bytes; /* queued + being written */
	size_t window;
	bool stop;
	int nthreads;
	pthread_t threads[SFTP_WB_THREADS_MAX];
	sftp_wb_fn fn;
};

struct sftp_wb_thread {
	struct sftp_wb *wb;
	int slot;
};

/* Is a thread writing bytes of [off, off+len) of file? */
static bool sftp_wb_is_busy(const struct sftp_wb *wb, const void *file,
			    off_t off, size_t len)
{
	for (int i = 0; i < wb->nthreads; i++)
		if (wb->busy[i] == file &&
		    off < wb->busy_off[i] + (off_t)wb->busy_len[i] &&
		    wb->busy_off[i] < off + (off_t)len)
			return true;
	return false;
}

/*
 * Take the oldest queued write that may go now, and the writes of the
 * same file queued after it that continue it.  A write may go when no
 * thread is writing bytes it overlaps and it is the oldest queued write
 * of its file: so overlapping writes land in the order they were made,
 * while two threads can write two parts of one file at once.  Called with
 * wb->lock held; NULL if nothing may go.  *len gets the total.
 */
static struct sftp_wjob *sftp_wb_take(struct sftp_wb *wb, size_t *len)
{
	struct sftp_wjob **pp, *first = NULL, *last = NULL;
	const void *held[16];
	size_t nheld = 0;
	off_t end = 0;

	*len = 0;
	for (pp = &wb->head; *pp;) {
		struct sftp_wjob *j = *pp;

		if (!first) {
			bool skip = false;

			for (size_t i = 0; i < nheld; i++)
				skip |= held[i] == j->file;
			if (!skip &&
			    sftp_wb_is_busy(wb, j->file, j->off, j->len)) {
				if (nheld == 16)
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
		} else if (j->off != end || *len + j->len > SFTP_WB_COALESCE ||
			   sftp_wb_is_busy(wb, j->file, j->off, j->len)) {
			break; /* later writes of this file stay in order */
		}
		*pp = j->next;
		if (wb->tail == &j->next)
			wb->tail = pp;
		j->next = NULL;
		if (last)
			last->next = j;
		else
			first = j;
		last = j;
		*len += j->len;
		end = j->off + (off_t)j->len;
	}
	return first;
}

static void *sftp_wb_main(void *arg)
{
	struct sftp_wb_thread *t = arg;
	struct sftp_wb *wb = t->wb;
	char *buf = NULL;

	pthread_mutex_lock(&wb->lock);
	for (;;) {
		struct sftp_wjob *jobs, *next;
		const char *data;
		size_t len;

		jobs = sftp_wb_take(wb, &len);
		if (!jobs) {
			if (wb->stop && !wb->head)
				break;
			pthread_cond_wait(&wb->work, &wb->lock);
			continue;
		}
		wb->busy[t->slot] = jobs->file;
		wb->busy_path[t->slot] = jobs->path;
		wb->busy_off[t->slot] = jobs->off;
		wb->busy_len[t->slot] = len;
		pthread_mutex_unlock(&wb->lock);

		data = jobs->data;
		if (jobs->next) {
			size_t at = 0;

			if (!buf)
				buf = malloc(SFTP_WB_COALESCE);
			if (buf) {
				for (struct sftp_wjob *j = jobs; j;
				     j = j->next) {
					memcpy(buf + at, j->data, j->len);
					at += j->len;
				}
				data = buf;
			}
		}
		if (data == jobs->data && jobs->next) {
			/* no memory for one buffer: one by one */
			for (struct sftp_wjob *j = jobs; j; j = j->next)
				wb->fn(j->file, j->data, j->len, j->off);
		} else {
			wb->fn(jobs->file, data, len, jobs->off);
		}

		pthread_mutex_lock(&wb->lock);
		wb->busy[t->slot] = NULL;
		wb->busy_path[t->slot] = NULL;
		wb->bytes -= len;
		for (; jobs; jobs = next) {
			next = jobs->next;
			free(jobs->path);
			free(jobs);
		}
		pthread_cond_broadcast(&wb->done);
		/* another thread may be waiting for this file to be free */
		pthread_cond_broadcast(&wb->work);
	}
	pthread_mutex_unlock(&wb->lock);
	free(buf);
	free(t);
	return NULL;
}

int sftp_wb_new(struct sftp_wb **out, sftp_wb_fn fn, int threads, size_t window)
{
	struct sftp_wb *wb = calloc(1, sizeof(*wb));

	*out = NULL;
	if (!wb)
		return -ENOMEM;
	pthread_mutex_init(&wb->lock, NULL);
	pthread_cond_init(&wb->work, NULL);
	pthread_cond_init(&wb->done, NULL);
	wb->tail = &wb->head;
	wb->window = window;
	wb->fn = fn;
	if (threads > SFTP_WB_THREADS_MAX)
		threads = SFTP_WB_THREADS_MAX;
	for (int i = 0; i < threads; i++) {
		struct sftp_wb_thread *t = malloc(sizeof(*t));

		if (!t)
			break;
		t->wb = wb;
		t->slot = i;
		if (pthread_create(&wb->threads[i], NULL, sftp_wb_main, t)) {
			free(t);
			break;
		}
		wb->nthreads++;
	}
	if (!wb->nthreads) {
		sftp_wb_free(wb);
		return -EAGAIN;
	}
	*out = wb;
	return 0;
}

void sftp_wb_free(struct sftp_wb *wb)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	wb->stop = true;
	pthread_cond_broadcast(&wb->work);
	pthread_mutex_unlock(&wb->lock);
	for (int i = 0; i < wb->nthreads; i++)
		pthread_join(wb->threads[i], NULL);
	pthread_cond_destroy(&wb->done);
	pthread_cond_destroy(&wb->work);
	pthread_mutex_destroy(&wb->lock);
	free(wb);
}

int sftp_wb_write(struct sftp_wb *wb, void *file, const char *path,
		  const void *buf, size_t len, off_t off)
{
	struct sftp_wjob *j = malloc(sizeof(*j) + len);

	if (!j)
		return -ENOMEM;
	j->path = strdup(path);
	if (!j->path) {
		free(j);
		return -ENOMEM;
	}
	j->next = NULL;
	j->file = file;
	j->off = off;
	j->len = len;
	memcpy(j->data, buf, len);
	pthread_mutex_lock(&wb->lock);
	while (wb->bytes && wb->bytes + len > wb->window)
		pthread_cond_wait(&wb->done, &wb->lock);
	wb->bytes += len;
	*wb->tail = j;
	wb->tail = &j->next;
	pthread_cond_signal(&wb->work);
	pthread_mutex_unlock(&wb->lock);
	return 0;
}

static bool sftp_wb_has(const struct sftp_wb *wb, const void *file,
			const char *path)
{
	for (int i = 0; i < wb->nthreads; i++)
		if ((file && wb->busy[i] == file) ||
		    (path && wb->busy_path[i] &&
		     strcmp(wb->busy_path[i], path) == 0))
			return true;
	for (const struct sftp_wjob *j = wb->head; j; j = j->next)
		if ((file && j->file == file) ||
		    (path && strcmp(j->path, path) == 0))
			return true;
	return false;
}

void sftp_wb_drain(struct sftp_wb *wb, void *file)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	while (sftp_wb_has(wb, file, NULL))
		pthread_cond_wait(&wb->done, &wb->lock);
	pthread_mutex_unlock(&wb->lock);
}

void sftp_wb_drain_path(struct sftp_wb *wb, const char *path)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	while (wb->bytes && sftp_wb_has(wb, NULL, path))
		pthread_cond_wait(&wb->done, &wb->lock);
	pthread_mutex_unlock(&wb->lock);
}
