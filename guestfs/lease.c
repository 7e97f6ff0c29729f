/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lease.c - the cross-host lease protocol: judging the other instances'
 * records by the server's clock (expired, leftovers of our own, duplicate
 * host ids), publishing ours under its deadline and letting its predecessor
 * go, acquiring a lock against the others.  docs/locking.md has the
 * reasoning and guestfs/lock.pml the checked model; lock_internal.h names
 * L, W and P and gives the locking rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/callctx.h"
#include "guestfs/lock.h"
#include "guestfs/lock_internal.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/clock.h"

#define SCAN_TRIES    8 /* listings that raced with renewals */
#define PENDING_TRIES 6 /* backoffs behind racing acquirers */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* ---- the others' records ----------------------------------------------- */

/*
 * Records dated ahead of the server's clock by more than a second: their
 * mtime was set by hand, or the server's clock stepped back since they
 * were written.  The server's clock cannot age them, so this daemon ages
 * them by its own: whoever wrote one sent it before this daemon first saw
 * it, so the writer's validity (W) ended by first sight + W < L + 1, and a
 * record that stays unchanged (same name, same mtime) that long is
 * expired.  Records are never rewritten under their name, so a live
 * holder's records never grow that old.  Protected by glock_g.lock.
 */
#define FUTURE_MAX 64

static struct future_seen {
	uint64_t key; /* the record: mount, directory, name; 0: free */
	struct timespec mtime;
	int64_t first_ns; /* CLOCK_MONOTONIC: first seen */
} future[FUTURE_MAX];

static bool future_expired(const struct gfs_lower *l, const char *rdir,
			   const char *name, const struct timespec *mtime)
{
	uint64_t key = vfs_hash_str(rdir) ^ vfs_hash_str(name) * 31 ^
		       (uint64_t)(uintptr_t)l;
	int64_t now = vfs_mono_ns();
	struct future_seen *slot = NULL;
	bool gone = false;

	key |= 1; /* never 0 */
	pthread_mutex_lock(&glock_g.lock);
	for (int i = 0; i < FUTURE_MAX && !slot; i++)
		if (future[i].key == key)
			slot = &future[i];
	if (slot && (slot->mtime.tv_sec != mtime->tv_sec ||
		     slot->mtime.tv_nsec != mtime->tv_nsec))
		slot->key = 0; /* another record now: start again */
	if (!slot || !slot->key) {
		/* the oldest sighting makes room: it was judged longest */
		if (!slot) {
			slot = &future[0];
			for (int i = 1; i < FUTURE_MAX; i++)
				if (!future[i].key ||
				    (slot->key &&
				     future[i].first_ns < slot->first_ns))
					slot = &future[i];
		}
		*slot = (struct future_seen){key, *mtime, now};
	}
	gone = now - slot->first_ns > lease_ns() + NS;
	if (gone)
		slot->key = 0;
	pthread_mutex_unlock(&glock_g.lock);
	return gone;
}

/* Expired by the server's clock `now` (see the names in lock_internal.h),
 * or by this daemon's for a record from the future (future_expired). */
static bool expired(const struct gfs_lower *l, const char *rdir,
		    const char *name, const struct timespec *now,
		    const struct timespec *mtime)
{
	double age = vfs_ts_diff(now, mtime);

	if (age < -1.0)
		return future_expired(l, rdir, name, mtime);
	return age > glock_g.lease + 1;
}

struct names {
	char **v;
	mode_t *type; /* S_IFMT bits from the listing */
	size_t n;
};

static bool has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && strcmp(s + a - b, suffix) == 0;
}

static int collect_name(void *ctx, const char *name, const struct stat *st,
			unsigned flags, off_t next)
{
	struct names *nm = ctx;
	char **grown;

	mode_t *types;

	if (!has_suffix(name, ".lease") && !has_suffix(name, ".tmp~~"))
		return 0;
	grown = realloc(nm->v, (nm->n + 1) * sizeof(*grown));
	if (grown)
		nm->v = grown;
	types = realloc(nm->type, (nm->n + 1) * sizeof(*types));
	if (types)
		nm->type = types;
	if (!grown || !types)
		return 1;
	nm->v[nm->n] = strdup(name);
	nm->type[nm->n] = st->st_mode & S_IFMT;
	if (nm->v[nm->n])
		nm->n++;
	return 0;
}

