/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * backend.h - the contract between the vfsd router and a storage backend.
 *
 * A backend exports exactly one `const struct vfs_backend_ops` table; the
 * list of built-in tables lives in backends/backend.c.  Backends are
 * path-based: they know nothing of FUSE, inode numbers or other mounts.
 *
 * Conventions for every member below:
 *  - Paths are mount-relative, start with '/', are normalised (no "//",
 *    "." or ".." components, no trailing '/'), and "/" is the mount's root.
 *    They are borrowed for the duration of the call.
 *  - int returns are 0 or -errno; ssize_t/off_t returns are a count or
 *    offset, or -errno.  Never a positive errno, never -1 with errno set.
 *  - Calls may block (network I/O) but must return within the mount's
 *    timeout; they run concurrently on FUSE worker threads, so a backend
 *    serialises whatever its library cannot share between threads.
 *  - A NULL member means "not supported": the router gives the one answer
 *    written at the member below.  A backend that discovers at run time
 *    that its server lacks a feature returns -EOPNOTSUPP (never a silent
 *    wrong result).
 *  - Policy (read-only mounts, EXDEV across mounts, permission checks for
 *    access(2)) lives in the router, not here.
 */
#ifndef VFSD_BACKEND_H
#define VFSD_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "lib/error.h"
#include "lib/options.h"
#include "lib/url.h"

/*
 * Capability bits, set by mount() in vfs_mount.caps: what an instance can
 * do that its ops table does not say (a member present is the capability to
 * do that operation; `vfsctl mounts` lists both).  The router reads every
 * one of them.
 */
/* fallocate FALLOC_FL_PUNCH_HOLE: without it the router answers
 * -EOPNOTSUPP itself, without a round trip */
#define VFS_CAP_PUNCH_HOLE   (1u << 0)
/* mknod of FIFOs, sockets and devices (regular files need none): without
 * it the router answers -EOPNOTSUPP itself */
#define VFS_CAP_MKNOD        (1u << 1)
/* rename flags beyond RENAME_NOREPLACE (RENAME_EXCHANGE): without it the
 * router answers -EINVAL itself */
#define VFS_CAP_RENAME_FLAGS (1u << 2)
/* others may change the data: the kernel revalidates on open, locks are
 * cross-host (guestfs/lock.h) */
#define VFS_CAP_SHARED       (1u << 3)
/* fsync reaches stable storage (SFTP: only with fsync@openssh.com);
 * shown in `vfsctl mounts` so that a mount that cannot is known */
#define VFS_CAP_STABLE_FSYNC (1u << 4)
/* host_fd may serve the kernel directly (FUSE passthrough): reads and
 * writes of open files then never reach the backend */
#define VFS_CAP_PASSTHROUGH  (1u << 5)
/* st_ino names one object for as long as it exists, whatever its name (the
 * host file system's, an NFS fileid): every hard link of a file is then one
 * kernel inode (see vfsd/inode.h) */
#define VFS_CAP_STABLE_INO   (1u << 6)
/* creating calls apply vfs_cred.umask themselves, as the file system
 * beneath does (a default ACL on the parent takes its place); without
 * this bit the router hands them mode & ~umask */
#define VFS_CAP_OWN_UMASK    (1u << 7)

struct vfs_backend_ops;

/*
 * Base of a backend's per-mount instance.  A backend embeds it as the first
 * member of its own state and returns a pointer to it from mount(); the
 * router never frees it (unmount() does).
 */
