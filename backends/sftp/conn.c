/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conn.c - SSH sessions for the SFTP backend: TCP connect with a
 * timeout, host key verification against known_hosts (before any
 * credential is offered), authentication (ssh-agent, identity files,
 * password), and the per-mount connection pool with its maintenance
 * thread (reconnect with backoff, keepalives, cache expiry).
 *
 * Pool states: CONNECTED while the sessions work; RECONNECTING from the
 * first transport error until a reconnect attempt succeeds or fails;
 * DOWN after a failed attempt.  While DOWN, operations fail at once with
 * -EIO, except that one operation at a time (at most once a second) may
 * wait for a fresh attempt: a dead server then costs the FUSE thread pool
 * one thread, not all of them.
 */
#include <alloca.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/sftp/internal.h"
#include "vfsd/log.h"

#define SFTP_BACKOFF_FIRST_MS	250
#define SFTP_BACKOFF_MAX_MS	5000
/* An operation on a DOWN mount may trigger an attempt this often. */
#define SFTP_PROBE_INTERVAL_MS	1000

/* ---- Per-session allocation arena ----------------------------------- */

struct sftp_arena_hdr {
	struct sftp_arena_hdr *prev, *next;
} __attribute__((aligned(16)));

static void sftp_arena_link(struct sftp_arena *a, struct sftp_arena_hdr *h)
{
	h->prev = NULL;
	h->next = a->head;
	if (a->head)
		a->head->prev = h;
	a->head = h;
	a->count++;
}

static void sftp_arena_unlink(struct sftp_arena *a, struct sftp_arena_hdr *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		a->head = h->next;
	if (h->next)
		h->next->prev = h->prev;
	a->count--;
}

static LIBSSH2_ALLOC_FUNC(sftp_arena_alloc)
{
	struct sftp_arena *a = *abstract;
	struct sftp_arena_hdr *h = malloc(sizeof(*h) + count);

	if (!h)
		return NULL;
	sftp_arena_link(a, h);
	return h + 1;
}

static LIBSSH2_FREE_FUNC(sftp_arena_free)
{
	struct sftp_arena *a = *abstract;
	struct sftp_arena_hdr *h;

	if (!ptr)
		return;
	h = (struct sftp_arena_hdr *)ptr - 1;
	sftp_arena_unlink(a, h);
	free(h);
}

static LIBSSH2_REALLOC_FUNC(sftp_arena_realloc)
{
	struct sftp_arena *a = *abstract;
	struct sftp_arena_hdr *h, *grown;

	if (!ptr)
		return sftp_arena_alloc(count, abstract);
	h = (struct sftp_arena_hdr *)ptr - 1;
	sftp_arena_unlink(a, h);
	grown = realloc(h, sizeof(*h) + count);
	if (!grown) {
		sftp_arena_link(a, h);
		return NULL;
	}
	sftp_arena_link(a, grown);
	return grown + 1;
}

/* Free whatever a dead session left behind. */
static void sftp_arena_release(struct sftp_arena *a)
{
	size_t n = a->count;

	while (a->head) {
		struct sftp_arena_hdr *h = a->head;

		a->head = h->next;
		free(h);
	}
	a->count = 0;
	if (n)
		log_debug("sftp: freed %zu allocations left by a closed session",
			  n);
}

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

/* ---- Fingerprints and known_hosts ----------------------------------- */

void sftp_fingerprint_fmt(const unsigned char digest[32], char *out,
			  size_t size)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	int i;

	if (size < 52) {
		if (size)
			out[0] = '\0';
		return;
	}
	memcpy(out, "SHA256:", 7);
	o = 7;
	/* OpenSSH prints the base64 digest without '=' padding */
	for (i = 0; i + 2 < 32; i += 3) {
		uint32_t v = digest[i] << 16 | digest[i + 1] << 8 |
			     digest[i + 2];

		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = b64[v & 63];
	}
	{
		uint32_t v = digest[30] << 16 | digest[31] << 8;

		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
	}
	out[o] = '\0';
}

struct sftp_keytype {
	int hostkey_type;	/* LIBSSH2_HOSTKEY_TYPE_* */
	int knownhost_bit;	/* LIBSSH2_KNOWNHOST_KEY_* */
	const char *label;
	const char *methods;	/* for libssh2_session_method_pref */
};

/* In libssh2 1.10's own order of preference. */
static const struct sftp_keytype sftp_keytypes[] = {
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
	  "ECDSA", "ecdsa-sha2-nistp256" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
	  "ECDSA", "ecdsa-sha2-nistp384" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
	  "ECDSA", "ecdsa-sha2-nistp521" },
	{ LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519,
	  "ED25519", "ssh-ed25519" },
	{ LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "RSA",
	  "rsa-sha2-512,rsa-sha2-256,ssh-rsa" },
	{ LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "DSA",
	  "ssh-dss" },
};

