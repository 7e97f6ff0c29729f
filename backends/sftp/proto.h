/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proto.h - SFTP version 3 packets (draft-ietf-secsh-filexfer-02) and the
 * extensions OpenSSH adds to it (its PROTOCOL file, section 4): requests
 * encoded into a growing buffer, replies parsed from a received packet.
 *
 * Pure code: no I/O, no libssh2, no locks.  Every length read from the
 * wire is checked against what the packet holds, so a hostile server can
 * make a parse fail (-EPROTO) but never read past the packet; parsed
 * strings point into the packet and live as long as it does.
 *
 * A packet on the wire is uint32 length, byte type, then (for every type
 * but INIT and VERSION) uint32 request id and the type's fields.
 */
#ifndef VFSD_BACKENDS_SFTP_PROTO_H
#define VFSD_BACKENDS_SFTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* packet types */
enum {
	SFTP_INIT = 1,
	SFTP_VERSION = 2,
	SFTP_OPEN = 3,
	SFTP_CLOSE = 4,
	SFTP_READ = 5,
	SFTP_WRITE = 6,
	SFTP_LSTAT = 7,
	SFTP_FSTAT = 8,
	SFTP_SETSTAT = 9,
	SFTP_FSETSTAT = 10,
	SFTP_OPENDIR = 11,
	SFTP_READDIR = 12,
	SFTP_REMOVE = 13,
	SFTP_MKDIR = 14,
	SFTP_RMDIR = 15,
	SFTP_REALPATH = 16,
	SFTP_STAT = 17,
	SFTP_RENAME = 18,
	SFTP_READLINK = 19,
	SFTP_SYMLINK = 20,
	SFTP_STATUS = 101,
	SFTP_HANDLE = 102,
	SFTP_DATA = 103,
	SFTP_NAME = 104,
	SFTP_ATTRS = 105,
	SFTP_EXTENDED = 200,
	SFTP_EXTENDED_REPLY = 201,
};

/* status codes */
enum {
	SFTP_FX_OK = 0,
	SFTP_FX_EOF = 1,
	SFTP_FX_NO_SUCH_FILE = 2,
	SFTP_FX_PERMISSION_DENIED = 3,
	SFTP_FX_FAILURE = 4,
	SFTP_FX_BAD_MESSAGE = 5,
	SFTP_FX_NO_CONNECTION = 6,
	SFTP_FX_CONNECTION_LOST = 7,
	SFTP_FX_OP_UNSUPPORTED = 8,
	/* later drafts' codes, which some servers send to v3 clients too */
	SFTP_FX_INVALID_HANDLE = 9,
	SFTP_FX_NO_SUCH_PATH = 10,
	SFTP_FX_FILE_ALREADY_EXISTS = 11,
	SFTP_FX_WRITE_PROTECT = 12,
	SFTP_FX_NO_MEDIA = 13,
	SFTP_FX_NO_SPACE_ON_FILESYSTEM = 14,
	SFTP_FX_QUOTA_EXCEEDED = 15,
	SFTP_FX_UNKNOWN_PRINCIPAL = 16,
	SFTP_FX_LOCK_CONFLICT = 17,
	SFTP_FX_DIR_NOT_EMPTY = 18,
	SFTP_FX_NOT_A_DIRECTORY = 19,
	SFTP_FX_INVALID_FILENAME = 20,
	SFTP_FX_LINK_LOOP = 21,
};

/* attribute flags */
#define SFTP_ATTR_SIZE        0x00000001u
#define SFTP_ATTR_UIDGID      0x00000002u
#define SFTP_ATTR_PERMISSIONS 0x00000004u
#define SFTP_ATTR_ACMODTIME   0x00000008u
#define SFTP_ATTR_EXTENDED    0x80000000u

/* open flags (pflags) */
#define SFTP_FXF_READ   0x00000001u
#define SFTP_FXF_WRITE  0x00000002u
#define SFTP_FXF_APPEND 0x00000004u
#define SFTP_FXF_CREAT  0x00000008u
#define SFTP_FXF_TRUNC  0x00000010u
#define SFTP_FXF_EXCL   0x00000020u

/* statvfs@openssh.com f_flag bits */
#define SFTP_SSH_FXE_STATVFS_ST_RDONLY 0x1u
#define SFTP_SSH_FXE_STATVFS_ST_NOSUID 0x2u

/* Longest packet either side sends or takes (OpenSSH's sftp-server and
 * client use 256 KiB); replies longer than this are refused. */
#define SFTP_MAX_PACKET (256u * 1024)
/* Longest handle the protocol allows. */
#define SFTP_MAX_HANDLE 256

/* File attributes; only the members `flags` names are meaningful. */
struct sftp_attrs {
	uint32_t flags;
	uint64_t size;
	uint32_t uid, gid;
	uint32_t perm; /* type and mode bits, as st_mode */
	uint32_t atime, mtime;
};

