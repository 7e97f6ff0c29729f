/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_nfs_reply.c - libFuzzer target for the NFS wire's reply stream
 * parser (backends/nfs/wire.c): what a hostile server can send on the
 * connection that carries READs and NFSv4 WRITEs.  Three requests are
 * pending, with xids 1, 2 and 3: an NFSv3 READ and an NFSv4 READ of 64
 * bytes each and an NFSv4 WRITE of 5; the input is the byte stream the
 * server answers with (record marks included), fed in pieces whose sizes
 * the input's first byte varies (as recv() would cut it).
 *
 * Besides memory errors (ASan/UBSan/LSan; each READ buffer is exactly
 * its size, so a byte past it is caught), it checks the parser's
 * contract: a READ completed without error got no more than it asked,
 * and nothing completes twice.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/nfs/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

#define WANT 64

static struct nfsb_mount mount = {.display = (char *)"nfs://fuzz/export"};
static int ls = -1;
static struct sockaddr_storage peer;

/* A listener the wire connects to; its connections are accepted and
 * closed each round, never read. */
static void setup(void)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer;
	socklen_t len = sizeof(*sin);

	ls = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(ls >= 0);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(ls, (struct sockaddr *)sin, len) == 0);
	CHECK(listen(ls, 8) == 0);
	CHECK(getsockname(ls, (struct sockaddr *)sin, &len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nfsb_file nf;
	struct nfsb_wait w[3];
	struct nfsb_chunk c[3];
	struct nfsb_wire *wi;
	char *buf[2];
	size_t piece, off = 1;
	int srv;

	if (size < 1)
		return 0;
	if (ls < 0)
		setup();
	memset(&nf, 0, sizeof(nf));
	nf.base.mount = &mount.base;
	pthread_mutex_init(&nf.lock, NULL);
	memcpy(nf.fh4, "FH", 2);
	nf.fh4_len = 2;
	wi = nfsb_wire_new(0, 0);
	CHECK(wi);
	nfsb_wire_test_xid(wi, 1);
	for (int i = 0; i < 3; i++) {
		nfsb_wait_init(&w[i]);
		w[i].pending = 1;
		c[i] = (struct nfsb_chunk){.w = &w[i], .nf = &nf};
	}
	for (int i = 0; i < 2; i++) {
		buf[i] = malloc(WANT);
		CHECK(buf[i]);
		c[i].buf = buf[i];
		c[i].want = WANT;
		CHECK(nfsb_wire_read(wi, &peer, false, vfs_mono_s() + 5, 3 + i,
				     "FH", 2, &c[i]) == 0);
	}
	srv = accept(ls, NULL, NULL);
	CHECK(srv >= 0);
	c[2].buf = (char *)"hello";
	c[2].want = 5;
	/* connected, with requests pending: no context socket needed */
	CHECK(nfsb_wire_write(wi, -1, vfs_mono_s() + 5, 0, &nf, &c[2], 0) == 0);
	/* pieces of 1 to 256 bytes, as recv() may cut the stream */
	piece = (size_t)data[0] + 1;
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece;

		if (nfsb_wire_feed(wi, data + off, n) < 0)
			break;
		off += n;
	}
	for (int i = 0; i < 3; i++) {
		CHECK(w[i].pending == 0 || w[i].pending == 1);
		if (i < 2 && w[i].pending == 0 && w[i].err == 0)
			CHECK(c[i].got <= WANT);
	}
	nfsb_wire_free(wi); /* completes what is pending */
	for (int i = 0; i < 3; i++)
		CHECK(w[i].pending == 0);
	close(srv);
	free(buf[0]);
	free(buf[1]);
	pthread_mutex_destroy(&nf.lock);
	return 0;
}
