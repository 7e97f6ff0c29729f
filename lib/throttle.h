/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * throttle.h - I/O limits as leaky buckets: the arithmetic only.
 *
 * The limits are QEMU's `throttle` options (and `virsh blkdeviotune`'s):
 * bytes and operations per second, for reads, writes and both, each with
 * an optional burst.  A bucket of kind k fills with the cost of each
 * request (bytes, or operations) and leaks at the limit's rate; a request
 * may start while the bucket is at or below its capacity, and then adds
 * its whole cost (so a request larger than the capacity still goes, and
 * the next waits until the bucket has leaked it).  Over any long interval
 * the rate is the limit's, whatever the request sizes.
 *
 *  - Without a burst, the capacity is a tenth of a second's worth: a
 *    rate holds to within that over any interval.
 *  - With a burst (NAME_max, the burst's rate, and NAME_max_length, how
 *    many seconds it may last, 1 by default) the capacity is what a burst
 *    adds over the average during its length, (max - avg) * length, and a
 *    second bucket of a tenth of a second's worth leaking at the burst's
 *    rate keeps the burst itself to that rate.  From idle, a burst of
 *    max * length passes in `length` seconds, then the average again.
 *  - iops_size: an operation larger than it counts as size / iops_size
 *    operations (QEMU's rule), so that large requests cannot evade an
 *    IOPS limit.
 *
 * No locking and no clock of its own: the caller serialises the calls on
 * one struct throttle and passes CLOCK_MONOTONIC nanoseconds.
 */
#ifndef VFSD_LIB_THROTTLE_H
#define VFSD_LIB_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the six buckets: total, read and write, in bytes and in operations */
enum throttle_kind {
	THR_BPS,
	THR_BPS_RD,
	THR_BPS_WR,
	THR_IOPS,
	THR_IOPS_RD,
	THR_IOPS_WR,
	THR_KINDS
};

/* A set of limits; zero means "no limit" for each. */
struct throttle_cfg {
	uint64_t avg[THR_KINDS];     /* per second */
	uint64_t max[THR_KINDS];     /* burst rate per second, or 0 */
	uint64_t max_len[THR_KINDS]; /* burst length in seconds; 0: 1 */
	uint64_t iops_size;          /* bytes an operation counts for, or 0 */
	/* no limit: the share of a busy mount that files under these
	 * settings get, against 100 for the others (vfsd/fair.h); 0: unset */
	uint64_t weight;
};

/* Bucket state of one set of limits. */
struct throttle {
	struct throttle_cfg cfg;
	double level[THR_KINDS]; /* what the average bucket holds */
	double burst[THR_KINDS]; /* what the burst bucket holds */
	int64_t last_ns;         /* when both were last leaked */
};

/* The names of the settings, as user.vfsd.qos.NAME, `vfsctl qos set` and
 * the config file spell them (bps, bps_rd, ... iops_wr_max_length,
 * iops_size, weight); THROTTLE_NAMES of them, in a fixed order. */
#define THROTTLE_NAMES      (3 * THR_KINDS + 2)
#define THROTTLE_WEIGHT_MAX 10000
extern const char *const throttle_names[THROTTLE_NAMES];

/* The field of `cfg` named `name` (one of throttle_names), or NULL. */
uint64_t *throttle_field(struct throttle_cfg *cfg, const char *name);
uint64_t throttle_get(const struct throttle_cfg *cfg, const char *name);

/*
 * Parse a setting's value: a plain decimal integer, 0 to 2^53 (bytes or
 * operations per second, seconds, bytes).  0 or -EINVAL.
 */
int throttle_parse_value(const char *s, uint64_t *out);

/*
 * Whether cfg is a consistent set: a burst rate is never below its
 * average and needs one, a burst length needs a burst rate, iops_size
 * needs an IOPS limit, a weight is 1 to THROTTLE_WEIGHT_MAX.  0, or -EINVAL
 * with a message (static or in `msg`, `size` bytes) naming the setting.
 */
int throttle_check(const struct throttle_cfg *cfg, char *msg, size_t size);

/* Whether cfg limits anything (a weight is no limit). */
bool throttle_limits(const struct throttle_cfg *cfg);

/* Start t with cfg and empty buckets. */
void throttle_init(struct throttle *t, const struct throttle_cfg *cfg,
		   int64_t now_ns);

/* Change t's limits, keeping what its buckets hold (a change takes effect
 * at once, and cannot be used to empty a bucket). */
void throttle_set(struct throttle *t, const struct throttle_cfg *cfg,
		  int64_t now_ns);

/*
 * Nanoseconds a request of `bytes` (a read, or a write when `write`)
 * must wait before it may start, 0 when it may start now, at most
 * INT64_MAX / 2.  Changes nothing but the leak.
 */
int64_t throttle_wait_ns(struct throttle *t, bool write, uint64_t bytes,
			 int64_t now_ns);

/* Count a request that starts now. */
void throttle_charge(struct throttle *t, bool write, uint64_t bytes,
		     int64_t now_ns);

#endif
