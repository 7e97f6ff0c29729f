/* SPDX-License-Identifier: GPL-2.0-or-later */
/* json.c - writing JSON text (see json.h). */
#include <stdio.h>

#include "lib/json.h"

void vfs_json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}
