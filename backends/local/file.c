/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file.c - open files: struct local_file (with its buffered twin for
 * O_DIRECT), create (as the caller), open, flush, fsync and release.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/local/internal.h"

static int local_file_new(struct vfs_mount *m, int fd, int flags,
			  struct vfs_file **out)
{
	struct local_file *lf = calloc(1, sizeof(*lf));

	if (!lf)
		return -ENOMEM;
	lf->fd = fd;
	lf->bfd = -1;
	if (flags & O_DIRECT) {
		/*
		 * O_DIRECT needs aligned buffers, offsets and sizes.  FUSE
		 * buffers are not aligned and callers may send any size, so
		 * unaligned requests take a buffered twin of the same open
		 * file; the kernel keeps the two coherent.
		 */
		char proc[64];

		local_proc_path(fd, proc, sizeof(proc));
		lf->bfd = open(proc, (flags & O_ACCMODE) | O_CLOEXEC);
		if (lf->bfd < 0) {
			int e = errno;

			free(lf);
			return -e;
		}
	}
	lf->base.mount = m;
	lf->base.flags = flags;
	lf->base.host_fd = fd;
	*out = &lf->base;
	return 0;
}

int local_create(struct vfs_mount *m, const char *path, int flags, mode_t mode,
		 const struct vfs_cred *cred, struct vfs_file **out,
		 struct stat *st)
{
	struct local_mount *lm = local_m(m);
	struct local_path lp;
	int fd, became, ret = local_resolve(lm, path, &lp);

	if (ret < 0)
		return ret;
	if (vfs_call_expired()) {
		/* see local_write (io.c): a lease record or an O_TRUNC */
		local_path_done(&lp);
		return -ETIMEDOUT;
	}
	/*
	 * Only a file made here is the caller's: one that exists already is
	 * opened as it is, never given away (vfsd always asks O_EXCL; the
	 * fallback serves callers that do not).
	 */
	flags |= O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	became = local_become(lm, cred);
	if (became < 0) {
		ret = became;
		goto out;
	}
	fd = openat(lp.dirfd, lp.name, flags | O_EXCL, local_umask(mode, cred));
	if (fd < 0 && errno == EEXIST && !(flags & O_EXCL)) {
		/* a FIFO or a device is not ours to open: O_NONBLOCK covers
		 * a swap between the two calls */
		flags &= ~O_CREAT;
		if (fstatat(lp.dirfd, lp.name, st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st->st_mode))
			errno = EEXIST;
		else
			fd = openat(lp.dirfd, lp.name, flags | O_NONBLOCK);
		if (fd >= 0 && !(flags & O_NONBLOCK) &&
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
			close(fd);
			fd = -1;
		}
		if (fd >= 0 && (fstat(fd, st) < 0 || !S_ISREG(st->st_mode))) {
			close(fd);
			fd = -1;
			errno = EEXIST;
		}
		if (fd >= 0) {
			local_unbecome(became);
			goto opened;
		}
	}
	local_unbecome(became);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	flags |= O_EXCL;
	ret = fstat(fd, st) < 0 ? -errno : 0;
opened:
	if (ret == 0)
		ret = local_file_new(m, fd, flags, out);
	if (ret < 0) {
		close(fd);
		if (flags & O_EXCL)
			unlinkat(lp.dirfd, lp.name, 0);
	}
out:
	local_path_done(&lp);
	return ret;
}

int local_open(struct vfs_mount *m, const char *path, int flags,
	       struct vfs_file **out)
{
	struct local_path lp;
	int fd, ret = local_resolve(local_m(m), path, &lp);

	if (ret < 0)
		return ret;
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
	/* the kernel opens FIFOs and devices itself; we see regular files */
	fd = openat(lp.dirfd, *lp.name ? lp.name : ".",
		    flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
	} else {
		ret = local_file_new(m, fd, flags, out);
		if (ret < 0)
			close(fd);
	}
	local_path_done(&lp);
	return ret;
}

int local_flush(struct vfs_file *f)
{
	/*
	 * close() of a duplicate reports deferred errors of filesystems that
	 * have them (a directory that is itself an NFS mount) at the moment
	 * the application closes, as a direct open would.
	 */
	int fd = dup(local_f(f)->fd);

	if (fd < 0)
		return -errno;
	return close(fd) < 0 ? -errno : 0;
}

int local_fsync(struct vfs_file *f, bool datasync)
{
	int fd = local_f(f)->fd;

	return (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
}

int local_release(struct vfs_file *f)
{
	struct local_file *lf = local_f(f);
	int ret = close(lf->fd) < 0 ? -errno : 0;

	if (lf->bfd >= 0)
		close(lf->bfd);
	free(lf);
	return ret;
}
