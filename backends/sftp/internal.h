/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * internal.h - private declarations shared by the SFTP backend's files
 * in backends/sftp/:
 *
 *   sftp.c        options, mount and unmount, statfs, the ops table
 *   attr.c        attributes: getattr, setattr, fgetattr
 *   namespace.c   readlink, mknod, mkdir, symlink, unlink, rmdir, rename,
 *                 clone
 *   dir.c         directory listings
 *   file.c        open files: create, open, flush, fsync, release
 *   io.c          read and write, read-ahead, I/O on any connection
 *   session.c     one SSH session: TCP connect, handshake, SFTP
 *                 subsystem, its allocation arena, deferred closes
 *   known_hosts.c host key verification (strict or accept-new)
 *   auth.c        authentication: agent, identity files, password
 *   errors.c      libssh2 results and SFTP status codes to -errno, and
 *                 the errno a FAILURE stands for (sftp_explain*)
 *   pool.c        the connection pool, reconnection and keepalive
 *   ctr.c         AES-128-CTR for libssh2, its keystream made in bulk
 *   exec.c        commands run on the server (remote_exec = yes)
 *   wb.c          write-behind: the sender of the core (remote/wb.h)
 *
 * Only backends/sftp/ and the unit test (tests/test_sftp_unit.c) use
 * these declarations; the rest of vfsd sees sftp_ops alone.
 *
 * Threading model: FUSE worker threads call the ops synchronously.  A
 * libssh2 session may only be used by one thread at a time, so a thread
 * "checks out" a connection from the mount's pool for the whole of one
 * call and checks it back in afterwards.  Sessions run in blocking mode
 * with libssh2_session_set_timeout(), so every library call returns within
 * the mount's timeout; two places switch to non-blocking mode briefly to
 * have a second request on the wire before waiting for the first
 * (sftp_close_deferred, and sftp_open_lstat in file.c).
 *
 * Lock order (outer first): sftp_file.lock → sftp_pool.lock →
 * sftp_cache.lock; sftp_file.lock → the write-behind core's lock (taken
 * inside remote_wb_* calls; drains are never called with sftp_file.lock
 * held, since the senders take it).  A checked-out connection is not a lock in
 * this sense: no pool or cache lock is held while talking to the server.
 */
#ifndef VFSD_BACKENDS_SFTP_INTERNAL_H
#define VFSD_BACKENDS_SFTP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "backends/backend.h"
#include "backends/remote/cache.h"
#include "backends/remote/pool.h"
#include "backends/remote/slots.h"
#include "backends/remote/wb.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/path.h"

extern const struct vfs_backend_ops sftp_ops;

/* ---- Configuration (from the option spec, fixed after mount) -------- */

enum sftp_hostkey_policy { SFTP_HOSTKEY_STRICT, SFTP_HOSTKEY_ACCEPT_NEW };

struct sftp_config {
	char *display; /* URL for messages, no secrets (owned) */
	char *host;    /* owned */
	int port;
	char *user;        /* owned */
	char *root;        /* remote directory the mount shows (owned) */
	char *identity;    /* explicit identity file or NULL (owned) */
	char *known_hosts; /* expanded path (owned) */
	char *password;    /* secret: never logged (owned, wiped) */
	enum sftp_hostkey_policy hostkey;
	int connections;
	int timeout_ms;
	int keepalive_s; /* 0 = off */
	int cache_ttl_s;
	bool remote_exec; /* commands may run on the server */
	bool write_behind;
};

/* ---- Connections ---------------------------------------------------- */

/*
 * Every allocation libssh2 makes for one session is linked into that
 * session's arena.  When a session dies mid-request libssh2 1.10 cannot
 * always release what it holds (an SFTP handle whose FXP_CLOSE cannot be
 * sent stays allocated, for one); freeing the arena after
 * libssh2_session_free() makes discarding a broken session leak-free.
 * Only the thread that has the connection checked out allocates from it.
 */
struct sftp_arena {
	struct sftp_arena_hdr *head;
	size_t count;
	/* libssh2 hands its callbacks only this "abstract" pointer, so the
	 * keyboard-interactive callback finds the password here (set only
	 * for the duration of that call) */
	const char *password;
};

#define SFTP_MAX_CLOSING 64

