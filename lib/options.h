/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * options.h - backend options: a declarative spec per backend (name, type,
 * default, bounds, secret) and the validated key=value set a mount gets.
 *
 * Options come from config keys and URL query parameters and are checked
 * in one place, vfs_opts_validate(): unknown keys, bad numbers, out-of-range
 * values and secrets given where they may leak are errors.
 */
#ifndef VFSD_LIB_OPTIONS_H
#define VFSD_LIB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/error.h"

enum vfs_opt_type {
	VFS_OPT_STRING,
	VFS_OPT_INT,  /* decimal, within [min, max] */
	VFS_OPT_BOOL, /* yes/no, true/false, on/off, 1/0 */
	VFS_OPT_ENUM, /* one of choices[] */
	VFS_OPT_PATH, /* absolute path; "~/" expands to $HOME */
};

struct vfs_opt_spec {
	const char *name; /* NULL ends the table */
	enum vfs_opt_type type;
	const char *def;            /* default as text, or NULL for none */
	long min, max;              /* VFS_OPT_INT bounds */
	const char *const *choices; /* VFS_OPT_ENUM, NULL-terminated */
	bool secret; /* never from URL/command line, never logged */
	const char *help;
};

struct vfs_opt_kv {
	char *key;   /* owned */
	char *value; /* owned */
	int origin;  /* VFS_ORIGIN_* */
};

#define VFS_ORIGIN_CONFIG      0 /* a config file only its owner reads */
#define VFS_ORIGIN_URL         1 /* URL query or command line: public */
#define VFS_ORIGIN_OPEN_CONFIG 2 /* a config file others may read */

struct vfs_opts {
	struct vfs_opt_kv *kv; /* owned */
	size_t n;
	const struct vfs_opt_spec *spec; /* set by validate; borrowed */
};

/* Add or replace key; copies both strings.  0 or -ENOMEM. */
int vfs_opts_set(struct vfs_opts *o, const char *key, const char *value,
		 int origin);
/* Deep copy of src into *dst (empty before).  0 or -ENOMEM. */
int vfs_opts_copy(struct vfs_opts *dst, const struct vfs_opts *src);
void vfs_opts_clear(struct vfs_opts *o);

/*
 * Check every key against spec and remember spec for the getters.  `what`
 * names the mount in messages ("mount /data").  0 or -EINVAL with *err set.
 */
int vfs_opts_validate(struct vfs_opts *o, const struct vfs_opt_spec *spec,
		      const char *what, struct vfs_error *err);

/* Getters fall back to the spec's default; values were validated. */
const char *vfs_opts_get(const struct vfs_opts *o, const char *key);
long vfs_opts_get_int(const struct vfs_opts *o, const char *key);
bool vfs_opts_get_bool(const struct vfs_opts *o, const char *key);

/* Parse a boolean word.  0 on success, -EINVAL otherwise. */
int vfs_parse_bool(const char *s, bool *out);
/* Parse a decimal long in [min, max].  0 or -EINVAL/-ERANGE. */
int vfs_parse_long(const char *s, long min, long max, long *out);

#endif /* VFSD_LIB_OPTIONS_H */
