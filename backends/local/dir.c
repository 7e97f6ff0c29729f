/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dir.c - directory streams: a DIR of a directory opened beneath the
 * root, the position it is at, and each entry's attributes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/local/internal.h"

struct vfs_dir {
	DIR *dp;
	off_t pos; /* offset the stream is at, or -1 when unknown */
};

int local_opendir(struct vfs_mount *m, const char *path, struct vfs_dir **out)
{
	struct vfs_dir *d;
	int fd = local_open_at(local_m(m), path, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return fd;
	d = calloc(1, sizeof(*d));
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		int e = errno;

		close(fd);
		free(d);
		return -e;
	}
	d->pos = 0;
	*out = d;
	return 0;
}

int local_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
		  vfs_fill_fn fill, void *ctx)
{
	int dfd = dirfd(d->dp);

	if (off != d->pos) {
		seekdir(d->dp, off);
		d->pos = off;
	}
	for (;;) {
		struct dirent *de;
		struct stat st;
		unsigned flags = VFS_DIRENT_FULL;

		errno = 0;
		de = readdir(d->dp);
		if (!de) {
			if (errno) {
				d->pos = -1;
				return -errno;
			}
			return 0;
		}
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			/* removed since readdir saw it: report the name only */
			memset(&st, 0, sizeof(st));
			st.st_ino = de->d_ino;
			st.st_mode = (mode_t)DTTOIF(de->d_type);
			flags = 0;
		}
		if (fill(ctx, de->d_name, &st, flags, de->d_off)) {
			/* the stream is past an entry the caller did not take
			 */
			d->pos = -1;
			return 0;
		}
		d->pos = de->d_off;
	}
}

void local_releasedir(struct vfs_mount *m, struct vfs_dir *d)
{
	closedir(d->dp);
	free(d);
}
