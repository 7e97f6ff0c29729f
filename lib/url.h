/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * url.h - mount URLs: scheme://[user@]host[:port]/abs/path[?k=v&...],
 * file:///abs/path, or a bare absolute path (taken as file://); and how
 * URLs and mount prefixes are quoted in messages (lib/path.h checks
 * prefixes).
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
	char *raw;    /* as given, for messages: secrets masked and control
		       * characters escaped by vfs_url_redact (owned) */
	char *scheme; /* lower case (owned) */
	char *user;   /* percent-decoded, or NULL (owned) */
	char *host;   /* without IPv6 brackets, or NULL (owned) */
	int port;     /* 0 when absent */
	char *path;   /* percent-decoded, normalised, absolute (owned) */
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

#endif /* VFSD_LIB_URL_H */
