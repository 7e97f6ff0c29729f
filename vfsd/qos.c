/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qos.c - I/O limits on vfsd paths (qos.h).
 *
 * One mutex guards the rules, their buckets and counters, and every
 * file's binding: a request takes it once to be admitted (twice when it
 * must wait).  Requests of files no rule applies to take it only when the
 * rules changed since they last looked (qos_gen), and not at all while
 * there is no rule anywhere.
 *
 * Waiting requests sleep on one condition variable (monotonic clock)
 * until the earliest time their rules allow, or until a rule changes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/json.h"
#include "lib/path.h"
#include "vfsd/qos.h"

struct qos_rule {
	char *path; /* owned, normalised */
	enum qos_origin origin;
	struct throttle t;
	bool dead;  /* removed from the table; freed with its last file */
	bool stale; /* to be set again by a reload (qos_reload_begin) */
	/* The config's or vfsctl's settings a file's stored attributes
	 * replaced (origin XATTR over another): back when the attributes go
	 * (qos_drop_xattr), and what a reload of their origin sets. */
	bool has_base;
	bool base_stale; /* `stale`, for the base */
	enum qos_origin base_origin;
	struct throttle_cfg base;
	int64_t set_ns; /* when last set (xattr_rules_trim) */
	unsigned refs;  /* files bound to it, and requests waiting on it */
	unsigned files; /* files bound to it */
	/* counters */
	uint64_t bytes[2], ops[2]; /* [write] */
	int64_t throttled_ns;      /* summed over the requests that waited */
	uint64_t throttled;        /* requests that waited */
	unsigned waiting;          /* requests waiting now */
	int64_t win_start;         /* the current second's start */
	uint64_t win_bytes, win_ops, rate_bytes, rate_ops; /* last second */
};

struct qos_file {
	char *path;
	uint64_t gen;    /* qos_gen when `rules` was made */
	bool limited;    /* a rule of `rules` has a limit */
	unsigned weight; /* of the deepest rule with one; 0: none */
	unsigned n;
	struct qos_rule *rules[QOS_DEPTH_MAX];
};

static pthread_mutex_t qos_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qos_cond;
static pthread_once_t qos_once = PTHREAD_ONCE_INIT;
static struct qos_rule **rules; /* protected by qos_lock */
static size_t nrules;
/* bumped (under qos_lock) on every change of the set of rules or of a
 * rule's limits; read without it on the fast path */
static atomic_uint_fast64_t qos_gen = 1;
static atomic_size_t qos_live; /* nrules, for the fast path */

/* how often a waiting request asks its thread's check whether it is
 * given up */
#define QOS_POLL_NS (100 * 1000000LL)
static __thread bool (*qos_given_up)(void *);
static __thread void *qos_given_up_arg;

static void qos_init_cond(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&qos_cond, &a);
	pthread_condattr_destroy(&a);
}

static void rule_free(struct qos_rule *r)
{
	free(r->path);
	free(r);
}

/* Take rule i out of the table (qos_lock held). */
static void rule_remove(size_t i)
{
	struct qos_rule *r = rules[i];

	rules[i] = rules[--nrules];
	atomic_store(&qos_live, nrules);
	r->dead = true;
	if (!r->refs)
		rule_free(r);
}

static struct qos_rule *rule_find(const char *path, size_t *idx)
{
	for (size_t i = 0; i < nrules; i++)
		if (strcmp(rules[i]->path, path) == 0) {
			if (idx)
				*idx = i;
			return rules[i];
		}
	return NULL;
}

/*
 * A file's attributes make a rule on its path at each open, and nothing
 * removes it when the name goes: renamed or linked under many names (as
 * any owner may), a limited file would grow the table without end, and
 * with it the time every open takes.  Past QOS_XATTR_RULES such rules,
 * those no file is bound to and not set in the last QOS_XATTR_IDLE_NS
 * are dropped (the attributes still hold them: the next open reads them
 * again).  Called with qos_lock held, after a new one.
 */
#define QOS_XATTR_RULES   1024
#define QOS_XATTR_IDLE_NS (10 * 1000000000LL)