struct sftp_conn {
	int idx;      /* slot in the pool (backends/remote/slots.h) */
	unsigned gen; /* the slot's generation (its session's) while
		       * checked out: file handles are of one session */
	/* owned by whoever has the slot busy */
	int sock;
	LIBSSH2_SESSION *ssh;
	LIBSSH2_SFTP *sftp;
	struct sftp_arena arena;
	/* handles whose FXP_CLOSE is sent but not yet answered (see
	 * sftp_close_deferred); they die with the session */
	LIBSSH2_SFTP_HANDLE *closing[SFTP_MAX_CLOSING];
	int nclosing;
	bool broken;             /* set by sftp_err() on a transport error */
	bool timed_out;          /* ... which was the server not answering */
	bool fenced;             /* checked out under a caller's deadline
				  * (backends/callctx.h): shorter timeout */
	struct timespec last_io; /* for keepalives */
};

/*
 * The pool is the remote core's (backends/remote/slots.h), with sftp's
 * options: a maintenance thread connects, the least loaded session is
 * picked, a failure of one session fails all of its epoch, files are
 * pinned to a session.  Slot i's connection is &conns[i] while it has a
 * session.
 */
struct sftp_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* a slot became idle/up, or state changed */
	struct sftp_conn *conns; /* [n], each used by whoever has slot i */
	int n;
	struct remote_pool rp;  /* state, backoff; protected by lock */
	struct remote_slots ss; /* protected by lock */
	pthread_t maint;
	bool maint_started;
};

/* Server features probed at mount. */
struct sftp_features {
	bool fsync;   /* fsync@openssh.com */
	bool statvfs; /* statvfs@openssh.com */
};

struct remote_cache;
struct sftp_file;

struct sftp_mount {
	struct vfs_mount base; /* first: the router sees this */
	struct sftp_config cfg;
	struct sftp_pool pool;
	struct sftp_features feat;
	/* longest name component the server takes (statvfs f_namemax,
	 * else NAME_MAX); fixed after mount */
	size_t name_max;
	int ra_buffers; /* read-ahead buffers in use (atomic) */
	struct remote_cache *cache;
	struct remote_wb *wb;       /* NULL: write_behind = no */
	pthread_mutex_t files_lock; /* a leaf lock */
	struct sftp_file *files;    /* open files, protected by files_lock */
	struct log_ratelimit rl;    /* data-path warnings */
};

static inline struct sftp_mount *sftp_mount_of(struct vfs_mount *m)
{
	return (struct sftp_mount *)m;
}

/* An open file. */
struct sftp_file {
	struct vfs_file base; /* first: the router sees this */
	pthread_mutex_t lock; /* serialises calls on this handle */
	char *path;           /* mount-relative (owned) */
	char *rpath;          /* remote (owned) */
	unsigned long fxf;    /* LIBSSH2_FXF_* to reopen with */
	/* the remote handle and the session it belongs to; idx < 0: none */
	LIBSSH2_SFTP_HANDLE *h;
	int idx;
	unsigned gen;
	bool need_seek; /* libssh2's pipeline state is unknown */
	/* write-behind: jobs pending, and the sticky error of a write that
	 * may have been lost (its next write fails, flush/fsync take it) */
	struct remote_wb_file wbf;
	/* read-ahead: ra[0..ra_len) holds the file from ra_off; ra_eof says
	 * the file ended there.  next_off is where the last read ended. */
	char *ra;
	size_t ra_len;
	off_t ra_off;
	bool ra_eof;
	off_t next_off;
	/*
	 * More handles of the file, one per pooled connection (xh[idx],
	 * valid while the slot's generation is still xh[idx].gen), for I/O
	 * that need not go through the handle above: O_DIRECT requests and
	 * the writer threads' writes run on any idle connection at once
	 * instead of queueing on f->lock.  xlock guards the table; a handle
	 * is used only by whoever has its connection checked out.
	 */
	pthread_mutex_t xlock;
	struct sftp_xh {
		LIBSSH2_SFTP_HANDLE *h;
		unsigned gen;
	} * xh;
	/* the mount's open files, under sm->files_lock; `moved`: renamed
	 * or unlinked through this mount since it was opened, so its path
	 * may name another file now and no more handles are opened by it */
	struct sftp_file *next, **pprev;
	bool moved;
};

static inline struct sftp_file *sftp_file_of(struct vfs_file *f)
{
	return (struct sftp_file *)f;
}

/* ---- sftp.c ------------------------------------------------------ */