#define SFTP_NKEYTYPES (sizeof(sftp_keytypes) / sizeof(sftp_keytypes[0]))

/* known_hosts names a host on port 22 plainly, others as "[host]:port". */
static void sftp_known_name(const struct sftp_config *cfg, char *buf,
			    size_t size)
{
	if (cfg->port == 22)
		snprintf(buf, size, "%s", cfg->host);
	else
		snprintf(buf, size, "[%s]:%d", cfg->host, cfg->port);
}

/*
 * Read known_hosts into kh.  A missing file is an empty one.  Lines libssh2
 * cannot parse (certificate authorities, security-key types, revoked
 * markers) are skipped one by one: libssh2_knownhost_readfile() would
 * give up on the whole file at the first of them.  Returns 0 or -errno
 * with *err set.
 */
static int sftp_known_read(struct sftp_mount *sm, LIBSSH2_KNOWNHOSTS *kh,
			   struct vfs_error *err)
{
	const char *path = sm->cfg.known_hosts;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		return vfs_error_set(err, errno, "%s: cannot read known_hosts %s: %s",
				     sm->cfg.display, path, strerror(errno));
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		if (libssh2_knownhost_readline(kh, line, len,
					       LIBSSH2_KNOWNHOST_FILE_OPENSSH))
			log_debug("%s: skipping a known_hosts line libssh2 cannot use",
				  sm->cfg.display);
	}
	free(line);
	fclose(f);
	return 0;
}

/*
 * Ask the server for a host key of a type known_hosts already has for
 * this host (as OpenSSH does); otherwise libssh2 might negotiate another
 * type and the check would wrongly find the host unknown.  Only plain
 * (unhashed) entries can be matched without the key.
 */
static void sftp_known_prefer(struct sftp_mount *sm, LIBSSH2_SESSION *ssh,
			      LIBSSH2_KNOWNHOSTS *kh)
{
	struct libssh2_knownhost *e = NULL;
	bool have[SFTP_NKEYTYPES] = { false };
	char name[300], prefs[256] = "";
	bool any = false;

	sftp_known_name(&sm->cfg, name, sizeof(name));
	while (libssh2_knownhost_get(kh, &e, e) == 0) {
		if ((e->typemask & LIBSSH2_KNOWNHOST_TYPE_MASK) !=
			    LIBSSH2_KNOWNHOST_TYPE_PLAIN ||
		    !e->name || strcmp(e->name, name) != 0)
			continue;
		for (size_t i = 0; i < SFTP_NKEYTYPES; i++)
			if ((e->typemask & LIBSSH2_KNOWNHOST_KEY_MASK) ==
			    sftp_keytypes[i].knownhost_bit) {
				have[i] = true;
				any = true;
			}
	}
	if (!any)
		return;
	for (size_t i = 0; i < SFTP_NKEYTYPES; i++) {
		if (!have[i])
			continue;
		if (prefs[0])
			strncat(prefs, ",", sizeof(prefs) - strlen(prefs) - 1);
		strncat(prefs, sftp_keytypes[i].methods,
			sizeof(prefs) - strlen(prefs) - 1);
	}
	if (libssh2_session_method_pref(ssh, LIBSSH2_METHOD_HOSTKEY, prefs))
		log_debug("%s: host key preference '%s' refused by libssh2",
			  sm->cfg.display, prefs);
}

