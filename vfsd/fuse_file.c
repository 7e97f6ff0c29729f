/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_file.c - the FUSE requests on open files: open with its cache policy
 * (close-to-open, direct I/O, FUSE passthrough), create, read, write,
 * flush, release, fsync, fallocate, lseek and copy_file_range.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "vfsd/fuse_internal.h"
#include "vfsd/inode.h"
#include "vfsd/qos.h"

/*
 * Open flags as the backend should see them.  With the writeback cache the
 * kernel may read pages of a file opened write-only and does O_APPEND
 * itself, so the backend opens read-write and without O_APPEND.
 */
static int fo_backend_flags(int flags)
{
	if (fo_writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags;
}

/*
 * Whether a file has no privileges a write would have to drop (setuid or
 * setgid bits, file capabilities).  Only such files may take a path on
 * which the kernel does not drop them itself and no write reaches us:
 * FUSE passthrough, and FOPEN_DIRECT_IO without FUSE_HANDLE_KILLPRIV_V2.
 *
 * O_DIRECT opens may take FUSE's direct-I/O path (FOPEN_DIRECT_IO), which
 * the page cache is bypassed on anyway.  It also spares every write the
 * kernel's security.capability lookup (a GETXATTR round trip under the
 * inode lock, when FUSE_HANDLE_KILLPRIV_V2 could not be negotiated), so
 * direct writes run in parallel.
 */
static bool fo_direct_io_ok(struct router_file *rf, const char *path,
			    const struct stat *known)
{
	struct stat st;

	if (known)
		st = *known;
	else if (router_fgetattr(rf, &st) < 0)
		return false;
	if (st.st_mode & (S_ISUID | S_ISGID))
		return false;
	return !path ||
	       router_getxattr(path, "security.capability", NULL, 0) < 0;
}

/*
 * Write-only opens on shared mounts skip the page cache (FOPEN_DIRECT_IO):
 * nothing can be read through them, and without the writeback cache every
 * write reaches us anyway, so the kernel's copy of each byte into the
 * page cache only cost CPU and memory (docs/performance.md has the
 * measurement).  The data now goes from the writer's buffer
 * to vfsd in one copy.  Pages of the file cached through other opens do
 * not get the new data: the kernel drops those of the written range after
 * each direct write (since FUSE 7.39, Linux 6.6, which is why older
 * kernels keep the page cache path; readers of an open shared file also
 * revalidate by size and times at each read, but SFTP's times have whole
 * seconds), and fo_flush makes the next open drop the rest.  Not for
 * files a write must drop privileges of without KILLPRIV_V2
 * (fo_direct_io_ok).
 */
static bool fo_write_only_direct(struct router_file *rf, const char *path,
				 const struct stat *known, int flags)
{
	return !fo_writeback && fo_kernel_minor >= 39 &&
	       (flags & O_ACCMODE) == O_WRONLY && router_file_is_shared(rf) &&
	       fo_direct_io_ok(rf, path, known);
}

static void fo_ra_drop_one(void *h, void *arg)
{
	(void)arg;
	router_ra_drop(h);
}

void fo_data_changed(fuse_ino_t ino)
{
	if (router_ra_active())
		inode_handle_each(ino, fo_ra_drop_one, NULL);
}

/* Attributes the kernel is told (fo_ra_seen_one's arg): the size, and
 * the time they were asked of the backend (NULL when they may come from
 * a cache). */
struct fo_seen {
	off_t size;
	const int64_t *when;
};

/* What attributes found (inode_data_seen): a change drops what was read
 * ahead; else, with a check's time, it may be served.  Either way the
 * read-ahead stops where the kernel's reads will. */
static void fo_ra_seen_one(void *h, bool changed, void *arg)
{
	const struct fo_seen *seen = arg;

	if (changed)
		router_ra_drop(h);
	else if (seen->when)
		router_ra_checked(h, *seen->when);
	router_ra_size(h, seen->size);
}

void fo_data_checked(fuse_ino_t ino, const struct stat *st, int64_t when)
{
	struct fo_seen seen = {.size = st->st_size, .when = &when};

	if (S_ISREG(st->st_mode))
		inode_data_seen(ino, st,
				router_ra_active() ? fo_ra_seen_one : NULL,
				&seen);
}

void fo_data_seen(fuse_ino_t ino, const struct stat *st)
{
	struct fo_seen seen = {.size = st->st_size};

	/* (with nothing read ahead anywhere, nothing to note: what is read
	 * ahead later is read through an open, which notes the attributes
	 * it found, fo_open_cache_policy; a size the read-ahead missed is
	 * corrected by the first read past it) */
	if (ino && S_ISREG(st->st_mode) && router_ra_active())
		inode_data_seen(ino, st, fo_ra_seen_one, &seen);
}

/* Close-to-open: keep cached pages only if the file did not change. */
static void fo_open_cache_policy(fuse_ino_t ino, struct fo_fh *fh,
				 const char *path, struct fuse_file_info *fi,
				 const struct stat *known)
{
	struct router_file *rf = fh->rf;
	struct fo_seen seen = {0};
	struct stat st;

	fi->keep_cache = 0;
	if (router_file_uncached(rf))
		fi->direct_io = 1;
	if (fi->flags & O_DIRECT) {
		fi->direct_io = fo_direct_io_ok(rf, path, known);
		return;
	}
	if (router_file_uncached(rf))
		return;
	if (fo_write_only_direct(rf, path, known, fi->flags)) {
		fi->direct_io = 1;
		fh->wo_direct = true;
		return;
	}
	if (known)
		st = *known;
	else if (router_fgetattr(rf, &st) < 0)
		return;
	fi->keep_cache = inode_cache_still_valid(ino, &st);
	inode_cache_stamp(ino, &st);
	/* what other opens read ahead may predate the change */
	if (!fi->keep_cache)
		fo_data_changed(ino);
	/* what this open reads ahead is of the file as found now: the
	 * attribute checks during its reads compare with that, or the first
	 * one would count as a change and drop it all */
	seen.size = st.st_size;
	inode_data_seen(ino, &st, router_ra_active() ? fo_ra_seen_one : NULL,
			&seen);
	router_ra_size(rf, st.st_size);
}

/*
 * Passthrough writes never reach us, so nobody drops setuid/setgid bits
 * the file gained while open (a chmod by its owner or root, by path or
 * another handle).  Such a file cannot be executed while open for writing
 * (ETXTBSY), so dropping the bits when a writer that may lack CAP_FSETID
 * closes it comes before anyone could run what it wrote.  "May lack" is
 * "is not uid 0": the daemon cannot see the caller's capabilities.  A
 * mode change through the handle itself clears the mark (fo_setattr).
 */
static bool fo_pt_kill_on_close(fuse_req_t req, const struct fo_fh *fh,
				int flags)
{
	return fh->pt_mode == PT_PASSTHROUGH &&
	       (flags & O_ACCMODE) != O_RDONLY && fuse_req_ctx(req)->uid != 0;
}

void fo_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct router_file *rf;
	enum pt_mode pt_mode;
	struct fo_fh *fh;
	bool pt_may_start;
	int ret = 0, pt_fd;
	char *path = inode_path(ino, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	/* limits another host may have set or removed on the file */
	qos_store_load(path);
	ret = router_open(path, fo_backend_flags(fi->flags), &rf);
	if (ret < 0) {
		free(path);
		return fo_reply_err(req, ret);
	}
	if (fi->flags & O_TRUNC) {
		inode_cache_invalidate(ino);
		fo_data_changed(ino);
	}
	if (pt_request_kills_suidgid()) {
		/* O_TRUNC by someone without CAP_FSETID */
		ret = fo_kill_suidgid(ino, rf);
		if (ret < 0) {
			free(path);
			router_release(rf);
			return fo_reply_err(req, ret);
		}
	}
	fh = fo_fh_new(rf);
	if (!fh) {
		free(path);
		return fo_reply_err(req, -ENOMEM);
	}
	fh->ino = ino;
	fo_open_cache_policy(ino, fh, path, fi, NULL);
	pt_fd = router_file_passthrough_fd(rf);
	pt_may_start = pt_fd >= 0 && fo_direct_io_ok(rf, path, NULL);
	free(path);
	if (inode_handle_add(ino, rf) < 0) {
		fo_fh_free(fh);
		return fo_reply_err(req, -ENOMEM);
	}
	fh->direct_io = fi->direct_io;
	fi->fh = (uintptr_t)fh;
	fh->pt_mode = pt_open_begin(ino, pt_fd, pt_may_start, fi->fh);
	atomic_store(&fh->pt_kill_on_close,
		     fo_pt_kill_on_close(req, fh, fi->flags));
	pt_mode = fh->pt_mode;
	ret = fuse_reply_open(req, fi);
	/* from here on a release may have freed fh, unless the reply failed */
	if (pt_mode == PT_PASSTHROUGH)
		pt_open_end(ino);
	if (ret == -ENOENT) {
		/* the opener was interrupted: no release will come */
		pt_release(ino, fh->pt_mode);
		inode_handle_del(ino, rf);
		fo_fh_free(fh);
	}
}

void fo_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct vfs_cred cred = fo_cred(req);
	gid_t groups[FO_MAX_GROUPS];
	struct fuse_entry_param e;
	struct router_file *rf;
	enum pt_mode pt_mode;
	struct fo_fh *fh;
	struct stat st;
	int ret = 0, pt_fd;
	char *path = inode_child_path(parent, name, &ret);

	if (!path)
		return fo_reply_err(req, ret);
	fo_cred_groups(req, &cred, groups);
	/*
	 * Always exclusive: the kernel sends CREATE for a name it believes
	 * absent (a cached negative entry, or the window between its LOOKUP
	 * and this), and a name that exists by now was never checked against
	 * the caller.  ESTALE makes the kernel look the name up afresh and
	 * open what it finds as any other file: permissions checked, O_TRUNC
	 * fenced by fo_open, a FIFO opened by the caller and not by a worker
	 * of ours.  So the file is always new: nothing to truncate, no
	 * privileges to drop, no lock to fence.
	 */
	/* a new file has no stored limits, whatever an old one under the
	 * name had */
	qos_path_gone(path);
	ret = router_create(path, fo_backend_flags(fi->flags) | O_EXCL, mode,
			    &cred, &rf, &st);
	if (ret == -EEXIST && !(fi->flags & O_EXCL))
		ret = -ESTALE;
	if (ret == 0) {
		ret = fo_make_entry(parent, name, path, &st, &e);
		if (ret < 0)
			router_release(rf);
	}
	free(path);
	if (ret < 0)
		return fo_reply_err(req, ret);
	inode_cache_stamp(e.ino, &st);
	fh = fo_fh_new(rf);
	if (!fh || inode_handle_add(e.ino, rf) < 0) {
		inode_forget(e.ino, 1); /* fo_make_entry's lookup */
		if (fh)
			fo_fh_free(fh);
		return fo_reply_err(req, -ENOMEM);
	}
	fh->ino = e.ino;
	if (!(fi->flags & O_DIRECT) &&
	    fo_write_only_direct(rf, NULL, &st, fi->flags)) {
		fi->direct_io = 1;
		fh->wo_direct = true;
	}
	fh->direct_io = fi->direct_io;
	fi->fh = (uintptr_t)fh;
	pt_fd = router_file_passthrough_fd(rf);
	fh->pt_mode = pt_open_begin(
		e.ino, pt_fd, pt_fd >= 0 && fo_direct_io_ok(rf, NULL, &st),
		fi->fh);
	atomic_store(&fh->pt_kill_on_close,
		     fo_pt_kill_on_close(req, fh, fi->flags));
	pt_mode = fh->pt_mode;
	ret = fuse_reply_create(req, &e, fi);
	/* from here on a release may have freed fh, unless the reply failed */
	if (pt_mode == PT_PASSTHROUGH)
		pt_open_end(e.ino);
	if (ret == -ENOENT) {
		pt_release(e.ino, fh->pt_mode);
		inode_handle_del(e.ino, rf);
		fo_fh_free(fh);
	}
}

