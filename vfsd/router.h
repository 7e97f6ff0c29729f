/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router.h - the mount table and the path-level file system API.
 *
 * The router owns the table of mounts (prefix -> backend instance), finds
 * the mount of a vfsd path by longest prefix, and applies the policy that
 * is the same for every backend: read-only mounts (-EROFS), operations
 * across two mounts (-EXDEV), operations a backend lacks (one answer per
 * operation, see rops[] in router_ops.c), virtual directories that only
 * lead to a prefix, access(2) checks, and inode numbers that stay distinct
 * across mounts.
 *
 * All paths here are vfsd paths ("/data/x"), normalised.  Every call is
 * thread-safe; none holds a router lock across a backend call.
 */
#ifndef VFSD_ROUTER_H
#define VFSD_ROUTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "backends/backend.h"
#include "lib/error.h"
#include "lib/options.h"
#include "vfsd/fair.h"
#include "vfsd/qos.h"
#include "vfsd/stats.h"

/* Where a mount came from: reload only touches the config file's. */
enum router_origin {
	ROUTER_ORIGIN_CONFIG,   /* the config file */
	ROUTER_ORIGIN_CMDLINE,  /* -m on the command line */
	ROUTER_ORIGIN_CONTROL,  /* vfsctl mount add */
	ROUTER_ORIGIN_INTERNAL, /* vfsd's own, e.g. /.vfsd */
};

/* A read-only view of one mount, for reports and reload. */
struct router_view {
	const char *prefix;
	const char *url;     /* as configured */
	const char *display; /* URL without secrets */
	const char *backend; /* scheme */
	const char *state;   /* connected / reconnecting / down */
	bool readonly;
	bool passthrough; /* allows FUSE passthrough */
	bool hidden;      /* not listed in its parent directory */
	enum router_origin origin;
	const struct vfs_backend_ops *ops; /* its table */
	/* the backend's own, beneath the layers (the image store's keeps
	 * some attributes of its own on every mount: "xattr" is the
	 * backend's) */
	const struct vfs_backend_ops *backend_ops;
	uint32_t caps; /* VFS_CAP_* of its instance */
	uint64_t open_files;
	unsigned long reconnects;
	unsigned wb_max, wb_shared_max; /* vfs_mount's */
	unsigned long wb_shared_max_bytes;
	/* read-ahead (router_ra.c): the most bytes it may hold (0: it
	 * reads nothing ahead) and what it holds now */
	uint64_t ra_budget, ra_held;
	struct timespec since;       /* CLOCK_REALTIME of the mount */
	const struct vfs_opts *opts; /* config options as given */
	const struct mount_stats *stats;
	struct fair_view fair; /* fair sharing of its backend (fair.h) */
};

/*
 * The names of what mount v can do beyond the mandatory members (optional
 * members it has, capability bits it sets), for `vfsctl mounts`: at most
 * max into names (static strings), in a fixed order; returns how many.
 */
#define ROUTER_CAPS_MAX 16
size_t router_caps(const struct router_view *v, const char **names, size_t max);

/* Called once per mount, in table order, under the table's read lock: fn
 * must not call back into the router. */
typedef void (*router_view_fn)(void *ctx, const struct router_view *v);
void router_foreach(router_view_fn fn, void *ctx);

struct router_mount;

/*
 * An open file: a counted reference on its mount plus the backend handle,
 * opaque outside the router.  Reference counted: router_open/create return
 * one reference, router_file_get adds one, router_release drops one and
 * the backend handle is released with the last.  What the FUSE layer keeps
 * per open (passthrough mode, cache policy) is its own (fuse_internal.h).
 */
struct router_file;

struct router_dir;

int router_init(void);
/* Unmount every backend.  No request may be in flight. */
void router_shutdown(void);
/* vfsd stops: the calls fault rules pause go on, and nothing more is
 * injected (fault_detach on every mount), so that those in flight end. */
void router_detach_faults(void);

/*
 * Mount `url` at `prefix`.  `opts` are config-file options (may be NULL);
 * URL query parameters are merged in (the URL wins) and the whole set is
 * validated against the backend's spec.  0, or -errno with *err naming the
 * culprit (unknown scheme, duplicate prefix, unreachable server...).
 */
int router_add(const char *prefix, const char *url, const struct vfs_opts *opts,
	       bool readonly, enum router_origin origin, struct vfs_error *err);

