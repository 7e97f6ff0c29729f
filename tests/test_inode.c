/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_inode.c - unit tests for vfsd/inode.c: lookup counts and forget,
 * paths rebuilt after renames (RENAME_EXCHANGE included), unlinked and
 * replaced names, the open-handle registry and close-to-open stamps.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vfsd/inode.h"

Suite *inode_suite(void);

static void setup(void)
{
	ck_assert_int_eq(inode_table_init(), 0);
	ck_assert_uint_eq(inode_count(), 1);
}

static void teardown(void)
{
	inode_table_destroy();
}

/* What a backend reports for an object: its type and inode number. */
static struct stat obj(mode_t type, ino_t ino)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_mode = type | 0644;
	st.st_ino = ino;
	st.st_dev = 42;
	return st;
}

static uint64_t lookup(uint64_t parent, const char *name, mode_t type,
		       ino_t ino)
{
	struct stat st = obj(type, ino);
	int err = 0;
	uint64_t id = inode_lookup(parent, name, &st, &err);

	ck_assert_msg(id != 0, "lookup %s: %d", name, err);
	return id;
}

/* The path of node id, which must exist: compared with want. */
static void path_is(uint64_t id, const char *want)
{
	int err = 0;
	char *p = inode_path(id, &err);

	ck_assert_msg(p, "node %llu: error %d", (unsigned long long)id, err);
	ck_assert_str_eq(p, want);
	free(p);
}

/* inode_path(id) must fail with `code`. */
static void path_fails(uint64_t id, int code)
{
	int err = 0;
	char *p = inode_path(id, &err);

	ck_assert_msg(!p, "node %llu still at %s", (unsigned long long)id, p);
	ck_assert_int_eq(err, code);
}

/* ---- Lookup and forget ------------------------------------------------ */

START_TEST(test_root)
{
	int err = 0;
	char *p;

	path_is(INODE_ROOT, "/");
	p = inode_child_path(INODE_ROOT, "x", &err);
	ck_assert_str_eq(p, "/x");
	free(p);
	/* the root is never forgotten */
	inode_forget(INODE_ROOT, 100);
	path_is(INODE_ROOT, "/");
	ck_assert_uint_eq(inode_count(), 1);
	path_fails(12345, -ENOENT);
}
END_TEST

START_TEST(test_lookup_refcount)
{
	uint64_t a, again;

	a = lookup(INODE_ROOT, "a", S_IFREG, 10);
	ck_assert_uint_gt(a, INODE_ROOT);
	ck_assert_uint_eq(inode_count(), 2);
	again = lookup(INODE_ROOT, "a", S_IFREG, 10);
	ck_assert_uint_eq(again, a);
	ck_assert_uint_eq(inode_count(), 2);
	path_is(a, "/a");

	/* two lookups: the node survives one forget, not two */
	inode_forget(a, 1);
	path_is(a, "/a");
	inode_forget(a, 1);
	path_fails(a, -ENOENT);
	ck_assert_uint_eq(inode_count(), 1);

	/* ids are not reused */
	ck_assert_uint_gt(lookup(INODE_ROOT, "a", S_IFREG, 10), a);
}
END_TEST

