/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lock.h - byte-range (POSIX/OFD) and flock locks that hold across hosts.
 *
 * Within one vfsd, locks live in an in-memory table keyed by file (struct
 * glock_key), with the kernel's lock owners.  For files on a shared mount
 * (VFS_CAP_SHARED), each daemon instance also publishes the locks it holds
 * in a lease record on the backend itself, next to the file:
 *
 *     DIR/.vfsd-locks/NAME/HOST.TOKEN.FILE.SEQ.lease
 *
 * TOKEN is random per daemon instance, FILE numbers the file within the
 * daemon and SEQ grows with every write, so a record's name is never used
 * twice: a record is written under a new
 * name (through a temporary file and a rename) and its predecessor is
 * removed after, and a record judged expired is removed by its own name
 * only.  To take a lock an instance publishes its record with the lock
 * marked pending, then reads every other record: any live conflicting
 * lock, pending or not, means EAGAIN (and the lock is withdrawn).  Ages
 * are judged by the server's clock alone (the mtime of the reader's own
 * fresh record against the others').  A holder may rely on a record for
 * 2/3 of the lease after sending its write; every write under the lock
 * carries that moment as its deadline (backends/callctx.h) and past it,
 * without a confirmed renewal, the locks are lost for good.
 * See docs/locking.md and the model in guestfs/lock.pml.
 */
#ifndef VFSD_GUESTFS_LOCK_H
#define VFSD_GUESTFS_LOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "guestfs/lower.h"

enum glock_kind { GLOCK_POSIX, GLOCK_FLOCK };

struct glock {
	enum glock_kind kind;
	short type;       /* F_RDLCK, F_WRLCK or F_UNLCK */
	off_t start, end; /* inclusive; end = OFF_MAX for "to EOF" */
	uint64_t owner;   /* kernel lock owner; 0 for another host's */
	pid_t pid;        /* 0 for another host's lock */
	const void *fh;   /* the open file it was set through */
	char host[128];   /* holder's host id (getlk, locked_by) */
	char token[17];   /* holder's instance token ("?": unknown) */
	int age;          /* another's: seconds since its record was
			   * written, by the server's clock */
	bool pending;     /* another's: still being acquired */
};

/*
 * One file to the lock table: the mount it is seen through (its layer's
 * gfs_lower) and, there, a number naming it: its inode number when the
 * backend's are stable (lower->by_ino: every name and open of the file is
 * one entry), else the number its layer gives the file while it is open,
 * which follows renames made through the layer (guestfs/layer.c).  `path`
 * is where its records live: the file's current mount-relative name, or
 * NULL if it has none (unlinked: its locks then hold within this daemon
 * only).
 */
struct glock_key {
	const struct gfs_lower *lower;
	uint64_t ino;
	const char *path;
};

/* lock_lease when not configured: a lease of a third of this covers the
 * remote backends' default timeout of 20 s (see router_set_lock_lease) */
#define GLOCK_LEASE_DEFAULT 60

/* lease: seconds a record lives unrenewed.  host_id is copied. */
int glock_init(const char *host_id, int lease);
void glock_shutdown(void);

/* This daemon among those sharing a backend, safe as a file name: its
 * host id (escaped, as in its lease records) and its instance's random
 * token, "ID.TOKEN", into buf ("." before glock_init).  For names of
 * its own on the storage, which no other daemon may use at once. */
void glock_instance_name(char *buf, size_t size);

/*
 * F_GETLK: on return lk->type is F_UNLCK if `lk` could be taken, else lk
 * describes one conflicting lock (pid 0 and host set for another host's).
 */
int glock_test(const struct glock_key *k, struct glock *lk);

/*
 * F_SETLK/F_SETLKW and flock.  Returns 0, -EAGAIN on a conflict (after
 * waiting, with `wait`, until interrupted(arg) says stop: -EINTR), or
 * another -errno when the lease record cannot be written.
 */
int glock_set(const struct glock_key *k, const struct glock *lk, bool wait,
	      bool (*interrupted)(void *), void *arg);

/* Drop every lock of `owner` of this kind on the file (close, flock
 * release). */
void glock_release_owner(const struct glock_key *k, uint64_t owner,
			 enum glock_kind kind);

/*
 * The open file `fh` is closed for good: drop the locks set through it.
 * OFD locks belong to one open file and the kernel sends no unlock for
 * them when a FUSE file closes.
 */
void glock_release_fh(const struct glock_key *k, const void *fh);

/* Whether any file of `lower` is in the lock table: without one, no
 * write there needs a fence (and the caller need not find its key). */
bool glock_any(const struct gfs_lower *lower);

/*
 * Around every change of a file's data: -EIO when its locks are lost
 * (fail the write), 0 without a cross-host lock, 1 under one: then
 * *deadline_ns (CLOCK_MONOTONIC) is the moment the lease stops covering
 * the write (push it with vfs_callctx_push() so the backend drops the
 * request rather than deliver it later), and glock_write_end() must
 * follow once the backend answered.  Releasing a lock waits for these.
 */
int glock_write_begin(const struct glock_key *k, int64_t *deadline_ns);
void glock_write_end(const struct glock_key *k);
/* Without waiting or counting: -EIO when the file's locks are lost, 1
 * while this host holds a published (cross-host) lock on it, 0 without. */
int glock_write_check(const struct glock_key *k);

/* The daemon instances holding locks on the file `path` of `lower`, each
 * with its instance token and record age, comma separated:
 * "host token=T age=Ns,..." ("" for none).  0 or -errno. */
int glock_holders_detail(const struct gfs_lower *lower, const char *path,
			 char *buf, size_t size);

/*
 * The layer over `lower` is going away (no call in flight, no file open):
 * withdraw its records and forget its files.
 */
void glock_detach(const struct gfs_lower *lower);

/*
 * The mount of `lower` was removed by force while files were open (set
 * lower->revoked first): their writes fail from now on, so its locks are
 * given up the safe way, by no longer renewing them.  Others may take
 * them once the records expire; a lock call still waiting gives up.
 */
void glock_revoke(const struct gfs_lower *lower);

/* The lease in seconds. */
int glock_lease(void);

/*
 * rmdir of `dir` failed with ENOTEMPTY: if the only thing left in it is
 * the hidden lease directory (records of files that are gone with the
 * directory's entries), remove that.  0 if the caller should retry.
 */
int glock_rmdir_cleanup(const struct gfs_lower *lower, const char *dir);

/* The lease records directory name (see glock_reserved). */
#define GLOCK_DIR ".vfsd-locks"

/*
 * GLOCK_DIR is vfsd's own only where records live: in the directories of
 * shared mounts.  There the layer hides it from listings and refuses
 * every call that names it, or anything in it, with EPERM: users can
 * neither read records nor plant or remove them.  On other mounts it is a
 * name like any other.  glock_reserved takes a mount-relative path.
 */
bool glock_reserved(const char *path);

#endif /* VFSD_GUESTFS_LOCK_H */
