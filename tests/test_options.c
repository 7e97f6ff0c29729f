/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_options.c - unit tests for lib/options.c: option sets, the
 * declarative spec check (unknown keys, numbers, booleans, enums, paths,
 * secrets by origin) and the typed getters.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "lib/options.h"

Suite *options_suite(void);

static const char *const mode_choices[] = {"fast", "safe", NULL};

/* A spec with one option of every type, as a backend would declare. */
static const struct vfs_opt_spec test_opts[] = {
	{.name = "label", .type = VFS_OPT_STRING, .def = "anon"},
	{.name = "count", .type = VFS_OPT_INT, .def = "4", .min = 1, .max = 16},
	{.name = "offset", .type = VFS_OPT_INT, .min = -5, .max = 5},
	{.name = "flag", .type = VFS_OPT_BOOL, .def = "no"},
	{.name = "mode",
	 .type = VFS_OPT_ENUM,
	 .def = "safe",
	 .choices = mode_choices},
	{.name = "keyfile", .type = VFS_OPT_PATH},
	{.name = "password", .type = VFS_OPT_STRING, .secret = true},
	{.name = NULL},
};

/* Validate the single option key=value from `origin`; returns the result
 * and leaves the message in *err. */
static int check_one(const char *key, const char *value, int origin,
		     struct vfs_error *err)
{
	struct vfs_opts o = {0};
	int ret;

	vfs_error_init(err);
	ck_assert_int_eq(vfs_opts_set(&o, key, value, origin), 0);
	ret = vfs_opts_validate(&o, test_opts, "mount /t", err);
	if (ret == 0) {
		ck_assert_int_eq(err->code, 0);
		ck_assert_ptr_eq(o.spec, test_opts);
	} else {
		ck_assert_int_eq(ret, -err->code);
		/* every message names the mount and the option */
		ck_assert_msg(strncmp(err->msg, "mount /t: ", 10) == 0, "%s",
			      err->msg);
		ck_assert_ptr_nonnull(strstr(err->msg, key));
	}
	vfs_opts_clear(&o);
	return ret;
}

static void good(const char *key, const char *value)
{
	struct vfs_error err;

	ck_assert_msg(check_one(key, value, VFS_ORIGIN_CONFIG, &err) == 0,
		      "%s=%s refused: %s", key, value, err.msg);
}

static void bad(const char *key, const char *value, const char *what)
{
	struct vfs_error err;

	ck_assert_msg(check_one(key, value, VFS_ORIGIN_CONFIG, &err) == -EINVAL,
		      "%s=%s accepted", key, value);
	ck_assert_msg(strstr(err.msg, what), "message '%s' lacks '%s'", err.msg,
		      what);
}

/* ---- Sets ------------------------------------------------------------ */

START_TEST(test_set_replace_copy_clear)
{
	struct vfs_opts o = {0}, c = {0};

	ck_assert_int_eq(vfs_opts_set(&o, "a", "1", VFS_ORIGIN_URL), 0);
	ck_assert_int_eq(vfs_opts_set(&o, "b", "2", VFS_ORIGIN_CONFIG), 0);
	ck_assert_int_eq(vfs_opts_set(&o, "a", "3", VFS_ORIGIN_CONFIG), 0);
	ck_assert_uint_eq(o.n, 2);
	ck_assert_str_eq(o.kv[0].key, "a");
	ck_assert_str_eq(o.kv[0].value, "3");
	ck_assert_int_eq(o.kv[0].origin, VFS_ORIGIN_CONFIG);
	ck_assert_str_eq(vfs_opts_get(&o, "b"), "2");
	ck_assert_ptr_null(vfs_opts_get(&o, "c"));

	ck_assert_int_eq(vfs_opts_copy(&c, &o), 0);
	ck_assert_uint_eq(c.n, 2);
	/* a deep copy */
	ck_assert_ptr_ne(c.kv[1].value, o.kv[1].value);
	ck_assert_str_eq(c.kv[1].value, "2");
	ck_assert_int_eq(c.kv[1].origin, VFS_ORIGIN_CONFIG);

	vfs_opts_clear(&o);
	ck_assert_uint_eq(o.n, 0);
	ck_assert_ptr_null(o.kv);
	ck_assert_str_eq(vfs_opts_get(&c, "a"), "3");
	vfs_opts_clear(&c);
	vfs_opts_clear(&c);
}
END_TEST

