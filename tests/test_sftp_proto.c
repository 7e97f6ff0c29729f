/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_sftp_proto.c - unit tests of the SFTP engine's packet layer
 * (backends/sftp/proto.c): requests encoded byte for byte as
 * draft-ietf-secsh-filexfer-02 and OpenSSH's PROTOCOL lay them out, and
 * replies recorded from OpenSSH 9.2's sftp-server parsed, truncated at
 * every length and with lying length fields, which must fail cleanly.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sftp/proto.h"

Suite *sftp_proto_suite(void);

static const uint8_t open_req[] = {
	0,         0, 0, 27,                                  /* length */
	SFTP_OPEN, 0, 0, 0,    7,                             /* type, id */
	0,         0, 0, 6,    '/', 't', 'm',  'p', '/', 'x', /* path */
	0,         0, 0, 0x1a,                      /* WRITE|CREAT|TRUNC */
	0,         0, 0, 4,    0,   0,   0x81, 0xa4 /* PERMISSIONS 0100644 */
};

START_TEST(test_encode_open)
{
	struct sftp_attrs a = {.flags = SFTP_ATTR_PERMISSIONS, .perm = 0100644};
	struct sftp_buf b;

	sftp_buf_init(&b);
	sftp_buf_begin(&b, SFTP_OPEN, 7);
	sftp_put_cstr(&b, "/tmp/x");
	sftp_put_u32(&b, SFTP_FXF_WRITE | SFTP_FXF_CREAT | SFTP_FXF_TRUNC);
	sftp_put_attrs(&b, &a);
	ck_assert_int_eq(sftp_buf_end(&b, 0), 0);
	ck_assert_uint_eq(b.len, sizeof(open_req));
	ck_assert_mem_eq(b.p, open_req, sizeof(open_req));
	sftp_buf_free(&b);
}
END_TEST

/* A WRITE's data is sent after the packet without a copy: the length
 * field counts it, the data's string length was put by the caller. */
START_TEST(test_encode_write_extra)
{
	struct sftp_buf b;

	sftp_buf_init(&b);
	sftp_buf_begin(&b, SFTP_WRITE, 1);
	sftp_put_str(&b, "h", 1);
	sftp_put_u64(&b, 0x0000000100000002ull);
	sftp_put_u32(&b, 1000);
	ck_assert_int_eq(sftp_buf_end(&b, 1000), 0);
	/* 1 type + 4 id + 5 handle + 8 offset + 4 length + 1000 data */
	ck_assert_uint_eq(b.len, 4 + 1 + 4 + 5 + 8 + 4);
	ck_assert_uint_eq(
		((uint32_t)b.p[0] << 24 | b.p[1] << 16 | b.p[2] << 8 | b.p[3]),
		1 + 4 + 5 + 8 + 4 + 1000);
	/* offset big-endian */
	ck_assert_uint_eq(b.p[14], 0);
	ck_assert_uint_eq(b.p[17], 1);
	ck_assert_uint_eq(b.p[21], 2);
	/* a packet longer than any server takes is refused */
	ck_assert_int_eq(sftp_buf_end(&b, SFTP_MAX_PACKET), -EMSGSIZE);
	sftp_buf_free(&b);
}
END_TEST

START_TEST(test_encode_ext_and_init)
{
	static const uint8_t init[] = {0, 0, 0, 5, SFTP_INIT, 0, 0, 0, 3};
	static const uint8_t ext[] = {
		0,   0,   0,   27,  SFTP_EXTENDED, 0,   0,   0,   9,   0,   0,
		0,   18,  'l', 'i', 'm',           'i', 't', 's', '@', 'o', 'p',
		'e', 'n', 's', 's', 'h',           '.', 'c', 'o', 'm'};
	struct sftp_buf b;

	sftp_buf_init(&b);
	sftp_buf_begin(&b, SFTP_INIT, 0);
	sftp_put_u32(&b, 3);
	ck_assert_int_eq(sftp_buf_end(&b, 0), 0);
	ck_assert_uint_eq(b.len, sizeof(init));
	ck_assert_mem_eq(b.p, init, sizeof(init));
	sftp_buf_begin_ext(&b, 9, "limits@openssh.com");
	ck_assert_int_eq(sftp_buf_end(&b, 0), 0);
	ck_assert_uint_eq(b.len, sizeof(ext));
	ck_assert_mem_eq(b.p, ext, sizeof(ext));
	sftp_buf_free(&b);
}
END_TEST