/*
 * The remote path of a mount-relative one, in *out (a new string): 0,
 * -ENOMEM or -ENAMETOOLONG (see there).
 */
int sftp_rpath(struct sftp_mount *sm, const char *path, char **out);
/* Check c back in after an idempotent call; true when the call should run
 * once more (on a fresh session after a broken one). */
bool sftp_checkin_retry(struct sftp_mount *sm, struct sftp_conn *c, int rc,
			int *tries);

/* ---- attr.c ------------------------------------------------------ */

/* Does a carry every attribute a struct stat needs? */
bool sftp_attr_full(const LIBSSH2_SFTP_ATTRIBUTES *a);
/* a (of the object at mount-relative path) as a struct stat. */
void sftp_attr_to_stat(const LIBSSH2_SFTP_ATTRIBUTES *a, const char *path,
		       struct stat *st);
/* lstat over an already checked-out connection.  0 or -errno. */
int sftp_lstat_conn(struct sftp_conn *c, const char *rpath, const char *path,
		    struct stat *st);
int sftp_getattr(struct vfs_mount *m, const char *path, struct stat *st);
int sftp_setattr(struct vfs_mount *m, const char *path, struct vfs_file *vf,
		 const struct vfs_setattr *sa, struct stat *st);
int sftp_fgetattr(struct vfs_file *vf, struct stat *st);

/* ---- errors.c: the errno the server could not name ---------------- */

/* sftp_err() for the libssh2 1.10 calls whose SFTP status is garbage. */
int sftp_err_nostatus(struct sftp_conn *c, int rc);
/* FAILURE or NO_SUCH_FILE (rc) named by what is at rpath now: if_exists,
 * if_dir or if_notdir (0: no opinion), else rc. */
int sftp_explain(struct sftp_conn *c, const char *rpath, int rc, int if_exists,
		 int if_dir, int if_notdir);
/* -EROFS for a FAILURE (rc) on a read-only server file system, else rc. */
int sftp_explain_rofs(struct sftp_mount *sm, struct sftp_conn *c,
		      const char *rpath, int rc);
/* The errno of a failed write or size change (EROFS, ENOSPC, EFBIG), else
 * rc. */
int sftp_explain_size(struct sftp_mount *sm, struct sftp_conn *c,
		      const char *rpath, uint64_t old, uint64_t end,
		      size_t need, int rc);

/* ---- namespace.c ------------------------------------------------- */

/* Give an object we just created its owner and mode (see there).  0, or
 * the chown's error (the caller removes the object). */
int sftp_finish_new(struct sftp_mount *sm, struct sftp_conn *c,
		    LIBSSH2_SFTP_HANDLE *h, const char *rpath, const char *path,
		    mode_t mode, const struct vfs_cred *cred, struct stat *st);
ssize_t sftp_readlink(struct vfs_mount *m, const char *path, char *buf,
		      size_t size);
int sftp_mknod(struct vfs_mount *m, const char *path, mode_t mode, dev_t rdev,
	       const struct vfs_cred *cred, struct stat *st);
int sftp_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
	       const struct vfs_cred *cred, struct stat *st);
int sftp_symlink(struct vfs_mount *m, const char *target, const char *path,
		 const struct vfs_cred *cred, struct stat *st);
int sftp_unlink(struct vfs_mount *m, const char *path);
int sftp_rmdir(struct vfs_mount *m, const char *path);
int sftp_rename(struct vfs_mount *m, const char *from, const char *to,
		unsigned flags);
int sftp_clone(struct vfs_mount *m, const char *from, const char *to,
	       struct vfs_error *err);

/* ---- dir.c ------------------------------------------------------- */

int sftp_opendir(struct vfs_mount *m, const char *path, struct vfs_dir **out);
int sftp_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
		 vfs_fill_fn fill, void *ctx);
void sftp_releasedir(struct vfs_mount *m, struct vfs_dir *d);

/* ---- file.c ------------------------------------------------------ */

/* Files open at `path` or below it no longer have it for a name. */
void sftp_files_moved(struct sftp_mount *sm, const char *path);
/* Check out the connection f's handle lives on, reopening it by path if
 * its session is gone.  Called with f->lock held.  0 or -errno. */
int sftp_file_begin(struct sftp_mount *sm, struct sftp_file *f,
		    struct sftp_conn **out);
int sftp_create(struct vfs_mount *m, const char *path, int flags, mode_t mode,
		const struct vfs_cred *cred, struct vfs_file **out,
		struct stat *st);
