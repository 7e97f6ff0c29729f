/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router_file.c - open files (router.h, "Open files"): struct router_file
 * and its references, the calls on an open file, zero-copy I/O, and the
 * copy_range the router does itself for a backend without one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "vfsd/router_internal.h"

bool router_file_is_shared(const struct router_file *f)
{
	return rt_caps(f->mount) & VFS_CAP_SHARED;
}

bool router_file_revoked(const struct router_file *f)
{
	return atomic_load(&f->mount->revoked);
}

const void *router_file_mount(const struct router_file *f)
{
	return f->mount;
}

bool router_file_uncached(const struct router_file *f)
{
	return f->vf->uncached;
}

/* The open files, for router_foreach_file (a list: an open or a close
 * touches two pointers, a report walks them all). */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct router_file *reg_head;

static void reg_add(struct router_file *f)
{
	pthread_mutex_lock(&reg_lock);
	f->reg_prev = NULL;
	f->reg_next = reg_head;
	if (reg_head)
		reg_head->reg_prev = f;
	reg_head = f;
	pthread_mutex_unlock(&reg_lock);
}

static void reg_del(struct router_file *f)
{
	pthread_mutex_lock(&reg_lock);
	if (f->reg_prev)
		f->reg_prev->reg_next = f->reg_next;
	else
		reg_head = f->reg_next;
	if (f->reg_next)
		f->reg_next->reg_prev = f->reg_prev;
	pthread_mutex_unlock(&reg_lock);
}

void router_foreach_file(router_file_fn fn, void *ctx)
{
	pthread_mutex_lock(&reg_lock);
	for (struct router_file *f = reg_head; f; f = f->reg_next) {
		struct router_file_view v = {
			.path = f->path,
			.mount = f->mount->prefix,
			.read_bytes = atomic_load(&f->io_bytes[0]),
			.write_bytes = atomic_load(&f->io_bytes[1]),
			.read_ops = atomic_load(&f->io_ops[0]),
			.write_ops = atomic_load(&f->io_ops[1]),
			.held_ns = atomic_load(&f->held_ns),
			.waiting = atomic_load(&f->waiting),
			.limited = qos_file_limited(f->qos),
			.shared = router_file_is_shared(f),
		};

		fn(ctx, &v);
	}
	pthread_mutex_unlock(&reg_lock);
}

/*
 * Before a read or write of f goes to its backend: its limits, then its
 * share of a busy mount (fair.h) unless `fair` is false, then a look at
 * what the waits may have changed (a mount removed by force meanwhile:
 * its files fail EIO and write nothing more); counted for `vfsctl
 * files`.  0, or -errno (-EINTR: the request was given up while it
 * waited, qos.h).  *counted says whether fair_enter() counted it:
 * io_done() gets that.
 */
#define QOS_COPY_MAX (1u << 20) /* a limited server-side copy per call */

/* The end of a wait router_admit() counted in f's `waiting`. */
static void admit_unhold(struct router_file *f, struct router_admit *a)
{
	if (!a->since)
		return;
	atomic_fetch_sub(&f->waiting, 1);
	atomic_fetch_add(&f->held_ns, (uint64_t)(vfs_mono_ns() - a->since));
	a->since = 0;
}

enum gate_fair { GATE_NO_FAIR, GATE_FAIR, GATE_FAIR_AHEAD };

/* A read's share: a reader's that reads ahead may have several of its
 * reads in flight while alone (fair_enter_ahead). */
static enum gate_fair read_gate(struct router_file *f)
{
	return rt_ra_open(f) ? GATE_FAIR_AHEAD : GATE_FAIR;
}

static int io_gate(struct router_file *f, struct router_admit *a, enum rop op,
		   bool write, size_t size, enum gate_fair fair, bool *counted)
{
	int64_t t0 = vfs_mono_ns(), held;
	int ret = 0;

	*counted = false;
	atomic_fetch_add(&f->waiting, 1);
	if (!a) {
		ret = qos_io(f->qos, write, size);
	} else if (!a->admitted) {
		/* a wait router_admit() began (the request could not be
		 * parked) goes on here: one request, counted once */
		admit_unhold(f, a);
		ret = qos_wait(f->qos, write, size, &a->t);
		a->admitted = ret == 0;
	}
	if (ret == 0 && fair == GATE_FAIR_AHEAD)
		*counted = fair_enter_ahead(&f->mount->fair, &f->flow, size,
					    qos_file_weight(f->qos));
	else if (ret == 0 && fair == GATE_FAIR)
		*counted = fair_enter(&f->mount->fair, &f->flow, size,
				      qos_file_weight(f->qos));
	if (ret == 0 && !rt_file_ready(f, op, &ret) && *counted) {
		fair_exit(&f->mount->fair, &f->flow, size);
		*counted = false;
	}
	atomic_fetch_sub(&f->waiting, 1);
	held = vfs_mono_ns() - t0;
	/* the gate's own cost is no wait worth showing */
	if (held > 20000)
		atomic_fetch_add(&f->held_ns, (uint64_t)held);
	if (ret == 0)
		atomic_fetch_add(&f->io_ops[write], 1);
	return ret;
}

