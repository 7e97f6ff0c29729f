/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_router.c - unit tests for the router (vfsd/router.h, router_*.c)
 * through the real local backend on temporary directories: longest-prefix
 * routing, nested and "/" prefixes, virtual directories, EXDEV/EROFS/EBUSY
 * policy, mount table errors, removal with open files and inode numbers
 * across mounts.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/fault.h"
#include "vfsd/router.h"

Suite *router_suite(void);

/* low bits of a router st_ino: the backend's own inode number */
#define INO_LOW(ino) ((uint64_t)(ino) & ((1ULL << 56) - 1))

static char base[64];
static struct vfs_cred cred;

static void setup(void)
{
	ck_assert_int_eq(router_init(), 0);
	strcpy(base, "/tmp/vfsd-test-router.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
	cred = (struct vfs_cred){
		.uid = getuid(), .gid = getgid(), .pid = getpid()};
}

static void teardown(void)
{
	char cmd[128];

	router_shutdown();
	ck_assert_uint_eq(router_mount_count(), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	ck_assert_int_eq(system(cmd), 0);
}

/* base/rel as a new string (static ring, enough for one assertion). */
static const char *host(const char *rel)
{
	static char bufs[8][256];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", base, rel);
	return b;
}

static void mkdir_host(const char *rel)
{
	ck_assert_int_eq(mkdir(host(rel), 0755), 0);
}

static void write_host(const char *rel, const char *data)
{
	FILE *f = fopen(host(rel), "w");

	ck_assert_ptr_nonnull(f);
	fputs(data, f);
	ck_assert_int_eq(fclose(f), 0);
}

static ino_t host_ino(const char *rel)
{
	struct stat st;

	ck_assert_int_eq(lstat(host(rel), &st), 0);
	return st.st_ino;
}

static bool host_exists(const char *rel)
{
	struct stat st;

	return lstat(host(rel), &st) == 0;
}

/* Mount base/dir at prefix (a bare path: the file backend). */
static void add(const char *prefix, const char *dir, bool readonly)
{
	struct vfs_error err;
	int ret;

	vfs_error_init(&err);
	ret = router_add(prefix, host(dir), NULL, readonly,
			 ROUTER_ORIGIN_CMDLINE, &err);
	ck_assert_msg(ret == 0, "router_add %s: %s", prefix, err.msg);
}

/* router_getattr that must succeed. */
static struct stat attr(const char *path)
{
	struct stat st;
	int ret = router_getattr(path, &st);

	ck_assert_msg(ret == 0, "getattr %s: %s", path, strerror(-ret));
	return st;
}

static int collect(void *ctx, const char *name, const struct stat *st,
		   unsigned flags, off_t next)
{
	return vfs_dirbuf_add(ctx, name, st, flags) < 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const struct vfs_dirbuf_ent *)a)->name,
		      ((const struct vfs_dirbuf_ent *)b)->name);
}

/* The listing of a vfsd directory, sorted, as "a b c" (into *db too). */
static const char *list(const char *path, struct vfs_dirbuf *db)
{
	static char names[1024];
	struct router_dir *d;
	int ret;

	memset(db, 0, sizeof(*db));
	ret = router_opendir(path, &d);
	ck_assert_msg(ret == 0, "opendir %s: %s", path, strerror(-ret));
	ck_assert_int_eq(router_readdir(d, 0, collect, db), 0);
	router_releasedir(d);
	qsort(db->ents, db->n, sizeof(*db->ents), cmp_names);
	names[0] = '\0';
	for (size_t i = 0; i < db->n; i++) {
		if (i)
			strcat(names, " ");
		strcat(names, db->ents[i].name);
	}
	return names;
}

static const struct stat *entry(const struct vfs_dirbuf *db, const char *name)
{
	for (size_t i = 0; i < db->n; i++)
		if (strcmp(db->ents[i].name, name) == 0)
			return &db->ents[i].st;
	ck_abort_msg("no entry '%s'", name);
	return NULL;
}

/* Read all of a vfsd file into a static buffer. */
static const char *read_all(const char *path)
{
	static char buf[256];
	struct router_file *f;
	ssize_t n;
	int ret = router_open(path, O_RDONLY, &f);

	ck_assert_msg(ret == 0, "open %s: %s", path, strerror(-ret));
	n = router_read(f, buf, sizeof(buf) - 1, 0);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	router_release(f);
	return buf;
}

static int create(const char *path)
{
	struct router_file *f;
	struct stat st;
	int ret = router_create(path, O_WRONLY | O_EXCL, 0644, &cred, &f, &st);

	if (ret == 0)
		router_release(f);
	return ret;
}

/* ---- Routing ------------------------------------------------------------ */

START_TEST(test_longest_prefix)
{
	struct router_file *f;
	struct stat st;

	mkdir_host("a");
	mkdir_host("b");
	write_host("a/f", "from a");
	mkdir_host("a/archive");
	write_host("a/archive/f", "shadowed");
	write_host("b/g", "from b");
	add("/data", "a", false);
	add("/data/archive", "b", false);

	st = attr("/data/f");
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("a/f"));
	ck_assert_str_eq(read_all("/data/f"), "from a");

	st = attr("/data/archive/g");
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("b/g"));
	ck_assert_str_eq(read_all("/data/archive/g"), "from b");
	/* the nested mount hides what lies beneath it in the outer one */
	ck_assert_int_eq(router_getattr("/data/archive/f", &st), -ENOENT);
	st = attr("/data/archive");
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("b"));

	/* new names go to the mount that owns them */
	ck_assert_int_eq(create("/data/archive/new"), 0);
	ck_assert(host_exists("b/new"));
	ck_assert(!host_exists("a/archive/new"));
	/* a prefix matches whole components only */
	ck_assert_int_eq(create("/data/archivex"), 0);
	ck_assert(host_exists("a/archivex"));
	ck_assert(!host_exists("bx"));

	/* writes reach the right file */
	ck_assert_int_eq(router_open("/data/archive/g", O_WRONLY, &f), 0);
	ck_assert_int_eq(router_write(f, "B!", 2, 0), 2);
	router_release(f);
	ck_assert_str_eq(read_all("/data/archive/g"), "B!om b");
	ck_assert_str_eq(read_all("/data/f"), "from a");

	ck_assert_int_eq(router_getattr("/dat", &st), -ENOENT);
	ck_assert_int_eq(router_getattr("/datax", &st), -ENOENT);
}
END_TEST