/*
 * A read or write waiting for its I/O limit (qos.h) is given up when its
 * caller is being killed (it cannot end before vfsd answers, and with it
 * the unmount: a limit of a few bytes a second makes waits of days) or
 * vfsd is stopping.  Any other signal interrupts the request too, but
 * its caller expects the data, not EINTR, from a file.  Set around the
 * router's calls of the request.
 */
bool fo_given_up(void *req)
{
	if (fo_session && fuse_session_exited(fo_session))
		return true;
	return fuse_req_interrupted(req) &&
	       fo_caller_dying(fuse_req_ctx(req)->pid);
}

static void fo_qos_watch(fuse_req_t req)
{
	qos_set_interrupt(req ? fo_given_up : NULL, req);
}

void fo_read_admitted(fuse_req_t req, struct router_file *rf,
		      struct router_admit *a, size_t size, off_t off)
{
	struct router_zerocopy zc;
	void *buf;
	ssize_t n;
	int ret;

	fo_qos_watch(req);
	ret = router_zerocopy_begin(rf, a, false, size, off, &zc);
	fo_qos_watch(NULL);
	/* a wait it failed (EIO of a removed mount) ends before the reply,
	 * after which the kernel may release the file and with it rf */
	if (ret != 0)
		router_admit_drop(rf, a);
	if (ret < 0)
		return fo_reply_err(req, ret);
	if (ret > 0) {
		/* zero copy: libfuse splices from the backing file; zc
		 * holds rf, which the kernel may release once replied */
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = zc.fd;
		bv.buf[0].pos = off;
		router_zerocopy_end(
			&zc, fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE));
		return;
	}
	buf = vfs_scratch(VFS_SCRATCH_FUSE, size);
	if (!buf)
		return fo_reply_err(req, -ENOMEM);
	fo_qos_watch(req);
	n = router_read_admitted(rf, a, buf, size, off);
	fo_qos_watch(NULL);
	router_admit_drop(rf, a);
	if (n < 0)
		return fo_reply_err(req, (int)n);
	fuse_reply_buf(req, buf, n);
}

