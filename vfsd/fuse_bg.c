/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_bg.c - the kernel's budget of background requests leaves out the
 * requests parked for their I/O limits.
 *
 * The kernel sends readahead, page-cache writeback and asynchronous
 * direct I/O (libaio, io_uring) as background requests, at most
 * max_background of them at once for the whole FUSE mount, i.e. for every
 * vfsd mount together (FO_MAX_BACKGROUND, set at INIT); one more waits in
 * the kernel, its caller with it, until one of them is answered.  A
 * request parked for its limit (fuse_wait.c) keeps its place until it is
 * answered, at the limit's pace: one libaio job at queue depth 64 on a
 * file limited to a few KiB/s, or some 50 readers of such files each with
 * its readahead, held every place, and every other file of every mount
 * waited for its readahead and its asynchronous I/O at that file's pace.
 *
 * So the budget is FO_MAX_BACKGROUND plus the requests parked now (and
 * the congestion threshold, below which the kernel's readahead goes on
 * ahead of the reader, FO_CONGESTION_THRESHOLD plus as many): requests
 * nothing holds back keep their FO_MAX_BACKGROUND places whatever waits
 * for a limit, and an admitted request counts again from when it runs.
 * The kernel has no way to say which requests are background ones, so a
 * parked synchronous request (a read(2) of a file opened without
 * O_DIRECT's page cache, a write(2)) raises the budget too: by one for
 * each thread waiting for a limit, as many as parking took off the worker
 * threads.
 *
 * The budget is changed through the kernel's fusectl files
 * (/sys/fs/fuse/connections/N/max_background, congestion_threshold; N
 * the connection number that /proc/self/fdinfo shows for /dev/fuse since
 * Linux 6.16, and the mount's device number on every kernel, known once
 * the mount answers: fuse_ops_mounted()).  Where fusectl is not mounted, a
 * fusectl mount attached to no path (fsmount, Linux 5.2) gives the two
 * files.  Without root nothing changes and the log says so once: parked
 * requests then keep their places as before.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/log.h"
#include "vfsd/fuse_internal.h"

static pthread_once_t bg_once = PTHREAD_ONCE_INIT;
static int bg_max_fd = -1, bg_cong_fd = -1; /* fusectl files, or -1 */
static size_t bg_parked; /* what the budget counts now; under the caller's
			  * lock (fo_bg_set) */

/* The connection's number from the mount's st_dev (fuse_ops_mounted), or
 * -1: fusectl names a connection by its superblock's device number in the
 * kernel's encoding (MAJOR << 20 | MINOR), which fdinfo shows as well. */
static _Atomic long bg_dev_id = -1;

void fo_bg_set_dev(dev_t dev)
{
	atomic_store(&bg_dev_id, (long)(major(dev) << 20 | minor(dev)));
}

/* The kernel's number of the session's FUSE connection, or -errno. */
static long bg_conn_id(void)
{
	char path[64], line[128];
	long id = -ENOENT;
	int fd = fo_session ? fuse_session_fd(fo_session) : -1;
	FILE *f;

	if (fd < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "fuse_connection: %ld", &id) == 1)
			break;
	fclose(f);
	if (id < 0 && atomic_load(&bg_dev_id) >= 0)
		id = atomic_load(&bg_dev_id);
	return id;
}

/* Open connection `id`'s two files beneath the fusectl root: `root`
 * relative to directory dirfd. */
static int bg_open_in(int dirfd, const char *root, long id)
{
	char path[256];

	snprintf(path, sizeof(path), "%s%ld/max_background", root, id);
	bg_max_fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
	if (bg_max_fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s%ld/congestion_threshold", root, id);
	bg_cong_fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
	if (bg_cong_fd < 0) {
		int err = -errno;

		close(bg_max_fd);
		bg_max_fd = -1;
		return err;
	}
	return 0;
}

/*
 * fusectl mounted nowhere (fsopen and fsmount, Linux 5.2): a mount that
 * no path leads to, gone with its last open file, so that not even a
 * SIGKILL can leave it behind.
 */
static int bg_open_detached(long id)
{
	int fs, mnt, ret;

	fs = fsopen("fusectl", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -errno;
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		ret = -errno;
		close(fs);
		return ret;
	}
	mnt = fsmount(fs, FSMOUNT_CLOEXEC,
		      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	ret = mnt < 0 ? -errno : bg_open_in(mnt, "", id);
	if (mnt >= 0)
		close(mnt); /* the open files keep what they need of it */
	close(fs);
	return ret;
}

static void bg_open(void)
{
	long id = bg_conn_id();
	int ret;

	if (id < 0) {
		log_warn("I/O limits: the kernel's FUSE connection is not "
			 "known yet: requests waiting for their limits keep "
			 "their places among its %d background requests",
			 FO_MAX_BACKGROUND);
		return;
	}
	ret = bg_open_in(AT_FDCWD, "/sys/fs/fuse/connections/", id);
	if (ret == -ENOENT)
		ret = bg_open_detached(id);
	if (ret < 0)
		log_warn("I/O limits: cannot change the kernel's budget of "
			 "background requests (fusectl, connection %ld): %s: "
			 "requests waiting for their limits keep their places "
			 "among its %d",
			 id, strerror(-ret), FO_MAX_BACKGROUND);
}

void fo_bg_prepare(void)
{
	pthread_once(&bg_once, bg_open);
}

/* Write base + n to fd; false if the kernel refused it. */
static bool bg_write(int fd, unsigned base, size_t n)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%zu\n", base + n);

	/* a stream: no offset to give (pwrite fails ESPIPE) */
	return write(fd, buf, (size_t)len) == len;
}

void fo_bg_set(size_t parked)
{
	if (parked == bg_parked || bg_max_fd < 0)
		return;
	/* the kernel takes up to 65535 (FW_PARKED_MAX keeps below) */
	if (!bg_write(bg_max_fd, FO_MAX_BACKGROUND, parked) ||
	    !bg_write(bg_cong_fd, FO_CONGESTION_THRESHOLD, parked)) {
		log_warn("I/O limits: the kernel refused a budget of %zu "
			 "background requests: %s",
			 FO_MAX_BACKGROUND + parked, strerror(errno));
		/* back to INIT's, as far as it goes */
		bg_write(bg_max_fd, FO_MAX_BACKGROUND, 0);
		bg_write(bg_cong_fd, FO_CONGESTION_THRESHOLD, 0);
		close(bg_max_fd);
		close(bg_cong_fd);
		bg_max_fd = bg_cong_fd = -1;
		return;
	}
	bg_parked = parked;
}
