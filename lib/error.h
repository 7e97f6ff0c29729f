/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * error.h - human-readable errors for setup paths (config, URL, mount,
 * control commands).  Data paths return -errno only.
 *
 * Rules (as QEMU's Error **errp): the error is the last parameter, it is
 * left untouched on success, and the function's return value also says that
 * it failed.  The first message set wins, so a caller may add context only
 * where the callee set none.  Messages never contain secrets.
 */
#ifndef VFSD_LIB_ERROR_H
#define VFSD_LIB_ERROR_H

struct vfs_error {
	int code; /* positive errno, 0 while unset */
	char msg[512];
};

/* Set *err (if err is non-NULL and not yet set).  Returns -code, so that
 * `return vfs_error_set(err, EINVAL, "...")` reads naturally. */
int vfs_error_set(struct vfs_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void vfs_error_init(struct vfs_error *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}

#endif /* VFSD_LIB_ERROR_H */