/* An oversized string poisons the buffer instead of growing it without
 * bound; the request then fails as one. */
START_TEST(test_encode_oversized)
{
	struct sftp_buf b;
	char *big = calloc(1, SFTP_MAX_PACKET + 1);

	ck_assert_ptr_nonnull(big);
	sftp_buf_init(&b);
	sftp_buf_begin(&b, SFTP_STAT, 1);
	sftp_put_str(&b, big, SFTP_MAX_PACKET + 1);
	sftp_put_u32(&b, 1);
	ck_assert_int_eq(sftp_buf_end(&b, 0), -ENOMEM);
	sftp_buf_free(&b);
	free(big);
}
END_TEST

/* OpenSSH 9.2's VERSION body (after the type byte), abridged */
static const uint8_t version_body[] = {
	0,   0,   0,   3, /* version */
	0,   0,   0,   18,  'l', 'i', 'm', 'i', 't', 's', '@', 'o', 'p', 'e',
	'n', 's', 's', 'h', '.', 'c', 'o', 'm', 0,   0,   0,   1,   '1', 0,
	0,   0,   17,  'f', 's', 'y', 'n', 'c', '@', 'o', 'p', 'e', 'n', 's',
	's', 'h', '.', 'c', 'o', 'm', 0,   0,   0,   1,   '1',
};

struct exts {
	int n;
	bool limits, fsync;
};

static void ext_cb(void *ctx, const char *name, size_t nlen, const char *data,
		   size_t dlen)
{
	struct exts *e = ctx;

	e->n++;
	if (nlen == 18 && memcmp(name, "limits@openssh.com", 18) == 0)
		e->limits = dlen == 1 && data[0] == '1';
	if (nlen == 17 && memcmp(name, "fsync@openssh.com", 17) == 0)
		e->fsync = true;
}

START_TEST(test_parse_version)
{
	struct exts e = {0};
	uint32_t v;

	ck_assert_int_eq(sftp_parse_version(version_body, sizeof(version_body),
					    &v, ext_cb, &e),
			 0);
	ck_assert_uint_eq(v, 3);
	ck_assert_int_eq(e.n, 2);
	ck_assert(e.limits && e.fsync);
	/* every truncation but the one after the version fails */
	for (size_t len = 0; len < sizeof(version_body); len++) {
		int rc = sftp_parse_version(version_body, len, &v, NULL, NULL);

		ck_assert_int_eq(rc, len == 4 || len == 31 ? 0 : -EPROTO);
	}
}
END_TEST

/* STATUS, id 5, NO_SUCH_FILE, "No such file", "" */
static const uint8_t status_body[] = {
	0,   0,   0,   5,   0,   0,   0,   2,   0,   0,   0, 12, 'N', 'o',
	' ', 's', 'u', 'c', 'h', ' ', 'f', 'i', 'l', 'e', 0, 0,  0,   0};

START_TEST(test_parse_status)
{
	struct sftp_reply r;

	ck_assert_int_eq(sftp_parse_reply(SFTP_STATUS, status_body,
					  sizeof(status_body), &r),
			 0);
	ck_assert_uint_eq(r.id, 5);
	ck_assert_uint_eq(r.u.status.code, SFTP_FX_NO_SUCH_FILE);
	ck_assert_uint_eq(r.u.status.msg_len, 12);
	ck_assert_mem_eq(r.u.status.msg, "No such file", 12);
	/* old servers send only the code */
	ck_assert_int_eq(sftp_parse_reply(SFTP_STATUS, status_body, 8, &r), 0);
	ck_assert_uint_eq(r.u.status.code, SFTP_FX_NO_SUCH_FILE);
	ck_assert_ptr_null(r.u.status.msg);
	ck_assert_int_eq(sftp_parse_reply(SFTP_STATUS, status_body, 7, &r),
			 -EPROTO);
}
END_TEST

/* ATTRS, id 1: size, uid/gid, permissions, times, and one extended
 * pair */
static const uint8_t attrs_body[] = {
	0,    0, 0,    1,                      /* id */
	0x80, 0, 0,    0x0f,                   /* flags */
	0,    0, 0,    1,    0,    0, 0, 2,    /* size 2^32+2 */
	0,    0, 3,    0xe8, 0,    0, 3, 0xe9, /* uid 1000 gid 1001 */
	0,    0, 0x41, 0xed,                   /* 040755 */
	0x65, 0, 0,    0,    0x65, 0, 0, 1,    /* atime, mtime */
	0,    0, 0,    1,                      /* one pair */
	0,    0, 0,    1,    'a',  0, 0, 0,    2, 'b', 'c',
};

