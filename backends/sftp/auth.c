/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auth.c - SSH user authentication for the SFTP backend: ssh-agent, the
 * identity file (or the default ones), then password or
 * keyboard-interactive; a failure names everything that was tried.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/sftp/internal.h"
#include "lib/log.h"

/* ---- Authentication ------------------------------------------------- */

/* keyboard-interactive: answer every prompt with the configured password
 * (servers that disable "password" often offer this instead). */
static LIBSSH2_USERAUTH_KBDINT_RESPONSE_FUNC(sftp_kbdint)
{
	struct sftp_arena *a = *abstract;
	const char *pw = a->password;

	(void)name;
	(void)name_len;
	(void)instruction;
	(void)instruction_len;
	(void)prompts;
	for (int i = 0; i < num_prompts; i++) {
		size_t len = pw ? strlen(pw) : 0;

		/* libssh2 frees the answers with the session's allocator */
		responses[i].text = sftp_arena_alloc(len + 1, abstract);
		if (!responses[i].text) {
			responses[i].length = 0;
			continue;
		}
		memcpy(responses[i].text, pw ? pw : "", len + 1);
		responses[i].length = (unsigned)len;
	}
}

static void sftp_tried(char *buf, size_t size, const char *what)
{
	size_t len = strlen(buf);

	snprintf(buf + len, size - len, "%s%s", len ? ", " : "", what);
}

/* A libssh2 error that ends the session rather than one attempt. */
static bool sftp_auth_fatal(int rc)
{
	bool transport;

	if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
	    rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED ||
	    rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_METHOD_NONE ||
	    rc == LIBSSH2_ERROR_PUBLICKEY_PROTOCOL ||
	    rc == LIBSSH2_ERROR_AGENT_PROTOCOL ||
	    rc == LIBSSH2_ERROR_PASSWORD_EXPIRED)
		return false;
	sftp_libssh2_errno(rc, &transport);
	return transport;
}

static int sftp_auth_agent(struct sftp_mount *sm, LIBSSH2_SESSION *ssh,
			   char *tried, size_t tsize)
{
	struct libssh2_agent_publickey *id = NULL;
	LIBSSH2_AGENT *agent;
	const char *user = sm->cfg.user;
	char what[64];
	int n = 0, rc = 1;

	if (!getenv("SSH_AUTH_SOCK"))
		return 1;
	agent = libssh2_agent_init(ssh);
	if (!agent)
		return 1;
	if (libssh2_agent_connect(agent) ||
	    libssh2_agent_list_identities(agent)) {
		sftp_tried(tried, tsize, "ssh-agent (unreachable)");
		goto out;
	}
	while (libssh2_agent_get_identity(agent, &id, id) == 0) {
		int r = libssh2_agent_userauth(agent, user, id);

		n++;
		if (r == 0) {
			rc = 0;
			break;
		}
		if (sftp_auth_fatal(r)) {
			rc = r;
			break;
		}
	}
	snprintf(what, sizeof(what), "ssh-agent (%d key%s)", n,
		 n == 1 ? "" : "s");
	sftp_tried(tried, tsize, what);
	libssh2_agent_disconnect(agent);
out:
	libssh2_agent_free(agent);
	return rc;
}

/* 0 authenticated, 1 refused, < 0 libssh2 error ending the session. */
static int sftp_auth_keyfile(struct sftp_mount *sm, LIBSSH2_SESSION *ssh,
			     const char *path, bool must_exist, char *tried,
			     size_t tsize)
{
	const char *user = sm->cfg.user;
	char what[PATH_MAX + 40];
	int r;

	if (access(path, R_OK) < 0) {
		if (must_exist) {
			snprintf(what, sizeof(what), "%s (%s)", path,
				 strerror(errno));
			sftp_tried(tried, tsize, what);
		}
		return 1;
	}
	/* NULL public key: libssh2 derives it from the private key */
	r = libssh2_userauth_publickey_fromfile_ex(ssh, user, strlen(user),
						   NULL, path, NULL);
	if (r == 0)
		return 0;
	if (sftp_auth_fatal(r)) {
		sftp_tried(tried, tsize, path);
		return r;
	}
	snprintf(what, sizeof(what), "%s (%s)", path,
		 r == LIBSSH2_ERROR_FILE
			 ? "unreadable or passphrase-protected key"
			 : "key refused");
	sftp_tried(tried, tsize, what);
	return 1;
}

int sftp_auth(struct sftp_mount *sm, struct sftp_sess *c, struct vfs_error *err)
{
	static const char *const defaults[] = {"id_ed25519", "id_ecdsa",
					       "id_rsa"};
	LIBSSH2_SESSION *ssh = c->ssh;
	const char *user = sm->cfg.user;
	char tried[1024] = "", *methods, offered[256];
	int r = 1;

	methods = libssh2_userauth_list(ssh, user, strlen(user));
	if (!methods) {
		if (libssh2_userauth_authenticated(ssh))
			return 0;
		r = libssh2_session_last_errno(ssh);
		return vfs_error_set(
			err, -sftp_libssh2_errno(r, &(bool){0}),
			"%s: connection failed during authentication",
			sm->cfg.display);
	}
	snprintf(offered, sizeof(offered), "%s", methods);

	if (strstr(offered, "publickey")) {
		r = sftp_auth_agent(sm, ssh, tried, sizeof(tried));
		if (r == 1 && sm->cfg.identity) {
			r = sftp_auth_keyfile(sm, ssh, sm->cfg.identity, true,
					      tried, sizeof(tried));
		} else if (r == 1) {
			const char *home = getenv("HOME");

			for (size_t i = 0; r == 1 && home && i < 3; i++) {
				char path[PATH_MAX];

				snprintf(path, sizeof(path), "%s/.ssh/%s", home,
					 defaults[i]);
				r = sftp_auth_keyfile(sm, ssh, path, false,
						      tried, sizeof(tried));
			}
		}
	}
	if (r == 1 && sm->cfg.password) {
		const char *pw = sm->cfg.password;

		if (strstr(offered, "password")) {
			r = libssh2_userauth_password_ex(
				ssh, user, strlen(user), pw, strlen(pw), NULL);
		} else if (strstr(offered, "keyboard-interactive")) {
			c->arena.password = pw;
			r = libssh2_userauth_keyboard_interactive_ex(
				ssh, user, strlen(user), sftp_kbdint);
			c->arena.password = NULL;
		}
		if (r != 0 && !sftp_auth_fatal(r)) {
			r = 1;
			sftp_tried(tried, sizeof(tried), "password (refused)");
		}
	}
	if (r == 0)
		return 0;
	if (r < 0)
		return vfs_error_set(
			err, -sftp_libssh2_errno(r, &(bool){0}),
			"%s: connection lost during authentication (tried %s)",
			sm->cfg.display, tried[0] ? tried : "nothing");
	return vfs_error_set(err, EACCES,
			     "%s: authentication failed for %s@%s (tried %s; "
			     "the server accepts %s)",
			     sm->cfg.display, user, sm->cfg.host,
			     tried[0] ? tried
				      : "no ssh-agent and no identity file",
			     offered);
}