struct vfs_mount {
	const struct vfs_backend_ops *ops;
	uint32_t caps;        /* VFS_CAP_*; a stacking layer's may only
			       * lack VFS_CAP_PASSTHROUGH (its files have no
			       * host fd): the router reads the rest from the
			       * bottom of the stack, as it may change */
	double attr_timeout;  /* seconds the kernel may cache attributes
			       * (and that a name does not exist) */
	double entry_timeout; /* seconds the kernel may cache names */
	/* connections re-established; bumped by the backend with
	 * __atomic_fetch_add(&m->reconnects, 1, __ATOMIC_RELAXED) */
	unsigned long reconnects;
	/* the most write-behind WRITEs the backend had in flight after a
	 * send: alone, and while sharing the server with active callers
	 * (NFS, backends/nfs/wb.c), and the most bytes of them beside
	 * active callers; atomics, for `vfsctl stats` */
	unsigned wb_max, wb_shared_max;
	unsigned long wb_shared_max_bytes;
	/* how much the instance serves at once, for fair sharing between
	 * open files (vfsd/fair.h): requests (NFS: its connections) and
	 * bytes in flight; 0 for no bound of that kind, both 0 when it
	 * queues nothing (local).  Set by mount(). */
	unsigned share_reqs;
	uint64_t share_bytes;
	/* requests a file reading ahead alone on the mount may have in
	 * flight past that capacity, leaving a newcomer room (vfsd/fair.h
	 * fair_enter_ahead); 0: none.  Set by mount(). */
	unsigned share_ahead;
	/* the most bytes of data the router may read ahead of sequential
	 * readers of the instance's files at once (vfsd/router_ra.c); 0:
	 * no read-ahead.  Set by mount(). */
	uint64_t readahead_bytes;
	/* a stacking layer's (fault.h, guestfs/layer.h): the instance it
	 * forwards to and owns; NULL for a backend's own instance.  The
	 * router reads state and counters from the bottom of the stack. */
	struct vfs_mount *lower;
};

/*
 * Base of an open file, embedded first in the backend's own handle.  The
 * backend owns it from open()/create() until release().
 */
struct vfs_file {
	struct vfs_mount *mount;
	int flags;     /* open(2) flags the backend honoured */
	int host_fd;   /* a host fd holding the data (zero-copy), or -1 */
	bool uncached; /* content made up at open (no fixed size): the
			* kernel must not cache it (FOPEN_DIRECT_IO) */
	/* set by the layer above (the image store's, guestfs/layer.c) once
	 * the file carries a cross-host lock: every write must reach the
	 * server before it returns (no write-behind), so that a holder whose
	 * lease runs out has nothing left to send.  Atomic: set by one
	 * worker thread while others write; it only ever goes from false to
	 * true, so a backend reads it once per write and needs no lock.  A
	 * layer forwards it to the file beneath before each write. */
	atomic_bool write_through;
};

/* Who asks: used to give new files the caller's ownership. */
struct vfs_cred {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	/* the caller's umask, not yet applied to a creating call's mode (0
	 * when the kernel applied it already) */
	mode_t umask;
	/* the caller's supplementary groups, borrowed for the call, for a
	 * backend that creates as the caller; ngroups < 0: not known */
	const gid_t *groups;
	int ngroups;
};

/*
 * A byte-range or whole-file lock, as the kernel hands it to a file
 * system: POSIX record locks and OFD locks (VFS_LOCK_POSIX, one owner per
 * process or per open file) and flock(2) (VFS_LOCK_FLOCK, one owner per
 * open file).  Ranges are inclusive; end = INT64_MAX means "to EOF".
 */
enum vfs_lock_kind { VFS_LOCK_POSIX, VFS_LOCK_FLOCK };

struct vfs_lock {
	enum vfs_lock_kind kind;
	short type;       /* F_RDLCK, F_WRLCK or F_UNLCK */
	off_t start, end; /* inclusive */
	uint64_t owner;   /* the kernel's lock owner */
	pid_t pid;        /* getlk: the holder's, 0 for another host's */
};

/* setattr valid mask, as the kernel's iattr.ia_valid. */
#define VFS_SET_MODE      (1u << 0)
#define VFS_SET_UID       (1u << 1)
#define VFS_SET_GID       (1u << 2)
#define VFS_SET_SIZE      (1u << 3)
#define VFS_SET_ATIME     (1u << 4)
#define VFS_SET_MTIME     (1u << 5)
#define VFS_SET_ATIME_NOW (1u << 6)
#define VFS_SET_MTIME_NOW (1u << 7)

