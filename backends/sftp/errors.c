/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * errors.c - the SFTP backend's one mapping from libssh2 results and SFTP
 * status codes to -errno, and the marking of a session broken by a
 * transport error.
 */
#include <errno.h>

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