/* ---- Validation -------------------------------------------------------- */

START_TEST(test_empty_uses_defaults)
{
	struct vfs_opts o = {0};
	struct vfs_error err;

	vfs_error_init(&err);
	ck_assert_int_eq(vfs_opts_validate(&o, test_opts, "mount /t", &err), 0);
	ck_assert_int_eq(err.code, 0);
	ck_assert_str_eq(vfs_opts_get(&o, "label"), "anon");
	ck_assert_str_eq(vfs_opts_get(&o, "count"), "4");
	ck_assert_int_eq(vfs_opts_get_int(&o, "count"), 4);
	ck_assert(!vfs_opts_get_bool(&o, "flag"));
	ck_assert_str_eq(vfs_opts_get(&o, "mode"), "safe");
	/* no default */
	ck_assert_ptr_null(vfs_opts_get(&o, "keyfile"));
	ck_assert_int_eq(vfs_opts_get_int(&o, "offset"), 0);
	ck_assert_ptr_null(vfs_opts_get(&o, "nonsense"));
	vfs_opts_clear(&o);
}
END_TEST

START_TEST(test_values_override_defaults)
{
	struct vfs_opts o = {0};
	struct vfs_error err;

	vfs_error_init(&err);
	vfs_opts_set(&o, "count", "16", VFS_ORIGIN_URL);
	vfs_opts_set(&o, "offset", "-5", VFS_ORIGIN_URL);
	vfs_opts_set(&o, "flag", "On", VFS_ORIGIN_URL);
	vfs_opts_set(&o, "mode", "fast", VFS_ORIGIN_URL);
	ck_assert_int_eq(vfs_opts_validate(&o, test_opts, "mount /t", &err), 0);
	ck_assert_int_eq(vfs_opts_get_int(&o, "count"), 16);
	ck_assert_int_eq(vfs_opts_get_int(&o, "offset"), -5);
	ck_assert(vfs_opts_get_bool(&o, "flag"));
	ck_assert_str_eq(vfs_opts_get(&o, "mode"), "fast");
	ck_assert_str_eq(vfs_opts_get(&o, "label"), "anon");
	vfs_opts_clear(&o);
}
END_TEST

START_TEST(test_unknown_key)
{
	struct vfs_opts o = {0};
	struct vfs_error err;

	vfs_error_init(&err);
	vfs_opts_set(&o, "count", "2", VFS_ORIGIN_CONFIG);
	vfs_opts_set(&o, "colour", "red", VFS_ORIGIN_CONFIG);
	ck_assert_int_eq(vfs_opts_validate(&o, test_opts, "mount /t", &err),
			 -EINVAL);
	ck_assert_str_eq(err.msg, "mount /t: unknown option 'colour'");
	vfs_opts_clear(&o);

	/* a backend without options accepts none */
	vfs_error_init(&err);
	vfs_opts_set(&o, "count", "2", VFS_ORIGIN_CONFIG);
	ck_assert_int_eq(vfs_opts_validate(&o, NULL, "mount /n", &err),
			 -EINVAL);
	ck_assert_str_eq(err.msg, "mount /n: unknown option 'count'");
	vfs_opts_clear(&o);

	/* names are case-sensitive */
	bad("Count", "2", "unknown option 'Count'");
}
END_TEST

