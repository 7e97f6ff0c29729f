/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_url.c - unit tests for lib/url.c and lib/path.c: mount URL
 * parsing, percent decoding, query parameters, path and prefix
 * normalisation and the display form.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/path.h"
#include "lib/url.h"

Suite *url_suite(void);

/* Parse s, which must succeed; the caller clears *url. */
static void parse_ok(const char *s, struct vfs_url *url)
{
	struct vfs_error err;
	int ret;

	vfs_error_init(&err);
	ret = vfs_url_parse(s, url, &err);
	ck_assert_msg(ret == 0, "'%s' refused: %s", s, err.msg);
	ck_assert_int_eq(err.code, 0);
}

/* Parse s, which must fail with -code and a message containing `what`. */
static void parse_bad(const char *s, int code, const char *what)
{
	struct vfs_error err;
	struct vfs_url url;
	int ret;

	vfs_error_init(&err);
	ret = vfs_url_parse(s, &url, &err);
	ck_assert_msg(ret == -code, "'%s': expected %d, got %d (%s)", s, -code,
		      ret, err.msg);
	ck_assert_int_eq(err.code, code);
	ck_assert_msg(strstr(err.msg, what), "'%s': message '%s' lacks '%s'", s,
		      err.msg, what);
	/* a failed parse leaves nothing behind */
	ck_assert_ptr_null(url.raw);
	ck_assert_ptr_null(url.scheme);
	ck_assert_ptr_null(url.path);
	ck_assert_uint_eq(url.query.n, 0);
}

/* ---- Schemes and paths -------------------------------------------- */

START_TEST(test_file_url)
{
	struct vfs_url url;

	parse_ok("file:///srv/data", &url);
	ck_assert_str_eq(url.raw, "file:///srv/data");
	ck_assert_str_eq(url.scheme, "file");
	ck_assert_ptr_null(url.user);
	ck_assert_ptr_null(url.host);
	ck_assert_int_eq(url.port, 0);
	ck_assert_str_eq(url.path, "/srv/data");
	ck_assert_uint_eq(url.query.n, 0);
	vfs_url_clear(&url);

	parse_ok("file://localhost/srv", &url);
	ck_assert_str_eq(url.host, "localhost");
	ck_assert_str_eq(url.path, "/srv");
	vfs_url_clear(&url);

	parse_ok("file:///", &url);
	ck_assert_str_eq(url.path, "/");
	vfs_url_clear(&url);
}
END_TEST

START_TEST(test_scheme_case_and_chars)
{
	struct vfs_url url;

	parse_ok("SFTP://Host.Example/x", &url);
	ck_assert_str_eq(url.scheme, "sftp");
	/* only the scheme is folded */
	ck_assert_str_eq(url.host, "Host.Example");
	vfs_url_clear(&url);

	parse_ok("svn+ssh.v-2://h/x", &url);
	ck_assert_str_eq(url.scheme, "svn+ssh.v-2");
	vfs_url_clear(&url);

	parse_bad("1sftp://h/x", EINVAL, "bad URL scheme");
	parse_bad("://h/x", EINVAL, "bad URL scheme");
	parse_bad("sf_tp://h/x", EINVAL, "bad URL scheme");
	parse_bad("sftp:/h/x", EINVAL, "not an absolute path or a URL");
}
END_TEST

START_TEST(test_bare_absolute_path)
{
	struct vfs_url url;

	parse_ok("/srv//data/./x/", &url);
	ck_assert_str_eq(url.scheme, "file");
	ck_assert_ptr_null(url.host);
	ck_assert_ptr_null(url.user);
	ck_assert_str_eq(url.path, "/srv/data/x");
	ck_assert_str_eq(url.raw, "/srv//data/./x/");
	vfs_url_clear(&url);

	/* a bare path is taken literally: no query, no %-decoding */
	parse_ok("/a?b=1", &url);
	ck_assert_str_eq(url.path, "/a?b=1");
	ck_assert_uint_eq(url.query.n, 0);
	vfs_url_clear(&url);

	parse_ok("/a%20b", &url);
	ck_assert_str_eq(url.path, "/a%20b");
	vfs_url_clear(&url);
}
END_TEST

