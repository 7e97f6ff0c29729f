/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resolve.c - confinement: every path of a call resolved beneath the
 * mount's root fd (local.c's head has the design), into a parent dirfd and
 * a final name, or into an fd of the object itself; and the
 * /proc/self/fd/N name of an fd already resolved, for the calls that have
 * no *at() form that refuses to follow.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backends/local/internal.h"

int local_openat2(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned long long)flags | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	if (fd < 0)
		return errno == EXDEV ? -EACCES : -errno;
	return (int)fd;
}

/*
 * Open the directory `dir` (dlen bytes, relative to the root) that is too
 * long for one openat2, as the kernel walks a path: in pieces of whole
 * components, each shorter than PATH_MAX and opened with local_openat2
 * beneath the directory the piece before reached.  Confinement holds by
 * induction: every piece stays beneath its start (RESOLVE_BENEATH), which
 * is beneath the root, and a symlink in any piece fails the walk (ELOOP),
 * as it fails one call.  `buf` (PATH_MAX bytes) holds each piece.
 * Returns an O_PATH fd the caller closes, or -errno.
 */
static int local_walk(struct local_mount *lm, const char *dir, size_t dlen,
		      char *buf)
{
	int cur = lm->rootfd;
	size_t off = 0;

	while (off < dlen) {
		size_t len = dlen - off;
		int fd;

		if (len >= PATH_MAX) {
			/* the last whole component that keeps the piece
			 * short; none when one name alone is that long (a
			 * loop, not memrchr: gcc's -fsanitize=undefined
			 * then believes dir may be NULL, -Werror=nonnull) */
			len = PATH_MAX - 2;
			while (len > 0 && dir[off + len] != '/')
				len--;
			if (len == 0) {
				fd = -ENAMETOOLONG;
				goto next;
			}
		}
		memcpy(buf, dir + off, len);
		buf[len] = '\0';
		fd = local_openat2(cur, buf, O_PATH | O_DIRECTORY);
	next:
		if (cur != lm->rootfd)
			close(cur);
		if (fd < 0)
			return fd;
		cur = fd;
		off += len + 1; /* and the '/' after the piece */
	}
	return cur;
}

/*
 * Split a mount-relative path into a confined parent dirfd and its final
 * component.  The root itself comes back as (rootfd, "").
 */
int local_resolve(struct local_mount *lm, const char *path,
		  struct local_path *lp)
{
	const char *rel = path + 1, *slash;
	size_t dlen;
	int fd;

	lp->own = false;
	lp->dirfd = lm->rootfd;
	if (!*rel) {
		lp->name = "";
		return 0;
	}
	slash = strrchr(rel, '/');
	if (!slash) {
		lp->name = rel;
		return 0;
	}
	dlen = slash - rel;
	if (dlen < sizeof(lp->buf)) {
		memcpy(lp->buf, rel, dlen);
		lp->buf[dlen] = '\0';
		fd = local_openat2(lm->rootfd, lp->buf, O_PATH | O_DIRECTORY);
	} else {
		fd = local_walk(lm, rel, dlen, lp->buf);
	}
	if (fd < 0)
		return fd;
	lp->dirfd = fd;
	lp->own = true;
	lp->name = slash + 1;
	return 0;
}

void local_path_done(struct local_path *lp)
{
	if (lp->own)
		close(lp->dirfd);
}

/*
 * An fd of the object at `path` itself, opened with `flags` beneath the
 * root.  A path too long for one openat2 opens its final name in the
 * parent local_resolve walked to.
 */
int local_open_at(struct local_mount *lm, const char *path, int flags)
{
	struct local_path lp;
	int fd = local_openat2(lm->rootfd, path[1] ? path + 1 : ".", flags);

	/* costs nothing unless the one call failed */
	if (fd != -ENAMETOOLONG || strlen(path + 1) < PATH_MAX)
		return fd;
	fd = local_resolve(lm, path, &lp);
	if (fd < 0)
		return fd;
	fd = local_openat2(lp.dirfd, lp.name, flags);
	local_path_done(&lp);
	return fd;
}

/* An O_PATH fd of the object itself, never through a final symlink. */
int local_open_path(struct local_mount *lm, const char *path)
{
	return local_open_at(lm, path, O_PATH | O_NOFOLLOW);
}

int local_stat_at(struct local_path *lp, struct stat *st)
{
	int flags = AT_SYMLINK_NOFOLLOW | (*lp->name ? 0 : AT_EMPTY_PATH);

	return fstatat(lp->dirfd, lp->name, st, flags) < 0 ? -errno : 0;
}

int local_proc_path(int fd, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
	return 0;
}