static void xattr_rules_trim(void)
{
	int64_t old = vfs_mono_ns() - QOS_XATTR_IDLE_NS;
	size_t n = 0;

	for (size_t i = 0; i < nrules; i++)
		n += rules[i]->origin == QOS_ORIGIN_XATTR;
	if (n <= QOS_XATTR_RULES)
		return;
	for (size_t i = nrules; i-- > 0;)
		if (rules[i]->origin == QOS_ORIGIN_XATTR && !rules[i]->refs &&
		    !rules[i]->has_base && rules[i]->set_ns < old)
			rule_remove(i);
}

static void changed(void)
{
	atomic_fetch_add(&qos_gen, 1);
	pthread_cond_broadcast(&qos_cond);
}

/* Set settings of r's base (qos_lock held): checked as a whole; a base
 * left with no limit is none. */
static int base_set(struct qos_rule *r, const char *const *names,
		    const uint64_t *values, size_t n, struct vfs_error *err)
{
	struct throttle_cfg cfg = {0};
	char msg[200];

	if (!r->base_stale)
		cfg = r->base;
	for (size_t i = 0; i < n; i++) {
		uint64_t *f = throttle_field(&cfg, names[i]);

		if (!f)
			return vfs_error_set(err, EINVAL,
					     "%s: unknown QoS setting '%s'",
					     r->path, names[i]);
		*f = values[i];
	}
	if (throttle_check(&cfg, msg, sizeof(msg)) < 0)
		return vfs_error_set(err, EINVAL, "%s: %s", r->path, msg);
	r->base = cfg;
	r->base_stale = false;
	r->has_base = throttle_limits(&cfg) || cfg.weight;
	return 0;
}

/* Rule r (at idx), from the file's stored attributes, gives way to what
 * was underneath them, or goes (qos_lock held). */
static void drop_xattr_locked(struct qos_rule *r, size_t idx)
{
	if (r->has_base) {
		throttle_set(&r->t, &r->base, vfs_mono_ns());
		r->origin = r->base_origin;
		r->has_base = false;
		/* a base a reload under way has yet to confirm goes at its
		 * end unless confirmed, as a rule of its own would */
		r->stale = r->base_stale;
		r->base_stale = false;
		r->set_ns = vfs_mono_ns();
	} else {
		rule_remove(idx);
	}
	changed();
}

int qos_drop_xattr(const char *path)
{
	size_t idx;
	struct qos_rule *r;
	int ret = -ENOENT;

	if (!atomic_load(&qos_live))
		return ret; /* no rule at all: the common case, no lock */
	pthread_once(&qos_once, qos_init_cond);
	pthread_mutex_lock(&qos_lock);
	r = rule_find(path, &idx);
	if (r && r->origin == QOS_ORIGIN_XATTR) {
		drop_xattr_locked(r, idx);
		ret = 0;
	}
	pthread_mutex_unlock(&qos_lock);
	return ret;
}