int64_t router_admit(struct router_file *f, bool write, size_t size,
		     struct router_admit *a)
{
	int64_t wait = qos_try(f->qos, write, size, &a->t);

	if (wait > 0) {
		if (!a->since) {
			a->since = vfs_mono_ns();
			atomic_fetch_add(&f->waiting, 1);
		}
		return wait;
	}
	admit_unhold(f, a);
	a->admitted = true;
	return 0;
}

void router_admit_queued(struct router_file *f, struct router_admit *a)
{
	qos_hold(f->qos, &a->t);
	if (!a->since) {
		a->since = vfs_mono_ns();
		atomic_fetch_add(&f->waiting, 1);
	}
}

void router_admit_drop(struct router_file *f, struct router_admit *a)
{
	qos_ticket_drop(&a->t);
	admit_unhold(f, a);
}

static void io_done(struct router_file *f, bool counted, bool write,
		    size_t size, ssize_t ret)
{
	if (counted)
		fair_exit(&f->mount->fair, &f->flow, size);
	if (ret > 0)
		atomic_fetch_add(&f->io_bytes[write], (uint64_t)ret);
}

static int file_new(struct router_mount *m, struct vfs_file *vf,
		    const char *path, struct router_file **out)
{
	struct router_file *f = calloc(1, sizeof(*f));

	if (!f || !(f->path = strdup(path))) {
		free(f);
		m->ops->release(vf);
		return -ENOMEM;
	}
	vf->mount = m->vm;
	f->mount = m; /* takes over the caller's reference */
	f->vf = vf;
	f->refs = 1;
	atomic_init(&f->ra_size, -1);
	f->qos = qos_file_new(path);
	atomic_fetch_add(&m->open_files, 1);
	reg_add(f);
	*out = f;
	return 0;
}

int router_create(const char *path, int flags, mode_t mode,
		  const struct vfs_cred *cred, struct router_file **out,
		  struct stat *st)
{
	const char *rel;
	struct vfs_file *vf;
	int ret;
	struct router_mount *m = rt_route_create(ROP_CREATE, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_CREATE,
		    m->ops->create(m->vm, rel, flags,
				   rt_create_mode(m, mode, cred), cred, &vf,
				   st));
	if (ret < 0) {
		rt_mount_put(m);
		return ret;
	}
	st->st_ino = mix_ino(m->id, st->st_ino);
	return file_new(m, vf, path, out);
}

int router_open(const char *path, int flags, struct router_file **out)
{
	const char *rel;
	struct router_mount *m;
	struct vfs_file *vf;
	bool writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	int ret;

	if (writing) {
		/* refused here when no write could follow (rt_rops[ROP_WRITE])
		 */
		m = rt_route_op(ROP_WRITE, path, &rel, &ret);
		if (!m)
			return ret;
	} else {
		m = rt_resolve(path, &rel);
		if (!m)
			return rt_is_virtual_dir(path) ? -EISDIR : -ENOENT;
	}
	ret = BCALL(m, ROP_OPEN, m->ops->open(m->vm, rel, flags, &vf));
	if (ret < 0) {
		rt_mount_put(m);
		return ret;
	}
	return file_new(m, vf, path, out);
}

/* A read through the gate (`fair`: how it shares the mount), counted. */
static ssize_t read_gated(struct router_file *f, struct router_admit *a,
			  enum gate_fair fair, void *buf, size_t size,
			  off_t off)
{
	struct router_mount *m = f->mount;
	bool counted;
	ssize_t n;
	int ret;

	if (!rt_file_ready(f, ROP_READ, &ret))
		return ret;
	ret = io_gate(f, a, ROP_READ, false, size, fair, &counted);
	if (ret < 0)
		return ret;
	n = BCALL(m, ROP_READ, m->ops->read(f->vf, buf, size, off));
	io_done(f, counted, false, size, n);
	return n;
}