/*
 * Whether a backend ops table has every member the contract calls
 * mandatory (backends/backend.h; `mount` too when by_url, for a table
 * found by URL scheme).  0, or -EINVAL with *err naming the backend and the
 * first member missing.  router_add and router_add_internal call it.
 */
int router_ops_check(const struct vfs_backend_ops *ops, bool by_url,
		     struct vfs_error *err);

/*
 * The cross-host lock lease (seconds): from now on router_add refuses
 * remote mounts whose timeout exceeds a third of it (see lease_check in
 * router_table.c).  Call before adding mounts.
 */
void router_set_lock_lease(int seconds);

/*
 * Mount an internal backend instance (owned by the router from now on) at
 * `prefix`, hidden from its parent's listing unless `visible`.
 */
int router_add_internal(const char *prefix, struct vfs_mount *vm, bool visible,
			struct vfs_error *err);

/*
 * Remove the mount at exactly `prefix`.  Refused (-EBUSY) while files under
 * it are open unless `force`, which makes those handles fail with EIO from
 * then on.  The backend is unmounted when the last handle closes.
 */
int router_remove(const char *prefix, bool force, struct vfs_error *err);

/*
 * The prefixes of the mounts strictly beneath `path` (hidden ones too), as
 * a NULL-ended array of new strings; the caller frees each and the array.
 * NULL when out of memory.
 */
char **router_prefixes_beneath(const char *path);

/*
 * Call fn(vm, rel, ctx) on the instance serving vfsd path `path` (rel: the
 * path inside it), with a reference on the mount held for the call, and
 * return its result: for control commands on one file (vfsctl image).
 * -ENOENT when no mount serves it (a virtual directory).
 */
int router_with_path(const char *path,
		     int (*fn)(struct vfs_mount *vm, const char *rel,
			       void *ctx),
		     void *ctx);

/*
 * Call fn(vm, ctx) on the backend instance mounted at exactly `prefix`,
 * with a reference on the mount (not the table lock) held for the call,
 * and return its result: for control commands aimed at one mount's backend
 * (vfsctl fault).  -ENOENT with *err set when nothing is mounted there.
 */
int router_with_backend(const char *prefix,
			int (*fn)(struct vfs_mount *vm, void *ctx), void *ctx,
			struct vfs_error *err);

/* Number of user-visible mounts, and whether any is shared with others. */
size_t router_mount_count(void);
bool router_any_shared(void);

/* The attribute/entry cache lifetimes for `path`'s mount (seconds), and
 * whether it is shared with other hosts (shared may be NULL). */
void router_timeouts(const char *path, double *attr, double *entry,
		     bool *shared);

/*
 * What the node table keys `path`'s objects by besides their st_dev and
 * st_ino (inode_lookup): an id of its mount, unique while the daemon runs,
 * when the backend's inode numbers are stable (VFS_CAP_STABLE_INO); 0 when
 * they are not, or for a virtual directory.
 */
uint64_t router_ino_space(const char *path);

/* Whether the kernel may keep cached pages of a file on this mount when it
 * is unchanged (private storage); shared mounts revalidate on open. */
bool router_file_is_shared(const struct router_file *f);

/* Whether f's content was made up at open and has no fixed size (a
 * control file): the kernel must not cache it (FOPEN_DIRECT_IO). */
bool router_file_uncached(const struct router_file *f);

/* Whether f's mount was removed by force: its I/O fails EIO. */
bool router_file_revoked(const struct router_file *f);

/* f's mount, to tell files of one mount from those of others (only
 * compared, never used). */
const void *router_file_mount(const struct router_file *f);

/* ---- Namespace (paths) ------------------------------------------ */

int router_getattr(const char *path, struct stat *st);
int router_setattr(const char *path, struct router_file *f,
		   const struct vfs_setattr *sa, struct stat *st);
int router_access(const char *path, int mask, const struct vfs_cred *cred);
ssize_t router_readlink(const char *path, char *buf, size_t size);
int router_mknod(const char *path, mode_t mode, dev_t rdev,
		 const struct vfs_cred *cred, struct stat *st);
int router_mkdir(const char *path, mode_t mode, const struct vfs_cred *cred,
		 struct stat *st);
int router_symlink(const char *target, const char *path,
		   const struct vfs_cred *cred, struct stat *st);
