/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lock.c - locks that hold across hosts.  lock_internal.h says which file
 * holds which piece, names L, W and P and gives the locking rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "guestfs/lock.h"
#include "guestfs/lock_internal.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/path.h"
#include "lib/clock.h"

#define RETRY_MS 100		/* polling interval of blocking locks */
#define SCAN_TRIES 8		/* listings that raced with renewals */
#define PENDING_TRIES 6		/* backoffs behind racing acquirers */

struct glock_state glock_g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,	/* glock_init: monotonic */
};

static const struct vfs_cred root_cred = { .uid = 0, .gid = 0 };

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Expired by the server's clock `now`: see the names at the top. */
static bool expired(const struct timespec *now, const struct timespec *mtime)
{
	return vfs_ts_diff(now, mtime) > glock_g.lease + 1;
}

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

/* ---- the local table ---------------------------------------------- */

static struct glock_file *file_find_locked(uint64_t ino, bool create)
{
	struct glock_file *gf;

	for (gf = glock_g.files; gf; gf = gf->next)
		if (gf->ino == ino)
			return gf;
	if (!create)
		return NULL;
	gf = calloc(1, sizeof(*gf));
	if (!gf)
		return NULL;
	gf->ino = ino;
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

int glock_push(struct glock **v, size_t *n, size_t *cap,
	       const struct glock *lk)
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

/* ---- records on the backend ---------------------------------------- */

char *record_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *out;

	if (!slash || !slash[1])
		return NULL;
	if (asprintf(&out, "%.*s/%s/%s", (int)(slash - path), path, GLOCK_DIR,
		     slash + 1) < 0)
		return NULL;
	return out;
}

char *record_join(const char *dir, const char *name)
{
	char *out;

	return asprintf(&out, "%s/%s", dir, name) < 0 ? NULL : out;
}

static int ensure_dirs(const char *rdir)
{
	char *parent = vfs_path_parent(rdir);
	struct stat st;
	int ret;

	if (!parent)
		return -ENOMEM;
	ret = router_mkdir(parent, 0755, &root_cred, &st);
	free(parent);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	ret = router_mkdir(rdir, 0755, &root_cred, &st);
	return ret == -EEXIST ? 0 : ret;
}

static bool same_range(const struct glock *a, const struct glock *b)
{
	return a->owner == b->owner && a->kind == b->kind &&
	       a->start == b->start && a->end == b->end;
}

/* The text of a record holding `v`; the one lock `pending` (or none) is
 * marked as still being acquired.  Caller frees. */
char *record_text(const struct glock *v, size_t n,
		  const struct glock *pending)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "vfsd-lease 2\nhost %s\ntoken %s\n", glock_g.host,
		glock_g.token);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%c %c %lld %lld%s\n",
			v[i].kind == GLOCK_POSIX ? 'P' : 'F',
			v[i].type == F_WRLCK ? 'W' : 'R',
			(long long)v[i].start, (long long)v[i].end,
			pending && same_range(&v[i], pending) ? " pending" : "");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * Write a record under a new name, never used before: a temporary file
 * first, renamed into place once complete, so that a reader sees a whole
 * record or none (replacing a name in place is not atomic over SFTP).
 * *sent_ns gets the monotonic time before the first request (what the
 * lease is measured from), *mtime the server's time of the write,
 * *name_out the record's name (caller frees).
 */