START_TEST(test_nested_prefixes)
{
	struct vfs_dirbuf db;
	struct stat st;

	mkdir_host("a");
	mkdir_host("b");
	mkdir_host("c");
	write_host("a/top", "");
	write_host("c/deep", "deep");
	add("/n", "a", false);
	add("/n/x/y/z", "c", false);
	add("/n/x/y", "b", false);

	/* a/x does not exist: /n/x only leads to /n/x/y */
	st = attr("/n/x");
	ck_assert_uint_eq(st.st_mode, S_IFDIR | 0555);
	ck_assert_str_eq(list("/n", &db), ". .. top x");
	ck_assert_uint_eq(entry(&db, "x")->st_mode, S_IFDIR | 0555);
	vfs_dirbuf_clear(&db);
	ck_assert_str_eq(list("/n/x", &db), ". .. y");
	ck_assert_uint_eq(INO_LOW(entry(&db, "y")->st_ino), host_ino("b"));
	vfs_dirbuf_clear(&db);
	ck_assert_str_eq(list("/n/x/y", &db), ". .. z");
	vfs_dirbuf_clear(&db);

	st = attr("/n/x/y/z");
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("c"));
	ck_assert_str_eq(read_all("/n/x/y/z/deep"), "deep");
	/* nothing can be created in a virtual directory, even one that lies
	 * in a writable mount (the router answers -ENOENT from the backend
	 * here, where -EROFS as in other virtual directories would be
	 * clearer) */
	ck_assert_int_lt(create("/n/x/new"), 0);
	ck_assert(!host_exists("a/x"));
}
END_TEST

START_TEST(test_real_dir_on_the_way)
{
	struct vfs_dirbuf db;
	struct stat st;

	mkdir_host("a");
	mkdir_host("b");
	ck_assert_int_eq(mkdir(host("a/x"), 0750), 0);
	write_host("a/x/real", "r");
	add("/n", "a", false);
	add("/n/x/y", "b", false);

	/* a directory that exists in the outer mount is the real one, its
	 * entries merged with the child prefix */
	st = attr("/n/x");
	ck_assert_uint_eq(st.st_mode, S_IFDIR | 0750);
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("a/x"));
	ck_assert_str_eq(list("/n/x", &db), ". .. real y");
	ck_assert_uint_eq(INO_LOW(entry(&db, "real")->st_ino),
			  host_ino("a/x/real"));
	ck_assert_uint_eq(INO_LOW(entry(&db, "y")->st_ino), host_ino("b"));
	vfs_dirbuf_clear(&db);
	ck_assert_int_eq(create("/n/x/new"), 0);
	ck_assert(host_exists("a/x/new"));
}
END_TEST

START_TEST(test_root_mapped)
{
	struct vfs_dirbuf db;
	struct statvfs sv;
	struct stat st;

	mkdir_host("a");
	mkdir_host("b");
	write_host("a/top", "t");
	mkdir_host("a/m");
	write_host("a/m/hidden", "h");
	write_host("b/inner", "i");
	add("/", "a", false);
	add("/m", "b", false);

	st = attr("/");
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("a"));
	ck_assert_uint_eq(st.st_mode & S_IFMT, S_IFDIR);
	ck_assert_str_eq(read_all("/top"), "t");

	/* "m" is listed once, as the mounted root it is */
	ck_assert_str_eq(list("/", &db), ". .. m top");
	ck_assert_uint_eq(INO_LOW(entry(&db, "m")->st_ino), host_ino("b"));
	ck_assert_uint_eq(INO_LOW(entry(&db, "top")->st_ino),
			  host_ino("a/top"));
	vfs_dirbuf_clear(&db);
	ck_assert_str_eq(list("/m", &db), ". .. inner");
	vfs_dirbuf_clear(&db);
	ck_assert_int_eq(router_getattr("/m/hidden", &st), -ENOENT);

	ck_assert_int_eq(create("/new"), 0);
	ck_assert(host_exists("a/new"));
	ck_assert_int_eq(router_mkdir("/m", 0755, &cred, &st), -EEXIST);
	ck_assert_int_eq(router_statfs("/", &sv), 0);
	ck_assert_uint_gt(sv.f_bsize, 0);
}
END_TEST

/* ---- Virtual directories --------------------------------------------------
 */

