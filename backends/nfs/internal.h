/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * internal.h - private declarations of the "nfs" backend, shared by its
 * files in backends/nfs/:
 *
 *   nfs.c     options, mount and unmount, statfs, the ops table (the
 *             overview of the design is at its head)
 *   attr.c    getattr, setattr, fgetattr
 *   namespace.c  the status-only path calls, readlink, mknod, mkdir,
 *             symlink, link, unlink, rmdir, rename
 *   dir.c     directory listings
 *   file.c    open files: the open list and silly rename, open, create,
 *             COMMIT, release
 *   io.c      read and write
 *   conn.c    contexts for the pool (its slots: remote/slots.h), the
 *             per-call event loop, errors and
 *             the calls every operation shares
 *   call.c    one request start to finish (nfsb_call)
 *   v4.c      our own NFSv4 COMPOUNDs where libnfs 4.0.0 falls short
 *   xdr.c     reading XDR from replies without running past their end
 *   wb.c      write-behind: the sender of the core (remote/wb.h)
 *   wire.c    READs and NFSv4 WRITEs on a connection of our own beside
 *             each context
 *
 * Every libnfs call of vfsd is in these files.  Nothing here is visible to
 * the rest of vfsd: the backend exports only nfs_ops.
 */
#ifndef VFSD_BACKENDS_NFS_INTERNAL_H
#define VFSD_BACKENDS_NFS_INTERNAL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw-nfs4.h>

#include "backends/backend.h"
#include "backends/remote/cache.h"
#include "backends/remote/pool.h"
#include "backends/remote/slots.h"
#include "backends/remote/wb.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/path.h"

/*
 * libnfs-raw.h declares nfs_get_fh() ("use a file opened with nfs_open()
 * together with low-level rpc functions") but keeps struct nfs_fh in its
 * private header.  Its layout, {int len; char *val;}, is what libnfs 4.x
 * uses; nfsb_rawfh() checks that the values are plausible before use.
 */
struct nfs_fh {
	int len;
	char *val;
};

/* A plausible file handle of libnfs's, or NULL (see struct nfs_fh). */
static inline struct nfs_fh *nfsb_rawfh(struct nfsfh *fh, int max)
{
	struct nfs_fh *raw = nfs_get_fh(fh);

	if (!raw || raw->len <= 0 || raw->len > max || !raw->val)
		return NULL;
	return raw;
}

#define NFSB_V3_FHSIZE        64            /* RFC 1813: NFS3_FHSIZE */
#define NFSB_CHUNK_MAX        (1024 * 1024) /* libnfs's own clamp */
#define NFSB_V4_RMAX          (512 * 1024)  /* see nfsb_limits() */
#define NFSB_SHARE_BYTES      (1024 * 1024) /* busy files share, fair.h */
/* the reconnect backoff (backends/remote/pool.h) */
#define NFSB_BACKOFF_FIRST_MS 1000
#define NFSB_BACKOFF_MAX_MS   10000
/* the least a rebuild beside a working context may spend connecting
 * (remote_slots.connect_min_ms) */
#define NFSB_REBUILD_MIN_MS   300
#define NFSB_RELEASE_WAIT_MS  200 /* see nfsb_silly_rename() */
#define NFSB_V4_ATTRBUF       128 /* an encoded fattr4 of a SETATTR */
#define NFSB_NAME_MAX         255 /* NFS3_MAXNAMLEN/NFS4_MAXNAMLEN of Linux */

struct nfsb_mount {
	struct vfs_mount base; /* first: the router sees only this */
	char *display;         /* URL for messages, no query */
	char *libnfs_url;      /* nfs://server/export?params */
	char *server;
	char *export; /* what MOUNT/PUTROOTFH starts from */
	char *subdir; /* path below the export, "/" if none */
	int version;  /* 3 or 4 */
	int timeout;  /* seconds */
	double cache_ttl;
	bool root_user;        /* chown new files to the caller */
	uid_t auth_uid;        /* owner the server gives what we make */
	gid_t auth_gid;        /* the AUTH_SYS gid we send */
	size_t rsize, wsize;   /* per-RPC data sizes */
	unsigned long namemax; /* longest name, asked once at
				* mount (nfsb_limits) */

