/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stack.c - the ops table of a stacking instance (stack.h).
 */
#include <stdbool.h>
#include <string.h>

#include "backends/stack.h"

typedef void (*stack_fn)(void);

#define M(member) VFS_STACK_MEMBER(member)

/* every function member of struct vfs_backend_ops (tests/test_stack.c
 * fails when one is missing here) */
static const size_t stack_members[] = {
	M(mount),       M(unmount),    M(statfs),   M(state),     M(getattr),
	M(setattr),     M(readlink),   M(mknod),    M(mkdir),     M(symlink),
	M(link),        M(unlink),     M(rmdir),    M(rename),    M(opendir),
	M(readdir),     M(releasedir), M(getxattr), M(listxattr), M(setxattr),
	M(removexattr), M(create),     M(open),     M(read),      M(write),
	M(fgetattr),    M(flush),      M(fsync),    M(fallocate), M(lseek),
	M(copy_range),  M(clone),      M(release),  M(getlk),     M(setlk),
};

static bool stack_kept(size_t off, const size_t *keep, size_t nkeep)
{
	for (size_t i = 0; i < nkeep; i++)
		if (keep[i] == off)
			return true;
	return false;
}

/* the member at `off` of `ops`, whatever its type: every member above is
 * a function pointer, and all of those have one representation here */
static stack_fn stack_get(const struct vfs_backend_ops *ops, size_t off)
{
	stack_fn fn;

	memcpy(&fn, (const char *)ops + off, sizeof(fn));
	return fn;
}

void vfs_stack_ops(struct vfs_backend_ops *ops,
		   const struct vfs_backend_ops *tmpl,
		   const struct vfs_backend_ops *lower, const size_t *keep,
		   size_t nkeep)
{
	static const stack_fn none;

	*ops = *tmpl;
	for (size_t i = 0; i < sizeof(stack_members) / sizeof(*stack_members);
	     i++) {
		size_t off = stack_members[i];

		if (!stack_get(lower, off) && !stack_kept(off, keep, nkeep))
			memcpy((char *)ops + off, &none, sizeof(none));
	}
}
