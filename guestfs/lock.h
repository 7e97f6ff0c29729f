/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lock.h - byte-range (POSIX/OFD) and flock locks that hold across hosts.
 *
 * Within one vfsd, locks live in an in-memory table keyed by node id, with
 * the kernel's lock owners.  For files on a shared mount (VFS_CAP_SHARED),
 * each host also publishes the locks it holds in a lease record on the
 * backend itself, next to the file:
 *
 *     DIR/.vfsd-locks/NAME/HOST.lease      one per host holding locks
 *     DIR/.vfsd-locks/NAME/.mutex          exclusive-create mutex
 *
 * A host takes a lock by creating the mutex (O_EXCL, atomic on NFS and
 * SFTP), reading the other hosts' records, refusing on a conflict, writing
 * its own record and removing the mutex.  Holders rewrite their records
 * every lease/3 seconds.  A record whose server-side mtime is older than
 * the lease, measured against the mutex's own mtime (the server's clock,
 * so host clocks never matter), belongs to a dead or cut-off host and may
 * be broken.  A holder that could not renew for 2/3 of the lease stops
 * serving writes to the file (EIO) before anyone may break its record.
 * See docs/locking.md.
 */
#ifndef VFSD_GUESTFS_LOCK_H
#define VFSD_GUESTFS_LOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vfsd/router.h"

enum glock_kind { GLOCK_POSIX, GLOCK_FLOCK };

struct glock {
	enum glock_kind kind;
	short type;		/* F_RDLCK, F_WRLCK or F_UNLCK */
	off_t start, end;	/* inclusive; end = OFF_MAX for "to EOF" */
	uint64_t owner;		/* kernel lock owner; 0 for another host's */
	pid_t pid;		/* 0 for another host's lock */
	const void *fh;		/* the open file it was set through */
	char host[128];		/* holder's host id (getlk, locked_by) */
};

/* lease: seconds a record lives unrenewed.  host_id is copied. */
int glock_init(const char *host_id, int lease);
void glock_shutdown(void);

/*
 * F_GETLK: on return lk->type is F_UNLCK if `lk` could be taken, else lk
 * describes one conflicting lock (pid 0 and host set for another host's).
 * `path` is the file's vfsd path, or NULL if it has none (unlinked).
 */
int glock_test(uint64_t ino, struct router_file *f, const char *path,
	       struct glock *lk);

/*
 * F_SETLK/F_SETLKW and flock.  Returns 0, -EAGAIN on a conflict (after
 * waiting, with `wait`, until interrupted(arg) says stop: -EINTR), or
 * another -errno when the lease record cannot be written.
 */
int glock_set(uint64_t ino, struct router_file *f, const char *path,
	      const struct glock *lk, bool wait, bool (*interrupted)(void *),
	      void *arg);

/* Drop every lock of `owner` of this kind on ino (close/flock release). */
void glock_release_owner(uint64_t ino, struct router_file *f,
			 const char *path, uint64_t owner,
			 enum glock_kind kind);

/*
 * The open file `fh` is closed for good: drop the locks set through it.
 * OFD locks belong to one open file and the kernel sends no unlock for
 * them when a FUSE file closes.
 */
void glock_release_fh(uint64_t ino, struct router_file *f, const char *path,
		      const void *fh);

/* False while locks on ino are held but their lease is not renewed in
 * time: writes must fail with EIO then. */
bool glock_may_write(uint64_t ino);
/* The same, telling more: -EIO as above, 1 while this host holds a
 * published (cross-host) lock on ino and may write, 0 without one. */
int glock_write_check(uint64_t ino);

/* The hosts holding locks on the file at `path` (vfsd path): a comma
 * separated list in buf ("" for none).  0 or -errno. */
int glock_holders(const char *path, char *buf, size_t size);

/*
 * rmdir of `dir` failed with ENOTEMPTY: if the only thing left in it is
 * the hidden lease directory (records of files that are gone with the
 * directory's entries), remove that.  0 if the caller should retry.
 */
int glock_rmdir_cleanup(const char *dir);

/* The lease records directory name, hidden from listings. */
#define GLOCK_DIR ".vfsd-locks"

#endif /* VFSD_GUESTFS_LOCK_H */
