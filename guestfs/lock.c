/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lock.c - locks that hold across hosts: this host's lock table (per node,
 * with POSIX semantics per owner) and the API of lock.h.  The lease
 * protocol is in lease.c, the records it reads and writes in record.c, the
 * renewal thread in renew.c; lock_internal.h names L, W and P and gives
 * the locking rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "backends/callctx.h"
#include "guestfs/lock.h"
#include "guestfs/lock_internal.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/clock.h"

#define RETRY_MS 100 /* polling interval of blocking locks */

struct glock_state glock_g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER, /* glock_init: monotonic */
};

/* ---- the local table --------------------------------------------------- */

static void file_free(struct glock_file *gf)
{
	free(gf->locks);
	free(gf->record_dir);
	free(gf->record);
	free(gf);
}

static bool overlap(const struct glock *a, const struct glock *b)
{
	return a->kind == b->kind && a->start <= b->end && b->start <= a->end;
}

bool glock_conflicts(const struct glock *a, const struct glock *b)
{
	return overlap(a, b) && (a->type == F_WRLCK || b->type == F_WRLCK);
}

static bool key_is(const struct glock_file *gf, const struct glock_key *k)
{
	return gf->lower == k->lower && gf->ino == k->ino;
}

static struct glock_file *file_find_locked(const struct glock_key *k,
					   bool create)
{
	struct glock_file *gf;

	for (gf = glock_g.files; gf; gf = gf->next)
		if (key_is(gf, k))
			return gf;
	if (!create)
		return NULL;
	gf = calloc(1, sizeof(*gf));
	if (!gf)
		return NULL;
	gf->lower = k->lower;
	gf->ino = k->ino;
	gf->fid = ++glock_g.next_fid;
	gf->next = glock_g.files;
	glock_g.files = gf;
	return gf;
}

void glock_file_maybe_free_locked(struct glock_file *gf)
{
	struct glock_file **pp;

	if (gf->n || gf->busy || gf->record || gf->users || gf->inflight)
		return;
	for (pp = &glock_g.files; *pp; pp = &(*pp)->next) {
		if (*pp == gf) {
			*pp = gf->next;
			break;
		}
	}
	file_free(gf);
}

int glock_push(struct glock **v, size_t *n, size_t *cap, const struct glock *lk)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		struct glock *grown = realloc(*v, c * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		*v = grown;
		*cap = c;
	}
	(*v)[(*n)++] = *lk;
	return 0;
}

/*
 * POSIX semantics for one owner: the new lock replaces whatever the same
 * owner held in its range (splitting locks that stick out).  The result
 * goes to a new array, so a failure leaves the table as it was.
 */
static int apply(const struct glock *in, size_t n, const struct glock *lk,
		 struct glock **out, size_t *outn)
{
	struct glock *v = NULL;
	size_t vn = 0, cap = 0;
	int ret = 0;

	for (size_t i = 0; i < n && ret == 0; i++) {
		struct glock e = in[i];

		if (e.owner != lk->owner || !overlap(&e, lk)) {
			ret = glock_push(&v, &vn, &cap, &e);
			continue;
		}
		if (e.start < lk->start) {
			struct glock left = e;

			left.end = lk->start - 1;
			ret = glock_push(&v, &vn, &cap, &left);
		}
		if (ret == 0 && e.end > lk->end) {
			struct glock right = e;

			right.start = lk->end + 1;
			ret = glock_push(&v, &vn, &cap, &right);
		}
	}
	if (ret == 0 && lk->type != F_UNLCK)
		ret = glock_push(&v, &vn, &cap, lk);
	if (ret < 0) {
		free(v);
		return ret;
	}
	*out = v;
	*outn = vn;
	return 0;
}

static const struct glock *local_conflict(const struct glock_file *gf,
					  const struct glock *lk)
{
	for (size_t i = 0; gf && i < gf->n; i++)
		if (gf->locks[i].owner != lk->owner &&
		    glock_conflicts(&gf->locks[i], lk))
			return &gf->locks[i];
	return NULL;
}

/* ---- the API ----------------------------------------------------------- */

/* Whether the file's locks are published: a shared mount, a name to
 * publish them by. */
static bool is_shared(const struct glock_key *k)
{
	return k->lower->shared && k->path;
}

bool glock_any(const struct gfs_lower *lower)
{
	bool any = false;

	pthread_mutex_lock(&glock_g.lock);
	for (struct glock_file *gf = glock_g.files; gf && !any; gf = gf->next)
		any = gf->lower == lower;
	pthread_mutex_unlock(&glock_g.lock);
	return any;
}

