/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * errors.c - the SFTP backend's one mapping from SFTP status codes (and
 * libssh2 results while a session is set up) to -errno, and the errno a
 * FAILURE stands for, told by looking at the server (SFTP v3 folds most
 * of them into it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sftp/internal.h"

/* ---- Error mapping -------------------------------------------------- */

int sftp_status_errno(unsigned long status)
{
	switch (status) {
	case SFTP_FX_OK:
		return 0;
	case SFTP_FX_EOF:
		return -ENODATA;
	case SFTP_FX_NO_SUCH_FILE:
	case SFTP_FX_NO_SUCH_PATH:
		return -ENOENT;
	case SFTP_FX_PERMISSION_DENIED:
		return -EACCES;
	case SFTP_FX_WRITE_PROTECT:
		return -EROFS;
	case SFTP_FX_BAD_MESSAGE:
		/* OpenSSH's sftp-server answers this for EINVAL and for
		 * ENAMETOOLONG (errno_to_portable); proto.c builds every
		 * request we send, so it never means a malformed one.
		 * Names and paths too long for the server are refused before
		 * they are sent (sftp.c, sftp_rpath), which leaves EINVAL. */
		return -EINVAL;
	case SFTP_FX_NO_CONNECTION:
		return -ENOTCONN;
	case SFTP_FX_CONNECTION_LOST:
		return -ECONNABORTED;
	case SFTP_FX_OP_UNSUPPORTED:
		return -EOPNOTSUPP;
	case SFTP_FX_INVALID_HANDLE:
		return -EBADF;
	case SFTP_FX_FILE_ALREADY_EXISTS:
		return -EEXIST;
	case SFTP_FX_NO_MEDIA:
		return -ENOMEDIUM;
	case SFTP_FX_NO_SPACE_ON_FILESYSTEM:
		return -ENOSPC;
	case SFTP_FX_QUOTA_EXCEEDED:
		return -EDQUOT;
	case SFTP_FX_UNKNOWN_PRINCIPAL:
		return -EINVAL;
	case SFTP_FX_LOCK_CONFLICT:
		return -EBUSY;
	case SFTP_FX_DIR_NOT_EMPTY:
		return -ENOTEMPTY;
	case SFTP_FX_NOT_A_DIRECTORY:
		return -ENOTDIR;
	case SFTP_FX_INVALID_FILENAME:
		return -EINVAL;
	case SFTP_FX_LINK_LOOP:
		return -ELOOP;
	case SFTP_FX_FAILURE:
	default:
		/* SFTP v3 folds most errno values into FAILURE; callers that
		 * can tell EEXIST/ENOTEMPTY/EISDIR apart probe the server */
		return -EIO;
	}
}

int sftp_libssh2_errno(int rc, bool *transport)
{
	*transport = true;
	switch (rc) {
	case LIBSSH2_ERROR_NONE:
		*transport = false;
		return 0;
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
		return -ETIMEDOUT;
	case LIBSSH2_ERROR_ALLOC:
		return -ENOMEM;
	case LIBSSH2_ERROR_BUFFER_TOO_SMALL:
		*transport = false;
		return -ENAMETOOLONG;
	case LIBSSH2_ERROR_INVAL:
	case LIBSSH2_ERROR_BAD_USE:
		*transport = false;
		return -EINVAL;
	case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
		*transport = false;
		return -EOPNOTSUPP;
	default:
		/* socket, channel, crypto and protocol errors: the session's
		 * state is unknown, so it is discarded */
		return -EIO;
	}
}

/* ---- What the server could not name ------------------------------ */

/*
 * The server said FAILURE (-EIO), or NO_SUCH_FILE where OpenSSH folds
 * ENOTDIR into it: name the POSIX error by looking at what is there now.
 * if_exists/if_dir/if_notdir (0: no opinion) are returned when the path
 * exists / is a directory / is not one; otherwise rc stays.
 */
int sftp_explain(struct sftp_conn *c, const char *rpath, int rc, int if_exists,
		 int if_dir, int if_notdir)
{
	struct sftp_attrs a;
	bool isdir;

	if ((rc != -EIO && rc != -ENOENT) || c->broken)
		return rc;
	if (sftp_r_stat(c, rpath, false, &a))
		return c->broken ? -EIO : rc;
	isdir = (a.flags & SFTP_ATTR_PERMISSIONS) && S_ISDIR(a.perm);
	if (isdir && if_dir)
		return if_dir;
	if (!isdir && if_notdir)
		return if_notdir;
	return if_exists ? if_exists : rc;
}

/*
 * A change the server answered FAILURE (-EIO) may have met a read-only
 * file system, which SFTP v3 has no code for: -EROFS when statvfs@openssh
 * says so of rpath's directory, else rc.  Only for calls that change
 * something.
 */
int sftp_explain_rofs(struct sftp_mount *sm, struct sftp_conn *c,
		      const char *rpath, int rc)
{
	struct sftp_statvfs v;
	char *dir;
	int src;

	if (rc != -EIO || c->broken || !sm->feat.statvfs)
		return rc;
	dir = vfs_path_parent(rpath);
	if (!dir)
		return rc;
	src = sftp_r_statvfs(c, dir, &v);
	free(dir);
	if (src == 0 && (v.flag & SFTP_SSH_FXE_STATVFS_ST_RDONLY))
		return -EROFS;
	return rc;
}

/*
 * The smallest maximum file size among the file systems an SFTP server
 * commonly serves: FAT's 4 GiB - 1 (ext4 with 4 KiB blocks allows
 * 16 TiB, XFS and Btrfs 8 EiB).  No file can fail to reach this size for
 * being too large.
 */
#define SFTP_MIN_MAX_FILE 0xffffffffull

/*
 * Name the errno of a failed write or size change (rc; -EIO is the
 * server's SSH_FX_FAILURE).  OpenSSH answers FAILURE for every errno SFTP
 * v3 has no code for (EFBIG, ENOSPC, EROFS, EIO...), with the text
 * "Failure", with no detail.  What can be told from outside:
 *  - a read-only server file system (statvfs@openssh.com, ST_RDONLY):
 *    EROFS;
 *  - a write needing more room than the file system has left: ENOSPC;
 *  - a file that would grow past SFTP_MIN_MAX_FILE, with room left: EFBIG,
 *    the one remaining cause that a size alone explains (truncate to
 *    999999999999999999 on ext4, say).
 * A write at an offset beyond the file system's maximum fails earlier, in
 * sftp-server's lseek(2), with EINVAL, which arrives as BAD_MESSAGE
 * (-EINVAL here): past SFTP_MIN_MAX_FILE that is EFBIG too, as pwrite(2)
 * says on the server itself.  Anything else stays as it was.  `old` and
 * `end` are the file's size before and as asked for (old 0 when unknown),
 * `need` the bytes written (0 for a size change, which allocates
 * nothing).
 */
int sftp_explain_size(struct sftp_mount *sm, struct sftp_conn *c,
		      const char *rpath, uint64_t old, uint64_t end,
		      size_t need, int rc)
{
	struct sftp_statvfs v;
	int src;

	if (c->broken)
		return rc;
	if (rc == -EINVAL && need && end > SFTP_MIN_MAX_FILE)
		return -EFBIG;
	if (rc != -EIO)
		return rc;
	if (sm->feat.statvfs) {
		src = sftp_r_statvfs(c, rpath, &v);
		if (src == 0 && (v.flag & SFTP_SSH_FXE_STATVFS_ST_RDONLY))
			return -EROFS;
		if (src == 0 && need && v.bavail * v.frsize < need)
			return -ENOSPC;
		if (src && c->broken)
			return rc;
	}
	if (end > old && end > SFTP_MIN_MAX_FILE)
		return -EFBIG;
	return rc;
}
