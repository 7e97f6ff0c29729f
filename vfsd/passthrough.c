/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * passthrough.c - the kernel's FUSE passthrough (see passthrough.h).
 *
 * Linux 6.9 can serve a FUSE file's reads, writes and mmaps from a backing
 * file the daemon registered (FUSE_DEV_IOC_BACKING_OPEN) and named in the
 * open reply (FOPEN_PASSTHROUGH + backing id).  That takes the daemon, its
 * copies and its context switches off the data path: for a local mount
 * the I/O costs what it costs on the directory beneath.
 *
 * libfuse 3.14 (Debian 12) predates the feature: it cannot ask for it at
 * INIT and has no field for a backing id in its open replies.  The wire
 * protocol can, so the session's device I/O goes through a thin layer
 * (libfuse's custom io) that
 *  - notes whether the kernel's INIT request offers FUSE_PASSTHROUGH,
 *  - adds FUSE_PASSTHROUGH and a stacking depth to libfuse's INIT reply,
 *  - adds FOPEN_PASSTHROUGH and the backing id to the one open or create
 *    reply that the sending thread armed just before (pt_open_begin).
 * Every other byte goes through unchanged.  With an older kernel nothing
 * is offered, nothing is added, and every file takes the normal path.
 *
 * It also negotiates FUSE_HANDLE_KILLPRIV_V2.  Without it the kernel asks
 * for security.capability (a GETXATTR round trip, under the inode lock)
 * before every write to a FUSE file, passthrough writes included, since a
 * FUSE inode never earns S_NOSEC: small writes then run at the daemon's
 * pace after all.  With it, dropping the setuid/setgid bits on a write or
 * truncate by someone without CAP_FSETID becomes the daemon's job, and the
 * kernel flags exactly those requests; libfuse 3.14 does not pass the
 * flags on, so the read hook notes them for the thread that handles the
 * request (pt_request_kills_suidgid).  Files whose privileges would need
 * dropping never open in passthrough mode (fuse_file.c), since their writes
 * would not reach us.
 *
 * The kernel insists that all open files of one FUSE inode share one mode
 * and one backing file (otherwise the open fails with EIO), so each node
 * with open files has a record here: its backing id and how many opens of
 * each mode it has.  The id is registered at the node's first
 * passthrough open and closed at its last release; files the kernel opened
 * with it hold their own reference, so closing the id never cuts them off.
 *
 * Locking: pt_lock is a leaf, held across the registration ioctl (a short
 * system call on /dev/fuse) but never across a backend call.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/hash.h"
#include "lib/log.h"
#include "vfsd/passthrough.h"

/*
 * The parts of the kernel ABI (include/uapi/linux/fuse.h, protocol 7.40)
 * that Debian 12's headers (7.38) do not have yet.  The layouts of the
 * structures below are fixed by that ABI.
 */
#define PT_OP_SETATTR         4          /* FUSE_SETATTR */
#define PT_OP_OPEN            14         /* FUSE_OPEN */
#define PT_OP_WRITE           16         /* FUSE_WRITE */
#define PT_OP_INIT            26         /* FUSE_INIT */
#define PT_OP_CREATE          35         /* FUSE_CREATE */
#define PT_INIT_EXT           (1u << 30) /* FUSE_INIT_EXT: flags2 valid */
#define PT_HANDLE_KILLPRIV_V2 (1u << 28) /* FUSE_HANDLE_KILLPRIV_V2 */
#define PT_FATTR_KILL_SUIDGID (1u << 11) /* fuse_setattr_in.valid */
#define PT_OPEN_KILL_SUIDGID  (1u << 0)  /* fuse_open_in.open_flags */
#define PT_WRITE_KILL_SUIDGID (1u << 2)  /* fuse_write_in.write_flags */
#define PT_FLAGS2_PASSTHROUGH (1u << 5)  /* FUSE_PASSTHROUGH >> 32 */
#define PT_FOPEN_DIRECT_IO    (1u << 0)
#define PT_FOPEN_KEEP_CACHE   (1u << 1)
#define PT_FOPEN_PASSTHROUGH  (1u << 7)
/*
 * How deep the backing file's file system may itself be stacked: 1 lets
 * backing files live on any ordinary file system (s_stack_depth 0) and
 * still allows one file system (overlayfs) on top of vfsd.
 */
#define PT_MAX_STACK_DEPTH    1

/* libfuse sends a reply in at most a header and a few pieces; the
 * patched piece (fuse_entry_out + fuse_open_out at most) is small. */
#define PT_MAX_IOV     8
#define PT_MAX_PATCHED 256

struct pt_backing_map { /* struct fuse_backing_map */
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define PT_IOC_BACKING_OPEN  _IOW(229, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

struct pt_in_header { /* struct fuse_in_header */
	uint32_t len, opcode;
	uint64_t unique, nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};

struct pt_init_in { /* struct fuse_init_in, its head */
	uint32_t major, minor, max_readahead, flags, flags2;
};

struct pt_setattr_in { /* struct fuse_setattr_in, its head */
	uint32_t valid, padding;
};

struct pt_open_in { /* struct fuse_open_in */
	uint32_t flags, open_flags;
};

struct pt_create_in { /* struct fuse_create_in */
	uint32_t flags, mode, umask, open_flags;
};

struct pt_write_in { /* struct fuse_write_in */
	uint64_t fh, offset;
	uint32_t size, write_flags;
	uint64_t lock_owner;
	uint32_t flags, padding;
};

struct pt_out_header { /* struct fuse_out_header */
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

struct pt_init_out { /* struct fuse_init_out */
	uint32_t major, minor, max_readahead, flags;
	uint16_t max_background, congestion_threshold;
	uint32_t max_write, time_gran;
	uint16_t max_pages, map_alignment;
	uint32_t flags2, max_stack_depth;
	uint32_t unused[6];
};

struct pt_open_out { /* struct fuse_open_out */
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

_Static_assert(sizeof(struct pt_in_header) == 40, "fuse_in_header");
_Static_assert(sizeof(struct pt_out_header) == 16, "fuse_out_header");
_Static_assert(sizeof(struct pt_init_out) == 64, "fuse_init_out");
_Static_assert(sizeof(struct pt_open_out) == 16, "fuse_open_out");
_Static_assert(sizeof(struct pt_backing_map) == 16, "fuse_backing_map");

/* ---- Negotiation --------------------------------------------------- */

static int pt_devfd = -1;              /* the session's /dev/fuse */
static atomic_bool pt_init_seen;       /* the INIT request was read */
static atomic_bool pt_kernel_offers;   /* ... and offered passthrough */
static atomic_bool pt_kernel_killpriv; /* ... and FUSE_HANDLE_KILLPRIV_V2 */
static atomic_bool pt_killpriv_want;   /* pt_init(): we ask for it */
static atomic_bool pt_killpriv;        /* our INIT reply asked for it */
static atomic_uint_fast64_t pt_init_unique;
static atomic_bool pt_allow;     /* pt_init(): we may ask */
static atomic_bool pt_asked;     /* our INIT reply asked */
static atomic_bool pt_init_done; /* our INIT reply went out */
static atomic_bool pt_on;        /* the kernel said yes (first id) */
static atomic_bool pt_off;       /* ... or no: stop trying */

/* The request this thread read last asks to drop setuid/setgid bits. */
static __thread bool pt_req_kill;

/* The open reply this thread is about to send, if it is to be amended. */
static __thread struct {
	bool armed, done;
	uint64_t fh;
	int32_t id;
} pt_arm;

static void pt_note_init(const void *buf, ssize_t n)
{
	const struct pt_in_header *h = buf;
	const struct pt_init_in *in;

	if (n < (ssize_t)(sizeof(*h) + sizeof(*in)) || h->opcode != PT_OP_INIT)
		return;
	in = (const void *)(h + 1);
	atomic_store(&pt_init_unique, h->unique);
	atomic_store(&pt_kernel_offers,
		     (in->flags & PT_INIT_EXT) &&
			     (in->flags2 & PT_FLAGS2_PASSTHROUGH));
	atomic_store(&pt_kernel_killpriv,
		     (in->flags & PT_HANDLE_KILLPRIV_V2) != 0);
	atomic_store(&pt_init_seen, true);
}

/* The kernel's "drop setuid/setgid" flag of a request, if it has one. */
static bool pt_note_kill(const void *buf, ssize_t n)
{
	const struct pt_in_header *h = buf;
	const void *arg = h + 1;
	size_t alen = (size_t)n - sizeof(*h);

	if (n < (ssize_t)sizeof(*h))
		return false;
	switch (h->opcode) {
	case PT_OP_WRITE:
		return alen >= sizeof(struct pt_write_in) &&
		       (((const struct pt_write_in *)arg)->write_flags &
			PT_WRITE_KILL_SUIDGID);
	case PT_OP_SETATTR:
		return alen >= sizeof(struct pt_setattr_in) &&
		       (((const struct pt_setattr_in *)arg)->valid &
			PT_FATTR_KILL_SUIDGID);
	case PT_OP_OPEN:
		return alen >= sizeof(struct pt_open_in) &&
		       (((const struct pt_open_in *)arg)->open_flags &
			PT_OPEN_KILL_SUIDGID);
	case PT_OP_CREATE: /* O_CREAT|O_TRUNC of a file that exists */
		return alen >= sizeof(struct pt_create_in) &&
		       (((const struct pt_create_in *)arg)->open_flags &
			PT_OPEN_KILL_SUIDGID);
	}
	return false;
}

static ssize_t pt_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);

	(void)userdata;
	/*
	 * libfuse's worker handles the request it read before it reads
	 * the next one, on the same thread: a thread-local flag reaches it.
	 */
	pt_req_kill = n > 0 && pt_note_kill(buf, n);
	if (n > 0 && !atomic_load_explicit(&pt_init_seen, memory_order_relaxed))
		pt_note_init(buf, n);
	return n;
}

/* Whether iov[count-1] can take a patch of plen bytes at its end. */
static bool pt_fits(const struct iovec *iov, int count, size_t plen)
{
	const struct iovec *last = &iov[count - 1];

	return count >= 2 && count <= PT_MAX_IOV && last->iov_len >= plen &&
	       last->iov_len <= PT_MAX_PATCHED;
}

/* Send iov with the end of iov[count-1] replaced by `patch`
 * (pt_fits() said it may). */
static ssize_t pt_writev_patched(int fd, struct iovec *iov, int count,
				 void *patch, size_t plen)
{
	struct iovec v[PT_MAX_IOV];
	unsigned char copy[PT_MAX_PATCHED];
	struct iovec *last = &iov[count - 1];

	memcpy(v, iov, count * sizeof(*iov));
	memcpy(copy, last->iov_base, last->iov_len);
	memcpy(copy + last->iov_len - plen, patch, plen);
	v[count - 1].iov_base = copy;
	return writev(fd, v, count);
}

static ssize_t pt_writev_init(int fd, struct iovec *iov, int count)
{
	const struct pt_out_header *oh = iov[0].iov_base;
	struct pt_init_out out;
	ssize_t n;

	if (count != 2 || iov[0].iov_len != sizeof(*oh) ||
	    oh->unique != atomic_load(&pt_init_unique) || oh->error != 0 ||
	    iov[1].iov_len != sizeof(out))
		return writev(fd, iov, count);
	memcpy(&out, iov[1].iov_base, sizeof(out));
	if (atomic_load(&pt_allow)) {
		out.flags |= PT_INIT_EXT;
		out.flags2 |= PT_FLAGS2_PASSTHROUGH;
		out.max_stack_depth = PT_MAX_STACK_DEPTH;
	}
	if (atomic_load(&pt_killpriv_want))
		out.flags |= PT_HANDLE_KILLPRIV_V2;
	/*
	 * Set before the reply: the kernel may send requests that rely on
	 * it (flagged writes) the moment it has read the reply.
	 */
	atomic_store(&pt_asked, atomic_load(&pt_allow));
	atomic_store(&pt_killpriv, atomic_load(&pt_killpriv_want));
	n = pt_writev_patched(fd, iov, count, &out, sizeof(out));
	if (n < 0) {
		atomic_store(&pt_asked, false);
		atomic_store(&pt_killpriv, false);
	}
	atomic_store(&pt_init_done, true);
	return n;
}

static ssize_t pt_writev_open(int fd, struct iovec *iov, int count)
{
	const struct iovec *last = &iov[count - 1];
	struct pt_open_out oo;

	if (!pt_fits(iov, count, sizeof(oo)))
		return writev(fd, iov, count);
	memcpy(&oo, (const char *)last->iov_base + last->iov_len - sizeof(oo),
	       sizeof(oo));
	if (oo.fh != pt_arm.fh)
		return writev(fd, iov, count);
	oo.open_flags &= ~(PT_FOPEN_DIRECT_IO | PT_FOPEN_KEEP_CACHE);
	oo.open_flags |= PT_FOPEN_PASSTHROUGH;
	oo.backing_id = pt_arm.id;
	pt_arm.done = true;
	return pt_writev_patched(fd, iov, count, &oo, sizeof(oo));
}

static ssize_t pt_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (pt_arm.armed) {
		pt_arm.armed = false;
		return pt_writev_open(fd, iov, count);
	}
	if (!atomic_load_explicit(&pt_init_done, memory_order_relaxed) &&
	    atomic_load(&pt_init_seen) &&
	    (atomic_load(&pt_allow) || atomic_load(&pt_killpriv_want)))
		return pt_writev_init(fd, iov, count);
	return writev(fd, iov, count);
}

static ssize_t pt_splice_receive(int fdin, off_t *offin, int fdout,
				 off_t *offout, size_t len, unsigned int flags,
				 void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int pt_session_setup(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = pt_read,
		.writev = pt_writev,
		.splice_receive = pt_splice_receive,
		.splice_send = pt_splice_receive,
	};
	int fd = fuse_session_fd(se);
	int ret;

	if (fd < 0)
		return -EBADF;
	ret = fuse_session_custom_io(se, &io, fd);
	if (ret < 0)
		return ret;
	pt_devfd = fd;
	return 0;
}

/*
 * Registering backing files takes CAP_SYS_ADMIN in the initial user
 * namespace.  Without it, asking for passthrough would only cost the
 * mount a stacking level (nothing could be stacked on it) for nothing.
 */
static bool pt_may_register(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = {{0}};
	char map[64] = "";
	FILE *f;

	if (syscall(SYS_capget, &hdr, data) < 0 ||
	    !(data[CAP_SYS_ADMIN / 32].effective &
	      (1u << (CAP_SYS_ADMIN % 32))))
		return false;
	/* the initial namespace maps every id onto itself */
	f = fopen("/proc/self/uid_map", "re");
	if (!f)
		return false;
	if (!fgets(map, sizeof(map), f))
		map[0] = 0;
	fclose(f);
	return strspn(map, " 0") > 0 && strstr(map, "4294967295") != NULL &&
	       strtoul(map, NULL, 10) == 0;
}

bool pt_init(bool allow)
{
	bool killpriv = pt_devfd >= 0 && atomic_load(&pt_kernel_killpriv);
	bool offered = pt_devfd >= 0 && atomic_load(&pt_kernel_offers);

	if (!offered) {
		log_info("kernel passthrough: not offered by this kernel "
			 "(Linux 6.9 or later has it); local files take the "
			 "normal path");
	} else if (!allow) {
		log_info("kernel passthrough: off (not with the writeback "
			 "cache)");
	} else if (!pt_may_register()) {
		log_info("kernel passthrough: off (registering backing files "
			 "needs CAP_SYS_ADMIN in the initial user namespace)");
		allow = false;
	}
	atomic_store(&pt_allow, offered && allow);
	atomic_store(&pt_killpriv_want, killpriv);
	if (!atomic_load(&pt_allow) && !killpriv)
		atomic_store(&pt_init_done, true); /* nothing to amend */
	return killpriv;
}

bool pt_request_kills_suidgid(void)
{
	return pt_req_kill &&
	       atomic_load_explicit(&pt_killpriv, memory_order_relaxed);
}

bool pt_enabled(void)
{
	return atomic_load(&pt_asked) && !atomic_load(&pt_off);
}

/* ---- Per-node records ------------------------------------------------ */

struct pt_node {
	uint64_t ino;
	int32_t id; /* backing id while pt_opens > 0 */
	uint32_t pt_opens, plain_opens;
	struct pt_node *next;
};

#define PT_BUCKETS 256
static pthread_mutex_t pt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pt_node *pt_table[PT_BUCKETS];

static struct pt_node **pt_slot(uint64_t ino)
{
	struct pt_node **pp = &pt_table[vfs_hash_u64(ino) >> 56];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

/* Register `fd` as a backing file: the id, or -errno. */
static int32_t pt_register(int fd)
{
	struct pt_backing_map map = {.fd = fd};
	int id = ioctl(pt_devfd, PT_IOC_BACKING_OPEN, &map);
	int e = errno;

	if (id > 0) {
		if (!atomic_exchange(&pt_on, true))
			log_info("kernel passthrough: on (local files bypass "
				 "the daemon for read, write and mmap)");
		return id;
	}
	if (id == 0)
		e = EIO;
	/* the kernel said no to passthrough itself, not to this file */
	if (e == EPERM || e == ENOTTY) {
		if (!atomic_exchange(&pt_off, true))
			log_warn("kernel passthrough: refused (%s); local "
				 "files take the normal path",
				 strerror(e));
	}
	return -e;
}

static void pt_unregister(int32_t id)
{
	uint32_t u = (uint32_t)id;

	if (ioctl(pt_devfd, PT_IOC_BACKING_CLOSE, &u) < 0)
		log_warn("kernel passthrough: closing backing id %d: %s", id,
			 strerror(errno));
}

enum pt_mode pt_open_begin(uint64_t ino, int fd, bool may_start, uint64_t fh)
{
	struct pt_node **pp, *n;
	bool pt = false;

	if (fd < 0 || !atomic_load(&pt_asked))
		return PT_UNTRACKED;
	pthread_mutex_lock(&pt_lock);
	pp = pt_slot(ino);
	n = *pp;
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n) {
			/* fine: without a record the node has no
			 * passthrough opens either */
			pthread_mutex_unlock(&pt_lock);
			return PT_UNTRACKED;
		}
		n->ino = ino;
		*pp = n;
	}
	if (n->pt_opens > 0) {
		pt = true;
	} else if (n->plain_opens == 0 && may_start && !atomic_load(&pt_off)) {
		int32_t id = pt_register(fd);

		if (id > 0) {
			n->id = id;
			pt = true;
		} else if (id != -ENOMEM && id != -EMFILE && id != -ENFILE) {
			/* e.g. ELOOP: the directory is on a stacked file
			 * system deeper than PT_MAX_STACK_DEPTH allows */
			log_debug("kernel passthrough: node %llu: %s",
				  (unsigned long long)ino, strerror(-id));
		}
	}
	if (pt) {
		n->pt_opens++;
		pt_arm.armed = true;
		pt_arm.done = false;
		pt_arm.fh = fh;
		pt_arm.id = n->id;
	} else {
		n->plain_opens++;
	}
	pthread_mutex_unlock(&pt_lock);
	return pt ? PT_PASSTHROUGH : PT_PLAIN;
}

/* Drop one open of `n` (pt_lock held); free the record when none is left. */
static void pt_drop(struct pt_node **pp, enum pt_mode mode)
{
	struct pt_node *n = *pp;

	if (mode == PT_PASSTHROUGH) {
		if (n->pt_opens > 0 && --n->pt_opens == 0)
			pt_unregister(n->id);
	} else if (n->plain_opens > 0) {
		n->plain_opens--;
	}
	if (n->pt_opens == 0 && n->plain_opens == 0) {
		*pp = n->next;
		free(n);
	}
}

bool pt_open_end(uint64_t ino)
{
	bool done = pt_arm.done;

	pt_arm.armed = false;
	pt_arm.done = false;
	if (done)
		return true;
	/*
	 * The kernel took it as a normal open.  Recounting it here would
	 * race with its release; stopping new passthrough nodes keeps the
	 * damage to this one node (whose other opens the kernel may refuse).
	 */
	if (!atomic_exchange(&pt_off, true))
		log_err("kernel passthrough: the open reply of node %llu went "
			"out without its backing file; passthrough is off from "
			"now on",
			(unsigned long long)ino);
	return false;
}

void pt_release(uint64_t ino, enum pt_mode mode)
{
	struct pt_node **pp;

	if (mode == PT_UNTRACKED)
		return;
	pthread_mutex_lock(&pt_lock);
	pp = pt_slot(ino);
	if (*pp)
		pt_drop(pp, mode);
	pthread_mutex_unlock(&pt_lock);
}