/* Wait until no remote work runs on gf; called and returns locked. */
static void wait_idle_locked(struct glock_file *gf)
{
	while (gf->busy)
		pthread_cond_wait(&glock_g.changed, &glock_g.lock);
}

void glock_timed_wait_locked(long ms)
{
	struct timespec until;

	/* glock_g.changed runs on CLOCK_MONOTONIC (glock_init): a wall clock
	 * stepped back must not stall the renewer */
	vfs_ts_after_ms(&until, CLOCK_MONOTONIC, ms);
	pthread_cond_timedwait(&glock_g.changed, &glock_g.lock, &until);
}
/* Past the validity of our last confirmed record write, the locks are
 * lost for good: others may judge the record expired at any later time,
 * however long they were paused.  Called locked. */
bool glock_check_lapsed_locked(struct glock_file *gf)
{
	if (gf->record && !gf->lost && vfs_mono_ns() >= gf->valid_ns) {
		gf->lost = true;
		log_err("lock lease %s/%s lapsed (no renewal confirmed for "
			"%.1f s): writes to the file fail until it is closed",
			gf->record_dir, gf->record,
			(double)(vfs_mono_ns() - gf->sent_ns) / NS);
	}
	return gf->lost;
}

int glock_test(const struct glock_key *k, struct glock *lk)
{
	const struct glock *c;
	struct glock_file *gf;
	struct glock *others = NULL;
	struct vfs_callctx cx;
	struct timespec now;
	size_t on = 0;
	bool pending_only;
	char *rdir, *mine;
	uint64_t fid;
	int ret;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(k, false);
	c = local_conflict(gf, lk);
	if (c) {
		*lk = *c;
		snprintf(lk->host, sizeof(lk->host), "%s", glock_g.host);
		pthread_mutex_unlock(&glock_g.lock);
		return 0;
	}
	fid = gf ? gf->fid : 0;
	mine = gf && gf->record ? strdup(gf->record) : NULL;
	pthread_mutex_unlock(&glock_g.lock);
	if (!is_shared(k) || !(rdir = record_dir_of(k->path))) {
		free(mine);
		lk->type = F_UNLCK;
		return 0;
	}
	cx = vfs_callctx_push(0, true);
	ret = record_server_now(k->lower, rdir, &now);
	if (ret == 0)
		ret = lease_remote_locks(k->lower, rdir, fid, &now, mine, false,
					 &others, &on);
	free(mine);
	vfs_callctx_pop(cx);
	if (ret == 0) {
		const struct glock want = *lk;

		lk->type = F_UNLCK;
		c = lease_find_conflict(others, on, &want, &pending_only);
		if (c) {
			*lk = *c;
			lk->pid = 0;
			lk->owner = 0;
		}
	} else if (ret == -ENOENT || ret == -EROFS) {
		/* no record directory (nobody holds anything), or nobody
		 * can write there */
		lk->type = F_UNLCK;
		ret = 0;
	}
	free(others);
	free(rdir);
	return ret;
}

/* Is `lk` a read lock inside one write lock its owner holds (a downgrade,
 * which conflicts with nobody else's)? */
static bool downgrade_only(const struct glock_file *gf, const struct glock *lk)
{
	for (size_t i = 0; lk->type == F_RDLCK && i < gf->n; i++)
		if (gf->locks[i].owner == lk->owner &&
		    gf->locks[i].kind == lk->kind &&
		    gf->locks[i].type == F_WRLCK &&
		    gf->locks[i].start <= lk->start &&
		    gf->locks[i].end >= lk->end)
			return true;
	return false;
}

/* Does `lk` give up (unlock or downgrade) any of its owner's locks? */
static bool weakens(const struct glock_file *gf, const struct glock *lk)
{
	if (lk->type == F_UNLCK)
		return true;
	for (size_t i = 0; lk->type == F_RDLCK && i < gf->n; i++)
		if (gf->locks[i].owner == lk->owner &&
		    gf->locks[i].type == F_WRLCK && overlap(&gf->locks[i], lk))
			return true;
	return false;
}

/*
 * Wait until no write under gf's locks is in flight, at most until their
 * validity ends (then they are lost, and so are the writes' chances: the
 * backend drops them at that deadline).  Called locked.
 */
static void drain_locked(struct glock_file *gf)
{
	gf->draining = true;
	while (gf->inflight && !glock_check_lapsed_locked(gf)) {
		int64_t left = (gf->valid_ns - vfs_mono_ns()) / 1000000;

		glock_timed_wait_locked(
			left > 0 ? (left < 1000 ? left + 1 : 1000) : 1);
	}
}