int record_put(const char *rdir, uint64_t fid, const char *text,
	       char **name_out, struct timespec *mtime, int64_t *sent_ns)
{
	char *tmp = NULL, *final = NULL, *name = NULL;
	struct router_file *f = NULL;
	size_t len = strlen(text);
	struct stat st;
	ssize_t n;
	int ret;

	if (asprintf(&name, "%s.%s.%" PRIu64 ".%" PRIu64 ".lease",
		     glock_g.host_esc, glock_g.token, fid,
		     __atomic_add_fetch(&glock_g.seq, 1, __ATOMIC_RELAXED)) < 0)
		return -ENOMEM;
	tmp = record_join(rdir, name);
	final = record_join(rdir, name);
	if (!tmp || !final) {
		ret = -ENOMEM;
		goto out;
	}
	/* same length: ".lease" -> ".tmp~~" */
	memcpy(tmp + strlen(tmp) - 5, "tmp~~", 5);
	*sent_ns = vfs_mono_ns();
	ret = router_create(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, &root_cred,
			    &f, &st);
	for (int tries = 0; ret == -ENOENT && tries < 4; tries++) {
		/* the last holder just removed the empty directory, maybe
		 * again between our mkdir and create (a release on another
		 * host while we acquire: a migration's hand-over) */
		ret = ensure_dirs(rdir);
		if (ret == 0)
			ret = router_create(tmp, O_WRONLY | O_CREAT | O_EXCL,
					    0644, &root_cred, &f, &st);
	}
	if (ret < 0)
		goto out;
	f->vf->write_through = true;
	n = router_write(f, text, len, 0);
	ret = n < 0 ? (int)n : (size_t)n != len ? -EIO : 0;
	if (ret == 0)
		ret = router_flush(f);
	if (ret == 0) {
		/* a record the server loses in a crash would let another
		 * host in while we still write */
		ret = router_fsync(f, false);
		if (ret == -EOPNOTSUPP || ret == -ENOSYS || ret == -EINVAL)
			ret = 0;
	}
	if (ret == 0)
		ret = router_fgetattr(f, &st);
	router_release(f);
	if (ret == 0) {
		*mtime = st.st_mtim;
		ret = router_rename(tmp, final, 0);
	}
	if (ret < 0)
		router_unlink(tmp);
out:
	free(tmp);
	free(final);
	if (ret == 0)
		*name_out = name;
	else
		free(name);
	return ret;
}

void record_drop(const char *rdir, const char *name)
{
	char *path = record_join(rdir, name);
	int ret = path ? router_unlink(path) : -ENOMEM;

	if (ret < 0 && ret != -ENOENT)
		log_warn("cannot remove lock lease %s/%s: %s (it expires by itself)",
			 rdir, name, strerror(-ret));
	free(path);
}

/*
 * Read a whole record and its server-side mtime through one open file:
 * an open file's attributes come from the server.  NULL with *err set on
 * failure; *mtime is still filled when the record could be dated (*err
 * is then not -ENOENT).  *toolong: more than RECORD_MAX bytes.
 */
