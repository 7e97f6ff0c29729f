/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image_cmd.h - the control commands `image list DIR` and `image info
 * FILE` (vfsctl(8)), with DIR and FILE vfsd paths.
 */
#ifndef VFSD_IMAGE_CMD_H
#define VFSD_IMAGE_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "lib/error.h"

/* Output to out as a table or JSON.  0, or -errno with *err naming the
 * path. */
int image_cmd_list(FILE *out, const char *dir, bool json,
		   struct vfs_error *err);
int image_cmd_info(FILE *out, const char *file, bool json,
		   struct vfs_error *err);

#endif /* VFSD_IMAGE_CMD_H */