int qos_set(const char *path, const char *const *names, const uint64_t *values,
	    size_t n, enum qos_origin origin, struct vfs_error *err)
{
	struct throttle_cfg cfg = {0};
	struct qos_rule *r;
	char msg[200];
	size_t idx = 0;
	int ret;

	pthread_once(&qos_once, qos_init_cond);
	pthread_mutex_lock(&qos_lock);
	r = rule_find(path, &idx);
	if (r && r->origin == QOS_ORIGIN_XATTR && r->has_base &&
	    r->base_origin == origin && origin != QOS_ORIGIN_XATTR) {
		/* the stored attributes win: the change is to what is
		 * underneath them */
		ret = base_set(r, names, values, n, err);
		pthread_mutex_unlock(&qos_lock);
		return ret;
	}
	if (r && !r->stale)
		cfg = r->t.cfg;
	for (size_t i = 0; i < n; i++) {
		uint64_t *f = throttle_field(&cfg, names[i]);

		if (!f) {
			pthread_mutex_unlock(&qos_lock);
			return vfs_error_set(err, EINVAL,
					     "%s: unknown QoS setting '%s'",
					     path, names[i]);
		}
		*f = values[i];
	}
	ret = throttle_check(&cfg, msg, sizeof(msg));
	if (ret < 0) {
		pthread_mutex_unlock(&qos_lock);
		return vfs_error_set(err, EINVAL, "%s: %s", path, msg);
	}
	if (!throttle_limits(&cfg) && !cfg.weight) {
		/* nothing left: no rule (a burst setting alone cannot be
		 * left: throttle_check wants its average) */
		if (r && origin == QOS_ORIGIN_XATTR &&
		    r->origin == QOS_ORIGIN_XATTR && r->has_base) {
			/* the stored ones removed: the config's again (under
			 * the lock the rule was read under: a change made
			 * meanwhile is not undone) */
			drop_xattr_locked(r, idx);
			pthread_mutex_unlock(&qos_lock);
			return 0;
		}
		if (r) {
			rule_remove(idx);
			changed();
		}
		pthread_mutex_unlock(&qos_lock);
		return 0;
	}
	if (r && !r->stale && r->origin == origin &&
	    memcmp(&r->t.cfg, &cfg, sizeof(cfg)) == 0) {
		/* the same again (a file's attributes read at each open):
		 * no change for the files bound to it to look at */
		r->set_ns = vfs_mono_ns();
		pthread_mutex_unlock(&qos_lock);
		return 0;
	}
	if (r) {
		if (origin == QOS_ORIGIN_XATTR &&
		    r->origin != QOS_ORIGIN_XATTR && !r->stale) {
			r->base = r->t.cfg;
			r->base_origin = r->origin;
			r->has_base = true;
			r->base_stale = false;
		} else if (origin != QOS_ORIGIN_XATTR) {
			r->has_base = false;
		}
		throttle_set(&r->t, &cfg, vfs_mono_ns());
		r->origin = origin;
		r->stale = false;
		r->set_ns = vfs_mono_ns();
	} else {
		struct qos_rule **nv =
			realloc(rules, (nrules + 1) * sizeof(*nv));

		r = calloc(1, sizeof(*r));
		if (nv)
			rules = nv;
		if (!nv || !r || !(r->path = strdup(path))) {
			free(r);
			pthread_mutex_unlock(&qos_lock);
			return vfs_error_set(err, ENOMEM, "out of memory");
		}
		r->origin = origin;
		throttle_init(&r->t, &cfg, vfs_mono_ns());
		r->win_start = r->set_ns = vfs_mono_ns();
		rules[nrules++] = r;
		atomic_store(&qos_live, nrules);
		if (origin == QOS_ORIGIN_XATTR)
			xattr_rules_trim();
	}
	changed();
	pthread_mutex_unlock(&qos_lock);
	return 0;
}

int qos_clear(const char *path)
{
	size_t idx;
	int ret = -ENOENT;

	pthread_once(&qos_once, qos_init_cond);
	pthread_mutex_lock(&qos_lock);
	if (rule_find(path, &idx)) {
		rule_remove(idx);
		changed();
		ret = 0;
	}
	pthread_mutex_unlock(&qos_lock);
	return ret;
}

int qos_origin_of(const char *path, enum qos_origin *origin)
{
	struct qos_rule *r;
	int ret = -ENOENT;

	pthread_mutex_lock(&qos_lock);
	r = rule_find(path, NULL);
	if (r) {
		*origin = r->origin;
		ret = 0;
	}
	pthread_mutex_unlock(&qos_lock);
	return ret;
}

void qos_reload_begin(enum qos_origin origin)
{
	pthread_mutex_lock(&qos_lock);
	for (size_t i = 0; i < nrules; i++) {
		if (rules[i]->origin == origin)
			rules[i]->stale = true;
		if (rules[i]->has_base && rules[i]->base_origin == origin)
			rules[i]->base_stale = true;
	}
	pthread_mutex_unlock(&qos_lock);
}

void qos_reload_end(enum qos_origin origin)
{
	pthread_once(&qos_once, qos_init_cond);
	pthread_mutex_lock(&qos_lock);
	for (size_t i = 0; i < nrules; i++)
		if (rules[i]->has_base && rules[i]->base_stale &&
		    rules[i]->base_origin == origin) {
			rules[i]->has_base = false;
			rules[i]->base_stale = false;
		}
	for (size_t i = nrules; i-- > 0;)
		if (rules[i]->stale) {
			if (rules[i]->origin == origin)
				rule_remove(i);
			else
				rules[i]->stale = false;
		}
	changed();
	pthread_mutex_unlock(&qos_lock);
}