ssize_t router_read_admitted(struct router_file *f, struct router_admit *a,
			     void *buf, size_t size, off_t off)
{
	return read_gated(f, a, read_gate(f), buf, size, off);
}

ssize_t rt_read_ahead(struct router_file *f, void *buf, size_t size, off_t off)
{
	struct router_admit a = {0};
	ssize_t n;

	/* it never waits for limits: it fails, and the read it was for
	 * goes to the server (where it waits as any read) */
	if (router_admit(f, false, size, &a) != 0) {
		router_admit_drop(f, &a);
		return -EAGAIN;
	}
	n = read_gated(f, &a, GATE_FAIR_AHEAD, buf, size, off);
	router_admit_drop(f, &a);
	return n;
}

ssize_t router_read(struct router_file *f, void *buf, size_t size, off_t off)
{
	return router_read_admitted(f, NULL, buf, size, off);
}

int router_zerocopy_begin(struct router_file *f, struct router_admit *a,
			  bool write, size_t size, off_t off,
			  struct router_zerocopy *zc)
{
	enum rop op = write ? ROP_WRITE : ROP_READ;
	int ret;

	if (!rt_file_ready(f, op, &ret))
		return ret;
	/* O_DIRECT: the backend may have to serve what the host fd cannot
	 * (backends/local.c: unaligned requests) */
	if (f->vf->host_fd < 0 || (f->vf->flags & O_DIRECT))
		return 0;
	ret = io_gate(f, a, op, write, size, GATE_NO_FAIR, &(bool){false});
	if (ret < 0)
		return ret;
	/* what BCALL checks: the file system beneath cannot drop a write it
	 * was handed, so the last check is before handing it over */
	if (vfs_call_expired())
		return -ETIMEDOUT;
	router_file_get(f);
	*zc = (struct router_zerocopy){.fd = f->vf->host_fd,
				       .f = f,
				       .write = write,
				       .size = size,
				       .off = off};
	stats_begin(&f->mount->stats, &zc->t0);
	return 1;
}

void router_zerocopy_end(struct router_zerocopy *zc, ssize_t ret)
{
	struct router_file *f = zc->f;
	enum rop op = zc->write ? ROP_WRITE : ROP_READ;
	long bytes = (long)ret;
	struct stat st;

	if (!zc->write && ret >= 0) {
		/* the reply says nothing of what the kernel spliced; a
		 * read is short only at the end of the file */
		off_t left = 0;

		bytes = (long)zc->size;
		if (fstat(zc->fd, &st) == 0) {
			if (st.st_size > zc->off)
				left = st.st_size - zc->off;
			if (left < bytes)
				bytes = (long)left;
		}
	}
	stats_end(&f->mount->stats, rt_rops[op].stat, &zc->t0, bytes);
	io_done(f, false, zc->write, zc->size, bytes);
	router_release(f);
}

int router_file_passthrough_fd(struct router_file *f)
{
	/* the kernel's own I/O on the file would pass no limit */
	if (!(rt_caps(f->mount) & VFS_CAP_PASSTHROUGH) || f->vf->uncached ||
	    atomic_load(&f->mount->revoked) || qos_file_limited(f->qos))
		return -1;
	return f->vf->host_fd;
}

ssize_t router_write_admitted(struct router_file *f, struct router_admit *a,
			      const void *buf, size_t size, off_t off)
{
	struct router_mount *m = f->mount;
	bool counted;
	ssize_t n;
	int ret;

	if (!rt_file_ready(f, ROP_WRITE, &ret))
		return ret;
	ret = io_gate(f, a, ROP_WRITE, true, size, GATE_FAIR, &counted);
	if (ret < 0)
		return ret;
	n = BCALL(m, ROP_WRITE, m->ops->write(f->vf, buf, size, off));
	io_done(f, counted, true, size, n);
	return n;
}

ssize_t router_write(struct router_file *f, const void *buf, size_t size,
		     off_t off)
{
	return router_write_admitted(f, NULL, buf, size, off);
}

int router_fgetattr(struct router_file *f, struct stat *st)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!rt_file_ready(f, ROP_FGETATTR, &ret))
		return ret;
	ret = BCALL(m, ROP_FGETATTR, m->ops->fgetattr(f->vf, st));
	if (ret == 0)
		st->st_ino = mix_ino(m->id, st->st_ino);
	return ret;
}

int router_flush(struct router_file *f)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!rt_file_ready(f, ROP_FLUSH, &ret))
		return ret;
	return BCALL(m, ROP_FLUSH, m->ops->flush(f->vf));
}

