/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lock.c - locks that hold across hosts (see lock.h for the scheme).
 *
 * Locking: `g.lock` protects the file list and every table in it; it is
 * never held across backend I/O.  Remote work on one file is serialised by
 * that file's `busy` flag (waiters sleep on g.changed), so a slow or dead
 * backend only holds up lock operations on its own files.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guestfs/lock.h"
#include "vfsd/log.h"

#define OFF_MAX_ ((off_t)INT64_MAX)
#define MUTEX_STALE_MS 10000	/* a mutex older than this is abandoned */
#define RETRY_MS 100		/* polling interval of blocking locks */
#define RECORD_MAX 65536

struct glock_file {
	uint64_t ino;
	struct glock *locks;	/* this host's locks, owner != 0 */
	size_t n, cap;
	bool busy;		/* remote work in progress */
	int users;		/* glock_set calls holding this pointer */
	bool published;		/* our record exists on the backend */
	bool lost;		/* our record was broken: writes fail */
	char *record_dir;	/* vfsd path of DIR/.vfsd-locks/NAME */
	struct timespec renewed; /* CLOCK_MONOTONIC of the last renewal */
	struct glock_file *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct glock_file *files;	/* protected by lock */
	char host[128];
	char host_file[512];		/* HOST.lease, escaped */
	int lease;
	pthread_t renewer;
	bool running, stop;
} g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
};

static const struct vfs_cred root_cred = { 0, 0, 0 };

static long ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000 +
	       (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static bool overlap(const struct glock *a, const struct glock *b)
{
	return a->kind == b->kind && a->start <= b->end && b->start <= a->end;
}

static bool conflicts(const struct glock *a, const struct glock *b)
{
	return overlap(a, b) && (a->type == F_WRLCK || b->type == F_WRLCK);
}

/* ---- the local table ---------------------------------------------- */

static struct glock_file *file_find_locked(uint64_t ino, bool create)
{
	struct glock_file *gf;

	for (gf = g.files; gf; gf = gf->next)
		if (gf->ino == ino)
			return gf;
	if (!create)
		return NULL;
	gf = calloc(1, sizeof(*gf));
	if (!gf)
		return NULL;
	gf->ino = ino;
	gf->next = g.files;
	g.files = gf;
	return gf;
}

static void file_maybe_free_locked(struct glock_file *gf)
{
	struct glock_file **pp;

	if (gf->n || gf->busy || gf->published || gf->users)
		return;
	for (pp = &g.files; *pp; pp = &(*pp)->next) {
		if (*pp == gf) {
			*pp = gf->next;
			break;
		}
	}
	free(gf->locks);
	free(gf->record_dir);
	free(gf);
}

static int push_lock(struct glock **v, size_t *n, size_t *cap,
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
			ret = push_lock(&v, &vn, &cap, &e);
			continue;
		}
		if (e.start < lk->start) {
			struct glock left = e;

			left.end = lk->start - 1;
			ret = push_lock(&v, &vn, &cap, &left);
		}
		if (ret == 0 && e.end > lk->end) {
			struct glock right = e;

			right.start = lk->end + 1;
			ret = push_lock(&v, &vn, &cap, &right);
		}
	}
	if (ret == 0 && lk->type != F_UNLCK)
		ret = push_lock(&v, &vn, &cap, lk);
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
		    conflicts(&gf->locks[i], lk))
			return &gf->locks[i];
	return NULL;
}

/* ---- records on the backend ---------------------------------------- */

static char *record_dir_of(const char *path)
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

static char *join(const char *dir, const char *name)
{
	char *out;

	return asprintf(&out, "%s/%s", dir, name) < 0 ? NULL : out;
}

static int ensure_dirs(const char *rdir)
{
	char *parent = strdup(rdir), *slash;
	struct stat st;
	int ret;

	if (!parent)
		return -ENOMEM;
	slash = strrchr(parent, '/');
	*slash = '\0';
	ret = router_mkdir(parent, 0755, &root_cred, &st);
	free(parent);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	ret = router_mkdir(rdir, 0755, &root_cred, &st);
	return ret == -EEXIST ? 0 : ret;
}

