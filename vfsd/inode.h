/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inode.h - the node table: FUSE node ids <-> names in the vfsd namespace.
 *
 * Each node records its parent and its name, so a rename moves one node
 * and a path is rebuilt on demand by walking up to the root.  The kernel
 * holds `nlookup` references through lookups and drops them with forget;
 * children hold a reference on their parent.  A node is freed when both
 * reach zero.  Node ids are never reused while the daemon runs.
 *
 * Locking: one mutex (inode.c's table lock), a leaf: it is never held
 * across a backend call or a call into another module.
 */
#ifndef VFSD_INODE_H
#define VFSD_INODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#define INODE_ROOT 1

int inode_table_init(void);
void inode_table_destroy(void);

/*
 * Find or create the node for `name` in directory `parent` and take one
 * kernel reference (as a successful lookup must).  `st` is what the backend
 * reported; when the name now refers to another object than the node
 * remembered (another type or backend inode), the old node is detached and
 * a new node id is given, so the kernel never mixes the two.
 * Returns the node id, or 0 with *err = -ENOMEM / -ENOENT (parent gone).
 */
uint64_t inode_lookup(uint64_t parent, const char *name, const struct stat *st,
		      int *err);

/* Drop n kernel references. */
void inode_forget(uint64_t ino, uint64_t n);

/*
 * The vfsd path of a node ("/" for the root) as a new string the caller
 * frees.  NULL with *err = -ENOENT for an unknown node, -ESTALE for one that
 * was unlinked or replaced, -ENOMEM.
 */
char *inode_path(uint64_t ino, int *err);

/* The path of `name` inside directory `parent`, as inode_path(). */
char *inode_child_path(uint64_t parent, const char *name, int *err);

/* The name was removed: detach its node (open files keep the node). */
void inode_unlink(uint64_t parent, const char *name);

/* Reflect a successful rename (flags as renameat2) in the table. */
void inode_rename(uint64_t oldparent, const char *oldname, uint64_t newparent,
		  const char *newname, unsigned flags);

/*
 * Close-to-open bookkeeping: remember the (mtime, ctime, size) seen when a
 * file was opened or last written by us, and tell whether the object is
 * unchanged since, in which case the kernel may keep its cached pages.
 */
bool inode_cache_still_valid(uint64_t ino, const struct stat *st);
void inode_cache_stamp(uint64_t ino, const struct stat *st);
void inode_cache_invalidate(uint64_t ino);

/*
 * Open handles of a node, so that a file unlinked while open can still be
 * reached (fstat on an unlinked file arrives without its handle).  The
 * table stores the opaque pointers only; the caller owns them.
 * inode_handle_find() calls get(h) under the table lock on one handle and
 * returns it (the caller drops that reference), or NULL.
 */
int inode_handle_add(uint64_t ino, void *h);
void inode_handle_del(uint64_t ino, void *h);
void *inode_handle_find(uint64_t ino, void (*get)(void *h));
bool inode_has_handles(uint64_t ino);

/* The node id of an absolute vfsd path the kernel knows, or 0. */
uint64_t inode_find(const char *path);

/* Number of nodes in the table (for statistics and tests). */
uint64_t inode_count(void);

#endif /* VFSD_INODE_H */