int sftp_open(struct vfs_mount *m, const char *path, int flags,
	      struct vfs_file **out);
int sftp_flush(struct vfs_file *vf);
int sftp_fsync(struct vfs_file *vf, bool datasync);
int sftp_release(struct vfs_file *vf);

/* ---- io.c -------------------------------------------------------- */

ssize_t sftp_read(struct vfs_file *vf, void *buf, size_t size, off_t off);
ssize_t sftp_write(struct vfs_file *vf, const void *buf, size_t size,
		   off_t off);
/* The sender threads' half of write-behind (remote_wb_ops.send, wb.c):
 * write synchronously on any connection; 0 or -errno. */
int sftp_write_behind(struct sftp_mount *sm, struct sftp_file *f,
		      const char *buf, size_t size, off_t off);

/* ---- session.c ------------------------------------------------- */

/*
 * Open one session for the mount: TCP connect, handshake, host key check,
 * authentication, SFTP subsystem.  Fills c->sock/ssh/sftp.  On failure
 * returns -errno with *err describing it (naming cfg->display).
 */
int sftp_conn_open(struct sftp_mount *sm, struct sftp_conn *c,
		   struct vfs_error *err);
/* Tear a session down; `graceful` sends a disconnect, else the socket is
 * shut down first so nothing can block. */
void sftp_conn_close(struct sftp_conn *c, bool graceful);

/* libssh2's allocator for c->arena; also for what libssh2 frees itself
 * (keyboard-interactive answers). */
LIBSSH2_ALLOC_FUNC(sftp_arena_alloc);

/*
 * Close a handle without waiting for the server's answer (a round trip
 * saved on every close); the answer is collected by a later
 * sftp_close_reap() on the same connection.  Returns 0 or -errno.
 */
int sftp_close_deferred(struct sftp_conn *c, LIBSSH2_SFTP_HANDLE *h);
/* Collect answers to deferred closes that have arrived; wait: all. */
void sftp_close_reap(struct sftp_conn *c, bool wait);

/* ---- errors.c ---------------------------------------------------- */

/*
 * The one mapping from libssh2 results to -errno.  `rc` is a libssh2
 * return code (LIBSSH2_ERROR_*, < 0).  SFTP status errors use the
 * session's last SFTP status; transport errors mark c broken.
 */
int sftp_err(struct sftp_conn *c, int rc);
/* SFTP status (LIBSSH2_FX_*) → -errno; exported for the unit test. */
int sftp_status_errno(unsigned long status);
/* LIBSSH2_ERROR_* other than SFTP_PROTOCOL → -errno; *transport says
 * whether the session must be discarded. */
int sftp_libssh2_errno(int rc, bool *transport);

/* ---- known_hosts.c ----------------------------------------------- */

/* Read cfg.known_hosts into kh (a missing file is an empty one).  0 or
 * -errno with *err set. */
int sftp_known_read(struct sftp_mount *sm, LIBSSH2_KNOWNHOSTS *kh,
		    struct vfs_error *err);
/* Before the handshake: ask for a host key type kh has for this host. */
void sftp_known_prefer(struct sftp_mount *sm, LIBSSH2_SESSION *ssh,
		       LIBSSH2_KNOWNHOSTS *kh);
/* After the handshake, before authentication: verify the server's host
 * key under cfg.hostkey (and append it under accept-new).  0 or -errno
 * with *err set. */
int sftp_known_check(struct sftp_mount *sm, LIBSSH2_SESSION *ssh,
		     LIBSSH2_KNOWNHOSTS *kh, struct vfs_error *err);

/* SHA256 fingerprint as OpenSSH prints it ("SHA256:" + unpadded base64)
 * of the 32-byte digest; out needs 52 bytes. */
void sftp_fingerprint_fmt(const unsigned char digest[32], char *out,
			  size_t size);

/* ---- auth.c ------------------------------------------------------- */

/* Authenticate c's session as cfg.user.  0 or -errno with *err naming
 * every method tried. */
int sftp_auth(struct sftp_mount *sm, struct sftp_conn *c,
	      struct vfs_error *err);

/* ---- pool.c ------------------------------------------------------- */

/* Allocate the pool's slots (cfg.connections) and set up the core's
 * (backends/remote/slots.h) with sftp's options.  0 or -ENOMEM. */
