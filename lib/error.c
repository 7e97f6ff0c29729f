/* SPDX-License-Identifier: GPL-2.0-or-later */
/* error.c - struct vfs_error helpers (see error.h for the rules). */
#include <stdarg.h>
#include <stdio.h>

#include "lib/error.h"

int vfs_error_set(struct vfs_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (code <= 0)
		code = code < 0 ? -code : 5 /* EIO */;
	if (!err || err->code)
		return -code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -code;
}
