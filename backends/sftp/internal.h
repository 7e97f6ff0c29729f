/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * internal.h - private declarations shared by the SFTP backend's files
 * in backends/sftp/:
 *
 *   sftp.c        options, mount and unmount, statfs, the ops table
 *   attr.c        attributes: getattr, setattr, fgetattr
 *   namespace.c   readlink, mknod, mkdir, symlink, link, unlink, rmdir,
 *                 rename, clone
 *   dir.c         directory listings
 *   file.c        open files: create, open, flush, fsync, release
 *   io.c          read and write, read-ahead, I/O on any connection
 *   req.c         the requests, one function each, over the engine
 *   chan.c        the engine: one channel, its loop thread (chan.h)
 *   proto.c       SFTP v3 packets (proto.h)
 *   session.c     one SSH session: TCP connect, handshake, the engine's
 *                 channel, its allocation arena
 *   known_hosts.c host key verification (strict or accept-new)
 *   auth.c        authentication: agent, identity files, password
 *   errors.c      SFTP status codes and libssh2 results to -errno, and
 *                 the errno a FAILURE stands for (sftp_explain*)
 *   pool.c        the connection pool, reconnection
 *   ctr.c         AES-128-CTR for libssh2, its keystream made in bulk
 *   exec.c        commands run on the server (remote_exec = yes)
 *   wb.c          write-behind: the sender of the core (remote/wb.h)
 *
 * Only backends/sftp/ and the unit tests (tests/test_sftp_unit.c,
 * test_sftp_proto.c) use these declarations; the rest of vfsd sees
 * sftp_ops alone.
 *
 * Threading model: FUSE worker threads call the ops synchronously.  libssh2
 * speaks SSH (transport, keys, authentication); SFTP is our own engine
 * (chan.h): each session's channel is driven by its loop thread, and any
 * number of callers put requests on it at once.  A call "checks out" a
 * session from the pool (shared: it only counts the call), sends its
 * requests, waits for the answers within the call's deadline and checks
 * the session back in, saying what it learnt of it.
 *
 * Lock order (outer first): sftp_file.lock → sftp_pool.lock →
 * sftp_cache.lock; sftp_file.lock → the write-behind core's lock (taken
 * inside remote_wb_* calls; drains are never called with sftp_file.lock
 * held, since the senders take it).  A checked-out session is not a lock in
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

#include "backends/backend.h"
#include "backends/remote/cache.h"
#include "backends/remote/pool.h"
#include "backends/remote/slots.h"
#include "backends/remote/wb.h"
#include "backends/sftp/chan.h"
#include "backends/sftp/proto.h"
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
	bool cache_names; /* listed directories answer for absent names */
	bool write_behind;
	uint64_t readahead_bytes; /* vfs_mount.readahead_bytes */
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

/* A handle the server gave (opaque bytes). */
struct sftp_handle {
	uint16_t len; /* 0: none */
	char h[SFTP_MAX_HANDLE];
};

/* One SSH session of the pool (slot idx): its socket, its libssh2
 * session and the engine's channel on it (chan.h), which owns the session
 * while it runs.  Owned by the slot; opened by the maintenance thread. */
struct sftp_sess {
	int idx;
	int sock;
	LIBSSH2_SESSION *ssh;
	struct sftp_chan *chan;
	struct sftp_arena arena;
	bool failed; /* closed for a failure: no goodbye */
};

/*
 * One call's checkout of a session (on the caller's stack): what the call
 * learns of the session on the way.  Many calls have one session checked
 * out at once; their requests share its channel.
 */
struct sftp_conn {
	struct sftp_mount *sm;
	struct sftp_sess *s;
	struct sftp_chan *chan;
	int idx;         /* the slot */
	unsigned gen;    /* the slot's generation: handles are of one
			  * session */
	double deadline; /* of the call (vfs_mono_s) */
	bool fenced;     /* the deadline is the caller's, sooner than the
			  * mount's timeout (backends/callctx.h): a miss
			  * abandons the request, not the session */
	bool broken;     /* a transport error: the session goes */
	bool timed_out;  /* ... the server did not answer in time */
	bool cancelled;  /* ... a write missed the caller's deadline and
			  * the session was cut to stop it */
	bool answered;   /* a reply came */
	bool packed;     /* checked out by sftp_checkout_data() */
	uint32_t status; /* the last STATUS code */
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
	pthread_cond_t cond;    /* a slot became idle/up, or state changed */
	struct sftp_sess *sess; /* [n]: slot i's session */
	int n;
	struct remote_pool rp;  /* state, backoff; protected by lock */
	struct remote_slots ss; /* protected by lock */
	pthread_t maint;
	bool maint_started;
};