/* Append one entry to known_hosts (hostkey=accept-new). */
static int sftp_known_append(struct sftp_mount *sm, LIBSSH2_KNOWNHOSTS *kh,
			     const char *name, const char *key, size_t keylen,
			     int keybit, struct vfs_error *err)
{
	const char *path = sm->cfg.known_hosts;
	struct libssh2_knownhost *added;
	char line[8192], *slash;
	size_t len;
	int fd, ret = 0;
	struct stat st;

	if (libssh2_knownhost_addc(kh, name, NULL, key, keylen, NULL, 0,
				   LIBSSH2_KNOWNHOST_TYPE_PLAIN |
					   LIBSSH2_KNOWNHOST_KEYENC_RAW |
					   keybit,
				   &added) ||
	    libssh2_knownhost_writeline(kh, added, line, sizeof(line), &len,
					LIBSSH2_KNOWNHOST_FILE_OPENSSH))
		return vfs_error_set(err, EIO, "%s: cannot format a known_hosts entry",
				     sm->cfg.display);
	/* like ssh(1), create ~/.ssh if it is missing */
	slash = strrchr(path, '/');
	if (slash && slash != path) {
		char *dir = strndup(path, slash - path);

		if (!dir)
			return vfs_error_set(err, ENOMEM, "out of memory");
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			ret = vfs_error_set(err, errno, "%s: cannot create %s: %s",
					    sm->cfg.display, dir,
					    strerror(errno));
		free(dir);
		if (ret)
			return ret;
	}
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return vfs_error_set(err, errno, "%s: cannot write known_hosts %s: %s",
				     sm->cfg.display, path, strerror(errno));
	/* keep the file line-structured if its last line lacks a newline */
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		char last;

		if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n' &&
		    write(fd, "\n", 1) != 1)
			ret = -EIO;
	}
	if (!ret && write(fd, line, len) != (ssize_t)len)
		ret = -EIO;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (ret)
		return vfs_error_set(err, -ret, "%s: cannot write known_hosts %s",
				     sm->cfg.display, path);
	return 0;
}

/* Verify the server's host key; called after the handshake, before
 * authentication. */
static int sftp_known_check(struct sftp_mount *sm, LIBSSH2_SESSION *ssh,
			    LIBSSH2_KNOWNHOSTS *kh, struct vfs_error *err)
{
	const struct sftp_keytype *kt = NULL;
	const unsigned char *digest;
	const char *key;
	char name[300], fp[64];
	size_t keylen;
	int type, check;

	key = libssh2_session_hostkey(ssh, &keylen, &type);
	digest = (const unsigned char *)libssh2_hostkey_hash(
		ssh, LIBSSH2_HOSTKEY_HASH_SHA256);
	for (size_t i = 0; i < SFTP_NKEYTYPES; i++)
		if (sftp_keytypes[i].hostkey_type == type)
			kt = &sftp_keytypes[i];
	if (!key || !digest || !kt)
		return vfs_error_set(err, EPROTO, "%s: server sent an unsupported host key",
				     sm->cfg.display);
	sftp_fingerprint_fmt(digest, fp, sizeof(fp));
	sftp_known_name(&sm->cfg, name, sizeof(name));

	check = libssh2_knownhost_checkp(kh, name, -1, key, keylen,
					 LIBSSH2_KNOWNHOST_TYPE_PLAIN |
						 LIBSSH2_KNOWNHOST_KEYENC_RAW |
						 kt->knownhost_bit,
					 NULL);
	switch (check) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		return 0;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		return vfs_error_set(err, EACCES,
				     "%s: HOST KEY CHANGED for %s: the server offers %s key %s, which does not match %s; refusing to connect (someone may be intercepting the connection, or the host key was replaced: fix known_hosts)",
				     sm->cfg.display, name, kt->label, fp,
				     sm->cfg.known_hosts);
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		if (sm->cfg.hostkey != SFTP_HOSTKEY_ACCEPT_NEW)
			return vfs_error_set(err, EACCES,
					     "%s: host %s is not in %s (its %s key is %s); verify the fingerprint and add it to known_hosts, or mount with hostkey=accept-new",
					     sm->cfg.display, name,
					     sm->cfg.known_hosts, kt->label,
					     fp);
		if (sftp_known_append(sm, kh, name, key, keylen,
				      kt->knownhost_bit, err) < 0)
			return -err->code;
		log_info("%s: added %s host key %s of %s to %s",
			 sm->cfg.display, kt->label, fp, name,
			 sm->cfg.known_hosts);
		return 0;
	default:
		return vfs_error_set(err, EIO, "%s: cannot check the host key of %s",
				     sm->cfg.display, name);
	}
}

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
	if (libssh2_agent_connect(agent) || libssh2_agent_list_identities(agent)) {
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
	snprintf(what, sizeof(what), "ssh-agent (%d key%s)", n, n == 1 ? "" : "s");
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
		 r == LIBSSH2_ERROR_FILE ? "unreadable or passphrase-protected key"
					 : "key refused");
	sftp_tried(tried, tsize, what);
	return 1;
}

static int sftp_auth(struct sftp_mount *sm, struct sftp_conn *c,
		     struct vfs_error *err)
{
	static const char *const defaults[] = { "id_ed25519", "id_ecdsa",
						"id_rsa" };
	LIBSSH2_SESSION *ssh = c->ssh;
	const char *user = sm->cfg.user;
	char tried[1024] = "", *methods, offered[256];
	int r = 1;