int qos_get(const char *path, const char *name, uint64_t *value)
{
	struct qos_rule *r;
	int ret = 0;

	pthread_mutex_lock(&qos_lock);
	r = rule_find(path, NULL);
	if (r && throttle_field(&r->t.cfg, name)) {
		*value = throttle_get(&r->t.cfg, name);
		ret = *value != 0;
	}
	pthread_mutex_unlock(&qos_lock);
	return ret;
}

bool qos_is_opt(const char *key)
{
	return strncmp(key, QOS_OPT_PREFIX, strlen(QOS_OPT_PREFIX)) == 0;
}

bool qos_fair_opt(const struct vfs_opts *opts)
{
	const char *v = opts ? vfs_opts_get(opts, QOS_OPT_FAIR) : NULL;

	return !v || strcmp(v, "0") != 0;
}

int qos_opt_check(const char *key, const char *value, const char *what,
		  struct vfs_error *err)
{
	size_t plen = strlen(QOS_OPT_PREFIX);
	struct throttle_cfg cfg;
	uint64_t *f;

	if (strcmp(key, QOS_OPT_FAIR) == 0) {
		if (strcmp(value, "0") == 0 || strcmp(value, "1") == 0)
			return 0;
		return vfs_error_set(err, EINVAL,
				     "%s: %s = '%s': expected 1 (fair sharing "
				     "between open files, the default) or 0",
				     what, key, value);
	}
	f = strncmp(key, QOS_OPT_PREFIX, plen) == 0
		    ? throttle_field(&cfg, key + plen)
		    : NULL;
	if (!f)
		return vfs_error_set(
			err, EINVAL,
			"%s: unknown QoS option '%s' (known: qos.bps, "
			"qos.bps_rd, qos.bps_wr, qos.iops, qos.iops_rd, "
			"qos.iops_wr, each also with _max and _max_length, and "
			"qos.iops_size)",
			what, key);
	if (throttle_parse_value(value, f) < 0)
		return vfs_error_set(err, EINVAL,
				     "%s: %s = '%s': expected a plain decimal "
				     "integer (bytes or operations per second, "
				     "seconds, bytes)",
				     what, key, value);
	return 0;
}

int qos_from_opts(const char *path, const struct vfs_opts *opts,
		  enum qos_origin origin, const char *what, bool dry_run,
		  struct vfs_opts *rest, struct vfs_error *err)
{
	const char *names[THROTTLE_NAMES];
	uint64_t values[THROTTLE_NAMES];
	struct throttle_cfg cfg = {0};
	size_t n = 0, plen = strlen(QOS_OPT_PREFIX);
	char msg[200];
	int ret;

	for (size_t i = 0; opts && i < opts->n; i++) {
		const char *key = opts->kv[i].key;
		uint64_t *f;

		if (strncmp(key, QOS_OPT_PREFIX, plen) != 0) {
			if (!rest)
				continue;
			ret = vfs_opts_set(rest, key, opts->kv[i].value,
					   opts->kv[i].origin);
			if (ret < 0)
				return vfs_error_set(err, -ret,
						     "out of memory");
			continue;
		}
		ret = qos_opt_check(key, opts->kv[i].value, what, err);
		if (ret < 0)
			return ret;
		if (strcmp(key, QOS_OPT_FAIR) == 0)
			continue; /* the router's (fair.h), no limit */
		f = throttle_field(&cfg, key + plen);
		throttle_parse_value(opts->kv[i].value, f);
		for (int j = 0; j < THROTTLE_NAMES; j++)
			if (strcmp(throttle_names[j], key + plen) == 0)
				names[n] = throttle_names[j];
		values[n++] = *f;
	}
	ret = throttle_check(&cfg, msg, sizeof(msg));
	if (ret < 0)
		return vfs_error_set(err, EINVAL, "%s: qos.%s", what, msg);
	if (dry_run || !n)
		return 0;
	return qos_set(path, names, values, n, origin, err);
}