int router_link(const char *from, const char *to, struct stat *st);
int router_unlink(const char *path);
int router_rmdir(const char *path);
int router_rename(const char *from, const char *to, unsigned flags);
int router_statfs(const char *path, struct statvfs *st);

ssize_t router_getxattr(const char *path, const char *name, void *buf,
			size_t size);
ssize_t router_listxattr(const char *path, char *buf, size_t size);
int router_setxattr(const char *path, const char *name, const void *value,
		    size_t size, int flags);
int router_removexattr(const char *path, const char *name);

/* Directories: *out is owned by the caller until router_releasedir(). */
int router_opendir(const char *path, struct router_dir **out);
int router_readdir(struct router_dir *d, off_t off, vfs_fill_fn fill,
		   void *ctx);
void router_releasedir(struct router_dir *d);

/* ---- Open files --------------------------------------------------- */

/* *out is owned by the caller until router_release(). */
int router_create(const char *path, int flags, mode_t mode,
		  const struct vfs_cred *cred, struct router_file **out,
		  struct stat *st);
int router_open(const char *path, int flags, struct router_file **out);
ssize_t router_read(struct router_file *f, void *buf, size_t size, off_t off);
ssize_t router_write(struct router_file *f, const void *buf, size_t size,
		     off_t off);
/*
 * A read or write admitted by f's I/O limits (qos.h) before the call,
 * for callers that park it elsewhere than in a thread while it waits
 * (fuse_wait.c): router_admit() answers 0 when it may go now, and it is
 * counted against the limits: the router_read/_write_admitted() or
 * router_zerocopy_begin() that follows, given `a`, does not count it
 * again.  Else it answers the nanoseconds to wait before asking again
 * (sooner when qos_generation() changes), and `a` holds the wait (shown
 * in `vfsctl files` and `qos show`) until it is admitted or
 * router_admit_drop() gives it up.  `a` is the caller's, zeroed before
 * the first call; one per request.
 */
struct router_admit {
	struct qos_ticket t;
	int64_t since; /* when first held back; 0: not held */
	bool admitted;
};
int64_t router_admit(struct router_file *f, bool write, size_t size,
		     struct router_admit *a);
void router_admit_drop(struct router_file *f, struct router_admit *a);
/* `a` waits behind other requests of f before its first router_admit():
 * counted as waiting as router_admit() counts it, nothing charged. */
void router_admit_queued(struct router_file *f, struct router_admit *a);
ssize_t router_read_admitted(struct router_file *f, struct router_admit *a,
			     void *buf, size_t size, off_t off);
ssize_t router_write_admitted(struct router_file *f, struct router_admit *a,
			      const void *buf, size_t size, off_t off);
int router_fgetattr(struct router_file *f, struct stat *st);
int router_flush(struct router_file *f);
int router_fsync(struct router_file *f, bool datasync);
int router_fallocate(struct router_file *f, int mode, off_t off, off_t len);
off_t router_lseek(struct router_file *f, off_t off, int whence);
ssize_t router_copy_range(struct router_file *in, off_t off_in,
			  struct router_file *out, off_t off_out, size_t len,
			  unsigned flags);
void router_file_get(struct router_file *f);
/*
 * Locks (the backend contract's getlk/setlk, backends/backend.h): `path`
 * is the file's vfsd path now, or NULL when it has none.  Without a
 * backend member: -ENOLCK.  An unlock reaches the backend even after its
 * mount was removed by force.
 */
int router_getlk(const char *path, struct router_file *f, struct vfs_lock *lk);
int router_setlk(const char *path, struct router_file *f,
		 const struct vfs_lock *lk, bool wait,
		 bool (*interrupted)(void *), void *arg);
/*
 * Server-side whole-file copy of `from` to the new name `to` (the
 * backend's clone op); -EOPNOTSUPP when the backend has none, -EXDEV
 * across mounts.  Errors are described in *err.
 */
int router_clone(const char *from, const char *to, struct vfs_error *err);

/*
 * Read-ahead for reads through the page cache (router_ra.c): the FUSE
 * layer calls router_ra_read() for each such read of f.  It notes where
 * f is read, reads ahead of a sequential reader, and answers 1 when its
 * segments hold all of [off, off + size): hit->iov then holds those
 * bytes to reply with, pinned, with a reference on f, until
 * router_ra_done().  0: read as usual.
 * router_ra_drop() forgets what f read ahead, after a change to its data
 * or a lock taken on it; router_ra_active() says whether any file holds
 * data read ahead (so that callers can skip looking).
 */