static int write_whole(const char *path, const char *text, size_t len)
{
	struct router_file *f;
	struct stat st;
	ssize_t n;
	int ret;

	ret = router_create(path, O_WRONLY | O_TRUNC, 0644, &root_cred, &f,
			    &st);
	if (ret < 0)
		return ret;
	n = router_write(f, text, len, 0);
	ret = n < 0 ? (int)n : (size_t)n != len ? -EIO : 0;
	if (ret == 0)
		ret = router_flush(f);
	router_release(f);
	return ret;
}

/*
 * Read a whole record and its server-side mtime through one open file:
 * an open file's attributes come from the server, never from a cache.
 * NULL with *err set on failure; *mtime is still filled when at least
 * the record's attributes could be read (*err is then not -ENOENT).
 */
static char *read_whole(const char *path, struct timespec *mtime, int *err)
{
	struct router_file *f;
	char *buf = malloc(RECORD_MAX + 1);
	struct stat st;
	ssize_t n;
	int ret;

	*err = 0;
	mtime->tv_sec = 0;
	mtime->tv_nsec = 0;
	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	ret = router_open(path, O_RDONLY, &f);
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
	n = ret < 0 ? ret : router_read(f, buf, RECORD_MAX, 0);
	router_release(f);
	if (n < 0) {
		free(buf);
		*err = (int)n;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static char *record_text(const struct glock *v, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "vfsd-lease 1\nhost %s\n", g.host);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%c %c %lld %lld\n",
			v[i].kind == GLOCK_POSIX ? 'P' : 'F',
			v[i].type == F_WRLCK ? 'W' : 'R',
			(long long)v[i].start, (long long)v[i].end);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Parse another host's record; *host gets its id. */
static size_t record_parse(char *text, struct glock *v, size_t max,
			   char *host, size_t hsize)
{
	size_t n = 0;
	char *save = NULL;

	host[0] = '\0';
	for (char *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char kind, type;
		long long s, e;

		if (strncmp(line, "host ", 5) == 0) {
			snprintf(host, hsize, "%s", line + 5);
			continue;
		}
		if (n < max &&
		    sscanf(line, "%c %c %lld %lld", &kind, &type, &s, &e) == 4 &&
		    (kind == 'P' || kind == 'F') && (type == 'R' || type == 'W')) {
			v[n] = (struct glock){
				.kind = kind == 'P' ? GLOCK_POSIX : GLOCK_FLOCK,
				.type = type == 'W' ? F_WRLCK : F_RDLCK,
				.start = s,
				.end = e,
			};
			snprintf(v[n].host, sizeof(v[n].host), "%s", host);
			n++;
		}
	}
	return n;
}

/* Take DIR/.mutex; *now gets the server's time of taking it. */
static int mutex_take(const char *rdir, struct timespec *now)
{
	char *path = join(rdir, ".mutex");
	struct timespec first;
	bool waiting = false;
	int ret;

	if (!path)
		return -ENOMEM;
	for (;;) {
		struct router_file *f;
		struct stat st;

		ret = router_create(path, O_WRONLY | O_CREAT | O_EXCL, 0600,
				    &root_cred, &f, &st);
		if (ret == 0) {
			router_release(f);
			*now = st.st_mtim;
			break;
		}
		if (ret == -ENOENT) {
			/* the last holder just removed the empty directory */
			ret = ensure_dirs(rdir);
			if (ret < 0)
				break;
			continue;
		}
		if (ret != -EEXIST)
			break;
		if (!waiting) {
			clock_gettime(CLOCK_MONOTONIC, &first);
			waiting = true;
		} else if (ms_since(&first) > MUTEX_STALE_MS) {
			/* its taker died between create and unlink */
			log_warn("lock mutex %s abandoned; breaking it", path);
			router_unlink(path);
			waiting = false;
		}
		sleep_ms(20);
	}
	free(path);
	return ret;
}

static void mutex_drop(const char *rdir)
{
	char *path = join(rdir, ".mutex");

	if (path && router_unlink(path) < 0)
		log_warn("cannot remove lock mutex %s", path);
	free(path);
}

struct names {
	char **v;
	size_t n;
};

static int collect_name(void *ctx, const char *name, const struct stat *st,
			unsigned flags, off_t next)
{
	struct names *nm = ctx;
	size_t len = strlen(name);
	char **grown;

	if (len < 7 || strcmp(name + len - 6, ".lease") != 0)
		return 0;
	grown = realloc(nm->v, (nm->n + 1) * sizeof(*grown));
	if (!grown)
		return 1;
	nm->v = grown;
	nm->v[nm->n] = strdup(name);
	if (nm->v[nm->n])
		nm->n++;
	return 0;
}

/*
 * The other hosts' live locks on the file, in *out (caller frees); stale
 * records (older than the lease by the server's clock `now`) are removed
 * when `may_break`.
 */
static int remote_locks(const char *rdir, const struct timespec *now,
			bool may_break, struct glock **out, size_t *outn)
{
	struct names nm = { 0 };
	struct router_dir *d;
	struct glock *v = NULL;
	size_t n = 0, cap = 0;
	int ret = router_opendir(rdir, &d);

	*out = NULL;
	*outn = 0;
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	ret = router_readdir(d, 0, collect_name, &nm);
	router_releasedir(d);
	/* a listing cut short could miss a live lease: no answer then */
	for (size_t i = 0; ret == 0 && i < nm.n; i++) {
		char *path = join(rdir, nm.v[i]), *text;
		struct timespec mtime;
		struct glock tmp[256];
		char host[128];
		size_t k;
		int rerr;

		if (!path) {
			ret = -ENOMEM;
			break;
		}
		if (strcmp(nm.v[i], g.host_file) == 0) {
			free(path);
			continue;
		}
		text = read_whole(path, &mtime, &rerr);
		if (!text && rerr == -ENOENT) {
			/* released meanwhile */
			free(path);
			continue;
		}
		if (!text && !mtime.tv_sec) {
			/* neither readable nor datable: it may be a live
			 * lock, and guessing otherwise could let two hosts
			 * write one image */
			log_warn("lock lease %s unreadable: %s", path,
				 strerror(-rerr));
			free(path);
			ret = rerr;
			break;
		}
		if (now->tv_sec - mtime.tv_sec > g.lease) {
			if (may_break) {
				log_warn("breaking expired lock lease %s (%lds old)",
					 path, (long)(now->tv_sec - mtime.tv_sec));
				router_unlink(path);
			}
			free(text);
			free(path);
			continue;
		}
		if (!text) {
			/* a live record we cannot read: assume the worst,
			 * a write lock over the whole file */
			log_warn("lock lease %s unreadable: %s; taken as a lock of the whole file",
				 path, strerror(-rerr));
			tmp[0] = (struct glock){ .kind = GLOCK_POSIX,
						 .type = F_WRLCK, .start = 0,
						 .end = OFF_MAX_ };
			snprintf(tmp[0].host, sizeof(tmp[0].host), "%s",
				 nm.v[i]);
			free(path);
			ret = push_lock(&v, &n, &cap, &tmp[0]);
			continue;
		}
		free(path);
		k = record_parse(text, tmp, 256, host, sizeof(host));
		free(text);
		for (size_t j = 0; j < k && ret == 0; j++)
			ret = push_lock(&v, &n, &cap, &tmp[j]);
	}
	for (size_t i = 0; i < nm.n; i++)
		free(nm.v[i]);
	free(nm.v);
	if (ret < 0) {
		free(v);
		return ret;
	}
	*out = v;
	*outn = n;
	return 0;
}

/*
 * Publish `v` as this host's record for the file, checking `want` against
 * the other hosts first when it is non-NULL.  -EAGAIN (with *conflict
 * filled) when another host holds a conflicting lock.
 */
static int publish(const char *rdir, const struct glock *v, size_t n,
		   const struct glock *want, struct glock *conflict)
{
	struct timespec now;
	struct glock *others = NULL;
	size_t on = 0;
	char *rec = join(rdir, g.host_file), *text = NULL;
	int ret;

	if (!rec)
		return -ENOMEM;
	if (!n && !want) {
		char *parent = strdup(rdir), *slash;

		ret = router_unlink(rec);
		free(rec);
		/* leave no empty lock directories in the user's tree (they
		 * would make rmdir fail); another host's records keep them */
		if (router_rmdir(rdir) == 0 && parent &&
		    (slash = strrchr(parent, '/'))) {
			*slash = '\0';
			router_rmdir(parent);
		}
		free(parent);
		return ret == -ENOENT ? 0 : ret;
	}
	ret = ensure_dirs(rdir);
	if (ret == 0 && want)
		ret = mutex_take(rdir, &now);
	if (ret < 0)
		goto out;
	if (want) {
		ret = remote_locks(rdir, &now, true, &others, &on);
		for (size_t i = 0; ret == 0 && i < on; i++) {
			if (conflicts(&others[i], want)) {
				*conflict = others[i];
				ret = -EAGAIN;
			}
		}
	}
	if (ret == 0) {
		text = record_text(v, n);
		ret = text ? write_whole(rec, text, strlen(text)) : -ENOMEM;
	}
	if (want)
		mutex_drop(rdir);
out:
	free(others);
	free(text);
	free(rec);
	return ret;
}

/* ---- the API --------------------------------------------------------- */

static bool is_shared(struct router_file *f, const char *path)
{
	return f && path && router_file_is_shared(f);
}

/* Wait until no remote work runs on gf; called and returns locked. */
static void wait_idle_locked(struct glock_file *gf)
{
	while (gf->busy)
		pthread_cond_wait(&g.changed, &g.lock);
}

int glock_test(uint64_t ino, struct router_file *f, const char *path,
	       struct glock *lk)
{
	const struct glock *c;
	struct glock_file *gf;
	char *rdir;
	int ret = 0;

	pthread_mutex_lock(&g.lock);
	gf = file_find_locked(ino, false);
	c = local_conflict(gf, lk);
	if (c) {
		*lk = *c;
		snprintf(lk->host, sizeof(lk->host), "%s", g.host);
		pthread_mutex_unlock(&g.lock);
		return 0;
	}
	pthread_mutex_unlock(&g.lock);
	if (!is_shared(f, path) || !(rdir = record_dir_of(path))) {
		lk->type = F_UNLCK;
		return 0;
	}
	{
		struct timespec now;
		struct glock *others = NULL;
		size_t on = 0;

		/* the mutex gives the server's time to judge records by */
		ret = ensure_dirs(rdir);
		if (ret == 0)
			ret = mutex_take(rdir, &now);
		if (ret == 0) {
			ret = remote_locks(rdir, &now, false, &others, &on);
			mutex_drop(rdir);
		}
		if (ret == 0) {
			const struct glock want = *lk;

			lk->type = F_UNLCK;
			for (size_t i = 0; i < on; i++) {
				if (conflicts(&others[i], &want)) {
					*lk = others[i];
					lk->pid = 0;
					lk->owner = 0;
					break;
				}
			}
		}
		free(others);
	}
	free(rdir);
	if (ret == -EROFS) {
		lk->type = F_UNLCK;
		ret = 0;
	}
	return ret;
}

int glock_set(uint64_t ino, struct router_file *f, const char *path,
	      const struct glock *lk, bool wait, bool (*interrupted)(void *),
	      void *arg)
{
	bool shared = is_shared(f, path);
	struct glock_file *gf;
	int ret;

	pthread_mutex_lock(&g.lock);
	gf = file_find_locked(ino, true);
	if (!gf) {
		pthread_mutex_unlock(&g.lock);
		return -ENOLCK;
	}
	gf->users++;	/* keeps gf while we sleep with the lock dropped */
	for (;;) {
		struct glock *nv = NULL, conflict;
		char *rdir = NULL;
		size_t nn = 0;

		wait_idle_locked(gf);
		if (lk->type != F_UNLCK && local_conflict(gf, lk)) {
			ret = -EAGAIN;
			goto conflict;
		}
		ret = apply(gf->locks, gf->n, lk, &nv, &nn);
		if (ret < 0)
			break;
		if (shared && (gf->published || lk->type != F_UNLCK)) {
			rdir = gf->record_dir ? strdup(gf->record_dir)
					      : record_dir_of(path);
			if (!rdir) {
				free(nv);
				ret = -ENOMEM;
				break;
			}
			gf->busy = true;
			pthread_mutex_unlock(&g.lock);
			ret = publish(rdir, nv, nn,
				      lk->type == F_UNLCK ? NULL : lk,
				      &conflict);
			pthread_mutex_lock(&g.lock);
			gf->busy = false;
			pthread_cond_broadcast(&g.changed);
			if (ret == -EROFS)
				ret = 0;	/* nobody can write there anyway */
			else if (ret == 0) {
				gf->published = nn > 0;
				clock_gettime(CLOCK_MONOTONIC, &gf->renewed);
				if (!gf->record_dir) {
					gf->record_dir = rdir;
					rdir = NULL;
				}
			}
			free(rdir);
			if (lk->type == F_UNLCK && ret < 0) {
				/* the lease runs out by itself */
				log_warn("cannot update lock lease of %s: %s",
					 path, strerror(-ret));
				ret = 0;
			}
		}
		if (ret == 0) {
			free(gf->locks);
			gf->locks = nv;
			gf->n = gf->cap = nn;
			if (!nn)
				gf->lost = false;
			pthread_cond_broadcast(&g.changed);
			break;
		}
		free(nv);
		if (ret != -EAGAIN)
			break;
conflict:
		if (!wait)
			break;
		if (interrupted && interrupted(arg)) {
			ret = -EINTR;
			break;
		}
		{
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += RETRY_MS * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&g.changed, &g.lock, &until);
		}
	}
	gf->users--;
	file_maybe_free_locked(gf);
	pthread_mutex_unlock(&g.lock);
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

	pthread_mutex_lock(&g.lock);
	gf = file_find_locked(ino, false);
	for (size_t i = 0; gf && i < gf->n && !held; i++)
		held = gf->locks[i].owner == owner && gf->locks[i].kind == kind;
	pthread_mutex_unlock(&g.lock);
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

	pthread_mutex_lock(&g.lock);
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
	pthread_mutex_unlock(&g.lock);
	for (size_t j = 0; j < n; j++)
		glock_release_owner(ino, f, path, owners[j], kinds[j]);
}