/*
 * The name of open file f for its backend: path's part inside f's mount,
 * or NULL when path is NULL or names something on another mount (the
 * file was unlinked, or renamed across the router's prefixes).
 */
static const char *file_rel(const struct router_file *f, const char *path)
{
	const char *rel;
	struct router_mount *m = path ? rt_resolve(path, &rel) : NULL;

	if (!m)
		return NULL;
	rt_mount_put(m); /* f holds its own reference */
	return m == f->mount ? rel : NULL;
}

int router_getlk(const char *path, struct router_file *f, struct vfs_lock *lk)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!rt_file_ready(f, ROP_GETLK, &ret))
		return ret;
	return BCALL(m, ROP_GETLK, m->ops->getlk(f->vf, file_rel(f, path), lk));
}

int router_setlk(const char *path, struct router_file *f,
		 const struct vfs_lock *lk, bool wait,
		 bool (*interrupted)(void *), void *arg)
{
	struct router_mount *m = f->mount;
	int ret;

	/* giving locks up is still done on a mount removed by force */
	if (lk->type == F_UNLCK && atomic_load(&m->revoked) &&
	    rt_ops_has(m->ops, ROP_SETLK))
		return m->ops->setlk(f->vf, NULL, lk, false, NULL, NULL);
	if (!rt_file_ready(f, ROP_SETLK, &ret))
		return ret;
	return BCALL(m, ROP_SETLK,
		     m->ops->setlk(f->vf, file_rel(f, path), lk, wait,
				   interrupted, arg));
}

int router_fsync(struct router_file *f, bool datasync)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!rt_file_ready(f, ROP_FSYNC, &ret))
		return ret;
	return BCALL(m, ROP_FSYNC, m->ops->fsync(f->vf, datasync));
}

int router_fallocate(struct router_file *f, int mode, off_t off, off_t len)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!rt_file_ready(f, ROP_FALLOCATE, &ret))
		return ret;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(rt_caps(m) & VFS_CAP_PUNCH_HOLE))
		return -EOPNOTSUPP;
	return BCALL(m, ROP_FALLOCATE,
		     m->ops->fallocate(f->vf, mode, off, len));
}

off_t router_lseek(struct router_file *f, off_t off, int whence)
{
	struct router_mount *m = f->mount;
	struct stat st;
	int ret;

	if (rt_file_ready(f, ROP_LSEEK, &ret))
		return BCALL(m, ROP_LSEEK, m->ops->lseek(f->vf, off, whence));
	if (ret != EMULATED)
		return ret;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	/* without hole information the whole file is data */
	ret = router_fgetattr(f, &st);
	if (ret < 0)
		return ret;
	if (off < 0 || off >= st.st_size)
		return -ENXIO;
	return whence == SEEK_DATA ? off : st.st_size;
}

/*
 * A backend without server-side copy: move the data here, in large
 * pieces, rather than let the kernel bounce every page through two FUSE
 * requests.  The backends keep many requests in flight for each piece.
 * At most COPY_MAX per call (callers loop on short counts), so one request
 * never holds a worker for long.
 *
 * Holes stay holes although these backends cannot report them: a piece
 * of zeros that would land at or past the destination's end of file
 * already reads as zeros there, so it is not sent; the size is set once
 * at the end instead.  That is what keeps an image clone sparse (vfsctl
 * copies into a file it sizes only afterwards).
 */
#define COPY_PIECE (1u << 20)
#define COPY_MAX   (64u << 20)

static bool all_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* the first 16 bytes checked one by one, the rest by overlapping
	 * comparison with themselves: fast, and any non-zero byte shows */
	for (size_t i = 0; i < len && i < 16; i++)
		if (p[i])
			return false;
	return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

