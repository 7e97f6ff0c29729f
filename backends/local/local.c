/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * local.c - the "file" backend (file:///path): a directory of this host.
 * This file holds the option spec, mount and unmount, statfs and the ops
 * table; the operations live in attr.c, namespace.c, dir.c, xattr.c,
 * file.c and io.c, path resolution in resolve.c, running as the caller in
 * cred.c (internal.h has the map).
 *
 * Confinement: the mount holds an O_PATH fd of its root, and every path is
 * resolved beneath it with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS) for the parent directory, then the final component
 * is used with *at() calls that never follow a symlink.  The kernel resolves
 * symlinks of the FUSE namespace itself (it asks readlink and looks the
 * target up), so a symlink met by the daemon inside a path means the tree
 * changed under a request in flight - for instance a directory swapped for
 * a link to /etc - and the request fails with ELOOP instead of leaving the
 * root.  Operations with no *at() form that refuses to follow (chmod,
 * truncate, xattrs) go through /proc/self/fd/N of an O_PATH|O_NOFOLLOW fd,
 * which names the inode already resolved, not a path.
 *
 * Paths of PATH_MAX bytes or more (the kernel sends any depth, each name
 * at most NAME_MAX) do not fit one openat2: they are resolved in pieces
 * (local_walk in resolve.c), with the same flags, each beneath the
 * directory the one before reached.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "backends/local/internal.h"

/* ---- Instance ---------------------------------------------------- */

static const struct vfs_opt_spec local_opts[] = {
	{.name = "cache_ttl",
	 .type = VFS_OPT_INT,
	 .def = "1",
	 .min = 0,
	 .max = 3600,
	 .help = "seconds the kernel may cache attributes and names"},
	{.name = "shared",
	 .type = VFS_OPT_BOOL,
	 .def = "no",
	 .help = "the directory is on storage other hosts use too (a cluster "
		 "or network file system): cross-host locks and coherence"},
	{.name = "passthrough",
	 .type = VFS_OPT_BOOL,
	 .def = "yes",
	 .help = "let the kernel read and write open files directly (Linux "
		 "6.9+, not with shared = yes)"},
	{0}};

static int local_mount(const struct vfs_url *url, const struct vfs_opts *opts,
		       struct vfs_mount **out, struct vfs_error *err)
{
	struct local_mount *lm;
	struct stat st;
	int fd;

	if (url->host && *url->host && strcmp(url->host, "localhost") != 0)
		return vfs_error_set(
			err, EINVAL,
			"%s: file URLs take no host (file:///abs/path)",
			url->raw);
	fd = open(url->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		return vfs_error_set(err, e, "%s: %s: %s", url->raw, url->path,
				     strerror(e));
	}
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return vfs_error_set(err, ENOTDIR, "%s: not a directory",
				     url->raw);
	}
	/* openat2 arrived in Linux 5.6: refuse to run unconfined without it */
	{
		int probe = local_openat2(fd, ".", O_PATH);

		if (probe < 0) {
			close(fd);
			return vfs_error_set(
				err, -probe,
				"%s: openat2() unavailable (%s); Linux 5.6 or "
				"later is needed for confinement",
				url->raw, strerror(-probe));
		}
		close(probe);
	}
	lm = calloc(1, sizeof(*lm));
	if (!lm) {
		close(fd);
		return vfs_error_set(err, ENOMEM, "out of memory");
	}
	lm->rootfd = fd;
	lm->root_user = geteuid() == 0;
	lm->base.caps = VFS_CAP_PUNCH_HOLE | VFS_CAP_RENAME_FLAGS |
			VFS_CAP_MKNOD | VFS_CAP_STABLE_FSYNC |
			VFS_CAP_STABLE_INO | VFS_CAP_OWN_UMASK;
	/*
	 * A shared directory keeps every write on the daemon's path: a
	 * cross-host lock holder whose lease ran out must be stopped there.
	 */
	if (vfs_opts_get_bool(opts, "shared"))
		lm->base.caps |= VFS_CAP_SHARED;
	else if (vfs_opts_get_bool(opts, "passthrough"))
		lm->base.caps |= VFS_CAP_PASSTHROUGH;
	lm->base.attr_timeout = (double)vfs_opts_get_int(opts, "cache_ttl");
	lm->base.entry_timeout = lm->base.attr_timeout;
	*out = &lm->base;
	return 0;
}

static void local_unmount(struct vfs_mount *m)
{
	struct local_mount *lm = local_m(m);

	close(lm->rootfd);
	free(lm);
}

static int local_statfs(struct vfs_mount *m, const char *path,
			struct statvfs *st)
{
	return fstatvfs(local_m(m)->rootfd, st) < 0 ? -errno : 0;
}

const struct vfs_backend_ops local_ops = {
	.name = "file",
	.opts = local_opts,
	.mount = local_mount,
	.unmount = local_unmount,
	.statfs = local_statfs,
	.getattr = local_getattr,
	.setattr = local_setattr,
	.readlink = local_readlink,
	.mknod = local_mknod,
	.mkdir = local_mkdir,
	.symlink = local_symlink,
	.link = local_link,
	.unlink = local_unlink,
	.rmdir = local_rmdir,
	.rename = local_rename,
	.opendir = local_opendir,
	.readdir = local_readdir,
	.releasedir = local_releasedir,
	.getxattr = local_getxattr,
	.listxattr = local_listxattr,
	.setxattr = local_setxattr,
	.removexattr = local_removexattr,
	.create = local_create,
	.open = local_open,
	.read = local_read,
	.write = local_write,
	.fgetattr = local_fgetattr,
	.flush = local_flush,
	.fsync = local_fsync,
	.fallocate = local_fallocate,
	.lseek = local_lseek,
	.copy_range = local_copy_range,
	.release = local_release,
};
