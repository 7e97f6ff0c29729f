/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fault.h - fault injection for tests: a backend that wraps any other and
 * delays, fails or pauses chosen operations (QEMU's blkdebug, SQLite's
 * test_vfs.c).  Not for production.
 *
 * A mount URL "fault+X" mounts backend X as usual (X's options, X's
 * errors) and the router then wraps the instance with fault_wrap().  Rules
 * are added and removed at run time through the control socket
 * (`vfsctl fault PREFIX ...`, see vfsctl(8)); a new mount has none and
 * behaves exactly as X, except that it never hands the kernel a host fd
 * (no FUSE passthrough, no zero-copy I/O), so every read and write is
 * seen by the rules.
 */
#ifndef VFSD_FAULT_H
#define VFSD_FAULT_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "backends/backend.h"
#include "lib/error.h"

#define FAULT_SCHEME_PREFIX "fault+"

/* Whether a URL scheme asks for the wrapper ("fault+file"). */
static inline bool fault_scheme(const char *scheme)
{
	return strncmp(scheme, FAULT_SCHEME_PREFIX,
		       sizeof(FAULT_SCHEME_PREFIX) - 1) == 0;
}

/*
 * Wrap the freshly mounted instance *vm (its ->ops set): on success *vm is
 * the wrapper, which owns the inner instance and unmounts it with itself;
 * its ops table is its own (*vm)->ops.  On failure the inner instance is
 * unmounted, *err says why (`what` names the mount) and -errno returned.
 */
int fault_wrap(struct vfs_mount **vm, const char *what, struct vfs_error *err);

/*
 * The mount left the mount table (mount remove): release its paused
 * callers and end its delays, and inject nothing from now on, so that
 * the calls in flight finish and the mount can be unmounted.  A no-op on
 * any other backend's instance.
 */
void fault_detach(struct vfs_mount *vm);

/* One `fault` control command, for fault_command(). */
struct fault_cmd {
	const char *prefix; /* the mount's, for messages */
	char **argv;        /* add RULE-WORD... | list | clear [ID] |
			     * resume [ID]; add's words may be changed */
	int argc;
	bool json;
	FILE *out;
	struct vfs_error *err;
};

/*
 * Run a `fault` command (a struct fault_cmd *) on instance `vm`: the
 * callback for router_with_backend().  0 with the reply written to
 * cmd->out, or -errno with cmd->err naming the problem (not a fault+
 * mount, a bad rule word, no such rule).
 */
int fault_command(struct vfs_mount *vm, void *cmd);

#endif /* VFSD_FAULT_H */
