/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * io.c - data of open files: read and write (O_DIRECT's alignment met
 * with the buffered twin or a bounce buffer), fallocate, lseek and
 * copy_file_range.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/local/internal.h"

/* Alignment O_DIRECT is held to; 4096 satisfies every block device and
 * filesystem we meet (512-byte sectors included). */
#define LOCAL_DIO_ALIGN 4096

static bool local_aligned(const void *buf, size_t size, off_t off)
{
	return ((uintptr_t)buf | size | (size_t)off) % LOCAL_DIO_ALIGN == 0;
}

static ssize_t local_pread_all(int fd, void *buf, size_t size, off_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n =
			pread(fd, (char *)buf + done, size - done, off + done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static ssize_t local_pwrite_all(int fd, const void *buf, size_t size, off_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pwrite(fd, (const char *)buf + done, size - done,
				   off + done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += n;
	}
	return done;
}

ssize_t local_read(struct vfs_file *f, void *buf, size_t size, off_t off)
{
	struct local_file *lf = local_f(f);
	void *bb;
	ssize_t n;

	if (!(f->flags & O_DIRECT) || local_aligned(buf, size, off))
		return local_pread_all(lf->fd, buf, size, off);
	if (size % LOCAL_DIO_ALIGN || off % LOCAL_DIO_ALIGN)
		return local_pread_all(lf->bfd, buf, size, off);
	bb = vfs_scratch(VFS_SCRATCH_BACKEND, size);
	if (!bb)
		return -ENOMEM;
	n = local_pread_all(lf->fd, bb, size, off);
	if (n > 0)
		memcpy(buf, bb, n);
	return n;
}

ssize_t local_write(struct vfs_file *f, const void *buf, size_t size, off_t off)
{
	struct local_file *lf = local_f(f);
	bool append = f->flags & O_APPEND;
	void *bb;

	/* a write the kernel was handed cannot be called back: past a
	 * lease's deadline (backends/callctx.h) it is never handed over */
	if (vfs_call_expired())
		return -ETIMEDOUT;
	if (!(f->flags & O_DIRECT) || local_aligned(buf, size, off))
		return local_pwrite_all(lf->fd, buf, size, off);
	if (size % LOCAL_DIO_ALIGN || off % LOCAL_DIO_ALIGN || append)
		return local_pwrite_all(lf->bfd, buf, size, off);
	bb = vfs_scratch(VFS_SCRATCH_BACKEND, size);
	if (!bb)
		return -ENOMEM;
	memcpy(bb, buf, size);
	return local_pwrite_all(lf->fd, bb, size, off);
}

int local_fallocate(struct vfs_file *f, int mode, off_t off, off_t len)
{
	if (vfs_call_expired()) /* see local_write */
		return -ETIMEDOUT;
	return fallocate(local_f(f)->fd, mode, off, len) < 0 ? -errno : 0;
}

off_t local_lseek(struct vfs_file *f, off_t off, int whence)
{
	off_t r = lseek(local_f(f)->fd, off, whence);

	return r < 0 ? -errno : r;
}

ssize_t local_copy_range(struct vfs_file *in, off_t off_in,
			 struct vfs_file *out, off_t off_out, size_t len,
			 unsigned flags)
{
	loff_t oi = off_in, oo = off_out;
	ssize_t n;

	if (vfs_call_expired()) /* see local_write */
		return -ETIMEDOUT;
	n = copy_file_range(local_f(in)->fd, &oi, local_f(out)->fd, &oo, len,
			    flags);
	return n < 0 ? -errno : n;
}