	pthread_mutex_t lock;
	pthread_cond_t cond;       /* a conn was checked in / state */
	struct remote_slots slots; /* each holds a context; protected by
				    * lock */
	struct remote_pool rp;     /* state, backoff; protected by lock */
	struct log_ratelimit rl;   /* protected by lock */

	/* attributes and listings by export-relative path (its lock is a
	 * leaf) */
	struct remote_cache *cache;

	/* write-behind: the shared queue (NULL: write_behind = no) and our
	 * sender of it (wb.c) */
	struct remote_wb *wbq;
	struct nfsb_wb *wb;
	/* atomics (__atomic builtins), kept by nfsb_get/nfsb_put for the
	 * write-behind sender, which shares the server with the callers
	 * while they are active (wb.c): pool calls in progress, and the
	 * monotonic ns of the last one's end (but a writer's own, op->own) */
	unsigned fg_calls;
	int64_t fg_ns;
	/* the wire of each pool slot (wire.c), used by whoever has the
	 * slot checked out */
	struct nfsb_wire **wires;

	/* atomic: a READ answered with more than it asked was logged (io.c) */
	bool read_overrun_logged;

	pthread_mutex_t open_lock;    /* a leaf lock */
	pthread_cond_t open_cond;     /* a file was released */
	struct nfsb_file *open_files; /* protected by open_lock */
	unsigned long silly_seq;      /* protected by open_lock */
};

struct nfsb_file {
	struct vfs_file base; /* first */
	/* protected by the mount's open_lock: */
	char *path;   /* export-relative, follows renames */
	bool silly;   /* path is a silly name: remove at release */
	bool flushed; /* closed by a descriptor, not used since */
	struct nfsb_file *open_next, **open_pprev;

	struct nfsfh *fh;      /* NFSv3: libnfs's handle (no server
				* state: any context may use it) */
	char fh4[NFS4_FHSIZE]; /* NFSv4: the file handle; no OPEN */
	u_int fh4_len;         /* state is kept, see nfsb_do_open() */
	int oflags;            /* flags libnfs was given */
	/* write-behind: jobs pending, and the sticky error of a failed one,
	 * reported once (remote/wb.h) */
	struct remote_wb_file wbf;

	pthread_mutex_t lock; /* the fields below */
	bool dirty;           /* unstable data not yet committed */
	/* A loss a COMMIT found at a flush: like wbf.err, kept until a write
	 * or fsync takes it (nfsb_commit()). */
	int lost;
	bool told; /* a flush reported wbf.err or lost */
	bool verf_known;
	char verf[NFS3_WRITEVERFSIZE]; /* write verifier of the dirty data */
};

struct vfs_dir {
	struct remote_listing *list; /* a reference */
};

/* One READ or WRITE RPC of a larger request. */
struct nfsb_chunk {
	struct nfsb_wait *w;
	struct nfsb_file *nf;
	char *buf;
	size_t want;
	size_t got;
	off_t off;
	bool eof;      /* a READ reply said end of file */
	bool unstable; /* reply said UNSTABLE */
	bool verf_bad; /* reply verifier differs from the file's */
};

/* A checked-out connection and the call's deadline. */
struct nfsb_op {
	struct nfsb_mount *m;
	int idx;
	struct nfs_context *nfs;
	struct nfsb_wire *wire; /* NFSv4: the context's WRITE connection */
	double deadline;
	bool dead;      /* transport failed: destroy at checkin */
	bool timed_out; /* ... the server did not answer in time */
	bool abandoned; /* ... the caller's deadline passed first */
	bool answered;  /* the server answered every request sent */
	bool caller_dl; /* deadline is the caller's, shorter than the timeout */
	/* a write-behind writer's own call (its COMMIT): once over, it
	 * leaves the sender its window (wb.c, nfsb_put) */
	bool own;
};

