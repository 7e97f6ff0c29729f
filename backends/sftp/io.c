/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * io.c - reads and writes: through the file's own handle (libssh2's
 * pipelining, a read-ahead buffer for small sequential reads), through any
 * idle connection (O_DIRECT, the write-behind threads), and what a write
 * the server refused leaves to clean up.
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
 * reads of this size: libssh2 keeps four times its read size in flight,
 * so a large buffer is what keeps the link busy.  Reads of at least
 * SFTP_RA_MIN_DIRECT (FUSE sends up to 1 MiB) already do, and skip the
 * extra copy. */
#define SFTP_RA_SIZE       (2u << 20)
#define SFTP_RA_MIN_DIRECT (512u << 10)
/* ... for at most this many files per mount at once, to bound memory */
#define SFTP_RA_MAX        32

/*
 * The server refused a write (rc, from its status).  That leaves the
 * session in doubt: libssh2 1.10 then forgets the writes it had queued
 * behind the refused one, also one it had sent only in part (the SSH
 * window was full), so the server may be waiting for the rest of that
 * request and would take our next one for it (a hang until the
 * timeout).  So the session is closed (only this one: the server is
 * fine; other files' handles on it are reopened by path, as after a
 * reconnect) and the errno explained (sftp_explain_size) over another.
 * Called with c checked out; checks it in.  Returns the errno.
 */
static int sftp_write_refused(struct sftp_mount *sm, struct sftp_conn *c,
			      const char *rpath, uint64_t end, size_t need,
			      int rc)
{
	struct sftp_conn *other;

	sftp_checkin_discard(sm, c);
	if (sftp_checkout(sm, -1, 0, &other) == 0) {
		rc = sftp_explain_size(sm, other, rpath, 0, end, need, rc);
		sftp_checkin(sm, other);
	}
	return rc;
}

/* sftp_io_any(): no second handle could be had; use the file's own */
#define SFTP_USE_OWN (-4096 - 1)

/*
 * Check out any idle connection and the file's handle on it, opened by
 * path the first time (a handle of a dead session is forgotten).  Returns
 * 0, -errno if no connection could be had, or SFTP_USE_OWN (nothing
 * checked out) when no handle may or could be opened by path: the file
 * was renamed or removed through this mount since it was opened, or the
 * open failed (a file created read-only is writable only through the
 * handle that created it).
 */
static int sftp_file_any(struct sftp_mount *sm, struct sftp_file *f,
			 struct sftp_conn **out, LIBSSH2_SFTP_HANDLE **hout)
{
	LIBSSH2_SFTP_HANDLE *h = NULL;
	struct sftp_conn *c;
	int rc;

	if (__atomic_load_n(&f->moved, __ATOMIC_RELAXED))
		return SFTP_USE_OWN;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->xlock);
	if (f->xh[c->idx].h && f->xh[c->idx].gen == c->gen)
		h = f->xh[c->idx].h;
	pthread_mutex_unlock(&f->xlock);
	if (!h) {
		/* no O_APPEND: the kernel's offsets are the truth, and the
		 * pieces of one append may go out on several sessions */
		unsigned long fxf =
			f->fxf &
			~(unsigned long)(LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL |
					 LIBSSH2_FXF_TRUNC |
					 LIBSSH2_FXF_APPEND);

		h = libssh2_sftp_open_ex(c->sftp, f->rpath, strlen(f->rpath),
					 fxf, 0, LIBSSH2_SFTP_OPENFILE);
		if (!h) {
			sftp_err(c, libssh2_session_last_errno(c->ssh));
			sftp_checkin(sm, c);
			return SFTP_USE_OWN;
		}
		pthread_mutex_lock(&f->xlock);
		/* a handle of this slot's dead session was counted already */
		if (!f->xh[c->idx].h)
			sftp_pool_count_file(sm, c->idx, +1);
		f->xh[c->idx].h = h;
		f->xh[c->idx].gen = c->gen;
		pthread_mutex_unlock(&f->xlock);
	}
	*out = c;
	*hout = h;
	return 0;
}

/*
 * The buffer size to hand libssh2_sftp_read() when `want` bytes are still
 * wanted and nothing beyond them will be.  libssh2 1.10 requests four
 * times the buffer it is given ahead of the handle's position: right when
 * streaming through one handle, waste for sftp_io_any()'s reads, which
 * seek (dropping whatever was read ahead) before each request, so that a
 * 4 KiB random read had the server read, encrypt and send 16 KiB.  With a
 * quarter of what is wanted it requests just that; the rest of what the
 * server sent comes from libssh2's own buffer, with no new request, as
 * long as every later call asks for at most a quarter of what is left.
 */
static size_t sftp_no_read_ahead(size_t want)
{
	return want >= 64 ? want / 4 : want;
}

