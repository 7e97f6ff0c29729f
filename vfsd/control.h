/* SPDX-License-Identifier: GPL-2.0-or-later */
/* control.h - the control socket of vfsd (see control.c, vfsctl(8)). */
#ifndef VFSD_CONTROL_H
#define VFSD_CONTROL_H

#include <stdio.h>

#include "lib/error.h"
#include "vfsd/report.h"

/* Listen on `path` (mode 0600) in a thread of its own.  `status` must
 * outlive ctl_stop().  0 or -errno with *err set. */
int ctl_start(const char *path, const struct vfsd_status *status,
	      struct vfs_error *err);
/* Stop listening, wait for commands in flight, remove the socket. */
void ctl_stop(void);

/* Ask for a reload from a signal handler (SIGHUP); async-signal-safe. */
void ctl_request_reload(void);

#endif /* VFSD_CONTROL_H */