/* A read through the page cache answered from what was read ahead of it
 * (router_ra_read): the reply goes from the read-ahead's buffers. */
static bool fo_read_ahead(fuse_req_t req, struct router_file *rf, size_t size,
			  off_t off)
{
	struct router_ra_hit hit;

	if (router_ra_read(rf, size, off, &hit) <= 0)
		return false;
	fuse_reply_iov(req, hit.iov, hit.iovcnt);
	router_ra_done(&hit);
	return true;
}

void fo_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct router_admit a = {0};
	bool cached = !fo_fh(fi)->direct_io && !(fi->flags & O_DIRECT);

	if (cached && fo_read_ahead(req, fo_file(fi), size, off))
		return;
	if (fo_wait_park(req, fo_fh(fi), false, cached, size, off, NULL, &a))
		return;
	fo_read_admitted(req, fo_file(fi), &a, size, off);
}

static ssize_t fo_write_data(struct router_file *rf, struct router_admit *a,
			     struct fuse_bufvec *in, off_t off)
{
	size_t size = fuse_buf_size(in);
	struct router_zerocopy zc;
	const void *data;
	ssize_t n = router_zerocopy_begin(rf, a, true, size, off, &zc);

	if (n < 0)
		return n;
	if (n > 0) {
		/* zero copy: libfuse splices into the backing file */
		struct fuse_bufvec out = FUSE_BUFVEC_INIT(size);

		out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		out.buf[0].fd = zc.fd;
		out.buf[0].pos = off;
		n = fuse_buf_copy(&out, in, 0);
		router_zerocopy_end(&zc, n);
		return n;
	}
	if (in->count == 1 && !(in->buf[0].flags & FUSE_BUF_IS_FD)) {
		data = in->buf[0].mem;
	} else {
		struct fuse_bufvec tmp = FUSE_BUFVEC_INIT(size);

		tmp.buf[0].mem = vfs_scratch(VFS_SCRATCH_FUSE, size);
		if (!tmp.buf[0].mem)
			return -ENOMEM;
		n = fuse_buf_copy(&tmp, in, 0);
		if (n < 0)
			return n;
		size = n;
		data = tmp.buf[0].mem;
	}
	return router_write_admitted(rf, a, data, size, off);
}

