/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_inode.c - unit tests for vfsd/inode.c: lookup counts and forget,
 * paths rebuilt after renames (RENAME_EXCHANGE included), unlinked and
 * replaced names, hard links (one node per backend inode where numbers are
 * stable), the open-handle registry and close-to-open stamps.
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

/* A lookup on a backend without stable inode numbers: by name only. */
static uint64_t lookup(uint64_t parent, const char *name, mode_t type,
		       ino_t ino)
{
	struct stat st = obj(type, ino);
	int err = 0;
	uint64_t id = inode_lookup(parent, name, &st, 0, &err);

	ck_assert_msg(id != 0, "lookup %s: %d", name, err);
	return id;
}

/* A lookup on mount `space`, whose backend has stable inode numbers. */
static uint64_t klookup(uint64_t space, uint64_t parent, const char *name,
			mode_t type, ino_t ino)
{
	struct stat st = obj(type, ino);
	int err = 0;
	uint64_t id = inode_lookup(parent, name, &st, space, &err);

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

	ck_assert_uint_eq(inode_lookup(999, "x", &st, 0, &err), 0);
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

/* All names of a directory die but those kept, whose subtrees live on;
 * the nodes go once forgotten, the directory's with its last child. */
START_TEST(test_unlink_children_keeps)
{
	uint64_t d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t a = lookup(d, "a", S_IFDIR, 2);
	uint64_t af = lookup(a, "f", S_IFREG, 3);
	uint64_t b = lookup(d, "b", S_IFREG, 4);
	uint64_t c = lookup(d, "c", S_IFDIR, 5);
	const char *keep[] = {"c", NULL};

	ck_assert_int_eq(inode_unlink_children(d, keep), 0);
	path_fails(a, -ESTALE);
	path_fails(af, -ESTALE);
	path_fails(b, -ESTALE);
	path_is(c, "/d/c");
	path_is(d, "/d");
	inode_forget(a, 1);
	inode_forget(af, 1);
	inode_forget(b, 1);
	ck_assert_uint_eq(inode_count(), 3);
	ck_assert_int_eq(inode_unlink_children(d, NULL), 0);
	path_fails(c, -ESTALE);
	inode_forget(c, 1);
	inode_forget(d, 1);
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

/* A directory replaced by a node of no identity: the old one and the
 * names not kept die, the kept ones' subtrees live on under the new one,
 * which the next lookup's directory becomes (another object); the old
 * node goes once forgotten. */
START_TEST(test_replace_dir_keeps)
{
	uint64_t d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t a = lookup(d, "a", S_IFDIR, 2);
	uint64_t af = lookup(a, "f", S_IFREG, 3);
	uint64_t b = lookup(d, "b", S_IFREG, 4);
	const char *keep[] = {"a", "gone", NULL};
	uint64_t d2;

	ck_assert_int_eq(inode_replace_dir(INODE_ROOT, "d", keep), 0);
	path_fails(d, -ESTALE);
	path_fails(b, -ESTALE);
	path_is(a, "/d/a");
	path_is(af, "/d/a/f");
	d2 = lookup(INODE_ROOT, "d", S_IFDIR, 99);
	ck_assert_uint_ne(d2, d);
	path_is(af, "/d/a/f");
	/* it has an identity now: another object replaces it as usual */
	ck_assert_uint_ne(lookup(INODE_ROOT, "d", S_IFDIR, 100), d2);
	path_fails(af, -ESTALE);
	inode_forget(b, 1);
	inode_forget(d, 1);
	/* an unknown name is nothing to do */
	ck_assert_int_eq(inode_replace_dir(INODE_ROOT, "nothing", NULL), 0);
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
		a4 = inode_lookup(INODE_ROOT, "a", &st, 0, &err);
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

	gets = 0; /* without check's fork, other tests counted too */
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

/* ---- Hard links ---------------------------------------------------------- */

/* inode_link() of node `ino` as `name` in `parent`, which must succeed. */
static uint64_t link_as(uint64_t space, uint64_t ino, uint64_t parent,
			const char *name, mode_t type, ino_t bino)
{
	struct stat st = obj(type, bino);
	int err = 0;
	uint64_t id = inode_link(ino, parent, name, &st, space, &err);

	ck_assert_msg(id != 0, "link %s: %d", name, err);
	return id;
}

START_TEST(test_keyed_names_one_node)
{
	uint64_t d = klookup(7, INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t a = klookup(7, d, "a", S_IFREG, 10);

	/* another name of the same backend file: the same node */
	ck_assert_uint_eq(klookup(7, INODE_ROOT, "b", S_IFREG, 10), a);
	ck_assert_uint_eq(klookup(7, d, "c", S_IFREG, 10), a);
	ck_assert(inode_keyed(a));
	ck_assert(!inode_keyed(d));
	ck_assert_uint_eq(inode_count(), 3);
	/* paths go through the name found last */
	path_is(a, "/d/c");
	ck_assert_uint_eq(klookup(7, d, "a", S_IFREG, 10), a);
	path_is(a, "/d/a");
	ck_assert_uint_eq(inode_find("/b"), a);
	ck_assert_uint_eq(inode_find("/d/c"), a);
	/* the same number on another mount, or with another st_dev, or
	 * where numbers are not stable: other objects */
	ck_assert_uint_ne(klookup(8, d, "x", S_IFREG, 10), a);
	{
		struct stat st = obj(S_IFREG, 10);
		int err = 0;

		st.st_dev = 43;
		ck_assert_uint_ne(inode_lookup(d, "y", &st, 7, &err), a);
	}
	ck_assert_uint_ne(lookup(d, "z", S_IFREG, 10), a);
	ck_assert_uint_eq(inode_count(), 6);

	/* four lookups of a: forgotten by four forgets, with every name */
	inode_forget(a, 3);
	path_is(a, "/d/a");
	inode_forget(a, 1);
	path_fails(a, -ENOENT);
	ck_assert_uint_eq(inode_find("/b"), 0);
	ck_assert_uint_eq(inode_find("/d/c"), 0);
	ck_assert_uint_eq(inode_count(), 5);
}
END_TEST

START_TEST(test_keyed_directories_by_name)
{
	/* directories are found by name only: one name each, and a mount
	 * point's number is another file system's */
	uint64_t d = klookup(7, INODE_ROOT, "d", S_IFDIR, 5);

	ck_assert_uint_ne(klookup(7, INODE_ROOT, "e", S_IFDIR, 5), d);
	ck_assert_uint_eq(klookup(7, INODE_ROOT, "d", S_IFDIR, 5), d);
	/* a file with a directory's number: not that directory */
	ck_assert_uint_ne(klookup(7, INODE_ROOT, "f", S_IFREG, 5), d);
}
END_TEST

START_TEST(test_keyed_number_reused_by_other_type)
{
	uint64_t f = klookup(7, INODE_ROOT, "f", S_IFREG, 5), l;

	/* f's number now belongs to a symlink elsewhere (f was removed
	 * behind our back): the symlink is keyed from now on */
	l = klookup(7, INODE_ROOT, "l", S_IFLNK, 5);
	ck_assert_uint_ne(l, f);
	ck_assert(!inode_keyed(f));
	ck_assert(inode_keyed(l));
	ck_assert_uint_eq(klookup(7, INODE_ROOT, "m", S_IFLNK, 5), l);
}
END_TEST

START_TEST(test_unlink_one_name)
{
	uint64_t d = klookup(7, INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t a = klookup(7, d, "a", S_IFREG, 10);

	ck_assert_uint_eq(klookup(7, d, "b", S_IFREG, 10), a);
	ck_assert_uint_eq(klookup(7, d, "a", S_IFREG, 10), a);
	path_is(a, "/d/a");
	inode_unlink(d, "a");
	/* the node works on through its other name */
	path_is(a, "/d/b");
	ck_assert(inode_keyed(a));
	ck_assert_uint_eq(inode_find("/d/a"), 0);
	ck_assert_uint_eq(klookup(7, d, "c", S_IFREG, 10), a);
	path_is(a, "/d/c");
	inode_unlink(d, "c");
	path_is(a, "/d/b");
	inode_unlink(d, "b");
	path_fails(a, -ESTALE);
	/* once every name is gone the number may be another file's: a
	 * new one gets a new node */
	ck_assert(!inode_keyed(a));
	ck_assert_uint_ne(klookup(7, d, "new", S_IFREG, 10), a);
	inode_forget(a, 4);
	ck_assert_uint_eq(inode_count(), 3);
}
END_TEST

START_TEST(test_name_gone)
{
	uint64_t a = klookup(7, INODE_ROOT, "a", S_IFREG, 10);

	ck_assert_uint_eq(klookup(7, INODE_ROOT, "b", S_IFREG, 10), a);
	/* another process removed a: paths go through b */
	inode_name_gone(INODE_ROOT, "a");
	path_is(a, "/b");
	/* a node's last name stays (its requests fail with ENOENT) */
	inode_name_gone(INODE_ROOT, "b");
	path_is(a, "/b");
	inode_name_gone(INODE_ROOT, "unknown");
	ck_assert_uint_eq(inode_count(), 2);
}
END_TEST

START_TEST(test_name_reused_by_other_object)
{
	uint64_t a = klookup(7, INODE_ROOT, "a", S_IFREG, 10), c;

	ck_assert_uint_eq(klookup(7, INODE_ROOT, "b", S_IFREG, 10), a);
	/* a now names another file: only that name leaves the node */
	c = klookup(7, INODE_ROOT, "a", S_IFREG, 11);
	ck_assert_uint_ne(c, a);
	path_is(a, "/b");
	path_is(c, "/a");
	/* and a third name of the first file still finds its node */
	ck_assert_uint_eq(klookup(7, INODE_ROOT, "e", S_IFREG, 10), a);
}
END_TEST

START_TEST(test_link_reply_same_node)
{
	uint64_t d = lookup(INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t a = lookup(d, "a", S_IFREG, 10), c;

	/* even where names are the only key, a link's reply is its source,
	 * whose path stays on the name that just worked */
	ck_assert_uint_eq(link_as(0, a, INODE_ROOT, "b", S_IFREG, 10), a);
	path_is(a, "/d/a");
	ck_assert_uint_eq(inode_find("/b"), a);
	/* and the name finds that node again */
	ck_assert_uint_eq(lookup(INODE_ROOT, "b", S_IFREG, 10), a);
	path_is(a, "/b");
	/* a link whose result is another object than the node knows (the
	 * source name was stale): not that node */
	c = link_as(0, a, INODE_ROOT, "c", S_IFREG, 12);
	ck_assert_uint_ne(c, a);
	/* a name the table still had for something else is taken over */
	lookup(INODE_ROOT, "old", S_IFREG, 99);
	ck_assert_uint_eq(link_as(7, a, INODE_ROOT, "old", S_IFREG, 10), a);
	path_is(a, "/b");
	ck_assert_uint_eq(inode_find("/old"), a);
	/* an unknown source */
	{
		struct stat st = obj(S_IFREG, 10);
		int err = 0;

		ck_assert_uint_eq(inode_link(4242, d, "x", &st, 7, &err), 0);
		ck_assert_int_eq(err, -ENOENT);
	}
	/* four references: lookup, two links and the lookup of b */
	inode_forget(a, 3);
	path_is(a, "/b");
	inode_forget(a, 1);
	path_fails(a, -ENOENT);
}
END_TEST

START_TEST(test_link_keys_unkeyed_source)
{
	uint64_t a = klookup(7, INODE_ROOT, "a", S_IFREG, 10);

	ck_assert_uint_eq(link_as(7, a, INODE_ROOT, "b", S_IFREG, 10), a);
	ck_assert(inode_keyed(a));
	ck_assert_uint_eq(klookup(7, INODE_ROOT, "c", S_IFREG, 10), a);
}
END_TEST

START_TEST(test_rename_over_linked_name)
{
	uint64_t a = klookup(7, INODE_ROOT, "a", S_IFREG, 10);
	uint64_t c = klookup(7, INODE_ROOT, "c", S_IFREG, 11);

	ck_assert_uint_eq(klookup(7, INODE_ROOT, "b", S_IFREG, 10), a);
	/* c replaces a: the file keeps its name b */
	inode_rename(INODE_ROOT, "c", INODE_ROOT, "a", 0);
	path_is(a, "/b");
	path_is(c, "/a");
	ck_assert_uint_eq(inode_find("/a"), c);
	ck_assert(inode_keyed(a));
	/* b renamed away and back over a name of its own file */
	ck_assert_uint_eq(klookup(7, INODE_ROOT, "e", S_IFREG, 10), a);
	inode_rename(INODE_ROOT, "e", INODE_ROOT, "b", 0);
	path_is(a, "/b");
	ck_assert_uint_eq(inode_find("/e"), 0);
	/* a linked name replacing another file */
	ck_assert_uint_eq(klookup(7, INODE_ROOT, "f", S_IFREG, 10), a);
	inode_rename(INODE_ROOT, "f", INODE_ROOT, "a", 0);
	path_is(a, "/a");
	path_fails(c, -ESTALE);
	ck_assert_uint_eq(inode_find("/a"), a);
	ck_assert_uint_eq(inode_find("/b"), a);
	/* the name paths use moved: paths follow it */
	inode_rename(INODE_ROOT, "a", INODE_ROOT, "g", 0);
	path_is(a, "/g");
	/* exchanging two names of one file */
	inode_rename(INODE_ROOT, "g", INODE_ROOT, "b", RENAME_EXCHANGE);
	ck_assert_uint_eq(inode_find("/b"), a);
	ck_assert_uint_eq(inode_find("/g"), a);
	inode_forget(c, 1);
	ck_assert_uint_eq(inode_count(), 2);
}
END_TEST

START_TEST(test_names_in_removed_directory)
{
	uint64_t d = klookup(7, INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t e = klookup(7, INODE_ROOT, "e", S_IFDIR, 2);
	uint64_t a = klookup(7, d, "a", S_IFREG, 10);

	ck_assert_uint_eq(klookup(7, e, "b", S_IFREG, 10), a);
	ck_assert_uint_eq(klookup(7, d, "a", S_IFREG, 10), a);
	path_is(a, "/d/a");
	/* the table still has d/a, but d itself is gone */
	inode_unlink(INODE_ROOT, "d");
	path_is(a, "/e/b");
	inode_unlink(INODE_ROOT, "e");
	path_fails(a, -ESTALE);
	/* the directories go once the kernel and the file let them */
	inode_forget(d, 1);
	inode_forget(e, 1);
	ck_assert_uint_eq(inode_count(), 4);
	inode_forget(a, 3);
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

START_TEST(test_names_pin_every_parent)
{
	uint64_t d = klookup(7, INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t e = klookup(7, d, "e", S_IFDIR, 2);
	uint64_t f = klookup(7, INODE_ROOT, "f", S_IFDIR, 3);
	uint64_t a = klookup(7, e, "a", S_IFREG, 10);

	ck_assert_uint_eq(klookup(7, f, "b", S_IFREG, 10), a);
	inode_forget(d, 1);
	inode_forget(e, 1);
	inode_forget(f, 1);
	/* both chains are held by the file's names */
	path_is(e, "/d/e");
	path_is(f, "/f");
	ck_assert_uint_eq(inode_count(), 5);
	inode_unlink(f, "b");
	/* f lost its last reference with the name */
	path_fails(f, -ENOENT);
	path_is(a, "/d/e/a");
	inode_forget(a, 2);
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

START_TEST(test_many_links)
{
	enum { N = 3000 };
	uint64_t d = klookup(7, INODE_ROOT, "d", S_IFDIR, 1);
	uint64_t a = klookup(7, d, "a", S_IFREG, 10);
	char name[32], path[40];

	/* enough names to make the tables grow, all of one node */
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		ck_assert_uint_eq(link_as(7, a, d, name, S_IFREG, 10), a);
	}
	ck_assert_uint_eq(inode_count(), 3);
	for (int i = 0; i < N; i += 13) {
		snprintf(path, sizeof(path), "/d/l%d", i);
		ck_assert_uint_eq(inode_find(path), a);
	}
	inode_unlink(d, "a");
	for (int i = 0; i < N - 1; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		inode_unlink(d, name);
	}
	snprintf(path, sizeof(path), "/d/l%d", N - 1);
	path_is(a, path);
	inode_forget(a, N + 1);
	inode_forget(d, 1);
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

START_TEST(test_link_unlink_cycles)
{
	uint64_t a = klookup(7, INODE_ROOT, "a", S_IFREG, 10);

	for (int i = 0; i < 1000; i++) {
		ck_assert_uint_eq(link_as(7, a, INODE_ROOT, "b", S_IFREG, 10),
				  a);
		inode_unlink(INODE_ROOT, i % 2 ? "a" : "b");
		if (i % 2)
			inode_rename(INODE_ROOT, "b", INODE_ROOT, "a", 0);
		path_is(a, "/a");
		inode_forget(a, 1);
	}
	ck_assert_uint_eq(inode_count(), 2);
	ck_assert(inode_keyed(a));
}
END_TEST

/*
 * A random mix of what the kernel and other processes do to a small tree:
 * lookups (also of names removed or replaced behind our back), links,
 * unlinks, renames with and without RENAME_EXCHANGE through the mount,
 * and links, unlinks and renames beneath it, with inode numbers reused as
 * soon as a file is gone.  After each kernel operation the path of every
 * node the kernel holds either fails or leads to a name the model has
 * (checked under ASan for use after free too); at the end every node the
 * kernel forgets is freed.
 */
#define CH_DIRS  3
#define CH_NAMES 4
#define CH_INOS  24

/* the model: dir (0 = root, 1..CH_DIRS) x name -> backend inode or 0 */
static ino_t ch_ent[CH_DIRS + 1][CH_NAMES];
static unsigned ch_nlink[CH_INOS];
static uint64_t ch_dirnode[CH_DIRS + 1]; /* kernel's node of each dir */
static uint64_t ch_held[256];            /* kernel references */
static unsigned ch_nheld;

static const char *ch_name(unsigned i)
{
	static const char *names[CH_NAMES] = {"a", "b", "c", "d"};

	return names[i];
}

static ino_t ch_new_ino(void)
{
	for (ino_t i = 100; i < CH_INOS; i++)
		if (!ch_nlink[i])
			return i;
	return 0;
}

static void ch_put(unsigned d, unsigned n, ino_t ino)
{
	if (ch_ent[d][n])
		ch_nlink[ch_ent[d][n]]--;
	ch_ent[d][n] = ino;
	if (ino)
		ch_nlink[ino]++;
}

static void ch_check_paths(void)
{
	for (unsigned i = 0; i < ch_nheld; i++) {
		int err = 0;
		char *p = inode_path(ch_held[i], &err);

		ck_assert_msg(p || err == -ESTALE, "node %llu: %d",
			      (unsigned long long)ch_held[i], err);
		free(p);
	}
}

START_TEST(test_random_churn)
{
	unsigned seed = 12345;

	ch_dirnode[0] = INODE_ROOT;
	for (unsigned d = 1; d <= CH_DIRS; d++) {
		char name[8];

		snprintf(name, sizeof(name), "D%u", d);
		ch_dirnode[d] = klookup(7, INODE_ROOT, name, S_IFDIR, d);
	}
	memset(ch_ent, 0, sizeof(ch_ent));
	memset(ch_nlink, 0, sizeof(ch_nlink));
	ch_nheld = 0;
	for (int step = 0; step < 200000; step++) {
		unsigned r = rand_r(&seed), d = r % (CH_DIRS + 1),
			 n = (r >> 4) % CH_NAMES, d2 = (r >> 8) % (CH_DIRS + 1),
			 n2 = (r >> 12) % CH_NAMES, op = (r >> 16) % 11;
		ino_t ino = ch_ent[d][n];
		struct stat st = obj(S_IFREG, ino);
		uint64_t id;
		int err = 0;

		switch (op) {
		case 0:
		case 1: /* kernel lookup */
			if (!ino) {
				inode_name_gone(ch_dirnode[d], ch_name(n));
				break;
			}
			if (ch_nheld == 256)
				break;
			id = inode_lookup(ch_dirnode[d], ch_name(n), &st, 7,
					  &err);
			ck_assert_uint_ne(id, 0);
			ch_held[ch_nheld++] = id;
			{
				char want[16];

				snprintf(want, sizeof(want),
					 d ? "/D%u/%s" : "/%.0u%s", d,
					 ch_name(n));
				path_is(id, want);
			}
			break;
		case 2: /* forget */
			if (ch_nheld) {
				unsigned k = (r >> 20) % ch_nheld;

				inode_forget(ch_held[k], 1);
				ch_held[k] = ch_held[--ch_nheld];
			}
			break;
		case 3: /* link through the mount */
			if (!ino || ch_ent[d2][n2] || ch_nheld == 256)
				break;
			id = inode_lookup(ch_dirnode[d], ch_name(n), &st, 7,
					  &err);
			ch_held[ch_nheld++] = id;
			ch_put(d2, n2, ino);
			id = inode_link(id, ch_dirnode[d2], ch_name(n2), &st, 7,
					&err);
			ck_assert_uint_ne(id, 0);
			ch_held[ch_nheld++] = id;
			break;
		case 4: /* unlink through the mount */
			if (!ino)
				break;
			ch_put(d, n, 0);
			inode_unlink(ch_dirnode[d], ch_name(n));
			break;
		case 5:
		case 6: /* rename through the mount */
			if (!ino || (op == 6 && !ch_ent[d2][n2]))
				break;
			if (op == 6) {
				ino_t other = ch_ent[d2][n2];

				ch_ent[d2][n2] = ino;
				ch_ent[d][n] = other;
			} else if (d != d2 || n != n2) {
				if (ch_ent[d2][n2] == ino) {
					/* the same file: rename does nothing */
					break;
				}
				ch_put(d2, n2, ino);
				ch_put(d, n, 0);
			}
			inode_rename(ch_dirnode[d], ch_name(n), ch_dirnode[d2],
				     ch_name(n2),
				     op == 6 ? RENAME_EXCHANGE : 0);
			break;
		case 7: /* create beneath (numbers reused) */
			if (!ino && (ino = ch_new_ino()))
				ch_put(d, n, ino);
			break;
		case 8: /* unlink beneath */
			ch_put(d, n, 0);
			break;
		case 9: /* link beneath */
			if (ino && !ch_ent[d2][n2])
				ch_put(d2, n2, ino);
			break;
		case 10: /* rename beneath */
			if (ino && ch_ent[d2][n2] != ino) {
				ch_put(d2, n2, ino);
				ch_put(d, n, 0);
			}
			break;
		}
		ch_check_paths();
	}
	while (ch_nheld)
		inode_forget(ch_held[--ch_nheld], 1);
	for (unsigned d = 1; d <= CH_DIRS; d++)
		inode_forget(ch_dirnode[d], 1);
	ck_assert_uint_eq(inode_count(), 1);
}
END_TEST

START_TEST(test_handles_shared_by_names)
{
	uint64_t a = klookup(7, INODE_ROOT, "a", S_IFREG, 10);
	struct stat st = obj(S_IFREG, 10);
	int h;

	ck_assert_uint_eq(klookup(7, INODE_ROOT, "b", S_IFREG, 10), a);
	ck_assert_int_eq(inode_handle_add(a, &h), 0);
	inode_unlink(INODE_ROOT, "a");
	ck_assert(inode_has_handles(a));
	ck_assert_ptr_eq(inode_handle_find(a, get_handle), &h);
	inode_handle_del(a, &h);
	/* the close-to-open stamp is the file's, whichever name opens it */
	st.st_size = 5;
	inode_cache_stamp(a, &st);
	ck_assert(inode_cache_still_valid(
		klookup(7, INODE_ROOT, "c", S_IFREG, 10), &st));
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
	tcase_add_test(tc, test_unlink_children_keeps);
	tcase_add_test(tc, test_replace_dir_keeps);
	tcase_add_test(tc, test_replaced_object_new_id);
	suite_add_tcase(s, tc);

	tc = tcase_create("links");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_keyed_names_one_node);
	tcase_add_test(tc, test_keyed_directories_by_name);
	tcase_add_test(tc, test_keyed_number_reused_by_other_type);
	tcase_add_test(tc, test_unlink_one_name);
	tcase_add_test(tc, test_name_gone);
	tcase_add_test(tc, test_name_reused_by_other_object);
	tcase_add_test(tc, test_link_reply_same_node);
	tcase_add_test(tc, test_link_keys_unkeyed_source);
	tcase_add_test(tc, test_rename_over_linked_name);
	tcase_add_test(tc, test_names_in_removed_directory);
	tcase_add_test(tc, test_names_pin_every_parent);
	tcase_add_test(tc, test_many_links);
	tcase_add_test(tc, test_link_unlink_cycles);
	tcase_add_test(tc, test_handles_shared_by_names);
	tcase_add_test(tc, test_random_churn);
	suite_add_tcase(s, tc);

	tc = tcase_create("handles");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_handles);
	tcase_add_test(tc, test_cache_stamp);
	suite_add_tcase(s, tc);
	return s;
}
