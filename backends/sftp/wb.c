// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * wb.c - write-behind for the SFTP backend: the sync sender of the
 * shared core (backends/remote/wb.h has the queue's rules).
 *
 * sshfs answers a write as soon as it is sent; we answer it once it is
 * queued, and the core's sender threads call sftp_write_behind (io.c),
 * which writes synchronously.  Contiguous queued writes of one file go
 * out as one large write (libssh2 keeps all of its packets in flight),
 * which also turns a program's small writes into large ones.  Writes of
 * one file that do not overlap may go out on two connections at once,
 * which is what spreads libssh2's encryption (one core per session) over
 * the machine.
 */
#include <string.h>

#include "backends/sftp/internal.h"

#define SFTP_WB_WINDOW   (16u << 20) /* bytes queued per mount */
#define SFTP_WB_COALESCE (8u << 20)  /* largest write sent at once */
#define SFTP_WB_THREADS  2           /* two files' writes go out at once */

static struct sftp_file *sftp_wb_file(const struct remote_wb_file *wf)
{
	return (struct sftp_file *)((char *)wf -
				    offsetof(struct sftp_file, wbf));
}

static int sftp_wb_send(void *ctx, struct remote_wb_file *wf, const char *buf,
			size_t len, off_t off)
{
	return sftp_write_behind(ctx, sftp_wb_file(wf), buf, len, off);
}

/* A file's path is fixed at open: no lock. */
static bool sftp_wb_file_at(void *ctx, const struct remote_wb_file *wf,
			    const char *path)
{
	(void)ctx;
	return strcmp(sftp_wb_file(wf)->path, path) == 0;
}

static const struct remote_wb_ops sftp_wb_ops = {
	.send = sftp_wb_send,
	.file_at = sftp_wb_file_at,
};

int sftp_wb_start(struct sftp_mount *sm)
{
	return remote_wb_new(&sm->wb, &sftp_wb_ops, sm, SFTP_WB_THREADS,
			     SFTP_WB_WINDOW, SFTP_WB_COALESCE);
}
