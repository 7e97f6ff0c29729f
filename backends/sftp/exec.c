// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * exec.c - commands run on the SSH server itself (remote_exec = yes).
 *
 * SFTP v3 cannot copy a file on the server; a shell can.  With the mount's
 * `remote_exec` option the image store's clone runs GNU cp there, which
 * reflinks where the server's filesystem can and keeps holes otherwise, so
 * not one byte of the image crosses the network.
 *
 * Each command gets a session of its own rather than one of the pool's: a
 * copy may take minutes, and the pool's sessions carry open files whose
 * I/O must not wait behind it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/sftp/internal.h"

/* s as one word for a POSIX shell, in single quotes ("'" as '\'').  New
 * string the caller frees, or NULL on ENOMEM. */
static char *sh_quote(const char *s)
{
	size_t n = 3;
	char *out, *p;

	for (const char *q = s; *q; q++)
		n += *q == '\'' ? 4 : 1;
	out = malloc(n);
	if (!out)
		return NULL;
	p = out;
	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = *s;
		}
	}
	*p++ = '\'';
	*p = '\0';
	return out;
}

/*
 * The copy (then the sync) runs in the background while the shell prints a
 * dot every fraction of a second: a server that stops answering is then
 * noticed within the mount's timeout however long the copy takes, yet a
 * long copy is not mistaken for a dead server.  If the channel goes away
 * (we gave up, the connection broke) the next dot kills the shell with
 * SIGPIPE and its trap kills the copy.  The status comes last as " rc=N".
 * The script is run by `sh -c` so that the user's login shell only has to
 * understand single quotes.
 */
static const char clone_script[] =
	"beat() { while kill -0 $p 2>/dev/null; do printf .; "
	"sleep 0.2 2>/dev/null || sleep 1; done; wait $p; }; "
	"trap \"kill \\$p 2>/dev/null; exit 1\" HUP PIPE TERM; "
	"cp --reflink=auto --sparse=always -- \"$1\" \"$2\" & p=$!; beat; "
	"rc=$?; "
	"if [ $rc = 0 ]; then sync -- \"$2\" & p=$!; beat; rc=$?; fi; "
	"echo \" rc=$rc\"";

/* Run cmd on c's session: *status gets the script's " rc=N" (-1 if it
 * never said), errbuf the start of what it wrote to stderr. */
static int sftp_exec_run(struct sftp_sess *c, const char *cmd, int *status,
			 char *errbuf, size_t errsize)
{
	LIBSSH2_CHANNEL *ch;
	char buf[512], tail[32] = "";
	size_t elen = 0;
	ssize_t n;
	int rc;

	*status = -1;
	errbuf[0] = '\0';
	ch = libssh2_channel_open_session(c->ssh);
	if (!ch) {
		bool transport;

		rc = sftp_libssh2_errno(libssh2_session_last_errno(c->ssh),
					&transport);
		c->failed = transport;
		return rc;
	}
	rc = libssh2_channel_exec(ch, cmd);
	if (rc) {
		bool transport;

		rc = sftp_libssh2_errno(rc, &transport);
		c->failed = transport;
		goto out;
	}
	/* each read returns with the next heartbeat, or fails after the
	 * session's timeout */
	while ((n = libssh2_channel_read(ch, buf, sizeof(buf))) > 0) {
		/* the status may straddle two reads: keep the last bytes */
		char joined[sizeof(tail) + sizeof(buf)];
		size_t keep = strlen(tail), total = keep + (size_t)n;

		memcpy(joined, tail, keep);
		memcpy(joined + keep, buf, (size_t)n);
		joined[total] = '\0';
		strcpy(tail, total >= sizeof(tail)
				     ? joined + total - (sizeof(tail) - 1)
				     : joined);
	}
	if (n < 0) {
		bool transport;

		rc = sftp_libssh2_errno((int)n, &transport);
		c->failed = transport;
		goto out;
	}
	while (elen + 1 < errsize &&
	       (n = libssh2_channel_read_stderr(ch, errbuf + elen,
						errsize - 1 - elen)) > 0)
		elen += (size_t)n;
	errbuf[elen] = '\0';
	/* one line is enough for a message */
	errbuf[strcspn(errbuf, "\n")] = '\0';
	{
		const char *r = strstr(tail, " rc=");

		if (r)
			*status = atoi(r + 4);
	}
	rc = 0;
out:
	if (!c->failed)
		libssh2_channel_close(ch);
	libssh2_channel_free(ch);
	return rc;
}