/* Bind qf to the rules on its path and its ancestors (qos_lock held). */
static void bind(struct qos_file *qf)
{
	unsigned n = 0;

	for (unsigned i = 0; i < qf->n; i++) {
		qf->rules[i]->files--;
		if (!--qf->rules[i]->refs && qf->rules[i]->dead)
			rule_free(qf->rules[i]);
	}
	size_t deepest = 0;
	unsigned weight = 0;
	bool limited = false;

	for (size_t i = 0; i < nrules && n < QOS_DEPTH_MAX; i++) {
		const struct throttle_cfg *c = &rules[i]->t.cfg;
		size_t len = strlen(rules[i]->path);

		if (!vfs_path_under(qf->path, rules[i]->path, len))
			continue;
		rules[i]->refs++;
		rules[i]->files++;
		qf->rules[n++] = rules[i];
		limited |= throttle_limits(c);
		if (c->weight && len >= deepest) {
			deepest = len;
			weight = (unsigned)c->weight;
		}
	}
	qf->limited = limited;
	__atomic_store_n(&qf->weight, weight, __ATOMIC_RELAXED);
	__atomic_store_n(&qf->n, n, __ATOMIC_RELAXED);
	__atomic_store_n(&qf->gen, (uint64_t)atomic_load(&qos_gen),
			 __ATOMIC_RELAXED);
}

struct qos_file *qos_file_new(const char *path)
{
	struct qos_file *qf = calloc(1, sizeof(*qf));

	if (!qf || !(qf->path = strdup(path))) {
		free(qf);
		return NULL;
	}
	pthread_once(&qos_once, qos_init_cond);
	pthread_mutex_lock(&qos_lock);
	bind(qf);
	pthread_mutex_unlock(&qos_lock);
	return qf;
}

void qos_file_free(struct qos_file *qf)
{
	if (!qf)
		return;
	pthread_mutex_lock(&qos_lock);
	for (unsigned i = 0; i < qf->n; i++) {
		qf->rules[i]->files--;
		if (!--qf->rules[i]->refs && qf->rules[i]->dead)
			rule_free(qf->rules[i]);
	}
	pthread_mutex_unlock(&qos_lock);
	free(qf->path);
	free(qf);
}

bool qos_file_limited(struct qos_file *qf)
{
	bool ret;

	if (!qf)
		return false;
	pthread_mutex_lock(&qos_lock);
	if (qf->gen != atomic_load(&qos_gen))
		bind(qf);
	ret = qf->limited;
	pthread_mutex_unlock(&qos_lock);
	return ret;
}

unsigned qos_file_weight(struct qos_file *qf)
{
	if (!qf)
		return 0;
	if (__atomic_load_n(&qf->gen, __ATOMIC_RELAXED) !=
	    atomic_load(&qos_gen)) {
		pthread_mutex_lock(&qos_lock);
		if (qf->gen != atomic_load(&qos_gen))
			bind(qf);
		pthread_mutex_unlock(&qos_lock);
	}
	return __atomic_load_n(&qf->weight, __ATOMIC_RELAXED);
}

static void count(struct qos_rule *r, bool write, uint64_t bytes, int64_t now)
{
	r->bytes[write] += bytes;
	r->ops[write]++;
	if (now - r->win_start >= VFS_NS_PER_SEC) {
		/* a second (or more, idle) has passed: what the last one
		 * held is the rate; an idle gap shows as 0 */
		bool idle = now - r->win_start >= 2 * VFS_NS_PER_SEC;

		r->rate_bytes = idle ? 0 : r->win_bytes;
		r->rate_ops = idle ? 0 : r->win_ops;
		r->win_bytes = r->win_ops = 0;
		r->win_start = now;
	}
	r->win_bytes += bytes;
	r->win_ops++;
}

void qos_set_interrupt(bool (*given_up)(void *), void *arg)
{
	qos_given_up = given_up;
	qos_given_up_arg = arg;
}

uint64_t qos_generation(void)
{
	return atomic_load(&qos_gen);
}