START_TEST(test_relative_refused)
{
	parse_bad("srv/data", EINVAL, "not an absolute path or a URL");
	parse_bad("./data", EINVAL, "not an absolute path or a URL");
	parse_bad("data", EINVAL, "'data'");
	/* regression (fuzz_url): a string that ends inside what could be a
	 * scheme was read past its NUL */
	parse_bad("", EINVAL, "not an absolute path or a URL");
	parse_bad("sftp", EINVAL, "not an absolute path or a URL");
	parse_bad("s+.-", EINVAL, "not an absolute path or a URL");
}
END_TEST

START_TEST(test_dotdot_refused)
{
	struct vfs_url url;

	parse_bad("/a/../b", EINVAL, "free of '..'");
	parse_bad("/..", EINVAL, "free of '..'");
	parse_bad("file:///srv/..", EINVAL, "free of '..'");
	parse_bad("sftp://h/../etc", EINVAL, "free of '..'");
	/* '..' hidden behind escapes is still '..' */
	parse_bad("file:///a/%2e%2E/b", EINVAL, "free of '..'");
	/* names that merely contain dots are fine */
	parse_ok("/a/.../..b/b..", &url);
	ck_assert_str_eq(url.path, "/a/.../..b/b..");
	vfs_url_clear(&url);
}
END_TEST

/* ---- Authority ---------------------------------------------------- */

START_TEST(test_user)
{
	struct vfs_url url;

	parse_ok("sftp://alice@h/x", &url);
	ck_assert_str_eq(url.user, "alice");
	ck_assert_str_eq(url.host, "h");
	vfs_url_clear(&url);

	parse_ok("sftp://a%40b%2Ec@h/x", &url);
	ck_assert_str_eq(url.user, "a@b.c");
	vfs_url_clear(&url);

	/* the last '@' ends the user name */
	parse_ok("sftp://a@b@h/x", &url);
	ck_assert_str_eq(url.user, "a@b");
	ck_assert_str_eq(url.host, "h");
	vfs_url_clear(&url);

	parse_bad("sftp://@h/x", EINVAL, "bad user name");
	parse_bad("sftp://a%zz@h/x", EINVAL, "bad user name");
}
END_TEST

START_TEST(test_password_refused)
{
	struct vfs_error err;
	struct vfs_url url;

	parse_bad("sftp://alice:s3cret@h/x", EINVAL,
		  "passwords in URLs are refused");
	parse_bad("sftp://:s3cret@h:22/x", EINVAL,
		  "passwords in URLs are refused");
	/* regression: the message quoted the whole URL, password included */
	vfs_error_init(&err);
	ck_assert_int_eq(
		vfs_url_parse("sftp://alice:s3cret@h:22/x?k=v", &url, &err),
		-EINVAL);
	ck_assert_ptr_null(strstr(err.msg, "s3cret"));
	ck_assert_ptr_nonnull(strstr(err.msg, "sftp://alice:***@h:22"));
}
END_TEST

START_TEST(test_host)
{
	struct vfs_url url;

	parse_ok("nfs://server-1.example_x/export", &url);
	ck_assert_str_eq(url.host, "server-1.example_x");
	ck_assert_int_eq(url.port, 0);
	ck_assert_str_eq(url.path, "/export");
	vfs_url_clear(&url);

	/* no path: the server's root */
	parse_ok("nfs://server", &url);
	ck_assert_str_eq(url.host, "server");
	ck_assert_str_eq(url.path, "/");
	vfs_url_clear(&url);

	parse_bad("sftp://ho st/x", EINVAL, "bad character ' ' in host name");
	parse_bad("sftp://host!/x", EINVAL, "bad character '!'");
	parse_bad("sftp://h\xc3\xa9/x", EINVAL, "bad character");
}
END_TEST

