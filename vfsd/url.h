/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * url.h - mount URLs: scheme://[user@]host[:port]/abs/path[?k=v&...],
 * file:///abs/path, or a bare absolute path (taken as file://).
 */
#ifndef VFSD_URL_H
#define VFSD_URL_H

#include "vfsd/error.h"
#include "vfsd/options.h"

struct vfs_url {
	char *raw;	/* as given (owned); may contain a query */
	char *scheme;	/* lower case (owned) */
	char *user;	/* percent-decoded, or NULL (owned) */
	char *host;	/* without IPv6 brackets, or NULL (owned) */
	int port;	/* 0 when absent */
	char *path;	/* percent-decoded, normalised, absolute (owned) */
	struct vfs_opts query; /* query parameters, origin URL (owned) */
};

/* Parse `s` into *url (all fields owned by *url afterwards; free with
 * vfs_url_clear).  0 or -EINVAL with a message naming the URL. */
int vfs_url_parse(const char *s, struct vfs_url *url, struct vfs_error *err);
void vfs_url_clear(struct vfs_url *url);

/*
 * The URL for display: scheme://user@host:port/path, query dropped unless
 * its key is non-secret.  Returns a new string the caller frees, or NULL.
 */
char *vfs_url_display(const struct vfs_url *url);

/*
 * Normalise an absolute path in place: collapse "//", drop "." components
 * and a trailing '/'.  ".." is refused (-EINVAL): mount paths and prefixes
 * are never relative to anything.  "/" stays "/".
 */
int vfs_path_normalize(char *path);

#endif /* VFSD_URL_H */
