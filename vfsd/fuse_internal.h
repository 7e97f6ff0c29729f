/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_internal.h - what the files of vfsd's FUSE layer share: the per-open
 * struct fo_fh, the helpers every handler uses (fuse_ops.c), and the
 * handlers the operations table in fuse_ops.c names.  Private to
 * fuse_ops.c, fuse_entry.c, fuse_file.c, fuse_wait.c, fuse_bg.c,
 * fuse_dir.c, fuse_xattr.c and fuse_lock.c; the rest of vfsd uses
 * vfsd/fuse_ops.h.
 *
 * Include it after defining FUSE_USE_VERSION.
 */
#ifndef VFSD_FUSE_INTERNAL_H
#define VFSD_FUSE_INTERNAL_H

#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "backends/callctx.h"
#include "vfsd/passthrough.h"
#include "vfsd/router.h"

/* fuse_ops.c: the session and what init negotiated (read-only once the
 * session loop runs) */
extern struct fuse_session *fo_session;
extern bool fo_writeback;
extern bool fo_posix_acl;
extern unsigned fo_kernel_minor;

/*
 * One open of a file as the kernel knows it: the router's handle plus what
 * only the FUSE layer keeps per open.  Made by fo_open and fo_create, which
 * put it in fi->fh for the reply; freed by fo_release, or by the open
 * itself when its reply never reaches the kernel (then no release comes).
 * The handle is also listed in the node table (inode_handle_add) and
 * names the open to the lock table: both hold the router's handle, with
 * references of their own where they need one, never this struct.
 */
struct fo_fh {
	struct router_file *rf; /* one reference, dropped with the struct */
	fuse_ino_t ino;         /* the node it opens */
	/* set before the open's reply and only read after it: the kernel
	 * sends nothing for the handle before it has the reply */
	enum pt_mode pt_mode; /* how passthrough.c counts the open */
	bool wo_direct;       /* write-only, no page cache (see
			       * fo_write_only_direct) */
	bool direct_io;       /* the open's reads bypass the page cache */
	/* the process of the last read parked that could be asked (> 0),
	 * FO_READER_KERNEL once a kernel thread read (kept), 0: none yet
	 * (fuse_wait.c) */
	atomic_int reader;
	/* a passthrough writer that may lack CAP_FSETID (see
	 * fo_pt_kill_on_close); cleared by a mode change through the handle
	 * (fo_setattr) while another worker may flush: atomic */
	atomic_bool pt_kill_on_close;
	/* its reads [0] and writes [1] parked for their I/O limits
	 * (fuse_wait.c, under its lock); NULL: none */
	struct fw_queue *waitq[2];
	/* every handle, for those the kernel never releases (fuse_ops.c) */
	struct fo_fh *all_next, **all_pprev;
};

/* fo_fh.reader: a kernel thread read through the open */
#define FO_READER_KERNEL (-1)

/* fuse_ops.c: shared helpers */
struct fo_fh *fo_fh_new(struct router_file *rf);
void fo_fh_free(struct fo_fh *fh);
struct fo_fh *fo_fh(struct fuse_file_info *fi);
struct router_file *fo_file(struct fuse_file_info *fi);
struct vfs_cred fo_cred(fuse_req_t req);
/* the most supplementary groups fo_cred_groups() reads */
#define FO_MAX_GROUPS 256
void fo_cred_groups(fuse_req_t req, struct vfs_cred *cred, gid_t *buf);
void fo_reply_err(fuse_req_t req, int ret);
double fo_attr_timeout(fuse_ino_t ino, const struct stat *st, double timeout);
/* The attribute timeout of a kernel entry (lookup, readdirplus) for node
 * ino with attributes st, on a shared mount or not: fo_attr_timeout's,
 * 0 for an open regular file on a shared mount; notes st (fo_data_seen). */
double fo_entry_attr_timeout(fuse_ino_t ino, const struct stat *st,
			     double timeout, bool shared);
void fo_entry_fill(const char *path, const struct stat *st,
		   struct fuse_entry_param *e);
int fo_make_entry(fuse_ino_t parent, const char *name, const char *path,
		  const struct stat *st, struct fuse_entry_param *e);

/* fuse_entry.c: names and attributes, with the KILLPRIV emulation */
void fo_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fo_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fo_forget_multi(fuse_req_t req, size_t count,
		     struct fuse_forget_data *forgets);
void fo_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fo_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void fo_readlink(fuse_req_t req, fuse_ino_t ino);
void fo_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	      dev_t rdev);
void fo_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fo_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		const char *name);
void fo_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	     const char *newname);
void fo_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fo_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fo_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags);
void fo_access(fuse_req_t req, fuse_ino_t ino, int mask);
int fo_killed_mode(const char *path, struct router_file *rf, mode_t *mode);
int fo_kill_suidgid(fuse_ino_t ino, struct router_file *rf);

