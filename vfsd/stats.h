/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stats.h - per-mount operation statistics: counts by operation, bytes,
 * errors by errno, a latency histogram and the requests in flight.
 * Lock-free (relaxed atomics): readers see a consistent-enough snapshot.
 */
#ifndef VFSD_STATS_H
#define VFSD_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

enum vfs_op {
	VOP_GETATTR,
	VOP_SETATTR,
	VOP_ACCESS,
	VOP_READLINK,
	VOP_MKNOD,
	VOP_MKDIR,
	VOP_SYMLINK,
	VOP_LINK,
	VOP_UNLINK,
	VOP_RMDIR,
	VOP_RENAME,
	VOP_STATFS,
	VOP_GETXATTR,
	VOP_LISTXATTR,
	VOP_SETXATTR,
	VOP_REMOVEXATTR,
	VOP_OPENDIR,
	VOP_READDIR,
	VOP_CREATE,
	VOP_OPEN,
	VOP_READ,
	VOP_WRITE,
	VOP_FLUSH,
	VOP_FSYNC,
	VOP_FALLOCATE,
	VOP_LSEEK,
	VOP_COPY_RANGE,
	VOP_RELEASE,
	VOP_CLONE,
	VOP_COUNT
};

#define STATS_MAX_ERRNO   134 /* errors above are counted as EIO */
#define STATS_LAT_BUCKETS 32  /* bucket k: [2^(k-1), 2^k) microseconds */

struct mount_stats {
	atomic_uint_fast64_t ops[VOP_COUNT];
	atomic_uint_fast64_t errors[STATS_MAX_ERRNO + 1];
	atomic_uint_fast64_t bytes_read, bytes_written;
	atomic_uint_fast64_t lat[STATS_LAT_BUCKETS];
	atomic_int_fast64_t inflight;
	/* read-ahead (router_ra.c): bytes read ahead, bytes of it that
	 * answered reads, bytes dropped unread (a seek, a change, too old) */
	atomic_uint_fast64_t ra_read, ra_served, ra_dropped;
};

/* The name of an operation ("getattr"). */
const char *stats_op_name(enum vfs_op op);

/* Bracket one backend call: begin notes the time and the request in
 * flight, end counts it with its result (-errno, or bytes for I/O). */
void stats_begin(struct mount_stats *s, struct timespec *t0);
void stats_end(struct mount_stats *s, enum vfs_op op, const struct timespec *t0,
	       long ret);

/* Latency below which a fraction p (0..1) of the calls finished, in
 * microseconds (upper bound of its histogram bucket); 0 with no calls. */
uint64_t stats_percentile(const struct mount_stats *s, double p);

#endif /* VFSD_STATS_H */