/* ---- Encoding ------------------------------------------------------ */

/*
 * A packet being built.  `p` is malloc'd and owned by the buffer; on
 * allocation failure `oom` is set and later puts do nothing, so a
 * request is built without checks and tested once, at sftp_buf_end().
 */
struct sftp_buf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

void sftp_buf_init(struct sftp_buf *b);
void sftp_buf_free(struct sftp_buf *b);
/* Start a packet of `type` (its length filled in by sftp_buf_end); for
 * every type but INIT, `id` follows. */
void sftp_buf_begin(struct sftp_buf *b, uint8_t type, uint32_t id);
/* Start an SSH_FXP_EXTENDED request named `name`. */
void sftp_buf_begin_ext(struct sftp_buf *b, uint32_t id, const char *name);
void sftp_put_u8(struct sftp_buf *b, uint8_t v);
void sftp_put_u32(struct sftp_buf *b, uint32_t v);
void sftp_put_u64(struct sftp_buf *b, uint64_t v);
void sftp_put_str(struct sftp_buf *b, const void *s, size_t len);
void sftp_put_cstr(struct sftp_buf *b, const char *s);
void sftp_put_attrs(struct sftp_buf *b, const struct sftp_attrs *a);
/*
 * Finish the packet; `extra` bytes the caller sends right after it
 * without copying them (a WRITE's data, whose string length it has put
 * last) count in its length.  0, -ENOMEM (a put failed), or -EMSGSIZE
 * (longer than SFTP_MAX_PACKET).
 */
int sftp_buf_end(struct sftp_buf *b, size_t extra);

/* ---- Parsing ------------------------------------------------------- */

/* A cursor over received bytes; a read past the end sets `bad` and
 * yields zeros, so a parse is checked once at its end. */
struct sftp_rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static inline void sftp_rd_init(struct sftp_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->left = len;
	r->bad = false;
}

uint8_t sftp_get_u8(struct sftp_rd *r);
uint32_t sftp_get_u32(struct sftp_rd *r);
uint64_t sftp_get_u64(struct sftp_rd *r);
/* A string: points into the packet (*len bytes, not NUL-terminated);
 * NULL with `bad` set when the packet is too short. */
const char *sftp_get_str(struct sftp_rd *r, size_t *len);
/* Attributes; extended pairs are skipped. */
void sftp_get_attrs(struct sftp_rd *r, struct sftp_attrs *a);

/*
 * The server's VERSION packet (the body after the type byte): its
 * version and the extensions it names.  For each extension `ext` is
 * called with name and data (pointing into the packet).  0 or -EPROTO.
 */
int sftp_parse_version(const void *body, size_t len, uint32_t *version,
		       void (*ext)(void *ctx, const char *name, size_t nlen,
				   const char *data, size_t dlen),
		       void *ctx);

/*
 * A reply, parsed from a packet's body (after length and type; starting
 * with the request id).  Pointers point into the body.
 */
struct sftp_reply {
	uint8_t type;
	uint32_t id;
	union {
		struct {
			uint32_t code;
			const char *msg; /* may be NULL: old servers omit it */
			size_t msg_len;
		} status;
		struct {
			const char *h;
			size_t len;
		} handle;
		struct {
			const char *p;
			size_t len;
		} data;
		struct {
			uint32_t count;
			struct sftp_rd
				rest; /* the entries, for sftp_get_name */
		} name;
		struct sftp_attrs attrs;
		struct sftp_rd ext; /* EXTENDED_REPLY: its fields */
	} u;
};

/* Parse a reply body of `type`.  0, or -EPROTO: a malformed packet or
 * a type no request gets. */
int sftp_parse_reply(uint8_t type, const void *body, size_t len,
		     struct sftp_reply *r);
/*
 * The next entry of a NAME reply (call u.name.count times): file name,
 * long name (ls -l text, may be empty) and attributes.  0 or -EPROTO.
 * The name is not NUL-terminated.
 */
int sftp_get_name(struct sftp_rd *r, const char **name, size_t *nlen,
		  struct sftp_attrs *a);

/* statvfs@openssh.com's reply, as struct statvfs-like numbers. */
struct sftp_statvfs {
	uint64_t bsize, frsize, blocks, bfree, bavail, files, ffree, favail;
	uint64_t fsid, flag, namemax;
};
int sftp_parse_statvfs(struct sftp_rd *r, struct sftp_statvfs *out);

/* limits@openssh.com's reply (0: the server sets no limit). */
struct sftp_limits {
	uint64_t max_packet, max_read, max_write, max_open_handles;
};
int sftp_parse_limits(struct sftp_rd *r, struct sftp_limits *out);

#endif /* VFSD_BACKENDS_SFTP_PROTO_H */
