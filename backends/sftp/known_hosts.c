/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * known_hosts.c - host key verification against known_hosts, before any
 * credential is offered: strict by default (an unknown or changed key
 * refuses the connection), accept-new appends an unknown host's key.
 * Lines libssh2 cannot parse are skipped one by one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/sftp/internal.h"
#include "lib/log.h"

/* ---- Fingerprints and known_hosts ----------------------------------- */

void sftp_fingerprint_fmt(const unsigned char digest[32], char *out,
			  size_t size)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
				  "stuvwxyz0123456789+/";
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
		uint32_t v =
			digest[i] << 16 | digest[i + 1] << 8 | digest[i + 2];

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
	int hostkey_type;  /* LIBSSH2_HOSTKEY_TYPE_* */
	int knownhost_bit; /* LIBSSH2_KNOWNHOST_KEY_* */
	const char *label;
	const char *methods; /* for libssh2_session_method_pref */
};

/* In libssh2 1.10's own order of preference. */
static const struct sftp_keytype sftp_keytypes[] = {
	{LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
	 "ECDSA", "ecdsa-sha2-nistp256"},
	{LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
	 "ECDSA", "ecdsa-sha2-nistp384"},
	{LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
	 "ECDSA", "ecdsa-sha2-nistp521"},
	{LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ED25519",
	 "ssh-ed25519"},
	{LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "RSA",
	 "rsa-sha2-512,rsa-sha2-256,ssh-rsa"},
	{LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "DSA",
	 "ssh-dss"},
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
int sftp_known_read(struct sftp_mount *sm, LIBSSH2_KNOWNHOSTS *kh,
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
		return vfs_error_set(err, errno,
				     "%s: cannot read known_hosts %s: %s",
				     sm->cfg.display, path, strerror(errno));
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		if (libssh2_knownhost_readline(kh, line, len,
					       LIBSSH2_KNOWNHOST_FILE_OPENSSH))
			log_debug("%s: skipping a known_hosts line libssh2 "
				  "cannot use",
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
void sftp_known_prefer(struct sftp_mount *sm, LIBSSH2_SESSION *ssh,
		       LIBSSH2_KNOWNHOSTS *kh)
{
	struct libssh2_knownhost *e = NULL;
	bool have[SFTP_NKEYTYPES] = {false};
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
		return vfs_error_set(err, EIO,
				     "%s: cannot format a known_hosts entry",
				     sm->cfg.display);
	/* like ssh(1), create ~/.ssh if it is missing */
	slash = strrchr(path, '/');
	if (slash && slash != path) {
		char *dir = strndup(path, slash - path);

		if (!dir)
			return vfs_error_set(err, ENOMEM, "out of memory");
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			ret = vfs_error_set(
				err, errno, "%s: cannot create %s: %s",
				sm->cfg.display, dir, strerror(errno));
		free(dir);
		if (ret)
			return ret;
	}
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return vfs_error_set(err, errno,
				     "%s: cannot write known_hosts %s: %s",
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
		return vfs_error_set(err, -ret,
				     "%s: cannot write known_hosts %s",
				     sm->cfg.display, path);
	return 0;
}

/* Verify the server's host key; called after the handshake, before
 * authentication. */
int sftp_known_check(struct sftp_mount *sm, LIBSSH2_SESSION *ssh,
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
		return vfs_error_set(err, EPROTO,
				     "%s: server sent an unsupported host key",
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
		return vfs_error_set(
			err, EACCES,
			"%s: HOST KEY CHANGED for %s: the server offers %s key "
			"%s, which does not match %s; refusing to connect "
			"(someone may be intercepting the connection, or the "
			"host key was replaced: fix known_hosts)",
			sm->cfg.display, name, kt->label, fp,
			sm->cfg.known_hosts);
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		if (sm->cfg.hostkey != SFTP_HOSTKEY_ACCEPT_NEW)
			return vfs_error_set(
				err, EACCES,
				"%s: host %s is not in %s (its %s key is %s); "
				"verify the fingerprint and add it to "
				"known_hosts, or mount with hostkey=accept-new",
				sm->cfg.display, name, sm->cfg.known_hosts,
				kt->label, fp);
		if (sftp_known_append(sm, kh, name, key, keylen,
				      kt->knownhost_bit, err) < 0)
			return -err->code;
		log_info("%s: added %s host key %s of %s to %s",
			 sm->cfg.display, kt->label, fp, name,
			 sm->cfg.known_hosts);
		return 0;
	default:
		return vfs_error_set(err, EIO,
				     "%s: cannot check the host key of %s",
				     sm->cfg.display, name);
	}
}
