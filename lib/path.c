/* SPDX-License-Identifier: GPL-2.0-or-later */
/* path.c - absolute paths and mount prefixes (see path.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/path.h"
#include "lib/url.h"

int vfs_path_normalize(char *path)
{
	char *out = path, *in = path;

	if (*in != '/')
		return -EINVAL;
	while (*in) {
		char *end;
		size_t len;

		while (*in == '/')
			in++;
		if (!*in)
			break;
		end = strchrnul(in, '/');
		len = end - in;
		if (len == 1 && in[0] == '.') {
			in = end;
			continue;
		}
		if (len == 2 && in[0] == '.' && in[1] == '.')
			return -EINVAL;
		*out++ = '/';
		memmove(out, in, len);
		out += len;
		in = end;
	}
	if (out == path)
		*out++ = '/';
	*out = '\0';
	return 0;
}

int vfs_prefix_normalize(char *prefix, struct vfs_error *err)
{
	size_t ctl = strlen(VFS_CTL_PREFIX);
	char q[80];

	/* quoted as given, before normalisation changes it; redacted, for a
	 * URL given where the prefix belongs ("-m URL") may hold a password */
	vfs_url_redact(prefix, q, sizeof(q));
	for (const char *c = prefix; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return vfs_error_set(err, EINVAL,
					     "mount prefix '%s' contains a "
					     "control character",
					     q);
	if (prefix[0] != '/' || vfs_path_normalize(prefix) < 0)
		return vfs_error_set(err, EINVAL,
				     "mount prefix '%s' must be an absolute "
				     "path without '..'",
				     q);
	for (const char *c = prefix; *c;) {
		size_t len = strcspn(++c, "/");

		/* the root's listing could not carry the name (EIO) */
		if (len > NAME_MAX)
			return vfs_error_set(err, ENAMETOOLONG,
					     "mount prefix '%s' has a "
					     "component longer than %d bytes",
					     q, NAME_MAX);
		c += len;
	}
	if (strlen(prefix) > VFS_PREFIX_MAX)
		return vfs_error_set(
			err, ENAMETOOLONG,
			"mount prefix '%s' is longer than %d bytes", q,
			VFS_PREFIX_MAX);
	if (vfs_path_under(prefix, VFS_CTL_PREFIX, ctl))
		return vfs_error_set(
			err, EINVAL,
			"mount prefix '%s' lies in %s, vfsd's own directory", q,
			VFS_CTL_PREFIX);
	return 0;
}

char *vfs_path_join(const char *base, const char *path)
{
	size_t blen = strlen(base);
	char *out;

	while (blen > 1 && base[blen - 1] == '/')
		blen--;
	if (strcmp(path, "/") == 0)
		return strndup(base, blen);
	if (blen == 1 && base[0] == '/')
		blen = 0;
	if (asprintf(&out, "%.*s%s", (int)blen, base, path) < 0)
		return NULL;
	return out;
}

char *vfs_path_child(const char *dir, const char *name)
{
	char *out;

	if (asprintf(&out, "%s/%s", strcmp(dir, "/") ? dir : "", name) < 0)
		return NULL;
	return out;
}

char *vfs_path_parent(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash || slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

void vfs_path_print(FILE *out, const char *path)
{
	for (const unsigned char *p = (const unsigned char *)path; p && *p;
	     p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			fprintf(out, "\\xc2\\x%02x", p[1]);
			p++;
		} else if (*p == '\\')
			fputs("\\\\", out);
		else
			fputc(*p, out);
	}
}