static void ticket_release(struct qos_ticket *t, int64_t now)
{
	for (unsigned i = 0; i < t->n; i++) {
		t->held[i]->waiting--;
		t->held[i]->throttled_ns += now - t->since;
		if (!--t->held[i]->refs && t->held[i]->dead)
			rule_free(t->held[i]);
	}
	t->n = 0;
}

/*
 * qf must wait: from now on t holds its rules, so that the counts of the
 * wait go back to the rules it was made on even when they change
 * meanwhile (qos_lock held).  Held again after a change of the rules: a
 * rule that held it already counts it as the one request it is, and the
 * time of each rule's part of the wait once.
 */
static void ticket_hold(struct qos_ticket *t, struct qos_file *qf, int64_t now)
{
	struct qos_ticket old = *t;

	t->n = qf->n;
	t->gen = qf->gen;
	memcpy(t->held, qf->rules, t->n * sizeof(*t->held));
	for (unsigned i = 0; i < t->n; i++) {
		bool had = false;

		for (unsigned j = 0; j < old.n && !had; j++)
			had = old.held[j] == t->held[i];
		t->held[i]->refs++;
		t->held[i]->waiting++;
		if (!had)
			t->held[i]->throttled++;
	}
	/* after the new references: a rule in both stays alive */
	ticket_release(&old, now);
	t->since = now;
}

int64_t qos_try(struct qos_file *qf, bool write, uint64_t bytes,
		struct qos_ticket *t)
{
	int64_t now, wait = 0;

	if (!qf)
		return 0;
	/* unlocked: a stale answer only sends us to the locked path */
	if (!t->n && !__atomic_load_n(&qf->n, __ATOMIC_RELAXED) &&
	    (!atomic_load(&qos_live) ||
	     __atomic_load_n(&qf->gen, __ATOMIC_RELAXED) ==
		     atomic_load(&qos_gen)))
		return 0;
	pthread_mutex_lock(&qos_lock);
	if (qf->gen != atomic_load(&qos_gen))
		bind(qf);
	t->seen = qf->gen;
	now = vfs_mono_ns();
	for (unsigned i = 0; i < qf->n; i++) {
		int64_t w =
			throttle_wait_ns(&qf->rules[i]->t, write, bytes, now);

		if (w > wait)
			wait = w;
	}
	if (!wait) {
		ticket_release(t, now);
		for (unsigned i = 0; i < qf->n; i++) {
			throttle_charge(&qf->rules[i]->t, write, bytes, now);
			count(qf->rules[i], write, bytes, now);
		}
	} else if (!t->n || t->gen != qf->gen) {
		/* the first wait, or the rules changed: the wait counts on
		 * the rules that hold the request back now */
		ticket_hold(t, qf, now);
	}
	pthread_mutex_unlock(&qos_lock);
	return wait;
}

void qos_hold(struct qos_file *qf, struct qos_ticket *t)
{
	if (!qf)
		return;
	pthread_mutex_lock(&qos_lock);
	if (qf->gen != atomic_load(&qos_gen))
		bind(qf);
	if (!t->n || t->gen != qf->gen)
		ticket_hold(t, qf, vfs_mono_ns());
	pthread_mutex_unlock(&qos_lock);
}

void qos_ticket_drop(struct qos_ticket *t)
{
	if (!t->n)
		return;
	pthread_mutex_lock(&qos_lock);
	ticket_release(t, vfs_mono_ns());
	pthread_mutex_unlock(&qos_lock);
}

int qos_io(struct qos_file *qf, bool write, uint64_t bytes)
{
	struct qos_ticket t = {0};

	return qos_wait(qf, write, bytes, &t);
}

int qos_wait(struct qos_file *qf, bool write, uint64_t bytes,
	     struct qos_ticket *t)
{
	int64_t wait;

	while ((wait = qos_try(qf, write, bytes, t)) > 0) {
		int64_t until;
		struct timespec ts;

		if (qos_given_up && qos_given_up(qos_given_up_arg)) {
			qos_ticket_drop(t);
			return -EINTR;
		}
		if (qos_given_up && wait > QOS_POLL_NS)
			wait = QOS_POLL_NS;
		until = vfs_mono_ns() + wait;
		ts = vfs_ns_ts(until);
		pthread_mutex_lock(&qos_lock);
		/* a change since qos_try looked has woken its waiters
		 * already: look again at once */
		if (atomic_load(&qos_gen) == t->seen)
			pthread_cond_timedwait(&qos_cond, &qos_lock, &ts);
		pthread_mutex_unlock(&qos_lock);
	}
	return 0;
}

