/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_config.c - unit tests for vfsd/config.c: vfsd.conf(5) through
 * libinih (valid and malformed files, FILE:LINE in every message), -m
 * PREFIX=URL mappings and cfg_validate().
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "vfsd/config.h"

Suite *config_suite(void);

static struct vfsd_config cfg;
static struct vfs_error err;
static char tmpdir[64];

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	vfs_error_init(&err);
	strcpy(tmpdir, "/tmp/vfsd-test-config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[128];

	cfg_free(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Load `text` as "test.conf", which must succeed. */
static void load_ok(const char *text)
{
	int ret = cfg_load_string(&cfg, text, "test.conf", true, &err);

	ck_assert_msg(ret == 0, "refused: %s", err.msg);
	ck_assert_int_eq(err.code, 0);
}

/* Load `text`, which must fail with exactly the message `want`.  May be
 * called several times in one test. */
static void load_bad(const char *text, const char *want)
{
	int ret;

	cfg_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	vfs_error_init(&err);
	ret = cfg_load_string(&cfg, text, "test.conf", true, &err);

	ck_assert_msg(ret < 0, "accepted:\n%s", text);
	ck_assert_int_eq(ret, -err.code);
	ck_assert_str_eq(err.msg, want);
}

/* Validate, which must fail with -code and a message starting `want`. */
static void validate_bad(int code, const char *want)
{
	ck_assert_int_eq(cfg_validate(&cfg, &err), -code);
	ck_assert_int_eq(err.code, code);
	ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0,
		      "message '%s' does not start with '%s'", err.msg, want);
}

/* Write `text` to a file in tmpdir with `mode`; returns its path. */
static const char *write_file(const char *name, const char *text, size_t len,
			      mode_t mode)
{
	static char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

/* A backend option declared secret, to test the real specs with. */
static bool find_secret(const char **scheme, const char **key)
{
	for (size_t i = 0; backend_all[i]; i++)
		for (const struct vfs_opt_spec *o = backend_all[i]->opts;
		     o && o->name; o++)
			if (o->secret && o->type == VFS_OPT_STRING) {
				*scheme = backend_all[i]->name;
				*key = o->name;
				return true;
			}
	return false;
}

/* ---- Valid files ---------------------------------------------------- */

START_TEST(test_valid)
{
	load_ok("# vfsd.conf\n"
		"[vfsd]\n"
		"writeback_cache = yes\n"
		"host_id = node-1\n"
		"\n"
		"; local data\n"
		"[mount /data/]\n"
		"url = file:///srv/data\n"
		"readonly = no\n"
		"cache_ttl = 5\n"
		"\n"
		"[mount \"/data/archive\"]\n"
		"url = /srv/archive ; inline comment\n"
		"readonly = Yes\n"
		"[  mount   /  ]\n"
		"url: file:///\n");
	ck_assert_int_eq(cfg.writeback, FO_WRITEBACK_ON);
	ck_assert_str_eq(cfg.host_id, "node-1");
	ck_assert_uint_eq(cfg.nmounts, 3);

	ck_assert_str_eq(cfg.mounts[0].prefix, "/data");
	ck_assert_str_eq(cfg.mounts[0].url, "file:///srv/data");
	ck_assert(!cfg.mounts[0].readonly);
	ck_assert_str_eq(cfg.mounts[0].where, "test.conf:7");
	ck_assert_uint_eq(cfg.mounts[0].opts.n, 1);
	ck_assert_str_eq(cfg.mounts[0].opts.kv[0].key, "cache_ttl");
	ck_assert_str_eq(cfg.mounts[0].opts.kv[0].value, "5");
	ck_assert_int_eq(cfg.mounts[0].opts.kv[0].origin, VFS_ORIGIN_CONFIG);
	ck_assert_int_eq(cfg.mounts[0].lines[0], 10);

	ck_assert_str_eq(cfg.mounts[1].prefix, "/data/archive");
	ck_assert_str_eq(cfg.mounts[1].url, "/srv/archive");
	ck_assert(cfg.mounts[1].readonly);
	ck_assert_str_eq(cfg.mounts[1].where, "test.conf:12");
	ck_assert_uint_eq(cfg.mounts[1].opts.n, 0);

	ck_assert_str_eq(cfg.mounts[2].prefix, "/");
	ck_assert_str_eq(cfg.mounts[2].url, "file:///");
	ck_assert_str_eq(cfg.mounts[2].where, "test.conf:15");

	ck_assert_int_eq(cfg_validate(&cfg, &err), 0);
	ck_assert_int_eq(err.code, 0);
}
END_TEST

START_TEST(test_defaults_and_crlf)
{
	load_ok("[mount /a]\r\nurl=file:///x\r\ncache_ttl=3\r\n[vfsd]\r\n");
	ck_assert_int_eq(cfg.writeback, FO_WRITEBACK_OFF);
	ck_assert_ptr_null(cfg.host_id);
	ck_assert_uint_eq(cfg.nmounts, 1);
	ck_assert_str_eq(cfg.mounts[0].url, "file:///x");
	ck_assert_str_eq(cfg.mounts[0].opts.kv[0].value, "3");
	ck_assert_int_eq(cfg.mounts[0].lines[0], 3);
	ck_assert(!cfg.mounts[0].readonly);
	ck_assert_int_eq(cfg_validate(&cfg, &err), 0);
}
END_TEST

START_TEST(test_two_sources_add_up)
{
	load_ok("[mount /a]\nurl=/x\n");
	ck_assert_int_eq(cfg_load_string(&cfg, "\n[mount /b]\nurl=/y\n",
					 "other.conf", true, &err),
			 0);
	ck_assert_int_eq(cfg_add_mapping(&cfg, "/c=/z", &err), 0);
	ck_assert_uint_eq(cfg.nmounts, 3);
	ck_assert_str_eq(cfg.mounts[1].where, "other.conf:2");
	ck_assert_str_eq(cfg.mounts[2].where, "-m");
	ck_assert_int_eq(cfg_validate(&cfg, &err), 0);
}
END_TEST

START_TEST(test_vfsd_section)
{
	load_ok("[vfsd]\n"
		"mountpoint = /mnt/vfsd\n"
		"show_control_dir = yes\n"
		"writeback_cache = off\n"
		"[mount /a]\n"
		"url = /x\n");
	ck_assert_str_eq(cfg.mountpoint, "/mnt/vfsd");
	ck_assert(cfg.show_control_dir);
	ck_assert_int_eq(cfg.writeback, FO_WRITEBACK_OFF);
	ck_assert_uint_eq(cfg.nmounts, 1);
	cfg_free(&cfg);

	load_bad("[vfsd]\n\nmountpoint = mnt\n",
		 "test.conf:3: mountpoint must be an absolute path, not 'mnt'");
	cfg_free(&cfg);
	vfs_error_init(&err);
	load_bad("[vfsd]\nshow_control_dir = sure\n",
		 "test.conf:2: show_control_dir must be yes or no, not 'sure'");
}
END_TEST

/* ---- Malformed files: FILE:LINE and the problem ---------------------- */

START_TEST(test_unknown_section)
{
	load_bad("[mount /a]\nurl=/x\n[mounts /b]\nurl=/y\n",
		 "test.conf:3: unknown section [mounts /b] (expected [vfsd], "
		 "[mount /PREFIX] or [qos /PATH])");
}
END_TEST

/* [qos PATH] sections and a mount's qos.NAME keys: each bad one named
 * at its line, a whole set checked for consistency */
START_TEST(test_qos_sections)
{
	cfg_free(&cfg);
	vfs_error_init(&err);
	ck_assert_int_eq(
		cfg_load_string(&cfg,
				"[mount /a]\nurl=/x\nqos.bps_max=2000\n"
				"qos.bps=1000\n"
				"[qos /a/vm]\niops_wr = 50\nbps = 7\n",
				"test.conf", true, &err),
		0);
	ck_assert_uint_eq(cfg.nqos, 1);
	ck_assert_str_eq(cfg.qos[0].path, "/a/vm");
	ck_assert_str_eq(vfs_opts_get(&cfg.qos[0].opts, "qos.iops_wr"), "50");
	ck_assert_int_eq(cfg_validate(&cfg, &err), 0);
	cfg_free(&cfg);
	load_bad("[mount /a]\nurl=/x\n[qos /a/vm]\nbps=1\nbps=2\n",
		 "test.conf:5: duplicate key 'bps'");
	load_bad("[mount /a]\nurl=/x\n[qos /a/vm]\nbps=1k\n",
		 "test.conf:4: bps = '1k': expected a plain decimal integer "
		 "(bytes or operations per second, seconds, bytes)");
	load_bad("[qos /a]\nbps=1\n[qos /a/]\nbps=2\n",
		 "test.conf:3: [qos /a] is already at test.conf:1");
}
END_TEST

START_TEST(test_qos_consistency)
{
	cfg_free(&cfg);
	vfs_error_init(&err);
	ck_assert_int_eq(cfg_load_string(&cfg,
					 "[mount /a]\nurl=/x\nqos.bps_max=10\n",
					 "test.conf", true, &err),
			 0);
	ck_assert_int_eq(cfg_validate(&cfg, &err), -EINVAL);
	ck_assert_str_eq(err.msg,
			 "test.conf:1: [mount /a]: qos.bps_max needs bps");
	cfg_free(&cfg);
	vfs_error_init(&err);
	ck_assert_int_eq(cfg_load_string(&cfg,
					 "[mount /a]\nurl=/x\nqos.speed=10\n",
					 "test.conf", true, &err),
			 0);
	ck_assert_int_eq(cfg_validate(&cfg, &err), -EINVAL);
	ck_assert_ptr_nonnull(
		strstr(err.msg, "test.conf:3: [mount /a]: unknown QoS option "
				"'qos.speed'"));
	cfg_free(&cfg);
}
END_TEST

START_TEST(test_unknown_section_case)
{
	load_bad("\n[MOUNT /a]\nurl=/x\n",
		 "test.conf:2: unknown section [MOUNT /a] (expected [vfsd], "
		 "[mount /PREFIX] or [qos /PATH])");
}
END_TEST

START_TEST(test_malformed_section)
{
	load_bad("[mount /a]\nurl=/x\n\n[mount /b\nurl=/y\n",
		 "test.conf:4: malformed section header");
}
END_TEST

START_TEST(test_key_outside_section)
{
	load_bad("# comment\nurl = file:///x\n[mount /a]\nurl=/x\n",
		 "test.conf:2: key 'url' outside of a [vfsd] or [mount] "
		 "section");
}
END_TEST

START_TEST(test_bad_prefix)
{
	load_bad("[mount data]\nurl=/x\n",
		 "test.conf:1: mount prefix 'data' must be an absolute path "
		 "without '..'");
}
END_TEST

START_TEST(test_dotdot_prefix)
{
	load_bad("[vfsd]\n[mount /a/../b]\nurl=/x\n",
		 "test.conf:2: mount prefix '/a/../b' must be an absolute path "
		 "without '..'");
}
END_TEST

START_TEST(test_duplicate_url)
{
	load_bad("[mount /a]\nurl=/x\nreadonly=no\nurl=/y\n",
		 "test.conf:4: duplicate key 'url'");
}
END_TEST

START_TEST(test_duplicate_readonly)
{
	/* regression: the last value won silently */
	load_bad("[mount /a]\nurl=/x\nreadonly=yes\ncache_ttl=1\nreadonly=no\n",
		 "test.conf:5: duplicate key 'readonly'");
	load_bad("[mount /a]\nreadonly=no\nurl=/x\nreadonly=no\n",
		 "test.conf:4: duplicate key 'readonly'");
	/* once per section, not once per file */
	cfg_free(&cfg);
	vfs_error_init(&err);
	load_ok("[mount /a]\nurl=/x\nreadonly=yes\n[mount /b]\nurl=/y\n"
		"readonly=yes\n");
	ck_assert(cfg.mounts[0].readonly && cfg.mounts[1].readonly);
}
END_TEST

START_TEST(test_duplicate_every_mount_key)
{
	/* every key a [mount] section may hold, each given twice */
	static const char *const keys[] = {
		"url = /x",    "readonly = no",    "cache_ttl = 1",
		"shared = no", "passthrough = no",
	};
	char text[256], want[128];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *name_end = strchr(keys[i], ' ');

		snprintf(text, sizeof(text), "[mount /a]\n%s\n%s\n%s\n",
			 i ? "url = /x" : "readonly = no", keys[i], keys[i]);
		snprintf(want, sizeof(want),
			 "test.conf:4: duplicate key '%.*s'",
			 (int)(name_end - keys[i]), keys[i]);
		load_bad(text, want);
	}
}
END_TEST

START_TEST(test_duplicate_option)
{
	load_bad("[mount /a]\nurl=/x\ncache_ttl=1\n\ncache_ttl=2\n",
		 "test.conf:5: duplicate key 'cache_ttl'");
}
END_TEST

START_TEST(test_duplicate_vfsd_key)
{
	load_bad("[vfsd]\nwriteback_cache=no\nhost_id=a\nwriteback_cache=yes\n",
		 "test.conf:4: duplicate key 'writeback_cache'");
	/* every [vfsd] key: the second of two values is an error, not the
	 * silent winner */
	load_bad("[vfsd]\nmountpoint=/a\nmountpoint=/b\n",
		 "test.conf:3: duplicate key 'mountpoint'");
	load_bad("[vfsd]\nlock_lease=10\nhost_id=h\nlock_lease=20\n",
		 "test.conf:4: duplicate key 'lock_lease'");
	load_bad("[vfsd]\nshow_control_dir=yes\nshow_control_dir=no\n",
		 "test.conf:3: duplicate key 'show_control_dir'");
	load_bad("[vfsd]\nhost_id=a\nhost_id=b\n",
		 "test.conf:3: duplicate key 'host_id'");
}
END_TEST

START_TEST(test_bad_vfsd_keys)
{
	load_bad("[vfsd]\nwriteback_cache=sometimes\n",
		 "test.conf:2: writeback_cache must be yes or no, not "
		 "'sometimes'");
}
END_TEST

START_TEST(test_bad_host_id)
{
	load_bad("[vfsd]\nhost_id = a b\n",
		 "test.conf:2: host_id 'a b': a host id is a word of 1 to 127 "
		 "bytes without spaces, control characters or slashes");
	load_bad("[vfsd]\nhost_id = ../../evil\n",
		 "test.conf:2: host_id '../../evil': a host id is a word of 1 "
		 "to 127 bytes without spaces, control characters or slashes");
	/* a control character is quoted, not written into the message */
	load_bad("[vfsd]\nhost_id = a\x01"
		 "b\n",
		 "test.conf:2: host_id 'a\\x01b': a host id is a word of 1 to "
		 "127 bytes without spaces, control characters or slashes");
}
END_TEST

/*
 * --host-id goes through the same check as host_id (regression: the
 * command line took "../../evil" and newlines).
 */
START_TEST(test_check_host_id)
{
	char id[200];

	ck_assert_int_eq(
		cfg_check_host_id("--host-id", "hv1.example-2_x:9", &err), 0);
	ck_assert_int_eq(err.code, 0);
	memset(id, 'h', 127);
	id[127] = '\0';
	ck_assert_int_eq(cfg_check_host_id("--host-id", id, &err), 0);
	id[127] = 'h';
	id[128] = '\0';
	ck_assert_int_eq(cfg_check_host_id("--host-id", id, &err), -EINVAL);

	static const char *const bad[] = {
		"",      "../../evil", "a/b",  "a\\b",
		"a b",   "a\tb",       "a\nb", "evil\nvfsd: error: forged",
		"a\x7f",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vfs_error_init(&err);
		ck_assert_msg(cfg_check_host_id("--host-id", bad[i], &err) ==
				      -EINVAL,
			      "host id %zu accepted", i);
		ck_assert_msg(strncmp(err.msg, "--host-id '", 11) == 0, "%s",
			      err.msg);
		ck_assert_ptr_nonnull(strstr(err.msg, "a host id is a word"));
		ck_assert_ptr_null(strchr(err.msg, '\n'));
	}
}
END_TEST

START_TEST(test_unknown_vfsd_key)
{
	load_bad("[vfsd]\ncache_ttl=2\n",
		 "test.conf:2: unknown key 'cache_ttl' in [vfsd]");
}
END_TEST

START_TEST(test_missing_url)
{
	load_bad("[mount /a]\nurl=/x\n\n[mount /b]\nreadonly=yes\n[mount "
		 "/c]\nurl=/z\n",
		 "test.conf:4: [mount /b] has no url");
}
END_TEST

START_TEST(test_bad_readonly)
{
	load_bad("[mount /a]\nurl=/x\nreadonly = maybe\n",
		 "test.conf:3: readonly must be yes or no, not 'maybe'");
}
END_TEST

START_TEST(test_syntax_error)
{
	load_bad("[mount /a]\nurl=/x\n\njust some words\n",
		 "test.conf:4: syntax error (expected key = value)");
}
END_TEST

START_TEST(test_overlong_line)
{
	char text[1024], x[400];

	memset(x, 'x', sizeof(x));
	/* 198 characters and the newline fit inih's 200-byte buffer */
	snprintf(text, sizeof(text), "[mount /a]\nurl=/x\nk=%.196s\n", x);
	load_ok(text);
	ck_assert_uint_eq(strlen(cfg.mounts[0].opts.kv[0].value), 196);
	cfg_free(&cfg);

	/* one more is refused, on its line, even before other errors */
	snprintf(text, sizeof(text), "[mount /a]\nurl=/x\nk=%.197s\nbad\n", x);
	load_bad(text, "test.conf:3: line longer than 198 characters");
	cfg_free(&cfg);
	vfs_error_init(&err);
	snprintf(text, sizeof(text), "[mount /a]\nurl=/x\n\nk=%.399s\n", x);
	load_bad(text, "test.conf:4: line longer than 198 characters");
}
END_TEST

START_TEST(test_first_error_wins)
{
	load_bad("[mount /a]\nurl=/x\nreadonly=perhaps\n[nope]\n",
		 "test.conf:3: readonly must be yes or no, not 'perhaps'");
}
END_TEST

/* ---- cfg_load_file ----------------------------------------------------- */

START_TEST(test_load_file_private)
{
	const char *text = "[mount /a]\nurl=/x\n\npassword = pw\n";
	const char *path = write_file("private.conf", text, strlen(text), 0600);

	ck_assert_int_eq(cfg_load_file(&cfg, path, &err), 0);
	ck_assert_str_eq(cfg.file, path);
	ck_assert_uint_eq(cfg.nmounts, 1);
	ck_assert_int_eq(cfg.mounts[0].opts.kv[0].origin, VFS_ORIGIN_CONFIG);
	ck_assert_int_eq(cfg.mounts[0].lines[0], 4);
}
END_TEST

START_TEST(test_load_file_open)
{
	const char *text = "[mount /a]\nurl=/x\ncache_ttl=1\n";
	const char *path = write_file("open.conf", text, strlen(text), 0644);

	ck_assert_int_eq(cfg_load_file(&cfg, path, &err), 0);
	ck_assert_int_eq(cfg.mounts[0].opts.kv[0].origin,
			 VFS_ORIGIN_OPEN_CONFIG);
	/* a non-secret option is fine in a readable file */
	ck_assert_int_eq(cfg_validate(&cfg, &err), 0);
}
END_TEST

START_TEST(test_load_file_secret_in_open_file)
{
	const char *scheme, *key, *path;
	char text[256], want[256];

	if (!find_secret(&scheme, &key))
		return; /* no backend declares a secret option */
	snprintf(text, sizeof(text),
		 "[mount /h]\nurl=%s://u@h/x\n\n%s = hunter2\n", scheme, key);
	path = write_file("open.conf", text, strlen(text), 0640);
	ck_assert_int_eq(cfg_load_file(&cfg, path, &err), 0);
	snprintf(want, sizeof(want),
		 "%s:4: [mount /h]: option '%s' is a secret", path, key);
	validate_bad(EACCES, want);
	ck_assert_ptr_null(strstr(err.msg, "hunter2"));

	/* the same file, private, is fine */
	cfg_free(&cfg);
	vfs_error_init(&err);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(cfg_load_file(&cfg, path, &err), 0);
	ck_assert_int_eq(cfg_validate(&cfg, &err), 0);
}
END_TEST

START_TEST(test_load_file_errors)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	ck_assert_int_eq(cfg_load_file(&cfg, path, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	ck_assert_ptr_nonnull(strstr(err.msg, "No such file"));

	vfs_error_init(&err);
	ck_assert_int_eq(cfg_load_file(&cfg, tmpdir, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));

	vfs_error_init(&err);
	ck_assert_int_eq(
		cfg_load_file(&cfg,
			      write_file("nul.conf", "[vfsd]\n\0x\n", 10, 0600),
			      &err),
		-EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "contains a NUL byte"));
	ck_assert_uint_eq(cfg.nmounts, 0);
}
END_TEST

START_TEST(test_load_file_names_line)
{
	const char *text = "[vfsd]\n\n[mount /a]\nurl=/x\nreadonly=2\n";
	const char *path = write_file("bad.conf", text, strlen(text), 0600);
	char want[256];

	ck_assert_int_eq(cfg_load_file(&cfg, path, &err), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:5: readonly must be yes or no, not '2'", path);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

/* ---- -m mappings ------------------------------------------------------- */

START_TEST(test_mapping)
{
	ck_assert_int_eq(cfg_add_mapping(&cfg, "/data=file:///srv/data", &err),
			 0);
	ck_assert_int_eq(
		cfg_add_mapping(&cfg, "//nfs/=sftp://h/e?connections=2", &err),
		0);
	ck_assert_uint_eq(cfg.nmounts, 2);
	ck_assert_str_eq(cfg.mounts[0].prefix, "/data");
	ck_assert_str_eq(cfg.mounts[0].url, "file:///srv/data");
	ck_assert_str_eq(cfg.mounts[0].where, "-m");
	ck_assert(!cfg.mounts[0].readonly);
	ck_assert_uint_eq(cfg.mounts[0].opts.n, 0);
	/* the first '=' splits; the URL keeps its own */
	ck_assert_str_eq(cfg.mounts[1].prefix, "/nfs");
	ck_assert_str_eq(cfg.mounts[1].url, "sftp://h/e?connections=2");
	ck_assert_int_eq(cfg_validate(&cfg, &err), 0);
}
END_TEST

static const struct {
	const char *arg, *msg;
} bad_mappings[] = {
	{"/data",
	 "-m '/data': expected PREFIX=URL, e.g. /data=file:///srv/data"},
	{"=/srv", "-m '=/srv': expected PREFIX=URL"},
	{"/data=", "-m '/data=': expected PREFIX=URL"},
	{"data=/srv",
	 "-m: mount prefix 'data' must be an absolute path without '..'"},
	{"/a/../b=/srv", "-m: mount prefix '/a/../b' must be an absolute path"},
	/* the prefix rules are the config file's and vfsctl's */
	{"/a\nb=/srv", "-m: mount prefix '/a\\x0ab' contains a control "
		       "character"},
	{"/.vfsd/x=/srv", "-m: mount prefix '/.vfsd/x' lies in /.vfsd, "
			  "vfsd's own directory"},
	{"//.vfsd=/srv", "-m: mount prefix '//.vfsd' lies in /.vfsd"},
	/* a URL without its PREFIX= is not echoed with its password */
	{"sftp://u:hunter2@h/x", "-m 'sftp://u:***@h/x': expected PREFIX=URL"},
	{"sftp://h/x?password=hunter2",
	 "-m: mount prefix 'sftp://h/x?password' must be an absolute path"},
	{"sftp://u:hunter2@h/x?password",
	 "-m 'sftp://u:***@h/x?password': expected PREFIX=URL"},
};

START_TEST(test_bad_mapping)
{
	ck_assert_int_eq(cfg_add_mapping(&cfg, bad_mappings[_i].arg, &err),
			 -EINVAL);
	ck_assert_int_eq(err.code, EINVAL);
	ck_assert_msg(strncmp(err.msg, bad_mappings[_i].msg,
			      strlen(bad_mappings[_i].msg)) == 0,
		      "'%s' vs '%s'", err.msg, bad_mappings[_i].msg);
}
END_TEST

/* ---- cfg_validate ------------------------------------------------------- */

START_TEST(test_validate_nothing)
{
	validate_bad(EINVAL, "configuration: no [mount] sections");
}
END_TEST

START_TEST(test_validate_duplicate_prefix)
{
	load_ok("[mount /a]\nurl=/x\n\n[mount //a/.]\nurl=/y\n");
	validate_bad(EINVAL,
		     "test.conf:4: prefix /a is already mapped at test.conf:1");
}
END_TEST

START_TEST(test_validate_duplicate_mapping)
{
	load_ok("[mount /a]\nurl=/x\n");
	ck_assert_int_eq(cfg_add_mapping(&cfg, "/a/=/y", &err), 0);
	validate_bad(EINVAL, "-m: prefix /a is already mapped at test.conf:1");
}
END_TEST

START_TEST(test_validate_unknown_scheme)
{
	load_ok("[mount /a]\nurl=/x\n[mount /f]\n\nurl = ftp://h/pub\n");
	validate_bad(EPROTONOSUPPORT,
		     "test.conf:3: [mount /f]: unknown URL scheme 'ftp' in "
		     "'ftp://h/pub' (known: file, sftp, nfs)");
}
END_TEST

START_TEST(test_validate_unknown_scheme_mapping)
{
	ck_assert_int_eq(cfg_add_mapping(&cfg, "/w=webdav://h/x", &err), 0);
	validate_bad(EPROTONOSUPPORT,
		     "-m: [mount /w]: unknown URL scheme 'webdav'");
}
END_TEST

START_TEST(test_validate_bad_url)
{
	load_ok("[mount /a]\nurl = relative/dir\n");
	validate_bad(EINVAL, "test.conf:1: [mount /a]: 'relative/dir': not an "
			     "absolute path or a URL");
}
END_TEST

START_TEST(test_validate_truncated_url)
{
	/* regression (fuzz_config): "file" was read past its end */
	load_ok("[mount /a]\nurl = file\n");
	validate_bad(EINVAL,
		     "test.conf:1: [mount /a]: 'file': not an absolute path");
}
END_TEST

START_TEST(test_validate_option_names_line)
{
	/* regression: the line was right but the file was called "config"
	 * for text loaded by cfg_load_string() */
	load_ok("[mount /a]\nurl=/x\n\n# ttl\ncache_ttl = 99999\n");
	validate_bad(EINVAL, "test.conf:5: [mount /a]: option 'cache_ttl' must "
			     "be a whole number from 0 to 3600, not '99999'");
}
END_TEST

START_TEST(test_validate_unknown_option)
{
	load_ok("[mount /a]\nurl=/x\ncache_ttl=5\n[mount /b]\nurl=/y\ncolour = "
		"red\n");
	validate_bad(EINVAL,
		     "test.conf:6: [mount /b]: unknown option 'colour'");
}
END_TEST

START_TEST(test_validate_url_option)
{
	/* options in the URL are checked too, naming the section */
	load_ok("[mount /a]\nurl = file:///x?cache_ttl=-1\n");
	validate_bad(EINVAL, "test.conf:1: [mount /a]: option 'cache_ttl' must "
			     "be a whole number");
}
END_TEST

START_TEST(test_validate_option_for_other_backend)
{
	/* sftp's options mean nothing to the file backend */
	load_ok("[mount /a]\nurl=/x\nconnections = 4\n");
	validate_bad(EINVAL,
		     "test.conf:3: [mount /a]: unknown option 'connections'");
}
END_TEST

START_TEST(test_validate_secret_in_url)
{
	const char *scheme, *key;
	char arg[256], want[256];

	if (!find_secret(&scheme, &key))
		return; /* no backend declares a secret option */
	snprintf(arg, sizeof(arg), "/h=%s://u@h/x?%s=hunter2", scheme, key);
	ck_assert_int_eq(cfg_add_mapping(&cfg, arg, &err), 0);
	snprintf(want, sizeof(want), "-m: [mount /h]: option '%s' is a secret",
		 key);
	validate_bad(EINVAL, want);
	ck_assert_ptr_null(strstr(err.msg, "hunter2"));
}
END_TEST

START_TEST(test_validate_password_in_url)
{
	load_ok("[mount /h]\nurl = sftp://u:hunter2@h/x\n");
	validate_bad(EINVAL, "test.conf:1: [mount /h]: sftp://u:***@h/x: "
			     "passwords in URLs are refused");
	ck_assert_ptr_null(strstr(err.msg, "hunter2"));
}
END_TEST

/*
 * A malformed URL that carries a password is quoted without it, wherever
 * the parser stops (regression: the whole URL was echoed on stderr and, on
 * reload, into syslog).
 */
static const char *const leaky_urls[] = {
	"sftp://h/x?password=hunter2&bad",
	"sftp://h/x?bad&password=hunter2",
	"sftp://h/x?password=hunter2%zz",
	"sftp://h/x?Pass%77ord=hunter2&=oops",
	"sftp://h:99999/x?password=hunter2",
	"sftp://h/x/../y?password=hunter2",
	"sftp://h[/x?password=hunter2",
	"sftp:/h/x?password=hunter2",
	"sftp://u:hunter2@h/x",
	"sftp://u:hun@ter2@h/x",
	"sftp://u:hunter2@[::1/x",
	"gopher://h/x?passphrase=hunter2",
	"sftp://h/x?token=hunter2&bad",
	"nfs://h/e%zz?password=hunter2",
};

START_TEST(test_validate_malformed_url_hides_password)
{
	char text[256];

	snprintf(text, sizeof(text), "[mount /h]\nurl = %s\n", leaky_urls[_i]);
	load_ok(text);
	ck_assert_int_lt(cfg_validate(&cfg, &err), 0);
	ck_assert_msg(strncmp(err.msg, "test.conf:1: [mount /h]: ", 25) == 0,
		      "%s", err.msg);
	ck_assert_msg(!strstr(err.msg, "hunter2") && !strstr(err.msg, "ter2"),
		      "'%s' leaks: %s", leaky_urls[_i], err.msg);
	ck_assert_ptr_nonnull(strstr(err.msg, "***"));
}
END_TEST

/* allow_other without default_permissions: refused as root, unless asked
 * for; a warning otherwise */
START_TEST(test_fuse_opts)
{
	const char *warning;

	/* nothing to say */
	ck_assert_int_eq(cfg_check_fuse_opts(NULL, true, false, &warning, &err),
			 0);
	ck_assert_ptr_null(warning);
	ck_assert_int_eq(cfg_check_fuse_opts("allow_other,default_permissions",
					     true, false, &warning, &err),
			 0);
	ck_assert_ptr_null(warning);
	ck_assert_int_eq(
		cfg_check_fuse_opts("default_permissions,ro,allow_other", true,
				    false, &warning, &err),
		0);
	ck_assert_int_eq(cfg_check_fuse_opts("ro,allow_other_x", true, false,
					     &warning, &err),
			 0);
	ck_assert_ptr_null(warning);
	ck_assert_int_eq(err.code, 0);

	/* read as libfuse reads them: escapes do not hide allow_other, nor
	 * does an escaped comma make a default_permissions item */
	ck_assert(cfg_fuse_opt_present("ro,allow\\_other", "allow_other"));
	ck_assert(cfg_fuse_opt_present("allow\\137other", "allow_other"));
	ck_assert(!cfg_fuse_opt_present("fsname=x\\,default_permissions",
					"default_permissions"));
	ck_assert(!cfg_fuse_opt_present("allow_other\\000x", "allow_other"));
	ck_assert(cfg_fuse_opt_present(",allow_other,", "allow_other"));
	ck_assert(!cfg_fuse_opt_present("allow_other\\", "allow_other"));

	vfs_error_init(&err);
	ck_assert_int_eq(cfg_check_fuse_opts("allow\\_other", true, false,
					     &warning, &err),
			 -EPERM);

	/* root: refused, saying why and how to fix it */
	vfs_error_init(&err);
	ck_assert_int_eq(cfg_check_fuse_opts("ro,allow_other", true, false,
					     &warning, &err),
			 -EPERM);
	ck_assert_ptr_null(warning);
	ck_assert_int_eq(err.code, EPERM);
	ck_assert_ptr_nonnull(strstr(err.msg, "allow_other without "
					      "default_permissions is refused "
					      "when vfsd runs as root"));
	ck_assert_ptr_nonnull(strstr(err.msg, "any local user"));
	ck_assert_ptr_nonnull(strstr(err.msg, "root rights"));
	ck_assert_ptr_nonnull(strstr(err.msg, "Add -o default_permissions"));
	ck_assert_ptr_nonnull(strstr(err.msg, "--allow-other-unchecked"));
	/* the whole message fits */
	ck_assert_ptr_nonnull(strstr(err.msg, "truly meant"));

	/* root, asked for: allowed, with a warning */
	vfs_error_init(&err);
	ck_assert_int_eq(
		cfg_check_fuse_opts("allow_other", true, true, &warning, &err),
		0);
	ck_assert_int_eq(err.code, 0);
	ck_assert_ptr_nonnull(warning);
	ck_assert_ptr_nonnull(strstr(warning, "root's rights"));

	/* not root: allowed, with a warning */
	ck_assert_int_eq(cfg_check_fuse_opts("allow_other", false, false,
					     &warning, &err),
			 0);
	ck_assert_int_eq(err.code, 0);
	ck_assert_ptr_nonnull(warning);
	ck_assert_ptr_nonnull(strstr(warning, "add -o default_permissions"));
}
END_TEST

START_TEST(test_allow_other_unchecked_key)
{
	load_ok("[vfsd]\nallow_other_unchecked = yes\n[mount /a]\nurl=/x\n");
	ck_assert(cfg.allow_other_unchecked);
	load_bad("[vfsd]\nallow_other_unchecked = maybe\n",
		 "test.conf:2: allow_other_unchecked must be yes or no, not "
		 "'maybe'");
	load_bad("[vfsd]\nallow_other_unchecked = no\nallow_other_unchecked = "
		 "no\n",
		 "test.conf:3: duplicate key 'allow_other_unchecked'");
}
END_TEST

START_TEST(test_prefix_rules)
{
	char text[6000];

	load_bad(
		"[mount /.vfsd]\nurl=/x\n",
		"test.conf:1: mount prefix '/.vfsd' lies in /.vfsd, vfsd's own "
		"directory");
	load_bad("[mount /.vfsd/x]\nurl=/x\n",
		 "test.conf:1: mount prefix '/.vfsd/x' lies in /.vfsd, vfsd's "
		 "own directory");
	load_bad("[mount /a\tb]\nurl=/x\n",
		 "test.conf:1: mount prefix '/a\\x09b' contains a control "
		 "character");
	cfg_free(&cfg);
	vfs_error_init(&err);
	load_ok("[mount /.vfsdx]\nurl=/x\n[mount /a/.vfsd]\nurl=/y\n");
	ck_assert_str_eq(cfg.mounts[0].prefix, "/.vfsdx");
	ck_assert_str_eq(cfg.mounts[1].prefix, "/a/.vfsd");
	/* a component longer than NAME_MAX (the listing of its parent would
	 * fail with EIO) */
	cfg_free(&cfg);
	memset(&cfg, 0, sizeof(cfg));
	memset(text, 'c', sizeof(text));
	text[0] = '/';
	text[257] = '=';
	strcpy(text + 258, "/srv");
	ck_assert_int_eq(cfg_add_mapping(&cfg, text, &err), -ENAMETOOLONG);
	ck_assert_msg(strncmp(err.msg, "-m: mount prefix '/ccc", 22) == 0, "%s",
		      err.msg);
	ck_assert_ptr_nonnull(strstr(err.msg, "...' has a component longer "
					      "than 255 bytes"));
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_valid);
	tcase_add_test(tc, test_defaults_and_crlf);
	tcase_add_test(tc, test_two_sources_add_up);
	tcase_add_test(tc, test_vfsd_section);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unknown_section);
	tcase_add_test(tc, test_unknown_section_case);
	tcase_add_test(tc, test_qos_sections);
	tcase_add_test(tc, test_qos_consistency);
	tcase_add_test(tc, test_malformed_section);
	tcase_add_test(tc, test_key_outside_section);
	tcase_add_test(tc, test_bad_prefix);
	tcase_add_test(tc, test_dotdot_prefix);
	tcase_add_test(tc, test_duplicate_url);
	tcase_add_test(tc, test_duplicate_option);
	tcase_add_test(tc, test_duplicate_readonly);
	tcase_add_test(tc, test_duplicate_every_mount_key);
	tcase_add_test(tc, test_prefix_rules);
	tcase_add_test(tc, test_allow_other_unchecked_key);
	tcase_add_test(tc, test_duplicate_vfsd_key);
	tcase_add_test(tc, test_bad_vfsd_keys);
	tcase_add_test(tc, test_bad_host_id);
	tcase_add_test(tc, test_check_host_id);
	tcase_add_test(tc, test_fuse_opts);
	tcase_add_test(tc, test_unknown_vfsd_key);
	tcase_add_test(tc, test_missing_url);
	tcase_add_test(tc, test_bad_readonly);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_overlong_line);
	tcase_add_test(tc, test_first_error_wins);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_load_file_private);
	tcase_add_test(tc, test_load_file_open);
	tcase_add_test(tc, test_load_file_secret_in_open_file);
	tcase_add_test(tc, test_load_file_errors);
	tcase_add_test(tc, test_load_file_names_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("mapping");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mapping);
	tcase_add_loop_test(tc, test_bad_mapping, 0,
			    sizeof(bad_mappings) / sizeof(bad_mappings[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("validate");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_validate_nothing);
	tcase_add_test(tc, test_validate_duplicate_prefix);
	tcase_add_test(tc, test_validate_duplicate_mapping);
	tcase_add_test(tc, test_validate_unknown_scheme);
	tcase_add_test(tc, test_validate_unknown_scheme_mapping);
	tcase_add_test(tc, test_validate_bad_url);
	tcase_add_test(tc, test_validate_truncated_url);
	tcase_add_test(tc, test_validate_option_names_line);
	tcase_add_test(tc, test_validate_unknown_option);
	tcase_add_test(tc, test_validate_url_option);
	tcase_add_test(tc, test_validate_option_for_other_backend);
	tcase_add_test(tc, test_validate_secret_in_url);
	tcase_add_test(tc, test_validate_password_in_url);
	tcase_add_loop_test(tc, test_validate_malformed_url_hides_password, 0,
			    sizeof(leaky_urls) / sizeof(leaky_urls[0]));
	suite_add_tcase(s, tc);
	return s;
}