/* Completion state of the requests of one call. */
struct nfsb_wait {
	int pending;
	int err;        /* first error, -errno */
	bool transport; /* a reply failed below NFS */
};

static inline struct nfsb_mount *nfsb_m(struct vfs_mount *m)
{
	return (struct nfsb_mount *)m;
}

static inline struct nfsb_file *nfsb_f(struct vfs_file *f)
{
	return (struct nfsb_file *)f;
}

struct nfsb_statreq {
	struct nfsb_wait *w;
	struct stat *st;
};

/* Data-carrying callbacks: copy what the caller keeps (data dies after
 * the callback returns). */
struct nfsb_ptrreq {
	struct nfsb_wait *w;
	void *ptr;
};

/* A READLINK at the end of a compound: its target, copied. */
struct nfsb_linkreq {
	struct nfsb_wait *w;
	char *link; /* malloc'd, NUL-terminated */
};

/* The object at `full` changed, and so did its parent directory's listing
 * and times: drop what the cache has of both (for a directory, its own
 * listing too). */
static inline void nfsb_invalidate(struct nfsb_mount *m, const char *full)
{
	remote_cache_invalidate_name(m->cache, full);
	remote_cache_invalidate_dir(m->cache, full);
}

/*
 * The path-based libnfs calls that only report a status share this shape.
 * `fn` starts the request; `a`/`b` are its path/string arguments and `x`,
 * `y` its integer ones.
 */
enum nfsb_simple {
	NFSB_CHMOD,
	NFSB_CHOWN,
	NFSB_TRUNCATE,
	NFSB_UTIMES,
	NFSB_MKDIR,
	NFSB_MKNOD,
	NFSB_SYMLINK,
	NFSB_LINK,
	NFSB_UNLINK,
	NFSB_RMDIR,
	NFSB_RENAME,
};

struct nfsb_args {
	const char *a, *b;
	long long x, y;
	struct timeval *tv; /* NFSB_UTIMES: NULL = server time */
};

/* ---- conn.c -------------------------------------------------------- */

void nfsb_wait_init(struct nfsb_wait *w);
bool nfsb_is_transport(int err);
void nfsb_wait_done(struct nfsb_wait *w, int err);
void nfsb_cb_status(int err, struct nfs_context *nfs, void *data, void *priv);
int nfsb_connect(struct nfsb_mount *m, double deadline,
		 struct nfs_context **out, char *msg, size_t msglen);
/* Slot c (checked out) holds the new context nfs: counts a reconnect
 * where one is due, and the mount is connected. */
extern const struct remote_slot_ops nfsb_slot_ops; /* conn.c */
int nfsb_get(struct nfsb_mount *m, int want, struct nfsb_op *op);
void nfsb_put(struct nfsb_op *op);
int nfsb_finish(struct nfsb_op *op, struct nfsb_wait *w);
void nfsb_start_failed(struct nfsb_op *op, struct nfsb_wait *w);
/* Destroy op's context (still alive, with nothing in flight) though it
 * works: what it holds on the server must go with it.  nfsb_put() forgets
 * it without counting it as broken. */
void nfsb_drop(struct nfsb_op *op);
bool nfsb_retry(const struct nfsb_op *op, int ret, int *tries);
char *nfsb_path(struct nfsb_mount *m, const char *path);
void nfsb_stat_from64(struct stat *st, const struct nfs_stat_64 *s);
void nfsb_cb_stat(int err, struct nfs_context *nfs, void *data, void *priv);
void nfsb_cb_ptr(int err, struct nfs_context *nfs, void *data, void *priv);
void nfsb_cb_strdup(int err, struct nfs_context *nfs, void *data, void *priv);
int nfsb_lstat_on(struct nfsb_op *op, const char *full, struct stat *st);
int nfsb_lstat_full(struct nfsb_mount *m, const char *full, struct stat *st,
		    bool use_cache);