/* Locks were lost: the table changes, the record never (a new record
 * would make the lapsed locks look live again).  Called locked. */
static void set_lost_locked(struct glock_file *gf, struct glock *nv, size_t nn)
{
	free(gf->locks);
	gf->locks = nv;
	gf->n = gf->cap = nn;
	if (!nn) {
		/* the last one: start afresh.  The record stays until it
		 * expires: a write under the lapsed locks may still be in
		 * flight (the release stopped waiting at the lapse) or being
		 * finished by the server, and the L/3 margin that covers it
		 * only holds while others see the record.  A new file number
		 * makes it a leftover to our own scans (lease.c's
		 * own_leftover). */
		free(gf->record);
		gf->record = NULL;
		gf->lost = false;
		gf->fid = ++glock_g.next_fid;
	}
}

int glock_set(const struct glock_key *k, const struct glock *lk, bool wait,
	      bool (*interrupted)(void *), void *arg)
{
	const char *path = k->path;
	struct glock_file *gf;
	bool shared;
	int ret;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(k, true);
	if (!gf) {
		pthread_mutex_unlock(&glock_g.lock);
		return -ENOLCK;
	}
	/* a file with records keeps them where they are, named or not (a
	 * release after an unlink or rename) */
	shared = is_shared(k) || (k->lower->shared && gf->record_dir);
	if (!path)
		path = gf->record_dir;
	gf->users++; /* keeps gf while we sleep with the lock dropped */
	for (;;) {
		struct glock *nv = NULL, *old_v = NULL, conflict;
		struct put_result res = {0};
		struct vfs_callctx cx;
		char *rdir = NULL;
		size_t nn = 0, old_n;
		bool downgrade;

		wait_idle_locked(gf);
		glock_check_lapsed_locked(gf);
		if (lk->type != F_UNLCK && atomic_load(&k->lower->revoked)) {
			ret = -EIO; /* what every call on the file answers */
			break;
		}
		if (lk->type != F_UNLCK && local_conflict(gf, lk)) {
			ret = -EAGAIN;
			goto conflict;
		}
		ret = apply(gf->locks, gf->n, lk, &nv, &nn);
		if (ret < 0)
			break;
		if (!shared ||
		    (!gf->record && !gf->lost && lk->type == F_UNLCK)) {
			free(gf->locks);
			gf->locks = nv;
			gf->n = gf->cap = nn;
			pthread_cond_broadcast(&glock_g.changed);
			break;
		}
		if (lk->type != F_UNLCK && (glock_g.dup_live || gf->lost)) {
			free(nv);
			ret = -ENOLCK;
			log_warn("lock on %s refused: %s", path,
				 glock_g.dup_live
					 ? "another running vfsd has this host "
					   "id"
					 : "this host's earlier locks on the "
					   "file were lost; close it first");
			break;
		}
		downgrade = downgrade_only(gf, lk);
		gf->busy = true;
		if (weakens(gf, lk))
			/* writes made under what we give up must have landed
			 * before anyone may see it free */
			drain_locked(gf);
		if (gf->lost) {
			/* an unlock of lost locks (or lost while draining) */
			if (lk->type == F_UNLCK) {
				set_lost_locked(gf, nv, nn);
				ret = 0;
			} else {
				free(nv);
				ret = -ENOLCK;
			}
			gf->busy = false;
			gf->draining = false;
			pthread_cond_broadcast(&glock_g.changed);
			break;
		}
		if (!gf->record_dir)
			gf->record_dir = record_dir_of(path);
		rdir = gf->record_dir ? strdup(gf->record_dir) : NULL;
		old_n = gf->n;
		old_v = old_n ? malloc(old_n * sizeof(*old_v)) : NULL;
		if (!rdir || (old_n && !old_v)) {
			free(rdir);
			free(old_v);
			free(nv);
			gf->busy = false;
			gf->draining = false;
			pthread_cond_broadcast(&glock_g.changed);
			ret = -ENOMEM;
			break;
		}
		if (old_n)
			memcpy(old_v, gf->locks, old_n * sizeof(*old_v));
		pthread_mutex_unlock(&glock_g.lock);
		cx = vfs_callctx_push(0, true);
		if (lk->type == F_UNLCK || downgrade)
			/* releasing never conflicts (nor does a downgrade);
			 * what stays is renewed */
			ret = lease_publish_fenced(gf, rdir, nv, nn, old_n,
						   NULL, &res);
		else
			ret = lease_acquire(gf, rdir, nv, nn, old_v, old_n, lk,
					    &conflict);
		vfs_callctx_pop(cx);
		free(old_v);
		free(res.name);
		pthread_mutex_lock(&glock_g.lock);
		gf->busy = false;
		gf->draining = false;
		pthread_cond_broadcast(&glock_g.changed);
		if (ret == -EROFS)
			ret = 0; /* nobody can write there anyway */
		if (lk->type == F_UNLCK && ret < 0) {
			/* the next renewal writes what is left, or the lease
			 * runs out by itself */
			log_warn("cannot update lock lease of %s: %s", path,
				 strerror(-ret));
			ret = 0;
		}
		if (ret == 0 && gf->lost) {
			/* the publish came too late for the locks held */
			set_lost_locked(gf, nv, nn);
			ret = lk->type == F_UNLCK ? 0 : -ENOLCK;
		} else if (ret == 0) {
			free(gf->locks);
			gf->locks = nv;
			gf->n = gf->cap = nn;
			if (lk->type != F_UNLCK && !downgrade) {
				/* marked pending in the record until rewritten
				 */
				gf->republish = true;
				pthread_cond_broadcast(&glock_g.changed);
			}
		} else {
			free(nv);
		}
		free(rdir);
		if (ret == -EACCES || ret == -EPERM) {
			/* to F_SETLK callers EACCES means "held by another" */
			log_warn("lock lease of %s cannot be written: %s", path,
				 strerror(-ret));
			ret = -ENOLCK;
		}
		/* a glitch of the server while waiting is no answer about
		 * the holder: a blocking lock tries again, like after a
		 * conflict */
		if (ret != -EAGAIN &&
		    !(wait && lk->type != F_UNLCK && lease_transient(ret)))
			break;
	conflict:
		if (!wait)
			break;
		if (interrupted && interrupted(arg)) {
			ret = -EINTR;
			break;
		}
		glock_timed_wait_locked(RETRY_MS + random() % RETRY_MS);
	}
	gf->users--;
	glock_file_maybe_free_locked(gf);
	pthread_mutex_unlock(&glock_g.lock);
	return ret;
}