START_TEST(test_virtual_dirs)
{
	struct router_file *f;
	struct vfs_dirbuf db;
	struct stat root, v, st;
	char buf[16];

	mkdir_host("a");
	write_host("a/f", "x");
	add("/v/w", "a", false);

	root = attr("/");
	ck_assert_uint_eq(root.st_mode, S_IFDIR | 0555);
	ck_assert_uint_eq(root.st_nlink, 2);
	ck_assert_uint_eq(root.st_uid, getuid());
	ck_assert_uint_eq(root.st_gid, getgid());
	v = attr("/v");
	ck_assert_uint_eq(v.st_mode, S_IFDIR | 0555);
	ck_assert_uint_ne(v.st_ino, root.st_ino);
	st = attr("/v/w");
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("a"));
	ck_assert_uint_ne(st.st_ino, v.st_ino);

	ck_assert_int_eq(router_getattr("/nope", &st), -ENOENT);
	ck_assert_int_eq(router_getattr("/v/nope", &st), -ENOENT);
	ck_assert_int_eq(router_getattr("/vv", &st), -ENOENT);

	ck_assert_str_eq(list("/", &db), ". .. v");
	ck_assert_uint_eq(entry(&db, "v")->st_ino, v.st_ino);
	vfs_dirbuf_clear(&db);
	ck_assert_str_eq(list("/v", &db), ". .. w");
	ck_assert_uint_eq(entry(&db, "w")->st_mode & S_IFMT, S_IFDIR);
	ck_assert_uint_eq(INO_LOW(entry(&db, "w")->st_ino), host_ino("a"));
	vfs_dirbuf_clear(&db);
	ck_assert_str_eq(list("/v/w", &db), ". .. f");
	vfs_dirbuf_clear(&db);

	ck_assert_int_eq(router_open("/v", O_RDONLY, &f), -EISDIR);
	ck_assert_int_eq(router_readlink("/v", buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(router_access("/v", R_OK | X_OK, &cred), 0);
	ck_assert_int_eq(router_access("/v", W_OK, &cred), -EROFS);
	ck_assert_int_eq(router_opendir("/nope", &(struct router_dir *){0}),
			 -ENOENT);
}
END_TEST

START_TEST(test_virtual_dir_offsets)
{
	struct router_dir *d;
	struct vfs_dirbuf all = {0}, tail = {0};

	mkdir_host("a");
	mkdir_host("b");
	mkdir_host("c");
	add("/p/one", "a", false);
	add("/p/two", "b", false);
	add("/p/three", "c", false);

	ck_assert_int_eq(router_opendir("/p", &d), 0);
	ck_assert_int_eq(router_readdir(d, 0, collect, &all), 0);
	ck_assert_uint_eq(all.n, 5);
	/* resuming from an entry's offset gives the ones after it */
	ck_assert_int_eq(router_readdir(d, 3, collect, &tail), 0);
	ck_assert_uint_eq(tail.n, 2);
	ck_assert_str_eq(tail.ents[0].name, all.ents[3].name);
	ck_assert_str_eq(tail.ents[1].name, all.ents[4].name);
	router_releasedir(d);
	vfs_dirbuf_clear(&all);
	vfs_dirbuf_clear(&tail);
}
END_TEST

/* ---- Policy ----------------------------------------------------------------
 */

START_TEST(test_exdev)
{
	struct router_file *fa, *fb;
	struct stat st;

	mkdir_host("a");
	mkdir_host("b");
	write_host("a/f", "data");
	add("/a", "a", false);
	add("/b", "b", false);
	add("/a2", "a", false); /* the same directory, another mount */

	ck_assert_int_eq(router_rename("/a/f", "/b/f", 0), -EXDEV);
	ck_assert_int_eq(router_rename("/a/f", "/a2/g", 0), -EXDEV);
	ck_assert_int_eq(router_link("/a/f", "/b/f", &st), -EXDEV);
	ck_assert_int_eq(router_link("/a/f", "/a2/g", &st), -EXDEV);
	ck_assert(host_exists("a/f"));
	ck_assert(!host_exists("b/f"));
	ck_assert(!host_exists("a/g"));

	ck_assert_int_eq(router_open("/a/f", O_RDONLY, &fa), 0);
	ck_assert_int_eq(create("/b/copy"), 0);
	ck_assert_int_eq(router_open("/b/copy", O_WRONLY, &fb), 0);
	ck_assert_int_eq(router_copy_range(fa, 0, fb, 0, 4, 0), -EXDEV);
	router_release(fa);
	router_release(fb);

	/* within one mount both work */
	ck_assert_int_eq(router_link("/a/f", "/a/hard", &st), 0);
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("a/f"));
	ck_assert_int_eq(router_rename("/a/f", "/a/g", 0), 0);
	ck_assert(host_exists("a/g"));
	ck_assert(!host_exists("a/f"));
}
END_TEST

