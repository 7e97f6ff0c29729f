/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctlpath.h - where the control socket of a mount point lives, and the
 * word encoding of the control protocol (shared by vfsd and vfsctl).
 */
#ifndef VFSD_CTLPATH_H
#define VFSD_CTLPATH_H

#include <stddef.h>

#define CTL_DIR     "/run/vfsd"
#define CTL_PROTO   "VFSCTL1" /* first word of every request */
#define CTL_MAX_REQ 65536

/*
 * The default socket of a mount point given as an absolute, resolved path:
 * /run/vfsd/<mount point escaped as systemd-escape --path does>.sock.
 * 0, or -ENAMETOOLONG when it would not fit a UNIX socket address.
 */
int ctl_default_path(const char *mountpoint, char *buf, size_t size);

/*
 * Request words are separated by single spaces; bytes that are spaces,
 * control characters or '%' are sent as %XX.  Encode appends the encoding
 * of word to a buffer the caller sized as 3 * strlen(word) + 1; decode
 * works in place and returns -EINVAL for a bad escape.
 */
void ctl_encode_word(const char *word, char *out);
int ctl_decode_word(char *word);

#endif /* VFSD_CTLPATH_H */