/* ---- call.c -------------------------------------------------------- */

/*
 * Queue one request on op's context, its callback to end with
 * nfsb_wait_done(w, ...).  `arg` is the caller's own request.  0, or
 * non-zero if it could not be queued (then no callback comes).
 */
typedef int (*nfsb_start_fn)(struct nfsb_op *op, struct nfsb_wait *w,
			     void *arg);
/* One request on op's checked-out context: queue it, wait for the answer
 * until op's deadline and return 0 or -errno as nfsb_finish() does (a
 * transport failure or timeout destroys the context; a request after that
 * on the same checkout is not sent and fails with -EIO). */
int nfsb_call_on(struct nfsb_op *op, nfsb_start_fn start, void *arg);
/*
 * One request on a context of m's pool, checked out for it (nfsb_get: the
 * call's deadline) and in again, and made once more on a fresh context
 * when its context was found broken (nfsb_retry); after a "try again
 * later" (JUKEBOX, DELAY) again after a wait, within the mount's timeout.
 * `start` may run several times: it sets up afresh whatever it gives
 * libnfs.  0 or -errno (-EAGAIN: still "later" when the time was up).
 */
int nfsb_call(struct nfsb_mount *m, nfsb_start_fn start, void *arg);
/*
 * nfsb_call(), and *resent tells whether the request went out a second
 * time: its first try's connection broke before an answer came, so the
 * server may have carried out the first try already.  A non-idempotent
 * call then judges an EEXIST or ENOENT by what the server now holds.
 */
int nfsb_call_resent(struct nfsb_mount *m, nfsb_start_fn start, void *arg,
		     bool *resent);

/* An open, or with O_CREAT in `flags` a create, for nfsb_start_open. */
struct nfsb_openreq {
	struct nfsb_ptrreq r; /* the struct nfsfh *, the caller's to close */
	const char *full;
	int flags; /* libnfs's */
	int mode;
};
/* nfsb_start_fns: open or create `arg`, a struct nfsb_openreq; close the
 * struct nfsfh `arg` (libnfs frees it whatever the server answers). */
int nfsb_start_open(struct nfsb_op *op, struct nfsb_wait *w, void *arg);
/* The NFSv3 handle of `full`, found by an open on op's context and copied
 * to fh (NFSB_V3_FHSIZE bytes), its length to *len (0: libnfs's handle was
 * not plausible).  0 or -errno. */
int nfsb_v3_fh_on(struct nfsb_op *op, const char *full, char *fh, int *len);
int nfsb_start_close(struct nfsb_op *op, struct nfsb_wait *w, void *arg);

/* ---- attr.c -------------------------------------------------------- */

int nfsb_getattr(struct vfs_mount *vm, const char *path, struct stat *st);
int nfsb_setattr(struct vfs_mount *vm, const char *path, struct vfs_file *f,
		 const struct vfs_setattr *sa, struct stat *st);
/* Set sa on the object at `full` (by path).  0 or -errno. */
int nfsb_setattr_path(struct nfsb_mount *m, const char *full,
		      const struct vfs_setattr *sa);
/* Set sa on the file nf has open, in one SETATTR of its handle. */
int nfsb_fsetattr(struct nfsb_file *nf, const struct vfs_setattr *sa);
int nfsb_fgetattr(struct vfs_file *f, struct stat *st);
/* libnfs callback of a raw SETATTR3: completes the nfsb_wait `priv`. */
void nfsb_cb_setattr3(struct rpc_context *rpc, int status, void *data,
		      void *priv);

/* ---- namespace.c ---------------------------------------------------- */

/* Run one status-only call (retried once on a broken connection). */
int nfsb_simple(struct nfsb_mount *m, enum nfsb_simple what,
		const struct nfsb_args *g);