START_TEST(test_erofs_readonly_mount)
{
	struct vfs_setattr sa = {.valid = VFS_SET_MODE, .mode = 0600};
	struct router_file *f;
	struct stat st;

	mkdir_host("a");
	mkdir_host("a/d");
	write_host("a/f", "data");
	ck_assert_int_eq(chmod(host("a/f"), 0644), 0);
	add("/ro", "a", true);

	ck_assert_int_eq(create("/ro/new"), -EROFS);
	ck_assert_int_eq(router_mkdir("/ro/nd", 0755, &cred, &st), -EROFS);
	ck_assert_int_eq(
		router_mknod("/ro/fifo", S_IFIFO | 0644, 0, &cred, &st),
		-EROFS);
	ck_assert_int_eq(router_symlink("f", "/ro/l", &cred, &st), -EROFS);
	ck_assert_int_eq(router_link("/ro/f", "/ro/h", &st), -EROFS);
	ck_assert_int_eq(router_unlink("/ro/f"), -EROFS);
	ck_assert_int_eq(router_rmdir("/ro/d"), -EROFS);
	ck_assert_int_eq(router_rename("/ro/f", "/ro/g", 0), -EROFS);
	ck_assert_int_eq(router_setattr("/ro/f", NULL, &sa, &st), -EROFS);
	ck_assert_int_eq(router_setxattr("/ro/f", "user.x", "1", 1, 0), -EROFS);
	ck_assert_int_eq(router_removexattr("/ro/f", "user.x"), -EROFS);
	ck_assert_int_eq(router_open("/ro/f", O_WRONLY, &f), -EROFS);
	ck_assert_int_eq(router_open("/ro/f", O_RDWR, &f), -EROFS);
	ck_assert_int_eq(router_open("/ro/f", O_RDONLY | O_TRUNC, &f), -EROFS);
	ck_assert_int_eq(router_access("/ro/f", W_OK, &cred), -EROFS);
	ck_assert_int_eq(router_access("/ro/f", R_OK, &cred), 0);

	/* reading works; a read-only handle cannot be written through */
	ck_assert_int_eq(router_open("/ro/f", O_RDONLY, &f), 0);
	ck_assert_int_eq(router_write(f, "x", 1, 0), -EROFS);
	ck_assert_int_eq(router_fallocate(f, 0, 0, 4096), -EROFS);
	ck_assert_int_eq(router_setattr(NULL, f, &sa, &st), -EROFS);
	router_release(f);
	ck_assert_str_eq(read_all("/ro/f"), "data");

	/* nothing changed on disk */
	ck_assert(!host_exists("a/new"));
	ck_assert(!host_exists("a/g"));
	ck_assert_int_eq(lstat(host("a/f"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0644);
}
END_TEST

START_TEST(test_erofs_virtual_dir)
{
	struct vfs_setattr sa = {.valid = VFS_SET_MODE, .mode = 0700};
	struct stat st;

	mkdir_host("a");
	add("/v/w", "a", false);

	ck_assert_int_eq(router_mkdir("/v/new", 0755, &cred, &st), -EROFS);
	ck_assert_int_eq(router_mkdir("/new", 0755, &cred, &st), -EROFS);
	ck_assert_int_eq(create("/new"), -EROFS);
	ck_assert_int_eq(create("/v/new"), -EROFS);
	ck_assert_int_eq(router_symlink("/x", "/v/l", &cred, &st), -EROFS);
	ck_assert_int_eq(router_mknod("/v/p", S_IFIFO | 0600, 0, &cred, &st),
			 -EROFS);
	ck_assert_int_eq(router_unlink("/v/nothing"), -EROFS);
	ck_assert_int_eq(router_rename("/v/a", "/v/b", 0), -EROFS);
	ck_assert_int_eq(router_setattr("/v", NULL, &sa, &st), -EROFS);
	ck_assert_int_eq(router_setxattr("/v", "user.x", "1", 1, 0), -EROFS);
	ck_assert_int_eq(router_access("/", W_OK, &cred), -EROFS);
	/* a move out of a mount into a virtual directory */
	ck_assert_int_eq(router_rename("/v/w/x", "/v/x", 0), -EROFS);

	/* outside every mount and every virtual directory: nothing there */
	ck_assert_int_eq(router_mkdir("/zz/new", 0755, &cred, &st), -ENOENT);
	ck_assert(!host_exists("a/new"));
}
END_TEST

START_TEST(test_ebusy_mount_points)
{
	struct stat st;

	mkdir_host("a");
	mkdir_host("b");
	write_host("b/f", "");
	add("/v/w", "a", false);
	add("/m", "b", false);

	ck_assert_int_eq(router_rmdir("/m"), -EBUSY);
	ck_assert_int_eq(router_rmdir("/v/w"), -EBUSY);
	ck_assert_int_eq(router_rmdir("/v"), -EBUSY);
	ck_assert_int_eq(router_unlink("/m"), -EBUSY);
	ck_assert_int_eq(router_rename("/m", "/n", 0), -EBUSY);
	ck_assert_int_eq(router_rename("/v", "/n", 0), -EBUSY);
	ck_assert_int_eq(router_rename("/m/f", "/m", 0), -EBUSY);
	/* creating a name that is a mount point: it exists */
	ck_assert_int_eq(router_mkdir("/m", 0755, &cred, &st), -EEXIST);
	ck_assert_int_eq(create("/v"), -EEXIST);
	ck_assert_int_eq(router_link("/m/f", "/m", &st), -EEXIST);
	ck_assert(host_exists("b/f"));
	ck_assert(host_exists("b"));
	ck_assert_uint_eq(router_mount_count(), 2);
}
END_TEST

/* ---- The mount table
 * --------------------------------------------------------- */

START_TEST(test_duplicate_prefix)
{
	struct vfs_error err;
	struct stat st;

	mkdir_host("a");
	mkdir_host("b");
	write_host("a/f", "a");
	add("/d", "a", false);

	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/d/", host("b"), NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EEXIST);
	ck_assert_str_eq(err.msg, "mount /d: prefix is already mounted");
	vfs_error_init(&err);
	ck_assert_int_eq(router_add("//d/./", host("b"), NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EEXIST);
	ck_assert_uint_eq(router_mount_count(), 1);
	/* the first mount still serves */
	st = attr("/d/f");
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("a/f"));
}
END_TEST

START_TEST(test_add_errors)
{
	struct vfs_opts opts = {0};
	struct vfs_error err;
	char url[256];

	mkdir_host("a");
	write_host("file", "");

	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/x", "ftp://h/pub", NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EPROTONOSUPPORT);
	ck_assert_str_eq(err.msg, "mount /x: unknown URL scheme 'ftp' in "
				  "'ftp://h/pub' (known: file, sftp, nfs)");

	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/x", "rel/dir", NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'rel/dir'"));

	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/x", host("missing"), NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, host("missing")));

	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/x", host("file"), NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -ENOTDIR);

	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/x", "file://elsewhere/tmp", NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "file URLs take no host"));

	vfs_error_init(&err);
	snprintf(url, sizeof(url), "file://%s?cache_ttl=99999", host("a"));
	ck_assert_int_eq(
		router_add("/x", url, NULL, false, ROUTER_ORIGIN_CMDLINE, &err),
		-EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "mount /x: option 'cache_ttl'"));

	vfs_error_init(&err);
	vfs_opts_set(&opts, "colour", "red", VFS_ORIGIN_CONFIG);
	ck_assert_int_eq(router_add("/x", host("a"), &opts, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EINVAL);
	ck_assert_str_eq(err.msg, "mount /x: unknown option 'colour'");
	vfs_opts_clear(&opts);

	vfs_error_init(&err);
	ck_assert_int_eq(router_add("x", host("a"), NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "mount prefix 'x'"));
	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/a/..", host("a"), NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EINVAL);

	ck_assert_uint_eq(router_mount_count(), 0);
}
END_TEST

