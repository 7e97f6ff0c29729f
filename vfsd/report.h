/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * report.h - the daemon's live state as text: a human table or JSON.
 * Shared by the control socket (vfsctl) and the /.vfsd/ files.
 */
#ifndef VFSD_REPORT_H
#define VFSD_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "lib/error.h"

struct vfsd_status {
	const char *version;
	const char *mountpoint;
	const char *host_id;
	const char *control;     /* control socket path */
	const char *config;      /* config file, or NULL */
	struct timespec started; /* CLOCK_MONOTONIC */
	int pid;
};

void report_status(FILE *out, bool json, const struct vfsd_status *st);
/* Every user-visible mount (not vfsd's own). */
void report_mounts(FILE *out, bool json);
/* Statistics of one mount (prefix) or of all (NULL).  -ENOENT with *err
 * set for an unknown prefix. */
int report_stats(FILE *out, const char *prefix, bool json,
		 struct vfs_error *err);

/* The open files (those under `prefix`, or all) with their I/O through
 * vfsd, time held back and requests waiting: `vfsctl files` and `top`. */
void report_files(FILE *out, const char *prefix, bool json);

#endif /* VFSD_REPORT_H */