struct vfs_setattr {
	unsigned valid;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	off_t size;
	struct timespec atime;
	struct timespec mtime;
};

/* readdir: st is always non-NULL with at least st_ino and the S_IFMT bits
 * of st_mode; VFS_DIRENT_FULL says every field is valid (readdirplus). */
#define VFS_DIRENT_FULL (1u << 0)

/*
 * Called once per entry, in order.  `next` is the offset that resumes the
 * listing after this entry.  A non-zero return means "buffer full, stop":
 * the backend then returns 0 and expects a later readdir from `next`.
 */
typedef int (*vfs_fill_fn)(void *ctx, const char *name, const struct stat *st,
			   unsigned flags, off_t next);

struct vfs_dir; /* backend-private directory stream */

/*
 * Every member is tagged [mandatory] or [optional: answer].  A table
 * without a mandatory member is refused when it is mounted (router_ops.c,
 * router_ops_check: the error names the backend and the member), so the
 * router calls those without a NULL check.  For an optional member left
 * NULL the router gives the answer after the tag, the same for every
 * backend (the table `rops` in vfsd/router_ops.c, documented in
 * docs/architecture.md, "Backend contract"); it never answers ENOSYS,
 * which the kernel would remember for every mount of the daemon at once.
 * A member that exists but finds at run time that its server lacks a
 * feature returns -EOPNOTSUPP.
 *
 * Ownership: paths, names and buffers passed in are borrowed for the call.
 * Objects a call hands out (*out of mount, opendir, open, create) belong
 * to the caller until the matching unmount, releasedir or release, which
 * the router makes exactly once.  `struct stat` results are filled by the
 * backend with its own st_ino; the router mixes its mount id in.
 */
struct vfs_backend_ops {
	const char *name; /* [mandatory] URL scheme: "file", "sftp"... */
	const struct vfs_opt_spec *opts; /* accepted options, NULL-named end;
					  * NULL: none */

	/* ---- Instance ------------------------------------------------ */

	/*
	 * [mandatory for a table in backend_all, reached by URL; an internal
	 * instance is made by its owner and handed to router_add_internal]
	 * Connect/open the backend for `url` with validated `opts` (every key
	 * is in ->opts).  On success store a new instance in *out (owned by
	 * the caller until unmount()) and return 0.  On failure return
	 * -errno and describe the problem in *err, naming the URL (never a
	 * secret).  Runs before FUSE starts and from the control socket.
	 */
	int (*mount)(const struct vfs_url *url, const struct vfs_opts *opts,
		     struct vfs_mount **out, struct vfs_error *err);
	/* [mandatory] Release everything, the instance included.  No call is
	 * in flight and no file or directory stream is open. */
	void (*unmount)(struct vfs_mount *m);
	/* [mandatory] statvfs(3) of the storage holding `path`: 0 or -errno
	 * (the kernel reports its own f_fsid for the FUSE mount). */
	int (*statfs)(struct vfs_mount *m, const char *path,
		      struct statvfs *st);
	/* [optional: "connected"] Connection state for status displays:
	 * "connected", "reconnecting" or "down"; a static string. */
	const char *(*state)(struct vfs_mount *m);

	/* ---- Namespace ----------------------------------------------- */

