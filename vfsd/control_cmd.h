/* SPDX-License-Identifier: GPL-2.0-or-later */
/* control_cmd.h - the control socket's commands (control_cmd.c); called
 * by control.c only. */
#ifndef VFSD_CONTROL_CMD_H
#define VFSD_CONTROL_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "lib/error.h"
#include "vfsd/report.h"

/* Run one request, argv[0] its command; the reply's body goes to out, in
 * JSON when `json`.  0 or -errno with *err set.  Runs on a thread of its
 * own: several requests may be in here at once. */
int ctl_dispatch(const struct vfsd_status *st, FILE *out, bool json,
		 char **argv, int argc, struct vfs_error *err);

/* Re-read st->config and apply the difference to the config file's
 * mounts; what changed is written to out.  0 or -errno with *err set. */
int ctl_reload(const struct vfsd_status *st, FILE *out, struct vfs_error *err);

#endif /* VFSD_CONTROL_CMD_H */
