/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_lib.c - unit tests for the helpers of lib/ that have no suite of
 * their own: hash.h, time.h, path.h's join, parent and containment
 * (test_url.c has normalisation), json.h's string quoting, and
 * throttle.h's buckets on a simulated clock.  Hash values
 * other hosts or users see are pinned here (see hash.h): a change that
 * renumbers them fails.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/json.h"
#include "lib/path.h"
#include "lib/clock.h"
#include "lib/throttle.h"

/* Requests of `size` bytes on a simulated clock for `secs` seconds, each
 * started as soon as t allows: what was started. */
static uint64_t throttle_run(struct throttle *t, bool write, uint64_t size,
			     double secs, int64_t *now)
{
	int64_t end = *now + (int64_t)(secs * 1e9);
	uint64_t done = 0;

	for (;;) {
		int64_t w = throttle_wait_ns(t, write, size, *now);

		if (*now + w >= end)
			break;
		*now += w;
		throttle_charge(t, write, size, *now);
		done += size;
	}
	*now = end;
	return done;
}

START_TEST(throttle_rate_holds)
{
	struct throttle_cfg c = {0};
	struct throttle t;
	int64_t now = 1000;
	uint64_t done;

	c.avg[THR_BPS_WR] = 1000000;
	throttle_init(&t, &c, now);
	/* 10 s: the rate, plus at most the capacity and one request */
	done = throttle_run(&t, true, 65536, 10, &now);
	ck_assert_uint_ge(done, 10000000 - 65536);
	ck_assert_uint_le(done, 10000000 + 100000 + 65536);
	/* reads are not limited by a write limit */
	ck_assert_int_eq(throttle_wait_ns(&t, false, 1 << 20, now), 0);
	/* a request far larger than the capacity goes, the next waits for
	 * it: about its size over the rate */
	now += 10 * 1000000000LL;
	ck_assert_int_eq(throttle_wait_ns(&t, true, 5000000, now), 0);
	throttle_charge(&t, true, 5000000, now);
	ck_assert_int_ge(throttle_wait_ns(&t, true, 1, now), 4800000000LL);
	ck_assert_int_le(throttle_wait_ns(&t, true, 1, now), 5000000000LL);
}
END_TEST

START_TEST(throttle_burst_and_iops_size)
{
	struct throttle_cfg c = {0};
	struct throttle t;
	int64_t now = 0;
	uint64_t done;

	/* 1 MB/s, bursts of 4 MB/s for 2 s: 8 MB in the first 2 s, then
	 * the average */
	c.avg[THR_BPS] = 1000000;
	c.max[THR_BPS] = 4000000;
	c.max_len[THR_BPS] = 2;
	throttle_init(&t, &c, now);
	done = throttle_run(&t, false, 10000, 2, &now);
	ck_assert_uint_ge(done, 8000000 - 10000);
	ck_assert_uint_le(done, 8000000 + 400000 + 10000);
	done = throttle_run(&t, true, 10000, 4, &now);
	ck_assert_uint_le(done, 4000000 + 20000);
	ck_assert_uint_ge(done, 4000000 - 20000);

	/* 100 IOPS, an operation of 1 MiB counts as 256 of 4 KiB */
	memset(&c, 0, sizeof(c));
	c.avg[THR_IOPS] = 100;
	c.iops_size = 4096;
	throttle_init(&t, &c, now);
	done = throttle_run(&t, true, 1 << 20, 10, &now);
	ck_assert_uint_le(done / (1 << 20), 5);
	done = throttle_run(&t, true, 4096, 10, &now);
	ck_assert_uint_ge(done / 4096, 990 - 256);
	ck_assert_uint_le(done / 4096, 1011);
}
END_TEST