	/* [mandatory] lstat semantics: never follows a final symlink.
	 * 0 or -errno (-ENOENT for a name that does not exist). */
	int (*getattr)(struct vfs_mount *m, const char *path, struct stat *st);
	/*
	 * [optional: -EPERM] Change the attributes named in sa->valid,
	 * through `f` when the caller has the file open (ftruncate on an
	 * unlinked file), else by path.  With `f`, `path` is only a hint and
	 * may be NULL (the file has no name the caller knows); the change
	 * must reach the open file itself.  Fill *st with the attributes
	 * afterwards.  0 or -errno.
	 */
	int (*setattr)(struct vfs_mount *m, const char *path,
		       struct vfs_file *f, const struct vfs_setattr *sa,
		       struct stat *st);
	/* [optional: -EINVAL, "not a symlink"] Returns the target's length;
	 * buf gets at most size bytes, no NUL. */
	ssize_t (*readlink)(struct vfs_mount *m, const char *path, char *buf,
			    size_t size);
	/*
	 * Creating calls [optional: -EPERM, what mknod(2), mkdir(2),
	 * symlink(2) and link(2) say for a file system that cannot create
	 * such an object]: 0 and *st filled with the new object's attributes,
	 * or -errno (-EEXIST when the name exists).  `mode` already has the
	 * umask applied unless the mount sets VFS_CAP_OWN_UMASK.  A member
	 * that exists but cannot make this kind of object (a FIFO on SFTP)
	 * returns -EOPNOTSUPP.
	 */
	int (*mknod)(struct vfs_mount *m, const char *path, mode_t mode,
		     dev_t rdev, const struct vfs_cred *cred, struct stat *st);
	int (*mkdir)(struct vfs_mount *m, const char *path, mode_t mode,
		     const struct vfs_cred *cred, struct stat *st);
	int (*symlink)(struct vfs_mount *m, const char *target,
		       const char *path, const struct vfs_cred *cred,
		       struct stat *st);
	/* a new name `to` for the existing `from`; *st is the object's */
	int (*link)(struct vfs_mount *m, const char *from, const char *to,
		    struct stat *st);
	/* [optional: -EPERM] Remove a name that is not a directory: 0 or
	 * -errno (-EISDIR for a directory).  A file still open keeps its
	 * data reachable through its handles until release(). */
	int (*unlink)(struct vfs_mount *m, const char *path);
	/* [optional: -EPERM] Remove an empty directory: 0 or -errno
	 * (-ENOTEMPTY, -ENOTDIR). */
	int (*rmdir)(struct vfs_mount *m, const char *path);
	/* [optional: -EPERM] flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE
	 * (others only with VFS_CAP_RENAME_FLAGS; the router refuses the
	 * rest with -EINVAL).  Replacing an existing target must be atomic
	 * or at least never lose it.  0 or -errno. */
	int (*rename)(struct vfs_mount *m, const char *from, const char *to,
		      unsigned flags);

	/* [mandatory] Directory streams: *out owned by the caller until
	 * releasedir().  0 or -errno (-ENOTDIR). */
	int (*opendir)(struct vfs_mount *m, const char *path,
		       struct vfs_dir **out);
	/* [mandatory] Emit entries from offset `off` (0 = start) until fill
	 * says stop or the end is reached: 0 or -errno.  "." and ".." may or
	 * may not be emitted. */
	int (*readdir)(struct vfs_mount *m, struct vfs_dir *d, off_t off,
		       vfs_fill_fn fill, void *ctx);
	/* [mandatory] Free the stream; cannot fail. */
	void (*releasedir)(struct vfs_mount *m, struct vfs_dir *d);

	/*
	 * Extended attributes [optional: -EOPNOTSUPP, as the kernel answers
	 * for a file system without them; listxattr: an empty list, 0, as
	 * the kernel's NFS client answers].  get/list: size 0 asks for the
	 * needed length; else the length copied, -ERANGE when buf is too
	 * small, -ENODATA for a name not set.  set/remove: 0 or -errno.
	 */
	ssize_t (*getxattr)(struct vfs_mount *m, const char *path,
			    const char *name, void *buf, size_t size);
	ssize_t (*listxattr)(struct vfs_mount *m, const char *path, char *buf,
			     size_t size);
	int (*setxattr)(struct vfs_mount *m, const char *path, const char *name,
			const void *value, size_t size, int flags);
	int (*removexattr)(struct vfs_mount *m, const char *path,
			   const char *name);

