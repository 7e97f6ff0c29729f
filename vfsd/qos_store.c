/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qos_store.c - I/O limits kept as a file's own extended attributes
 * (qos.h: qos_store_set, qos_store_load), so that a VM's limits follow its
 * image to every host that serves it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "vfsd/qos.h"
#include "vfsd/router.h"

/* what a list of a file's attribute names may take here; a longer list
 * (ERANGE) is an error like any other: the rule stays as it is */
#define LIST_MAX 65536

/* Stored limits this host cannot take are read again at every open and
 * by the watcher every second for as long as the file stays open: warned
 * about at most once every ten seconds, not once a second for weeks. */
static struct log_ratelimit bad_value_rl, bad_set_rl;

/*
 * A load reads the attributes without a lock (backend calls) and then
 * applies them; a change made here meanwhile (qos_store_set: in memory
 * first, then stored) must not be undone by a load that read the
 * attributes before it was stored.  So a set counts itself busy on its
 * path from before its in-memory change until after its store, noting an
 * event at both ends, and a load of that path applies what it read only
 * if no set of it was busy and none began or ended since it started
 * reading; otherwise the next load (the watcher's, within a second, or
 * the next open) reads the new set.  Only the same path counts: a load
 * that skipped for a set of another file (one held for a minute by a
 * paused server, say) would leave a file opened then on a mount no other
 * host shares, which nothing reads again, without its stored limits.  The
 * removal or rename of a file here is such an event too (qos_store_gone):
 * what a load read of it before must not bring back the rule it took.
 * Paths are compared by their 64-bit hash (a collision only skips a
 * load); past SET_SLOTS sets at once, or SET_EVENTS events during one
 * load, every load overlapping them skips.
 */
#define SET_SLOTS  32
#define SET_EVENTS 64

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t hash; /* of the path being set */
	unsigned n;    /* its sets under way (0: a free slot) */
} store_busy[SET_SLOTS];
static unsigned store_busy_over;      /* sets under way without a slot */
static uint64_t store_gen;            /* events so far */
static uint64_t store_ev[SET_EVENTS]; /* event g's path hash, at g % N */

/* A set of `path` begins: its slot, for set_end() (SET_SLOTS: none). */
static size_t set_begin(const char *path)
{
	uint64_t h = vfs_hash_str(path);
	size_t i, slot = SET_SLOTS;

	pthread_mutex_lock(&store_lock);
	store_ev[++store_gen % SET_EVENTS] = h;
	for (i = 0; i < SET_SLOTS; i++) {
		if (store_busy[i].n && store_busy[i].hash == h) {
			slot = i;
			break;
		}
		if (!store_busy[i].n && slot == SET_SLOTS)
			slot = i;
	}
	if (slot < SET_SLOTS) {
		store_busy[slot].hash = h;
		store_busy[slot].n++;
	} else {
		store_busy_over++;
	}
	pthread_mutex_unlock(&store_lock);
	return slot;
}

void qos_store_gone(const char *path)
{
	uint64_t h = vfs_hash_str(path);

	pthread_mutex_lock(&store_lock);
	store_ev[++store_gen % SET_EVENTS] = h;
	pthread_mutex_unlock(&store_lock);
}

void qos_path_gone(const char *path)
{
	qos_store_gone(path);
	qos_drop_xattr(path);
}

static void set_end(const char *path, size_t slot)
{
	pthread_mutex_lock(&store_lock);
	store_ev[++store_gen % SET_EVENTS] = vfs_hash_str(path);
	if (slot < SET_SLOTS)
		store_busy[slot].n--;
	else
		store_busy_over--;
	pthread_mutex_unlock(&store_lock);
}

/* Whether a set of the path hashed `h` was under way, began or ended
 * since event `gen`: what a load read may be older.  store_lock held. */
static bool set_overlapped(uint64_t h, uint64_t gen)
{
	if (store_busy_over || store_gen - gen >= SET_EVENTS)
		return true;
	for (size_t i = 0; i < SET_SLOTS; i++)
		if (store_busy[i].n && store_busy[i].hash == h)
			return true;
	for (uint64_t g = gen + 1; g <= store_gen; g++)
		if (store_ev[g % SET_EVENTS] == h)
			return true;
	return false;
}