#define ROUTER_RA_IOV 4
struct router_ra_hit {
	struct iovec iov[ROUTER_RA_IOV];
	int iovcnt;
	size_t len;
	struct router_file *f;
	struct ra_seg *seg[ROUTER_RA_IOV];
};
int router_ra_read(struct router_file *f, size_t size, off_t off,
		   struct router_ra_hit *hit);
void router_ra_done(struct router_ra_hit *hit);
void router_ra_drop(struct router_file *f);
/* f's size and times were asked of the backend at `when` (vfs_mono_ns())
 * and found unchanged: segments whose reads began before may be served
 * (one older than the mount's attribute timeout is served only once such
 * a check followed its read). */
void router_ra_checked(struct router_file *f, int64_t when);
/* f is `size` bytes long as the kernel was last told (an attribute
 * reply's), or as its open found it (a stand-in: an open's reply carries
 * no size): nothing past that is read ahead.  A hint only: a read past it
 * clears it, and a wrong one costs read-ahead, never data. */
void router_ra_size(struct router_file *f, off_t size);
/* At exit, after every open was dropped: wait until no read ahead is
 * queued and every worker is done with its file (its release made). */
void router_ra_quiesce(void);
bool router_ra_active(void);

/*
 * Zero-copy I/O: the kernel moves the data of a read or write of f between
 * /dev/fuse and a host fd holding the file's data (splice), without vfsd
 * copying it.  router_zerocopy_begin() (a: as router_read_admitted's, or
 * NULL) makes the checks router_read() and
 * router_write() make (EIO once the mount was removed by force, EROFS for
 * a write to a read-only mount, the thread's deadline), and answers:
 *  1: do the I/O on zc->fd now, then call router_zerocopy_end();
 *  0: this file has no zero-copy path (no host fd, O_DIRECT): use
 *     router_read()/router_write();
 *  -errno: the request fails with that, as router_read/_write would.
 * Between the two, zc holds a reference on f (the kernel may release the
 * file as soon as a read's reply is sent) and the call is in flight in the
 * mount's statistics.  zc is the caller's; only zc->fd is for it to read.
 */
struct router_zerocopy {
	int fd;                /* the host fd to splice from or to */
	struct router_file *f; /* the router's: a reference */
	bool write;
	size_t size;
	off_t off;
	struct timespec t0;
};
int router_zerocopy_begin(struct router_file *f, struct router_admit *a,
			  bool write, size_t size, off_t off,
			  struct router_zerocopy *zc);
/*
 * Count the I/O of a router_zerocopy_begin() that answered 1, and drop its
 * reference.  ret is -errno on failure; else for a write the bytes written,
 * for a read anything >= 0 (the reply was sent: the bytes counted are the
 * request's, up to the end of the file).
 */
void router_zerocopy_end(struct router_zerocopy *zc, ssize_t ret);

/*
 * The host fd the kernel may use for the file's reads and writes itself
 * (FUSE passthrough: the mount allows it, the file was not removed by
 * force and is cacheable), or -1.  That I/O never reaches vfsd: it is not
 * counted in the mount's statistics, and a removal by force cannot revoke
 * it (vfsd.conf(5), passthrough).
 */
int router_file_passthrough_fd(struct router_file *f);
void router_release(struct router_file *f);

/*
 * Open files and what their reads and writes through vfsd did (FUSE
 * passthrough I/O is the kernel's and not counted), for `vfsctl files`,
 * `vfsctl top` and /.vfsd/files: fn is called once per open file under
 * the registry's lock, so it must not call back into the router.  One
 * open counts once however many descriptors share it.
 */
struct router_file_view {
	const char *path;  /* the vfsd path it was opened under */
	const char *mount; /* its mount's prefix */
	uint64_t read_bytes, write_bytes, read_ops, write_ops;
	uint64_t held_ns; /* waited for its limits and its share of a busy
			   * mount, in all */
	unsigned waiting; /* requests held back now */
	bool limited;     /* a limit applies to it */
	bool shared;      /* its mount is shared with other hosts */
};
typedef void (*router_file_fn)(void *ctx, const struct router_file_view *v);
void router_foreach_file(router_file_fn fn, void *ctx);

#endif /* VFSD_ROUTER_H */
