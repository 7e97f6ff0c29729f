/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * io.c - reads and writes: through the file's own handle (a read-ahead
 * buffer for small sequential reads), through the file's handle on any
 * session (O_DIRECT, the write-behind threads), and the errno of a write
 * the server refused.  Every read or write larger than the server's
 * request size goes out as a pipeline (req.c), and calls from many
 * threads share a session's channel, so random I/O overlaps on the wire.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/callctx.h"
#include "backends/sftp/internal.h"

/* Small sequential reads are served from a per-file buffer filled with
 * one pipelined read of this size, so that the link stays busy while the
 * kernel asks in small pieces.  Reads of at least SFTP_RA_MIN_DIRECT
 * (FUSE sends up to 1 MiB) are pipelined by themselves and skip the
 * extra copy. */
#define SFTP_RA_SIZE       (2u << 20)
#define SFTP_RA_MIN_DIRECT (512u << 10)
/* ... for at most this many files per mount at once, to bound memory */
#define SFTP_RA_MAX        32

/*
 * Write [off, off+size) of f through handle h on c's session.  A refusal
 * is named over the same session (sftp_explain_size), which stays in step:
 * the engine leaves nothing half sent.  A write cut off by a broken
 * session fails with -EIO: some of it may have arrived, so it is not
 * retried (it could race later writes) and the caller hears of the loss
 * now (write-behind keeps it on the file); a missed deadline stays
 * -ETIMEDOUT.
 */
static int sftp_pwrite_on(struct sftp_mount *sm, struct sftp_conn *c,
			  const struct sftp_file *f,
			  const struct sftp_handle *h, const char *buf,
			  size_t size, off_t off)
{
	int rc = sftp_r_pwrite(c, h, buf, size, (uint64_t)off, NULL);

	if (!rc)
		return 0;
	if (!c->broken)
		return sftp_explain_size(sm, c, f->rpath, 0,
					 (uint64_t)off + size, size, rc);
	return rc == -ETIMEDOUT ? rc : -EIO;
}

/* sftp_file_any(): no second handle could be had; use the file's own */
#define SFTP_USE_OWN (-4096 - 1)

/* f's extra handle on c's session, opened by path the first time: 0 or
 * -errno (nothing checked in). */
static int sftp_file_on(struct sftp_mount *sm, struct sftp_file *f,
			struct sftp_conn *c, struct sftp_handle *hout)
{
	bool have = false;
	int rc;

	pthread_mutex_lock(&f->xlock);
	if (f->xh[c->idx].h.len && f->xh[c->idx].gen == c->gen) {
		*hout = f->xh[c->idx].h;
		have = true;
	}
	pthread_mutex_unlock(&f->xlock);
	if (!have) {
		/* no O_APPEND: the kernel's offsets are the truth, and the
		 * pieces of one append may go out on several sessions */
		uint32_t fxf = f->fxf & ~(SFTP_FXF_CREAT | SFTP_FXF_EXCL |
					  SFTP_FXF_TRUNC | SFTP_FXF_APPEND);
		struct sftp_handle old = {0};

		if (__atomic_load_n(&f->moved, __ATOMIC_RELAXED))
			return -ESTALE;
		rc = sftp_r_open(c, f->rpath, fxf, NULL, hout);
		if (rc)
			return rc;
		pthread_mutex_lock(&f->xlock);
		if (f->xh[c->idx].h.len && f->xh[c->idx].gen == c->gen) {
			/* another thread opened one meanwhile: keep its */
			old = *hout;
			*hout = f->xh[c->idx].h;
		} else {
			/* a handle of this slot's dead session was counted
			 * already */
			if (!f->xh[c->idx].h.len)
				sftp_pool_count_file(sm, c->idx, +1);
			f->xh[c->idx].h = *hout;
			f->xh[c->idx].gen = c->gen;
		}
		pthread_mutex_unlock(&f->xlock);
		if (old.len)
			sftp_r_close_async(c, &old);
	}
	return 0;
}

/*
 * Check out any session and the file's handle on it, opened by path the
 * first time (a handle of a dead session is forgotten).  Returns 0, -errno
 * if no session could be had, or SFTP_USE_OWN (nothing checked out) when
 * no handle may or could be opened by path: the file was renamed or
 * removed through this mount since it was opened, or the open failed (a
 * file created read-only is writable only through the handle that
 * created it).
 */
static int sftp_file_any(struct sftp_mount *sm, struct sftp_file *f,
			 size_t size, struct sftp_conn *c,
			 struct sftp_handle *hout)
{
	int rc;