static ssize_t copy_in_daemon(struct router_file *in, off_t off_in,
			      struct router_file *out, off_t off_out,
			      size_t len)
{
	void *buf = vfs_scratch(VFS_SCRATCH_ROUTER, COPY_PIECE);
	struct stat st;
	off_t eof, skipped_to = 0;
	size_t done = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = router_fgetattr(out, &st);
	if (ret < 0)
		return ret;
	eof = st.st_size;
	if (len > COPY_MAX)
		len = COPY_MAX;
	while (done < len) {
		size_t want = len - done < COPY_PIECE ? len - done : COPY_PIECE;
		off_t at = off_out + (off_t)done;
		ssize_t n = router_read(in, buf, want, off_in + (off_t)done);
		ssize_t w;

		if (n <= 0) {
			if (n < 0 && done == 0)
				return n;
			break;
		}
		if (at >= eof && all_zero(buf, (size_t)n)) {
			done += (size_t)n;
			skipped_to = at + n;
			continue;
		}
		w = router_write(out, buf, (size_t)n, at);
		if (w < 0) {
			if (!done)
				return w;
			break;
		}
		done += (size_t)w;
		if (at + w > eof)
			eof = at + w;
		if (w < n)
			break;
	}
	if (skipped_to > eof) {
		/* zeros at the end were skipped: the size must still say
		 * they were copied, and one written byte does that through
		 * the handle alone (no path needed, one block allocated) */
		static const char zero;

		ret = (int)router_write(out, &zero, 1, skipped_to - 1);
		if (ret < 0)
			return ret;
	}
	return (ssize_t)done;
}

/*
 * A copy_file_range(2) under limits waits for them in its FUSE worker
 * thread (it is one request for the source and the target: the FUSE
 * layer parks only reads and writes, fuse_wait.c).  At most COPY_WAIT_MAX
 * such copies run at once, so that copies under a very low limit cannot
 * hold the workers every other request needs; a copy beyond them is
 * answered EOPNOTSUPP, on which the kernel (Linux 6.7 and later) or the
 * caller (cp, vfsctl image clone) copies through reads and writes, which
 * wait parked.
 */
#define COPY_WAIT_MAX 32
static atomic_uint copies_limited;

static ssize_t copy_range(struct router_file *in, off_t off_in,
			  struct router_file *out, off_t off_out, size_t len,
			  unsigned flags)
{
	struct router_mount *m = out->mount;
	int ret;

	/* a limited copy goes in pieces (callers loop on short counts): a
	 * server's copy is counted up front, and one call for terabytes
	 * would be charged at once and hold every file under the rule back
	 * for days; one in the daemon would hold its worker as long */
	if (len > QOS_COPY_MAX &&
	    (qos_file_limited(in->qos) || qos_file_limited(out->qos)))
		len = QOS_COPY_MAX;
	if (rt_file_ready(out, ROP_COPY_RANGE, &ret)) {
		ret = qos_io(in->qos, false, len);
		if (ret == 0)
			ret = io_gate(out, NULL, ROP_COPY_RANGE, true, len,
				      GATE_NO_FAIR, &(bool){false});
		if (ret < 0)
			return ret;
		return BCALL(m, ROP_COPY_RANGE,
			     m->ops->copy_range(in->vf, off_in, out->vf,
						off_out, len, flags));
	}
	if (ret != EMULATED)
		return ret;
	return copy_in_daemon(in, off_in, out, off_out, len);
}

ssize_t router_copy_range(struct router_file *in, off_t off_in,
			  struct router_file *out, off_t off_out, size_t len,
			  unsigned flags)
{
	struct router_mount *m = out->mount;
	ssize_t n;

	if (atomic_load(&in->mount->revoked))
		return -EIO;
	if (in->mount != m)
		return atomic_load(&m->revoked) ? -EIO : -EXDEV;
	if (flags)
		return m->readonly ? -EROFS : -EINVAL;
	if (!qos_file_limited(in->qos) && !qos_file_limited(out->qos))
		return copy_range(in, off_in, out, off_out, len, flags);
	if (atomic_fetch_add(&copies_limited, 1) >= COPY_WAIT_MAX) {
		atomic_fetch_sub(&copies_limited, 1);
		return -EOPNOTSUPP;
	}
	n = copy_range(in, off_in, out, off_out, len, flags);
	atomic_fetch_sub(&copies_limited, 1);
	return n;
}

void router_file_get(struct router_file *f)
{
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

bool rt_file_put(struct router_file *f)
{
	return __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0;
}

void router_release(struct router_file *f)
{
	if (rt_file_put(f))
		rt_file_free(f);
}

void rt_file_free(struct router_file *f)
{
	struct router_mount *m = f->mount;
	int ret;

	/* its reads ahead under way use the backend's handle */
	rt_ra_free(f);
	ret = BCALL_ALWAYS(m, ROP_RELEASE, m->ops->release(f->vf));

	if (ret < 0)
		log_debug("release on %s: %s", m->prefix, strerror(-ret));
	atomic_fetch_sub(&m->open_files, 1);
	reg_del(f);
	rt_mount_put(m);
	qos_file_free(f->qos);
	free(f->path);
	free(f);
}