START_TEST(test_parse_attrs)
{
	struct sftp_reply r;

	ck_assert_int_eq(sftp_parse_reply(SFTP_ATTRS, attrs_body,
					  sizeof(attrs_body), &r),
			 0);
	ck_assert_uint_eq(r.u.attrs.flags, 0x0f);
	ck_assert_uint_eq(r.u.attrs.size, 0x100000002ull);
	ck_assert_uint_eq(r.u.attrs.uid, 1000);
	ck_assert_uint_eq(r.u.attrs.gid, 1001);
	ck_assert_uint_eq(r.u.attrs.perm, 040755);
	ck_assert_uint_eq(r.u.attrs.atime, 0x65000000u);
	ck_assert_uint_eq(r.u.attrs.mtime, 0x65000001u);
	for (size_t len = 0; len < sizeof(attrs_body); len++)
		ck_assert_int_eq(
			sftp_parse_reply(SFTP_ATTRS, attrs_body, len, &r),
			-EPROTO);
}
END_TEST

/* A lying count of extended pairs must fail, not loop. */
START_TEST(test_parse_attrs_lying_count)
{
	uint8_t body[sizeof(attrs_body)];
	struct sftp_reply r;

	memcpy(body, attrs_body, sizeof(body));
	body[36] = 0xff; /* pairs: 0xff000001 */
	ck_assert_int_eq(sftp_parse_reply(SFTP_ATTRS, body, sizeof(body), &r),
			 -EPROTO);
}
END_TEST

/* NAME with two entries, as READDIR answers */
static const uint8_t name_body[] = {
	0, 0, 0, 3,                                   /* id */
	0, 0, 0, 2,                                   /* count */
	0, 0, 0, 1, 'a',                              /* name */
	0, 0, 0, 0,                                   /* longname */
	0, 0, 0, 4, 0,   0,   0x81, 0xa4,             /* perm 0100644 */
	0, 0, 0, 2, 'b', 'c',                         /* name */
	0, 0, 0, 3, 'l', 's', ' ',                    /* longname */
	0, 0, 0, 1, 0,   0,   0,    0,    0, 0, 0, 9, /* size 9 */
};

START_TEST(test_parse_name)
{
	struct sftp_attrs a;
	struct sftp_reply r;
	const char *n;
	size_t nlen;

	ck_assert_int_eq(
		sftp_parse_reply(SFTP_NAME, name_body, sizeof(name_body), &r),
		0);
	ck_assert_uint_eq(r.u.name.count, 2);
	ck_assert_int_eq(sftp_get_name(&r.u.name.rest, &n, &nlen, &a), 0);
	ck_assert_uint_eq(nlen, 1);
	ck_assert_mem_eq(n, "a", 1);
	ck_assert_uint_eq(a.perm, 0100644);
	ck_assert_int_eq(sftp_get_name(&r.u.name.rest, &n, &nlen, &a), 0);
	ck_assert_mem_eq(n, "bc", 2);
	ck_assert_uint_eq(a.flags, SFTP_ATTR_SIZE);
	ck_assert_uint_eq(a.size, 9);
	/* a third is not there */
	ck_assert_int_eq(sftp_get_name(&r.u.name.rest, &n, &nlen, &a), -EPROTO);
	/* truncated: the header may parse, the entries then fail */
	for (size_t len = 0; len < sizeof(name_body); len++) {
		int rc = sftp_parse_reply(SFTP_NAME, name_body, len, &r);
		int bad = rc < 0;

		for (uint32_t i = 0; !bad && i < r.u.name.count; i++)
			bad = sftp_get_name(&r.u.name.rest, &n, &nlen, &a) < 0;
		ck_assert_msg(bad, "truncated at %zu parsed", len);
	}
}
END_TEST

/* The smallest entries a server may send: a one-byte name, an empty
 * longname and no attributes, 13 bytes each. */