	/* ---- Open files ---------------------------------------------- */

	/*
	 * create [optional: -EPERM] / open [mandatory]: flags are open(2)
	 * flags (O_CREAT/O_EXCL only for create).  O_DIRECT must reach the
	 * storage or fail with -EINVAL.  On success *out is a new handle
	 * owned by the caller until release(); create also fills *st.
	 * 0 or -errno.
	 */
	int (*create)(struct vfs_mount *m, const char *path, int flags,
		      mode_t mode, const struct vfs_cred *cred,
		      struct vfs_file **out, struct stat *st);
	int (*open)(struct vfs_mount *m, const char *path, int flags,
		    struct vfs_file **out);
	/* [mandatory] Bytes read, or -errno.  Short reads only at end of
	 * file; buf needs no alignment. */
	ssize_t (*read)(struct vfs_file *f, void *buf, size_t size, off_t off);
	/* [optional: -EROFS, a backend that cannot write is read-only]
	 * Writes everything or fails: a short count is not an option. */
	ssize_t (*write)(struct vfs_file *f, const void *buf, size_t size,
			 off_t off);
	/* [mandatory] fstat of the open file, also after it was unlinked
	 * (the router's lseek and in-daemon copy need its size). */
	int (*fgetattr)(struct vfs_file *f, struct stat *st);
	/* [optional: 0, nothing kept back] close(2) of one descriptor;
	 * errors of earlier writes surface here. */
	int (*flush)(struct vfs_file *f);
	/* [optional: 0, every write is on stable storage when it returns]
	 * Data (and metadata unless datasync) on stable storage. */
	int (*fsync)(struct vfs_file *f, bool datasync);
	/* [optional: -EOPNOTSUPP] fallocate(2) modes the backend supports
	 * (0, FALLOC_FL_KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE); -EOPNOTSUPP for the
	 * others.  0 or -errno. */
	int (*fallocate)(struct vfs_file *f, int mode, off_t off, off_t len);
	/* [optional: emulated, the whole file is data] SEEK_DATA/SEEK_HOLE
	 * only (the kernel does the others): the offset, or -ENXIO past the
	 * end, or -errno. */
	off_t (*lseek)(struct vfs_file *f, off_t off, int whence);
	/* [optional: emulated, the router copies through read and write]
	 * Both files belong to the same mount.  Bytes copied (short counts
	 * allowed), or -errno. */
	ssize_t (*copy_range)(struct vfs_file *in, off_t off_in,
			      struct vfs_file *out, off_t off_out, size_t len,
			      unsigned flags);
	/*
	 * [optional: -EOPNOTSUPP] Copy the regular file `from` to the new
	 * name `to` (which must not exist) on the server itself, holes kept,
	 * as `vfsctl image clone` asks.  May take long: runs on a control
	 * thread, never for FUSE.  -EOPNOTSUPP when this mount cannot (the
	 * caller then copies the data itself); other errors are described in
	 * *err.
	 */
	int (*clone)(struct vfs_mount *m, const char *from, const char *to,
		     struct vfs_error *err);
	/* [mandatory] Last reference gone: free the handle, and drop the
	 * locks set through it (OFD locks: the kernel sends no unlock for
	 * them).  The result is only logged. */
	int (*release)(struct vfs_file *f);

	/* ---- Locks ----------------------------------------------------- */

