/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xdr.c - reading XDR (RFC 4506) from a server's reply without running past
 * its end: what our own COMPOUND replies (v4.c) and our own connections'
 * replies (wire.c) are decoded with. */
#include "backends/nfs/internal.h"

const unsigned char *nfsb_xdr_take(struct nfsb_xdr_in *in, size_t n)
{
	const unsigned char *p = in->p;

	if (in->left < n) {
		in->short_ = true;
		in->left = 0;
		return NULL;
	}
	in->p += n;
	in->left -= n;
	return p;
}

uint32_t nfsb_xdr_get_u32(struct nfsb_xdr_in *in)
{
	const unsigned char *p = nfsb_xdr_take(in, 4);

	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			       (uint32_t)p[2] << 8 | p[3]
		 : 0;
}

uint64_t nfsb_xdr_get_u64(struct nfsb_xdr_in *in)
{
	uint64_t hi = nfsb_xdr_get_u32(in);

	return hi << 32 | nfsb_xdr_get_u32(in);
}

const unsigned char *nfsb_xdr_skip(struct nfsb_xdr_in *in, size_t n)
{
	/* a length from the wire: checked before it is rounded up, which
	 * could wrap for one near SIZE_MAX */
	if (n > in->left)
		return nfsb_xdr_take(in, n);
	return nfsb_xdr_take(in, n + (4 - n % 4) % 4);
}