/*
 * One read or write at `off` through any connection, without f->lock.
 * Reads stop short only at end of file.  Returns bytes, -errno, or
 * SFTP_USE_OWN (see sftp_file_any).  A write cut off by a broken
 * connection fails with -EIO; the write-behind caller keeps that on the
 * file.
 */
static ssize_t sftp_io_any(struct sftp_mount *sm, struct sftp_file *f,
			   char *buf, size_t size, off_t off, bool write)
{
	LIBSSH2_SFTP_HANDLE *h = NULL;
	struct sftp_conn *c = NULL;
	size_t total = 0;
	int rc, tries = 0, stalls = 0;

	do {
		rc = sftp_file_any(sm, f, &c, &h);
		if (rc)
			return rc;
		total = 0;
		libssh2_sftp_seek64(h, (libssh2_uint64_t)off);
		while (total < size) {
			ssize_t n;

			if (write && total && vfs_call_expired()) {
				/* as in sftp_write_locked */
				c->broken = true;
				rc = -ETIMEDOUT;
				break;
			}
			n = write ? libssh2_sftp_write(h, buf + total,
						       size - total)
				  : libssh2_sftp_read(
					    h, buf + total,
					    sftp_no_read_ahead(size - total));
			if (n < 0) {
				rc = sftp_err(c, (int)n);
				if (write && !c->broken)
					return sftp_write_refused(
						sm, c, f->rpath,
						(uint64_t)off + size,
						size - total, rc);
				break;
			}
			if (n == 0) {
				if (!write)
					break; /* end of file */
				if (++stalls > 1000) {
					rc = -EIO;
					break;
				}
			}
			total += (size_t)n;
		}
		if (rc && write && c->broken) {
			/* some of it may have arrived: no retry, which could
			 * race later writes; the caller hears of the loss
			 * now (the write-behind caller makes it sticky).
			 * What our kernel still holds is discarded when the
			 * connection closes (sftp_conn_close); a piece the
			 * server already took may still land (see there) */
			sftp_checkin(sm, c);
			return -EIO;
		}
		/* a read whose idle session was found dead goes once more */
	} while (sftp_checkin_retry(sm, c, write ? 0 : rc, &tries));
	if (rc)
		return rc;
	return (ssize_t)total;
}

/* Position libssh2's per-handle stream at off.  Seeking throws away
 * libssh2's read-ahead, so only seek when the stream is elsewhere.
 * Returns whether it had to. */
static bool sftp_position(struct sftp_file *f, off_t off)
{
	if (f->need_seek || libssh2_sftp_tell64(f->h) != (uint64_t)off) {
		libssh2_sftp_seek64(f->h, (libssh2_uint64_t)off);
		f->need_seek = false;
		return true;
	}
	return false;
}

/*
 * Large reads: libssh2 1.10 splits a read into ~30 KB SSH_FXP_READs and
 * keeps up to four times the caller's buffer in flight, continuing from
 * where the last read stopped; that is the pipelining that makes
 * sequential reads fast, as long as reads arrive in order.  Reads until
 * EOF or size; called with f->lock held and c checked out.
 */
static ssize_t sftp_read_conn(struct sftp_file *f, struct sftp_conn *c,
			      char *buf, size_t size, off_t off)
{
	size_t total = 0;
	/* A read that does not continue the stream may be one of many at
	 * random places: no read-ahead for it (the next seek would throw it
	 * away).  Once reads follow each other, libssh2 reads ahead. */
	bool jumped = sftp_position(f, off);

	while (total < size) {
		size_t ask = jumped ? sftp_no_read_ahead(size - total)
				    : size - total;
		ssize_t n = libssh2_sftp_read(f->h, buf + total, ask);

		if (n == 0)
			break;
		if (n < 0) {
			f->need_seek = true;
			return sftp_err(c, (int)n);
		}
		total += n;
	}
	return (ssize_t)total;
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

ssize_t sftp_read(struct vfs_file *vf, void *buf, size_t size, off_t off)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	struct sftp_conn *c;
	ssize_t total, n;
	off_t pos;
	int tries = 0;

	/* what we (through any handle of the file) wrote behind is not
	 * there yet */
	remote_wb_drain_path(sm->wb, f->path);
	if (vf->flags & O_DIRECT) {
		/* no cache of ours, any idle connection: a guest's parallel
		 * requests run in parallel */
		n = sftp_io_any(sm, f, buf, size, off, false);
		if (n != SFTP_USE_OWN)
			return n;
	}
	pthread_mutex_lock(&f->lock);
	/* FUSE may deliver read-ahead requests out of order: whatever the
	 * buffer holds is served from it */
	total = (ssize_t)sftp_ra_copy(f, buf, size, off);
	if ((size_t)total == size ||
	    (total && f->ra_eof && off + total == f->ra_off + (off_t)f->ra_len))
		goto out;
	pos = off + total;
	do {
		n = sftp_file_begin(sm, f, &c);
		if (n < 0)
			break;
		if (sftp_ra_want(sm, f, size - total, pos)) {
			n = sftp_read_conn(f, c, f->ra, SFTP_RA_SIZE, pos);
			f->ra_len = n > 0 ? (size_t)n : 0;
			f->ra_off = pos;
			f->ra_eof = n >= 0 && (size_t)n < SFTP_RA_SIZE;
			if (n >= 0)
				n = sftp_ra_copy(f, (char *)buf + total,
						 size - total, pos);
		} else {
			n = sftp_read_conn(f, c, (char *)buf + total,
					   size - total, pos);
		}
	} while (sftp_checkin_retry(sm, c, n < 0 ? (int)n : 0, &tries));
	total = n < 0 ? n : total + n;
out:
	if (total > 0)
		f->next_off = off + total;
	pthread_mutex_unlock(&f->lock);
	return total;
}