START_TEST(throttle_settings_checked)
{
	struct throttle_cfg c = {0};
	char msg[200];
	uint64_t v;

	ck_assert_ptr_nonnull(throttle_field(&c, "iops_wr_max_length"));
	ck_assert_ptr_null(throttle_field(&c, "bps_total"));
	*throttle_field(&c, "bps_max") = 10;
	ck_assert_int_eq(throttle_check(&c, msg, sizeof(msg)), -EINVAL);
	ck_assert_str_eq(msg, "bps_max needs bps");
	c.avg[THR_BPS] = 20;
	ck_assert_int_eq(throttle_check(&c, msg, sizeof(msg)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(msg, "bps_max = 10 is below bps = 20"));
	c.max[THR_BPS] = 20;
	ck_assert_int_eq(throttle_check(&c, msg, sizeof(msg)), 0);
	c.iops_size = 4096;
	ck_assert_int_eq(throttle_check(&c, msg, sizeof(msg)), -EINVAL);
	c.avg[THR_IOPS_RD] = 5;
	ck_assert_int_eq(throttle_check(&c, msg, sizeof(msg)), 0);
	c.max_len[THR_IOPS] = 3;
	ck_assert_int_eq(throttle_check(&c, msg, sizeof(msg)), -EINVAL);
	ck_assert_str_eq(msg, "iops_max_length needs iops_max");

	ck_assert_int_eq(throttle_parse_value("0", &v), 0);
	ck_assert_int_eq(throttle_parse_value("9007199254740992", &v), 0);
	ck_assert_uint_eq(v, 9007199254740992ull);
	ck_assert_int_eq(throttle_parse_value("9007199254740993", &v), -EINVAL);
	ck_assert_int_eq(throttle_parse_value("", &v), -EINVAL);
	ck_assert_int_eq(throttle_parse_value("-1", &v), -EINVAL);
	ck_assert_int_eq(throttle_parse_value("1k", &v), -EINVAL);
	ck_assert_int_eq(throttle_parse_value(" 1", &v), -EINVAL);
}
END_TEST

/* A charge far beyond the rate (a huge request at 1 B/s, one byte an
 * operation at 1 op/s) is a wait of centuries, not an overflow into a
 * negative one that would let everything through; and a clock may add
 * it. */
START_TEST(throttle_huge_wait_is_a_wait)
{
	struct throttle_cfg c = {0};
	struct throttle t;
	int64_t now = 1000, w;

	c.avg[THR_BPS] = 1;
	throttle_init(&t, &c, now);
	throttle_charge(&t, true, 1ull << 62, now);
	w = throttle_wait_ns(&t, false, 1, now + 1000000000);
	ck_assert_int_gt(w, 1000000000LL * 3600 * 24 * 365 * 100);
	ck_assert_int_le(w, INT64_MAX - now - 1000000000);

	memset(&c, 0, sizeof(c));
	c.avg[THR_IOPS] = 1;
	c.iops_size = 1;
	throttle_init(&t, &c, now);
	throttle_charge(&t, false, 1ull << 62, now);
	w = throttle_wait_ns(&t, true, 1, now);
	ck_assert_int_gt(w, 1000000000LL * 3600 * 24 * 365 * 100);
	ck_assert_int_le(w, INT64_MAX - now);
}
END_TEST

Suite *lib_suite(void);

/* Published FNV-1a 64 vectors: lock record names of long host ids (on
 * storage other hosts share) and the NFS backend's stand-in inode numbers
 * are made with it. */
START_TEST(hash_str_is_fnv1a)
{
	ck_assert_uint_eq(vfs_hash_str(""), VFS_HASH_FNV_BASIS);
	ck_assert_uint_eq(vfs_hash_str("a"), 0xaf63dc4c8601ec8cull);
	ck_assert_uint_eq(vfs_hash_str("foobar"), 0x85944171f73967e8ull);
	ck_assert_uint_eq(vfs_hash_str_from(vfs_hash_str("foo"), "bar"),
			  vfs_hash_str("foobar"));
}
END_TEST

/* The st_ino of SFTP files and of virtual directories, as every earlier
 * version made them. */
START_TEST(hash_short_basis_pinned)
{
	ck_assert_uint_eq(vfs_hash_str_from(VFS_HASH_FNV_BASIS_SHORT, "/"),
			  0x44bd54d473cd3d44ull);
	ck_assert_uint_eq(
		vfs_hash_str_from(VFS_HASH_FNV_BASIS_SHORT, "/srv/images"),
		0xef6f528e9fef7e2cull);
}
END_TEST

/* Sequential inode numbers spread over the buckets, taken from the low
 * bits (inode.c) or the top byte (passthrough.c): at least half used. */
START_TEST(hash_u64_spreads)
{
	unsigned char low[1024] = {0}, top[256] = {0};
	unsigned nlow = 0, ntop = 0;

	ck_assert_uint_eq(vfs_hash_u64(0), 0);
	ck_assert_uint_eq(vfs_hash_u64(1), 0xb456bcfc34c2cb2cull);
	for (uint64_t ino = 1; ino <= 1024; ino++) {
		uint64_t h = vfs_hash_u64(ino);

		nlow += !low[h & 1023];
		low[h & 1023] = 1;
		if (ino <= 256) {
			ntop += !top[h >> 56];
			top[h >> 56] = 1;
		}
	}
	ck_assert_uint_gt(nlow, 512);
	ck_assert_uint_gt(ntop, 128);
}
END_TEST

/* Carry and borrow keep tv_nsec in [0, 1 s): pthread_cond_timedwait
 * refuses anything else with EINVAL. */
START_TEST(time_add_ms)
{
	struct timespec ts = {.tv_sec = 10, .tv_nsec = 900000000};

	vfs_ts_add_ms(&ts, 250);
	ck_assert_int_eq(ts.tv_sec, 11);
	ck_assert_int_eq(ts.tv_nsec, 150000000);
	vfs_ts_add_ms(&ts, 2000);
	ck_assert_int_eq(ts.tv_sec, 13);
	ck_assert_int_eq(ts.tv_nsec, 150000000);
	vfs_ts_add_ms(&ts, -200);
	ck_assert_int_eq(ts.tv_sec, 12);
	ck_assert_int_eq(ts.tv_nsec, 950000000);
}
END_TEST

START_TEST(time_deadlines)
{
	struct timespec a = {.tv_sec = 5, .tv_nsec = 100000000};
	struct timespec b = {.tv_sec = 3, .tv_nsec = 600000000};
	struct timespec d;
	int64_t ns = vfs_mono_ns(), ms = vfs_mono_ms();
	long left;

	ck_assert(vfs_ts_diff(&a, &b) > 1.49 && vfs_ts_diff(&a, &b) < 1.51);
	ck_assert(vfs_ts_diff(&b, &a) < -1.49);
	/* the three readings of one clock agree */
	ck_assert_int_le(ns / 1000000 - ms, 1);
	ck_assert(vfs_mono_s() * 1000 >= (double)ms);
	vfs_ts_after_ms(&d, CLOCK_MONOTONIC, 5000);
	left = vfs_ts_ms_until(&d);
	ck_assert(left > 4000 && left <= 5000);
	ck_assert(vfs_ts_ms_since(&d) < -4000);
}
END_TEST

static void check_join(const char *base, const char *path, const char *want)
{
	char *got = vfs_path_join(base, path);

	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(path_join)
{
	check_join("/srv", "/", "/srv");
	check_join("/srv/", "/a/b", "/srv/a/b");
	check_join("/srv//", "/", "/srv");
	check_join("/", "/a", "/a");
	check_join("/", "/", "/");
	check_join("//", "/a", "/a");
}
END_TEST

static void check_parent(const char *path, const char *want)
{
	char *got = vfs_path_parent(path);

	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(path_child)
{
	char *got = vfs_path_child("/", "a");

	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, "/a");
	free(got);
	got = vfs_path_child("/a/b", "c");
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, "/a/b/c");
	free(got);
}
END_TEST

START_TEST(path_parent)
{
	check_parent("/a/b/c", "/a/b");
	check_parent("/a", "/");
	check_parent("/", "/");
}
END_TEST

START_TEST(path_under)
{
	ck_assert(vfs_path_under("/a/b", "/a", 2));
	ck_assert(vfs_path_under("/a", "/a", 2));
	ck_assert(!vfs_path_under("/ab", "/a", 2));
	ck_assert(!vfs_path_under("/b", "/a", 2));
	ck_assert(vfs_path_under("/anything", "/", 1));
	ck_assert(vfs_path_under("/", "/", 1));
	ck_assert(vfs_path_under("/.vfsd/x", VFS_CTL_PREFIX,
				 strlen(VFS_CTL_PREFIX)));
	ck_assert(!vfs_path_under("/.vfsdx", VFS_CTL_PREFIX,
				  strlen(VFS_CTL_PREFIX)));
}
END_TEST

/* What vfs_json_str writes for s, as a string the test owns. */
static void check_json_str(const char *s, const char *want)
{
	char *got = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&got, &len);

	ck_assert_ptr_nonnull(out);
	vfs_json_str(out, s);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(json_str_plain)
{
	check_json_str("", "\"\"");
	check_json_str(NULL, "\"\"");
	check_json_str("/srv/images", "\"/srv/images\"");
	check_json_str("a b/'c'", "\"a b/'c'\"");
}
END_TEST

START_TEST(json_str_quotes_and_backslashes)
{
	check_json_str("say \"hi\"", "\"say \\\"hi\\\"\"");
	check_json_str("C:\\dir\\", "\"C:\\\\dir\\\\\"");
	check_json_str("\\\"", "\"\\\\\\\"\"");
	/* a slash needs no escape and gets none */
	check_json_str("a/b", "\"a/b\"");
}
END_TEST

/* Every byte below 0x20 as \u00XX, lower-case hex, the short forms (\n,
 * \t) never used; DEL is not a control character to JSON. */
START_TEST(json_str_control_chars)
{
	check_json_str("a\nb", "\"a\\u000ab\"");
	check_json_str("\t\r\b\f", "\"\\u0009\\u000d\\u0008\\u000c\"");
	check_json_str("\x01\x1f", "\"\\u0001\\u001f\"");
	check_json_str("\x1b[0m", "\"\\u001b[0m\"");
	check_json_str("\x7f", "\"\x7f\"");
}
END_TEST

/* Well-formed UTF-8 goes out as it is, up to U+10FFFF, C1 controls too
 * (JSON needs no escape for them). */
START_TEST(json_str_non_ascii)
{
	check_json_str("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	check_json_str("\xe2\x82\xac", "\"\xe2\x82\xac\"");
	check_json_str("\xc2\x9b", "\"\xc2\x9b\"");
	check_json_str("\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80",
		       "\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\"");
	check_json_str("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
		       "\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"");
}
END_TEST

/* Each byte that is not part of well-formed UTF-8 as \u00XX of its value:
 * stray continuations, bytes that never occur, overlong forms,
 * surrogates, beyond U+10FFFF, sequences cut short (by the string's end
 * too); what follows a bad byte is read afresh. */
START_TEST(json_str_not_utf8)
{
	check_json_str("\xff\x80\xfe", "\"\\u00ff\\u0080\\u00fe\"");
	check_json_str("a\xe9"
		       "b",
		       "\"a\\u00e9b\"");
	check_json_str("\xc0\xaf\xc1\xbf", "\"\\u00c0\\u00af\\u00c1\\u00bf\"");
	check_json_str("\xe0\x9f\xbf", "\"\\u00e0\\u009f\\u00bf\"");
	check_json_str("\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\"");
	check_json_str("\xf0\x8f\xbf\xbf", "\"\\u00f0\\u008f\\u00bf\\u00bf\"");
	check_json_str("\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\"");
	check_json_str("\xf5\x80", "\"\\u00f5\\u0080\"");
	check_json_str("\xe2\x82", "\"\\u00e2\\u0082\"");
	check_json_str("\xe2\x82x\xc3\xa9", "\"\\u00e2\\u0082x\xc3\xa9\"");
	check_json_str("\xf0\x9f\x98\"", "\"\\u00f0\\u009f\\u0098\\\"\"");
}
END_TEST

/* A name in a text report: no control byte reaches the terminal, no
 * line of its own starts, UTF-8 other than C1 stays as it is. */
START_TEST(path_print_controls)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"/a/b c", "/a/b c"},
		{"a\nb", "a\\x0ab"},
		{"\x1b[2J\x07\x7f", "\\x1b[2J\\x07\\x7f"},
		{"\xc2\x9b"
		 "2J",
		 "\\xc2\\x9b2J"},
		{"caf\xc3\xa9 \xc2\xa0", "caf\xc3\xa9 \xc2\xa0"},
		{"a\\b", "a\\\\b"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&got, &len);

		ck_assert_ptr_nonnull(out);
		vfs_path_print(out, cases[i].in);
		ck_assert_int_eq(fclose(out), 0);
		ck_assert_str_eq(got, cases[i].want);
		free(got);
	}
}
END_TEST