START_TEST(test_int)
{
	good("count", "1");
	good("count", "16");
	good("offset", "-5");
	good("offset", "0");
	bad("count", "0",
	    "'count' must be a whole number from 1 to 16, not '0'");
	bad("count", "17", "not '17'");
	bad("count", "-1", "from 1 to 16");
	bad("count", "", "not ''");
	bad("count", "4x", "not '4x'");
	bad("count", "0x4", "not '0x4'");
	bad("count", "4.0", "not '4.0'");
	bad("count", "99999999999999999999999", "from 1 to 16");
	bad("offset", "-6", "from -5 to 5");
}
END_TEST

START_TEST(test_bool)
{
	static const char *const yes[] = {"yes",  "YES", "true",
					  "True", "on",  "1"};
	static const char *const no[] = {"no",    "No",  "false",
					 "FALSE", "off", "0"};
	bool b;

	for (size_t i = 0; i < 6; i++) {
		good("flag", yes[i]);
		good("flag", no[i]);
		b = false;
		ck_assert_int_eq(vfs_parse_bool(yes[i], &b), 0);
		ck_assert(b);
		ck_assert_int_eq(vfs_parse_bool(no[i], &b), 0);
		ck_assert(!b);
	}
	bad("flag", "maybe", "'flag' must be yes or no, not 'maybe'");
	bad("flag", "", "not ''");
	bad("flag", "2", "not '2'");
	bad("flag", "yes ", "not 'yes '");
	b = true;
	ck_assert_int_eq(vfs_parse_bool("y", &b), -EINVAL);
	ck_assert(b);
}
END_TEST

START_TEST(test_enum)
{
	good("mode", "fast");
	good("mode", "safe");
	bad("mode", "slow", "option 'mode' has no value 'slow'");
	bad("mode", "FAST", "no value 'FAST'");
	bad("mode", "", "no value ''");
}
END_TEST

START_TEST(test_path)
{
	good("keyfile", "/etc/vfsd/key");
	good("keyfile", "~/.ssh/id_ed25519");
	bad("keyfile", "key", "'keyfile' needs an absolute path, not 'key'");
	bad("keyfile", "~bob/key", "not '~bob/key'");
	bad("keyfile", "./key", "needs an absolute path");
	bad("keyfile", "", "needs an absolute path");
}
END_TEST