	if (__atomic_load_n(&f->moved, __ATOMIC_RELAXED))
		return SFTP_USE_OWN;
	rc = sftp_checkout_data(sm, size, c);
	if (rc)
		return rc;
	rc = sftp_file_on(sm, f, c, hout);
	if (rc) {
		sftp_checkin(sm, c);
		return c->broken ? rc : SFTP_USE_OWN;
	}
	return 0;
}

/*
 * One read or write at `off` through any session, without f->lock.
 * Reads stop short only at end of file.  Returns bytes, -errno, or
 * SFTP_USE_OWN (see sftp_file_any).  A write cut off by a broken session
 * fails with -EIO; the write-behind caller keeps that on the file.
 */
static ssize_t sftp_io_any(struct sftp_mount *sm, struct sftp_file *f,
			   char *buf, size_t size, off_t off, bool write)
{
	struct sftp_conn c;
	struct sftp_handle h;
	ssize_t n;
	int rc, tries = 0;

	do {
		rc = sftp_file_any(sm, f, size, &c, &h);
		if (rc)
			return rc;
		if (write) {
			rc = sftp_pwrite_on(sm, &c, f, &h, buf, size, off);
			sftp_checkin(sm, &c);
			return rc ? rc : (ssize_t)size;
		}
		n = sftp_r_pread(&c, &h, buf, size, (uint64_t)off);
		rc = n < 0 ? (int)n : 0;
		/* a read whose session was found dead goes once more */
	} while (sftp_checkin_retry(sm, &c, rc, &tries));
	return rc ? rc : n;
}

/* Copy what the read-ahead buffer holds of [off, off+size) to buf;
 * returns the bytes copied (0 when off is outside it). */
static size_t sftp_ra_copy(struct sftp_file *f, char *buf, size_t size,
			   off_t off)
{
	size_t skip, n;

	if (!f->ra_len || off < f->ra_off ||
	    off >= f->ra_off + (off_t)f->ra_len)
		return 0;
	skip = off - f->ra_off;
	n = f->ra_len - skip < size ? f->ra_len - skip : size;
	memcpy(buf, f->ra + skip, n);
	return n;
}

/* Use a read-ahead buffer for f?  Only for the second read in a row that
 * continues the previous one, not for O_DIRECT (no cache of ours). */
static bool sftp_ra_want(struct sftp_mount *sm, struct sftp_file *f,
			 size_t size, off_t off)
{
	if (size >= SFTP_RA_MIN_DIRECT)
		return false;
	if (f->ra)
		return off == f->next_off || f->ra_len == 0;
	if ((f->base.flags & O_DIRECT) || off == 0 || off != f->next_off)
		return false;
	if (__atomic_add_fetch(&sm->ra_buffers, 1, __ATOMIC_RELAXED) >
	    SFTP_RA_MAX) {
		__atomic_sub_fetch(&sm->ra_buffers, 1, __ATOMIC_RELAXED);
		return false;
	}
	f->ra = malloc(SFTP_RA_SIZE);
	if (!f->ra) {
		__atomic_sub_fetch(&sm->ra_buffers, 1, __ATOMIC_RELAXED);
		return false;
	}
	return true;
}

/*
 * A read through the file's own handle.  Reads that fill the read-ahead
 * buffer run under f->lock (they are one stream); others only look the
 * handle up under it and then run beside the file's other calls.
 */
static ssize_t sftp_read_own(struct sftp_mount *sm, struct sftp_file *f,
			     char *buf, size_t size, off_t off)
{
	struct sftp_conn c;
	struct sftp_handle h;
	ssize_t total, n;
	off_t pos;
	int tries = 0;
	bool ra;

	pthread_mutex_lock(&f->lock);
	/* FUSE may deliver read-ahead requests out of order: whatever the
	 * buffer holds is served from it, to small reads only (a large one
	 * asks the server: the router's read-ahead reads 1 MiB and counts on
	 * data no older than its read) */
	total = size < SFTP_RA_MIN_DIRECT
			? (ssize_t)sftp_ra_copy(f, buf, size, off)
			: 0;
	if ((size_t)total == size ||
	    (total && f->ra_eof && off + total == f->ra_off + (off_t)f->ra_len))
		goto out;
	pos = off + total;
	do {
		n = sftp_file_begin(sm, f, &c);
		if (n < 0)
			break;
		ra = sftp_ra_want(sm, f, size - total, pos);
		if (ra) {
			n = sftp_r_pread(&c, &f->h, f->ra, SFTP_RA_SIZE,
					 (uint64_t)pos);
			f->ra_len = n > 0 ? (size_t)n : 0;
			f->ra_off = pos;
			f->ra_eof = n >= 0 && (size_t)n < SFTP_RA_SIZE;
			if (n >= 0)
				n = sftp_ra_copy(f, buf + total, size - total,
						 pos);
		} else {
			h = f->h;
			pthread_mutex_unlock(&f->lock);
			n = sftp_r_pread(&c, &h, buf + total, size - total,
					 (uint64_t)pos);
			pthread_mutex_lock(&f->lock);
		}
	} while (sftp_checkin_retry(sm, &c, n < 0 ? (int)n : 0, &tries));
	total = n < 0 ? n : total + n;
out:
	if (total > 0)
		f->next_off = off + total;
	pthread_mutex_unlock(&f->lock);
	return total;
}