static void names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
	free(nm->type);
	nm->v = NULL;
	nm->type = NULL;
	nm->n = 0;
}

/* The record number in a record's name (HOST.TOKEN.SEQ.lease), or 0. */
static uint64_t record_seq(const char *name)
{
	const char *end = name + strlen(name) - strlen(".lease"), *p = end;

	while (p > name && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return p < end && p > name && p[-1] == '.' ? strtoull(p, NULL, 10) : 0;
}

/*
 * Another instance's record that carries our host id: a predecessor killed
 * less than a lease ago, or another live daemon given the same id.  Its
 * locks count either way (records are told apart by token, not host id).
 * Only a live instance writes new records: a higher record number in the
 * same directory in a later listing proves the second case, which is
 * refused from then on.  (A dead one may have left several records, in
 * several directories, but never adds one.)  Called locked.
 */
static void note_same_host_locked(const struct gfs_lower *l, const char *token,
				  const char *rdir, uint64_t seq, unsigned scan)
{
	/* the same name on two mounts is two directories */
	uint64_t dir = vfs_hash_str(rdir) ^ (uint64_t)(uintptr_t)l;
	int free_slot = -1;

	for (int i = 0; i < DUPS_MAX; i++) {
		struct dup_seen *d = &glock_g.dups[i];

		if (!d->token[0]) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (strcmp(d->token, token) != 0 || d->dir != dir)
			continue;
		if (seq > d->max_seq && d->scan != scan && !glock_g.dup_live) {
			glock_g.dup_live = true;
			log_err("host id '%s' is used by another running vfsd "
				"instance (token %s) on the same storage: "
				"refusing new cross-host locks until one of "
				"them gets another host_id",
				glock_g.host, token);
		}
		if (seq > d->max_seq)
			d->max_seq = seq;
		d->scan = scan;
		return;
	}
	if (free_slot < 0) {
		/* full: the least recently seen goes */
		free_slot = 0;
		for (int i = 1; i < DUPS_MAX; i++)
			if (glock_g.dups[i].scan < glock_g.dups[free_slot].scan)
				free_slot = i;
	}
	{
		struct dup_seen *d = &glock_g.dups[free_slot];

		snprintf(d->token, sizeof(d->token), "%s", token);
		d->dir = dir;
		d->max_seq = seq;
		d->scan = scan;
		log_warn("a lock lease of host id '%s' from another vfsd "
			 "instance (token %s) is on the storage: a predecessor "
			 "of this daemon (its locks expire after the lease) or "
			 "another daemon with the same host_id",
			 glock_g.host, token);
	}
}

/* A live record we cannot understand: a write lock over the whole file,
 * both kinds, until it expires. */
static int push_whole_file(struct glock **v, size_t *n, size_t *cap,
			   const char *name)
{
	struct glock all = {
		.kind = GLOCK_POSIX,
		.type = F_WRLCK,
		.start = 0,
		.end = OFF_MAX_,
	};
	int ret;

	snprintf(all.host, sizeof(all.host), "%s", name);
	snprintf(all.token, sizeof(all.token), "?");
	ret = glock_push(v, n, cap, &all);
	all.kind = GLOCK_FLOCK;
	return ret ? ret : glock_push(v, n, cap, &all);
}

/*
 * Read one listed record into *v; *again when it vanished (the caller
 * lists again).  Called by lease_remote_locks().
 */
static int scan_one(const struct gfs_lower *l, const char *rdir,
		    const char *name, mode_t type, unsigned scan,
		    const struct timespec *now, bool clean, struct glock **v,
		    size_t *n, size_t *cap, bool *again)
{
	char *path = record_join(rdir, name), *text;
	char host[128], token[17];
	struct timespec mtime;
	bool toolong;
	size_t first = *n;
	int rerr, ret = 0;

	if (!path)
		return -ENOMEM;
	if (has_suffix(name, ".tmp~~")) {
		struct stat st;

		/* a writer that died between create and rename; a live one
		 * renames within its deadline, far below two leases */
		if (clean && lower_getattr(l, path, &st) == 0 &&
		    vfs_ts_diff(now, &st.st_mtim) > 2.0 * glock_g.lease + 1)
			lower_unlink(l, path);
		free(path);
		return 0;
	}
	if (type && type != S_IFREG) {
		struct stat st;

		/* not a file (a FIFO would block the read): dated by lstat,
		 * understood by nobody */
		text = NULL;
		toolong = false;
		mtime.tv_sec = mtime.tv_nsec = 0;
		rerr = lower_getattr(l, path, &st);
		if (rerr == 0) {
			mtime = st.st_mtim;
			rerr = -EBADMSG;
		} else if (record_gone(rerr)) {
			rerr = -ENOENT;
		}
	} else {
		text = record_read(l, path, &mtime, &rerr, &toolong);
	}
	if (!text && rerr == -ENOENT) {
		/* renewed or released meanwhile: look again rather than
		 * miss its successor */
		*again = true;
	} else if (!text && !mtime.tv_sec && !toolong) {
		/* neither readable nor datable: it may be a live lock, and
		 * guessing otherwise could let two hosts write one image */
		log_warn("lock lease %s unreadable: %s", path, strerror(-rerr));
		ret = rerr;
	} else if (mtime.tv_sec && expired(l, rdir, name, now, &mtime)) {
		if (clean) {
			log_warn("removing expired lock lease %s (%.0f s old)",
				 path, vfs_ts_diff(now, &mtime));
			lower_unlink(l, path);
		}
	} else if (!text && !toolong && lease_transient(rerr)) {
		/* the server or the way to it failed mid-read: that is no
		 * answer about this record, and no lock either (taken as a
		 * whole-file lock it would refuse a lock with EAGAIN, "held
		 * by another", for a glitch) */
		ret = rerr;
	} else if (!text || record_parse(text, v, n, cap, host, sizeof(host),
					 token, sizeof(token)) < 0) {
		log_warn("lock lease %s %s; taken as a write lock of the whole "
			 "file until it expires",
			 path,
			 text      ? "malformed"
			 : toolong ? "too long"
				   : strerror(-rerr));
		ret = push_whole_file(v, n, cap, name);
	} else {
		double age = mtime.tv_sec ? vfs_ts_diff(now, &mtime) : 0;

		for (size_t j = first; j < *n; j++)
			(*v)[j].age = age < 0 ? 0 : (int)age;
		if (strcmp(host, glock_g.host) == 0 &&
		    strcmp(token, glock_g.token) != 0 &&
		    strcmp(token, "?") != 0) {
			pthread_mutex_lock(&glock_g.lock);
			note_same_host_locked(l, token, rdir, record_seq(name),
					      scan);
			pthread_mutex_unlock(&glock_g.lock);
		}
	}
	free(text);
	free(path);
	return ret;
}

/* Remove our own leftover record `name` once the server's clock says it
 * has expired (others judge it the same way). */
static void drop_if_expired(const struct gfs_lower *l, const char *rdir,
			    const char *name, const struct timespec *now)
{
	char *path = record_join(rdir, name);
	struct stat st;

	if (!path)
		return;
	if (lower_getattr(l, path, &st) == 0 &&
	    expired(l, rdir, name, now, &st.st_mtim)) {
		log_info("removing this daemon's expired lock lease %s", path);
		lower_unlink(l, path);
	}
	free(path);
}

/*
 * Whether this instance's record `name` (HOST.TOKEN.FID.SEQ.lease, our
 * HOST.TOKEN. being `ownlen` characters) is a leftover: the file number
 * FID belongs to no file of ours that has a record or is acquiring one.
 * Such a record was left by a release that could not remove it, and we
 * hold nothing under it.  A record of another live file of ours (another
 * vfsd path of the same backend file: two mounts of one directory, or a
 * file renamed over the name) is not: its locks conflict like another
 * host's.  File numbers are never reused, so a leftover stays one.
 */
static bool own_leftover(const char *name, size_t ownlen)
{
	const char *p = name + ownlen;
	char *end;
	uint64_t fid;
	bool live = false;

	if (*p < '0' || *p > '9')
		return false;
	fid = strtoull(p, &end, 10);
	if (*end != '.')
		return false;
	pthread_mutex_lock(&glock_g.lock);
	for (struct glock_file *gf = glock_g.files; gf && !live; gf = gf->next)
		live = gf->fid == fid && (gf->record || gf->busy);
	pthread_mutex_unlock(&glock_g.lock);
	return !live;
}

/*
 * The other instances' live locks on the file, in *out (caller frees),
 * judged by the server's clock `now`.  `mine` is our current record (not
 * read).  With `clean`, expired records, stale temporary files and our
 * own superseded records are removed, each by its unique name, so only
 * ever what was judged.  A record that vanished between the listing and
 * the read was replaced by a renewal: the listing is taken again, so a
 * holder is never missed.
 */
int lease_remote_locks(const struct gfs_lower *l, const char *rdir,
		       uint64_t fid, const struct timespec *now,
		       const char *mine, bool clean, struct glock **out,
		       size_t *outn)
{
	char prefix[600], own[600];
	struct glock *v = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	*out = NULL;
	*outn = 0;
	/* our own records of this file (fid 0: none of ours is skipped) */
	snprintf(prefix, sizeof(prefix), "%s.%s.%" PRIu64 ".", glock_g.host_esc,
		 glock_g.token, fid);
	/* any record of this instance */
	snprintf(own, sizeof(own), "%s.%s.", glock_g.host_esc, glock_g.token);
	for (int tries = 0;; tries++) {
		struct names nm = {0};
		bool again = false;

		unsigned scan;

		pthread_mutex_lock(&glock_g.lock);
		scan = ++glock_g.scans;
		pthread_mutex_unlock(&glock_g.lock);
		n = 0;
		/* a listing cut short could miss a live lease: no answer,
		 * unless the directory went away under it */
		ret = lower_list(l, rdir, collect_name, &nm);
		if (ret == -ENOENT) {
			names_free(&nm);
			ret = 0;
			break;
		}
		if (ret == -ESTALE) {
			/* removed, and maybe made again, since its lookup */
			ret = 0;
			again = true;
		} else if (ret < 0) {
			names_free(&nm);
			break;
		}
		for (size_t i = 0; ret == 0 && !again && i < nm.n; i++) {
			const char *name = nm.v[i];

			if (mine && strcmp(name, mine) == 0)
				continue;
			if (fid && !strncmp(name, prefix, strlen(prefix)) &&
			    has_suffix(name, ".lease")) {
				/* ours, superseded: its removal failed */
				if (clean)
					record_drop(l, rdir, name);
				continue;
			}
			if (!strncmp(name, own, strlen(own)) &&
			    has_suffix(name, ".lease") &&
			    own_leftover(name, strlen(own))) {
				/* ours from an earlier tenure on this file,
				 * whose release could not remove it (the
				 * server was out of reach): this instance
				 * holds nothing under it, so it stands in
				 * nobody's way here.  Other hosts honour it
				 * until it expires, which covers any write of
				 * that tenure still on its way. */
				if (clean)
					drop_if_expired(l, rdir, name, now);
				continue;
			}
			ret = scan_one(l, rdir, name, nm.type[i], scan, now,
				       clean, &v, &n, &cap, &again);
		}
		names_free(&nm);
		if (ret < 0 || !again)
			break;
		if (tries + 1 >= SCAN_TRIES) {
			/* records replaced faster than we can read them */
			free(v);
			return -EAGAIN;
		}
	}
	if (ret < 0) {
		free(v);
		return ret;
	}
	*out = v;
	*outn = n;
	return 0;
}

/* The lock of `others` that conflicts with `want`, preferring a held one
 * to a pending one; *pending_only: every conflicting lock is still being
 * acquired (by a racing acquirer that will back off). */
const struct glock *lease_find_conflict(const struct glock *others, size_t on,
					const struct glock *want,
					bool *pending_only)
{
	const struct glock *c = NULL;

	*pending_only = true;
	for (size_t i = 0; i < on; i++) {
		if (!glock_conflicts(&others[i], want))
			continue;
		if (!others[i].pending)
			*pending_only = false;
		if (!c || !others[i].pending)
			c = &others[i];
	}
	return c;
}

/* ---- our record -------------------------------------------------------- */

/* Remove the record `old` that a successor sent at `sent_ns` and confirmed
 * in time replaces; the removal runs under the successor's validity. */
void lease_drop_predecessor(const struct gfs_lower *l, const char *rdir,
			    const char *old, int64_t sent_ns)
{
	struct vfs_callctx cx =
		vfs_callctx_push(sent_ns + valid_window_ns(), true);

	record_drop(l, rdir, old);
	vfs_callctx_pop(cx);
}

/*
 * Write the successor of our record `old` (may be NULL), holding `v`, or
 * remove `old` when n is 0.  The caller removes `old` once the successor
 * counts (lease_publish_fenced), so a reader always finds one of them, and a
 * successor that came too late leaves the predecessor to expire.  Called
 * with the file busy and glock_g.lock dropped; the caller adopts *res.
 */
static int publish(const struct gfs_lower *l, const char *rdir, uint64_t fid,
		   const char *old, const struct glock *v, size_t n,
		   const struct glock *pending, struct put_result *res)
{
	char *text;
	int ret;

	memset(res, 0, sizeof(*res));
	if (n > LOCKS_MAX)
		return -ENOLCK;
	if (!n) {
		char *parent = strdup(rdir), *slash;

		if (old)
			record_drop(l, rdir, old);
		/* leave no empty lock directories in the user's tree (they
		 * would make rmdir fail); another host's records keep them */
		if (lower_rmdir(l, rdir) == 0 && parent &&
		    (slash = strrchr(parent, '/'))) {
			*slash = '\0';
			lower_rmdir(l, parent);
		}
		free(parent);
		return 0;
	}
	text = record_text(v, n, pending);
	if (!text)
		return -ENOMEM;
	/* record_put makes the directories when they are missing */
	ret = strlen(text) > RECORD_MAX ? -ENOLCK : 0;
	if (ret == 0)
		ret = record_put(l, rdir, fid, text, &res->name, &res->mtime,
				 &res->sent_ns);
	free(text);
	return ret;
}

/* Take over a publish result.  Called locked. */
void lease_adopt_locked(struct glock_file *gf, struct put_result *res)
{
	free(gf->record);
	gf->record = res->name;
	res->name = NULL;
	if (gf->record) {
		gf->rec_mtime = res->mtime;
		gf->sent_ns = res->sent_ns;
		gf->valid_ns = res->sent_ns + valid_window_ns();
		gf->retry_ns = 0;
	}
}

/* Our current record's name, copied (NULL if none or ENOMEM). */
static char *current_record(struct glock_file *gf)
{
	char *cur;

	pthread_mutex_lock(&glock_g.lock);
	cur = gf->record ? strdup(gf->record) : NULL;
	pthread_mutex_unlock(&glock_g.lock);
	return cur;
}

/*
 * The deadline of a publish: one that carries locks already granted
 * renews them, so it must land within their validity, like a renewal;
 * one that carries none may take its time (its validity starts when it is
 * sent).
 */
static int64_t publish_deadline(struct glock_file *gf, size_t granted)
{
	int64_t dl;

	pthread_mutex_lock(&glock_g.lock);
	dl = granted && gf->record ? gf->valid_ns : 0;
	pthread_mutex_unlock(&glock_g.lock);
	return dl;
}

/*
 * publish() under the deadline for `granted` earlier locks.  A publish
 * that missed it, or that only completed after it (a kernel file system
 * beneath a shared local mount cannot be stopped mid-call), cannot renew
 * them: they are lapsed, the record it made is removed again, and the
 * predecessor stays until it expires (the L/3 margin for writes the server
 * may still be finishing needs a record).  Only a successor that counts
 * lets the predecessor go.  Called unlocked with gf busy.
 */
int lease_publish_fenced(struct glock_file *gf, const char *rdir,
			 const struct glock *v, size_t n, size_t granted,
			 const struct glock *pending, struct put_result *res)
{
	int64_t deadline = publish_deadline(gf, granted);
	struct vfs_callctx cx;
	char *cur = current_record(gf);
	int ret;

	cx = vfs_callctx_push(deadline, true);
	ret = publish(gf->lower, rdir, gf->fid, cur, v, n, pending, res);
	vfs_callctx_pop(cx);
	if (ret == 0 && deadline && vfs_mono_ns() >= deadline) {
		if (res->name)
			record_drop(gf->lower, rdir, res->name);
		free(res->name);
		res->name = NULL;
		ret = -ETIMEDOUT;
	} else if (ret == 0 && res->name && cur) {
		lease_drop_predecessor(gf->lower, rdir, cur, res->sent_ns);
	}
	free(cur);
	pthread_mutex_lock(&glock_g.lock);
	if (ret == 0)
		lease_adopt_locked(gf, res); /* res->name NULL: removed */
	else
		glock_check_lapsed_locked(gf);
	pthread_mutex_unlock(&glock_g.lock);
	return ret;
}

/*
 * Acquire `lk` (no local conflict) with the new table `nv`: publish our
 * record with the lock marked pending, then read the others.  Whoever
 * publishes first is seen by whoever reads later, so two acquirers cannot
 * both miss each other; a record judged expired by the server's clock
 * belongs to a holder whose validity ended before ours was written.
 * Called with gf busy and glock_g.lock dropped.  On failure our record is put
 * back to `old_v` (the `old_n` locks granted before).
 */
int lease_acquire(struct glock_file *gf, const char *rdir,
		  const struct glock *nv, size_t nn, const struct glock *old_v,
		  size_t old_n, const struct glock *lk, struct glock *conflict)
{
	int ret;

	for (int tries = 0;; tries++) {
		struct glock *others = NULL;
		const struct glock *c = NULL;
		struct put_result res;
		struct timespec mine_at;
		bool pending_only = false;
		int64_t valid;
		char *cur;
		size_t on = 0;

		ret = lease_publish_fenced(gf, rdir, nv, nn, old_n, lk, &res);
		if (ret < 0)
			return ret;
		pthread_mutex_lock(&glock_g.lock);
		mine_at = gf->rec_mtime;
		valid = gf->valid_ns;
		cur = strdup(gf->record);
		pthread_mutex_unlock(&glock_g.lock);
		ret = cur ? lease_remote_locks(gf->lower, rdir, gf->fid,
					       &mine_at, cur, true, &others,
					       &on)
			  : -ENOMEM;
		free(cur);
		if (ret == 0)
			c = lease_find_conflict(others, on, lk, &pending_only);
		if (c)
			*conflict = *c;
		free(others);
		if (ret == 0 && !c) {
			if (vfs_mono_ns() < valid)
				return 0;
			/* paused past our own validity: others may have
			 * judged our record expired meanwhile, and the locks
			 * we had before are lost with it */
			log_warn("lock acquisition in %s outlived its lease",
				 rdir);
			ret = -EAGAIN;
		} else if (ret == 0) {
			ret = -EAGAIN;
		}
		/* withdraw the lock we did not get */
		if (lease_publish_fenced(gf, rdir, old_v, old_n, old_n, NULL,
					 &res) < 0)
			log_warn("cannot withdraw a refused lock from %s; it "
				 "expires with the lease",
				 rdir);
		if (ret != -EAGAIN || !pending_only ||
		    tries + 1 >= PENDING_TRIES)
			return ret;
		/* racing acquirers all back off; random waits part them */
		sleep_ms(10 + random() % (20L << tries));
	}
}

/* ---- who holds locks --------------------------------------------------- */

/* Append one holder to the comma-separated list in buf, once. */
static size_t holders_add(char *buf, size_t size, size_t used, const char *host,
			  const char *token, int age)
{
	char item[256];

	snprintf(item, sizeof(item), "%s token=%s age=%ds", host, token, age);
	if (strstr(buf, item) || used + 1 >= size)
		return used;
	used += (size_t)snprintf(buf + used, size - used, "%s%s",
				 used ? "," : "", item);
	return used >= size ? size - 1 : used;
}

int glock_holders_detail(const struct gfs_lower *l, const char *path, char *buf,
			 size_t size)
{
	char *rdir = record_dir_of(path);
	struct glock *others = NULL;
	struct vfs_callctx cx;
	struct timespec now;
	size_t on = 0, used = 0;
	int ret;

	buf[0] = '\0';
	if (!rdir)
		return -EINVAL;
	if (!l->shared) {
		/* no records there: a GLOCK_DIR is a user's directory */
		free(rdir);
		return 0;
	}
	pthread_mutex_lock(&glock_g.lock);
	for (struct glock_file *gf = glock_g.files; gf; gf = gf->next)
		if (gf->lower == l && gf->n && gf->record && gf->record_dir &&
		    !strcmp(gf->record_dir, rdir))
			used = holders_add(
				buf, size, used, glock_g.host, glock_g.token,
				(int)((vfs_mono_ns() - gf->sent_ns) / NS));
	pthread_mutex_unlock(&glock_g.lock);
	cx = vfs_callctx_push(0, true);
	ret = record_server_now(l, rdir, &now);
	if (ret == 0)
		ret = lease_remote_locks(l, rdir, 0, &now, NULL, false, &others,
					 &on);
	vfs_callctx_pop(cx);
	for (size_t i = 0; ret == 0 && i < on; i++)
		if (strcmp(others[i].token, glock_g.token) != 0)
			used = holders_add(buf, size, used, others[i].host,
					   others[i].token, others[i].age);
	free(others);
	free(rdir);
	return ret == -ENOENT ? 0 : ret;
}