START_TEST(test_secret_by_origin)
{
	struct vfs_error err;

	/* a config file only its owner reads may hold secrets */
	ck_assert_int_eq(
		check_one("password", "hunter2", VFS_ORIGIN_CONFIG, &err), 0);

	ck_assert_int_eq(check_one("password", "hunter2", VFS_ORIGIN_URL, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(
		strstr(err.msg, "'password' is a secret and may only be given "
				"in a config file"));
	ck_assert_ptr_null(strstr(err.msg, "hunter2"));

	ck_assert_int_eq(
		check_one("password", "hunter2", VFS_ORIGIN_OPEN_CONFIG, &err),
		-EACCES);
	ck_assert_ptr_nonnull(strstr(err.msg, "chmod 600"));
	ck_assert_ptr_null(strstr(err.msg, "hunter2"));

	/* non-secret options may come from anywhere */
	ck_assert_int_eq(check_one("label", "x", VFS_ORIGIN_URL, &err), 0);
	ck_assert_int_eq(check_one("label", "x", VFS_ORIGIN_OPEN_CONFIG, &err),
			 0);
}
END_TEST

START_TEST(test_first_error_wins)
{
	struct vfs_opts o = {0};
	struct vfs_error err;

	vfs_error_init(&err);
	vfs_opts_set(&o, "count", "99", VFS_ORIGIN_CONFIG);
	vfs_opts_set(&o, "mode", "slow", VFS_ORIGIN_CONFIG);
	ck_assert_int_eq(vfs_opts_validate(&o, test_opts, "m", &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'count'"));
	/* a later error does not overwrite the first */
	ck_assert_int_eq(vfs_error_set(&err, ENOENT, "other"), -ENOENT);
	ck_assert_int_eq(err.code, EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'count'"));
	vfs_opts_clear(&o);
}
END_TEST

START_TEST(test_parse_long)
{
	long l = 42;

	ck_assert_int_eq(vfs_parse_long("7", 0, 10, &l), 0);
	ck_assert_int_eq(l, 7);
	ck_assert_int_eq(vfs_parse_long("-10", -10, 10, &l), 0);
	ck_assert_int_eq(l, -10);
	ck_assert_int_eq(vfs_parse_long("11", 0, 10, &l), -ERANGE);
	ck_assert_int_eq(vfs_parse_long("-11", -10, 10, &l), -ERANGE);
	ck_assert_int_eq(
		vfs_parse_long("9223372036854775808", LONG_MIN, LONG_MAX, &l),
		-ERANGE);
	ck_assert_int_eq(vfs_parse_long("", 0, 10, &l), -EINVAL);
	ck_assert_int_eq(vfs_parse_long("x", 0, 10, &l), -EINVAL);
	ck_assert_int_eq(vfs_parse_long("5 ", 0, 10, &l), -EINVAL);
	ck_assert_int_eq(vfs_parse_long(" 5", 0, 10, &l), -EINVAL);
	ck_assert_int_eq(vfs_parse_long("+5", 0, 10, &l), -EINVAL);
	ck_assert_int_eq(vfs_parse_long("-", -10, 10, &l), -EINVAL);
	ck_assert_int_eq(vfs_parse_long("--5", -10, 10, &l), -EINVAL);
	/* failures leave *out alone */
	ck_assert_int_eq(l, -10);
}
END_TEST

START_TEST(test_backend_specs)
{
	struct vfs_opts o = {0};
	struct vfs_error err;
	const struct vfs_backend_ops *file = backend_find("file");

	ck_assert_ptr_nonnull(file);
	vfs_error_init(&err);
	vfs_opts_set(&o, "cache_ttl", "3600", VFS_ORIGIN_URL);
	ck_assert_int_eq(vfs_opts_validate(&o, file->opts, "mount /l", &err),
			 0);
	ck_assert_int_eq(vfs_opts_get_int(&o, "cache_ttl"), 3600);
	vfs_opts_clear(&o);

	vfs_opts_set(&o, "cache_ttl", "3601", VFS_ORIGIN_URL);
	ck_assert_int_eq(vfs_opts_validate(&o, file->opts, "mount /l", &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'cache_ttl'"));
	vfs_opts_clear(&o);

	/* every built-in spec is well formed */
	for (size_t i = 0; backend_all[i]; i++) {
		const struct vfs_opt_spec *s = backend_all[i]->opts;

		for (; s && s->name; s++) {
			struct vfs_opts d = {0};

			if (s->type == VFS_OPT_INT)
				ck_assert_msg(s->min <= s->max, "%s: %s",
					      backend_all[i]->name, s->name);
			if (s->type == VFS_OPT_ENUM)
				ck_assert_ptr_nonnull(s->choices);
			if (!s->def)
				continue;
			/* its default passes its own check */
			vfs_error_init(&err);
			vfs_opts_set(&d, s->name, s->def, VFS_ORIGIN_CONFIG);
			ck_assert_msg(vfs_opts_validate(
					      &d, backend_all[i]->opts,
					      backend_all[i]->name, &err) == 0,
				      "%s", err.msg);
			vfs_opts_clear(&d);
		}
	}
}
END_TEST

Suite *options_suite(void)
{
	Suite *s = suite_create("options");
	TCase *tc;

	tc = tcase_create("sets");
	tcase_add_test(tc, test_set_replace_copy_clear);
	suite_add_tcase(s, tc);

	tc = tcase_create("validate");
	tcase_add_test(tc, test_empty_uses_defaults);
	tcase_add_test(tc, test_values_override_defaults);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_int);
	tcase_add_test(tc, test_bool);
	tcase_add_test(tc, test_enum);
	tcase_add_test(tc, test_path);
	tcase_add_test(tc, test_secret_by_origin);
	tcase_add_test(tc, test_first_error_wins);
	tcase_add_test(tc, test_backend_specs);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_long);
	suite_add_tcase(s, tc);
	return s;
}
