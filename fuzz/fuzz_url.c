/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_url.c - libFuzzer target for lib/url.c and lib/path.c:
 * vfs_url_parse(), vfs_url_display() and vfs_path_normalize() on arbitrary
 * bytes.
 *
 * Besides memory errors (ASan/UBSan/LSan), it checks the documented
 * contract of a successful parse: lower-case scheme, port within 0..65535,
 * an absolute normalised path without "..", and a result that is stable
 * when normalised again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/path.h"
#include "lib/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

/* Is `p` what vfs_path_normalize() promises: "/", or "/a/b" with no empty,
 * "." or ".." component and no trailing '/'? */
static int is_normal_path(const char *p)
{
	if (p[0] != '/')
		return 0;
	if (strcmp(p, "/") == 0)
		return 1;
	for (const char *c = p; *c;) {
		const char *end;
		size_t len;

		c++; /* past '/' */
		end = strchrnul(c, '/');
		len = end - c;
		if (len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c = end;
	}
	return 1;
}

static void check_normalize(const char *s)
{
	char *p = strdup(s), *again;

	CHECK(p);
	if (vfs_path_normalize(p) == 0) {
		CHECK(is_normal_path(p));
		CHECK(strlen(p) <= strlen(s));
		again = strdup(p);
		CHECK(again);
		CHECK(vfs_path_normalize(again) == 0);
		CHECK(strcmp(again, p) == 0);
		free(again);
	}
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vfs_error err;
	struct vfs_url url;
	char *s = malloc(size + 1), *disp;
	int ret;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	check_normalize(s);

	vfs_error_init(&err);
	ret = vfs_url_parse(s, &url, &err);
	if (ret < 0) {
		CHECK(err.code == -ret);
		CHECK(err.msg[0] != '\0');
		free(s);
		return 0;
	}
	CHECK(ret == 0 && err.code == 0);
	{
		/* raw is the input as messages quote it */
		size_t rsize = 4 * strlen(s) + 4;
		char *want = malloc(rsize);

		CHECK(want);
		vfs_url_redact(s, want, rsize);
		CHECK(url.raw && strcmp(url.raw, want) == 0);
		free(want);
	}
	CHECK(url.scheme && url.scheme[0]);
	for (const char *c = url.scheme; *c; c++)
		CHECK(!(*c >= 'A' && *c <= 'Z'));
	CHECK(url.port >= 0 && url.port <= 65535);
	CHECK(url.path && is_normal_path(url.path));
	for (size_t i = 0; i < url.query.n; i++)
		CHECK(url.query.kv[i].key[0] && url.query.kv[i].value);

	disp = vfs_url_display(&url);
	CHECK(disp);
	CHECK(strncmp(disp, url.scheme, strlen(url.scheme)) == 0);
	free(disp);
	vfs_url_clear(&url);
	free(s);
	return 0;
}