char *record_read(const char *path, struct timespec *mtime, int *err,
		  bool *toolong)
{
	struct router_file *f;
	char *buf = malloc(RECORD_MAX + 2);
	struct stat st;
	ssize_t n;
	int ret;

	*err = 0;
	*toolong = false;
	mtime->tv_sec = 0;
	mtime->tv_nsec = 0;
	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	/* O_NONBLOCK: a FIFO put there since the listing must not block */
	ret = router_open(path, O_RDONLY | O_NONBLOCK, &f);
	if (ret < 0) {
		/* unopenable (a directory, no permission): its age may
		 * still tell whether it is stale */
		if (ret != -ENOENT && router_getattr(path, &st) == 0)
			*mtime = st.st_mtim;
		free(buf);
		*err = ret;
		return NULL;
	}
	ret = router_fgetattr(f, &st);
	if (ret == 0)
		*mtime = st.st_mtim;
	n = ret < 0 ? ret : router_read(f, buf, RECORD_MAX + 1, 0);
	router_release(f);
	if (n < 0) {
		free(buf);
		*err = (int)n;
		return NULL;
	}
	if (n > RECORD_MAX) {
		free(buf);
		*toolong = true;
		*err = -EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/*
 * Parse another instance's record, appending its locks to *out.  -EBADMSG
 * when it is not a complete record of ours: the caller then takes it as a
 * write lock of the whole file, as for any record it cannot understand.
 */
int record_parse(char *text, struct glock **out, size_t *n, size_t *cap,
		 char *host, size_t hsize, char *token, size_t tsize)
{
	char *save = NULL;
	size_t first = *n;
	bool header = false;
	int ret = 0;

	host[0] = token[0] = '\0';
	for (char *line = strtok_r(text, "\n", &save); line && ret == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char kind, type, extra[16];
		long long s, e;
		int k;

		if (!header) {
			if (strcmp(line, "vfsd-lease 2") != 0)
				ret = -EBADMSG;
			header = true;
		} else if (strncmp(line, "host ", 5) == 0) {
			snprintf(host, hsize, "%s", line + 5);
		} else if (strncmp(line, "token ", 6) == 0) {
			snprintf(token, tsize, "%s", line + 6);
		} else if ((k = sscanf(line, "%c %c %lld %lld %15s", &kind,
				       &type, &s, &e, extra)) >= 4 &&
			   (kind == 'P' || kind == 'F') &&
			   (type == 'R' || type == 'W') && s >= 0 && e >= s &&
			   (k == 4 || strcmp(extra, "pending") == 0) &&
			   *n - first < LOCKS_MAX) {
			struct glock lk = {
				.kind = kind == 'P' ? GLOCK_POSIX : GLOCK_FLOCK,
				.type = type == 'W' ? F_WRLCK : F_RDLCK,
				.start = s,
				.end = e,
				.pending = k == 5,
			};

			ret = glock_push(out, n, cap, &lk);
		} else {
			ret = -EBADMSG;
		}
	}
	if (ret == 0 && (!header || !host[0] || !token[0]))
		ret = -EBADMSG;
	if (ret < 0) {
		*n = first;
		return ret;
	}
	for (size_t i = first; i < *n; i++) {
		snprintf((*out)[i].host, sizeof((*out)[i].host), "%s", host);
		snprintf((*out)[i].token, sizeof((*out)[i].token), "%s", token);
	}
	return 0;
}

struct names {
	char **v;
	mode_t *type;		/* S_IFMT bits from the listing */
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
static void note_same_host_locked(const char *token, const char *rdir,
				  uint64_t seq, unsigned scan)
{
	uint64_t dir = vfs_hash_str(rdir);
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
			log_err("host id '%s' is used by another running vfsd instance (token %s) on the same storage: refusing new cross-host locks until one of them gets another host_id",
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
		log_warn("a lock lease of host id '%s' from another vfsd instance (token %s) is on the storage: a predecessor of this daemon (its locks expire after the lease) or another daemon with the same host_id",
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
static int scan_one(const char *rdir, const char *name, mode_t type,
		    unsigned scan, const struct timespec *now, bool clean,
		    struct glock **v, size_t *n, size_t *cap, bool *again)
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
		if (clean && router_getattr(path, &st) == 0 &&
		    vfs_ts_diff(now, &st.st_mtim) > 2.0 * glock_g.lease + 1)
			router_unlink(path);
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
		rerr = router_getattr(path, &st);
		if (rerr == 0) {
			mtime = st.st_mtim;
			rerr = -EBADMSG;
		}
	} else {
		text = record_read(path, &mtime, &rerr, &toolong);
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
	} else if (mtime.tv_sec && expired(now, &mtime)) {
		if (clean) {
			log_warn("removing expired lock lease %s (%.0f s old)",
				 path, vfs_ts_diff(now, &mtime));
			router_unlink(path);
		}
	} else if (!text || record_parse(text, v, n, cap, host, sizeof(host),
					 token, sizeof(token)) < 0) {
		log_warn("lock lease %s %s; taken as a write lock of the whole file until it expires",
			 path,
			 text ? "malformed" : toolong ? "too long" : strerror(-rerr));
		ret = push_whole_file(v, n, cap, name);
	} else {
		double age = mtime.tv_sec ? vfs_ts_diff(now, &mtime) : 0;

		for (size_t j = first; j < *n; j++)
			(*v)[j].age = age < 0 ? 0 : (int)age;
		if (strcmp(host, glock_g.host) == 0 &&
		    strcmp(token, glock_g.token) != 0 &&
		    strcmp(token, "?") != 0) {
			pthread_mutex_lock(&glock_g.lock);
			note_same_host_locked(token, rdir, record_seq(name),
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
static void drop_if_expired(const char *rdir, const char *name,
			    const struct timespec *now)
{
	char *path = record_join(rdir, name);
	struct stat st;

	if (!path)
		return;
	if (router_getattr(path, &st) == 0 && expired(now, &st.st_mtim)) {
		log_info("removing this daemon's expired lock lease %s", path);
		router_unlink(path);
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
int lease_remote_locks(const char *rdir, uint64_t fid,
		       const struct timespec *now, const char *mine,
		       bool clean, struct glock **out, size_t *outn)
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
		struct names nm = { 0 };
		struct router_dir *d;
		bool again = false;

		unsigned scan;

		pthread_mutex_lock(&glock_g.lock);
		scan = ++glock_g.scans;
		pthread_mutex_unlock(&glock_g.lock);
		n = 0;
		ret = router_opendir(rdir, &d);
		if (ret == -ENOENT) {
			ret = 0;
			break;
		}
		if (ret < 0)
			break;
		/* a listing cut short could miss a live lease: no answer */
		ret = router_readdir(d, 0, collect_name, &nm);
		router_releasedir(d);
		for (size_t i = 0; ret == 0 && !again && i < nm.n; i++) {
			const char *name = nm.v[i];

			if (mine && strcmp(name, mine) == 0)
				continue;
			if (fid && !strncmp(name, prefix, strlen(prefix)) &&
			    has_suffix(name, ".lease")) {
				/* ours, superseded: its removal failed */
				if (clean)
					record_drop(rdir, name);
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
					drop_if_expired(rdir, name, now);
				continue;
			}
			ret = scan_one(rdir, name, nm.type[i], scan, now, clean,
				       &v, &n, &cap, &again);
		}
		names_free(&nm);
		if (ret < 0 || !again)
			break;
		if (tries + 1 >= SCAN_TRIES) {
			/* records replaced faster than we can read them */
			ret = -EAGAIN;
			break;
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

/*
 * The server's clock now, for judging records when we write none: the
 * mtime of a temporary file created (and removed) for the purpose.
 * -ENOENT when the record directory does not exist.
 */
int record_server_now(const char *rdir, struct timespec *now)
{
	struct router_file *f;
	struct stat st;
	char *path;
	int ret;

	if (asprintf(&path, "%s/%s.%s.0.%" PRIu64 ".tmp~~", rdir,
		     glock_g.host_esc, glock_g.token,
		     __atomic_add_fetch(&glock_g.seq, 1, __ATOMIC_RELAXED)) < 0)
		return -ENOMEM;
	ret = router_create(path, O_WRONLY | O_CREAT | O_EXCL, 0600, &root_cred,
			    &f, &st);
	if (ret == 0) {
		ret = router_fgetattr(f, &st);
		router_release(f);
		router_unlink(path);
		if (ret == 0)
			*now = st.st_mtim;
	}
	free(path);
	return ret;
}

/* The lock of `others` that conflicts with `want`, preferring a held one
 * to a pending one; *pending_only: every conflicting lock is still being
 * acquired (by a racing acquirer that will back off). */
const struct glock *lease_find_conflict(const struct glock *others,
					size_t on, const struct glock *want,
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

/* ---- the API --------------------------------------------------------- */

static bool is_shared(struct router_file *f, const char *path)
{
	return f && path && router_file_is_shared(f);
}

/* Whether `path` is on a mount where records live (see glock_reserved). */
bool record_path_shared(const char *path)
{
	double attr, entry;
	bool shared;

	router_timeouts(path, &attr, &entry, &shared);
	return shared;
}

bool glock_reserved(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && strcmp(slash + 1, GLOCK_DIR) == 0 &&
	       record_path_shared(path);
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
		log_err("lock lease %s/%s lapsed (no renewal confirmed for %.1f s): writes to the file fail until it is closed",
			gf->record_dir, gf->record,
			(double)(vfs_mono_ns() - gf->sent_ns) / NS);
	}
	return gf->lost;
}

int glock_test(uint64_t ino, struct router_file *f, const char *path,
	       struct glock *lk)
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
	gf = file_find_locked(ino, false);
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
	if (!is_shared(f, path) || !(rdir = record_dir_of(path))) {
		free(mine);
		lk->type = F_UNLCK;
		return 0;
	}
	cx = vfs_callctx_push(0, true);
	ret = record_server_now(rdir, &now);
	if (ret == 0)
		ret = lease_remote_locks(rdir, fid, &now, mine, false, &others,
					 &on);
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

/* Remove the record `old` that a successor sent at `sent_ns` and confirmed
 * in time replaces; the removal runs under the successor's validity. */
void lease_drop_predecessor(const char *rdir, const char *old,
			    int64_t sent_ns)
{
	struct vfs_callctx cx = vfs_callctx_push(sent_ns + valid_window_ns(),
						 true);

	record_drop(rdir, old);
	vfs_callctx_pop(cx);
}

/*
 * Write the successor of our record `old` (may be NULL), holding `v`, or
 * remove `old` when n is 0.  The caller removes `old` once the successor
 * counts (lease_publish_fenced), so a reader always finds one of them, and a
 * successor that came too late leaves the predecessor to expire.  Called
 * with the file busy and glock_g.lock dropped; the caller adopts *res.
 */
static int publish(const char *rdir, uint64_t fid, const char *old,
		   const struct glock *v, size_t n,
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
			record_drop(rdir, old);
		/* leave no empty lock directories in the user's tree (they
		 * would make rmdir fail); another host's records keep them */
		if (router_rmdir(rdir) == 0 && parent &&
		    (slash = strrchr(parent, '/'))) {
			*slash = '\0';
			router_rmdir(parent);
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
		ret = record_put(rdir, fid, text, &res->name, &res->mtime,
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
	ret = publish(rdir, gf->fid, cur, v, n, pending, res);
	vfs_callctx_pop(cx);
	if (ret == 0 && deadline && vfs_mono_ns() >= deadline) {
		if (res->name)
			record_drop(rdir, res->name);
		free(res->name);
		res->name = NULL;
		ret = -ETIMEDOUT;
	} else if (ret == 0 && res->name && cur) {
		lease_drop_predecessor(rdir, cur, res->sent_ns);
	}
	free(cur);
	pthread_mutex_lock(&glock_g.lock);
	if (ret == 0)
		lease_adopt_locked(gf, res);	/* res->name NULL: removed */
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
		  size_t old_n, const struct glock *lk,
		  struct glock *conflict)
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
		ret = cur ? lease_remote_locks(rdir, gf->fid, &mine_at, cur,
					       true, &others, &on)
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
			log_warn("lock acquisition in %s outlived its lease", rdir);
			ret = -EAGAIN;
		} else if (ret == 0) {
			ret = -EAGAIN;
		}
		/* withdraw the lock we did not get */
		if (lease_publish_fenced(gf, rdir, old_v, old_n, old_n, NULL, &res) < 0)
			log_warn("cannot withdraw a refused lock from %s; it expires with the lease",
				 rdir);
		if (ret != -EAGAIN || !pending_only ||
		    tries + 1 >= PENDING_TRIES)
			return ret;
		/* racing acquirers all back off; random waits part them */
		sleep_ms(10 + random() % (20L << tries));
	}
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

		glock_timed_wait_locked(left > 0 ? (left < 1000 ? left + 1 : 1000) : 1);
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
		 * makes it a leftover to our own scans (own_leftover). */
		free(gf->record);
		gf->record = NULL;
		gf->lost = false;
		gf->fid = ++glock_g.next_fid;
	}
}

int glock_set(uint64_t ino, struct router_file *f, const char *path,
	      const struct glock *lk, bool wait, bool (*interrupted)(void *),
	      void *arg)
{
	bool shared = is_shared(f, path);
	struct glock_file *gf;
	int ret;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(ino, true);
	if (!gf) {
		pthread_mutex_unlock(&glock_g.lock);
		return -ENOLCK;
	}
	gf->users++;	/* keeps gf while we sleep with the lock dropped */
	for (;;) {
		struct glock *nv = NULL, *old_v = NULL, conflict;
		struct put_result res = { 0 };
		struct vfs_callctx cx;
		char *rdir = NULL;
		size_t nn = 0, old_n;
		bool downgrade;

		wait_idle_locked(gf);
		glock_check_lapsed_locked(gf);
		if (lk->type != F_UNLCK && local_conflict(gf, lk)) {
			ret = -EAGAIN;
			goto conflict;
		}
		ret = apply(gf->locks, gf->n, lk, &nv, &nn);
		if (ret < 0)
			break;
		if (!shared || (!gf->record && !gf->lost &&
				lk->type == F_UNLCK)) {
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
				 glock_g.dup_live ? "another running vfsd has this host id"
					    : "this host's earlier locks on the file were lost; close it first");
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
			ret = lease_publish_fenced(gf, rdir, nv, nn, old_n, NULL, &res);
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
			ret = 0;	/* nobody can write there anyway */
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
				/* marked pending in the record until rewritten */
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
		if (ret != -EAGAIN)
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

void glock_release_owner(uint64_t ino, struct router_file *f,
			 const char *path, uint64_t owner, enum glock_kind kind)
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
	gf = file_find_locked(ino, false);
	for (size_t i = 0; gf && i < gf->n && !held; i++)
		held = gf->locks[i].owner == owner && gf->locks[i].kind == kind;
	pthread_mutex_unlock(&glock_g.lock);
	if (held)
		glock_set(ino, f, path, &all, false, NULL, NULL);
}

void glock_release_fh(uint64_t ino, struct router_file *f, const char *path,
		      const void *fh)
{
	struct glock_file *gf;
	uint64_t owners[64];
	enum glock_kind kinds[64];
	size_t n = 0;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(ino, false);
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
		glock_release_owner(ino, f, path, owners[j], kinds[j]);
}

int glock_write_begin(uint64_t ino, int64_t *deadline_ns)
{
	struct glock_file *gf;
	int ret = 0;

	*deadline_ns = 0;
	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(ino, false);
	if (gf && gf->draining) {
		/* the release we wait for may leave gf unused: keep it */
		gf->users++;
		while (gf->draining)
			pthread_cond_wait(&glock_g.changed, &glock_g.lock);
		gf->users--;
		glock_file_maybe_free_locked(gf);
		gf = file_find_locked(ino, false);
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

void glock_write_end(uint64_t ino)
{
	struct glock_file *gf;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(ino, false);
	if (gf && gf->inflight > 0 && --gf->inflight == 0) {
		pthread_cond_broadcast(&glock_g.changed);
		glock_file_maybe_free_locked(gf);
	}
	pthread_mutex_unlock(&glock_g.lock);
}

int glock_write_check(uint64_t ino)
{
	struct glock_file *gf;
	int ret = 0;

	pthread_mutex_lock(&glock_g.lock);
	gf = file_find_locked(ino, false);
	if (gf && (gf->record || gf->lost))
		ret = glock_check_lapsed_locked(gf) ? -EIO : 1;
	pthread_mutex_unlock(&glock_g.lock);
	return ret;
}

/* Append one holder to the comma-separated list in buf, once. */
static size_t holders_add(char *buf, size_t size, size_t used,
			  const char *host, const char *token, int age)
{
	char item[256];

	snprintf(item, sizeof(item), "%s token=%s age=%ds", host, token, age);
	if (strstr(buf, item) || used + 1 >= size)
		return used;
	used += (size_t)snprintf(buf + used, size - used, "%s%s",
				 used ? "," : "", item);
	return used >= size ? size - 1 : used;
}

int glock_holders_detail(const char *path, char *buf, size_t size)
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
	if (!record_path_shared(path)) {
		/* no records there: a GLOCK_DIR is a user's directory */
		free(rdir);
		return 0;
	}
	pthread_mutex_lock(&glock_g.lock);
	for (struct glock_file *gf = glock_g.files; gf; gf = gf->next)
		if (gf->n && gf->record && gf->record_dir &&
		    !strcmp(gf->record_dir, rdir))
			used = holders_add(buf, size, used, glock_g.host,
					   glock_g.token,
					   (int)((vfs_mono_ns() - gf->sent_ns) /
						 NS));
	pthread_mutex_unlock(&glock_g.lock);
	cx = vfs_callctx_push(0, true);
	ret = record_server_now(rdir, &now);
	if (ret == 0)
		ret = lease_remote_locks(rdir, 0, &now, NULL, false, &others,
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

struct dir_names {
	char **v;
	size_t n;
};

static int collect_any(void *ctx, const char *name, const struct stat *st,
		       unsigned flags, off_t next)
{
	struct dir_names *dn = ctx;
	char **grown;

	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	grown = realloc(dn->v, (dn->n + 1) * sizeof(*grown));
	if (!grown)
		return 1;
	dn->v = grown;
	dn->v[dn->n] = strdup(name);
	if (dn->v[dn->n])
		dn->n++;
	return 0;
}

static void list_names(const char *dir, struct dir_names *dn)
{
	struct router_dir *d;

	if (router_opendir(dir, &d) == 0) {
		router_readdir(d, 0, collect_any, dn);
		router_releasedir(d);
	}
}

int glock_rmdir_cleanup(const char *dir)
{
	struct dir_names files = { 0 }, top = { 0 };
	char *locks;
	bool only_locks;

	/* elsewhere a GLOCK_DIR is a user's, not records to clear away */
	if (!record_path_shared(dir))
		return -ENOTEMPTY;
	list_names(dir, &top);
	only_locks = top.n == 1 && strcmp(top.v[0], GLOCK_DIR) == 0;
	for (size_t i = 0; i < top.n; i++)
		free(top.v[i]);
	free(top.v);
	top = (struct dir_names){ 0 };
	if (!only_locks)
		return -ENOTEMPTY;
	/* every file the records speak of is gone with the directory's
	 * entries, so every record here is moot */
	if (asprintf(&locks, "%s/%s", strcmp(dir, "/") ? dir : "", GLOCK_DIR) <
	    0)
		return -ENOMEM;
	list_names(locks, &top);
	for (size_t i = 0; i < top.n; i++) {
		char *sub = record_join(locks, top.v[i]);

		if (sub) {
			list_names(sub, &files);
			for (size_t j = 0; j < files.n; j++) {
				char *f = record_join(sub, files.v[j]);

				if (f)
					router_unlink(f);
				free(f);
				free(files.v[j]);
			}
			free(files.v);
			files = (struct dir_names){ 0 };
			router_rmdir(sub);
		}
		free(sub);
		free(top.v[i]);
	}
	free(top.v);
	router_rmdir(locks);
	free(locks);
	return 0;
}

/* ---- lease renewal ------------------------------------------------------ */

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
	struct put_result res = { 0 };
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
		ret = router_getattr(rec, &st);
		if (ret == 0 && (st.st_mtim.tv_sec != was.tv_sec ||
				 st.st_mtim.tv_nsec != was.tv_nsec ||
				 !S_ISREG(st.st_mode)))
			ret = -ESTALE;
		if (ret == -ENOENT || ret == -ESTALE) {
			log_err("lock lease %s was %s by another host; writes to the file now fail",
				rec, ret == -ENOENT ? "removed" : "changed");
		} else if (ret == 0) {
			ret = record_put(rdir, gf->fid, text, &res.name,
					 &res.mtime, &res.sent_ns);
			/* only a successor confirmed in time lets the
			 * predecessor go; a late one leaves it to expire */
			in_time = ret == 0 && vfs_mono_ns() < valid;
		}
	}
	vfs_callctx_pop(cx);
	if (in_time)
		lease_drop_predecessor(rdir, old, res.sent_ns);
	pthread_mutex_lock(&glock_g.lock);
	if (in_time) {
		/* also when a writer saw the old validity end meanwhile: the
		 * lapse stands (it is permanent), and this record is then the
		 * one that stays until it expires */
		lease_adopt_locked(gf, &res);
		if (!gf->lost && vfs_mono_ns() - began > renew_period_ns())
			log_warn("renewing lock lease %s took %.1f s: %.1f s more and the locks are lost",
				 rec, (double)(vfs_mono_ns() - began) / NS,
				 (double)(valid_window_ns() - renew_period_ns()) /
					 NS);
	} else if (ret == 0) {
		/* confirmed after the old validity: it cannot count, and a
		 * fresh record of lost locks would only keep others out */
		pthread_mutex_unlock(&glock_g.lock);
		record_drop(rdir, res.name);
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
				pthread_attr_setdetachstate(&attr,
							    PTHREAD_CREATE_DETACHED);
				started = pthread_create(&t, &attr, renew_thread,
							 gf) == 0;
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
	log_info("cross-host locks: host id '%s', instance token %s, lease %d s",
		 glock_g.host, glock_g.token, glock_g.lease);
	return renew_start();
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
			record_drop(gf->record_dir, gf->record);
	while (glock_g.files) {
		struct glock_file *gf = glock_g.files;

		glock_g.files = gf->next;
		file_free(gf);
	}
}
