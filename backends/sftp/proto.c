/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proto.c - SFTP v3 packets: encoding requests, parsing replies (see
 * proto.h).  Big-endian integers, strings as uint32 length + bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sftp/proto.h"

/* ---- Encoding ------------------------------------------------------ */

void sftp_buf_init(struct sftp_buf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}

void sftp_buf_free(struct sftp_buf *b)
{
	free(b->p);
	sftp_buf_init(b);
}

static uint8_t *sftp_buf_room(struct sftp_buf *b, size_t n)
{
	uint8_t *at;

	if (b->oom)
		return NULL;
	if (n > SFTP_MAX_PACKET * 2 || b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		uint8_t *p;

		if (n > SFTP_MAX_PACKET * 2) {
			b->oom = true; /* never a valid packet */
			return NULL;
		}
		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	at = b->p + b->len;
	b->len += n;
	return at;
}

static void sftp_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void sftp_put_u8(struct sftp_buf *b, uint8_t v)
{
	uint8_t *p = sftp_buf_room(b, 1);

	if (p)
		*p = v;
}

void sftp_put_u32(struct sftp_buf *b, uint32_t v)
{
	uint8_t *p = sftp_buf_room(b, 4);

	if (p)
		sftp_be32(p, v);
}

void sftp_put_u64(struct sftp_buf *b, uint64_t v)
{
	sftp_put_u32(b, (uint32_t)(v >> 32));
	sftp_put_u32(b, (uint32_t)v);
}

void sftp_put_str(struct sftp_buf *b, const void *s, size_t len)
{
	uint8_t *p;

	if (len > SFTP_MAX_PACKET) {
		b->oom = true;
		return;
	}
	sftp_put_u32(b, (uint32_t)len);
	p = sftp_buf_room(b, len);
	if (p && len)
		memcpy(p, s, len);
}

void sftp_put_cstr(struct sftp_buf *b, const char *s)
{
	sftp_put_str(b, s, strlen(s));
}

void sftp_put_attrs(struct sftp_buf *b, const struct sftp_attrs *a)
{
	uint32_t fl = a->flags & ~SFTP_ATTR_EXTENDED;

	sftp_put_u32(b, fl);
	if (fl & SFTP_ATTR_SIZE)
		sftp_put_u64(b, a->size);
	if (fl & SFTP_ATTR_UIDGID) {
		sftp_put_u32(b, a->uid);
		sftp_put_u32(b, a->gid);
	}
	if (fl & SFTP_ATTR_PERMISSIONS)
		sftp_put_u32(b, a->perm);
	if (fl & SFTP_ATTR_ACMODTIME) {
		sftp_put_u32(b, a->atime);
		sftp_put_u32(b, a->mtime);
	}
}

void sftp_buf_begin(struct sftp_buf *b, uint8_t type, uint32_t id)
{
	b->len = 0;
	b->oom = false;
	sftp_put_u32(b, 0); /* length, filled in by sftp_buf_end */
	sftp_put_u8(b, type);
	if (type != SFTP_INIT)
		sftp_put_u32(b, id);
}

void sftp_buf_begin_ext(struct sftp_buf *b, uint32_t id, const char *name)
{
	sftp_buf_begin(b, SFTP_EXTENDED, id);
	sftp_put_cstr(b, name);
}

int sftp_buf_end(struct sftp_buf *b, size_t extra)
{
	size_t body;

	if (b->oom || b->len < 5)
		return -ENOMEM;
	body = b->len - 4 + extra;
	if (extra > SFTP_MAX_PACKET || body > SFTP_MAX_PACKET)
		return -EMSGSIZE;
	sftp_be32(b->p, (uint32_t)body);
	return 0;
}

/* ---- Parsing ------------------------------------------------------- */

static const uint8_t *sftp_take(struct sftp_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || r->left < n) {
		r->bad = true;
		r->left = 0;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint8_t sftp_get_u8(struct sftp_rd *r)
{
	const uint8_t *p = sftp_take(r, 1);

	return p ? p[0] : 0;
}

uint32_t sftp_get_u32(struct sftp_rd *r)
{
	const uint8_t *p = sftp_take(r, 4);

	if (!p)
		return 0;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

uint64_t sftp_get_u64(struct sftp_rd *r)
{
	uint64_t hi = sftp_get_u32(r);

	return hi << 32 | sftp_get_u32(r);
}

const char *sftp_get_str(struct sftp_rd *r, size_t *len)
{
	uint32_t n = sftp_get_u32(r);
	const uint8_t *p = sftp_take(r, n);

	*len = p ? n : 0;
	return (const char *)p;
}

void sftp_get_attrs(struct sftp_rd *r, struct sftp_attrs *a)
{
	memset(a, 0, sizeof(*a));
	a->flags = sftp_get_u32(r);
	if (a->flags & SFTP_ATTR_SIZE)
		a->size = sftp_get_u64(r);
	if (a->flags & SFTP_ATTR_UIDGID) {
		a->uid = sftp_get_u32(r);
		a->gid = sftp_get_u32(r);
	}
	if (a->flags & SFTP_ATTR_PERMISSIONS)
		a->perm = sftp_get_u32(r);
	if (a->flags & SFTP_ATTR_ACMODTIME) {
		a->atime = sftp_get_u32(r);
		a->mtime = sftp_get_u32(r);
	}
	if (a->flags & SFTP_ATTR_EXTENDED) {
		uint32_t n = sftp_get_u32(r);
		size_t l;

		/* each pair is at least 8 bytes: a count beyond what the
		 * packet holds fails here rather than looping for long */
		if (n > r->left / 8)
			r->bad = true;
		for (uint32_t i = 0; i < n && !r->bad; i++) {
			sftp_get_str(r, &l);
			sftp_get_str(r, &l);
		}
	}
	a->flags &= ~SFTP_ATTR_EXTENDED;
	if (r->bad)
		a->flags = 0;
}

int sftp_parse_version(const void *body, size_t len, uint32_t *version,
		       void (*ext)(void *ctx, const char *name, size_t nlen,
				   const char *data, size_t dlen),
		       void *ctx)
{
	struct sftp_rd r;

	sftp_rd_init(&r, body, len);
	*version = sftp_get_u32(&r);
	if (r.bad)
		return -EPROTO;
	while (r.left) {
		size_t nlen, dlen;
		const char *name = sftp_get_str(&r, &nlen);
		const char *data = sftp_get_str(&r, &dlen);

		if (r.bad)
			return -EPROTO;
		if (ext)
			ext(ctx, name, nlen, data, dlen);
	}
	return 0;
}

int sftp_parse_reply(uint8_t type, const void *body, size_t len,
		     struct sftp_reply *rep)
{
	struct sftp_rd r;

	sftp_rd_init(&r, body, len);
	memset(rep, 0, sizeof(*rep));
	rep->type = type;
	rep->id = sftp_get_u32(&r);
	switch (type) {
	case SFTP_STATUS:
		rep->u.status.code = sftp_get_u32(&r);
		/* message and language tag are missing in replies of some
		 * old servers; take what is there */
		if (!r.bad && r.left >= 4) {
			rep->u.status.msg =
				sftp_get_str(&r, &rep->u.status.msg_len);
			if (r.bad) {
				rep->u.status.msg = NULL;
				rep->u.status.msg_len = 0;
				r.bad = false;
			}
		}
		break;
	case SFTP_HANDLE:
		rep->u.handle.h = sftp_get_str(&r, &rep->u.handle.len);
		if (!r.bad && (rep->u.handle.len == 0 ||
			       rep->u.handle.len > SFTP_MAX_HANDLE))
			r.bad = true;
		break;
	case SFTP_DATA:
		rep->u.data.p = sftp_get_str(&r, &rep->u.data.len);
		break;
	case SFTP_NAME:
		rep->u.name.count = sftp_get_u32(&r);
		/* an entry is at least 12 bytes (an empty name and longname,
		 * attribute flags 0): more than that many cannot be there */
		if (!r.bad && rep->u.name.count > r.left / 12)
			r.bad = true;
		rep->u.name.rest = r;
		break;
	case SFTP_ATTRS:
		sftp_get_attrs(&r, &rep->u.attrs);
		break;
	case SFTP_EXTENDED_REPLY:
		rep->u.ext = r;
		break;
	default:
		return -EPROTO;
	}
	return r.bad ? -EPROTO : 0;
}

int sftp_get_name(struct sftp_rd *r, const char **name, size_t *nlen,
		  struct sftp_attrs *a)
{
	size_t llen;

	*name = sftp_get_str(r, nlen);
	sftp_get_str(r, &llen); /* longname: ls -l text, unused */
	sftp_get_attrs(r, a);
	return r->bad ? -EPROTO : 0;
}

int sftp_parse_statvfs(struct sftp_rd *r, struct sftp_statvfs *s)
{
	s->bsize = sftp_get_u64(r);
	s->frsize = sftp_get_u64(r);
	s->blocks = sftp_get_u64(r);
	s->bfree = sftp_get_u64(r);
	s->bavail = sftp_get_u64(r);
	s->files = sftp_get_u64(r);
	s->ffree = sftp_get_u64(r);
	s->favail = sftp_get_u64(r);
	s->fsid = sftp_get_u64(r);
	s->flag = sftp_get_u64(r);
	s->namemax = sftp_get_u64(r);
	return r->bad ? -EPROTO : 0;
}

int sftp_parse_limits(struct sftp_rd *r, struct sftp_limits *l)
{
	l->max_packet = sftp_get_u64(r);
	l->max_read = sftp_get_u64(r);
	l->max_write = sftp_get_u64(r);
	l->max_open_handles = sftp_get_u64(r);
	return r->bad ? -EPROTO : 0;
}