/* A name made for the copy goes again (by the pool's sessions). */
static void sftp_exec_unmake(struct sftp_mount *sm, const char *to)
{
	struct sftp_conn c;
	int tries = 0, rc;

	do {
		rc = sftp_checkout(sm, -1, 0, &c);
		if (rc)
			break;
		rc = sftp_r_remove(&c, to);
	} while (sftp_checkin_retry(sm, &c, rc, &tries));
	if (rc && rc != -ENOENT)
		log_warn("%s: %s may hold a partial copy: %s", sm->cfg.display,
			 to, strerror(-rc));
}

/* lstat `from` and make `to` (empty, exclusive) through the pool. */
static int sftp_exec_prepare(struct sftp_mount *sm, const char *from,
			     const char *to, struct vfs_error *err)
{
	struct sftp_attrs a, na = {.flags = SFTP_ATTR_PERMISSIONS};
	struct sftp_handle h;
	struct sftp_conn c;
	int rc;

	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		return vfs_error_set(err, -rc, "%s: %s", sm->cfg.display,
				     strerror(-rc));
	rc = sftp_r_stat(&c, from, false, &a);
	if (rc) {
		vfs_error_set(err, -rc, "%s: %s", from, strerror(-rc));
		goto out;
	}
	if (!(a.flags & SFTP_ATTR_PERMISSIONS) || !S_ISREG(a.perm)) {
		rc = vfs_error_set(err, EINVAL, "%s: not a regular file", from);
		goto out;
	}
	/* the name is ours before the copy starts: no race with another
	 * creator, and cp only fills the file in */
	na.perm = a.perm & 0777;
	rc = sftp_r_open(&c, to,
			 SFTP_FXF_WRITE | SFTP_FXF_CREAT | SFTP_FXF_EXCL, &na,
			 &h);
	if (rc) {
		vfs_error_set(err, -rc, "%s: %s", to, strerror(-rc));
		goto out;
	}
	sftp_r_close_async(&c, &h);
out:
	sftp_checkin(sm, &c);
	return rc;
}

int sftp_exec_clone(struct sftp_mount *sm, const char *from, const char *to,
		    struct vfs_error *err)
{
	struct sftp_sess c = {.idx = -1, .sock = -1};
	char *qf = NULL, *qt = NULL, *cmd = NULL, msg[256];
	struct timespec t0, t1;
	bool opened = false;
	int rc, status;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = sftp_exec_prepare(sm, from, to, err);
	if (rc)
		return rc;
	/* a session of its own: the copy holds its channel for long */
	rc = sftp_sess_open(sm, &c, SFTP_SESS_BARE, err);
	if (rc)
		goto out;
	opened = true;

	qf = sh_quote(from);
	qt = sh_quote(to);
	if (!qf || !qt ||
	    asprintf(&cmd, "sh -c '%s' vfsd-clone %s %s", clone_script, qf,
		     qt) < 0) {
		cmd = NULL;
		rc = vfs_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	rc = sftp_exec_run(&c, cmd, &status, msg, sizeof(msg));
	if (rc) {
		vfs_error_set(err, -rc, "%s: copy on %s: %s", from,
			      sm->cfg.display, strerror(-rc));
		goto out;
	}
	if (status == 0)
		goto out;
	if (status == 127 || strstr(msg, "unrecognized option") ||
	    strstr(msg, "illegal option") || strstr(msg, "invalid option"))
		/* no GNU cp there: the caller copies the data itself */
		rc = vfs_error_set(err, EOPNOTSUPP,
				   "%s: the server has no GNU cp (%s)",
				   sm->cfg.display, msg[0] ? msg : "rc 127");
	else
		rc = vfs_error_set(err, EIO, "%s: cp on the server failed (%s)",
				   from,
				   msg[0]       ? msg
				   : status < 0 ? "no status"
						: "non-zero status");
out:
	if (opened)
		sftp_sess_close(&c, !c.failed);
	/* no half copy left behind */
	if (rc)
		sftp_exec_unmake(sm, to);
	if (rc == 0) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		log_info("%s: copied %s to %s on the server in %.1f s",
			 sm->cfg.display, from, to, vfs_ts_diff(&t1, &t0));
	}
	free(cmd);
	free(qf);
	free(qt);
	return rc;
}