	/*
	 * [optional: -ENOLCK, "no locks here", what fcntl(2) says on a file
	 * system without them] The image store's layer (guestfs/layer.h)
	 * has these for every mount it serves: locks that hold within this
	 * daemon and, on shared mounts, across hosts.
	 * `path` is the file's name now (it may have been renamed since it
	 * was opened), or NULL when it has none (unlinked).
	 * getlk: whether *lk could be set; on return lk->type is F_UNLCK, or
	 * *lk describes one lock in the way (pid 0 for another host's).
	 * setlk: set or clear *lk (F_UNLCK over [0, INT64_MAX] of an owner:
	 * drop all its locks of that kind, as close(2) does).  Without
	 * `wait` a conflict is -EAGAIN; with it the call waits until the
	 * lock is free or interrupted(arg) says stop (-EINTR).  Other
	 * failures: -ENOLCK (the lock cannot be kept), -EIO (the storage
	 * cannot say who holds it).  A file that carries a cross-host lock
	 * writes through (vfs_file.write_through) from then on.
	 */
	int (*getlk)(struct vfs_file *f, const char *path, struct vfs_lock *lk);
	int (*setlk)(struct vfs_file *f, const char *path,
		     const struct vfs_lock *lk, bool wait,
		     bool (*interrupted)(void *arg), void *arg);
};

/* The built-in backend whose ->name is `scheme`, or NULL.  For
 * "fault+X" it is X's: the router then wraps X's instance (fault.h). */
const struct vfs_backend_ops *backend_find(const char *scheme);

/* NULL-terminated list of every built-in backend. */
extern const struct vfs_backend_ops *const backend_all[];

/*
 * A directory listing held in memory, for backends whose protocol reads a
 * directory sequentially (SFTP, NFS) and for the router's merged views.
 * Offsets are entry indexes + 1.
 */
struct vfs_dirbuf {
	struct vfs_dirbuf_ent *ents; /* owned */
	size_t n, cap;
};

struct vfs_dirbuf_ent {
	char *name; /* owned */
	struct stat st;
	unsigned flags; /* VFS_DIRENT_* */
};

/* Copies name.  Returns 0 or -ENOMEM. */
int vfs_dirbuf_add(struct vfs_dirbuf *db, const char *name,
		   const struct stat *st, unsigned flags);
bool vfs_dirbuf_has(const struct vfs_dirbuf *db, const char *name);
/* readdir over the buffer: same contract as ops->readdir. */
int vfs_dirbuf_fill(const struct vfs_dirbuf *db, off_t off, vfs_fill_fn fill,
		    void *ctx);
void vfs_dirbuf_clear(struct vfs_dirbuf *db);

/*
 * A per-thread, page-aligned scratch buffer of at least `size` bytes, valid
 * until the next call with the same slot on this thread; freed when the
 * thread ends (FUSE workers come and go with load).  NULL on ENOMEM.
 */
enum vfs_scratch_slot {
	VFS_SCRATCH_FUSE,    /* request data in vfsd/fuse_ops.c */
	VFS_SCRATCH_BACKEND, /* a backend's own bounce buffer */
	VFS_SCRATCH_ROUTER,  /* the router's in-daemon copies */
	VFS_SCRATCH_SLOTS
};
void *vfs_scratch(enum vfs_scratch_slot slot, size_t size);

/*
 * Name timeout of a path-based remote backend.  vfsd finds files by path
 * on every request, so a name the kernel keeps after another host renamed
 * or removed it costs nothing: the next request by that path gets ENOENT
 * and the kernel drops it.  So names of existing files are kept at least
 * VFS_REMOTE_ENTRY_MIN seconds, as sshfs keeps them (20 s), saving a
 * LOOKUP round trip before every unlink, rename or open of a name seen
 * recently; attributes and "no such name" keep the mount's cache_ttl.
 * A cache_ttl of 0 (no caching) stays 0.
 */
#define VFS_REMOTE_ENTRY_MIN 20.0
static inline double vfs_remote_entry_timeout(double cache_ttl)
{
	return cache_ttl <= 0                     ? 0
	       : cache_ttl > VFS_REMOTE_ENTRY_MIN ? cache_ttl
						  : VFS_REMOTE_ENTRY_MIN;
}

#endif /* VFSD_BACKEND_H */
