/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * opts.h - the options every network backend declares the same way
 * (vfsd.conf(5) documents them once for sftp and nfs), as rows for a
 * driver's vfs_opt_spec table and their values read back once.
 */
#ifndef VFSD_BACKENDS_REMOTE_OPTS_H
#define VFSD_BACKENDS_REMOTE_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/options.h"

/* Rows of a driver's option table, each at the place the driver wants it
 * (designated initializers, so no row can be out of step with another
 * driver's). */
#define REMOTE_OPT_CONNECTIONS                                                 \
	{                                                                      \
		.name = "connections", .type = VFS_OPT_INT, .def = "4",        \
		.min = 1, .max = 64,                                           \
		.help = "connections to the server per mount (sftp: SSH "      \
			"sessions)"                                            \
	}
#define REMOTE_OPT_TIMEOUT                                                     \
	{                                                                      \
		.name = "timeout", .type = VFS_OPT_INT, .def = "20", .min = 1, \
		.max = 3600,                                                   \
		.help = "seconds before an unanswered operation fails"         \
	}
#define REMOTE_OPT_CACHE_TTL                                                   \
	{                                                                      \
		.name = "cache_ttl", .type = VFS_OPT_INT, .def = "1",          \
		.min = 0, .max = 3600,                                         \
		.help = "seconds attributes and listings are cached"           \
	}
#define REMOTE_OPT_WRITE_BEHIND                                                \
	{                                                                      \
		.name = "write_behind", .type = VFS_OPT_BOOL, .def = "yes",    \
		.help = "answer ordinary writes before the server has them "   \
			"(errors at the next write, close or fsync)"           \
	}

#define REMOTE_OPT_READAHEAD                                                   \
	{                                                                      \
		.name = "readahead", .type = VFS_OPT_INT, .def = "16",         \
		.min = 0, .max = 1024,                                         \
		.help = "MiB of data the mount reads ahead of sequential "     \
			"readers at most, for all its files (0: none)"         \
	}

/* The values of those rows for one mount. */
struct remote_opts {
	int connections; /* >= 1 */
	int timeout_s;   /* >= 1 */
	int cache_ttl_s; /* >= 0 */
	bool write_behind;
	uint64_t readahead_bytes;
};

/* Read the rows above from validated options (every row is in the
 * driver's table, so each has a value or its default). */
void remote_opts_get(const struct vfs_opts *opts, struct remote_opts *out);

#endif /* VFSD_BACKENDS_REMOTE_OPTS_H */