static void xattr_name(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s%s", QOS_XATTR_PREFIX, name);
}

/* Write settings i < n to the file's attributes: 0, -EOPNOTSUPP when its
 * backend keeps none (nothing was written), or another -errno. */
static int persist(const char *path, const char *const *names,
		   const uint64_t *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char xname[64], val[32];
		int ret;

		xattr_name(xname, sizeof(xname), names[i]);
		if (values[i]) {
			snprintf(val, sizeof(val), "%" PRIu64, values[i]);
			ret = router_setxattr(path, xname, val, strlen(val), 0);
		} else {
			ret = router_removexattr(path, xname);
			if (ret == -ENODATA)
				ret = 0;
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int store_set(const char *path, const char *const *names,
		     const uint64_t *values, size_t n, struct vfs_error *err)
{
	uint64_t old[THROTTLE_NAMES];
	enum qos_origin was = QOS_ORIGIN_RUNTIME;
	bool had = qos_origin_of(path, &was) == 0;
	struct stat st;
	int ret;

	if (n > THROTTLE_NAMES)
		return vfs_error_set(err, EINVAL, "too many settings");
	for (size_t i = 0; i < n; i++)
		if (qos_get(path, names[i], &old[i]) != 1)
			old[i] = 0;
	ret = router_getattr(path, &st);
	if (ret < 0)
		return vfs_error_set(err, -ret, "%s: %s", path, strerror(-ret));
	/* checked as a whole first: nothing is written for a bad set */
	ret = qos_set(path, names, values, n,
		      S_ISREG(st.st_mode) ? QOS_ORIGIN_XATTR
					  : QOS_ORIGIN_RUNTIME,
		      err);
	if (ret < 0 || !S_ISREG(st.st_mode))
		return ret;
	ret = persist(path, names, values, n);
	if (ret == -EOPNOTSUPP) {
		/* kept here only: shown as such in `vfsctl qos show` */
		struct vfs_error ignored = {0};

		qos_set(path, names, values, n, QOS_ORIGIN_RUNTIME, &ignored);
		return 0;
	}
	if (ret < 0) {
		struct vfs_error ignored = {0};

		/* what the attributes hold is unknown now; the rule goes
		 * back to what it was */
		qos_set(path, names, old, n, had ? was : QOS_ORIGIN_RUNTIME,
			&ignored);
		return vfs_error_set(err, -ret,
				     "%s: cannot store the limit as an "
				     "extended attribute: %s",
				     path, strerror(-ret));
	}
	return 0;
}

int qos_store_set(const char *path, const char *const *names,
		  const uint64_t *values, size_t n, struct vfs_error *err)
{
	size_t slot = set_begin(path);
	int ret;

	ret = store_set(path, names, values, n, err);
	set_end(path, slot);
	return ret;
}

/*
 * Read the user.vfsd.qos.* attributes of `path` into values; *found says
 * whether any of ours is there.  0, or -errno when the backend could not
 * tell (a server that does not answer, a file gone): then nothing is
 * known, and a rule must not be dropped for it.
 */
static int store_read(const char *path, uint64_t *values, bool *found)
{
	size_t plen = strlen(QOS_XATTR_PREFIX);
	char *list;
	ssize_t len;
	int ret = 0;

	*found = false;
	list = malloc(LIST_MAX);
	if (!list)
		return -ENOMEM;
	len = router_listxattr(path, list, LIST_MAX);
	if (len == -EOPNOTSUPP || len == -ENOTSUP)
		len = 0; /* a backend that keeps none: none stored */
	if (len < 0)
		ret = (int)len;
	for (ssize_t off = 0; len > 0 && off < len && ret == 0;
	     off += (ssize_t)strlen(list + off) + 1) {
		const char *name = list + off;
		char val[32];
		ssize_t n;

		if (strncmp(name, QOS_XATTR_PREFIX, plen) != 0)
			continue;
		for (int i = 0; i < THROTTLE_NAMES; i++) {
			if (strcmp(name + plen, throttle_names[i]) != 0)
				continue;
			n = router_getxattr(path, name, val, sizeof(val) - 1);
			if (n == -ENODATA)
				break; /* removed since the listing */
			if (n < 0) {
				ret = (int)n;
				break;
			}
			val[n] = '\0';
			if (throttle_parse_value(val, &values[i]) < 0) {
				log_warn_ratelimited(&bad_value_rl,
						     "%s: %s = '%.31s' is no "
						     "plain decimal integer: "
						     "ignored",
						     path, name, val);
				values[i] = 0;
				break;
			}
			*found = true;
		}
	}
	free(list);
	return ret;
}

void qos_store_load(const char *path)
{
	uint64_t values[THROTTLE_NAMES] = {0};
	struct vfs_error err = {0};
	uint64_t gen, h = vfs_hash_str(path);
	bool found;

	pthread_mutex_lock(&store_lock);
	gen = store_gen;
	pthread_mutex_unlock(&store_lock);
	if (store_read(path, values, &found) < 0)
		return;
	pthread_mutex_lock(&store_lock);
	if (set_overlapped(h, gen)) {
		/* a change here since: what was read may be older */
		pthread_mutex_unlock(&store_lock);
		return;
	}
	if (!found) {
		/* removed on another host, or never set: what the config
		 * or vfsctl set underneath applies again */
		qos_drop_xattr(path);
	} else if (qos_set(path, throttle_names, values, THROTTLE_NAMES,
			   QOS_ORIGIN_XATTR, &err) < 0) {
		log_warn_ratelimited(&bad_set_rl,
				     "%s: its user.vfsd.qos.* attributes are "
				     "ignored: %s",
				     path, err.msg);
	}
	pthread_mutex_unlock(&store_lock);
}

void qos_store_refresh(const char *path)
{
	enum qos_origin origin;

	if (qos_origin_of(path, &origin) == 0 && origin == QOS_ORIGIN_XATTR)
		qos_store_load(path);
}

/*
 * The watcher.  On a shared mount another host may change a file's stored
 * limits while the file stays open here (a running VM's image, open for
 * weeks), and nothing here opens it again or reads its attributes.  So a
 * thread of its own reads the stored limits of every file open on a
 * shared mount once a second: never from a request's path (a server that
 * stops answering holds this thread alone, for the mount's timeout, and
 * delays only the next round) and never under a lock.  A file without
 * limits costs a look its backend mostly answers from its cache
 * (layer_qos.c: a directory without sidecars is known for a second).
 */
#define WATCH_PERIOD_NS VFS_NS_PER_SEC

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond;
static pthread_t watch_tid;
static bool watch_running;
static atomic_bool watch_stopping;

struct watch_entry {
	char *path;   /* owned */
	bool limited; /* a rule applies to the file */
	bool first;   /* read every round, before the others */
};

struct watch_paths {
	struct watch_entry *v; /* owned */
	size_t n, cap;
};

static void watch_collect(void *ctx, const struct router_file_view *v)
{
	struct watch_paths *p = ctx;
	char *dup;

	if (!v->shared)
		return;
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		struct watch_entry *nv = realloc(p->v, cap * sizeof(*nv));

		if (!nv)
			return; /* this round without it */
		p->v = nv;
		p->cap = cap;
	}
	dup = strdup(v->path);
	if (dup)
		p->v[p->n++] = (struct watch_entry){dup, v->limited, false};
}

static int watch_cmp(const void *a, const void *b)
{
	return strcmp(((const struct watch_entry *)a)->path,
		      ((const struct watch_entry *)b)->path);
}

/* The paths one round reads at most: a user who opens thousands of files
 * must not turn the watcher into thousands of calls a second to a shared
 * server; more files take turns, in path order, from where the last round
 * stopped. */
#define WATCH_ROUND_MAX 256

/* But taking turns, a limited image (a running VM) would wait for every
 * file any user holds open: 2000 of them, eight seconds before a change of
 * its limit made on another host applies.  The files whose own stored
 * attributes made their rule (which only root can set) are read every
 * round, first, when they are at most this many; the others take turns in
 * what is left.  A new limit on a file that had none still waits its
 * turn. */
#define WATCH_FIRST_MAX (WATCH_ROUND_MAX * 3 / 4)

static char *watch_after; /* the last path read in turn; the watcher's */

static void watch_round(void)
{
	struct watch_paths p = {0};
	size_t start = 0, uniq = 0, done = 0, nfirst = 0, nrest;
	enum qos_origin origin;

	router_foreach_file(watch_collect, &p);
	if (!p.n)
		/* nothing open on a shared mount: p.v is NULL, which qsort
		 * must not get (UBSan stops vfsd there, halt_on_error) */
		return;
	qsort(p.v, p.n, sizeof(*p.v), watch_cmp);
	/* a file open several times is read once */
	for (size_t i = 0; i < p.n; i++) {
		if (uniq && strcmp(p.v[i].path, p.v[uniq - 1].path) == 0) {
			p.v[uniq - 1].limited |= p.v[i].limited;
			free(p.v[i].path);
			continue;
		}
		p.v[uniq++] = p.v[i];
	}
	for (size_t i = 0; i < uniq; i++) {
		p.v[i].first = p.v[i].limited &&
			       qos_origin_of(p.v[i].path, &origin) == 0 &&
			       origin == QOS_ORIGIN_XATTR;
		nfirst += p.v[i].first;
	}
	if (nfirst > WATCH_FIRST_MAX) {
		for (size_t i = 0; i < uniq; i++)
			p.v[i].first = false;
		nfirst = 0;
	}
	for (size_t i = 0; i < uniq && !atomic_load(&watch_stopping); i++)
		if (p.v[i].first) {
			qos_store_load(p.v[i].path);
			done++;
		}
	nrest = uniq - nfirst;
	while (watch_after && start < uniq &&
	       strcmp(p.v[start].path, watch_after) <= 0)
		start++;
	if (start == uniq)
		start = 0;
	for (size_t k = 0; k < uniq && done < WATCH_ROUND_MAX; k++) {
		size_t i = (start + k) % uniq;

		if (atomic_load(&watch_stopping))
			break;
		if (p.v[i].first)
			continue;
		qos_store_load(p.v[i].path);
		done++;
		if (nrest > WATCH_ROUND_MAX - nfirst) {
			free(watch_after);
			watch_after = strdup(p.v[i].path);
		}
	}
	for (size_t i = 0; i < uniq; i++)
		free(p.v[i].path);
	free(p.v);
}

static void *watch_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&watch_lock);
	while (!atomic_load(&watch_stopping)) {
		struct timespec ts = vfs_ns_ts(vfs_mono_ns() + WATCH_PERIOD_NS);

		pthread_cond_timedwait(&watch_cond, &watch_lock, &ts);
		if (atomic_load(&watch_stopping))
			break;
		pthread_mutex_unlock(&watch_lock);
		watch_round();
		pthread_mutex_lock(&watch_lock);
	}
	pthread_mutex_unlock(&watch_lock);
	return NULL;
}

int qos_store_watch_start(void)
{
	pthread_condattr_t a;
	int ret;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&watch_cond, &a);
	pthread_condattr_destroy(&a);
	atomic_store(&watch_stopping, false);
	ret = pthread_create(&watch_tid, NULL, watch_main, NULL);
	if (ret) {
		pthread_cond_destroy(&watch_cond);
		return -ret;
	}
	watch_running = true;
	return 0;
}

void qos_store_watch_stop(void)
{
	if (!watch_running)
		return;
	pthread_mutex_lock(&watch_lock);
	atomic_store(&watch_stopping, true);
	pthread_cond_signal(&watch_cond);
	pthread_mutex_unlock(&watch_lock);
	/* a round in a call to a server that stopped answering ends within
	 * that mount's timeout */
	pthread_join(watch_tid, NULL);
	pthread_cond_destroy(&watch_cond);
	free(watch_after);
	watch_after = NULL;
	watch_running = false;
}