START_TEST(test_ipv6)
{
	struct vfs_url url;

	parse_ok("nfs://[::1]/export", &url);
	ck_assert_str_eq(url.host, "::1");
	ck_assert_int_eq(url.port, 0);
	ck_assert_str_eq(url.path, "/export");
	vfs_url_clear(&url);

	parse_ok("sftp://bob@[2001:db8::7]:2222/home", &url);
	ck_assert_str_eq(url.user, "bob");
	ck_assert_str_eq(url.host, "2001:db8::7");
	ck_assert_int_eq(url.port, 2222);
	ck_assert_str_eq(url.path, "/home");
	vfs_url_clear(&url);

	/* RFC 6874 zones: %25 in the URL, % for getaddrinfo() */
	parse_ok("sftp://[fe80::1%25eth0]:2222/home", &url);
	ck_assert_str_eq(url.host, "fe80::1%eth0");
	ck_assert_int_eq(url.port, 2222);
	vfs_url_clear(&url);
	parse_bad("sftp://[fe80::1%eth0]/x", EINVAL,
		  "an IPv6 zone is written %25");
	parse_bad("sftp://[fe80::1%25]/x", EINVAL,
		  "an IPv6 zone is written %25");
	parse_bad("sftp://[fe80::1%25a:b]/x", EINVAL, "bad character ':'");
	parse_bad("sftp://[fe80::1%25a%25b]/x", EINVAL, "bad character '%'");
	parse_bad("sftp://host%25x/x", EINVAL, "bad character '%'");

	parse_bad("nfs://[::1/export", EINVAL, "unterminated '['");
	parse_bad("nfs://[::1]x/export", EINVAL, "junk after ']'");
	parse_bad("nfs://[::1]:/export", EINVAL, "bad port");
	parse_bad("nfs://[::1]:0/export", EINVAL, "port must be 1 to 65535");
}
END_TEST

START_TEST(test_port_bounds)
{
	struct vfs_url url;

	parse_ok("sftp://h:1/x", &url);
	ck_assert_int_eq(url.port, 1);
	vfs_url_clear(&url);
	parse_ok("sftp://h:65535/x", &url);
	ck_assert_int_eq(url.port, 65535);
	ck_assert_str_eq(url.host, "h");
	vfs_url_clear(&url);
	parse_ok("sftp://h:22?timeout=5", &url);
	ck_assert_int_eq(url.port, 22);
	ck_assert_str_eq(url.path, "/");
	vfs_url_clear(&url);

	parse_bad("sftp://h:0/x", EINVAL, "port must be 1 to 65535, not '0'");
	parse_bad("sftp://h:+22/x", EINVAL,
		  "port must be 1 to 65535, not '+22'");
	parse_bad("sftp://h:65536/x", EINVAL, "not '65536'");
	parse_bad("sftp://h:-1/x", EINVAL, "port must be 1 to 65535");
	parse_bad("sftp://h:22x/x", EINVAL, "port must be 1 to 65535");
	parse_bad("sftp://h:/x", EINVAL, "bad port");
	parse_bad("sftp://h:99999999999/x", EINVAL, "bad port");
	/* the message names the URL */
	parse_bad("sftp://h:0/x", EINVAL, "sftp://h:0/x");
}
END_TEST

/* ---- Percent-decoding and queries --------------------------------- */

START_TEST(test_percent_decoding)
{
	struct vfs_url url;

	parse_ok("file:///a%20b/%6a%4B", &url);
	ck_assert_str_eq(url.path, "/a b/jK");
	vfs_url_clear(&url);

	/* an escaped '/' decodes before normalisation: it separates */
	parse_ok("file:///a%2F%2Fb%2f", &url);
	ck_assert_str_eq(url.path, "/a/b");
	vfs_url_clear(&url);

	parse_ok("file:///%25", &url);
	ck_assert_str_eq(url.path, "/%");
	vfs_url_clear(&url);
}
END_TEST

