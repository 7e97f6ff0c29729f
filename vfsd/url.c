/* SPDX-License-Identifier: GPL-2.0-or-later */
/* url.c - mount URL parsing and path normalisation. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfsd/url.h"

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

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode %XX escapes of s[0..len) into a new string; NUL bytes refused. */
static char *pct_decode(const char *s, size_t len, int *ret)
{
	char *out = malloc(len + 1), *o = out;

	*ret = -ENOMEM;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= len)
				goto bad;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	*ret = 0;
	return out;
bad:
	free(out);
	*ret = -EINVAL;
	return NULL;
}

static int parse_query(const char *q, struct vfs_url *url,
		       struct vfs_error *err)
{
	while (*q) {
		const char *amp = strchrnul(q, '&');
		const char *eq = memchr(q, '=', amp - q);
		char *key = NULL, *val = NULL;
		int ret;

		if (amp == q) {
			q++;
			continue;
		}
		if (!eq)
			return vfs_error_set(err, EINVAL,
					     "%s: query parameter '%.*s' has no value",
					     url->raw, (int)(amp - q), q);
		key = pct_decode(q, eq - q, &ret);
		if (key)
			val = pct_decode(eq + 1, amp - eq - 1, &ret);
		if (key && val && !*key)
			ret = -EINVAL;
		if (ret == 0)
			ret = vfs_opts_set(&url->query, key, val,
					   VFS_ORIGIN_URL);
		free(key);
		free(val);
		if (ret < 0)
			return vfs_error_set(err, -ret,
					     "%s: bad query parameter '%.*s'",
					     url->raw, (int)(amp - q), q);
		q = *amp ? amp + 1 : amp;
	}
	return 0;
}

static int parse_authority(const char *a, size_t len, struct vfs_url *url,
			   struct vfs_error *err)
{
	const char *at = memrchr(a, '@', len), *host, *end = a + len;
	const char *colon;
	int ret;

	if (at) {
		const char *pw = memchr(a, ':', at - a);

		/* name the URL without its password */
		if (pw)
			return vfs_error_set(err, EINVAL,
					     "%s://%.*s:***@%.*s: passwords in URLs are refused (they would show in process lists); use an identity file, ssh-agent or a protected config file",
					     url->scheme, (int)(pw - a), a,
					     (int)(end - at - 1), at + 1);
		url->user = pct_decode(a, at - a, &ret);
		if (!url->user || !*url->user)
			return vfs_error_set(err, EINVAL,
					     "%s: bad user name", url->raw);
		host = at + 1;
	} else {
		host = a;
	}
	bool bracketed = host < end && *host == '[';

	if (bracketed) {
		const char *rb = memchr(host, ']', end - host);

		if (!rb)
			return vfs_error_set(err, EINVAL,
					     "%s: unterminated '[' in host",
					     url->raw);
		url->host = strndup(host + 1, rb - host - 1);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 < end && !colon)
			return vfs_error_set(err, EINVAL,
					     "%s: junk after ']' in host",
					     url->raw);
	} else {
		colon = memchr(host, ':', end - host);
		url->host = strndup(host, (colon ? colon : end) - host);
	}
	if (!url->host)
		return vfs_error_set(err, ENOMEM, "out of memory");
	/* RFC 6874: a zone in a bracketed IPv6 address comes as "%25" and
	 * its name ([fe80::1%25eth0]); getaddrinfo() wants "fe80::1%eth0" */
	char *zone = bracketed ? strchr(url->host, '%') : NULL;

	if (zone) {
		if (strncmp(zone, "%25", 3) != 0 || !zone[3])
			return vfs_error_set(err, EINVAL,
					     "%s: an IPv6 zone is written %%25 and its name, as in [fe80::1%%25eth0]",
					     url->raw);
		memmove(zone + 1, zone + 3, strlen(zone + 3) + 1);
	}
	for (const char *p = url->host; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_", *p) &&
		    !(bracketed && *p == ':' && (!zone || p < zone)) &&
		    !(p == zone))
			return vfs_error_set(err, EINVAL,
					     "%s: bad character '%c' in host name",
					     url->raw, *p);
	if (colon) {
		char port[8];
		long l;
		size_t plen = end - colon - 1;

		if (plen == 0 || plen >= sizeof(port))
			return vfs_error_set(err, EINVAL, "%s: bad port",
					     url->raw);
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
		if (vfs_parse_long(port, 1, 65535, &l) < 0)
			return vfs_error_set(err, EINVAL,
					     "%s: port must be 1 to 65535, not '%s'",
					     url->raw, port);
		url->port = (int)l;
	}
	return 0;
}

