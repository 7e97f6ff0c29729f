/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_sftp_reply.c - libFuzzer target for the SFTP engine's reply parser
 * (backends/sftp/proto.c): what a hostile server can send.  The first
 * byte picks the packet type, the rest is the body after it, parsed as
 * the engine does: the reply, every entry of a NAME, an EXTENDED_REPLY
 * as limits and statvfs, and the whole input as a VERSION.
 *
 * Besides memory errors (ASan/UBSan/LSan), it checks the parser's
 * contract: whatever it returns points inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "backends/sftp/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

static const uint8_t *lo, *hi;

static void inside(const void *p, size_t len)
{
	if (!len)
		return;
	CHECK((const uint8_t *)p >= lo && (const uint8_t *)p + len <= hi);
}

static void ext(void *ctx, const char *name, size_t nlen, const char *d,
		size_t dlen)
{
	(void)ctx;
	inside(name, nlen);
	inside(d, dlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t types[] = {SFTP_STATUS, SFTP_HANDLE,
					SFTP_DATA,   SFTP_NAME,
					SFTP_ATTRS,  SFTP_EXTENDED_REPLY};
	struct sftp_reply r;
	uint32_t version;

	if (size < 1)
		return 0;
	lo = data + 1;
	hi = data + size;
	if (sftp_parse_reply(types[data[0] % sizeof(types)], data + 1, size - 1,
			     &r) == 0) {
		switch (r.type) {
		case SFTP_STATUS:
			inside(r.u.status.msg, r.u.status.msg_len);
			break;
		case SFTP_HANDLE:
			CHECK(r.u.handle.len > 0 &&
			      r.u.handle.len <= SFTP_MAX_HANDLE);
			inside(r.u.handle.h, r.u.handle.len);
			break;
		case SFTP_DATA:
			inside(r.u.data.p, r.u.data.len);
			break;
		case SFTP_NAME:
			for (uint32_t i = 0; i < r.u.name.count; i++) {
				struct sftp_attrs a;
				const char *n;
				size_t nlen;

				if (sftp_get_name(&r.u.name.rest, &n, &nlen,
						  &a) < 0)
					break;
				inside(n, nlen);
			}
			break;
		case SFTP_EXTENDED_REPLY: {
			struct sftp_rd rd = r.u.ext;
			struct sftp_statvfs sv;
			struct sftp_limits l;

			sftp_parse_limits(&rd, &l);
			rd = r.u.ext;
			sftp_parse_statvfs(&rd, &sv);
			break;
		}
		default:
			break;
		}
	}
	lo = data;
	sftp_parse_version(data, size, &version, ext, NULL);
	return 0;
}
