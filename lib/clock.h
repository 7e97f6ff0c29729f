/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clock.h - clock readings and timespec arithmetic, written once.
 *
 * Timeouts, deadlines, backoff and ages run on CLOCK_MONOTONIC, which a
 * stepped wall clock does not move; CLOCK_REALTIME only where the other
 * side wants wall time (pthread_cond_timedwait on a condition variable
 * left at its default clock, timestamps for users and servers).
 */
#ifndef VFSD_LIB_CLOCK_H
#define VFSD_LIB_CLOCK_H

#include <stdint.h>
#include <time.h>

#define VFS_NS_PER_SEC 1000000000L

/* Nanoseconds on CLOCK_MONOTONIC. */
static inline int64_t vfs_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * VFS_NS_PER_SEC + ts.tv_nsec;
}

/* A time in nanoseconds (vfs_mono_ns) as a timespec, for the timed waits
 * of condition variables on CLOCK_MONOTONIC. */
static inline struct timespec vfs_ns_ts(int64_t ns)
{
	return (struct timespec){.tv_sec = ns / VFS_NS_PER_SEC,
				 .tv_nsec = ns % VFS_NS_PER_SEC};
}

/* Milliseconds on CLOCK_MONOTONIC. */
static inline int64_t vfs_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Seconds on CLOCK_MONOTONIC, as a double. */
static inline double vfs_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* a - b in seconds. */
static inline double vfs_ts_diff(const struct timespec *a,
				 const struct timespec *b)
{
	return (double)(a->tv_sec - b->tv_sec) +
	       (double)(a->tv_nsec - b->tv_nsec) / 1e9;
}

/* ts += ms milliseconds, tv_nsec kept in [0, 1 s). */
static inline void vfs_ts_add_ms(struct timespec *ts, long ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= VFS_NS_PER_SEC) {
		ts->tv_sec++;
		ts->tv_nsec -= VFS_NS_PER_SEC;
	} else if (ts->tv_nsec < 0) {
		ts->tv_sec--;
		ts->tv_nsec += VFS_NS_PER_SEC;
	}
}

/* *ts = now on `clock` + ms milliseconds: an absolute deadline, e.g. for
 * pthread_cond_timedwait on a condition variable that runs on `clock`. */
static inline void vfs_ts_after_ms(struct timespec *ts, clockid_t clock,
				   long ms)
{
	clock_gettime(clock, ts);
	vfs_ts_add_ms(ts, ms);
}

/* Milliseconds from now until the CLOCK_MONOTONIC time `deadline`;
 * negative once it has passed. */
static inline long vfs_ts_ms_until(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 +
	       (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Milliseconds since the CLOCK_MONOTONIC time t. */
static inline long vfs_ts_ms_since(const struct timespec *t)
{
	return -vfs_ts_ms_until(t);
}

#endif /* VFSD_LIB_CLOCK_H */
