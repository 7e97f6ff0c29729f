/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qos.h - I/O limits on vfsd paths: a mount, a directory subtree, a file.
 *
 * A rule is a set of limits (lib/throttle.h) on one vfsd path, with one
 * set of buckets shared by everything beneath it: a rule on a mount's
 * prefix limits the mount as a whole, one on `/vm/tenant-a` all of that
 * tenant's files together, one on an image that image.  Every rule on a
 * file's path or one of its ancestors applies to each of its reads and
 * writes, so an image's own limit cannot lift its tenant's.
 *
 * Rules come from the config file (qos.NAME keys of a [mount] section,
 * [qos PATH] sections), `vfsctl qos set|clear`, `vfsctl mount add`'s
 * qos.NAME options, and the extended attributes user.vfsd.qos.NAME
 * (fuse_xattr.c).  A change applies to open files at their next request
 * and wakes the requests waiting, so it takes effect at once.
 *
 * An open file is bound to its rules by the vfsd path it was opened
 * under; a file renamed while open keeps that path's rules until it is
 * opened again.
 */
#ifndef VFSD_QOS_H
#define VFSD_QOS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "guestfs/layer.h"
#include "lib/error.h"
#include "lib/options.h"
#include "lib/throttle.h"

/* Where a rule's settings came from: a reload replaces the config's. */
enum qos_origin {
	QOS_ORIGIN_CONFIG,  /* the config file, or -m: reloaded with it */
	QOS_ORIGIN_RUNTIME, /* vfsctl qos set, vfsctl mount add */
	QOS_ORIGIN_XATTR,   /* a file's user.vfsd.qos.* attributes */
};

/* The prefix of the settings among mount options and xattr names. */
#define QOS_OPT_PREFIX   "qos."
#define QOS_XATTR_PREFIX IMAGE_QOS_XATTR_PREFIX

struct qos_file;

/*
 * Set the settings of the rule on `path` (a normalised vfsd path) named
 * in names[i] to values[i] (0 removes one), making the rule if there is
 * none; a rule left with no limit is removed.  The whole set is checked
 * first (throttle_check): 0, or -EINVAL with *err naming the setting.
 */
int qos_set(const char *path, const char *const *names, const uint64_t *values,
	    size_t n, enum qos_origin origin, struct vfs_error *err);

/* Remove the rule on exactly `path`: 0, or -ENOENT when it has none. */
int qos_clear(const char *path);

/* The stored attributes of the file at `path` are gone (removed on another
 * host, or the file went): the rule they made goes, and what the config or
 * vfsctl had set on the path before them (origin XATTR over another; a
 * reload of their origin changes it meanwhile) is the rule again.  0, or
 * -ENOENT when the rule on `path` is none of theirs. */
int qos_drop_xattr(const char *path);

/* The origin of the rule on exactly `path`: 0 and *origin, or -ENOENT. */
int qos_origin_of(const char *path, enum qos_origin *origin);

/*
 * A reload of the config's rules: qos_reload_begin() marks every rule of
 * `origin`; a qos_set() of a marked rule replaces its settings as a whole
 * (rather than changing those named) and unmarks it, keeping its buckets
 * and the requests waiting on it; qos_reload_end() removes the rules
 * still marked.  A rule the config still has is never absent meanwhile,
 * so a reload lets nothing through that the limit holds back.
 */
void qos_reload_begin(enum qos_origin origin);
void qos_reload_end(enum qos_origin origin);

/*
 * The value of setting `name` in the rule on exactly `path`: 1 and
 * *value, or 0 when that rule has no such setting (or there is no rule).
 */
int qos_get(const char *path, const char *name, uint64_t *value);

/* Whether a mount option is one of the router's I/O settings (qos.NAME)
 * rather than the backend's. */
bool qos_is_opt(const char *key);

/* A mount's qos.fair option (fair sharing, fair.h): 0 turns it off;
 * default on.  The value is checked by qos_opt_check(). */
#define QOS_OPT_FAIR "qos.fair"
bool qos_fair_opt(const struct vfs_opts *opts);

/* One qos.NAME option: a known NAME and a plain decimal value, else
 * -EINVAL with *err naming it (`what` first). */
int qos_opt_check(const char *key, const char *value, const char *what,
		  struct vfs_error *err);

/*
 * The qos.NAME options of `opts` as settings for the rule on `path`, for
 * a mount's options: checked (an unknown NAME, a bad value or an
 * inconsistent set is -EINVAL with *err naming it, `what` first) and,
 * unless `dry_run`, applied.  *rest gets the other options, for the
 * backend (the caller clears it); rest may be NULL.
 */
int qos_from_opts(const char *path, const struct vfs_opts *opts,
		  enum qos_origin origin, const char *what, bool dry_run,
		  struct vfs_opts *rest, struct vfs_error *err);

/*
 * The rules of an open file opened under `path`: NULL when out of
 * memory (the file then goes unlimited, which qos_file_limited says).
 * Freed by qos_file_free().
 */
struct qos_file *qos_file_new(const char *path);
void qos_file_free(struct qos_file *qf);

/* Whether any rule applies to qf now (such a file is not given to the
 * kernel for passthrough: its I/O must pass through qos_io). */
bool qos_file_limited(struct qos_file *qf);

/* The weight of qf's share of a busy mount (fair.h): the deepest of its
 * rules that sets one says it; 0 when none does (the default, 100). */
unsigned qos_file_weight(struct qos_file *qf);