/* The same, and *resent as nfsb_call_resent() says it. */
int nfsb_simple_resent(struct nfsb_mount *m, enum nfsb_simple what,
		       const struct nfsb_args *g, bool *resent);
/* RENAME `from` to `to` (export-relative), with a resent RENAME's ENOENT
 * judged by what the target now is.  0 or -errno. */
int nfsb_rename_full(struct nfsb_mount *m, const char *from, const char *to);
/* Give a new object the caller's owner (see there); through nf's handle
 * when there is one.  0 or -errno. */
int nfsb_chown_new(struct nfsb_mount *m, const char *full, struct nfsb_file *nf,
		   const struct vfs_cred *cred, struct stat *st);
/* Does st look like what an exclusive CREATE just made? */
bool nfsb_fresh_file(const struct stat *st);
ssize_t nfsb_readlink(struct vfs_mount *vm, const char *path, char *buf,
		      size_t size);
int nfsb_mknod(struct vfs_mount *vm, const char *path, mode_t mode, dev_t rdev,
	       const struct vfs_cred *cred, struct stat *st);
int nfsb_mkdir(struct vfs_mount *vm, const char *path, mode_t mode,
	       const struct vfs_cred *cred, struct stat *st);
int nfsb_symlink(struct vfs_mount *vm, const char *target, const char *path,
		 const struct vfs_cred *cred, struct stat *st);
int nfsb_link(struct vfs_mount *vm, const char *from, const char *to,
	      struct stat *st);
int nfsb_unlink(struct vfs_mount *vm, const char *path);
int nfsb_rmdir(struct vfs_mount *vm, const char *path);
int nfsb_rename(struct vfs_mount *vm, const char *from, const char *to,
		unsigned flags);

/* ---- dir.c ---------------------------------------------------------- */

int nfsb_opendir(struct vfs_mount *vm, const char *path, struct vfs_dir **out);
int nfsb_readdir(struct vfs_mount *vm, struct vfs_dir *d, off_t off,
		 vfs_fill_fn fill, void *ctx);
void nfsb_releasedir(struct vfs_mount *vm, struct vfs_dir *d);

/* ---- file.c --------------------------------------------------------- */

/* Drop what the cache has of nf's current name. */
void nfsb_invalidate_file(struct nfsb_file *nf);
/* nf was closed by a descriptor (FLUSH) and not used since, or not. */
void nfsb_set_flushed(struct nfsb_file *nf, bool flushed);
/* Open files at `from` or below it are now at `to`; open_lock held. */
void nfsb_moved_locked(struct nfsb_mount *m, const char *from, const char *to,
		       bool silly);
/* If `full` is open here, rename it to a hidden name: 1, 0 if it is not
 * open, or -errno. */
int nfsb_silly_rename(struct nfsb_mount *m, const char *full);
int nfsb_create(struct vfs_mount *vm, const char *path, int flags, mode_t mode,
		const struct vfs_cred *cred, struct vfs_file **out,
		struct stat *st);
int nfsb_open(struct vfs_mount *vm, const char *path, int flags,
	      struct vfs_file **out);
int nfsb_flush(struct vfs_file *f);
int nfsb_fsync(struct vfs_file *f, bool datasync);
int nfsb_release(struct vfs_file *f);

/* ---- io.c ----------------------------------------------------------- */

ssize_t nfsb_read(struct vfs_file *f, void *buf, size_t size, off_t off);
ssize_t nfsb_write(struct vfs_file *f, const void *buf, size_t size, off_t off);
/* Sticky error of `nf` (a lost write-behind job or COMMIT), cleared: a
 * write's or fsync's, reported once. */
int nfsb_take_err(struct nfsb_file *nf);
/* The same for a flush (close(2) of one descriptor), left in place: the
 * file description may have other descriptors, a forked child's say, and
 * the close of one must not take the error from the owner's fsync or
 * close (the kernel's errseq rule: flush reports, fsync consumes). */