void fo_write_admitted(fuse_req_t req, fuse_ino_t ino, struct router_file *rf,
		       struct router_admit *a, struct fuse_bufvec *in,
		       off_t off)
{
	ssize_t n;

	fo_qos_watch(req);
	n = fo_write_data(rf, a, in, off);
	fo_qos_watch(NULL);
	/* before the reply: see fo_read_admitted */
	router_admit_drop(rf, a);
	/* a failed write may have reached the server, in part or later */
	fo_data_changed(ino);
	if (n < 0)
		return fo_reply_err(req, (int)n);
	fuse_reply_write(req, n);
}

void fo_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in,
		  off_t off, struct fuse_file_info *fi)
{
	struct router_file *rf = fo_file(fi);
	struct router_admit a = {0};
	int ret;

	if (pt_request_kills_suidgid()) {
		ret = fo_kill_suidgid(ino, rf);
		if (ret < 0)
			return fo_reply_err(req, ret);
	}
	if (fo_wait_park(req, fo_fh(fi), true, false, fuse_buf_size(in), off,
			 in, &a))
		return;
	fo_write_admitted(req, ino, rf, &a, in, off);
}

void fo_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fo_fh *fh = fo_fh(fi);
	struct router_file *rf = fh->rf;
	int ret = router_flush(rf);

	if (atomic_load(&fh->pt_kill_on_close))
		fo_kill_suidgid(ino, rf); /* see fo_pt_kill_on_close */

	fo_lock_flush(ino, rf, fi);

	/* our own writes must not make the next open drop the cache, unless
	 * they bypassed it */
	if (fh->wo_direct) {
		inode_cache_invalidate(ino);
	} else if (ret == 0 && (fi->flags & O_ACCMODE) != O_RDONLY) {
		struct stat st;

		if (router_fgetattr(rf, &st) == 0)
			inode_cache_stamp(ino, &st);
	}
	fuse_reply_err(req, -ret);
}