static const char *const bad_escapes[] = {
	"file:///a%",     "file:///a%4",   "file:///a%zz", "file:///a%g0",
	"file:///a%0g/b", "file:///a%%41", "file:///%00",  "file:///a%00b",
};

START_TEST(test_bad_escapes)
{
	parse_bad(bad_escapes[_i], EINVAL, "bad %-escape in path");
}
END_TEST

START_TEST(test_query)
{
	struct vfs_url url;

	parse_ok("nfs://h/e?version=4&timeout=30&&name=a%20b&empty=", &url);
	ck_assert_str_eq(url.path, "/e");
	ck_assert_uint_eq(url.query.n, 4);
	ck_assert_str_eq(url.query.kv[0].key, "version");
	ck_assert_str_eq(url.query.kv[0].value, "4");
	ck_assert_int_eq(url.query.kv[0].origin, VFS_ORIGIN_URL);
	ck_assert_str_eq(url.query.kv[1].key, "timeout");
	ck_assert_str_eq(url.query.kv[1].value, "30");
	ck_assert_str_eq(url.query.kv[2].key, "name");
	ck_assert_str_eq(url.query.kv[2].value, "a b");
	ck_assert_str_eq(url.query.kv[3].key, "empty");
	ck_assert_str_eq(url.query.kv[3].value, "");
	ck_assert_str_eq(vfs_opts_get(&url.query, "timeout"), "30");
	vfs_url_clear(&url);

	/* a repeated key: the last one wins */
	parse_ok("nfs://h/e?a=1&a=2", &url);
	ck_assert_uint_eq(url.query.n, 1);
	ck_assert_str_eq(url.query.kv[0].value, "2");
	vfs_url_clear(&url);

	/* the query does not belong to the path */
	parse_ok("nfs://h/e%3Fx?a=%3D", &url);
	ck_assert_str_eq(url.path, "/e?x");
	ck_assert_str_eq(url.query.kv[0].value, "=");
	vfs_url_clear(&url);

	parse_bad("nfs://h/e?version", EINVAL,
		  "query parameter 'version' has no value");
	parse_bad("nfs://h/e?a=1&b", EINVAL, "parameter 'b' has no value");
	parse_bad("nfs://h/e?=4", EINVAL, "bad query parameter '=4'");
	parse_bad("nfs://h/e?a=%00", EINVAL, "bad query parameter 'a=%00'");
	parse_bad("nfs://h/e?a%zz=1", EINVAL, "bad query parameter");
}
END_TEST

/* ---- Display ------------------------------------------------------ */

static void check_display(const char *s, const char *want)
{
	struct vfs_url url;
	char *d;

	parse_ok(s, &url);
	d = vfs_url_display(&url);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d, want);
	free(d);
	vfs_url_clear(&url);
}

START_TEST(test_display)
{
	check_display("file:///srv/data/", "file:///srv/data");
	check_display("/srv//data", "file:///srv/data");
	check_display("file://localhost/srv", "file://localhost/srv");
	check_display("SFTP://alice@Example:2222/home/a?timeout=5",
		      "sftp://alice@Example:2222/home/a?timeout=5");
	check_display("nfs://[fe80::1]:2049/e?version=4&timeout=3",
		      "nfs://[fe80::1]:2049/e?version=4&timeout=3");
	check_display("nfs://server", "nfs://server/");
	check_display("sftp://h/a%20b", "sftp://h/a b");
}
END_TEST

START_TEST(test_clear_twice)
{
	struct vfs_url url;

	parse_ok("sftp://u@h:2/p?a=b", &url);
	vfs_url_clear(&url);
	ck_assert_ptr_null(url.raw);
	ck_assert_ptr_null(url.user);
	ck_assert_ptr_null(url.host);
	ck_assert_int_eq(url.port, 0);
	vfs_url_clear(&url);
}
END_TEST

/* ---- vfs_path_normalize ------------------------------------------- */