/* A file's rules on one path nest at most this deep (deeper ones are
 * ignored: a tree of 16 nested limits is no real configuration). */
#define QOS_DEPTH_MAX 16

/*
 * A request held back by its limits, for callers that wait elsewhere than
 * in qos_io() (the FUSE layer parks such requests off its worker threads,
 * fuse_wait.c).  Zeroed by the caller before the first qos_try(); holds
 * references to the rules it waits on until qos_try() admits it or
 * qos_ticket_drop() gives it up.  The fields are qos.c's.
 */
struct qos_ticket {
	unsigned n;
	uint64_t gen, seen;
	int64_t since;
	struct qos_rule *held[QOS_DEPTH_MAX];
};

/*
 * Whether every rule of qf lets a read (or a write) of `bytes` start now:
 * 0 when it does, and it is counted (t is then released); else the
 * nanoseconds to wait before asking again, nothing counted, and t holds
 * the wait for the counters (`vfsctl qos show`) until it is admitted or
 * dropped.  A rule's change may admit it sooner: qos_generation() says
 * when to ask again early.
 */
int64_t qos_try(struct qos_file *qf, bool write, uint64_t bytes,
		struct qos_ticket *t);

/* t waits behind other requests of its file, before any qos_try(): it
 * holds qf's rules as a request they hold back (counted waiting), with
 * nothing tried nor charged. */
void qos_hold(struct qos_file *qf, struct qos_ticket *t);

/* Give up a request t held back (its caller went): no-op when t holds
 * nothing. */
void qos_ticket_drop(struct qos_ticket *t);

/* Changes with every change of the rules or of their limits. */
uint64_t qos_generation(void);

/*
 * Wait until every rule of qf lets a read (or a write) of `bytes` start,
 * and count it: 0, or -EINTR when the calling thread's check
 * (qos_set_interrupt) gave the request up while it waited, and nothing
 * was counted.  Returns at once when no rule applies.
 */
int qos_io(struct qos_file *qf, bool write, uint64_t bytes);
/* qos_io() for a request whose wait began elsewhere (t, from qos_try()
 * or qos_hold(), or zeroed): counted as the one request it is.  t is
 * released either way. */
int qos_wait(struct qos_file *qf, bool write, uint64_t bytes,
	     struct qos_ticket *t);

/*
 * The calling thread's check for qos_io, polled while it waits: true
 * when the request is given up (its caller was interrupted or killed,
 * the daemon is stopping).  A limit as low as a few bytes a second makes
 * waits of days; without the check a killed process could not end, nor
 * vfsd stop, before them.  NULL: none (the wait is not cut short).
 */
void qos_set_interrupt(bool (*given_up)(void *), void *arg);

/* Every rule (or the rules on `path` and beneath it, when not NULL) with
 * its limits and counters, as text or JSON, for `vfsctl qos show`. */
void qos_report(FILE *out, const char *path, bool json);

/* Free every rule (at exit; no file may be open). */
void qos_shutdown(void);

/*
 * qos_store.c: the settings kept as the file's own extended attributes,
 * so that every host serving the file applies them.
 *
 * qos_store_set() sets settings as qos_set() does and, on a regular file
 * whose backend keeps extended attributes, writes each as
 * user.vfsd.qos.NAME (0: removes it).  A backend without them keeps
 * the rule in this daemon only.  0 or -errno with *err set.
 */
int qos_store_set(const char *path, const char *const *names,
		  const uint64_t *values, size_t n, struct vfs_error *err);

/*
 * At the open of a regular file, and by the watcher below: make the rule
 * on `path` what its user.vfsd.qos.* attributes say (another host may
 * have set or removed them).  A rule set by vfsctl or the config on the
 * file stays unless the attributes name settings, and applies again once
 * they are removed (qos_drop_xattr).  When the backend
 * cannot tell (an error, a timeout), the rule stays as it is.  May call
 * the backend: never with a lock held.
 */
void qos_store_load(const char *path);

/*
 * Before the attributes are read (getxattr, listxattr) or changed: a
 * rule on `path` made from them (QOS_ORIGIN_XATTR) is this host's copy of
 * what was stored at its last open or change, which another host may
 * have changed since; it is loaded again (qos_store_load).  Other rules,
 * and paths without one, cost nothing.
 */
void qos_store_refresh(const char *path);

/* The file or directory at `path` went (unlinked, renamed away or over):
 * a rule its stored attributes made (QOS_ORIGIN_XATTR) goes with it (and
 * what it replaced is the rule again, qos_drop_xattr), after
 * qos_store_gone().  A rule of the config or vfsctl stays: it is on the
 * path.  In qos_store.c: the store's view of a name, above the rules. */
void qos_path_gone(const char *path);

/*
 * `path` went (qos_path_gone() calls it before it drops the rule): a load
 * of it under way, which may have read the attributes of the file that
 * was there, applies nothing, rather than bring back the rule the removal
 * took on a name no file has.
 */
void qos_store_gone(const char *path);

/*
 * The watcher: a thread that loads the stored limits of every file open
 * on a shared mount once a second (qos_store_load), so that another
 * host's change applies to a file held open here.  Start it once the
 * router is up (0 or -errno); stop it before the router goes (it waits
 * for a round in progress; a call of that round to a server that does
 * not answer ends within its mount's timeout).  Stop without a start is
 * fine.
 */
int qos_store_watch_start(void);
void qos_store_watch_stop(void);

#endif
