/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * url.h - mount URLs: scheme://[user@]host[:port]/abs/path[?k=v&...],
 * file:///abs/path, or a bare absolute path (taken as file://); mount
 * prefixes; and how both are quoted in messages.
 *
 * A URL may carry a secret (a password in a query parameter, or a
 * user:password@ part that the parser refuses but a message would quote),
 * and a prefix or URL may carry control characters that would break a log
 * line.  Every message that quotes one goes through vfs_url_redact() or
 * vfs_quote().
 */
#ifndef VFSD_LIB_URL_H
#define VFSD_LIB_URL_H

#include <stddef.h>

#include "lib/error.h"
#include "lib/options.h"

struct vfs_url {
	char *raw;	/* as given, for messages: secrets masked and control
			 * characters escaped by vfs_url_redact (owned) */
	char *scheme;	/* lower case (owned) */
	char *user;	/* percent-decoded, or NULL (owned) */
	char *host;	/* without IPv6 brackets, or NULL (owned) */
	int port;	/* 0 when absent */
	char *path;	/* percent-decoded, normalised, absolute (owned) */
	struct vfs_opts query; /* query parameters, origin URL (owned) */
};

/*
 * Parse `s` into *url (all fields owned by *url afterwards; free with
 * vfs_url_clear).  0 or -EINVAL with a message naming the URL (redacted).
 * file:// URLs (and a bare path) must name a directory: no user, no host
 * but localhost, no empty path, and no path that only reduces to "/" (an
 * empty variable in "file://$DIR" or "$A//$B" must not serve the whole
 * host; "/" and "file:///" written as such still do).
 */
int vfs_url_parse(const char *s, struct vfs_url *url, struct vfs_error *err);
void vfs_url_clear(struct vfs_url *url);

/*
 * The URL for display: scheme://user@host:port/path?query, without query
 * parameters whose name looks secret (see vfs_url_redact).  Returns a new
 * string the caller frees, or NULL.
 */
char *vfs_url_display(const struct vfs_url *url);

/*
 * Normalise an absolute path in place: collapse "//", drop "." components
 * and a trailing '/'.  ".." is refused (-EINVAL): mount paths and prefixes
 * are never relative to anything.  "/" stays "/".
 */
int vfs_path_normalize(char *path);

/*
 * `s` (a URL, well-formed or not, or any text that may hold one) as it may
 * appear in a message or a log: the password of a user:password@ part and
 * the value of every key=value whose key looks secret (it contains "pass",
 * "secret" or "token", as password= and passphrase= do, %-escapes decoded,
 * any case) become "***"; control characters become \xNN.  Written to buf
 * (cut with "..." when longer than size - 1); returns buf.
 */
const char *vfs_url_redact(const char *s, char *buf, size_t size);

/*
 * `s` for a message: control characters (and '\\') escaped as \xNN, cut
 * with "..." when longer than size - 1.  Returns buf.
 */
const char *vfs_quote(const char *s, char *buf, size_t size);

/* Longest mount prefix, after normalisation. */
#define VFS_PREFIX_MAX 1024
/* vfsd's own directory: no mount may be put at or beneath it. */
#define VFS_CTL_PREFIX "/.vfsd"

/*
 * Check a mount prefix and normalise it in place, for every way a prefix
 * arrives (config file, -m, vfsctl mount add): absolute, no "..", no
 * control characters (they would break the mount table and the log), no
 * component longer than NAME_MAX, at most VFS_PREFIX_MAX bytes, and not at
 * or under VFS_CTL_PREFIX.  0, or -EINVAL (-ENAMETOOLONG for the lengths)
 * with *err saying which rule the prefix (quoted with vfs_url_redact: a
 * URL given in its place may hold a password) breaks.
 */
int vfs_prefix_normalize(char *prefix, struct vfs_error *err);

#endif /* VFSD_LIB_URL_H */
