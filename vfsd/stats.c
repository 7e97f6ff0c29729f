/* SPDX-License-Identifier: GPL-2.0-or-later */
/* stats.c - per-mount operation statistics (see stats.h). */
#include <errno.h>

#include "vfsd/stats.h"

static const char *const op_names[VOP_COUNT] = {
	[VOP_GETATTR] = "getattr",
	[VOP_SETATTR] = "setattr",
	[VOP_ACCESS] = "access",
	[VOP_READLINK] = "readlink",
	[VOP_MKNOD] = "mknod",
	[VOP_MKDIR] = "mkdir",
	[VOP_SYMLINK] = "symlink",
	[VOP_LINK] = "link",
	[VOP_UNLINK] = "unlink",
	[VOP_RMDIR] = "rmdir",
	[VOP_RENAME] = "rename",
	[VOP_STATFS] = "statfs",
	[VOP_GETXATTR] = "getxattr",
	[VOP_LISTXATTR] = "listxattr",
	[VOP_SETXATTR] = "setxattr",
	[VOP_REMOVEXATTR] = "removexattr",
	[VOP_OPENDIR] = "opendir",
	[VOP_READDIR] = "readdir",
	[VOP_CREATE] = "create",
	[VOP_OPEN] = "open",
	[VOP_READ] = "read",
	[VOP_WRITE] = "write",
	[VOP_FLUSH] = "flush",
	[VOP_FSYNC] = "fsync",
	[VOP_FALLOCATE] = "fallocate",
	[VOP_LSEEK] = "lseek",
	[VOP_COPY_RANGE] = "copy_range",
	[VOP_RELEASE] = "release",
	[VOP_CLONE] = "clone",
};

const char *stats_op_name(enum vfs_op op)
{
	return op < VOP_COUNT ? op_names[op] : "?";
}

void stats_begin(struct mount_stats *s, struct timespec *t0)
{
	atomic_fetch_add_explicit(&s->inflight, 1, memory_order_relaxed);
	clock_gettime(CLOCK_MONOTONIC, t0);
}

void stats_end(struct mount_stats *s, enum vfs_op op, const struct timespec *t0,
	       long ret)
{
	struct timespec t1;
	uint64_t us;
	int b = 0;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000000 +
	     (t1.tv_nsec - t0->tv_nsec) / 1000;
	while (us && b < STATS_LAT_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	atomic_fetch_add_explicit(&s->lat[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->ops[op], 1, memory_order_relaxed);
	if (ret < 0) {
		long e = -ret > STATS_MAX_ERRNO ? EIO : -ret;

		atomic_fetch_add_explicit(&s->errors[e], 1,
					  memory_order_relaxed);
	} else if (op == VOP_READ) {
		atomic_fetch_add_explicit(&s->bytes_read, (uint64_t)ret,
					  memory_order_relaxed);
	} else if (op == VOP_WRITE || op == VOP_COPY_RANGE) {
		atomic_fetch_add_explicit(&s->bytes_written, (uint64_t)ret,
					  memory_order_relaxed);
	}
	atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed);
}

uint64_t stats_percentile(const struct mount_stats *s, double p)
{
	uint64_t total = 0, seen = 0, want;

	for (int b = 0; b < STATS_LAT_BUCKETS; b++)
		total += atomic_load_explicit(&s->lat[b], memory_order_relaxed);
	if (!total)
		return 0;
	want = (uint64_t)(p * (double)total + 0.999999);
	if (want == 0)
		want = 1;
	for (int b = 0; b < STATS_LAT_BUCKETS; b++) {
		seen += atomic_load_explicit(&s->lat[b], memory_order_relaxed);
		if (seen >= want)
			return (uint64_t)1 << b;
	}
	return (uint64_t)1 << (STATS_LAT_BUCKETS - 1);
}
