/* SPDX-License-Identifier: GPL-2.0-or-later */
/* url.c - mount URL parsing, and quoting URLs and prefixes in messages.
 * (Path and prefix normalisation: path.c.) */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/path.h"
#include "lib/url.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* ---- Quoting for messages ------------------------------------------ */

/* A bounded writer: what does not fit is cut, and the text ends "...". */
struct msgbuf {
	char *buf;
	size_t size, len;
	bool cut;
};

static void mb_putc(struct msgbuf *mb, char c)
{
	if (mb->len + 1 < mb->size)
		mb->buf[mb->len++] = c;
	else
		mb->cut = true;
}

static void mb_puts(struct msgbuf *mb, const char *s)
{
	while (*s)
		mb_putc(mb, *s++);
}

/* One byte of quoted text: what would break a log line is escaped, and
 * so is '\\', so that an escape cannot be forged. */
static void mb_putesc(struct msgbuf *mb, unsigned char c)
{
	char hex[5];

	if (c < 0x20 || c == 0x7f || c == '\\') {
		snprintf(hex, sizeof(hex), "\\x%02x", c);
		mb_puts(mb, hex);
	} else {
		mb_putc(mb, (char)c);
	}
}

static const char *mb_finish(struct msgbuf *mb)
{
	if (mb->size == 0)
		return "";
	if (mb->cut && mb->size >= 4) {
		mb->len = mb->size - 1;
		memcpy(mb->buf + mb->len - 3, "...", 3);
	}
	mb->buf[mb->len] = '\0';
	return mb->buf;
}

const char *vfs_quote(const char *s, char *buf, size_t size)
{
	struct msgbuf mb = {.buf = buf, .size = size};

	for (; *s; s++)
		mb_putesc(&mb, (unsigned char)*s);
	return mb_finish(&mb);
}

/*
 * Whether a parameter name (k[0..len), %-escapes decoded, any case) may
 * hold a secret.  A generous match: backends name secrets password (and,
 * in time, passphrase), and a message that hides a harmless value costs
 * less than one that shows a password.  A name too long to check counts
 * as secret.
 */
static bool secret_name(const char *k, size_t len)
{
	char name[256];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)k[i], hi, lo;

		if (c == '%' && len - i > 2 &&
		    (hi = hexval((unsigned char)k[i + 1])) >= 0 &&
		    (lo = hexval((unsigned char)k[i + 2])) >= 0) {
			c = hi << 4 | lo;
			i += 2;
		}
		if (n + 1 >= sizeof(name))
			return true;
		name[n++] = (char)tolower(c);
	}
	name[n] = '\0';
	return strstr(name, "pass") || strstr(name, "secret") ||
	       strstr(name, "token");
}

/* Characters that end a parameter name, looking back from its '='. */
static bool name_char(unsigned char c)
{
	return c > ' ' && c != 0x7f && !strchr("?&;/#:@=,", c);
}

const char *vfs_url_redact(const char *s, char *buf, size_t size)
{
	struct msgbuf mb = {.buf = buf, .size = size};
	const char *sep = strstr(s, "://");
	const char *ui = sep ? sep + 3 : s;
	const char *end = ui + strlen(ui);
	const char *at = NULL, *colon = NULL;

	/*
	 * user:password@host.  The last '@' anywhere ends the user part (a
	 * password may hold '@', or '/', '?' or '#' unescaped by mistake: the
	 * parser then fails on a "port" or a query, and its message quotes
	 * this); a ':' before any '/' starts the password.  "host:port/path@x"
	 * is masked too: hiding a port costs less than showing a password.
	 */
	for (const char *p = ui; p < end; p++)
		if (*p == '@')
			at = p;
	if (at) {
		const char *slash = memchr(ui, '/', at - ui);

		colon = memchr(ui, ':', (slash ? slash : at) - ui);
	}
	for (const char *p = s; *p;) {
		if (colon && p == colon + 1) {
			mb_puts(&mb, "***");
			p = at; /* an empty password: at == p */
			colon = NULL;
			continue;
		}
		if (*p == '=') {
			const char *k = p;

			while (k > s && name_char((unsigned char)k[-1]))
				k--;
			mb_putc(&mb, '=');
			p++;
			if (k < p - 1 && secret_name(k, p - 1 - k)) {
				mb_puts(&mb, "***");
				p += strcspn(p, "&");
			}
			continue;
		}
		mb_putesc(&mb, (unsigned char)*p++);
	}
	return mb_finish(&mb);
}