void fo_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fo_fh *fh = fo_fh(fi);
	struct router_file *rf = fh->rf;

	fo_lock_release(ino, rf, fi);
	/* a shared writable mapping outlives close(): its writes end here */
	if (atomic_load(&fh->pt_kill_on_close))
		fo_kill_suidgid(ino, rf);
	pt_release(ino, fh->pt_mode);
	/* nothing more is read ahead for a file nobody reads; a read under
	 * way holds the file until it ends (within the mount's timeout), and
	 * the backend's release comes then */
	router_ra_drop(rf);
	inode_handle_del(ino, rf);
	fo_fh_free(fh);
	fuse_reply_err(req, 0);
}

void fo_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi)
{
	fuse_reply_err(req, -router_fsync(fo_file(fi), datasync != 0));
}

void fo_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		  off_t length, struct fuse_file_info *fi)
{
	int ret = router_fallocate(fo_file(fi), mode, offset, length);

	if (ret == 0)
		inode_cache_invalidate(ino);
	fo_data_changed(ino); /* failed or not: see fo_write_admitted */
	fuse_reply_err(req, -ret);
}

void fo_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi)
{
	off_t r = router_lseek(fo_file(fi), off, whence);

	if (r < 0)
		return fo_reply_err(req, (int)r);
	fuse_reply_lseek(req, r);
}

void fo_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			off_t off_out, struct fuse_file_info *fi_out,
			size_t len, int flags)
{
	ssize_t n;

	fo_qos_watch(req);
	n = router_copy_range(fo_file(fi_in), off_in, fo_file(fi_out), off_out,
			      len, (unsigned)flags);
	fo_qos_watch(NULL);

	fo_data_changed(ino_out); /* failed or not: see fo_write_admitted */
	if (n < 0)
		return fo_reply_err(req, (int)n);
	inode_cache_invalidate(ino_out);
	fuse_reply_write(req, n);
}