int sftp_pool_init(struct sftp_mount *sm);
/* Slot 0 holds an open session: mark it up and start the maintenance
 * thread, which opens the other slots in the background.  0 or -errno. */
int sftp_pool_start(struct sftp_mount *sm);
/* Stop the maintenance thread and close every session (no op in flight).
 * Safe after a failed or partial init. */
void sftp_pool_destroy(struct sftp_mount *sm);

/*
 * Check out a connection.  want < 0: any idle one (least loaded);
 * want >= 0: that slot, but only while its generation is still `gen`,
 * else -ESTALE (the caller reopens its handle elsewhere).  Waits at most
 * the mount's timeout; fails fast (-EIO) while the mount is down.
 */
int sftp_checkout(struct sftp_mount *sm, int want, unsigned gen,
		  struct sftp_conn **out);
/* Give a connection back (reaping deferred closes); a connection marked
 * broken is discarded and the pool starts reconnecting. */
void sftp_checkin(struct sftp_mount *sm, struct sftp_conn *c);
/* Give a connection back to be closed, though the server is fine: its
 * session is out of step (io.c, sftp_write_refused).  The maintenance
 * thread opens a new one in its slot. */
void sftp_checkin_discard(struct sftp_mount *sm, struct sftp_conn *c);
/* Slot c (reserved busy, not up) holds a newly opened session: marks it
 * up, counts a reconnect where one is due, and the mount is connected.
 * Called with the pool lock held (by the maintenance thread). */
void sftp_pool_opened_locked(struct sftp_mount *sm, struct sftp_conn *c);
/* Account an open file handle on slot idx (delta +1/-1): the pick
 * prefers the session with the fewest. */
void sftp_pool_count_file(struct sftp_mount *sm, int idx, int delta);
const char *sftp_pool_state(struct sftp_mount *sm);
/* Whether slot idx holds a session (tests). */
bool sftp_pool_up(struct sftp_mount *sm, int idx);

/* ---- exec.c ---------------------------------------------------- */

/*
 * Copy the remote regular file `from` to the new remote path `to` on the
 * server (GNU cp: reflink where possible, holes kept), over an SSH exec
 * channel of a session of its own.  0, -EOPNOTSUPP when the server has
 * no GNU cp, or -errno; *err says what failed.  `to` never exists
 * afterwards unless the copy succeeded.
 */
int sftp_exec_clone(struct sftp_mount *sm, const char *from, const char *to,
		    struct vfs_error *err);

/* ---- wb.c ------------------------------------------------------ */

/* Start write-behind (sm->wb) over the core (backends/remote/wb.h):
 * sender threads calling sftp_write_behind.  0 or -errno. */
int sftp_wb_start(struct sftp_mount *sm);

/*
 * ctr.c: the AES-128-CTR cipher with its keystream made in bulk, which
 * libssh2 gets from EVP_aes_128_ctr() once engaged.
 *
 * sftp_ctr_engage() runs the run-time checks once per process (libssh2
 * built on OpenSSL, the same libcrypto as vfsd, our symbol the one it
 * resolves) and logs once whether the cipher is engaged and, if not, why.
 * Call it before a handshake.  True if engaged; always false when built
 * with -Dbulk_ctr=false (VFSD_BULK_CTR 0), which leaves the rest out.
 */
bool sftp_ctr_engage(void);
#if VFSD_BULK_CTR
/* The cipher (made at the first call), engaged or not; NULL if it could
 * not be made. */
struct evp_cipher_st;
const struct evp_cipher_st *sftp_ctr_cipher(void);
/*
 * Whether the checks pass, given EVP_aes_128_ctr as libssh2's libraries
 * resolve it (`theirs`, NULL if they do not), as vfsd's OpenSSL calls do
 * (`vfsds`) and as libssh2's reference would bind (`seen`); if not, the
 * reason in `why`.
 */
bool sftp_ctr_check(const void *theirs, const void *vfsds, const void *seen,
		    char *why, size_t size);
/* For the unit tests: the next bulk-context allocation, keying of it or
 * keystream refill fails, once per bit set; 0 otherwise. */
#define SFTP_CTR_FAIL_ALLOC  1u
#define SFTP_CTR_FAIL_KEY    2u
#define SFTP_CTR_FAIL_REFILL 4u
extern unsigned int sftp_ctr_test_faults;
#endif

#endif /* VFSD_BACKENDS_SFTP_INTERNAL_H */
