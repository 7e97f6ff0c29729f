/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * path.h - absolute '/'-separated paths, as the router and the backends
 * see them ("/" is the root of a mount or of the tree): normalising,
 * joining, the parent, containment, and the checks on a mount prefix.
 * Pure string work: nothing here touches a file system.
 */
#ifndef VFSD_LIB_PATH_H
#define VFSD_LIB_PATH_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "lib/error.h"

/* Longest mount prefix, after normalisation. */
#define VFS_PREFIX_MAX 1024
/* vfsd's own directory: no mount may be put at or beneath it. */
#define VFS_CTL_PREFIX "/.vfsd"

/*
 * Normalise an absolute path in place: collapse "//", drop "." components
 * and a trailing '/'.  ".." is refused (-EINVAL): mount paths and prefixes
 * are never relative to anything.  "/" stays "/".
 */
int vfs_path_normalize(char *path);

/*
 * Check a mount prefix and normalise it in place, for every way a prefix
 * arrives (config file, -m, vfsctl mount add): absolute, no "..", no
 * control characters (they would break the mount table and the log), no
 * component longer than NAME_MAX, at most VFS_PREFIX_MAX bytes, and not at
 * or under VFS_CTL_PREFIX.  0, or -EINVAL (-ENAMETOOLONG for the lengths)
 * with *err saying which rule the prefix (quoted with vfs_url_redact: a
 * URL given in its place may hold a password) breaks.
 */
int vfs_prefix_normalize(char *prefix, struct vfs_error *err);

/* Join a backend base path and a mount-relative path ("/" = base).
 * Returns a new string the caller frees, or NULL on ENOMEM. */
char *vfs_path_join(const char *base, const char *path);

/* The path of entry `name` of directory `dir` ("/" for the root): a new
 * string the caller frees, NULL without memory. */
char *vfs_path_child(const char *dir, const char *name);

/* The parent directory of an absolute path ("/" for "/x" and for "/"): a
 * new string, NULL without memory. */
char *vfs_path_parent(const char *path);

/* path equals prefix (plen = strlen(prefix)) or lies beneath it; every
 * path lies beneath "/". */
/*
 * Write path to out for a terminal or a line-oriented reader: a control
 * byte (below 0x20, DEL, and the C1 controls U+0080..U+009F in UTF-8) as
 * \xHH and a backslash as \\, so that a file's name can neither start
 * a line of its own nor send the terminal escape sequences.
 */
void vfs_path_print(FILE *out, const char *path);

static inline bool vfs_path_under(const char *path, const char *prefix,
				  size_t plen)
{
	if (plen == 1)
		return true;
	return strncmp(path, prefix, plen) == 0 &&
	       (path[plen] == '\0' || path[plen] == '/');
}

/* Whether `name` is a whole component of `path` other than its first
 * character's (a path below some directory, or the name itself below
 * the root). */
static inline bool vfs_path_has_component(const char *path, const char *name)
{
	const size_t len = strlen(name);

	for (const char *p = strstr(path, name); p; p = strstr(p + 1, name))
		if (p > path && p[-1] == '/' && (p[len] == '/' || !p[len]))
			return true;
	return false;
}

#endif /* VFSD_LIB_PATH_H */