START_TEST(test_forget_batch_and_excess)
{
	uint64_t a = lookup(INODE_ROOT, "a", S_IFREG, 10);

	lookup(INODE_ROOT, "a", S_IFREG, 10);
	lookup(INODE_ROOT, "a", S_IFREG, 10);
	inode_forget(a, 2);
	path_is(a, "/a");
	/* more than was looked up: gone, and nothing underflows */
	inode_forget(a, 5);
	path_fails(a, -ENOENT);
	inode_forget(a, 1);
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

START_TEST(test_children_pin_parents)
{
	uint64_t d, e, f;

	d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	e = lookup(d, "e", S_IFDIR, 2);
	f = lookup(e, "f", S_IFREG, 3);
	path_is(f, "/d/e/f");
	ck_assert_uint_eq(inode_count(), 4);

	/* the kernel forgets the directories first */
	inode_forget(d, 1);
	inode_forget(e, 1);
	path_is(d, "/d");
	path_is(e, "/d/e");
	path_is(f, "/d/e/f");
	ck_assert_uint_eq(lookup(d, "e", S_IFDIR, 2), e);
	inode_forget(e, 1);

	/* the last child going releases the chain */
	inode_forget(f, 1);
	ck_assert_uint_eq(inode_count(), 1);
	path_fails(d, -ENOENT);
	path_fails(e, -ENOENT);
}
END_TEST

START_TEST(test_lookup_unknown_parent)
{
	struct stat st = obj(S_IFREG, 1);
	int err = 0;

	ck_assert_uint_eq(inode_lookup(999, "x", &st, &err), 0);
	ck_assert_int_eq(err, -ENOENT);
	err = 0;
	ck_assert_ptr_null(inode_child_path(999, "x", &err));
	ck_assert_int_eq(err, -ENOENT);
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

START_TEST(test_child_path)
{
	uint64_t d = lookup(INODE_ROOT, "dir", S_IFDIR, 1);
	int err = 0;
	char *p = inode_child_path(d, "name with space", &err);

	ck_assert_str_eq(p, "/dir/name with space");
	free(p);
}
END_TEST

START_TEST(test_many_nodes)
{
	enum { N = 5000 };
	static uint64_t ids[N];
	uint64_t d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	char name[32], want[40];

	/* enough to make the hash tables grow several times */
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ids[i] = lookup(d, name, S_IFREG, 100 + i);
	}
	ck_assert_uint_eq(inode_count(), N + 2);
	for (int i = 0; i < N; i += 7) {
		snprintf(name, sizeof(name), "f%d", i);
		snprintf(want, sizeof(want), "/d/f%d", i);
		path_is(ids[i], want);
		ck_assert_uint_eq(lookup(d, name, S_IFREG, 100 + i), ids[i]);
		inode_forget(ids[i], 1);
	}
	for (int i = 0; i < N; i++)
		inode_forget(ids[i], 1);
	inode_forget(d, 1);
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

/* ---- Renames ------------------------------------------------------------ */

START_TEST(test_rename_file)
{
	uint64_t d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t e = lookup(INODE_ROOT, "e", S_IFDIR, 2);
	uint64_t f = lookup(d, "f", S_IFREG, 3);
	uint64_t f2;

	inode_rename(d, "f", e, "g", 0);
	path_is(f, "/e/g");
	/* the new name finds the same node, the old one a new node */
	ck_assert_uint_eq(lookup(e, "g", S_IFREG, 3), f);
	f2 = lookup(d, "f", S_IFREG, 4);
	ck_assert_uint_ne(f2, f);
	path_is(f2, "/d/f");

	/* renaming within a directory */
	inode_rename(e, "g", e, "h", 0);
	path_is(f, "/e/h");

	/* d lost its child f: once forgotten it is released with f2 */
	inode_forget(d, 1);
	path_is(d, "/d");
	inode_forget(f2, 1);
	path_fails(d, -ENOENT);
	path_is(f, "/e/h");
}
END_TEST

START_TEST(test_rename_dir_moves_subtree)
{
	uint64_t d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t s = lookup(d, "sub", S_IFDIR, 2);
	uint64_t f = lookup(s, "f", S_IFREG, 3);
	uint64_t z = lookup(INODE_ROOT, "z", S_IFDIR, 4);

	inode_rename(INODE_ROOT, "d", z, "moved", 0);
	path_is(d, "/z/moved");
	path_is(s, "/z/moved/sub");
	path_is(f, "/z/moved/sub/f");
	inode_rename(d, "sub", INODE_ROOT, "top", 0);
	path_is(f, "/top/f");
	path_is(d, "/z/moved");
}
END_TEST

START_TEST(test_rename_replaces_target)
{
	uint64_t a = lookup(INODE_ROOT, "a", S_IFREG, 1);
	uint64_t b = lookup(INODE_ROOT, "b", S_IFREG, 2);

	inode_rename(INODE_ROOT, "a", INODE_ROOT, "b", 0);
	path_is(a, "/b");
	/* the replaced object stays only for the kernel's references */
	path_fails(b, -ESTALE);
	ck_assert_uint_eq(inode_count(), 3);
	inode_forget(b, 1);
	path_fails(b, -ENOENT);
	ck_assert_uint_eq(inode_count(), 2);
	ck_assert_uint_eq(lookup(INODE_ROOT, "b", S_IFREG, 1), a);
}
END_TEST

START_TEST(test_rename_exchange)
{
	uint64_t d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t e = lookup(INODE_ROOT, "e", S_IFDIR, 2);
	uint64_t a = lookup(d, "a", S_IFREG, 3);
	uint64_t b = lookup(e, "b", S_IFDIR, 4);
	uint64_t c = lookup(b, "c", S_IFREG, 5);

	inode_rename(d, "a", e, "b", RENAME_EXCHANGE);
	path_is(a, "/e/b");
	path_is(b, "/d/a");
	path_is(c, "/d/a/c");
	ck_assert_uint_eq(lookup(e, "b", S_IFREG, 3), a);
	ck_assert_uint_eq(lookup(d, "a", S_IFDIR, 4), b);

	/* and back, within one directory */
	inode_rename(d, "a", d, "x", 0);
	inode_rename(d, "x", e, "b", RENAME_EXCHANGE);
	path_is(b, "/e/b");
	path_is(a, "/d/x");
	ck_assert_uint_eq(inode_count(), 6);
}
END_TEST

START_TEST(test_rename_unknown_names)
{
	uint64_t a = lookup(INODE_ROOT, "a", S_IFREG, 1);

	/* a rename of names the table never saw changes nothing */
	inode_rename(INODE_ROOT, "x", INODE_ROOT, "y", 0);
	path_is(a, "/a");
	/* an exchange with an unknown name moves the known one */
	inode_rename(INODE_ROOT, "x", INODE_ROOT, "a", RENAME_EXCHANGE);
	path_is(a, "/x");
	ck_assert_uint_eq(inode_count(), 2);
}
END_TEST

/* ---- Unlink and replaced objects ---------------------------------------- */

START_TEST(test_unlink_detaches)
{
	uint64_t d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t f = lookup(d, "f", S_IFREG, 2);
	uint64_t f2;
	int err = 0;

	inode_unlink(d, "f");
	path_fails(f, -ESTALE);
	ck_assert_ptr_null(inode_child_path(f, "x", &err));
	ck_assert_int_eq(err, -ESTALE);
	/* a new file of the same name is a new node */
	f2 = lookup(d, "f", S_IFREG, 3);
	ck_assert_uint_ne(f2, f);
	path_is(f2, "/d/f");
	/* the unlinked node stays until forgotten, then goes */
	ck_assert_uint_eq(inode_count(), 4);
	inode_forget(f, 1);
	ck_assert_uint_eq(inode_count(), 3);
	path_fails(f, -ENOENT);
	/* unlinking an unknown name is harmless */
	inode_unlink(d, "nothing");
	path_is(f2, "/d/f");
}
END_TEST

START_TEST(test_unlink_dir_stales_children)
{
	uint64_t d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t f = lookup(d, "f", S_IFREG, 2);

	inode_unlink(INODE_ROOT, "d");
	path_fails(d, -ESTALE);
	path_fails(f, -ESTALE);
	inode_forget(d, 1);
	path_fails(f, -ESTALE);
	inode_forget(f, 1);
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

START_TEST(test_replaced_object_new_id)
{
	uint64_t a = lookup(INODE_ROOT, "a", S_IFREG, 10), a2, a3;

	/* same name, same object: same node */
	ck_assert_uint_eq(lookup(INODE_ROOT, "a", S_IFREG, 10), a);
	/* another backend inode behind the name (replaced from outside) */
	a2 = lookup(INODE_ROOT, "a", S_IFREG, 11);
	ck_assert_uint_ne(a2, a);
	path_fails(a, -ESTALE);
	path_is(a2, "/a");
	/* another type with the same inode number */
	a3 = lookup(INODE_ROOT, "a", S_IFDIR, 11);
	ck_assert_uint_ne(a3, a2);
	ck_assert_uint_ne(a3, a);
	path_fails(a2, -ESTALE);
	path_is(a3, "/a");
	/* another device */
	{
		struct stat st = obj(S_IFDIR, 11);
		int err = 0;
		uint64_t a4;

		st.st_dev = 43;
		a4 = inode_lookup(INODE_ROOT, "a", &st, &err);
		ck_assert_uint_ne(a4, 0);
		ck_assert_uint_ne(a4, a3);
	}
	inode_forget(a, 2);
	inode_forget(a2, 1);
	ck_assert_uint_eq(inode_count(), 3);
}
END_TEST

/* ---- Handles and cache stamps ---------------------------------------------
 */

static int gets;

static void get_handle(void *h)
{
	gets++;
	ck_assert_ptr_nonnull(h);
}

START_TEST(test_handles)
{
	uint64_t f = lookup(INODE_ROOT, "f", S_IFREG, 1);
	int h1, h2;

	ck_assert_ptr_null(inode_handle_find(f, get_handle));
	ck_assert_int_eq(gets, 0);
	ck_assert_int_eq(inode_handle_add(f, &h1), 0);
	ck_assert_int_eq(inode_handle_add(f, &h2), 0);
	ck_assert_int_eq(inode_handle_add(777, &h1), -ENOENT);

	/* an open file stays reachable after its name is gone */
	inode_unlink(INODE_ROOT, "f");
	ck_assert_ptr_nonnull(inode_handle_find(f, get_handle));
	ck_assert_int_eq(gets, 1);

	inode_handle_del(f, &h2);
	ck_assert_ptr_eq(inode_handle_find(f, get_handle), &h1);
	inode_handle_del(f, &h2); /* not there any more: harmless */
	inode_handle_del(f, &h1);
	ck_assert_ptr_null(inode_handle_find(f, get_handle));
	ck_assert_int_eq(gets, 2);
	inode_handle_del(777, &h1);

	/* a node forgotten with handles registered frees them */
	ck_assert_int_eq(inode_handle_add(f, &h1), 0);
	inode_forget(f, 1);
	ck_assert_ptr_null(inode_handle_find(f, get_handle));
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

START_TEST(test_cache_stamp)
{
	uint64_t f = lookup(INODE_ROOT, "f", S_IFREG, 1);
	struct stat st = obj(S_IFREG, 1), other;

	st.st_size = 100;
	st.st_mtim.tv_sec = 1000;
	st.st_mtim.tv_nsec = 5;
	st.st_ctim.tv_sec = 1001;
	ck_assert(!inode_cache_still_valid(f, &st));
	inode_cache_stamp(f, &st);
	ck_assert(inode_cache_still_valid(f, &st));

	other = st;
	other.st_size = 101;
	ck_assert(!inode_cache_still_valid(f, &other));
	other = st;
	other.st_mtim.tv_nsec = 6;
	ck_assert(!inode_cache_still_valid(f, &other));
	other = st;
	other.st_ctim.tv_sec = 1002;
	ck_assert(!inode_cache_still_valid(f, &other));

	inode_cache_invalidate(f);
	ck_assert(!inode_cache_still_valid(f, &st));
	ck_assert(!inode_cache_still_valid(999, &st));
}
END_TEST

Suite *inode_suite(void)
{
	Suite *s = suite_create("inode");
	TCase *tc;

	tc = tcase_create("lookup");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_root);
	tcase_add_test(tc, test_lookup_refcount);
	tcase_add_test(tc, test_forget_batch_and_excess);
	tcase_add_test(tc, test_children_pin_parents);
	tcase_add_test(tc, test_lookup_unknown_parent);
	tcase_add_test(tc, test_child_path);
	tcase_add_test(tc, test_many_nodes);
	suite_add_tcase(s, tc);

	tc = tcase_create("rename");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_rename_file);
	tcase_add_test(tc, test_rename_dir_moves_subtree);
	tcase_add_test(tc, test_rename_replaces_target);
	tcase_add_test(tc, test_rename_exchange);
	tcase_add_test(tc, test_rename_unknown_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("unlink");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unlink_detaches);
	tcase_add_test(tc, test_unlink_dir_stales_children);
	tcase_add_test(tc, test_replaced_object_new_id);
	suite_add_tcase(s, tc);

	tc = tcase_create("handles");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_handles);
	tcase_add_test(tc, test_cache_stamp);
	suite_add_tcase(s, tc);
	return s;
}