int vfs_url_parse(const char *s, struct vfs_url *url, struct vfs_error *err)
{
	const char *p, *auth, *path, *query;
	int ret;

	memset(url, 0, sizeof(*url));
	url->raw = strdup(s);
	if (!url->raw)
		return vfs_error_set(err, ENOMEM, "out of memory");

	if (s[0] == '/') {
		/* a bare absolute path is a local directory */
		url->scheme = strdup("file");
		path = s;
		query = NULL;
		url->path = strdup(path);
		if (!url->scheme || !url->path)
			goto nomem;
		goto normalize;
	}

	/* *p first: strchr() finds the terminating NUL of "+.-" too */
	for (p = s; *p && (isalnum((unsigned char)*p) || strchr("+.-", *p)); p++)
		;
	if (p == s || !isalpha((unsigned char)s[0]) || strncmp(p, "://", 3)) {
		if (!strstr(s, "://"))
			ret = vfs_error_set(err, EINVAL,
					    "'%s': not an absolute path or a URL (scheme://...)",
					    s);
		else
			ret = vfs_error_set(err, EINVAL,
					    "'%s': bad URL scheme", s);
		goto fail;
	}
	url->scheme = strndup(s, p - s);
	if (!url->scheme)
		goto nomem;
	for (char *c = url->scheme; *c; c++)
		*c = (char)tolower((unsigned char)*c);

	auth = p + 3;
	path = auth + strcspn(auth, "/?");
	query = strchr(path, '?');
	if (path > auth) {
		ret = parse_authority(auth, path - auth, url, err);
		if (ret < 0)
			goto fail;
	}
	if (*path == '/') {
		url->path = pct_decode(path,
				       (query ? query : path + strlen(path)) -
					       path,
				       &ret);
		if (!url->path) {
			ret = vfs_error_set(err, -ret,
					    "%s: bad %%-escape in path", s);
			goto fail;
		}
	} else {
		url->path = strdup("/");
		if (!url->path)
			goto nomem;
	}
	if (query) {
		ret = parse_query(query + 1, url, err);
		if (ret < 0)
			goto fail;
	}
normalize:
	if (vfs_path_normalize(url->path) < 0) {
		ret = vfs_error_set(err, EINVAL,
				    "%s: path must be absolute and free of '..'",
				    s);
		goto fail;
	}
	return 0;
nomem:
	ret = vfs_error_set(err, ENOMEM, "out of memory");
fail:
	vfs_url_clear(url);
	return ret;
}

void vfs_url_clear(struct vfs_url *url)
{
	free(url->raw);
	free(url->scheme);
	free(url->user);
	free(url->host);
	free(url->path);
	vfs_opts_clear(&url->query);
	memset(url, 0, sizeof(*url));
}

char *vfs_url_display(const struct vfs_url *url)
{
	char *out = NULL;
	char port[16] = "";
	int n;

	if (url->port)
		snprintf(port, sizeof(port), ":%d", url->port);
	if (!url->host)
		n = asprintf(&out, "%s://%s", url->scheme, url->path);
	else
		n = asprintf(&out, "%s://%s%s%s%s%s%s%s", url->scheme,
			     url->user ? url->user : "", url->user ? "@" : "",
			     strchr(url->host, ':') ? "[" : "", url->host,
			     strchr(url->host, ':') ? "]" : "", port,
			     url->path);
	if (n < 0)
		return NULL;
	for (size_t i = 0; i < url->query.n; i++) {
		char *next;

		if (asprintf(&next, "%s%c%s=%s", out, i ? '&' : '?',
			     url->query.kv[i].key, url->query.kv[i].value) < 0) {
			free(out);
			return NULL;
		}
		free(out);
		out = next;
	}
	return out;
}
