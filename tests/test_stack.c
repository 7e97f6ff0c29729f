/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_stack.c - unit tests for backends/stack.c: a stacking instance's
 * table keeps its template's members where the instance beneath has them,
 * and those its keep list names.
 */
#include <check.h>
#include <string.h>

#include "backends/stack.h"

Suite *stack_suite(void);

static int t_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	(void)m;
	(void)path;
	(void)st;
	return 0;
}

static int t_unlink(struct vfs_mount *m, const char *path)
{
	(void)m;
	(void)path;
	return 0;
}

static ssize_t t_getxattr(struct vfs_mount *m, const char *path,
			  const char *name, void *buf, size_t size)
{
	(void)m;
	(void)path;
	(void)name;
	(void)buf;
	(void)size;
	return 0;
}

static int t_rmdir(struct vfs_mount *m, const char *path)
{
	(void)m;
	(void)path;
	return 0;
}

static const struct vfs_opt_spec t_opts[] = {{0}};

/*
 * Every function member is trimmed where the instance beneath lacks it:
 * a member added to struct vfs_backend_ops but not to stack.c's list
 * would keep the template's bytes here.
 */
START_TEST(stack_trims_every_member)
{
	struct vfs_backend_ops tmpl, lower, ops, want;

	memset(&tmpl, 0xa5, sizeof(tmpl));
	memset(&lower, 0, sizeof(lower));
	vfs_stack_ops(&ops, &tmpl, &lower, NULL, 0);
	memset(&want, 0, sizeof(want));
	want.name = tmpl.name;
	want.opts = tmpl.opts;
	ck_assert_mem_eq(&ops, &want, sizeof(ops));
}
END_TEST

/* A member stays where both have it, goes where the instance beneath
 * lacks it, and stays absent where the template lacks it. */
START_TEST(stack_keeps_what_lower_has)
{
	const struct vfs_backend_ops tmpl = {
		.name = "tmpl",
		.opts = t_opts,
		.getattr = t_getattr,
		.unlink = t_unlink,
	};
	const struct vfs_backend_ops lower = {
		.name = "lower",
		.getattr = t_getattr,
		.rmdir = t_rmdir,
	};
	struct vfs_backend_ops ops;

	vfs_stack_ops(&ops, &tmpl, &lower, NULL, 0);
	ck_assert_str_eq(ops.name, "tmpl");
	ck_assert_ptr_eq(ops.opts, t_opts);
	ck_assert_ptr_eq(ops.getattr, t_getattr);
	ck_assert_ptr_null(ops.unlink);
	ck_assert_ptr_null(ops.rmdir);
}
END_TEST

/* The keep list overrides the instance beneath, never the template. */
START_TEST(stack_keep_list)
{
	const struct vfs_backend_ops tmpl = {
		.getattr = t_getattr,
		.unlink = t_unlink,
		.getxattr = t_getxattr,
	};
	const struct vfs_backend_ops lower = {.getattr = t_getattr};
	const size_t keep[] = {VFS_STACK_MEMBER(getxattr),
			       VFS_STACK_MEMBER(rmdir)};
	struct vfs_backend_ops ops;

	vfs_stack_ops(&ops, &tmpl, &lower, keep, sizeof(keep) / sizeof(*keep));
	ck_assert_ptr_eq(ops.getattr, t_getattr);
	ck_assert_ptr_eq(ops.getxattr, t_getxattr);
	ck_assert_ptr_null(ops.unlink);
	ck_assert_ptr_null(ops.rmdir);
}
END_TEST

Suite *stack_suite(void)
{
	Suite *s = suite_create("stack");
	TCase *tc = tcase_create("ops");

	tcase_add_test(tc, stack_trims_every_member);
	tcase_add_test(tc, stack_keeps_what_lower_has);
	tcase_add_test(tc, stack_keep_list);
	suite_add_tcase(s, tc);
	return s;
}