static const struct {
	const char *in, *out; /* out NULL: -EINVAL */
} norm_cases[] = {
	{"/", "/"},
	{"//", "/"},
	{"/./.", "/"},
	{"/a", "/a"},
	{"/a/", "/a"},
	{"//a//b//", "/a/b"},
	{"/./a/./b/.", "/a/b"},
	{"/.a/..b/...", "/.a/..b/..."},
	{"", NULL},
	{"a", NULL},
	{"a/b", NULL},
	{"./a", NULL},
	{"/..", NULL},
	{"/a/..", NULL},
	{"/a/../b", NULL},
	{"//../", NULL},
};

START_TEST(test_normalize)
{
	char *p = strdup(norm_cases[_i].in);
	int ret;

	ck_assert_ptr_nonnull(p);
	ret = vfs_path_normalize(p);
	if (norm_cases[_i].out) {
		ck_assert_msg(ret == 0, "'%s' refused", norm_cases[_i].in);
		ck_assert_str_eq(p, norm_cases[_i].out);
	} else {
		ck_assert_msg(ret == -EINVAL, "'%s' accepted as '%s'",
			      norm_cases[_i].in, p);
	}
	free(p);
}
END_TEST

/* ---- file:// URLs name a directory ---------------------------------- */

static const struct {
	const char *url, *msg;
} bad_file_urls[] = {
	/* regression: each of these mounted the host's / */
	{"file://", "file://: no directory: a file URL needs an absolute path"},
	{"file://localhost", "file://localhost: no directory"},
	{"file://?cache_ttl=0", "file://?cache_ttl=0: no directory"},
	{"fault+file://", "fault+file://: no directory"},
	{"///", "///: the path reduces to /, the host's whole file system"},
	{"//", "//: the path reduces to /"},
	{"/./", "/./: the path reduces to /"},
	{"file:////", "file:////: the path reduces to /"},
	{"file:///.//", "file:///.//: the path reduces to /"},
	{"file://localhost//", "file://localhost//: the path reduces to /"},
	/* regression: the user part was silently ignored */
	{"file://user@/x", "file://user@/x: file URLs take no user name"},
	{"file://user@host/x", "file://user@host/x: file URLs take no user"},
	{"file://user@localhost/x", "file URLs take no user name"},
	{"fault+file://u@/x", "file URLs take no user name"},
	/* a host: refused here already, with the line of the config file */
	{"file://host/x", "file://host/x: file URLs take no host"},
	{"file://host", "file URLs take no host"},
};

START_TEST(test_file_url_refusals)
{
	parse_bad(bad_file_urls[_i].url, EINVAL, bad_file_urls[_i].msg);
}
END_TEST

START_TEST(test_file_url_root_when_meant)
{
	static const char *const ok[] = {"/", "file:///", "file://localhost/",
					 "file:///?cache_ttl=0"};
	struct vfs_url url;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		parse_ok(ok[i], &url);
		ck_assert_str_eq(url.path, "/");
		vfs_url_clear(&url);
	}
	/* other schemes keep their own rules: an empty path is the root */
	parse_ok("nfs://h", &url);
	ck_assert_str_eq(url.path, "/");
	vfs_url_clear(&url);
	parse_ok("sftp://u@h", &url);
	ck_assert_str_eq(url.user, "u");
	vfs_url_clear(&url);
}
END_TEST

/* ---- Secrets and control characters in messages ---------------------- */