int glock_write_check(uint64_t ino)
{
	struct glock_file *gf;
	int ret = 0;

	pthread_mutex_lock(&g.lock);
	gf = file_find_locked(ino, false);
	if (gf && gf->published)
		ret = !gf->lost && ms_since(&gf->renewed) < g.lease * 2000L / 3
			      ? 1
			      : -EIO;
	pthread_mutex_unlock(&g.lock);
	return ret;
}

bool glock_may_write(uint64_t ino)
{
	return glock_write_check(ino) >= 0;
}

int glock_holders(const char *path, char *buf, size_t size)
{
	char *rdir = record_dir_of(path);
	struct glock *others = NULL;
	struct timespec now;
	size_t on = 0, used = 0;
	struct stat st;
	int ret;

	buf[0] = '\0';
	if (!rdir)
		return -EINVAL;
	pthread_mutex_lock(&g.lock);
	for (struct glock_file *gf = g.files; gf; gf = gf->next)
		if (gf->n && gf->record_dir && !strcmp(gf->record_dir, rdir))
			used = (size_t)snprintf(buf, size, "%s", g.host);
	pthread_mutex_unlock(&g.lock);
	/* no record directory: no other host holds anything */
	ret = router_getattr(rdir, &st);
	if (ret == 0)
		ret = mutex_take(rdir, &now);
	if (ret == 0) {
		ret = remote_locks(rdir, &now, false, &others, &on);
		mutex_drop(rdir);
	}
	for (size_t i = 0; ret == 0 && i < on && used < size; i++)
		if (!strstr(buf, others[i].host))
			used += (size_t)snprintf(buf + used, size - used,
						 "%s%s", used ? "," : "",
						 others[i].host);
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
		char *sub = join(locks, top.v[i]);

		if (sub) {
			list_names(sub, &files);
			for (size_t j = 0; j < files.n; j++) {
				char *f = join(sub, files.v[j]);

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

static void renew_one(struct glock_file *gf)
{
	char *rec = join(gf->record_dir, g.host_file), *text;
	struct stat st;
	int ret;

	text = record_text(gf->locks, gf->n);
	gf->busy = true;
	pthread_mutex_unlock(&g.lock);
	if (!rec || !text) {
		ret = -ENOMEM;
	} else {
		/* a record that vanished was broken by another host: the
		 * locks are lost, and recreating it would hide that */
		ret = router_getattr(rec, &st);
		if (ret == -ENOENT) {
			log_err("lock lease %s was broken by another host; writes to the file now fail",
				rec);
		} else if (ret == 0) {
			ret = write_whole(rec, text, strlen(text));
		}
	}
	pthread_mutex_lock(&g.lock);
	gf->busy = false;
	if (ret == 0)
		clock_gettime(CLOCK_MONOTONIC, &gf->renewed);
	else if (ret == -ENOENT)
		gf->lost = true;
	else
		log_warn("cannot renew lock lease %s: %s", rec ? rec : "?",
			 strerror(-ret));
	pthread_cond_broadcast(&g.changed);
	free(rec);
	free(text);
}

static void *renewer(void *p)
{
	pthread_mutex_lock(&g.lock);
	while (!g.stop) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += g.lease / 3 > 0 ? g.lease / 3 : 1;
		pthread_cond_timedwait(&g.changed, &g.lock, &until);
		if (g.stop)
			break;
		for (struct glock_file *gf = g.files; gf; gf = gf->next) {
			if (!gf->published || gf->busy || gf->lost ||
			    ms_since(&gf->renewed) < g.lease * 1000L / 3)
				continue;
			renew_one(gf);
			/* the list may have changed while unlocked */
			break;
		}
	}
	pthread_mutex_unlock(&g.lock);
	return NULL;
}

int glock_init(const char *host_id, int lease)
{
	size_t n = 0;

	snprintf(g.host, sizeof(g.host), "%s", host_id);
	for (const char *p = host_id; *p && n + 4 < sizeof(g.host_file) - 7;
	     p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    (c == '.' && n))
			g.host_file[n++] = (char)c;
		else
			n += (size_t)snprintf(g.host_file + n, 4, "%%%02X", c);
	}
	snprintf(g.host_file + n, sizeof(g.host_file) - n, ".lease");
	g.lease = lease;
	g.stop = false;
	if (pthread_create(&g.renewer, NULL, renewer, NULL) != 0)
		return -EAGAIN;
	g.running = true;
	return 0;
}

void glock_shutdown(void)
{
	if (!g.running)
		return;
	pthread_mutex_lock(&g.lock);
	g.stop = true;
	pthread_cond_broadcast(&g.changed);
	pthread_mutex_unlock(&g.lock);
	pthread_join(g.renewer, NULL);
	g.running = false;
	/* our locks end with us: withdraw the records at once rather than
	 * make other hosts wait for the lease */
	for (struct glock_file *gf = g.files; gf; gf = gf->next) {
		if (gf->published && !gf->lost && gf->record_dir) {
			char *rec = join(gf->record_dir, g.host_file);

			if (rec)
				router_unlink(rec);
			free(rec);
		}
	}
	while (g.files) {
		struct glock_file *gf = g.files;

		g.files = gf->next;
		free(gf->locks);
		free(gf->record_dir);
		free(gf);
	}
}