ssize_t sftp_read(struct vfs_file *vf, void *buf, size_t size, off_t off)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	ssize_t n;

	/* what we (through any handle of the file) wrote behind is not
	 * there yet */
	remote_wb_drain_path(sm->wb, f->path);
	if (vf->flags & O_DIRECT) {
		/* no cache of ours, any session: a guest's parallel
		 * requests run in parallel (sftp_checkout_data) */
		n = sftp_io_any(sm, f, buf, size, off, false);
		if (n != SFTP_USE_OWN)
			return n;
	}
	return sftp_read_own(sm, f, buf, size, off);
}

/*
 * A write through the file's own handle: every piece acknowledged before
 * it returns, so no write is reported done that the server has not
 * accepted.  Called with f->lock held.
 */
static int sftp_write_locked(struct sftp_mount *sm, struct sftp_file *f,
			     const char *buf, size_t size, off_t off)
{
	struct sftp_conn c;
	int rc;

	rc = sftp_file_begin(sm, f, &c);
	if (rc)
		return rc;
	f->ra_len = 0;
	/* after -EIO the next write may go again on another session
	 * (sftp_sess_close says what of this one may still land) */
	rc = sftp_pwrite_on(sm, &c, f, &f->h, buf, size, off);
	sftp_checkin(sm, &c);
	return rc;
}

/* A write through the file's own handle, f->lock held only to find it. */
static int sftp_write_own(struct sftp_mount *sm, struct sftp_file *f,
			  const char *buf, size_t size, off_t off)
{
	struct sftp_handle h;
	struct sftp_conn c;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = sftp_file_begin(sm, f, &c);
	h = f->h;
	f->ra_len = 0;
	pthread_mutex_unlock(&f->lock);
	if (rc)
		return rc;
	rc = sftp_pwrite_on(sm, &c, f, &h, buf, size, off);
	sftp_checkin(sm, &c);
	return rc;
}

/* The sender threads' half of write-behind (wb.c): the caller was
 * answered long ago, so the core leaves any failure for its next write,
 * flush or fsync. */
int sftp_write_behind(struct sftp_mount *sm, struct sftp_file *f,
		      const char *buf, size_t size, off_t off)
{
	ssize_t n;

	/* after one loss the rest of the queue is not sent: the file's
	 * content is in doubt until the caller hears of it */
	if (remote_wb_err(sm->wb, &f->wbf))
		return 0;
	/* the file's own session, without f->lock while the pieces are on
	 * their way: the sender threads' writes of one file overlap on one
	 * channel, in the order they were queued */
	n = sftp_write_own(sm, f, buf, size, off);
	remote_cache_invalidate(sm->cache, f->path);
	return n < 0 ? (int)n : 0;
}

/*
 * Writes this large go out synchronously even with write-behind on: a
 * write of the kernel's largest size is a pipeline of several of the
 * server's largest WRITEs, which keeps the link busy by itself, and
 * queueing it only adds two copies of its bytes and a thread hand-off
 * (docs/performance.md).
 */
#define SFTP_WB_SYNC_MIN (1u << 20)

