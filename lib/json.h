/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * json.h - writing JSON text: the string quoting that every JSON answer of
 * vfsd (vfsctl --json, the /.vfsd/ files, `vfsctl fault ... list`) goes
 * through, so that a name with a quote or a control character in it can
 * never break the document.
 */
#ifndef VFSD_LIB_JSON_H
#define VFSD_LIB_JSON_H

#include <stdio.h>

/*
 * Write s to out as a JSON string literal: in double quotes, with '"' and
 * '\\' escaped by a backslash and bytes below 0x20 as \u00XX.  Every other
 * byte goes out as it is: UTF-8 passes through unchanged, and bytes that
 * are not UTF-8 are not checked.  NULL is written as "".
 */
void vfs_json_str(FILE *out, const char *s);

#endif /* VFSD_LIB_JSON_H */
