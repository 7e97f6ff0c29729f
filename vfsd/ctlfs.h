/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctlfs.h - the read-only /.vfsd/ directory: the daemon's live state for
 * scripts, as files (status, mounts, stats; each also as *.json).
 */
#ifndef VFSD_CTLFS_H
#define VFSD_CTLFS_H

#include "backends/backend.h"
#include "vfsd/report.h"

/* A new instance for router_add_internal(); `st` must outlive it. */
struct vfs_mount *ctlfs_new(const struct vfsd_status *st);

#endif /* VFSD_CTLFS_H */