/* fuse_file.c: open files, their cache policy and passthrough */
void fo_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fo_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
/* the I/O of a read or write once its limits admitted it (a), or with
 * a not admitted: waiting for them in this thread */
void fo_read_admitted(fuse_req_t req, struct router_file *rf,
		      struct router_admit *a, size_t size, off_t off);
void fo_write_admitted(fuse_req_t req, fuse_ino_t ino, struct router_file *rf,
		       struct router_admit *a, struct fuse_bufvec *in,
		       off_t off);
/* fuse_file.c: the data of node ino changed through vfsd, or a lock was
 * taken on it: what any open of it read ahead is not to be served */
void fo_data_changed(fuse_ino_t ino);
/* fuse_file.c: the size and times of node ino were st, as asked of the
 * backend at `when` (vfs_mono_ns(), before the asking): what was read
 * ahead of it before a change is dropped, the rest may be served
 * (router_ra_checked) */
void fo_data_checked(fuse_ino_t ino, const struct stat *st, int64_t when);
/* The same for attributes that may come from a backend's cache (a
 * lookup's): a change drops, nothing is taken as checked. */
void fo_data_seen(fuse_ino_t ino, const struct stat *st);
/* whether the caller of req gave it up (killed) or vfsd stops */
bool fo_given_up(void *req);

/*
 * fuse_caller.c: whether a request's process still waits for it.
 * fo_caller_dying: thread `tid` has SIGKILL pending, or is gone.
 * fo_caller_tgid: the process of thread `tid`, 0 when unknown or a kernel
 * thread (*kernel then true), -1 when the thread is gone.
 * fo_process_gone: every thread of process `tgid` is exiting or gone
 * (false when /proc cannot tell, or tgid is 0).
 */
bool fo_caller_dying(pid_t tid);
pid_t fo_caller_tgid(pid_t tid, bool *kernel);
bool fo_process_gone(pid_t tgid);

/*
 * fuse_wait.c: reads and writes held back by their I/O limits wait off
 * the worker threads.  fo_wait_park() answers 0 when the request is to
 * go on in this thread with *a (admitted, or, when it cannot be parked,
 * to wait here), or 1 when it was parked (or failed) and is answered
 * elsewhere.  cached: a read through the page cache (not O_DIRECT, not
 * a direct_io open).  *a is zeroed by the caller.  fo_wait_forget()
 * detaches a released open; fo_wait_stop() gives up every parked request
 * and waits for the admitted ones, after the session's loop ended.
 */
int fo_wait_park(fuse_req_t req, struct fo_fh *fh, bool write, bool cached,
		 size_t size, off_t off, struct fuse_bufvec *in,
		 struct router_admit *a);
void fo_wait_forget(struct fo_fh *fh);
void fo_wait_stop(void);

/*
 * fuse_bg.c: the kernel's budget of background requests (readahead,
 * writeback, asynchronous direct I/O), FO_MAX_BACKGROUND at once for the
 * whole mount as INIT sets it, leaves out those parked for their limits.
 * fo_bg_prepare() finds the kernel's knobs, once (it may mount fusectl
 * for a moment: call it without locks held); fo_bg_set() makes the
 * budget FO_MAX_BACKGROUND plus `parked`, called under one lock by every
 * caller (fuse_wait.c's).
 */
#define FO_MAX_BACKGROUND       64
#define FO_CONGESTION_THRESHOLD 48
void fo_bg_prepare(void);
void fo_bg_set(size_t parked);
/* The mount's st_dev: the connection's number where fdinfo has none. */
void fo_bg_set_dev(dev_t dev);

void fo_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void fo_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in,
		  off_t off, struct fuse_file_info *fi);
void fo_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fo_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fo_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi);
void fo_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		  off_t length, struct fuse_file_info *fi);
void fo_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi);
void fo_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			off_t off_out, struct fuse_file_info *fi_out,
			size_t len, int flags);

/* fuse_dir.c: directories and statfs */
void fo_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fo_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fo_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void fo_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fo_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
void fo_statfs(fuse_req_t req, fuse_ino_t ino);

/* fuse_xattr.c: extended attributes */
void fo_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags);
void fo_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fo_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fo_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* fuse_lock.c: locks, kept by the backend (the image store's layer) */
void fo_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock);
void fo_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock, int sleep);
void fo_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      int op);

/* Drop the locks a flush (close(2)) or the release of open file fi of
 * node ino ends: its owner's POSIX locks, its flock. */
void fo_lock_flush(fuse_ino_t ino, struct router_file *rf,
		   struct fuse_file_info *fi);
void fo_lock_release(fuse_ino_t ino, struct router_file *rf,
		     struct fuse_file_info *fi);

#endif /* VFSD_FUSE_INTERNAL_H */