	methods = libssh2_userauth_list(ssh, user, strlen(user));
	if (!methods) {
		if (libssh2_userauth_authenticated(ssh))
			return 0;
		r = libssh2_session_last_errno(ssh);
		return vfs_error_set(err, -sftp_libssh2_errno(r, &(bool){ 0 }),
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
			r = libssh2_userauth_password_ex(ssh, user,
							 strlen(user), pw,
							 strlen(pw), NULL);
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
		return vfs_error_set(err, -sftp_libssh2_errno(r, &(bool){ 0 }),
				     "%s: connection lost during authentication (tried %s)",
				     sm->cfg.display, tried[0] ? tried : "nothing");
	return vfs_error_set(err, EACCES,
			     "%s: authentication failed for %s@%s (tried %s; the server accepts %s)",
			     sm->cfg.display, user, sm->cfg.host,
			     tried[0] ? tried : "no ssh-agent and no identity file",
			     offered);
}

/* ---- Sessions ------------------------------------------------------- */

/* TCP connect bounded by timeout_ms; returns a blocking socket or -errno. */
static int sftp_tcp_connect(struct sftp_mount *sm, struct vfs_error *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	struct timespec deadline;
	char port[16];
	int rc, fd = -1, last = ECONNREFUSED;

	snprintf(port, sizeof(port), "%d", sm->cfg.port);
	rc = getaddrinfo(sm->cfg.host, port, &hints, &res);
	if (rc)
		return vfs_error_set(err, EHOSTUNREACH, "%s: cannot resolve %s: %s",
				     sm->cfg.display, sm->cfg.host,
				     gai_strerror(rc));
	sftp_ts_after_ms(&deadline, sm->cfg.timeout_ms);
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t len = sizeof(last);
		int one = 1;

		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			long ms;

			if (errno != EINPROGRESS) {
				last = errno;
				goto next;
			}
			pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
			ms = sftp_ts_ms_until(&deadline);
			rc = ms > 0 ? poll(&pfd, 1, (int)ms) : 0;
			if (rc <= 0) {
				last = rc == 0 ? ETIMEDOUT : errno;
				goto next;
			}
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &len) <
				    0 ||
			    last)
				goto next;
		}
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
			last = errno;
			goto next;
		}
		/* SFTP requests are small and latency-bound */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		freeaddrinfo(res);
		return fd;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return vfs_error_set(err, last, "%s: cannot connect to %s port %d: %s",
			     sm->cfg.display, sm->cfg.host, sm->cfg.port,
			     strerror(last));
}

int sftp_conn_open(struct sftp_mount *sm, struct sftp_conn *c,
		   struct vfs_error *err)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	int rc;

	c->broken = false;
	c->arena.head = NULL;
	c->arena.count = 0;
	c->arena.password = NULL;
	c->sock = sftp_tcp_connect(sm, err);
	if (c->sock < 0)
		return c->sock;
	c->ssh = libssh2_session_init_ex(sftp_arena_alloc, sftp_arena_free,
					 sftp_arena_realloc, &c->arena);
	if (!c->ssh) {
		rc = vfs_error_set(err, ENOMEM, "out of memory");
		goto err_close;
	}
	libssh2_session_set_blocking(c->ssh, 1);
	libssh2_session_set_timeout(c->ssh, sm->cfg.timeout_ms);
	/* Only counter-mode ciphers (what OpenSSH still offers), fastest
	 * first with AES-NI; MACs with SHA extensions are cheap too.
	 * aes128-ctr comes with its keystream made in bulk (ctr.c). */
	if (!sftp_ctr_cipher())
		log_warn("%s: bulk AES-CTR unavailable; OpenSSL's per-block one serves",
			 sm->cfg.display);
	libssh2_session_method_pref(c->ssh, LIBSSH2_METHOD_CRYPT_CS,
				    "aes128-ctr,aes192-ctr,aes256-ctr");
	libssh2_session_method_pref(c->ssh, LIBSSH2_METHOD_CRYPT_SC,
				    "aes128-ctr,aes192-ctr,aes256-ctr");

	kh = libssh2_knownhost_init(c->ssh);
	if (!kh) {
		rc = vfs_error_set(err, ENOMEM, "out of memory");
		goto err_session;
	}
	rc = sftp_known_read(sm, kh, err);
	if (rc < 0)
		goto err_session;
	sftp_known_prefer(sm, c->ssh, kh);

	rc = libssh2_session_handshake(c->ssh, c->sock);
	if (rc) {
		char *msg = NULL;

		libssh2_session_last_error(c->ssh, &msg, NULL, 0);
		rc = vfs_error_set(err,
				   rc == LIBSSH2_ERROR_TIMEOUT ? ETIMEDOUT
							       : ECONNABORTED,
				   "%s: SSH handshake with %s port %d failed: %s",
				   sm->cfg.display, sm->cfg.host, sm->cfg.port,
				   msg ? msg : "unknown error");
		goto err_session;
	}
	rc = sftp_known_check(sm, c->ssh, kh, err);
	if (rc < 0)
		goto err_session;
	libssh2_knownhost_free(kh);
	kh = NULL;

	rc = sftp_auth(sm, c, err);
	if (rc < 0)
		goto err_session;

	c->sftp = libssh2_sftp_init(c->ssh);
	if (!c->sftp) {
		bool transport;
		int e = sftp_libssh2_errno(libssh2_session_last_errno(c->ssh),
					   &transport);

		rc = transport ? vfs_error_set(err, -e, "%s: connection lost while starting SFTP",
					       sm->cfg.display)
			       : vfs_error_set(err, EPROTO, "%s: the server refused the SFTP subsystem",
					       sm->cfg.display);
		goto err_session;
	}
	/* no reply wanted: libssh2 1.10 would keep every unclaimed reply
	 * queued for the life of the session */
	if (sm->cfg.keepalive_s)
		libssh2_keepalive_config(c->ssh, 0, sm->cfg.keepalive_s);
	clock_gettime(CLOCK_MONOTONIC, &c->last_io);
	return 0;