void glock_release_owner(const struct glock_key *k, uint64_t owner,
			 enum glock_kind kind)
{
	struct glock all = {
		.kind = kind,
		.type = F_UNLCK,
		.start = 0,
		.end = OFF_MAX_,
		.owner = owner,
	};
	struct glock_file *gf;
	bool held = false;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(k, false);
	for (size_t i = 0; gf && i < gf->n && !held; i++)
		held = gf->locks[i].owner == owner && gf->locks[i].kind == kind;
	pthread_mutex_unlock(&glock_g.lock);
	if (held)
		glock_set(k, &all, false, NULL, NULL);
}

void glock_release_fh(const struct glock_key *k, const void *fh)
{
	struct glock_file *gf;
	uint64_t owners[64];
	enum glock_kind kinds[64];
	size_t n = 0;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(k, false);
	for (size_t i = 0; gf && i < gf->n && n < 64; i++) {
		bool seen = false;

		if (gf->locks[i].fh != fh)
			continue;
		for (size_t j = 0; j < n && !seen; j++)
			seen = owners[j] == gf->locks[i].owner &&
			       kinds[j] == gf->locks[i].kind;
		if (!seen) {
			owners[n] = gf->locks[i].owner;
			kinds[n++] = gf->locks[i].kind;
		}
	}
	pthread_mutex_unlock(&glock_g.lock);
	for (size_t j = 0; j < n; j++)
		glock_release_owner(k, owners[j], kinds[j]);
}

int glock_write_begin(const struct glock_key *k, int64_t *deadline_ns)
{
	struct glock_file *gf;
	int ret = 0;

	*deadline_ns = 0;
	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(k, false);
	if (gf && gf->draining) {
		/* the release we wait for may leave gf unused: keep it */
		gf->users++;
		while (gf->draining)
			pthread_cond_wait(&glock_g.changed, &glock_g.lock);
		gf->users--;
		glock_file_maybe_free_locked(gf);
		gf = file_find_locked(k, false);
	}
	if (gf && (gf->record || gf->lost)) {
		if (glock_check_lapsed_locked(gf)) {
			ret = -EIO;
		} else {
			gf->inflight++;
			*deadline_ns = gf->valid_ns;
			ret = 1;
		}
	}
	pthread_mutex_unlock(&glock_g.lock);
	return ret;
}

void glock_write_end(const struct glock_key *k)
{
	struct glock_file *gf;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(k, false);
	if (gf && gf->inflight > 0 && --gf->inflight == 0) {
		pthread_cond_broadcast(&glock_g.changed);
		glock_file_maybe_free_locked(gf);
	}
	pthread_mutex_unlock(&glock_g.lock);
}