/*
 * libssh2 1.10 sends the whole buffer as pipelined ~30 KB writes and
 * returns as each is acknowledged in order; the loop ends when the
 * server has acknowledged everything, so no write is reported done that
 * the server has not accepted.  Called with f->lock held.
 */
static int sftp_write_locked(struct sftp_mount *sm, struct sftp_file *f,
			     const char *buf, size_t size, off_t off)
{
	struct sftp_conn *c;
	size_t total = 0;
	bool refused = false;
	int rc, stalls = 0;

	rc = sftp_file_begin(sm, f, &c);
	if (rc)
		return rc;
	f->ra_len = 0;
	sftp_position(f, off);
	while (total < size) {
		ssize_t n;

		if (total && vfs_call_expired()) {
			/* a lease's deadline passed mid-write: what is left
			 * must never arrive, so the connection goes */
			c->broken = true;
			rc = -ETIMEDOUT;
			break;
		}
		n = libssh2_sftp_write(f->h, buf + total, size - total);
		if (n < 0) {
			rc = sftp_err(c, (int)n);
			refused = !c->broken;
			break;
		}
		if (n == 0 && ++stalls > 1000) {
			rc = -EIO;
			break;
		}
		total += n;
	}
	if (rc) {
		f->need_seek = true;
		/* some of this data may not have arrived: this call says so,
		 * and the next write may go again on another connection
		 * (sftp_conn_close says what of this one may still land).
		 * Only write-behind, whose caller was answered long ago,
		 * keeps the error for the file's next write, fsync or close. */
		if (c->broken)
			rc = -EIO;
	}
	if (refused)
		return sftp_write_refused(sm, c, f->rpath, (uint64_t)off + size,
					  size - total, rc);
	sftp_checkin(sm, c);
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
	/* any connection: the two writers' pieces go out in parallel */
	n = sftp_io_any(sm, f, (char *)buf, size, off, true);
	if (n == SFTP_USE_OWN) {
		/* no second handle for this file: its own still writes */
		pthread_mutex_lock(&f->lock);
		n = sftp_write_locked(sm, f, buf, size, off);
		pthread_mutex_unlock(&f->lock);
	}
	remote_cache_invalidate(sm->cache, f->path);
	return n < 0 ? (int)n : 0;
}

ssize_t sftp_write(struct vfs_file *vf, const void *buf, size_t size, off_t off)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	/* appends go through the file's own handle, in order: the server
	 * puts each at its end of file, whatever offset we send */
	bool append = vf->flags & O_APPEND;
	bool direct = (vf->flags & O_DIRECT) && !append;
	bool behind = sm->wb && !direct && !append && !vf->write_through &&
		      !(vf->flags & (O_SYNC | O_DSYNC));
	int rc;

	if (!behind)
		/* synchronous: nothing of ours, through any handle of the
		 * file, may still be on its way to land after this */
		remote_wb_drain_path(sm->wb, f->path);
	pthread_mutex_lock(&f->lock);
	/* a lost write fails every write until close or fsync reports it */
	rc = remote_wb_err(sm->wb, &f->wbf);
	if (!rc && !behind && !direct) {
		rc = sftp_write_locked(sm, f, buf, size, off);
	} else if (!rc) {
		/* written through another handle: what libssh2 read ahead
		 * on this one may be older */
		f->ra_len = 0;
		f->need_seek = true;
	}
	pthread_mutex_unlock(&f->lock);
	if (!rc && behind) {
		rc = remote_wb_write(sm->wb, &f->wbf, buf, size, off);
	} else if (!rc && direct) {
		/* O_DIRECT (QEMU's cache=none): any idle connection, so that
		 * a guest's parallel requests run in parallel */
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