err_session:
	if (kh)
		libssh2_knownhost_free(kh);
	sftp_conn_close(c, false);
	return rc;
err_close:
	close(c->sock);
	c->sock = -1;
	return rc;
}

void sftp_conn_close(struct sftp_conn *c, bool graceful)
{
	if (graceful)
		sftp_close_reap(c, true);
	if (c->sock >= 0 && !graceful)
		/* makes every pending libssh2 read/write fail at once */
		shutdown(c->sock, SHUT_RDWR);
	if (c->sftp)
		libssh2_sftp_shutdown(c->sftp);
	if (c->ssh) {
		if (graceful)
			libssh2_session_disconnect(c->ssh, "unmount");
		libssh2_session_free(c->ssh);
	}
	sftp_arena_release(&c->arena);
	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
	c->ssh = NULL;
	c->sftp = NULL;
	c->nclosing = 0;
	c->broken = false;
	c->timed_out = false;
}

/* ---- Deferred closes ------------------------------------------------ */

/*
 * libssh2 keeps a close's progress in the handle itself, so several can
 * be outstanding; in non-blocking mode libssh2_sftp_close_handle() sends
 * FXP_CLOSE and returns EAGAIN while the answer is on its way.  A request
 * only partly written to the socket must be finished before anything
 * else is sent, so that case waits.
 */
int sftp_close_deferred(struct sftp_conn *c, LIBSSH2_SFTP_HANDLE *h)
{
	int rc;

	if (c->nclosing == SFTP_MAX_CLOSING)
		sftp_close_reap(c, true);
	if (c->broken)
		return -EIO;
	libssh2_session_set_blocking(c->ssh, 0);
	rc = libssh2_sftp_close_handle(h);
	if (rc == LIBSSH2_ERROR_EAGAIN &&
	    (libssh2_session_block_directions(c->ssh) &
	     LIBSSH2_SESSION_BLOCK_OUTBOUND)) {
		libssh2_session_set_blocking(c->ssh, 1);
		rc = libssh2_sftp_close_handle(h);
	}
	libssh2_session_set_blocking(c->ssh, 1);
	if (rc == LIBSSH2_ERROR_EAGAIN) {
		c->closing[c->nclosing++] = h;
		return 0;
	}
	return sftp_err(c, rc);
}

void sftp_close_reap(struct sftp_conn *c, bool wait)
{
	if (!c->nclosing || c->broken)
		return;
	libssh2_session_set_blocking(c->ssh, wait);
	while (c->nclosing && !c->broken) {
		int rc = libssh2_sftp_close_handle(c->closing[0]);

		if (rc == LIBSSH2_ERROR_EAGAIN) {
			if (!(libssh2_session_block_directions(c->ssh) &
			      LIBSSH2_SESSION_BLOCK_OUTBOUND))
				/* answers come in request order: the later
				 * ones are not here either */
				break;
			libssh2_session_set_blocking(c->ssh, 1);
			continue;
		}
		if (rc)
			/* the handle is freed either way; closing a plain
			 * file does not fail on OpenSSH in practice */
			log_debug("sftp: deferred close failed: %s",
				  strerror(-sftp_err(c, rc)));
		c->nclosing--;
		memmove(&c->closing[0], &c->closing[1],
			c->nclosing * sizeof(*c->closing));
	}
	libssh2_session_set_blocking(c->ssh, 1);
}