static const struct {
	const char *in, *out;
} redactions[] = {
	{"sftp://h/x?password=hunter2&bad", "sftp://h/x?password=***&bad"},
	{"sftp://h/x?bad&password=hunter2", "sftp://h/x?bad&password=***"},
	{"sftp://alice:hunter2@h/x", "sftp://alice:***@h/x"},
	{"sftp://alice:hun@ter2@h:22/x", "sftp://alice:***@h:22/x"},
	{"sftp://alice:hun/ter2@h/x", "sftp://alice:***@h/x"},
	{"sftp://:hunter2@h/x", "sftp://:***@h/x"},
	{"sftp://alice:hun#ter2@h/x", "sftp://alice:***@h/x"},
	{"sftp://alice:hun?ter2@h/x", "sftp://alice:***@h/x"},
	/* an empty password (fuzzer: once looped for ever) */
	{"sftp://ali=e@e:@example./id", "sftp://ali=e@e:***@example./id"},
	{"sftp://alice:@h/x", "sftp://alice:***@h/x"},
	{"alice:hunter2@h/x", "alice:***@h/x"},
	{"nfs://h/e?PassPhrase=x y&timeout=3",
	 "nfs://h/e?PassPhrase=***&timeout=3"},
	{"nfs://h/e?p%61ssword=hunter2", "nfs://h/e?p%61ssword=***"},
	{"nfs://h/e?x=1&my_token=t&secret=s",
	 "nfs://h/e?x=1&my_token=***&secret=***"},
	{"sftp://h/x;password=hunter2", "sftp://h/x;password=***"},
	{"sftp://h/x?password=", "sftp://h/x?password=***"},
	{"sftp://h/x?password==a=b&c=d", "sftp://h/x?password=***&c=d"},
	/* nothing to hide */
	{"sftp://alice@h:22/x?timeout=5&hostkey=strict",
	 "sftp://alice@h:22/x?timeout=5&hostkey=strict"},
	{"/srv/data", "/srv/data"},
	{"sftp://h/a:b@c", "sftp://h/a:b@c"},
	{"file:///a@b", "file:///a@b"},
	{"/p=file:///x", "/p=file:///x"},
	{"", ""},
	/* control characters (and '\', so no escape can be forged) */
	{"file:///a\nvfsd: error: forged", "file:///a\\x0avfsd: error: forged"},
	{"/a\tb\\x0a\x7f", "/a\\x09b\\x5cx0a\\x7f"},
};

START_TEST(test_redact)
{
	char buf[200];

	ck_assert_str_eq(vfs_url_redact(redactions[_i].in, buf, sizeof(buf)),
			 redactions[_i].out);
}
END_TEST

START_TEST(test_redact_cut)
{
	char buf[16], big[600];

	/* too long: cut, marked, and never a byte of the secret */
	ck_assert_str_eq(
		vfs_url_redact("sftp://h/x?password=hunter2", buf, sizeof(buf)),
		"sftp://h/x?p...");
	ck_assert_str_eq(vfs_url_redact("sftp://u:hunter2@h/x", buf, 16),
			 "sftp://u:***...");
	ck_assert_str_eq(vfs_url_redact("abc", buf, 4), "abc");
	ck_assert_str_eq(vfs_url_redact("abcd", buf, 4), "...");
	ck_assert_str_eq(vfs_quote("a\nb", buf, sizeof(buf)), "a\\x0ab");
	ck_assert_str_eq(vfs_quote("0123456789abcdefgh", buf, sizeof(buf)),
			 "0123456789ab...");
	/* a name longer than can be checked counts as secret */
	memset(big, 'k', 400);
	strcpy(big + 400, "=hunter2");
	ck_assert_ptr_null(
		strstr(vfs_url_redact(big, big + 420, 180), "hunter2"));
}
END_TEST

/* regression: malformed URLs were quoted whole, password included */
static const char *const leaky[] = {
	"sftp://h/x?password=hunter2&bad",
	"sftp://h/x?password=hunter2&=x",
	"sftp://h/x?password=hunter2%zz",
	"sftp://h/x?password%zz=hunter2",
	"sftp://h:0/x?password=hunter2",
	"sftp://h[/x?password=hunter2",
	"sftp://h/%zz?password=hunter2",
	"sftp://h/../x?password=hunter2",
	"sftp:/h/x?password=hunter2",
	"1sftp://h/x?password=hunter2",
	"sftp://u:hunter2@h/x?password=hunter2",
	"sftp://u:hunter2@h:99999/x",
	"sftp://u:hun@ter2@h/x",
	"file://?password=hunter2",
	/* the parser's authority ends at '/' or '?', not at '#' */
	"sftp://u:hunter2#x@h/x",
	/* '?' in a password: a bad port "hun", the rest a query */
	"sftp://u:hun?ter2@h/x",
	"sftp://u:hun#ter2@h:99999/x",
};