START_TEST(test_options_url_wins)
{
	struct vfs_opts opts = {0};
	struct vfs_error err;
	double attr_t, entry_t;
	char url[256];

	mkdir_host("a");
	mkdir_host("b");
	vfs_opts_set(&opts, "cache_ttl", "5", VFS_ORIGIN_CONFIG);
	snprintf(url, sizeof(url), "file://%s?cache_ttl=7", host("a"));
	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/u", url, &opts, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 0);
	ck_assert_int_eq(router_add("/c", host("b"), &opts, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 0);
	vfs_opts_clear(&opts);

	router_timeouts("/u/x", &attr_t, &entry_t, NULL);
	ck_assert_double_eq(attr_t, 7.0);
	ck_assert_double_eq(entry_t, 7.0);
	router_timeouts("/c", &attr_t, &entry_t, NULL);
	ck_assert_double_eq(attr_t, 5.0);
	/* outside every mount: the default */
	router_timeouts("/", &attr_t, &entry_t, NULL);
	ck_assert_double_eq(attr_t, 1.0);
}
END_TEST

START_TEST(test_distinct_ino)
{
	struct vfs_dirbuf db;
	struct stat one, two, three, r1, r2, root;

	mkdir_host("a");
	mkdir_host("b");
	write_host("a/f", "");
	write_host("b/f", "");
	add("/one", "a", false);
	add("/two", "a", false);
	add("/three", "b", false);

	one = attr("/one/f");
	two = attr("/two/f");
	three = attr("/three/f");
	/* one backend object, two mounts: two inode numbers */
	ck_assert_uint_ne(one.st_ino, two.st_ino);
	ck_assert_uint_eq(INO_LOW(one.st_ino), host_ino("a/f"));
	ck_assert_uint_eq(INO_LOW(two.st_ino), host_ino("a/f"));
	ck_assert_uint_ne(three.st_ino, one.st_ino);
	ck_assert_uint_ne(three.st_ino, two.st_ino);
	r1 = attr("/one");
	r2 = attr("/two");
	root = attr("/");
	ck_assert_uint_ne(r1.st_ino, r2.st_ino);
	ck_assert_uint_ne(root.st_ino, r1.st_ino);
	ck_assert_uint_ne(root.st_ino, r2.st_ino);

	/* readdir and getattr agree */
	list("/two", &db);
	ck_assert_uint_eq(entry(&db, "f")->st_ino, two.st_ino);
	vfs_dirbuf_clear(&db);
	list("/", &db);
	ck_assert_uint_eq(entry(&db, "one")->st_ino, r1.st_ino);
	ck_assert_uint_eq(entry(&db, "two")->st_ino, r2.st_ino);
	vfs_dirbuf_clear(&db);
}
END_TEST

/*
 * Mount ids go into the top byte of st_ino: more than 256 mounts added and
 * removed in turn must never give a live mount the id of another, and a
 * handle kept open across a forced removal keeps its mount's id taken.
 */
START_TEST(test_ids_never_collide)
{
	struct vfs_error err;
	struct router_file *f;
	struct stat keep, open_st, st;
	char prefix[32];

	mkdir_host("a");
	write_host("a/f", "");
	add("/keep", "a", false);
	keep = attr("/keep/f");
	/* the first mount's numbers are what they always were */
	ck_assert_uint_eq(keep.st_ino >> 56, 1);
	add("/open", "a", false);
	ck_assert_int_eq(router_open("/open/f", O_RDONLY, &f), 0);
	open_st = attr("/open/f");
	vfs_error_init(&err);
	ck_assert_int_eq(router_remove("/open", true, &err), 0);
	for (int i = 0; i < 600; i++) {
		snprintf(prefix, sizeof(prefix), "/t%d", i);
		add(prefix, "a", false);
		snprintf(prefix, sizeof(prefix), "/t%d/f", i);
		st = attr(prefix);
		ck_assert_msg(
			st.st_ino != keep.st_ino && st.st_ino != open_st.st_ino,
			"mount %d has the inode numbers of a live one", i);
		snprintf(prefix, sizeof(prefix), "/t%d", i);
		ck_assert_int_eq(router_remove(prefix, false, &err), 0);
	}
	router_release(f);

	/* at most 254 at once, then a clear refusal */
	for (int i = 1; i < 254; i++) {
		snprintf(prefix, sizeof(prefix), "/u%d", i);
		add(prefix, "a", false);
	}
	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/u254", host("a"), NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EMFILE);
	ck_assert_ptr_nonnull(strstr(err.msg, "too many mounts"));
	/* one removed, its id serves the next */
	ck_assert_int_eq(router_remove("/u7", false, &err), 0);
	add("/u254", "a", false);
	ck_assert_uint_ne(attr("/u254/f").st_ino, keep.st_ino);
}
END_TEST

START_TEST(test_file_io)
{
	struct router_file *f;
	struct stat st;
	char buf[32];

	mkdir_host("a");
	add("/a", "a", false);
	ck_assert_int_eq(
		router_create("/a/new", O_RDWR | O_EXCL, 0640, &cred, &f, &st),
		0);
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("a/new"));
	ck_assert_uint_eq(st.st_mode & S_IFMT, S_IFREG);
	ck_assert_int_eq(router_write(f, "hello", 5, 0), 5);
	ck_assert_int_eq(router_read(f, buf, sizeof(buf), 1), 4);
	ck_assert_mem_eq(buf, "ello", 4);
	ck_assert_int_eq(router_fgetattr(f, &st), 0);
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_uint_eq(INO_LOW(st.st_ino), host_ino("a/new"));
	/* a second reference keeps the handle */
	router_file_get(f);
	router_release(f);
	ck_assert_int_eq(router_fsync(f, true), 0);
	router_release(f);
	ck_assert_int_eq(create("/a/new"), -EEXIST);
	ck_assert_int_eq(router_unlink("/a/new"), 0);
	ck_assert(!host_exists("a/new"));
	ck_assert_int_eq(router_unlink("/a/new"), -ENOENT);
}
END_TEST

START_TEST(test_remove)
{
	struct vfs_error err;
	struct router_file *f;
	struct stat st;
	char buf[8];

	mkdir_host("b");
	write_host("b/f", "data");
	add("/m", "b", false);

	/* an open file keeps the mount unless forced */
	ck_assert_int_eq(router_open("/m/f", O_RDONLY, &f), 0);
	vfs_error_init(&err);
	ck_assert_int_eq(router_remove("/m", false, &err), -EBUSY);
	ck_assert_ptr_nonnull(strstr(err.msg, "1 file open"));
	ck_assert_uint_eq(router_mount_count(), 1);
	router_release(f);
	vfs_error_init(&err);
	ck_assert_int_eq(router_remove("/m/", false, &err), 0);
	ck_assert_uint_eq(router_mount_count(), 0);
	ck_assert_int_eq(router_getattr("/m/f", &st), -ENOENT);
	ck_assert_int_eq(router_remove("/m", false, &err), -ENOENT);
	vfs_error_init(&err);
	ck_assert_int_eq(router_remove("m", false, &err), -EINVAL);

	/* forced: the open file fails with EIO, and closes cleanly */
	add("/m", "b", false);
	ck_assert_int_eq(router_open("/m/f", O_RDONLY, &f), 0);
	ck_assert_int_eq(router_read(f, buf, sizeof(buf), 0), 4);
	ck_assert_mem_eq(buf, "data", 4);
	vfs_error_init(&err);
	ck_assert_int_eq(router_remove("/m", true, &err), 0);
	ck_assert_int_eq(router_read(f, buf, sizeof(buf), 0), -EIO);
	router_release(f);
	ck_assert_uint_eq(router_mount_count(), 0);
}
END_TEST

/* The I/O counters of the mount at `prefix`, for test_zerocopy. */
struct io_of {
	const char *prefix;
	uint64_t reads, writes, bytes_read, bytes_written, eio;
	int64_t inflight;
};

static void find_io(void *ctx, const struct router_view *v)
{
	struct io_of *c = ctx;

	if (strcmp(v->prefix, c->prefix) != 0)
		return;
	c->reads = atomic_load(&v->stats->ops[VOP_READ]);
	c->writes = atomic_load(&v->stats->ops[VOP_WRITE]);
	c->bytes_read = atomic_load(&v->stats->bytes_read);
	c->bytes_written = atomic_load(&v->stats->bytes_written);
	c->eio = atomic_load(&v->stats->errors[EIO]);
	c->inflight = atomic_load(&v->stats->inflight);
}

static struct io_of io_of(const char *prefix)
{
	struct io_of c = {.prefix = prefix};

	router_foreach(find_io, &c);
	return c;
}

/*
 * Zero-copy I/O is checked as router_read/router_write are (removed by
 * force, read-only mount, deadline) and counted in the same slots: a read
 * up to the end of the file, not the request.
 */
