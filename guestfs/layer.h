/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * layer.h - the image store as a stacking layer: the router places it over
 * every mount made from a URL, and it forwards each call to the instance
 * beneath (the backend's, or the test-only fault wrapper's) after doing
 * what the image store adds to a file system:
 *
 *  - locks (the contract's getlk/setlk): within this daemon on every
 *    mount, and across hosts on shared ones (lock.h), with every change of
 *    a file's data under a cross-host lock fenced by the lease and written
 *    through;
 *  - on shared mounts, the lease record directories hidden and refused
 *    (glock_reserved), and cleared when the directory holding them is
 *    removed;
 *  - the read-only user.vfsd.image.* extended attributes (image.h).
 *
 * Its own files (records, image headers) it reads and writes on the
 * instance beneath (lower.h), never through the router.
 */
#ifndef VFSD_GUESTFS_LAYER_H
#define VFSD_GUESTFS_LAYER_H

#include <stdbool.h>

#include "backends/backend.h"
#include "guestfs/image.h"
#include "lib/error.h"

/*
 * Stack the layer over the freshly mounted instance *vm: on success *vm is
 * the layer's instance, which owns the one beneath (vm->lower) and
 * unmounts it with itself; its ops table is its own.  `readonly`: the
 * mount is read-only, so the store writes nothing there either (locks
 * stay within this daemon).  On failure the instance beneath is unmounted
 * and -errno returned with *err naming `what`.
 */
int image_layer_wrap(struct vfs_mount **vm, bool readonly, const char *what,
		     struct vfs_error *err);

/*
 * The mount of the layer's instance vm was removed by force while files
 * were open: its cross-host locks lapse (glock_revoke).  A no-op on any
 * other instance.
 */
void image_layer_revoke(struct vfs_mount *vm);

/* Probe the image `path` (mount-relative) of the layer's instance vm:
 * 0, -EINVAL for what is not a regular file, -EOPNOTSUPP when vm is not
 * a layer's, or another -errno. */
int image_layer_probe(struct vfs_mount *vm, const char *path,
		      struct image_info *info);

/* The I/O limits' attributes (vfsd/qos.h): on shared mounts whose
 * backend keeps no extended attributes the layer keeps these itself,
 * beside the file on the storage (layer_qos.c), for every host. */
#define IMAGE_QOS_XATTR_PREFIX "user.vfsd.qos."

#endif /* VFSD_GUESTFS_LAYER_H */
