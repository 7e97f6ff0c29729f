/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ctlpath.c - control socket location and word encoding (see ctlpath.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "vfsd/ctlpath.h"

int ctl_default_path(const char *mnt, char *buf, size_t size)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	size_t n;
	int len;

	if (size < max)
		max = size;
	len = snprintf(buf, max, "%s/", CTL_DIR);
	n = (size_t)len;
	while (*mnt == '/')
		mnt++;
	if (!*mnt) {
		buf[n++] = '-';
	}
	for (const char *p = mnt; *p && n + 5 < max; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '/') {
			while (p[1] == '/')
				p++;
			if (p[1])
				buf[n++] = '-';
		} else if (isalnum(c) || c == '_' || c == ':' ||
			   (c == '.' && p != mnt)) {
			buf[n++] = (char)c;
		} else {
			n += (size_t)snprintf(buf + n, max - n, "\\x%02x", c);
		}
		if (n + 6 >= max)
			return -ENAMETOOLONG;
	}
	if (n + 6 >= max)
		return -ENAMETOOLONG;
	memcpy(buf + n, ".sock", 6);
	return 0;
}

void ctl_encode_word(const char *word, char *out)
{
	out += strlen(out);
	for (; *word; word++) {
		unsigned char c = (unsigned char)*word;

		if (c <= ' ' || c == '%' || c == 0x7f)
			out += sprintf(out, "%%%02X", c);
		else
			*out++ = (char)c;
	}
	*out = '\0';
}

static int hex(int c)
{
	if (isdigit(c))
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ctl_decode_word(char *w)
{
	char *o = w;

	for (; *w; w++) {
		if (*w == '%') {
			int hi = hex((unsigned char)w[1]);
			int lo = hi < 0 ? -1 : hex((unsigned char)w[2]);

			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return -EINVAL;
			*o++ = (char)(hi << 4 | lo);
			w += 2;
		} else {
			*o++ = *w;
		}
	}
	*o = '\0';
	return 0;
}