/* Server features probed at mount. */
struct sftp_features {
	bool fsync;        /* fsync@openssh.com */
	bool statvfs;      /* statvfs@openssh.com */
	bool hardlink;     /* hardlink@openssh.com */
	bool lsetstat;     /* lsetstat@openssh.com */
	bool posix_rename; /* posix-rename@openssh.com */
	bool copy_data;    /* copy-data */
	bool limits;       /* limits@openssh.com */
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
	struct sftp_links *links;   /* links.c */
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
	uint32_t fxf;         /* SFTP_FXF_* to reopen with */
	/* the remote handle and the session it belongs to; idx < 0: none */
	struct sftp_handle h;
	int idx;
	unsigned gen;
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
	 * that need not go through the handle above: O_DIRECT requests run
	 * on other connections (sftp_checkout_data) at once instead of
	 * queueing on f->lock.  xlock guards the table; a handle
	 * is used only by whoever has its connection checked out.
	 */
	pthread_mutex_t xlock;
	struct sftp_xh {
		struct sftp_handle h;
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

/* ---- req.c: the requests, one function each ------------------------ */

/*
 * Every function sends one request (or, for reads and writes, a pipeline
 * of them) on c's channel and waits for the answer until c's deadline.
 * Returns 0 (or bytes) or -errno: a STATUS mapped by sftp_status_errno
 * (c->status keeps the code), or a transport failure, which marks c
 * broken (and timed_out when the server did not answer in time).
 */
int sftp_r_stat(struct sftp_conn *c, const char *rpath, bool follow,
		struct sftp_attrs *a);
/* lstat rpath and rpath2 in one round trip: rpath's result returned
 * (attributes in *a), rpath2's in *rc2 (attributes in *a2). */
int sftp_r_lstat_pair(struct sftp_conn *c, const char *rpath,
		      const char *rpath2, struct sftp_attrs *a,
		      struct sftp_attrs *a2, int *rc2);
int sftp_r_fstat(struct sftp_conn *c, const struct sftp_handle *h,
		 struct sftp_attrs *a);
/* SETSTAT; nofollow: lsetstat@openssh.com (-EOPNOTSUPP without it) */
int sftp_r_setstat(struct sftp_conn *c, const char *rpath, bool nofollow,
		   const struct sftp_attrs *a);
int sftp_r_fsetstat(struct sftp_conn *c, const struct sftp_handle *h,
		    const struct sftp_attrs *a);
/* OPEN (pflags SFTP_FXF_*, a: attributes of a new file, may be NULL) */
int sftp_r_open(struct sftp_conn *c, const char *rpath, uint32_t pflags,
		const struct sftp_attrs *a, struct sftp_handle *h);
/* OPEN and LSTAT of the same path in one round trip: the open's result
 * (and *h); the lstat's in *arc (and *a). */
int sftp_r_open_lstat(struct sftp_conn *c, const char *rpath, uint32_t pflags,
		      const struct sftp_attrs *na, struct sftp_handle *h,
		      struct sftp_attrs *a, int *arc);
int sftp_r_opendir(struct sftp_conn *c, const char *rpath,
		   struct sftp_handle *h);
/* READDIR: 0 and *out, a completed request whose NAME reply the caller
 * reads (sftp_parse_reply) and puts; 1 at the end of the listing. */
int sftp_r_readdir(struct sftp_conn *c, const struct sftp_handle *h,
		   struct sftp_req **out);
int sftp_r_close(struct sftp_conn *c, const struct sftp_handle *h);
/* CLOSE without waiting for the answer (the handle is gone either way);
 * 0 or the channel's error. */
int sftp_r_close_async(struct sftp_conn *c, const struct sftp_handle *h);
/* Read up to size bytes at off, in READs of the server's size, all in
 * flight at once: the bytes read (short only at the end of file). */
ssize_t sftp_r_pread(struct sftp_conn *c, const struct sftp_handle *h,
		     char *buf, size_t size, uint64_t off);
/* Write size bytes at off the same way: 0 or -errno (the first failure;
 * *done, if not NULL, says how much of the front is known written). */
int sftp_r_pwrite(struct sftp_conn *c, const struct sftp_handle *h,
		  const char *buf, size_t size, uint64_t off, size_t *done);
int sftp_r_remove(struct sftp_conn *c, const char *rpath);
int sftp_r_mkdir(struct sftp_conn *c, const char *rpath,
		 const struct sftp_attrs *a);
int sftp_r_rmdir(struct sftp_conn *c, const char *rpath);
/* RENAME; posix: posix-rename@openssh.com (replaces the target) */
int sftp_r_rename(struct sftp_conn *c, const char *from, const char *to,
		  bool posix);
/* SYMLINK making link `linkpath` point to target (OpenSSH's order) */
int sftp_r_symlink(struct sftp_conn *c, const char *target,
		   const char *linkpath);
/* READLINK into buf (NUL-terminated if it fits): the target's length */
ssize_t sftp_r_readlink(struct sftp_conn *c, const char *rpath, char *buf,
			size_t size);
/* hardlink@openssh.com: a new name `to` for `from` */
int sftp_r_link(struct sftp_conn *c, const char *from, const char *to);
int sftp_r_statvfs(struct sftp_conn *c, const char *rpath,
		   struct sftp_statvfs *v);
int sftp_r_fsync(struct sftp_conn *c, const struct sftp_handle *h);
/* copy-data: len bytes (0: to the end) from h at off to dh at doff */
int sftp_r_copy_data(struct sftp_conn *c, const struct sftp_handle *h,
		     uint64_t off, uint64_t len, const struct sftp_handle *dh,
		     uint64_t doff);
/* limits@openssh.com */
int sftp_r_limits(struct sftp_conn *c, struct sftp_limits *l);

/* ---- links.c: one inode number for the names of a hard link ------- */

struct sftp_links;
/* An empty table (whose changes drop names from cache, borrowed), or
 * NULL. */
struct sftp_links *sftp_links_new(struct remote_cache *cache);
void sftp_links_free(struct sftp_links *l);
/* link(from, to) succeeded; from_ino: from's number if it has no group. */
void sftp_links_linked(struct sftp_links *l, const char *from, const char *to,
		       ino_t from_ino);
/* path names nothing, or another file, now. */
void sftp_links_gone(struct sftp_links *l, const char *path);
/* from (and what is below it) was renamed to `to`. */
void sftp_links_moved(struct sftp_links *l, const char *from, const char *to);
/* path's group: its inode number and link count, and in *other (if not
 * NULL; a new string or NULL) another name to check it against. */
bool sftp_links_get(struct sftp_links *l, const char *path, ino_t *ino,
		    nlink_t *nlink, char **other);

/* ---- attr.c ------------------------------------------------------ */

/* Does a carry every attribute a struct stat needs? */
bool sftp_attr_full(const struct sftp_attrs *a);
/* a (of the object at mount-relative path) as a struct stat; the inode
 * number and link count of its hard-link group (links.c) if it has one. */
void sftp_attr_to_stat(struct sftp_mount *sm, const struct sftp_attrs *a,
		       const char *path, struct stat *st);
/* lstat over an already checked-out connection.  0 or -errno. */
int sftp_lstat_conn(struct sftp_conn *c, const char *rpath, const char *path,
		    struct stat *st);
int sftp_getattr(struct vfs_mount *m, const char *path, struct stat *st);
int sftp_setattr(struct vfs_mount *m, const char *path, struct vfs_file *vf,
		 const struct vfs_setattr *sa, struct stat *st);
int sftp_fgetattr(struct vfs_file *vf, struct stat *st);

/* ---- errors.c: the errno the server could not name ---------------- */

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
 * the chown's error (the caller removes the object).  h: through that
 * handle, else by path (nofollow: a symlink's own). */
int sftp_finish_new(struct sftp_mount *sm, struct sftp_conn *c,
		    const struct sftp_handle *h, const char *rpath,
		    const char *path, mode_t mode, const struct vfs_cred *cred,
		    struct stat *st);
ssize_t sftp_readlink(struct vfs_mount *m, const char *path, char *buf,
		      size_t size);
int sftp_mknod(struct vfs_mount *m, const char *path, mode_t mode, dev_t rdev,
	       const struct vfs_cred *cred, struct stat *st);
int sftp_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
	       const struct vfs_cred *cred, struct stat *st);
int sftp_symlink(struct vfs_mount *m, const char *target, const char *path,
		 const struct vfs_cred *cred, struct stat *st);
int sftp_link(struct vfs_mount *m, const char *from, const char *to,
	      struct stat *st);
int sftp_unlink(struct vfs_mount *m, const char *path);
int sftp_rmdir(struct vfs_mount *m, const char *path);
int sftp_rename(struct vfs_mount *m, const char *from, const char *to,
		unsigned flags);
int sftp_clone(struct vfs_mount *m, const char *from, const char *to,
	       struct vfs_error *err);
ssize_t sftp_copy_range(struct vfs_file *in, off_t off_in, struct vfs_file *out,
			off_t off_out, size_t len, unsigned flags);

/* ---- dir.c ------------------------------------------------------- */

/* After a burst of lookups in path's directory that found no such name
 * on the server, list the directory into the cache
 * (remote_cache_list_due()): true if it did. */
bool sftp_list_if_due(struct sftp_mount *sm, const char *path);
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
		    struct sftp_conn *c);
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
 * authentication, the engine's channel (chan.h) on the SFTP subsystem,
 * the server's limits.  Fills s.  On failure returns -errno with *err
 * describing it (naming cfg->display).  how: SFTP_SESS_FIRST, the first
 * session of a mount, also records the server's extensions in sm->feat;
 * SFTP_SESS_BARE stops after authentication (no SFTP: exec.c's).
 */
/* bytes in flight per connection that busy files share (vfsd/fair.h) */
#define SFTP_SHARE_BYTES (256u << 10)

#define SFTP_SESS_FIRST 1u
#define SFTP_SESS_BARE  2u
int sftp_sess_open(struct sftp_mount *sm, struct sftp_sess *s, unsigned how,
		   struct vfs_error *err);
/* Tear a session down; `graceful` sends a disconnect, else the socket is
 * shut down first so nothing can block. */
void sftp_sess_close(struct sftp_sess *s, bool graceful);

/* libssh2's allocator for s->arena; also for what libssh2 frees itself
 * (keyboard-interactive answers). */
LIBSSH2_ALLOC_FUNC(sftp_arena_alloc);

/* ---- errors.c ---------------------------------------------------- */

/* SFTP status (SFTP_FX_* and the later drafts' codes) → -errno; exported
 * for the unit test. */
int sftp_status_errno(unsigned long status);
/* LIBSSH2_ERROR_* → -errno (session setup); *transport says whether the
 * session must be discarded. */
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

/* Authenticate s's session as cfg.user.  0 or -errno with *err naming
 * every method tried. */
int sftp_auth(struct sftp_mount *sm, struct sftp_sess *s,
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
 * Check out a session into c (the caller's).  want < 0: the least loaded
 * one; want >= 0: that slot, but only while its generation is still
 * `gen`, else -ESTALE (the caller reopens its handle elsewhere).  Waits
 * at most the mount's timeout; fails fast (-EIO) while the mount is down.
 * Any number of calls have a session out at once.
 */
int sftp_checkout(struct sftp_mount *sm, int want, unsigned gen,
		  struct sftp_conn *c);
/*
 * As sftp_checkout(sm, -1, 0, c), for a read or write of file data that
 * may be one of many in flight (O_DIRECT, a guest's queue): one of at
 * most SFTP_PACK_MAX bytes goes to the session with the most such calls
 * below SFTP_PACK_CALLS that has no other calls out and answers them
 * (remote_slots_get_packed).  sshd decrypts, and hands sftp-server, what
 * arrives together on one session in one go, so a guest's queue of small
 * requests packed on fewer sessions costs the server far less CPU than
 * spread over all (docs/performance.md, "SFTP sessions packed for direct
 * I/O").  Past that many a call goes to the next session: one sftp-server
 * serves its requests one at a time.  Larger calls, whose transfer
 * outweighs the packets' cost, spread over the pool as others do.
 */
#define SFTP_PACK_CALLS 8
#define SFTP_PACK_MAX   (128u * 1024)
int sftp_checkout_data(struct sftp_mount *sm, size_t size, struct sftp_conn *c);
/* Give a session back; one c found broken is discarded (with the others
 * of its epoch) and the pool starts reconnecting. */
void sftp_checkin(struct sftp_mount *sm, struct sftp_conn *c);
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