/* ---- Pool ----------------------------------------------------------- */

static const char *const sftp_state_names[] = {
	[SFTP_CONNECTED] = "connected",
	[SFTP_RECONNECTING] = "reconnecting",
	[SFTP_DOWN] = "down",
};

static void sftp_set_state_locked(struct sftp_mount *sm, enum sftp_state s,
				  const char *why)
{
	if (sm->pool.state == s)
		return;
	sm->pool.state = s;
	if (s == SFTP_CONNECTED)
		log_info("%s: %s", sm->cfg.display, sftp_state_names[s]);
	else
		log_warn("%s: %s%s%s", sm->cfg.display, sftp_state_names[s],
			 why ? ": " : "", why ? why : "");
	pthread_cond_broadcast(&sm->pool.cond);
}

static long sftp_ms_since(const struct timespec *t)
{
	return -sftp_ts_ms_until(t);
}

static void *sftp_maint_main(void *arg);

int sftp_pool_init(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;
	pthread_condattr_t ca;

	p->n = sm->cfg.connections;
	p->conns = calloc(p->n, sizeof(*p->conns));
	if (!p->conns)
		return -ENOMEM;
	for (int i = 0; i < p->n; i++) {
		p->conns[i].idx = i;
		p->conns[i].sock = -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_cond_init(&p->maint_cond, &ca);
	pthread_condattr_destroy(&ca);
	p->state = SFTP_CONNECTED;
	clock_gettime(CLOCK_MONOTONIC, &p->next_attempt);
	p->last_attempt_end = p->next_attempt;
	return 0;
}

int sftp_pool_start(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;
	int rc;

	p->conns[0].up = true;
	p->conns[0].gen = 1;
	rc = pthread_create(&p->maint, NULL, sftp_maint_main, sm);
	if (rc)
		return -rc;
	p->maint_started = true;
	return 0;
}

void sftp_pool_destroy(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;

	if (!p->conns)
		return;
	pthread_mutex_lock(&p->lock);
	p->closing = true;
	pthread_cond_broadcast(&p->cond);
	pthread_cond_broadcast(&p->maint_cond);
	pthread_mutex_unlock(&p->lock);
	if (p->maint_started)
		pthread_join(p->maint, NULL);
	for (int i = 0; i < p->n; i++) {
		struct sftp_conn *c = &p->conns[i];

		if (c->ssh)
			sftp_conn_close(c, c->up && !c->broken &&
						   p->state == SFTP_CONNECTED);
	}
	free(p->conns);
	p->conns = NULL;
	pthread_cond_destroy(&p->cond);
	pthread_cond_destroy(&p->maint_cond);
	pthread_mutex_destroy(&p->lock);
}

/*
 * A transport error on one session: the others talk to the same server
 * over the same path, so they are presumed dead too.  Idle ones are
 * reserved (busy) and returned in close_list for the caller to close
 * without the lock; busy ones are closed when they are checked in.
 *
 * A connection that dropped (server restarted) makes the mount
 * RECONNECTING: new calls wait for the reconnect, which is quick either
 * way.  A server that did not answer for a whole timeout makes it DOWN at
 * once: the reconnect would only hang as long again, and callers are
 * owed an answer within the timeout, so new calls fail fast meanwhile.
 */
static int sftp_pool_fail_locked(struct sftp_mount *sm, const char *why,
				 bool timed_out, struct sftp_conn **close_list)
{
	struct sftp_pool *p = &sm->pool;
	int n = 0;

	for (int i = 0; i < p->n; i++) {
		struct sftp_conn *c = &p->conns[i];

		if (!c->up)
			continue;
		if (c->busy) {
			c->doomed = true;
			continue;
		}
		c->up = false;
		c->busy = true;
		close_list[n++] = c;
	}
	if (p->state == SFTP_CONNECTED) {
		sftp_set_state_locked(sm, timed_out ? SFTP_DOWN
						    : SFTP_RECONNECTING,
				      why);
		p->backoff_ms = 0;
		clock_gettime(CLOCK_MONOTONIC, &p->next_attempt);
		if (timed_out)
			/* counts as a failed attempt for the probe limit */
			p->last_attempt_end = p->next_attempt;
	}
	pthread_cond_signal(&p->maint_cond);
	return n;
}

void sftp_checkin_discard(struct sftp_mount *sm, struct sftp_conn *c)
{
	pthread_mutex_lock(&sm->pool.lock);
	c->doomed = true;
	pthread_mutex_unlock(&sm->pool.lock);
	sftp_checkin(sm, c);
}

void sftp_checkin(struct sftp_mount *sm, struct sftp_conn *c)
{
	struct sftp_pool *p = &sm->pool;
	struct sftp_conn **closing;
	int n = 0;

	sftp_close_reap(c, false);
	clock_gettime(CLOCK_MONOTONIC, &c->last_io);
	if (c->fenced) {
		c->fenced = false;
		if (!c->broken)
			libssh2_session_set_timeout(c->ssh, sm->cfg.timeout_ms);
		else if (c->timed_out && vfs_call_expired())
			/* the caller's deadline, not a silent server: drop
			 * this connection only, the mount stays up */
			c->timed_out = false;
	}
	pthread_mutex_lock(&p->lock);
	if (!c->broken && !c->doomed) {
		c->busy = false;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	closing = alloca(p->n * sizeof(*closing));
	c->up = false;
	if (c->broken) {
		char *msg = NULL;
		char why[200];

		libssh2_session_last_error(c->ssh, &msg, NULL, 0);
		snprintf(why, sizeof(why), "connection lost (%s)",
			 msg ? msg : "transport error");
		n = sftp_pool_fail_locked(sm, why, c->timed_out, closing);
	}
	pthread_mutex_unlock(&p->lock);

	sftp_conn_close(c, false);
	for (int i = 0; i < n; i++)
		sftp_conn_close(closing[i], false);

	pthread_mutex_lock(&p->lock);
	c->doomed = false;
	c->busy = false;
	for (int i = 0; i < n; i++)
		closing[i]->busy = false;
	pthread_cond_broadcast(&p->cond);
	pthread_cond_signal(&p->maint_cond);
	pthread_mutex_unlock(&p->lock);
}

/* The idle usable slot with the fewest open files, rotating on ties so
 * that metadata calls spread over the pool. */
static struct sftp_conn *sftp_pick_locked(struct sftp_pool *p)
{
	struct sftp_conn *best = NULL;
	unsigned start = p->rr++;

	for (int k = 0; k < p->n; k++) {
		struct sftp_conn *c = &p->conns[(start + k) % p->n];

		if (!c->up || c->busy || c->doomed)
			continue;
		if (!best || c->nfiles < best->nfiles)
			best = c;
	}
	return best;
}

int sftp_checkout(struct sftp_mount *sm, int want, unsigned gen,
		  struct sftp_conn **out)
{
	struct sftp_pool *p = &sm->pool;
	struct timespec deadline;
	int ret = 0;

	sftp_ts_after_ms(&deadline, sm->cfg.timeout_ms);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct sftp_conn *c = NULL;

		if (p->closing) {
			ret = -EIO;
			break;
		}
		if (want >= 0) {
			c = &p->conns[want];
			if (c->gen != gen || !c->up) {
				ret = -ESTALE;
				break;
			}
			if (c->busy)
				c = NULL;
		} else if (p->state == SFTP_DOWN) {
			unsigned seq = p->attempt_seq;

			if (p->probe_waiter ||
			    sftp_ms_since(&p->last_attempt_end) <
				    SFTP_PROBE_INTERVAL_MS) {
				ret = -EIO;
				break;
			}
			/* this caller waits for one fresh attempt */
			p->probe_waiter = true;
			if (!p->connecting) {
				clock_gettime(CLOCK_MONOTONIC, &p->next_attempt);
				pthread_cond_signal(&p->maint_cond);
			}
			while (p->attempt_seq == seq && !p->closing && !ret)
				ret = -pthread_cond_timedwait(&p->cond, &p->lock,
							      &deadline);
			p->probe_waiter = false;
			if (ret) {
				ret = -ETIMEDOUT;
				break;
			}
			if (p->state == SFTP_DOWN) {
				ret = -EIO;
				break;
			}
			continue;
		} else {
			c = sftp_pick_locked(p);
		}
		if (c) {
			long budget = vfs_call_budget_ms(sm->cfg.timeout_ms);

			if (budget <= 0) {
				/* past the caller's deadline: send nothing */
				ret = -ETIMEDOUT;
				break;
			}
			c->busy = true;
			if (budget < sm->cfg.timeout_ms) {
				/* so that a request that misses the deadline
				 * is abandoned with its connection */
				c->fenced = true;
				libssh2_session_set_timeout(c->ssh, budget);
			}
			*out = c;
			break;
		}
		if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) ==
		    ETIMEDOUT) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void sftp_pool_count_file(struct sftp_mount *sm, int idx, int delta)
{
	pthread_mutex_lock(&sm->pool.lock);
	sm->pool.conns[idx].nfiles += delta;
	pthread_mutex_unlock(&sm->pool.lock);
}

const char *sftp_pool_state(struct sftp_mount *sm)
{
	enum sftp_state s;

	pthread_mutex_lock(&sm->pool.lock);
	s = sm->pool.state;
	pthread_mutex_unlock(&sm->pool.lock);
	return sftp_state_names[s];
}

/* One (re)connect attempt for slot c (reserved busy by the caller). */
static void sftp_maint_connect_locked(struct sftp_mount *sm,
				      struct sftp_conn *c)
{
	struct sftp_pool *p = &sm->pool;
	struct vfs_error err;
	bool was_connected;
	int rc;

	vfs_error_init(&err);
	p->connecting = true;
	pthread_mutex_unlock(&p->lock);
	rc = sftp_conn_open(sm, c, &err);
	pthread_mutex_lock(&p->lock);
	p->connecting = false;
	p->attempt_seq++;
	clock_gettime(CLOCK_MONOTONIC, &p->last_attempt_end);
	c->busy = false;
	if (rc == 0 && p->closing) {
		c->gen++;
		c->up = true;
	} else if (rc == 0) {
		was_connected = p->state == SFTP_CONNECTED;
		c->gen++;
		c->up = true;
		c->doomed = false;
		p->backoff_ms = 0;
		p->next_attempt = p->last_attempt_end;
		if (!was_connected) {
			/* the server may have changed while we were away */
			sftp_cache_clear(sm->cache);
			sftp_set_state_locked(sm, SFTP_CONNECTED, NULL);
		}
	} else {
		bool any_up = false;

		for (int i = 0; i < p->n; i++)
			any_up |= p->conns[i].up;
		p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2
					      : SFTP_BACKOFF_FIRST_MS;
		if (p->backoff_ms > SFTP_BACKOFF_MAX_MS)
			p->backoff_ms = SFTP_BACKOFF_MAX_MS;
		sftp_ts_after_ms(&p->next_attempt, p->backoff_ms);
		if (!any_up && p->state != SFTP_DOWN)
			sftp_set_state_locked(sm, SFTP_DOWN, err.msg);
		else if (any_up)
			log_warn_ratelimited(&sm->rl, "%s", err.msg);
	}
	pthread_cond_broadcast(&p->cond);
}

/* Send keepalives on idle sessions (the lock is dropped meanwhile). */
static void sftp_maint_keepalive_locked(struct sftp_mount *sm)
{
	struct sftp_pool *p = &sm->pool;

	for (int i = 0; i < p->n && !p->closing; i++) {
		struct sftp_conn *c = &p->conns[i];
		int next, rc;

		if (!c->up || c->busy || c->doomed ||
		    sftp_ms_since(&c->last_io) < sm->cfg.keepalive_s * 1000L)
			continue;
		c->busy = true;
		pthread_mutex_unlock(&p->lock);
		rc = libssh2_keepalive_send(c->ssh, &next);
		if (rc)
			sftp_err(c, rc);
		pthread_mutex_lock(&p->lock);
		if (c->broken) {
			pthread_mutex_unlock(&p->lock);
			sftp_checkin(sm, c);
			pthread_mutex_lock(&p->lock);
		} else {
			clock_gettime(CLOCK_MONOTONIC, &c->last_io);
			c->busy = false;
			pthread_cond_broadcast(&p->cond);
		}
	}
}

static void *sftp_maint_main(void *arg)
{
	struct sftp_mount *sm = arg;
	struct sftp_pool *p = &sm->pool;
	struct timespec last_expire;

	clock_gettime(CLOCK_MONOTONIC, &last_expire);
	pthread_mutex_lock(&p->lock);
	while (!p->closing) {
		struct sftp_conn *missing = NULL;
		struct timespec wake;

		for (int i = 0; i < p->n && !missing; i++)
			if (!p->conns[i].up && !p->conns[i].busy)
				missing = &p->conns[i];
		if (missing && sftp_ts_ms_until(&p->next_attempt) <= 0) {
			missing->busy = true;
			sftp_maint_connect_locked(sm, missing);
			continue;
		}
		if (sm->cfg.keepalive_s)
			sftp_maint_keepalive_locked(sm);
		if (sftp_ms_since(&last_expire) >= 1000) {
			sftp_cache_expire(sm->cache);
			clock_gettime(CLOCK_MONOTONIC, &last_expire);
		}
		sftp_ts_after_ms(&wake, 1000);
		if (missing && sftp_ts_ms_until(&p->next_attempt) < 1000)
			wake = p->next_attempt;
		if (!p->closing)
			pthread_cond_timedwait(&p->maint_cond, &p->lock, &wake);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}