START_TEST(test_parse_name_small_entries)
{
	enum { N = 100 };
	uint8_t body[4 + 4 + N * 13];
	struct sftp_attrs a;
	struct sftp_reply r;
	const char *n;
	size_t nlen, o = 0;

	memset(body, 0, sizeof(body));
	body[o + 3] = 7; /* id */
	o += 4;
	body[o + 3] = N; /* count */
	o += 4;
	for (int i = 0; i < N; i++) {
		body[o + 3] = 1;
		body[o + 4] = (uint8_t)('a' + i % 26);
		o += 13; /* name, empty longname, flags 0 */
	}
	ck_assert_int_eq(sftp_parse_reply(SFTP_NAME, body, sizeof(body), &r),
			 0);
	ck_assert_uint_eq(r.u.name.count, N);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(sftp_get_name(&r.u.name.rest, &n, &nlen, &a),
				 0);
		ck_assert_uint_eq(nlen, 1);
		ck_assert_uint_eq(a.flags, 0);
	}
}
END_TEST

START_TEST(test_parse_handle_data)
{
	static const uint8_t h[] = {0, 0, 0, 4, 0, 0, 0, 2, 'h', '1'};
	static const uint8_t d[] = {0, 0, 0, 4, 0, 0, 0, 3, 'x', 'y', 'z'};
	uint8_t empty[] = {0, 0, 0, 4, 0, 0, 0, 0};
	struct sftp_reply r;

	ck_assert_int_eq(sftp_parse_reply(SFTP_HANDLE, h, sizeof(h), &r), 0);
	ck_assert_uint_eq(r.u.handle.len, 2);
	ck_assert_mem_eq(r.u.handle.h, "h1", 2);
	/* an empty handle is no handle */
	ck_assert_int_eq(
		sftp_parse_reply(SFTP_HANDLE, empty, sizeof(empty), &r),
		-EPROTO);
	ck_assert_int_eq(sftp_parse_reply(SFTP_DATA, d, sizeof(d), &r), 0);
	ck_assert_uint_eq(r.u.data.len, 3);
	ck_assert_int_eq(sftp_parse_reply(SFTP_DATA, d, sizeof(d) - 1, &r),
			 -EPROTO);
	/* a string length past the packet */
	empty[7] = 0xff;
	ck_assert_int_eq(sftp_parse_reply(SFTP_DATA, empty, sizeof(empty), &r),
			 -EPROTO);
	/* a type no request is answered with */
	ck_assert_int_eq(sftp_parse_reply(SFTP_OPEN, d, sizeof(d), &r),
			 -EPROTO);
}
END_TEST

START_TEST(test_parse_limits_statvfs)
{
	uint8_t body[11 * 8];
	struct sftp_statvfs sv;
	struct sftp_limits l;
	struct sftp_rd rd;

	memset(body, 0, sizeof(body));
	body[7] = 1;            /* max packet / bsize 1 */
	body[15] = 2;           /* max read / frsize 2 */
	body[22] = 0x10;        /* max write 4096 / blocks */
	body[8 * 10 + 7] = 255; /* namemax */
	sftp_rd_init(&rd, body, 32);
	ck_assert_int_eq(sftp_parse_limits(&rd, &l), 0);
	ck_assert_uint_eq(l.max_packet, 1);
	ck_assert_uint_eq(l.max_read, 2);
	ck_assert_uint_eq(l.max_write, 4096);
	sftp_rd_init(&rd, body, 31);
	ck_assert_int_eq(sftp_parse_limits(&rd, &l), -EPROTO);
	sftp_rd_init(&rd, body, sizeof(body));
	ck_assert_int_eq(sftp_parse_statvfs(&rd, &sv), 0);
	ck_assert_uint_eq(sv.namemax, 255);
	sftp_rd_init(&rd, body, sizeof(body) - 1);
	ck_assert_int_eq(sftp_parse_statvfs(&rd, &sv), -EPROTO);
}
END_TEST

Suite *sftp_proto_suite(void)
{
	Suite *s = suite_create("sftp_proto");
	TCase *tc = tcase_create("proto");

	tcase_add_test(tc, test_encode_open);
	tcase_add_test(tc, test_encode_write_extra);
	tcase_add_test(tc, test_encode_ext_and_init);
	tcase_add_test(tc, test_encode_oversized);
	tcase_add_test(tc, test_parse_version);
	tcase_add_test(tc, test_parse_status);
	tcase_add_test(tc, test_parse_attrs);
	tcase_add_test(tc, test_parse_attrs_lying_count);
	tcase_add_test(tc, test_parse_name);
	tcase_add_test(tc, test_parse_name_small_entries);
	tcase_add_test(tc, test_parse_handle_data);
	tcase_add_test(tc, test_parse_limits_statvfs);
	suite_add_tcase(s, tc);
	return s;
}
