/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inode.h - the node table: FUSE node ids <-> names in the vfsd namespace.
 *
 * Each node records the names it is known under, each a (parent, name)
 * pair, so a rename moves one name and a path is rebuilt on demand by
 * walking up to the root.  Directories have one name; a file has one per
 * hard link the table has seen, and paths go through the one a lookup
 * confirmed last (see inode_path), so the node keeps working after any one
 * of them is unlinked or renamed away.  On backends with stable inode numbers
 * every name of one file leads to one node (keyed by mount and backend inode,
 * as libfuse's passthrough_ll keys by st_dev and st_ino), so the kernel has one
 * inode for it: one set of attributes, one page cache.
 *
 * The kernel holds `nlookup` references through lookups and drops them
 * with forget; names hold a reference on their parent directory.  A node
 * is freed when both reach zero.  Node ids are never reused while the
 * daemon runs.
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
 * reported; when the name now refers to another object than its node
 * remembered (another type or backend inode), the name leaves that node and
 * goes to the object's, so the kernel never mixes the two.
 *
 * `space` is nonzero when the backend's inode numbers are stable: it then
 * names the mount they belong to (router_ino_space()), and a file (not a
 * directory) already known under another name gets that name's node.
 * With 0 nodes are found by name only (SFTP: its st_ino is made up from
 * the path).  A node found by inode number whose names are all gone is
 * not reused: the number may belong to a new file by now.
 * Returns the node id, or 0 with *err = -ENOMEM / -ENOENT (parent gone).
 */
uint64_t inode_lookup(uint64_t parent, const char *name, const struct stat *st,
		      uint64_t space, int *err);

/*
 * A hard link to node `ino` was made as `newname` in `newparent` and `st`
 * is what the backend reported for it: as inode_lookup(), with the new
 * name going to node `ino` when st is the object that node knows, whatever
 * `space` says.  Returns that node id (one more kernel reference), or 0
 * with *err = -ENOMEM / -ENOENT (node or parent gone).
 */
uint64_t inode_link(uint64_t ino, uint64_t newparent, const char *newname,
		    const struct stat *st, uint64_t space, int *err);

/* Whether node ino is the one node of its backend object (found by inode
 * number, see inode_lookup): then all its names share its attributes. */
bool inode_keyed(uint64_t ino);

/* Drop n kernel references. */
void inode_forget(uint64_t ino, uint64_t n);

/*
 * The vfsd path of a node ("/" for the root) as a new string the caller
 * frees: through the name a lookup found last (else the one it was first
 * known by) that still leads to the root.  NULL with
 * *err = -ENOENT for an unknown node, -ESTALE for one whose every name was
 * unlinked or replaced, -ENOMEM.
 */
char *inode_path(uint64_t ino, int *err);

/* The path of `name` inside directory `parent`, as inode_path(). */
char *inode_child_path(uint64_t parent, const char *name, int *err);

/* The name was removed: its node loses it (open files keep the node, and
 * other names of a hard-linked file keep working). */
void inode_unlink(uint64_t parent, const char *name);

/* Every name in directory `parent` is removed as by inode_unlink(), but
 * those in keep (NULL-ended; may be NULL).  0, or -ENOMEM and none. */
int inode_unlink_children(uint64_t parent, const char *const *keep);

/*
 * The directory named (parent, name) is replaced by a new node of no
 * identity (the next lookup's directory becomes it) that takes over the
 * names in keep (NULL-ended; may be NULL), with the subtrees beneath them;
 * the old node loses its name, so what else the kernel holds of it or
 * beneath it answers ESTALE.  0, or -ENOMEM and nothing changed.
 */
int inode_replace_dir(uint64_t parent, const char *name,
		      const char *const *keep);

/*
 * A lookup of the name found nothing: it leaves its node if that node has
 * other names, so paths of the node go through those (another process
 * unlinked one name of a hard-linked file).  A node's last name stays, so
 * requests on it fail with the backend's ENOENT rather than ESTALE.
 */
void inode_name_gone(uint64_t parent, const char *name);

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
 * Whether node ino's size, mtime or ctime differ from what the last call
 * saw (true on the first: nothing to compare with), which st then
 * replaces; each(h, changed, arg) is called on each open handle of the
 * node under the same hold of the table lock (each may be NULL), so that
 * what the caller does about it cannot be overtaken by another call.
 */
bool inode_data_seen(uint64_t ino, const struct stat *st,
		     void (*each)(void *h, bool changed, void *arg), void *arg);

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
/* Call fn(h, arg) on each open handle of node ino, under the table lock:
 * fn must not call into the node table. */
void inode_handle_each(uint64_t ino, void (*fn)(void *h, void *arg), void *arg);

/* The node id of an absolute vfsd path the kernel knows, or 0. */
uint64_t inode_find(const char *path);

/* Number of nodes in the table (for statistics and tests). */
uint64_t inode_count(void);

#endif /* VFSD_INODE_H */