int nfsb_flush_err(struct nfsb_file *nf);
/* Start the WRITE of one chunk on op's context; `stable` is 0, 1 or 2
 * (UNSTABLE, DATA_SYNC, FILE_SYNC).  Non-zero if it could not be queued. */
int nfsb_start_write(struct nfsb_op *op, struct nfsb_file *nf,
		     struct nfsb_chunk *c, int stable);
/* A WRITE reply for chunk c: `count` bytes written, UNSTABLE or not, the
 * server's write verifier (compared with that of the file's uncommitted
 * data). */
void nfsb_note_write(struct nfsb_chunk *c, size_t count, bool unstable,
		     const char *verf);
/* A READ of chunk c was answered with `len` bytes, more than it asked:
 * logged once per mount (the request fails with EIO). */
void nfsb_read_overrun(const struct nfsb_chunk *c, size_t len);

/* ---- wb.c ----------------------------------------------------------- */

/* Start the mount's writer thread.  0 or -errno. */
int nfsb_wb_init(struct nfsb_mount *m);
/* Send what is queued, wait for it, stop the thread. */
void nfsb_wb_stop(struct nfsb_mount *m);
/* Queue an ordinary (not O_DIRECT/O_SYNC/O_DSYNC) write; returns size at
 * once, or -ENOMEM.  Its failure shows up as nf's sticky error
 * (nfsb_take_err). */
ssize_t nfsb_wb_write(struct nfsb_file *nf, const void *buf, size_t size,
		      off_t off);
/* Wait until nf's queued writes are done (nfsb_take_err tells how). */
void nfsb_wb_drain(struct nfsb_file *nf);
/* The same for every file open at `full`. */
void nfsb_wb_drain_path(struct nfsb_mount *m, const char *full);
/* Both: nf's own queue, then that of every handle of the same file. */
void nfsb_wb_drain_file(struct nfsb_file *nf);

/* ---- wire.c -------------------------------------------------------- */

/* A wire that sends AUTH_SYS uid/gid; not connected until its first
 * request.  NULL: out of memory.  The caller owns it (nfsb_wire_free). */
struct nfsb_wire *nfsb_wire_new(uint32_t uid, uint32_t gid);
void nfsb_wire_free(struct nfsb_wire *wi);
/*
 * Queue PUTFH(nf) + WRITE of chunk c (its data is sent from c->buf, which
 * must live until the request completes), connecting first (by `deadline`)
 * to the peer of the libnfs context's socket ctx_fd if not connected.  The
 * reply completes c like nfsb_cb_write4 (nfsb_note_write, then
 * nfsb_wait_done(c->w)); a request the connection lost completes with
 * -EFAULT, and one no connection could be made for with -ENOTCONN, at
 * once (both transport errors; not queued if the connection was not made
 * by `deadline`).  If send_by > 0, no byte of it leaves
 * once that time has passed: its caller, whose deadline it is, then gives
 * it up with nfsb_wire_reset.  Non-zero if it could not be queued (out of
 * memory: no completion comes).
 */
int nfsb_wire_write(struct nfsb_wire *wi, int ctx_fd, double deadline,
		    double send_by, const struct nfsb_file *nf,
		    struct nfsb_chunk *c, int stable);
/* The same for a READ (v3, or PUTFH + READ for v4) of chunk c of the file
 * with handle fh, connecting to `peer` (from a port below 1024 if `low`):
 * the data is received straight into c->buf; the reply sets c->got and
 * c->eof (a reply with more than c->want fails the request with -EIO,
 * nfsb_read_overrun). */
int nfsb_wire_read(struct nfsb_wire *wi, const struct sockaddr_storage *peer,
		   bool low, double deadline, int version, const char *fh,
		   u_int fh_len, struct nfsb_chunk *c);
/* Where the libnfs context's socket ctx_fd is connected, and whether from
 * a port below 1024.  0 or -ENOTCONN. */