ssize_t sftp_write(struct vfs_file *vf, const void *buf, size_t size, off_t off)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	/* appends go through the file's own handle, in order: the server
	 * puts each at its end of file, whatever offset we send */
	bool append = vf->flags & O_APPEND;
	bool direct = (vf->flags & O_DIRECT) && !append;
	bool plain = !direct && !append && !vf->write_through &&
		     !(vf->flags & (O_SYNC | O_DSYNC));
	bool behind = sm->wb && plain && size < SFTP_WB_SYNC_MIN;
	/* large: the file's own handle, without f->lock while it is on
	 * its way, so that a program's parallel writers overlap */
	bool own = sm->wb && plain && !behind;
	int rc;

	if (!behind)
		/* synchronous: nothing of ours, through any handle of the
		 * file, may still be on its way to land after this */
		remote_wb_drain_path(sm->wb, f->path);
	pthread_mutex_lock(&f->lock);
	/* a lost write is reported once, by the next write (taken) or
	 * fsync, and by every close until then; the write after that goes
	 * on, so that a caller that retries (QEMU resuming a guest paused
	 * on the error) is not refused for ever */
	rc = remote_wb_take_err(sm->wb, &f->wbf);
	if (!rc && !behind && !direct && !own)
		rc = sftp_write_locked(sm, f, buf, size, off);
	else if (!rc)
		/* written through another handle: what we read ahead on
		 * this one may be older */
		f->ra_len = 0;
	pthread_mutex_unlock(&f->lock);
	if (!rc && behind) {
		rc = remote_wb_write(sm->wb, &f->wbf, buf, size, off);
	} else if (!rc && own) {
		rc = sftp_write_own(sm, f, buf, size, off);
	} else if (!rc && direct) {
		/* O_DIRECT (QEMU's cache=none): any session, so that a
		 * guest's parallel requests run in parallel
		 * (sftp_checkout_data) */
		ssize_t n = sftp_io_any(sm, f, (char *)buf, size, off, true);

		if (n == SFTP_USE_OWN) {
			/* no second handle for this file: its own */
			pthread_mutex_lock(&f->lock);
			n = sftp_write_locked(sm, f, buf, size, off);
			pthread_mutex_unlock(&f->lock);
		}
		rc = n < 0 ? (int)n : 0;
	}
	remote_cache_invalidate(sm->cache, f->path);
	return rc ? rc : (ssize_t)size;
}

/* copy_file_range(2) without the data passing through us: copy-data
 * (OpenSSH's PROTOCOL 4.11), the two files' handles on one session. */
static ssize_t sftp_copy_data(struct sftp_mount *sm, struct sftp_file *in,
			      off_t off_in, struct sftp_file *out,
			      off_t off_out, size_t len)
{
	struct sftp_handle hin, hout;
	struct sftp_attrs a;
	struct sftp_conn c;
	uint64_t n = 0;
	int rc;

	pthread_mutex_lock(&in->lock);
	rc = sftp_file_begin(sm, in, &c);
	hin = in->h;
	pthread_mutex_unlock(&in->lock);
	if (rc)
		return rc;
	rc = sftp_file_on(sm, out, &c, &hout);
	/* copy-data copies to the end of the source and does not say how
	 * much: the count comes from its size */
	if (!rc)
		rc = sftp_r_fstat(&c, &hin, &a);
	if (!rc && !(a.flags & SFTP_ATTR_SIZE))
		rc = -EIO;
	if (!rc && (uint64_t)off_in < a.size) {
		n = a.size - (uint64_t)off_in;
		if (n > len)
			n = len;
		rc = sftp_r_copy_data(&c, &hin, (uint64_t)off_in, n, &hout,
				      (uint64_t)off_out);
		if (rc)
			rc = sftp_explain_size(sm, &c, out->rpath, 0,
					       (uint64_t)off_out + n, n, rc);
	}
	sftp_checkin(sm, &c);
	return rc ? rc : (ssize_t)n;
}

ssize_t sftp_copy_range(struct vfs_file *vin, off_t off_in,
			struct vfs_file *vout, off_t off_out, size_t len,
			unsigned flags)
{
	struct sftp_file *in = sftp_file_of(vin), *out = sftp_file_of(vout);
	struct sftp_mount *sm = sftp_mount_of(vin->mount);
	ssize_t n, done = 0;
	char *buf;

	(void)flags;
	/* what we queued for either file lands first */
	remote_wb_drain_path(sm->wb, in->path);
	remote_wb_drain_path(sm->wb, out->path);
	if (sm->feat.copy_data &&
	    !__atomic_load_n(&out->moved, __ATOMIC_RELAXED)) {
		n = sftp_copy_data(sm, in, off_in, out, off_out, len);
		if (n != -ESTALE) {
			pthread_mutex_lock(&out->lock);
			out->ra_len = 0;
			pthread_mutex_unlock(&out->lock);
			remote_cache_invalidate(sm->cache, out->path);
			return n;
		}
	}
	/* through us, a piece at a time */
	buf = malloc(1u << 20);
	if (!buf)
		return -ENOMEM;
	while ((size_t)done < len) {
		size_t want = len - (size_t)done < (1u << 20)
				      ? len - (size_t)done
				      : (1u << 20);

		n = sftp_read(vin, buf, want, off_in + done);
		if (n <= 0)
			break;
		n = sftp_write(vout, buf, (size_t)n, off_out + done);
		if (n <= 0)
			break;
		done += n;
	}
	free(buf);
	return done ? done : n;
}
