/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * errors.c - the SFTP backend's one mapping from libssh2 results and SFTP
 * status codes to -errno, the marking of a session broken by a transport
 * error, and the errno a FAILURE stands for, told by looking at the
 * server (SFTP v3 folds most of them into it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sftp/internal.h"

/* ---- Error mapping -------------------------------------------------- */

int sftp_status_errno(unsigned long status)
{
	switch (status) {
	case LIBSSH2_FX_OK:
		return 0;
	case LIBSSH2_FX_EOF:
		return -ENODATA;
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return -ENOENT;
	case LIBSSH2_FX_PERMISSION_DENIED:
		return -EACCES;
	case LIBSSH2_FX_WRITE_PROTECT:
		return -EROFS;
	case LIBSSH2_FX_BAD_MESSAGE:
		/* OpenSSH's sftp-server answers this for EINVAL and for
		 * ENAMETOOLONG (errno_to_portable); libssh2 builds every
		 * request we send, so it never means a malformed one.
		 * Names and paths too long for the server are refused before
		 * they are sent (sftp.c, sftp_rpath), which leaves EINVAL. */
		return -EINVAL;
	case LIBSSH2_FX_NO_CONNECTION:
		return -ENOTCONN;
	case LIBSSH2_FX_CONNECTION_LOST:
		return -ECONNABORTED;
	case LIBSSH2_FX_OP_UNSUPPORTED:
		return -EOPNOTSUPP;
	case LIBSSH2_FX_INVALID_HANDLE:
		return -EBADF;
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return -EEXIST;
	case LIBSSH2_FX_NO_MEDIA:
		return -ENOMEDIUM;
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
		return -ENOSPC;
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return -EDQUOT;
	case LIBSSH2_FX_UNKNOWN_PRINCIPAL:
		return -EINVAL;
	case LIBSSH2_FX_LOCK_CONFLICT:
		return -EBUSY;
	case LIBSSH2_FX_DIR_NOT_EMPTY:
		return -ENOTEMPTY;
	case LIBSSH2_FX_NOT_A_DIRECTORY:
		return -ENOTDIR;
	case LIBSSH2_FX_INVALID_FILENAME:
		return -EINVAL;
	case LIBSSH2_FX_LINK_LOOP:
		return -ELOOP;
	case LIBSSH2_FX_FAILURE:
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

int sftp_err(struct sftp_conn *c, int rc)
{
	bool transport;
	int e;

	if (rc >= 0)
		return 0;
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long st = libssh2_sftp_last_error(c->sftp);

		if (st == LIBSSH2_FX_NO_CONNECTION ||
		    st == LIBSSH2_FX_CONNECTION_LOST)
			c->broken = true;
		/* libssh2 also reports malformed replies this way, with
		 * no status: treat as an I/O error on a usable session */
		return st == LIBSSH2_FX_OK ? -EIO : sftp_status_errno(st);
	}
	e = sftp_libssh2_errno(rc, &transport);
	if (transport)
		c->broken = true;
	if (e == -ETIMEDOUT)
		c->timed_out = true;
	return e;
}

/* ---- What the server could not name ------------------------------ */

/* For the libssh2 1.10 calls whose SFTP status is garbage: a status error
 * is "failed for some reason", never a broken session. */
int sftp_err_nostatus(struct sftp_conn *c, int rc)
{
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL)
		return -EIO;
	return sftp_err(c, rc);
}

/*
 * The server said FAILURE (-EIO), or NO_SUCH_FILE where OpenSSH folds
 * ENOTDIR into it: name the POSIX error by looking at what is there now.
 * if_exists/if_dir/if_notdir (0: no opinion) are returned when the path
 * exists / is a directory / is not one; otherwise rc stays.
 */
int sftp_explain(struct sftp_conn *c, const char *rpath, int rc, int if_exists,
		 int if_dir, int if_notdir)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	bool isdir;

	if ((rc != -EIO && rc != -ENOENT) || c->broken)
		return rc;
	if (libssh2_sftp_stat_ex(c->sftp, rpath, strlen(rpath),
				 LIBSSH2_SFTP_LSTAT, &a)) {
		if (libssh2_session_last_errno(c->ssh) !=
		    LIBSSH2_ERROR_SFTP_PROTOCOL)
			sftp_err(c, libssh2_session_last_errno(c->ssh));
		return c->broken ? -EIO : rc;
	}
	isdir = (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
		LIBSSH2_SFTP_S_ISDIR(a.permissions);
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
	LIBSSH2_SFTP_STATVFS v;
	char *dir;
	int src;

	if (rc != -EIO || c->broken || !sm->feat.statvfs)
		return rc;
	dir = vfs_path_parent(rpath);
	if (!dir)
		return rc;
	src = libssh2_sftp_statvfs(c->sftp, dir, strlen(dir), &v);
	free(dir);
	if (src)
		sftp_err(c, src);
	else if (v.f_flag & LIBSSH2_SFTP_ST_RDONLY)
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
 * "Failure", and libssh2 1.10 passes on neither text nor detail, only the
 * status code.  What can be told from outside:
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
	LIBSSH2_SFTP_STATVFS v;
	int src;

	if (c->broken)
		return rc;
	if (rc == -EINVAL && need && end > SFTP_MIN_MAX_FILE)
		return -EFBIG;
	if (rc != -EIO)
		return rc;
	if (sm->feat.statvfs) {
		src = libssh2_sftp_statvfs(c->sftp, rpath, strlen(rpath), &v);
		if (src == 0 && (v.f_flag & LIBSSH2_SFTP_ST_RDONLY))
			return -EROFS;
		if (src == 0 && need && v.f_bavail * v.f_frsize < need)
			return -ENOSPC;
		if (src && (sftp_err(c, src), c->broken))
			return rc;
	}
	if (end > old && end > SFTP_MIN_MAX_FILE)
		return -EFBIG;
	return rc;
}