START_TEST(test_zerocopy)
{
	struct router_zerocopy zc;
	struct vfs_callctx saved;
	struct vfs_error err;
	struct router_file *f, *ro;
	struct io_of c;
	char buf[8];

	mkdir_host("z");
	write_host("z/f", "data");
	add("/z", "z", false);
	add("/zro", "z", true);

	ck_assert_int_eq(router_open("/z/f", O_RDWR, &f), 0);
	ck_assert_int_eq(router_zerocopy_begin(f, NULL, false, 4096, 0, &zc),
			 1);
	ck_assert_int_ge(zc.fd, 0);
	c = io_of("/z");
	ck_assert_int_eq(c.inflight, 1);
	ck_assert_int_eq(pread(zc.fd, buf, sizeof(buf), 0), 4);
	ck_assert_mem_eq(buf, "data", 4);
	router_zerocopy_end(&zc, 0);
	c = io_of("/z");
	ck_assert_uint_eq(c.reads, 1);
	ck_assert_uint_eq(c.bytes_read, 4); /* not the 4096 asked */
	ck_assert_int_eq(c.inflight, 0);
	/* past the end: nothing */
	ck_assert_int_eq(router_zerocopy_begin(f, NULL, false, 4096, 8192, &zc),
			 1);
	router_zerocopy_end(&zc, 0);
	ck_assert_uint_eq(io_of("/z").bytes_read, 4);

	ck_assert_int_eq(router_zerocopy_begin(f, NULL, true, 3, 4, &zc), 1);
	ck_assert_int_eq(pwrite(zc.fd, "abc", 3, 4), 3);
	router_zerocopy_end(&zc, 3);
	ck_assert_int_eq(router_zerocopy_begin(f, NULL, true, 3, 7, &zc), 1);
	router_zerocopy_end(&zc, -ENOSPC);
	c = io_of("/z");
	ck_assert_uint_eq(c.writes, 2);
	ck_assert_uint_eq(c.bytes_written, 3);
	ck_assert_str_eq(read_all("/z/f"), "dataabc");

	/* past the thread's deadline nothing is handed over */
	saved = vfs_callctx_push(1, false);
	ck_assert_int_eq(router_zerocopy_begin(f, NULL, true, 3, 0, &zc),
			 -ETIMEDOUT);
	vfs_callctx_pop(saved);

	/* a read-only mount's file is read, never written */
	ck_assert_int_eq(router_open("/zro/f", O_RDONLY, &ro), 0);
	ck_assert_int_eq(router_zerocopy_begin(ro, NULL, true, 1, 0, &zc),
			 -EROFS);
	ck_assert_int_eq(router_zerocopy_begin(ro, NULL, false, 1, 0, &zc), 1);
	router_zerocopy_end(&zc, 0);
	router_release(ro);

	/* removed by force: EIO, as router_read and router_write answer */
	vfs_error_init(&err);
	ck_assert_int_eq(router_remove("/z", true, &err), 0);
	ck_assert_int_eq(router_zerocopy_begin(f, NULL, false, 4, 0, &zc),
			 -EIO);
	ck_assert_int_eq(router_zerocopy_begin(f, NULL, true, 4, 0, &zc), -EIO);
	ck_assert_int_eq(router_read(f, buf, 4, 0), -EIO);
	ck_assert_int_eq(router_file_passthrough_fd(f), -1);
	router_release(f);
}
END_TEST

/* ---- the contract: mandatory members, answers for missing ones ---------- */

/* A backend of mandatory members only: one regular file "/f" of 4 bytes. */
static int fake_unmounts;

static void fake_unmount(struct vfs_mount *m)
{
	fake_unmounts++;
	free(m);
}

static int fake_statfs(struct vfs_mount *m, const char *path,
		       struct statvfs *st)
{
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	return 0;
}

static void fake_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = 7;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_size = 4;
}

static int fake_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	if (strcmp(path, "/f") != 0)
		return strcmp(path, "/") ? -ENOENT
					 : (fake_stat(st),
					    st->st_mode = S_IFDIR | 0755, 0);
	fake_stat(st);
	return 0;
}

static int fake_opendir(struct vfs_mount *m, const char *path,
			struct vfs_dir **out)
{
	*out = (struct vfs_dir *)m;
	return 0;
}

static int fake_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
			vfs_fill_fn fill, void *ctx)
{
	struct stat st;

	fake_stat(&st);
	if (off == 0)
		fill(ctx, "f", &st, 0, 1);
	return 0;
}

static void fake_releasedir(struct vfs_mount *m, struct vfs_dir *d)
{
}

static int fake_open(struct vfs_mount *m, const char *path, int flags,
		     struct vfs_file **out)
{
	*out = calloc(1, sizeof(**out));
	(*out)->host_fd = -1;
	return 0;
}

static ssize_t fake_read(struct vfs_file *f, void *buf, size_t size, off_t off)
{
	return 0;
}

static int fake_fgetattr(struct vfs_file *f, struct stat *st)
{
	fake_stat(st);
	return 0;
}

static int fake_release(struct vfs_file *f)
{
	free(f);
	return 0;
}

#define FAKE_OPS                                                               \
	.name = "fake", .unmount = fake_unmount, .statfs = fake_statfs,        \
	.getattr = fake_getattr, .opendir = fake_opendir,                      \
	.readdir = fake_readdir, .releasedir = fake_releasedir,                \
	.open = fake_open, .read = fake_read, .fgetattr = fake_fgetattr,       \
	.release = fake_release

static const struct vfs_backend_ops fake_ops = {FAKE_OPS};
static struct vfs_backend_ops fake_no_getattr, fake_no_fgetattr;

static struct vfs_mount *fake_new(const struct vfs_backend_ops *ops)
{
	struct vfs_mount *vm = calloc(1, sizeof(*vm));

	ck_assert_ptr_nonnull(vm);
	vm->ops = ops;
	return vm;
}

/* A table missing a mandatory member is refused when it is mounted, with
 * a message naming the backend and the member; nothing is mounted. */
