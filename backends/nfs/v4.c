/* SPDX-License-Identifier: GPL-2.0-or-later */
/* v4.c - our own NFSv4 COMPOUNDs, where libnfs 4.0.0 falls short. */
#include "backends/nfs/internal.h"

/* ---- NFSv4 raw compounds ------------------------------------------------ */

/*
 * libnfs 4.0.0 implements NFSv4 chmod/chown/truncate/utimes by path as
 * OPEN + SETATTR + CLOSE.  That fails on directories (NFS4ERR_ISDIR),
 * follows symlinks, and its CLOSE ends the open state of a handle we hold
 * for the same file (the next WRITE gets NFS4ERR_BAD_STATEID).  Its
 * mknod knows only character and block devices.  So these go out as our
 * own COMPOUNDs: PUTROOTFH, one LOOKUP per component (LOOKUP does not
 * follow a final symlink), then SETATTR with the anonymous stateid or
 * CREATE.
 */

static char *nfsb_xdr_u32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
	return p + 4;
}

static char *nfsb_xdr_u64(char *p, uint64_t v)
{
	return nfsb_xdr_u32(nfsb_xdr_u32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

/* owner/owner_group as numeric strings: AUTH_SYS servers (ganesha,
 * knfsd) accept them without an idmapper. */
static char *nfsb_xdr_id(char *p, unsigned long id)
{
	char num[24];
	int len = snprintf(num, sizeof(num), "%lu", id);

	p = nfsb_xdr_u32(p, (uint32_t)len);
	memset(p, 0, (size_t)(len + 3) & ~3u);
	memcpy(p, num, (size_t)len);
	return p + ((len + 3) & ~3);
}

static char *nfsb_xdr_settime(char *p, bool now, const struct timespec *ts)
{
	if (now)
		return nfsb_xdr_u32(p, 0); /* SET_TO_SERVER_TIME4 */
	p = nfsb_xdr_u32(p, 1);            /* SET_TO_CLIENT_TIME4 */
	p = nfsb_xdr_u64(p, (uint64_t)ts->tv_sec);
	return nfsb_xdr_u32(p, (uint32_t)ts->tv_nsec);
}

/* Encode the attributes of `sa` as fattr4 (ascending attribute order). */
void nfsb_v4_fattr(const struct vfs_setattr *sa, uint32_t bm[2], char *buf,
		   fattr4 *fa)
{
	char *p = buf;

	bm[0] = bm[1] = 0;
	if (sa->valid & VFS_SET_SIZE) {
		bm[0] |= 1u << FATTR4_SIZE;
		p = nfsb_xdr_u64(p, (uint64_t)sa->size);
	}
	if (sa->valid & VFS_SET_MODE) {
		bm[1] |= 1u << (FATTR4_MODE - 32);
		p = nfsb_xdr_u32(p, sa->mode & 07777);
	}
	if (sa->valid & VFS_SET_UID) {
		bm[1] |= 1u << (FATTR4_OWNER - 32);
		p = nfsb_xdr_id(p, sa->uid);
	}
	if (sa->valid & VFS_SET_GID) {
		bm[1] |= 1u << (FATTR4_OWNER_GROUP - 32);
		p = nfsb_xdr_id(p, sa->gid);
	}
	if (sa->valid & (VFS_SET_ATIME | VFS_SET_ATIME_NOW)) {
		bm[1] |= 1u << (FATTR4_TIME_ACCESS_SET - 32);
		p = nfsb_xdr_settime(p, sa->valid & VFS_SET_ATIME_NOW,
				     &sa->atime);
	}
	if (sa->valid & (VFS_SET_MTIME | VFS_SET_MTIME_NOW)) {
		bm[1] |= 1u << (FATTR4_TIME_MODIFY_SET - 32);
		p = nfsb_xdr_settime(p, sa->valid & VFS_SET_MTIME_NOW,
				     &sa->mtime);
	}
	fa->attrmask.bitmap4_len = 2;
	fa->attrmask.bitmap4_val = bm;
	fa->attr_vals.attrlist4_len = (u_int)(p - buf);
	fa->attr_vals.attrlist4_val = buf;
}

void nfsb_cb_compound4(struct rpc_context *rpc, int status, void *data,
		       void *priv)
{
	COMPOUND4res *res = data;
	int err = 0;

	if (status != RPC_STATUS_SUCCESS)
		err = -EFAULT; /* no reply: transport */
	else if (res->status != NFS4_OK)
		err = nfsstat4_to_errno(res->status);
	nfsb_wait_done(priv, err);
}

static void nfsb_cb_readlink4(struct rpc_context *rpc, int status, void *data,
			      void *priv)
{
	struct nfsb_linkreq *r = priv;
	COMPOUND4res *res = data;
	int err = 0;

	if (status != RPC_STATUS_SUCCESS) {
		err = -EFAULT;
	} else if (res->status != NFS4_OK) {
		err = nfsstat4_to_errno(res->status);
	} else if (res->resarray.resarray_len == 0) {
		err = -EIO;
	} else {
		/* Counted, not NUL-terminated (libnfs 4.0.0's own
		 * readlink hands it on as if it were). */
		nfs_resop4 last;
		linktext4 *l = &last.nfs_resop4_u.opreadlink.READLINK4res_u
					.resok4.link;

		/* unaligned in libnfs 4.0's decoding: copy it out */
		memcpy(&last,
		       (const char *)res->resarray.resarray_val +
			       (res->resarray.resarray_len - 1) * sizeof(last),
		       sizeof(last));
		r->link = strndup(l->utf8string_val, l->utf8string_len);
		if (!r->link)
			err = -ENOMEM;
	}
	nfsb_wait_done(r->w, err);
}

/* The COMPOUND of nfsb_v4_compound, for nfsb_call. */
struct nfsb_compoundreq {
	nfs_argop4 *ops;
	size_t n;
	rpc_cb cb;
	void *req;
};

static int nfsb_start_compound(struct nfsb_op *op, struct nfsb_wait *w,
			       void *arg)
{
	const struct nfsb_compoundreq *r = arg;
	COMPOUND4args args;

	memset(&args, 0, sizeof(args));
	args.argarray.argarray_len = (u_int)r->n;
	args.argarray.argarray_val = r->ops;
	if (r->cb)
		*(struct nfsb_wait **)r->req = w;
	return rpc_nfs4_compound_async(nfs_get_rpc_context(op->nfs),
				       r->cb ? r->cb : nfsb_cb_compound4, &args,
				       r->cb ? r->req : (void *)w);
}

/*
 * Send PUTROOTFH, LOOKUP of every component of export + `full` (without
 * the last one if `last_name` is non-NULL: it then receives that name for
 * a CREATE), then `tail`.  With `cb`, `tail`'s result is decoded by it into
 * `req`, a request whose first member is the struct nfsb_wait * it ends
 * (as struct nfsb_linkreq); without, only the status counts.
 */
int nfsb_v4_compound(struct nfsb_mount *m, const char *full, nfs_argop4 *tail,
		     component4 *last_name, rpc_cb cb, void *req)
{
	char *path = NULL, *save = NULL, *comp;
	nfs_argop4 *ops = NULL;
	struct nfsb_compoundreq r;
	size_t n = 0, cap;
	int ret;

	if (asprintf(&path, "%s/%s", m->export, full) < 0)
		return -ENOMEM;
	cap = 3;
	for (const char *c = path; *c; c++)
		cap += *c == '/';
	ops = calloc(cap, sizeof(*ops));
	if (!ops) {
		ret = -ENOMEM;
		goto out;
	}
	ops[n++].argop = OP_PUTROOTFH;
	for (comp = strtok_r(path, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		ops[n].argop = OP_LOOKUP;
		ops[n].nfs_argop4_u.oplookup.objname.utf8string_len =
			(u_int)strlen(comp);
		ops[n].nfs_argop4_u.oplookup.objname.utf8string_val = comp;
		n++;
	}
	if (last_name) {
		if (n < 2) {
			ret = -EINVAL;
			goto out;
		}
		*last_name = ops[--n].nfs_argop4_u.oplookup.objname;
	}
	ops[n++] = *tail;
	r = (struct nfsb_compoundreq){ops, n, cb, req};
	ret = nfsb_call(m, nfsb_start_compound, &r);
out:
	free(ops);
	free(path);
	return ret;
}

int nfsb_v4_readlink(struct nfsb_mount *m, const char *full, char **target)
{
	struct nfsb_linkreq lr = {NULL, NULL};
	nfs_argop4 tail;
	int ret;

	memset(&tail, 0, sizeof(tail));
	tail.argop = OP_READLINK;
	ret = nfsb_v4_compound(m, full, &tail, NULL, nfsb_cb_readlink4, &lr);
	if (ret < 0) {
		free(lr.link);
		return ret;
	}
	*target = lr.link;
	return 0;
}

int nfsb_v4_setattr(struct nfsb_mount *m, const char *full,
		    const struct vfs_setattr *sa)
{
	char buf[NFSB_V4_ATTRBUF];
	uint32_t bm[2];
	nfs_argop4 tail;

	memset(&tail, 0, sizeof(tail));
	tail.argop = OP_SETATTR;
	/* stateid left all zero: the anonymous stateid */
	nfsb_v4_fattr(sa, bm, buf, &tail.nfs_argop4_u.opsetattr.obj_attributes);
	return nfsb_v4_compound(m, full, &tail, NULL, NULL, NULL);
}

int nfsb_v4_mknod(struct nfsb_mount *m, const char *full, mode_t mode,
		  dev_t rdev)
{
	struct vfs_setattr sa = {.valid = VFS_SET_MODE, .mode = mode};
	char buf[NFSB_V4_ATTRBUF];
	uint32_t bm[2];
	nfs_argop4 tail;
	CREATE4args *ca;
	int ret;

	memset(&tail, 0, sizeof(tail));
	tail.argop = OP_CREATE;
	ca = &tail.nfs_argop4_u.opcreate;
	switch (mode & S_IFMT) {
	case S_IFIFO:
		ca->objtype.type = NF4FIFO;
		break;
	case S_IFSOCK:
		ca->objtype.type = NF4SOCK;
		break;
	case S_IFCHR:
	case S_IFBLK:
		ca->objtype.type = S_ISCHR(mode) ? NF4CHR : NF4BLK;
		ca->objtype.createtype4_u.devdata.specdata1 = major(rdev);
		ca->objtype.createtype4_u.devdata.specdata2 = minor(rdev);
		break;
	default:
		return -EINVAL;
	}
	nfsb_v4_fattr(&sa, bm, buf, &ca->createattrs);
	ret = nfsb_v4_compound(m, full, &tail, &ca->objname, NULL, NULL);
	return ret;
}

/* PUTFH of nf's handle + `tail`, queued on op's context. */
int nfsb_v4_fhop(struct nfsb_op *op, const struct nfsb_file *nf,
		 const nfs_argop4 *tail, rpc_cb cb, void *priv)
{
	nfs_argop4 ops[2];
	COMPOUND4args args;

	memset(ops, 0, sizeof(ops));
	ops[0].argop = OP_PUTFH;
	ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_len = nf->fh4_len;
	ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_val = (char *)nf->fh4;
	ops[1] = *tail;
	memset(&args, 0, sizeof(args));
	args.argarray.argarray_len = 2;
	args.argarray.argarray_val = ops;
	/* Encodes at once: ops may live on our stack. */
	return rpc_nfs4_compound_async(nfs_get_rpc_context(op->nfs), cb, &args,
				       priv);
}

/* The second result of a PUTFH+op compound, or an -errno. */
int nfsb_v4_res(int status, void *data, nfs_resop4 *out)
{
	COMPOUND4res *res = data;

	if (status != RPC_STATUS_SUCCESS)
		return -EFAULT; /* no reply: transport */
	if (res->status != NFS4_OK)
		return nfsstat4_to_errno(res->status);
	if (res->resarray.resarray_len < 2)
		return -EIO;
	/* libnfs 4.0 decodes the result array at an unaligned address:
	 * copy the element out instead of reading through it */
	memcpy(out, (const char *)res->resarray.resarray_val + sizeof(*out),
	       sizeof(*out));
	return 0;
}

/* ---- GETATTR of an open file by its handle ----------------------------- */

/*
 * What a stat needs, as libnfs 4.0.0 asks for it on its path calls (so
 * that both kinds of stat describe a file alike: no fsid, st_dev 0).
 */
static const uint32_t nfsb_v4_stat_attrs[2] = {
	1u << FATTR4_TYPE | 1u << FATTR4_SIZE | 1u << FATTR4_FILEID,
	1u << (FATTR4_MODE - 32) | 1u << (FATTR4_NUMLINKS - 32) |
		1u << (FATTR4_OWNER - 32) | 1u << (FATTR4_OWNER_GROUP - 32) |
		1u << (FATTR4_SPACE_USED - 32) |
		1u << (FATTR4_TIME_ACCESS - 32) |
		1u << (FATTR4_TIME_METADATA - 32) |
		1u << (FATTR4_TIME_MODIFY - 32),
};

/* An owner string: numeric ids only (docs/nfs.md); others read as
 * nobody, as they do on path stats. */
static unsigned long nfsb_xdr_get_id(struct nfsb_xdr_in *in)
{
	uint32_t len = nfsb_xdr_get_u32(in);
	const unsigned char *s = nfsb_xdr_skip(in, len);
	unsigned long id = 0;

	if (!s || len == 0 || len > 10)
		return 65534;
	for (uint32_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 65534;
		id = id * 10 + (unsigned long)(s[i] - '0');
	}
	return id > 0xffffffffUL ? 65534 : id;
}

static void nfsb_xdr_get_time(struct nfsb_xdr_in *in, struct timespec *ts)
{
	ts->tv_sec = (time_t)(int64_t)nfsb_xdr_get_u64(in);
	ts->tv_nsec = (long)(nfsb_xdr_get_u32(in) % 1000000000u);
}

static bool nfsb_bit(const bitmap4 *bm, unsigned attr)
{
	return attr / 32 < bm->bitmap4_len &&
	       (bm->bitmap4_val[attr / 32] >> (attr % 32)) & 1;
}

/* Decode the fattr4 of nfsb_v4_stat_attrs; -EIO if it is malformed. */
static int nfsb_v4_decode_stat(const fattr4 *fa, struct stat *st)
{
	static const mode_t types[] = {
		[NF4REG] = S_IFREG,  [NF4DIR] = S_IFDIR, [NF4BLK] = S_IFBLK,
		[NF4CHR] = S_IFCHR,  [NF4LNK] = S_IFLNK, [NF4SOCK] = S_IFSOCK,
		[NF4FIFO] = S_IFIFO,
	};
	struct nfsb_xdr_in in = {
		.p = (const unsigned char *)fa->attr_vals.attrlist4_val,
		.left = fa->attr_vals.attrlist4_len,
	};
	const bitmap4 *bm = &fa->attrmask;
	uint64_t used = 0;
	mode_t type = 0;

	/* the attributes come in ascending order of their numbers */
	memset(st, 0, sizeof(*st));
	if (nfsb_bit(bm, FATTR4_TYPE)) {
		uint32_t t = nfsb_xdr_get_u32(&in);

		type = t < sizeof(types) / sizeof(types[0]) ? types[t] : 0;
	}
	if (nfsb_bit(bm, FATTR4_SIZE))
		st->st_size = (off_t)nfsb_xdr_get_u64(&in);
	if (nfsb_bit(bm, FATTR4_FILEID))
		st->st_ino = (ino_t)nfsb_xdr_get_u64(&in);
	if (nfsb_bit(bm, FATTR4_MODE))
		st->st_mode = nfsb_xdr_get_u32(&in) & 07777;
	if (nfsb_bit(bm, FATTR4_NUMLINKS))
		st->st_nlink = nfsb_xdr_get_u32(&in);
	if (nfsb_bit(bm, FATTR4_OWNER))
		st->st_uid = (uid_t)nfsb_xdr_get_id(&in);
	if (nfsb_bit(bm, FATTR4_OWNER_GROUP))
		st->st_gid = (gid_t)nfsb_xdr_get_id(&in);
	if (nfsb_bit(bm, FATTR4_SPACE_USED))
		used = nfsb_xdr_get_u64(&in);
	if (nfsb_bit(bm, FATTR4_TIME_ACCESS))
		nfsb_xdr_get_time(&in, &st->st_atim);
	if (nfsb_bit(bm, FATTR4_TIME_METADATA))
		nfsb_xdr_get_time(&in, &st->st_ctim);
	if (nfsb_bit(bm, FATTR4_TIME_MODIFY))
		nfsb_xdr_get_time(&in, &st->st_mtim);
	if (in.short_ || !type)
		return -EIO;
	st->st_mode |= type;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((used + 511) / 512);
	return 0;
}

static void nfsb_cb_fstat4(struct rpc_context *rpc, int status, void *data,
			   void *priv)
{
	struct nfsb_statreq *r = priv;
	nfs_resop4 res;
	int err = nfsb_v4_res(status, data, &res);

	if (err == 0)
		err = nfsb_v4_decode_stat(
			&res.nfs_resop4_u.opgetattr.GETATTR4res_u.resok4
				 .obj_attributes,
			r->st);
	nfsb_wait_done(r->w, err);
}

int nfsb_v4_start_fstat(struct nfsb_op *op, const struct nfsb_file *nf,
			struct nfsb_statreq *r)
{
	nfs_argop4 tail;

	memset(&tail, 0, sizeof(tail));
	tail.argop = OP_GETATTR;
	tail.nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 2;
	tail.nfs_argop4_u.opgetattr.attr_request.bitmap4_val =
		(uint32_t *)nfsb_v4_stat_attrs;
	return nfsb_v4_fhop(op, nf, &tail, nfsb_cb_fstat4, r);
}

/* ---- The server's limits ------------------------------------------------ */

struct nfsb_limitsreq {
	struct nfsb_wait *w; /* first: see nfsb_v4_compound */
	struct nfsb_v4_limits lim;
};

static void nfsb_cb_limits4(struct rpc_context *rpc, int status, void *data,
			    void *priv)
{
	struct nfsb_limitsreq *r = priv;
	COMPOUND4res *res = data;
	int err = 0;

	if (status != RPC_STATUS_SUCCESS) {
		err = -EFAULT;
	} else if (res->status != NFS4_OK) {
		err = nfsstat4_to_errno(res->status);
	} else if (res->resarray.resarray_len == 0) {
		err = -EIO;
	} else {
		nfs_resop4 last;
		const fattr4 *fa = &last.nfs_resop4_u.opgetattr.GETATTR4res_u
					    .resok4.obj_attributes;
		struct nfsb_xdr_in in;

		/* unaligned in libnfs 4.0's decoding: copy it out */
		memcpy(&last,
		       (const char *)res->resarray.resarray_val +
			       (res->resarray.resarray_len - 1) * sizeof(last),
		       sizeof(last));
		in = (struct nfsb_xdr_in){
			.p = (const unsigned char *)fa->attr_vals.attrlist4_val,
			.left = fa->attr_vals.attrlist4_len,
		};
		/* in ascending attribute order, each only if given */
		if (nfsb_bit(&fa->attrmask, FATTR4_MAXNAME))
			r->lim.maxname = nfsb_xdr_get_u32(&in);
		if (nfsb_bit(&fa->attrmask, FATTR4_MAXREAD))
			r->lim.maxread = nfsb_xdr_get_u64(&in);
		if (nfsb_bit(&fa->attrmask, FATTR4_MAXWRITE))
			r->lim.maxwrite = nfsb_xdr_get_u64(&in);
		if (in.short_)
			r->lim = (struct nfsb_v4_limits){0};
	}
	nfsb_wait_done(r->w, err);
}

int nfsb_v4_limits(struct nfsb_mount *m, const char *full,
		   struct nfsb_v4_limits *out)
{
	static const uint32_t want[1] = {1u << FATTR4_MAXNAME |
					 1u << FATTR4_MAXREAD |
					 1u << FATTR4_MAXWRITE};
	struct nfsb_limitsreq r = {0};
	nfs_argop4 tail;
	int ret;

	memset(&tail, 0, sizeof(tail));
	tail.argop = OP_GETATTR;
	tail.nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 1;
	tail.nfs_argop4_u.opgetattr.attr_request.bitmap4_val = (uint32_t *)want;
	ret = nfsb_v4_compound(m, full, &tail, NULL, nfsb_cb_limits4, &r);
	if (ret < 0)
		return ret;
	*out = r.lim;
	return 0;
}