/* ---- Parsing ------------------------------------------------------- */

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
		if (!eq) {
			char *param = strndup(q, amp - q), safe[200];

			ret = vfs_error_set(
				err, EINVAL,
				"%s: query parameter '%s' has no value",
				url->raw,
				param ? vfs_quote(param, safe, sizeof(safe))
				      : "?");
			free(param);
			return ret;
		}
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
		if (ret < 0) {
			/* the parameter may be a password with a bad escape */
			char *param = strndup(q, amp - q), safe[200];

			ret = vfs_error_set(err, -ret,
					    "%s: bad query parameter '%s'",
					    url->raw,
					    param ? vfs_url_redact(param, safe,
								   sizeof(safe))
						  : "?");
			free(param);
			return ret;
		}
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

		/* url->raw shows the URL without its password */
		if (pw)
			return vfs_error_set(
				err, EINVAL,
				"%s: passwords in URLs are refused (they would "
				"show in process lists); use an identity file, "
				"ssh-agent or a protected config file",
				url->raw);
		url->user = pct_decode(a, at - a, &ret);
		if (!url->user || !*url->user)
			return vfs_error_set(err, EINVAL, "%s: bad user name",
					     url->raw);
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
			return vfs_error_set(
				err, EINVAL,
				"%s: an IPv6 zone is written %%25 and its "
				"name, as in [fe80::1%%25eth0]",
				url->raw);
		memmove(zone + 1, zone + 3, strlen(zone + 3) + 1);
	}
	for (const char *p = url->host; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_", *p) &&
		    !(bracketed && *p == ':' && (!zone || p < zone)) &&
		    !(p == zone))
			return vfs_error_set(
				err, EINVAL,
				"%s: bad character '%c' in host name", url->raw,
				*p);
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
			return vfs_error_set(
				err, EINVAL,
				"%s: port must be 1 to 65535, not '%s'",
				url->raw, port);
		url->port = (int)l;
	}
	return 0;
}

/* file:// itself, or a wrapper of it (fault+file://) */
static bool file_scheme(const char *scheme)
{
	size_t len = strlen(scheme);

	return strcmp(scheme, "file") == 0 ||
	       (len > 5 && strcmp(scheme + len - 5, "+file") == 0);
}

/*
 * What a file URL may not say, checked before its path is normalised:
 * `given` is whether the URL had a path at all.  A user or a host would
 * be silently ignored, and a path that only reduces to "/" is most likely
 * an empty variable ("file://$DIR", "$A//$B"), not a wish to serve the
 * host's whole file system.
 */
static int file_url_check(const struct vfs_url *url, bool given,
			  struct vfs_error *err)
{
	if (url->user)
		return vfs_error_set(
			err, EINVAL,
			"%s: file URLs take no user name (file:///abs/path)",
			url->raw);
	if (url->host && *url->host && strcmp(url->host, "localhost") != 0)
		return vfs_error_set(
			err, EINVAL,
			"%s: file URLs take no host (file:///abs/path)",
			url->raw);
	if (!given)
		return vfs_error_set(err, EINVAL,
				     "%s: no directory: a file URL needs an "
				     "absolute path (file:///abs/path)",
				     url->raw);
	if (strcmp(url->path, "/") != 0) {
		char *copy = strdup(url->path);
		bool root;

		if (!copy)
			return vfs_error_set(err, ENOMEM, "out of memory");
		root = vfs_path_normalize(copy) == 0 && strcmp(copy, "/") == 0;
		free(copy);
		if (root)
			return vfs_error_set(
				err, EINVAL,
				"%s: the path reduces to /, the host's whole "
				"file system (an empty variable?); write / or "
				"file:/// if that is meant",
				url->raw);
	}
	return 0;
}

int vfs_url_parse(const char *s, struct vfs_url *url, struct vfs_error *err)
{
	const char *p, *auth, *path, *query;
	bool given = true;
	size_t rawsize = 4 * strlen(s) + 4; /* each byte may become \xNN */
	int ret;

	memset(url, 0, sizeof(*url));
	url->raw = malloc(rawsize);
	if (!url->raw)
		return vfs_error_set(err, ENOMEM, "out of memory");
	vfs_url_redact(s, url->raw, rawsize);

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
	for (p = s; *p && (isalnum((unsigned char)*p) || strchr("+.-", *p));
	     p++)
		;
	if (p == s || !isalpha((unsigned char)s[0]) || strncmp(p, "://", 3)) {
		if (!strstr(s, "://"))
			ret = vfs_error_set(err, EINVAL,
					    "'%s': not an absolute path or a "
					    "URL (scheme://...)",
					    url->raw);
		else
			ret = vfs_error_set(err, EINVAL, "'%s': bad URL scheme",
					    url->raw);
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
		url->path = pct_decode(
			path, (query ? query : path + strlen(path)) - path,
			&ret);
		if (!url->path) {
			ret = vfs_error_set(err, -ret,
					    "%s: bad %%-escape in path",
					    url->raw);
			goto fail;
		}
	} else {
		given = false;
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
	if (file_scheme(url->scheme)) {
		ret = file_url_check(url, given, err);
		if (ret < 0)
			goto fail;
	}
	if (vfs_path_normalize(url->path) < 0) {
		ret = vfs_error_set(
			err, EINVAL,
			"%s: path must be absolute and free of '..'", url->raw);
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
	for (size_t i = 0, shown = 0; i < url->query.n; i++) {
		const char *key = url->query.kv[i].key;
		char *next;

		if (secret_name(key, strlen(key)))
			continue;
		if (asprintf(&next, "%s%c%s=%s", out, shown++ ? '&' : '?', key,
			     url->query.kv[i].value) < 0) {
			free(out);
			return NULL;
		}
		free(out);
		out = next;
	}
	return out;
}