START_TEST(test_mandatory_members)
{
	struct vfs_error err;
	struct stat st;

	fake_no_getattr = fake_no_fgetattr = fake_ops;
	fake_no_getattr.getattr = NULL;
	fake_no_fgetattr.fgetattr = NULL;
	fake_unmounts = 0;
	vfs_error_init(&err);
	ck_assert_int_eq(router_add_internal("/fk", fake_new(&fake_no_getattr),
					     true, &err),
			 -EINVAL);
	ck_assert_str_eq(err.msg, "backend fake: mandatory member 'getattr' "
				  "missing from its ops table");
	ck_assert_int_eq(fake_unmounts, 1);
	vfs_error_init(&err);
	ck_assert_int_eq(router_add_internal("/fk", fake_new(&fake_no_fgetattr),
					     true, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'fgetattr'"));
	ck_assert_int_eq(router_getattr("/fk", &st), -ENOENT);
	/* every built-in table passes, mount included */
	for (const struct vfs_backend_ops *const *b = backend_all; *b; b++) {
		vfs_error_init(&err);
		ck_assert_msg(router_ops_check(*b, true, &err) == 0, "%s",
			      err.msg);
	}
	/* an internal table needs no mount; one found by URL does */
	vfs_error_init(&err);
	ck_assert_int_eq(router_ops_check(&fake_ops, false, &err), 0);
	ck_assert_int_eq(router_ops_check(&fake_ops, true, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'mount'"));
}
END_TEST

/* A backend of mandatory members only: each optional operation gets the
 * one answer the router gives for it (rops[] in router_ops.c). */
START_TEST(test_missing_member_answers)
{
	struct vfs_error err;
	struct router_file *f;
	char buf[16];

	vfs_error_init(&err);
	ck_assert_int_eq(
		router_add_internal("/fk", fake_new(&fake_ops), true, &err), 0);
	ck_assert_int_eq(router_readlink("/fk/f", buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(router_getxattr("/fk/f", "user.a", buf, sizeof(buf)),
			 -EOPNOTSUPP);
	ck_assert_int_eq(router_listxattr("/fk/f", buf, sizeof(buf)), 0);
	ck_assert_int_eq(router_clone("/fk/f", "/fk/g", &err), -EROFS);
	ck_assert_int_eq(router_open("/fk/f", O_RDONLY, &f), 0);
	ck_assert_int_eq(router_flush(f), 0);
	ck_assert_int_eq(router_fsync(f, false), 0);
	/* emulated: the whole file is data */
	ck_assert_int_eq(router_lseek(f, 1, SEEK_DATA), 1);
	ck_assert_int_eq(router_lseek(f, 1, SEEK_HOLE), 4);
	ck_assert_int_eq(router_lseek(f, 4, SEEK_DATA), -ENXIO);
	/* internal mounts are read-only: mutations stop there first */
	ck_assert_int_eq(router_write(f, "x", 1, 0), -EROFS);
	ck_assert_int_eq(router_fallocate(f, 0, 0, 1), -EROFS);
	router_release(f);
	ck_assert_int_eq(router_open("/fk/f", O_WRONLY, &f), -EROFS);
	ck_assert_int_eq(router_setxattr("/fk/f", "user.a", "v", 1, 0), -EROFS);
	ck_assert_int_eq(router_mkdir("/fk/d", 0755, &cred, &(struct stat){0}),
			 -EROFS);
}
END_TEST

/* setxattr and removexattr answer what went wrong, not EROFS for all
 * (regression: a path under no mount gave EROFS) */
START_TEST(test_xattr_errors)
{
	mkdir_host("a");
	write_host("a/f", "");
	add("/m", "a", false);
	add("/ro", "a", true);
	ck_assert_int_eq(router_setxattr("/gone/f", "user.a", "v", 1, 0),
			 -ENOENT);
	ck_assert_int_eq(router_removexattr("/gone/f", "user.a"), -ENOENT);
	ck_assert_int_eq(router_setxattr("/ro/f", "user.a", "v", 1, 0), -EROFS);
	ck_assert_int_eq(router_removexattr("/ro/f", "user.a"), -EROFS);
	ck_assert_int_eq(router_removexattr("/m/f", "user.none"), -ENODATA);
}
END_TEST

/* ---- capability bits ---------------------------------------------------- */

/* The bits are the backend's, at the bottom of the mount's stack (under
 * the fault wrapper): a backend may change them while it runs. */
static int drop_caps(struct vfs_mount *vm, void *ctx)
{
	while (vm->lower)
		vm = vm->lower;
	vm->caps &= ~*(uint32_t *)ctx;
	return 0;
}

struct caps_of {
	const char *prefix;
	char list[256];
	uint64_t fallocates, mknods; /* backend calls counted */
};

static void find_caps(void *ctx, const struct router_view *v)
{
	struct caps_of *c = ctx;
	const char *names[ROUTER_CAPS_MAX];
	size_t n;

	if (strcmp(v->prefix, c->prefix) != 0)
		return;
	n = router_caps(v, names, ROUTER_CAPS_MAX);
	c->fallocates = atomic_load(&v->stats->ops[VOP_FALLOCATE]);
	c->mknods = atomic_load(&v->stats->ops[VOP_MKNOD]);
	c->list[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(c->list, ",");
		strcat(c->list, names[i]);
	}
}

/*
 * Capabilities are listed from the table's members and the instance's bits;
 * without VFS_CAP_PUNCH_HOLE / VFS_CAP_MKNOD the router answers EOPNOTSUPP
 * itself, the backend never asked (its counters stay at 0).
 */
START_TEST(test_caps)
{
	struct caps_of c = {.prefix = "/x"};
	struct vfs_error err;
	struct router_file *f;
	struct stat st;
	uint32_t drop = VFS_CAP_PUNCH_HOLE | VFS_CAP_MKNOD;
	char url[256];

	mkdir_host("a");
	write_host("a/f", "data");
	snprintf(url, sizeof(url), "fault+file://%s", host("a"));
	vfs_error_init(&err);
	ck_assert_int_eq(
		router_add("/x", url, NULL, false, ROUTER_ORIGIN_CMDLINE, &err),
		0);
	router_foreach(find_caps, &c);
	ck_assert_str_eq(c.list,
			 "symlink,hardlink,special_files,rename_exchange,xattr,"
			 "fallocate,punch_hole,seek_data,copy_range,stable_"
			 "fsync,stable_ino,acl_umask");

	ck_assert_int_eq(router_with_backend("/x", drop_caps, &drop, &err), 0);
	router_foreach(find_caps, &c);
	ck_assert_ptr_null(strstr(c.list, "punch_hole"));
	ck_assert_ptr_null(strstr(c.list, "special_files"));
	ck_assert_int_eq(router_open("/x/f", O_RDWR, &f), 0);
	ck_assert_int_eq(
		router_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 0, 2),
		-EOPNOTSUPP);
	ck_assert_int_eq(router_fallocate(f, 0, 0, 8), 0);
	router_release(f);
	ck_assert_int_eq(router_mknod("/x/fifo", S_IFIFO | 0644, 0, &cred, &st),
			 -EOPNOTSUPP);
	ck_assert_int_eq(router_mknod("/x/reg", S_IFREG | 0644, 0, &cred, &st),
			 0);
	ck_assert(!host_exists("a/fifo"));
	/* only the calls that were made are counted */
	router_foreach(find_caps, &c);
	ck_assert_uint_eq(c.fallocates, 1);
	ck_assert_uint_eq(c.mknods, 1);
}
END_TEST

/* ---- fault+ ------------------------------------------------------------- */

struct view_of {
	const char *prefix;
	char display[256], backend[32];
	bool passthrough;
};

static void find_view(void *ctx, const struct router_view *v)
{
	struct view_of *w = ctx;

	if (strcmp(v->prefix, w->prefix) != 0)
		return;
	snprintf(w->display, sizeof(w->display), "%s", v->display);
	snprintf(w->backend, sizeof(w->backend), "%s", v->backend);
	w->passthrough = v->passthrough;
}

/* vfsctl fault PREFIX WORDS... straight to the mount's backend */
static int fault_cmd(const char *prefix, const char *words,
		     struct vfs_error *err)
{
	char buf[256], *argv[16], *save = NULL, *out = NULL;
	size_t len = 0;
	struct fault_cmd c = {.prefix = prefix, .argv = argv, .err = err};
	int ret;

	snprintf(buf, sizeof(buf), "%s", words);
	for (char *w = strtok_r(buf, " ", &save); w && c.argc < 16;
	     w = strtok_r(NULL, " ", &save))
		argv[c.argc++] = w;
	c.out = open_memstream(&out, &len);
	ck_assert_ptr_nonnull(c.out);
	vfs_error_init(err);
	ret = router_with_backend(prefix, fault_command, &c, err);
	fclose(c.out);
	free(out);
	return ret;
}

START_TEST(test_fault_wrapper)
{
	struct view_of view = {.prefix = "/x"};
	struct vfs_error err;
	struct stat st;
	char url[256];

	mkdir_host("a");
	write_host("a/f", "data");
	snprintf(url, sizeof(url), "fault+file://%s", host("a"));
	vfs_error_init(&err);
	ck_assert_int_eq(
		router_add("/x", url, NULL, false, ROUTER_ORIGIN_CMDLINE, &err),
		0);
	add("/plain", "a", false);

	/* it says what it is, and never passes the kernel a host fd */
	router_foreach(find_view, &view);
	ck_assert_str_eq(view.backend, "fault+file");
	ck_assert_str_eq(view.display, url);
	ck_assert(!view.passthrough);

	/* no rule: the inner backend's answers */
	ck_assert_str_eq(read_all("/x/f"), "data");
	ck_assert_int_eq(fault_cmd("/x",
				   "add op=getattr path=/f error=EIO count=1",
				   &err),
			 0);
	ck_assert_int_eq(router_getattr("/x/f", &st), -EIO);
	ck_assert_int_eq(router_getattr("/x/f", &st), 0);
	ck_assert_int_eq(fault_cmd("/x", "add op=read error=ESTALE", &err), 0);
	ck_assert_int_eq(router_getattr("/x/f", &st), 0);
	{
		struct router_zerocopy zc;
		struct router_file *f;
		char buf[8];

		ck_assert_int_eq(router_open("/x/f", O_RDONLY, &f), 0);
		/* every read reaches the wrapper: no zero-copy path */
		ck_assert_int_eq(router_zerocopy_begin(f, NULL, false,
						       sizeof(buf), 0, &zc),
				 0);
		ck_assert_int_eq(router_read(f, buf, sizeof(buf), 0), -ESTALE);
		router_release(f);
	}
	ck_assert_int_eq(fault_cmd("/x", "clear", &err), 0);
	ck_assert_str_eq(read_all("/x/f"), "data");

	ck_assert_int_eq(fault_cmd("/x", "add op=read colour=red", &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'colour=red'"));
	ck_assert_int_eq(fault_cmd("/plain", "list", &err), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(err.msg, "not a fault+ mount"));
	ck_assert_int_eq(fault_cmd("/none", "list", &err), -ENOENT);

	/* the inner backend's options and errors */
	snprintf(url, sizeof(url), "fault+file://%s?colour=red", host("a"));
	vfs_error_init(&err);
	ck_assert_int_eq(
		router_add("/y", url, NULL, false, ROUTER_ORIGIN_CMDLINE, &err),
		-EINVAL);
	ck_assert_str_eq(err.msg, "mount /y: unknown option 'colour'");
	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/y", "fault+file:///nonexistent", NULL,
				    false, ROUTER_ORIGIN_CMDLINE, &err),
			 -ENOENT);
	vfs_error_init(&err);
	ck_assert_int_eq(router_add("/y", "fault+ftp://h/x", NULL, false,
				    ROUTER_ORIGIN_CMDLINE, &err),
			 -EPROTONOSUPPORT);
	ck_assert_uint_eq(router_mount_count(), 2);

	vfs_error_init(&err);
	ck_assert_int_eq(router_remove("/x", false, &err), 0);
}
END_TEST

Suite *router_suite(void)
{
	Suite *s = suite_create("router");
	TCase *tc;

	tc = tcase_create("routing");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_longest_prefix);
	tcase_add_test(tc, test_nested_prefixes);
	tcase_add_test(tc, test_real_dir_on_the_way);
	tcase_add_test(tc, test_root_mapped);
	tcase_add_test(tc, test_file_io);
	tcase_add_test(tc, test_zerocopy);
	suite_add_tcase(s, tc);

	tc = tcase_create("virtual");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_virtual_dirs);
	tcase_add_test(tc, test_virtual_dir_offsets);
	suite_add_tcase(s, tc);

	tc = tcase_create("policy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_exdev);
	tcase_add_test(tc, test_erofs_readonly_mount);
	tcase_add_test(tc, test_erofs_virtual_dir);
	tcase_add_test(tc, test_ebusy_mount_points);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_duplicate_prefix);
	tcase_add_test(tc, test_add_errors);
	tcase_add_test(tc, test_options_url_wins);
	tcase_add_test(tc, test_distinct_ino);
	tcase_add_test(tc, test_ids_never_collide);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_fault_wrapper);
	tcase_add_test(tc, test_mandatory_members);
	tcase_add_test(tc, test_missing_member_answers);
	tcase_add_test(tc, test_xattr_errors);
	tcase_add_test(tc, test_caps);
	suite_add_tcase(s, tc);
	return s;
}