int nfsb_wire_peer(int ctx_fd, struct sockaddr_storage *peer, bool *low);
/* Requests are pending: poll nfsb_wire_fd for nfsb_wire_events and pass
 * the result to nfsb_wire_service (< 0: the connection failed; reset it). */
bool nfsb_wire_busy(const struct nfsb_wire *wi);
int nfsb_wire_fd(const struct nfsb_wire *wi);
short nfsb_wire_events(const struct nfsb_wire *wi);
int nfsb_wire_service(struct nfsb_wire *wi, short revents);
/* Close the connection with a reset (no queued byte leaves after) and
 * complete every pending request with -EFAULT, now: their chunks must
 * still be alive. */
void nfsb_wire_reset(struct nfsb_wire *wi);
/* For the fuzz target (fuzz/fuzz_nfs_reply.c): the xid of the next
 * request, and bytes taken in as if received on the connection (what
 * nfsb_wire_service does with them: 0, or -EPROTO for a broken stream). */
void nfsb_wire_test_xid(struct nfsb_wire *wi, uint32_t xid);
int nfsb_wire_feed(struct nfsb_wire *wi, const void *p, size_t n);

/* ---- xdr.c --------------------------------------------------------- */

/* A reader of XDR data that cannot run past its end. */
struct nfsb_xdr_in {
	const unsigned char *p;
	size_t left;
	bool short_; /* ran out: the values read are zeros */
};

/* The next n bytes, or NULL (and short_) if fewer are left. */
const unsigned char *nfsb_xdr_take(struct nfsb_xdr_in *in, size_t n);
uint32_t nfsb_xdr_get_u32(struct nfsb_xdr_in *in);
uint64_t nfsb_xdr_get_u64(struct nfsb_xdr_in *in);
/* An opaque's n bytes and their padding to 4: its start, or NULL. */
const unsigned char *nfsb_xdr_skip(struct nfsb_xdr_in *in, size_t n);

/* ---- v4.c ---------------------------------------------------------- */

void nfsb_v4_fattr(const struct vfs_setattr *sa, uint32_t bm[2], char *buf,
		   fattr4 *fa);
void nfsb_cb_compound4(struct rpc_context *rpc, int status, void *data,
		       void *priv);
int nfsb_v4_compound(struct nfsb_mount *m, const char *full, nfs_argop4 *tail,
		     component4 *last_name, rpc_cb cb, void *req);
/* READLINK of `full`: *target is malloc'd.  0 or -errno. */
int nfsb_v4_readlink(struct nfsb_mount *m, const char *full, char **target);
/* What the server says of the export at `full` (NFSv4 maxname, maxread,
 * maxwrite; 0 where it says nothing: libnfs 4.0.0 asks for none of them,
 * and reports no read or write size).  0 or -errno. */
struct nfsb_v4_limits {
	unsigned long maxname;
	uint64_t maxread, maxwrite;
};
int nfsb_v4_limits(struct nfsb_mount *m, const char *full,
		   struct nfsb_v4_limits *out);
int nfsb_v4_setattr(struct nfsb_mount *m, const char *full,
		    const struct vfs_setattr *sa);
int nfsb_v4_mknod(struct nfsb_mount *m, const char *full, mode_t mode,
		  dev_t rdev);
int nfsb_v4_fhop(struct nfsb_op *op, const struct nfsb_file *nf,
		 const nfs_argop4 *tail, rpc_cb cb, void *priv);
int nfsb_v4_res(int status, void *data, nfs_resop4 *out);
/* Queue PUTFH + GETATTR: the attributes of the file nf has open, whatever
 * its names are now, into r->st; completes r->w.  Non-zero if it could
 * not be queued. */
int nfsb_v4_start_fstat(struct nfsb_op *op, const struct nfsb_file *nf,
			struct nfsb_statreq *r);

#endif /* VFSD_BACKENDS_NFS_INTERNAL_H */