static const char *origin_name(enum qos_origin o)
{
	return o == QOS_ORIGIN_CONFIG  ? "config"
	       : o == QOS_ORIGIN_XATTR ? "xattr"
				       : "runtime";
}

static int rule_cmp(const void *a, const void *b)
{
	return strcmp((*(struct qos_rule *const *)a)->path,
		      (*(struct qos_rule *const *)b)->path);
}

void qos_report(FILE *out, const char *path, bool json)
{
	bool first = true;
	int64_t now = vfs_mono_ns();

	pthread_mutex_lock(&qos_lock);
	qsort(rules, nrules, sizeof(*rules), rule_cmp);
	if (json)
		fputc('[', out);
	for (size_t i = 0; i < nrules; i++) {
		struct qos_rule *r = rules[i];
		uint64_t rb = r->rate_bytes, ro = r->rate_ops;

		if (path && !vfs_path_under(r->path, path, strlen(path)))
			continue;
		if (now - r->win_start >= 2 * VFS_NS_PER_SEC)
			rb = ro = 0;
		if (json) {
			fputs(first ? "\n {\"path\": " : ",\n {\"path\": ",
			      out);
			vfs_json_str(out, r->path);
			fprintf(out, ", \"origin\": \"%s\", \"limits\": {",
				origin_name(r->origin));
			for (int j = 0, k = 0; j < THROTTLE_NAMES; j++) {
				uint64_t v = throttle_get(&r->t.cfg,
							  throttle_names[j]);

				if (v)
					fprintf(out, "%s\"%s\": %llu",
						k++ ? ", " : "",
						throttle_names[j],
						(unsigned long long)v);
			}
			fprintf(out,
				"}, \"read_bytes\": %llu, \"write_bytes\": "
				"%llu, \"read_ops\": %llu, \"write_ops\": "
				"%llu, "
				"\"rate_bytes\": %llu, \"rate_ops\": %llu, "
				"\"throttled\": %llu, \"throttled_ms\": %lld, "
				"\"waiting\": %u, \"open_files\": %u}",
				(unsigned long long)r->bytes[0],
				(unsigned long long)r->bytes[1],
				(unsigned long long)r->ops[0],
				(unsigned long long)r->ops[1],
				(unsigned long long)rb, (unsigned long long)ro,
				(unsigned long long)r->throttled,
				(long long)(r->throttled_ns / 1000000),
				r->waiting, r->files);
		} else {
			vfs_path_print(out, r->path);
			fprintf(out,
				" (%s)\n  limits:", origin_name(r->origin));
			for (int j = 0; j < THROTTLE_NAMES; j++) {
				uint64_t v = throttle_get(&r->t.cfg,
							  throttle_names[j]);

				if (v)
					fprintf(out, " %s=%llu",
						throttle_names[j],
						(unsigned long long)v);
			}
			fprintf(out,
				"\n  now: %llu B/s, %llu op/s; waiting %u, "
				"open files %u\n  total: read %llu B in %llu "
				"ops, written %llu B in %llu ops; throttled "
				"%llu requests for %lld ms\n",
				(unsigned long long)rb, (unsigned long long)ro,
				r->waiting, r->files,
				(unsigned long long)r->bytes[0],
				(unsigned long long)r->ops[0],
				(unsigned long long)r->bytes[1],
				(unsigned long long)r->ops[1],
				(unsigned long long)r->throttled,
				(long long)(r->throttled_ns / 1000000));
		}
		first = false;
	}
	if (json)
		fputs(first ? "]\n" : "\n]\n", out);
	pthread_mutex_unlock(&qos_lock);
}

void qos_shutdown(void)
{
	pthread_mutex_lock(&qos_lock);
	for (size_t i = nrules; i-- > 0;)
		rule_remove(i);
	free(rules);
	rules = NULL;
	pthread_mutex_unlock(&qos_lock);
}
