/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * renew.c - the renewal thread: it rewrites each record of ours P after
 * its last write (sooner while it still marks a granted lock pending),
 * each file on a thread of its own, under the record's validity as
 * deadline, and notices every lapse.  lock_internal.h names L, W and P and
 * gives the locking rules.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/callctx.h"
#include "guestfs/lock.h"
#include "guestfs/lock_internal.h"
#include "lib/log.h"
#include "lib/clock.h"

/*
 * Renew gf's record: check that it is still there and unchanged (a record
 * gone or changed was broken by another host: the locks are lost, and a
 * new record would hide that), then write its successor.  Every request
 * carries the current validity as its deadline, so a renewal never lands
 * after the moment others may judge the record expired.  Runs on a thread
 * of its own (renew_thread) with gf busy; called and returns locked.
 */
static void renew_one(struct glock_file *gf)
{
	char *rec = record_join(gf->record_dir, gf->record), *text, *rdir, *old;
	struct timespec was = gf->rec_mtime;
	struct put_result res = {0};
	int64_t began = vfs_mono_ns(), valid = gf->valid_ns;
	bool in_time = false;
	struct vfs_callctx cx;
	struct stat st;
	int ret;

	text = record_text(gf->locks, gf->n, NULL);
	rdir = strdup(gf->record_dir);
	old = strdup(gf->record);
	gf->republish = false;
	cx = vfs_callctx_push(gf->valid_ns, true);
	pthread_mutex_unlock(&glock_g.lock);
	if (!rec || !text || !rdir || !old) {
		ret = -ENOMEM;
	} else {
		/* one round trip: a fresh lstat (no cache, callctx) */
		ret = lower_getattr(gf->lower, rec, &st);
		if (ret == 0 &&
		    (st.st_mtim.tv_sec != was.tv_sec ||
		     st.st_mtim.tv_nsec != was.tv_nsec || !S_ISREG(st.st_mode)))
			ret = -ESTALE;
		if (ret == -ENOENT || ret == -ESTALE) {
			log_err("lock lease %s was %s by another host; writes "
				"to the file now fail",
				rec, ret == -ENOENT ? "removed" : "changed");
		} else if (ret == 0) {
			ret = record_put(gf->lower, rdir, gf->fid, text,
					 &res.name, &res.mtime, &res.sent_ns);
			/* only a successor confirmed in time lets the
			 * predecessor go; a late one leaves it to expire */
			in_time = ret == 0 && vfs_mono_ns() < valid;
		}
	}
	vfs_callctx_pop(cx);
	if (in_time)
		lease_drop_predecessor(gf->lower, rdir, old, res.sent_ns);
	pthread_mutex_lock(&glock_g.lock);
	if (in_time) {
		/* also when a writer saw the old validity end meanwhile: the
		 * lapse stands (it is permanent), and this record is then the
		 * one that stays until it expires */
		lease_adopt_locked(gf, &res);
		if (!gf->lost && vfs_mono_ns() - began > renew_period_ns())
			log_warn("renewing lock lease %s took %.1f s: %.1f s "
				 "more and the locks are lost",
				 rec, (double)(vfs_mono_ns() - began) / NS,
				 (double)(valid_window_ns() -
					  renew_period_ns()) /
					 NS);
	} else if (ret == 0) {
		/* confirmed after the old validity: it cannot count, and a
		 * fresh record of lost locks would only keep others out */
		pthread_mutex_unlock(&glock_g.lock);
		record_drop(gf->lower, rdir, res.name);
		pthread_mutex_lock(&glock_g.lock);
		glock_check_lapsed_locked(gf);
		gf->lost = true;
	} else if (ret == -ENOENT || ret == -ESTALE) {
		gf->lost = true;
	} else {
		log_warn("cannot renew lock lease %s: %s", rec ? rec : "?",
			 strerror(-ret));
		glock_check_lapsed_locked(gf);
		gf->retry_ns = vfs_mono_ns() + NS / 2;
	}
	free(res.name);
	free(rec);
	free(text);
	free(rdir);
	free(old);
}

/* Renew a file the renewer marked busy and counted; gf may be gone
 * after.  Called and returns locked. */
static void renew_run_locked(struct glock_file *gf)
{
	renew_one(gf);
	gf->busy = false;
	gf->users--;
	glock_g.renewing--;
	pthread_cond_broadcast(&glock_g.changed);
	glock_file_maybe_free_locked(gf);
}

static void *renew_thread(void *p)
{
	pthread_mutex_lock(&glock_g.lock);
	renew_run_locked(p);
	pthread_mutex_unlock(&glock_g.lock);
	return NULL;
}

/*
 * Every file due for renewal gets a thread of its own, so that a renewal
 * stalled on one mount (up to its deadline) holds up no other file's.
 * Each pass also notices every lapse.
 */
static void *renewer(void *p)
{
	pthread_mutex_lock(&glock_g.lock);
	while (!glock_g.stop) {
		int64_t now = vfs_mono_ns();

		for (struct glock_file *gf = glock_g.files; gf; gf = gf->next) {
			pthread_attr_t attr;
			pthread_t t;
			bool started = false;

			if (!gf->record || gf->busy || gf->lost ||
			    glock_check_lapsed_locked(gf) || now < gf->retry_ns)
				continue;
			if (!gf->republish &&
			    now - gf->sent_ns < renew_period_ns())
				continue;
			gf->busy = true;
			gf->users++;
			glock_g.renewing++;
			if (pthread_attr_init(&attr) == 0) {
				pthread_attr_setdetachstate(
					&attr, PTHREAD_CREATE_DETACHED);
				started = pthread_create(&t, &attr,
							 renew_thread, gf) == 0;
				pthread_attr_destroy(&attr);
			}
			if (!started) {
				/* no thread: renew here, holding up the rest;
				 * the list may have changed while unlocked */
				renew_run_locked(gf);
				break;
			}
		}
		if (!glock_g.stop)
			glock_timed_wait_locked(glock_g.lease >= 12 ? 500
								    : 200);
	}
	pthread_mutex_unlock(&glock_g.lock);
	return NULL;
}

/* Start the renewer.  0 or -EAGAIN. */
int renew_start(void)
{
	glock_g.stop = false;
	if (pthread_create(&glock_g.renewer, NULL, renewer, NULL) != 0)
		return -EAGAIN;
	glock_g.running = true;
	return 0;
}

/* Stop the renewer and wait for the renewals in flight; false if it never
 * started. */
bool renew_stop(void)
{
	if (!glock_g.running)
		return false;
	pthread_mutex_lock(&glock_g.lock);
	glock_g.stop = true;
	pthread_cond_broadcast(&glock_g.changed);
	pthread_mutex_unlock(&glock_g.lock);
	pthread_join(glock_g.renewer, NULL);
	/* renewals in flight end by their deadlines */
	pthread_mutex_lock(&glock_g.lock);
	while (glock_g.renewing)
		pthread_cond_wait(&glock_g.changed, &glock_g.lock);
	pthread_mutex_unlock(&glock_g.lock);
	glock_g.running = false;
	return true;
}