START_TEST(test_malformed_url_hides_password)
{
	struct vfs_error err;
	struct vfs_url url;

	vfs_error_init(&err);
	ck_assert_int_lt(vfs_url_parse(leaky[_i], &url, &err), 0);
	ck_assert_msg(!strstr(err.msg, "hunter2") && !strstr(err.msg, "ter2"),
		      "'%s' leaks: %s", leaky[_i], err.msg);
	ck_assert_msg(strstr(err.msg, "***"), "%s", err.msg);
}
END_TEST

START_TEST(test_raw_is_redacted)
{
	struct vfs_url url;
	char *d;

	/* a backend's messages quote url->raw: it holds no secret */
	parse_ok("sftp://h/x?password=hunter2&timeout=3", &url);
	ck_assert_str_eq(url.raw, "sftp://h/x?password=***&timeout=3");
	/* the value itself is kept for the option checks */
	ck_assert_str_eq(vfs_opts_get(&url.query, "password"), "hunter2");
	d = vfs_url_display(&url);
	ck_assert_str_eq(d, "sftp://h/x?timeout=3");
	free(d);
	vfs_url_clear(&url);
}
END_TEST

/* ---- Mount prefixes ------------------------------------------------ */

static const struct {
	const char *in, *out; /* out: the normal form, or a message part */
	int code;             /* 0: accepted */
} prefixes[] = {
	{"/", "/", 0},
	{"/a", "/a", 0},
	{"//a/./b/", "/a/b", 0},
	{"/.vfsdx", "/.vfsdx", 0},
	{"/a/.vfsd", "/a/.vfsd", 0},
	{"/é/ü", "/é/ü", 0},
	{"a", "mount prefix 'a' must be an absolute path without '..'", EINVAL},
	{"", "mount prefix '' must be an absolute path", EINVAL},
	{"/a/../b", "mount prefix '/a/../b' must be an absolute path", EINVAL},
	{"/a\nb", "mount prefix '/a\\x0ab' contains a control character",
	 EINVAL},
	{"/a\rb", "contains a control character", EINVAL},
	{"/a\x7f", "contains a control character", EINVAL},
	{"/.vfsd", "mount prefix '/.vfsd' lies in /.vfsd, vfsd's own directory",
	 EINVAL},
	{"/.vfsd/", "lies in /.vfsd", EINVAL},
	{"/.vfsd/stats", "lies in /.vfsd", EINVAL},
	{"//./.vfsd//x", "mount prefix '//./.vfsd//x' lies in /.vfsd", EINVAL},
};

START_TEST(test_prefix)
{
	struct vfs_error err;
	char *p = strdup(prefixes[_i].in);
	int ret;

	vfs_error_init(&err);
	ret = vfs_prefix_normalize(p, &err);
	if (!prefixes[_i].code) {
		ck_assert_msg(ret == 0, "'%s' refused: %s", prefixes[_i].in,
			      err.msg);
		ck_assert_str_eq(p, prefixes[_i].out);
	} else {
		ck_assert_int_eq(ret, -prefixes[_i].code);
		ck_assert_int_eq(err.code, prefixes[_i].code);
		ck_assert_msg(strstr(err.msg, prefixes[_i].out),
			      "'%s': '%s' lacks '%s'", prefixes[_i].in, err.msg,
			      prefixes[_i].out);
		ck_assert_ptr_null(strchr(err.msg, '\n'));
	}
	free(p);
}
END_TEST

