/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stack.h - the ops table of a stacking instance: a backend made over
 * another backend's instance (the fault wrapper, the image store's layer)
 * builds its table from a template of its own, keeping a member only
 * where the instance beneath has it, since a stacking backend cannot do
 * what the instance beneath cannot.
 */
#ifndef VFSD_STACK_H
#define VFSD_STACK_H

#include <stddef.h>

#include "backends/backend.h"

/* names a function member of struct vfs_backend_ops in a keep list */
#define VFS_STACK_MEMBER(member) offsetof(struct vfs_backend_ops, member)

/**
 * vfs_stack_ops() - fill a stacking instance's table
 * @ops: the instance's table, filled: a copy of @tmpl, then trimmed
 * @tmpl: the stacking backend's template
 * @lower: the table of the instance beneath
 * @keep: VFS_STACK_MEMBER()s kept whatever @lower has: the members the
 *        stacking backend answers without the instance beneath (its own
 *        attributes, a fallback); NULL when @nkeep is 0
 * @nkeep: how many
 *
 * Every function member of @tmpl stays where @lower has it too, or where
 * @keep names it; the others are NULL in @ops (unsupported: the router
 * gives its answer for a missing member).  A member @tmpl lacks stays
 * NULL.  name and opts are @tmpl's: the caller sets its own.  Mandatory
 * members need no keeping: the instance beneath has them.
 */
void vfs_stack_ops(struct vfs_backend_ops *ops,
		   const struct vfs_backend_ops *tmpl,
		   const struct vfs_backend_ops *lower, const size_t *keep,
		   size_t nkeep);

#endif
