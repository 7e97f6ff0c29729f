/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lock_internal.h - what the pieces of the cross-host locks share; not for
 * use outside guestfs/lock.c, lease.c, record.c and renew.c.  lock.h has
 * the contract, docs/locking.md the reasoning, guestfs/lock.pml the checked
 * model: change the three together.
 *
 *   lock.c    the lock table (this host's locks per node, POSIX semantics)
 *             and the public API: test, set, release, the write gate,
 *             init and shutdown
 *   lease.c   the lease protocol: judging the other instances' records
 *             (expiry, leftovers, duplicate host ids), publishing ours under
 *             the renewal's deadline, dropping its predecessor, acquiring
 *   record.c  one lease record on the server: where it lives, its name and
 *             text, the requests that write, read and remove it, the
 *             server's clock, the hidden record directories
 *   renew.c   the renewal thread
 *
 * Names used throughout:
 *   L  lock_lease: seconds of the server's clock a record lives unrenewed.
 *   W  2L/3: how long after *sending* a record write its writer may rely on
 *      it (its lease's validity); writes under the lock carry that deadline.
 *   P  L/6: renewal period.
 * A record is expired when the server's clock says it is more than L + 1 s
 * old (+1: SFTP times have whole seconds).  L - W is the margin for clock
 * rates and for a server still finishing a request whose connection was
 * dropped at its deadline.
 *
 * Locking: `glock_g.lock` protects the file list and every table in it;
 * it is never held across backend I/O.  Remote work on one file is
 * serialised by that file's `busy` flag (waiters sleep on glock_g.changed),
 * so a slow or dead backend only holds up lock operations on its own
 * files.  While a file is busy, only the thread that set the flag changes
 * its record fields.
 */
#ifndef VFSD_GUESTFS_LOCK_INTERNAL_H
#define VFSD_GUESTFS_LOCK_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "guestfs/lock.h"

#define OFF_MAX_   ((off_t)INT64_MAX)
#define RECORD_MAX 65536 /* a longer record is not a record */
#define LOCKS_MAX  1024  /* locks of one host on one file */
#define NS         1000000000LL

/* One file with locks of this host, or with lock calls on it.  Protected
 * by glock_g.lock; the record fields (record_dir to retry_ns) change only
 * in the thread that set `busy`. */
struct glock_file {
	const struct gfs_lower *lower; /* its mount's; valid until
					* glock_detach() */
	uint64_t ino;                  /* the key (struct glock_key) */
	uint64_t fid;        /* in our record names: two mounts of one backend
			      * directory are two files with records of their
			      * own */
	struct glock *locks; /* this host's locks, owner != 0 */
	size_t n, cap;
	bool busy;        /* remote work in progress */
	int users;        /* glock_set calls holding this pointer */
	char *record_dir; /* DIR/.vfsd-locks/NAME, mount-relative */
	char *record;     /* our current record's name there, or NULL */
	struct timespec rec_mtime; /* its mtime, by the server */
	int64_t sent_ns;           /* CLOCK_MONOTONIC: its write was sent */
	int64_t valid_ns;          /* sent_ns + W: writes are fenced here */
	int64_t retry_ns;          /* next renewal attempt after a failure */
	bool lost;                 /* lease lapsed or record broken: writes fail
				    * until every lock on the file is dropped */
	int inflight;              /* writes under the lock not yet answered */
	bool draining;             /* a release waits for them: hold new ones */
	bool republish;            /* the record still marks a granted lock
				    * pending: the renewer rewrites it soon */
	struct glock_file *next;
};

/* Records of another instance that carries our host id, per directory. */
struct dup_seen {
	char token[17];
	uint64_t dir;     /* hash of the record directory */
	uint64_t max_seq; /* highest record number seen there */
	unsigned scan;    /* the listing that saw it */
};

#define DUPS_MAX 8

/* The state of the cross-host locks (defined in lock.c).  host, host_esc,
 * token and lease are set by glock_init before the renewer starts and
 * only read after. */
struct glock_state {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct glock_file *files; /* protected by lock */
	char host[128];
	char host_esc[400]; /* host id, safe as a file name */
	char token[17];     /* this instance, random */
	uint64_t seq;       /* record names, never reused */
	uint64_t next_fid;  /* protected by lock */
	int lease;
	struct dup_seen dups[DUPS_MAX]; /* protected by lock */
	unsigned scans;                 /* listings taken, protected by lock */
	bool dup_live;                  /* another live daemon has our id */
	int renewing;                   /* renewal threads running */
	pthread_t renewer;
	bool running, stop;
};

extern struct glock_state glock_g;

static inline int64_t lease_ns(void)
{
	return (int64_t)glock_g.lease * NS;
}

static inline int64_t valid_window_ns(void)
{
	return lease_ns() * 2 / 3;
}

static inline int64_t renew_period_ns(void)
{
	return lease_ns() / 6;
}

/* ---- lock.c: the lock table ----------------------------------------- */

bool glock_conflicts(const struct glock *a, const struct glock *b);
int glock_push(struct glock **v, size_t *n, size_t *cap,
	       const struct glock *lk);
void glock_file_maybe_free_locked(struct glock_file *gf);
void glock_timed_wait_locked(long ms);
bool glock_check_lapsed_locked(struct glock_file *gf);

/* ---- record.c: one record on the server ------------------------------ */

char *record_dir_of(const char *path);
char *record_join(const char *dir, const char *name);

/*
 * A record or record directory that is no longer there.  Over NFS one that
 * another host replaced or removed since its lookup answers ESTALE rather
 * than ENOENT (a migration's hand-over, widened by storage latency): the
 * same fact, so the same answer, a fresh look.
 */
/* A failure of the server or of the way to it, not of a record: no
 * answer about any holder. */
static inline bool lease_transient(int err)
{
	return err == -EIO || err == -ETIMEDOUT || err == -ENOMEM ||
	       err == -EAGAIN || err == -ENOTCONN || err == -ECONNRESET;
}

static inline bool record_gone(int err)
{
	return err == -ENOENT || err == -ESTALE;
}
char *record_text(const struct glock *v, size_t n, const struct glock *pending);
int record_put(const struct gfs_lower *l, const char *rdir, uint64_t fid,
	       const char *text, char **name_out, struct timespec *mtime,
	       int64_t *sent_ns);
void record_drop(const struct gfs_lower *l, const char *rdir, const char *name);
char *record_read(const struct gfs_lower *l, const char *path,
		  struct timespec *mtime, int *err, bool *toolong);
int record_parse(char *text, struct glock **out, size_t *n, size_t *cap,
		 char *host, size_t hsize, char *token, size_t tsize);
int record_server_now(const struct gfs_lower *l, const char *rdir,
		      struct timespec *now);

/* ---- lease.c: the protocol ------------------------------------------ */

/* A new record of ours, from publish(). */
struct put_result {
	char *name; /* owned; NULL when the record was removed */
	struct timespec mtime;
	int64_t sent_ns;
};

int lease_remote_locks(const struct gfs_lower *l, const char *rdir,
		       uint64_t fid, const struct timespec *now,
		       const char *mine, bool clean, struct glock **out,
		       size_t *outn);
const struct glock *lease_find_conflict(const struct glock *others, size_t on,
					const struct glock *want,
					bool *pending_only);
void lease_drop_predecessor(const struct gfs_lower *l, const char *rdir,
			    const char *old, int64_t sent_ns);
void lease_adopt_locked(struct glock_file *gf, struct put_result *res);
int lease_publish_fenced(struct glock_file *gf, const char *rdir,
			 const struct glock *v, size_t n, size_t granted,
			 const struct glock *pending, struct put_result *res);
int lease_acquire(struct glock_file *gf, const char *rdir,
		  const struct glock *nv, size_t nn, const struct glock *old_v,
		  size_t old_n, const struct glock *lk, struct glock *conflict);

/* ---- renew.c: the renewal thread ------------------------------------ */

int renew_start(void);
bool renew_stop(void);

#endif /* VFSD_GUESTFS_LOCK_INTERNAL_H */
