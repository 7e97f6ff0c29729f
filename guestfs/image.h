/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image.h - VM disk image awareness: raw and qcow2 recognised from their
 * headers, exposed as user.vfsd.image.* extended attributes by the image
 * store's layer (layer.h) and through vfsctl image list/info
 * (vfsd/image_cmd.c).
 */
#ifndef VFSD_GUESTFS_IMAGE_H
#define VFSD_GUESTFS_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define IMAGE_XATTR_PREFIX "user.vfsd.image."

struct image_info {
	char format[8]; /* "qcow2" or "raw" */
	uint32_t qcow2_version;
	uint64_t virtual_size;   /* bytes the guest sees */
	uint64_t file_size;      /* st_size */
	uint64_t allocated;      /* bytes allocated on the backend */
	uint32_t cluster_size;   /* qcow2 */
	char backing_file[1024]; /* "" for none */
	bool dirty, corrupt;     /* qcow2 v3 incompatible bits */
	char locked_by[512];     /* hosts holding locks, comma separated */
	/* the same, each as "HOST token=T age=Ns" (instance, record age) */
	char lock_holders[1024];
};

struct gfs_lower;

/* Probe the file `path` of the mount beneath the image store's layer.  0
 * or -errno (-EINVAL: not a regular file). */
int image_probe(const struct gfs_lower *l, const char *path,
		struct image_info *info);

/* getxattr of a user.vfsd.image.* name: the value's length, -ERANGE if
 * size is too small (and non-zero), -ENODATA for an unknown name. */
ssize_t image_getxattr(const struct gfs_lower *l, const char *path,
		       const char *name, void *buf, size_t size);

#endif /* VFSD_GUESTFS_IMAGE_H */