START_TEST(test_prefix_lengths)
{
	struct vfs_error err;
	char p[8000];

	/* a component of NAME_MAX bytes is fine, one more is not */
	memset(p, 'c', sizeof(p));
	p[0] = '/';
	p[256] = '\0';
	vfs_error_init(&err);
	ck_assert_int_eq(vfs_prefix_normalize(p, &err), 0);
	memset(p, 'c', sizeof(p));
	p[0] = '/';
	p[257] = '\0';
	ck_assert_int_eq(vfs_prefix_normalize(p, &err), -ENAMETOOLONG);
	ck_assert_ptr_nonnull(strstr(err.msg, "has a component longer than "
					      "255 bytes"));
	/* the 5000-byte component of the report */
	memset(p, 'c', sizeof(p));
	p[0] = '/';
	p[5001] = '\0';
	vfs_error_init(&err);
	ck_assert_int_eq(vfs_prefix_normalize(p, &err), -ENAMETOOLONG);
	ck_assert_uint_lt(strlen(err.msg), 200);
	/* VFS_PREFIX_MAX bytes in all, after normalisation */
	for (size_t i = 0; i < sizeof(p); i++)
		p[i] = i % 100 == 0 ? '/' : 'c';
	p[VFS_PREFIX_MAX] = '\0';
	ck_assert_int_eq(p[VFS_PREFIX_MAX - 1], 'c');
	vfs_error_init(&err);
	ck_assert_int_eq(vfs_prefix_normalize(p, &err), 0);
	for (size_t i = 0; i < sizeof(p); i++)
		p[i] = i % 100 == 0 ? '/' : 'c';
	p[VFS_PREFIX_MAX + 1] = '\0';
	ck_assert_int_eq(vfs_prefix_normalize(p, &err), -ENAMETOOLONG);
	ck_assert_ptr_nonnull(strstr(err.msg, "is longer than 1024 bytes"));
	/* "//" and "/./" do not count */
	memset(p, '/', 3000);
	strcpy(p + 3000, "short");
	vfs_error_init(&err);
	ck_assert_int_eq(vfs_prefix_normalize(p, &err), 0);
	ck_assert_str_eq(p, "/short");
}
END_TEST

Suite *url_suite(void)
{
	Suite *s = suite_create("url");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_file_url);
	tcase_add_test(tc, test_scheme_case_and_chars);
	tcase_add_test(tc, test_bare_absolute_path);
	tcase_add_test(tc, test_relative_refused);
	tcase_add_test(tc, test_dotdot_refused);
	tcase_add_test(tc, test_user);
	tcase_add_test(tc, test_password_refused);
	tcase_add_test(tc, test_host);
	tcase_add_test(tc, test_ipv6);
	tcase_add_test(tc, test_port_bounds);
	tcase_add_test(tc, test_percent_decoding);
	tcase_add_loop_test(tc, test_bad_escapes, 0,
			    sizeof(bad_escapes) / sizeof(bad_escapes[0]));
	tcase_add_test(tc, test_query);
	tcase_add_loop_test(tc, test_file_url_refusals, 0,
			    sizeof(bad_file_urls) / sizeof(bad_file_urls[0]));
	tcase_add_test(tc, test_file_url_root_when_meant);
	suite_add_tcase(s, tc);

	tc = tcase_create("redact");
	tcase_add_loop_test(tc, test_redact, 0,
			    sizeof(redactions) / sizeof(redactions[0]));
	tcase_add_test(tc, test_redact_cut);
	tcase_add_loop_test(tc, test_malformed_url_hides_password, 0,
			    sizeof(leaky) / sizeof(leaky[0]));
	tcase_add_test(tc, test_raw_is_redacted);
	suite_add_tcase(s, tc);

	tc = tcase_create("prefix");
	tcase_add_loop_test(tc, test_prefix, 0,
			    sizeof(prefixes) / sizeof(prefixes[0]));
	tcase_add_test(tc, test_prefix_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("display");
	tcase_add_test(tc, test_display);
	tcase_add_test(tc, test_clear_twice);
	suite_add_tcase(s, tc);

	tc = tcase_create("normalize");
	tcase_add_loop_test(tc, test_normalize, 0,
			    sizeof(norm_cases) / sizeof(norm_cases[0]));
	suite_add_tcase(s, tc);
	return s;
}