int glock_write_check(const struct glock_key *k)
{
	struct glock_file *gf;
	int ret = 0;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(k, false);
	if (gf && (gf->record || gf->lost))
		ret = glock_check_lapsed_locked(gf) ? -EIO : 1;
	pthread_mutex_unlock(&glock_g.lock);
	return ret;
}

int glock_init(const char *host_id, int lease)
{
	unsigned char rnd[8];
	size_t n = 0;

	snprintf(glock_g.host, sizeof(glock_g.host), "%s", host_id);
	for (const char *p = host_id; *p && n + 4 < sizeof(glock_g.host_esc);
	     p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_')
			glock_g.host_esc[n++] = (char)c;
		else
			n += (size_t)snprintf(glock_g.host_esc + n, 4, "%%%02X",
					      c);
	}
	glock_g.host_esc[n] = '\0';
	if (n > 120)
		/* a record name must stay well inside NAME_MAX: a long id
		 * keeps its start and a hash of the whole (one that never
		 * changes: other hosts look for these names) */
		snprintf(glock_g.host_esc + 100, sizeof(glock_g.host_esc) - 100,
			 "~%016llx", (unsigned long long)vfs_hash_str(host_id));
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(glock_g.token + 2 * i, 3, "%02x", rnd[i]);
	srandom((unsigned)rnd[0] | (unsigned)rnd[1] << 8 |
		(unsigned)rnd[2] << 16);
	{
		pthread_condattr_t ca;

		if (pthread_condattr_init(&ca) != 0 ||
		    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
		    pthread_cond_init(&glock_g.changed, &ca) != 0)
			return -EAGAIN;
		pthread_condattr_destroy(&ca);
	}
	glock_g.lease = lease;
	log_info(
		"cross-host locks: host id '%s', instance token %s, lease %d s",
		glock_g.host, glock_g.token, glock_g.lease);
	return renew_start();
}

void glock_instance_name(char *buf, size_t size)
{
	snprintf(buf, size, "%s.%s", glock_g.host_esc, glock_g.token);
}

int glock_lease(void)
{
	return glock_g.lease;
}

void glock_shutdown(void)
{
	if (!renew_stop())
		return;
	/* our locks end with us: withdraw the records at once rather than
	 * make other hosts wait for the lease; a lapsed lease's record stays
	 * until it expires (see set_lost_locked) */
	for (struct glock_file *gf = glock_g.files; gf; gf = gf->next)
		if (gf->record && gf->record_dir && !gf->lost &&
		    vfs_mono_ns() < gf->valid_ns)
			record_drop(gf->lower, gf->record_dir, gf->record);
	while (glock_g.files) {
		struct glock_file *gf = glock_g.files;

		glock_g.files = gf->next;
		file_free(gf);
	}
}

void glock_revoke(const struct gfs_lower *lower)
{
	pthread_mutex_lock(&glock_g.lock);
	for (struct glock_file *gf = glock_g.files; gf; gf = gf->next) {
		if (gf->lower != lower || !gf->record || gf->lost)
			continue;
		/* a renewal in flight may still confirm: lost stands, and its
		 * record is left to expire like this one (renew.c) */
		gf->lost = true;
		log_warn(
			"lock lease %s/%s given up: its mount was removed by "
			"force; other hosts may take the locks once it expires",
			gf->record_dir, gf->record);
	}
	pthread_cond_broadcast(&glock_g.changed);
	pthread_mutex_unlock(&glock_g.lock);
}

void glock_detach(const struct gfs_lower *lower)
{
	struct glock_file *mine = NULL, **pp;

	pthread_mutex_lock(&glock_g.lock);
	for (pp = &glock_g.files; *pp;) {
		struct glock_file *gf = *pp;

		if (gf->lower != lower) {
			pp = &gf->next;
			continue;
		}
		if (gf->busy || gf->users) {
			/* a renewal of it in flight ends by its deadline */
			pthread_cond_wait(&glock_g.changed, &glock_g.lock);
			pp = &glock_g.files;
			continue;
		}
		*pp = gf->next;
		gf->next = mine;
		mine = gf;
	}
	pthread_mutex_unlock(&glock_g.lock);
	while (mine) {
		struct glock_file *gf = mine;

		mine = gf->next;
		/* as at shutdown: our locks end with the mount */
		if (gf->record && gf->record_dir && !gf->lost &&
		    vfs_mono_ns() < gf->valid_ns)
			record_drop(gf->lower, gf->record_dir, gf->record);
		file_free(gf);
	}
}
