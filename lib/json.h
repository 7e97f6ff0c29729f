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
 * '\\' escaped by a backslash and bytes below 0x20 as \u00XX.  Well-formed
 * UTF-8 passes through unchanged; each byte that is not part of it (a
 * file name is any bytes but '/' and NUL) is written as \u00XX of its
 * value, the character Latin-1 gives it, so the text is always valid
 * UTF-8 and JSON for strict parsers.  Such a name reads back as another
 * string than its bytes (0xe9 as U+00E9, which UTF-8 writes c3 a9): the
 * text forms (vfs_path_print) show the bytes.  NULL is written as "".
 */
void vfs_json_str(FILE *out, const char *s);

#endif /* VFSD_LIB_JSON_H */