Suite *lib_suite(void)
{
	Suite *s = suite_create("lib");
	TCase *tc = tcase_create("hash");

	tcase_add_test(tc, hash_str_is_fnv1a);
	tcase_add_test(tc, hash_short_basis_pinned);
	tcase_add_test(tc, hash_u64_spreads);
	suite_add_tcase(s, tc);
	tc = tcase_create("time");
	tcase_add_test(tc, time_add_ms);
	tcase_add_test(tc, time_deadlines);
	suite_add_tcase(s, tc);
	tc = tcase_create("path");
	tcase_add_test(tc, path_join);
	tcase_add_test(tc, path_child);
	tcase_add_test(tc, path_parent);
	tcase_add_test(tc, path_under);
	suite_add_tcase(s, tc);
	tc = tcase_create("json");
	tcase_add_test(tc, json_str_plain);
	tcase_add_test(tc, json_str_quotes_and_backslashes);
	tcase_add_test(tc, json_str_control_chars);
	tcase_add_test(tc, json_str_non_ascii);
	tcase_add_test(tc, json_str_not_utf8);
	tcase_add_test(tc, path_print_controls);
	suite_add_tcase(s, tc);
	tc = tcase_create("throttle");
	tcase_add_test(tc, throttle_rate_holds);
	tcase_add_test(tc, throttle_burst_and_iops_size);
	tcase_add_test(tc, throttle_settings_checked);
	tcase_add_test(tc, throttle_huge_wait_is_a_wait);
	suite_add_tcase(s, tc);
	return s;
}
