/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * passthrough.h - the kernel's FUSE passthrough (Linux 6.9+) for files of
 * local mounts: read, write and mmap of such a file go from the kernel
 * straight to the backing file, without a round trip through vfsd.
 *
 * Use: pt_session_setup() once the session is mounted; pt_init() from the
 * INIT callback; then, for each open or create of a regular file,
 * pt_open_begin() before the reply and pt_open_end() after it, and
 * pt_release() when the kernel releases the file.
 */
#ifndef VFSD_PASSTHROUGH_H
#define VFSD_PASSTHROUGH_H

#include <stdbool.h>
#include <stdint.h>

struct fuse_session;

/*
 * Route the session's device I/O through passthrough.c, so that it can
 * see the kernel's INIT offer and amend the replies libfuse 3.14 builds.
 * 0, or -errno (then the session goes on without passthrough).
 */
int pt_session_setup(struct fuse_session *se);

/*
 * Called from the INIT callback, before libfuse replies: whether we may
 * ask the kernel for passthrough (not with the writeback cache, which
 * the kernel refuses to combine with it).  Returns true when we will also
 * ask for FUSE_HANDLE_KILLPRIV_V2; the caller must then keep libfuse from
 * splicing requests in (FUSE_CAP_SPLICE_READ), so that passthrough.c sees
 * every request's flags.
 */
bool pt_init(bool allow);

/*
 * Whether the request this thread is handling (a write, a truncate or an
 * O_TRUNC open) must drop the file's setuid bit, and its setgid bit if
 * group-executable: the caller lacks CAP_FSETID, and with
 * FUSE_HANDLE_KILLPRIV_V2 that is the daemon's job.
 */
bool pt_request_kills_suidgid(void);

/* Whether the kernel granted passthrough (known once INIT is answered). */
bool pt_enabled(void);

/* How an open file of a node was opened, as far as passthrough.c knows. */
enum pt_mode {
	PT_UNTRACKED,   /* its mount never uses passthrough */
	PT_PLAIN,       /* the normal path, counted for its node */
	PT_PASSTHROUGH, /* the kernel does its I/O on the backing file */
};

/*
 * Decide how the open of node `ino` that is about to be answered goes.
 * `fd` is a host fd with the file's data when its mount allows
 * passthrough, else -1.  The kernel wants every open file of one node in
 * one mode with one backing file, so a node keeps the mode of its first
 * open while any open remains; `may_start` false keeps a node that has no
 * open files out of passthrough (a file whose writes must reach us).  For
 * PT_PASSTHROUGH, the next open or create reply this thread sends for handle
 * `fh` carries the backing file, and the caller must call pt_open_end() right
 * after sending it. Every mode but PT_UNTRACKED is counted until pt_release().
 */
enum pt_mode pt_open_begin(uint64_t ino, int fd, bool may_start, uint64_t fh);

/*
 * After the reply of a pt_open_begin() that said PT_PASSTHROUGH (the open
 * stays counted as such).  Returns whether the reply did carry the backing
 * file: it always does, unless libfuse changed how it sends replies; then
 * no node starts passthrough any more, and the log says why.
 */
bool pt_open_end(uint64_t ino);

/* An open counted by pt_open_begin() is over (released, or its reply
 * never reached the kernel). */
void pt_release(uint64_t ino, enum pt_mode mode);

#endif /* VFSD_PASSTHROUGH_H */
