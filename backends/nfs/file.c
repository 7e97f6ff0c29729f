/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file.c - open files: the mount's list of them and the silly rename that
 * keeps an unlinked one reachable, open and create, COMMIT at flush and
 * fsync, release.  Reads and writes are in io.c.
 */
#include <sys/random.h>

#include "backends/nfs/internal.h"

/* ---- Open-file tracking and silly rename --------------------------------- */

/* The path `nf` has now (renames move it), as a new string or NULL. */
static char *nfsb_file_path(struct nfsb_file *nf)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);
	char *p;

	pthread_mutex_lock(&m->open_lock);
	p = strdup(nf->path);
	pthread_mutex_unlock(&m->open_lock);
	return p;
}

void nfsb_invalidate_file(struct nfsb_file *nf)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);
	char *path;

	if (m->cache_ttl <= 0)
		return;
	path = nfsb_file_path(nf);
	if (path)
		nfsb_invalidate(m, path);
	else
		remote_cache_clear(m->cache);
	free(path);
}

static bool nfsb_is_open_locked(struct nfsb_mount *m, const char *full)
{
	for (struct nfsb_file *nf = m->open_files; nf; nf = nf->open_next)
		if (strcmp(nf->path, full) == 0)
			return true;
	return false;
}

/* Open, and not all of its handles closed by their last descriptor? */
static bool nfsb_in_use_locked(struct nfsb_mount *m, const char *full)
{
	for (struct nfsb_file *nf = m->open_files; nf; nf = nf->open_next)
		if (!nf->flushed && strcmp(nf->path, full) == 0)
			return true;
	return false;
}

void nfsb_set_flushed(struct nfsb_file *nf, bool flushed)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);

	pthread_mutex_lock(&m->open_lock);
	nf->flushed = flushed;
	pthread_mutex_unlock(&m->open_lock);
}

/* Open files at `from` or below it are now at `to`. */
void nfsb_moved_locked(struct nfsb_mount *m, const char *from, const char *to,
		       bool silly)
{
	size_t flen = strlen(from);

	for (struct nfsb_file *nf = m->open_files; nf; nf = nf->open_next) {
		char *moved;

		if (strncmp(nf->path, from, flen) != 0 ||
		    (nf->path[flen] && nf->path[flen] != '/'))
			continue;
		if (asprintf(&moved, "%s%s", to, nf->path + flen) < 0)
			continue; /* keeps the old name: v4 reopen fails */
		free(nf->path);
		nf->path = moved;
		if (silly && !nf->path[strlen(to)])
			nf->silly = true;
	}
}

/*
 * If `full` is open here, rename it to a hidden name in the same directory
 * so that its handles stay valid, and return 1; 0 if it is not open.
 */
int nfsb_silly_rename(struct nfsb_mount *m, const char *full)
{
	const char *slash = strrchr(full, '/');
	char *silly;
	bool open;
	int ret;

	pthread_mutex_lock(&m->open_lock);
	/*
	 * FUSE sends RELEASE after close(2) has returned: `rm` right after
	 * writing a file often finds it still open here.  A handle whose
	 * descriptor was closed (FLUSH) is most likely on its way out: give
	 * its release a moment rather than leave a silly file behind.
	 */
	if (nfsb_is_open_locked(m, full) && !nfsb_in_use_locked(m, full)) {
		struct timespec until;

		vfs_ts_after_ms(&until, CLOCK_REALTIME, NFSB_RELEASE_WAIT_MS);
		while (nfsb_is_open_locked(m, full) &&
		       pthread_cond_timedwait(&m->open_cond, &m->open_lock,
					      &until) != ETIMEDOUT)
			;
	}
	open = nfsb_is_open_locked(m, full);
	m->silly_seq++;
	ret = open ? asprintf(&silly, "%.*s/.vfsd-silly-%08lx%08lx",
			      (int)(slash - full), full,
			      (unsigned long)getpid(), m->silly_seq)
		   : 0;
	pthread_mutex_unlock(&m->open_lock);
	if (!open)
		return 0;
	if (ret < 0)
		return -ENOMEM;
	ret = nfsb_rename_full(m, full, silly);
	if (ret == 0) {
		pthread_mutex_lock(&m->open_lock);
		nfsb_moved_locked(m, full, silly, true);
		pthread_mutex_unlock(&m->open_lock);
		ret = 1;
	}
	free(silly);
	return ret;
}

/* ---- Open files -----------------------------------------------------------
 */

/*
 * libnfs flags for an open.  O_DIRECT is honoured by construction (no data
 * cache here); O_SYNC/O_DSYNC make writes stable on the server.  O_APPEND
 * is the kernel's business: FUSE passes explicit offsets.
 */
static int nfsb_lib_flags(int flags)
{
	return flags &
	       (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_SYNC | O_DSYNC);
}

/* A handle for `full`, not yet open nor on the open list. */
static struct nfsb_file *nfsb_file_alloc(struct nfsb_mount *m, const char *full,
					 int flags)
{
	struct nfsb_file *nf = calloc(1, sizeof(*nf));

	if (!nf)
		return NULL;
	nf->path = strdup(full);
	if (!nf->path) {
		free(nf);
		return NULL;
	}
	pthread_mutex_init(&nf->lock, NULL);
	nf->base.mount = &m->base;
	nf->base.flags = flags;
	nf->base.host_fd = -1;
	nf->oflags = nfsb_lib_flags(flags) & ~(O_CREAT | O_EXCL | O_TRUNC);
	return nf;
}

static void nfsb_file_free(struct nfsb_file *nf)
{
	pthread_mutex_destroy(&nf->lock);
	free(nf->path);
	free(nf);
}

/* The CLOSE of an OPEN of ours failed on op's context: see nfsb_do_open().
 * A context still alive holds the open state (and its open-owner's
 * sequence may be out of step): it goes, and with it its client's state,
 * at the server's lease end. */
static void nfsb_v4_close_failed(struct nfsb_op *op)
{
	pthread_mutex_lock(&op->m->lock);
	log_warn_ratelimited(&op->m->rl,
			     "%s: NFSv4 CLOSE failed on connection %d, "
			     "dropping it (the server frees its open state "
			     "when the lease expires)",
			     op->m->display, op->idx);
	pthread_mutex_unlock(&op->m->lock);
	if (op->nfs)
		nfsb_drop(op);
}

/*
 * Open (or create, with O_CREAT in flags) nf->path into `nf` and put it on
 * the open list.
 *
 * NFSv4 keeps no OPEN state: the file handle is copied and the file
 * CLOSEd again before the context is given back, and data moves with the
 * anonymous stateid (RFC 7530 9.1.4.3), as NFSv3 does.  libnfs 4.0.0 sends
 * every OPEN with seqid 0 under one open-owner per context, so a second
 * OPEN while one is held gets the first one's state back as a "replay",
 * the CLOSE of either fails (OLD_STATEID) and the owner's sequence stays
 * broken for every later OPEN on that context.  One OPEN at a time per
 * context, closed at once, never meets that; it also leaves nothing to
 * recover when a connection is rebuilt.
 *
 * A CLOSE that fails (no answer in time, its reply lost with the
 * connection, or an error) does not fail the open: the handle is all we
 * keep, and it stays good.  The state it left is dropped with the context
 * instead (nfsb_v4_close_failed): NFSv4.0 state belongs to the client that
 * made it, a CLOSE from another context's client would not be accepted,
 * and the server drops all of a client's state once its lease runs out
 * unrenewed.  Failing the open instead would make it again: an exclusive
 * create's second OPEN finds the file its first one made (EEXIST).
 */
static int nfsb_do_open(struct nfsb_mount *m, struct nfsb_file *nf, int flags,
			mode_t mode)
{
	struct nfsb_op op;
	int ret, tries = 0;

	/* the v4 CLOSE goes on the context of its OPEN: not nfsb_call */
	do {
		struct nfsb_openreq o = {
			.full = nf->path,
			.flags = nfsb_lib_flags(flags),
			.mode = (int)(mode & 07777),
		};

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		ret = nfsb_call_on(&op, nfsb_start_open, &o);
		if (ret == 0 && !o.r.ptr)
			ret = -EIO;
		if (ret == 0 && m->version == 4) {
			struct nfs_fh *raw = nfsb_rawfh(o.r.ptr, NFS4_FHSIZE);

			if (raw) {
				memcpy(nf->fh4, raw->val, (size_t)raw->len);
				nf->fh4_len = (u_int)raw->len;
			} else {
				ret = -EIO;
			}
			/* Frees o.r.ptr whatever the server answers. */
			if (nfsb_call_on(&op, nfsb_start_close, o.r.ptr) < 0)
				nfsb_v4_close_failed(&op);
		} else if (ret == 0) {
			nf->fh = o.r.ptr;
		}
		if (ret == 0) {
			pthread_mutex_lock(&m->open_lock);
			nf->open_next = m->open_files;
			if (m->open_files)
				m->open_files->open_pprev = &nf->open_next;
			nf->open_pprev = &m->open_files;
			m->open_files = nf;
			pthread_mutex_unlock(&m->open_lock);
		}
		nfsb_put(&op);
	} while (nfsb_retry(&op, ret, &tries));
	return ret;
}

/* ---- NFSv3 exclusive create -------------------------------------------- */

/*
 * An open with O_EXCL creates with NFSv3's EXCLUSIVE CREATE and a verifier
 * of its own, kept across the retry on a fresh connection: a server that
 * carried out the first try whose reply was lost finds its verifier in the
 * file and answers the retry with success, not EEXIST (RFC 1813 3.3.8, as
 * the kernel's client does).  libnfs 4.0 creates with GUARDED, whose retry
 * cannot tell its own file from another's.  The server keeps the verifier
 * in the times and applies no mode: both are set afterwards, through the
 * handle the CREATE returned.
 */
struct nfsb_create3req {
	struct nfsb_wait *w;
	char dir[NFSB_V3_FHSIZE]; /* the parent directory's handle */
	int dir_len;
	const char *name;
	char verf[NFS3_CREATEVERFSIZE];
	char fh[NFSB_V3_FHSIZE]; /* the new file's, when the reply has it */
	int fh_len;
	uint64_t fileid; /* the new file's, when the reply has attributes */
	bool have_fileid;
	mode_t mode; /* for nfsb_start_excl_setattr3 */
};

static void nfsb_cb_create3(struct rpc_context *rpc, int status, void *data,
			    void *priv)
{
	struct nfsb_create3req *r = priv;
	CREATE3res *res = data;
	int err = 0;

	if (status != RPC_STATUS_SUCCESS) {
		err = -EFAULT;
	} else if (res->status != NFS3_OK) {
		err = nfsstat3_to_errno(res->status);
	} else {
		post_op_fh3 *obj = &res->CREATE3res_u.resok.obj;
		nfs_fh3 *h = &obj->post_op_fh3_u.handle;

		post_op_attr *at = &res->CREATE3res_u.resok.obj_attributes;

		r->fh_len = 0;
		r->have_fileid = at->attributes_follow;
		if (at->attributes_follow)
			r->fileid = at->post_op_attr_u.attributes.fileid;
		if (obj->handle_follows && h->data.data_len > 0 &&
		    h->data.data_len <= NFSB_V3_FHSIZE) {
			memcpy(r->fh, h->data.data_val, h->data.data_len);
			r->fh_len = (int)h->data.data_len;
		}
	}
	nfsb_wait_done(r->w, err);
}

static int nfsb_start_create3(struct nfsb_op *op, struct nfsb_wait *w,
			      void *arg)
{
	struct nfsb_create3req *r = arg;
	CREATE3args a;

	r->w = w;
	memset(&a, 0, sizeof(a));
	a.where.dir.data.data_len = (u_int)r->dir_len;
	a.where.dir.data.data_val = r->dir;
	a.where.name = (char *)r->name;
	a.how.mode = EXCLUSIVE;
	memcpy(a.how.createhow3_u.verf, r->verf, sizeof(r->verf));
	return rpc_nfs3_create_async(nfs_get_rpc_context(op->nfs),
				     nfsb_cb_create3, &a, r);
}

/* The mode asked for, and the times (which hold the verifier) now. */
static int nfsb_start_excl_setattr3(struct nfsb_op *op, struct nfsb_wait *w,
				    void *arg)
{
	struct nfsb_create3req *r = arg;
	SETATTR3args a;

	memset(&a, 0, sizeof(a));
	a.object.data.data_len = (u_int)r->fh_len;
	a.object.data.data_val = r->fh;
	a.new_attributes.mode.set_it = 1;
	a.new_attributes.mode.set_mode3_u.mode = r->mode & 07777;
	a.new_attributes.atime.set_it = SET_TO_SERVER_TIME;
	a.new_attributes.mtime.set_it = SET_TO_SERVER_TIME;
	return rpc_nfs3_setattr_async(nfs_get_rpc_context(op->nfs),
				      nfsb_cb_setattr3, &a, w);
}

/* A verifier no other create of ours has: random, as two creates a few
 * microseconds apart must not share one; the clock and a counter only
 * where the kernel has no randomness to give. */
static void nfsb_create_verf(char *verf, size_t len)
{
	static unsigned long seq;
	unsigned long n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
	struct timespec ts;
	uint64_t v;

	if (getrandom(verf, len, GRND_NONBLOCK) == (ssize_t)len)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	v ^= (uint64_t)getpid() << 40 ^ (uint64_t)n << 20;
	memset(verf, 0, len);
	memcpy(verf, &v, len < sizeof(v) ? len : sizeof(v));
}

/*
 * Create nf->path with an NFSv3 EXCLUSIVE CREATE (see above) and set its
 * mode: 0 or -errno (-EEXIST: the name was taken by another).  On success
 * fh (NFSB_V3_FHSIZE bytes) holds the new file's handle and *fh_len its
 * length, 0 if the server did not give it; then *fileid is the new file's
 * number, -1 when the reply had no attributes either.
 */
static int nfsb_v3_create_excl(struct nfsb_mount *m, struct nfsb_file *nf,
			       mode_t mode, char *fh, int *fh_len,
			       int64_t *fileid)
{
	struct nfsb_create3req r = {.mode = mode};
	char *dir = vfs_path_parent(nf->path);
	const char *slash = strrchr(nf->path, '/');
	struct nfsb_op op;
	int ret, tries = 0;

	if (!dir || !slash) {
		free(dir);
		return -ENOMEM;
	}
	r.name = slash + 1;
	nfsb_create_verf(r.verf, sizeof(r.verf));
	do {
		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			break;
		ret = nfsb_v3_fh_on(&op, dir, r.dir, &r.dir_len);
		if (ret == 0)
			ret = r.dir_len ? nfsb_call_on(&op, nfsb_start_create3,
						       &r)
					: -EIO;
		nfsb_put(&op);
	} while (nfsb_retry(&op, ret, &tries));
	free(dir);
	if (ret == 0 && r.fh_len)
		ret = nfsb_call(m, nfsb_start_excl_setattr3, &r);
	if (ret == 0) {
		memcpy(fh, r.fh, (size_t)r.fh_len);
		*fh_len = r.fh_len;
		*fileid = r.have_fileid ? (int64_t)r.fileid : -1;
	}
	return ret;
}

/* v4 create fix-up, see nfs.c's head comment: EXCLUSIVE4 left its verifier
 * in the times and applied no mode (so does an NFSv3 EXCLUSIVE CREATE whose
 * reply gave no handle).  Through the new handle: the name may hold another
 * file by now (nfsb_chown_new). */
static int nfsb_excl_fixup(struct nfsb_file *nf, mode_t mode)
{
	struct vfs_setattr sa = {
		.valid = VFS_SET_MODE | VFS_SET_ATIME_NOW | VFS_SET_MTIME_NOW,
		.mode = mode,
	};

	return nfsb_fsetattr(nf, &sa);
}

/* Whether nf's handle (libnfs's, found by name) is the one an exclusive
 * CREATE returned; true when the CREATE returned none. */
static bool nfsb_same_fh3(struct nfsb_file *nf, const char *fh, int len)
{
	struct nfs_fh *raw = nfsb_rawfh(nf->fh, NFSB_V3_FHSIZE);

	if (!len)
		return true;
	return raw && raw->len == len && memcmp(raw->val, fh, (size_t)len) == 0;
}

int nfsb_create(struct vfs_mount *vm, const char *path, int flags, mode_t mode,
		const struct vfs_cred *cred, struct vfs_file **out,
		struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_file *nf = NULL;
	bool created = true, excl3;
	char fh3[NFSB_V3_FHSIZE];
	int fh3_len = 0;
	int64_t fileid3 = -1;
	bool other = false;
	int swapped = 0;
	uint64_t gen = 0;
	int ret = -ENOMEM;

	if (!full)
		return -ENOMEM;
again:
	nf = nfsb_file_alloc(m, full, flags);
	if (!nf)
		goto out;
	nfsb_invalidate(m, full);
	/*
	 * Always create exclusively, and open an existing file without
	 * O_CREAT: libnfs 4.0.0's NFSv4 create fails with EEXIST on an
	 * existing file even without O_EXCL, and its NFSv3 UNCHECKED create
	 * would apply `mode` to a file that already exists.  A new file is
	 * empty, so no O_TRUNC there (libnfs 4.0.0's v4 truncate after an
	 * exclusive OPEN fails with BAD_STATEID).
	 */
	excl3 = m->version == 3 && (flags & O_EXCL);
	for (int i = 0; i < 3 && !excl3; i++) {
		created = true;
		ret = nfsb_do_open(m, nf, (flags & ~O_TRUNC) | O_CREAT | O_EXCL,
				   mode);
		if (ret != -EEXIST || (flags & O_EXCL))
			break;
		created = false;
		ret = nfsb_do_open(m, nf, flags & ~(O_CREAT | O_EXCL), 0);
		if (ret != -ENOENT) /* else removed meanwhile: again */
			break;
	}
	if (excl3) {
		other = false;
		ret = nfsb_v3_create_excl(m, nf, mode, fh3, &fh3_len, &fileid3);
		/* libnfs's handle, found by name (see below) */
		if (ret == 0)
			ret = nfsb_do_open(
				m, nf, flags & ~(O_CREAT | O_EXCL | O_TRUNC),
				0);
		/* without the CREATE's handle, nothing is set through the
		 * name's file before it is known to be the one made: by its
		 * number, from the reply's attributes */
		if (ret == 0 && !fh3_len) {
			ret = nfsb_fgetattr(&nf->base, st);
			if (ret == 0 && fileid3 < 0) {
				log_warn(
					"%s: the server's CREATE reply for %s "
					"named neither the file nor its number",
					m->display, full);
				ret = -EIO;
			} else if (ret == 0) {
				other = (uint64_t)st->st_ino !=
					(uint64_t)fileid3;
			}
			if (ret < 0) {
				/* open: its handle goes with it */
				nfsb_release(&nf->base);
				goto out;
			}
		}
	}
	if (ret < 0) {
		nfsb_file_free(nf);
		goto out;
	}
	if (created && !other && (m->version == 4 || (excl3 && !fh3_len)))
		ret = nfsb_excl_fixup(nf, mode);
	/* GETATTR through the new handle: no path walk. */
	nfsb_invalidate(m, full);
	gen = remote_cache_gen(m->cache);
	if (ret == 0)
		ret = nfsb_fgetattr(&nf->base, st);
	if (ret == 0 && created && m->version == 3 &&
	    (excl3 ? other || !nfsb_same_fh3(nf, fh3, fh3_len)
		   : !nfsb_fresh_file(st))) {
		/*
		 * libnfs 4.0 finds the handle of the file its CREATE made by
		 * a LOOKUP of the name afterwards: another object renamed
		 * onto the name in between (by someone who may write the
		 * directory) is what the handle names.  Never give it away:
		 * the name names an existing file now, so O_EXCL fails and
		 * a plain O_CREAT opens it as the existing file it is.
		 */
		log_warn("%s: %s named another object right after it was "
			 "created; taken as an existing file",
			 m->display, full);
		nfsb_release(&nf->base);
		nf = NULL;
		ret = -EEXIST;
		if (!(flags & O_EXCL) && ++swapped < 3)
			goto again;
		goto out;
	}
	if (ret == 0 && created)
		ret = nfsb_chown_new(m, full, nf, cred, st);
	if (ret == 0)
		remote_cache_put_attr(m->cache, full, st, gen);
	if (ret < 0) {
		nfsb_release(&nf->base);
		goto out;
	}
	*out = &nf->base;
out:
	free(full);
	return ret;
}

int nfsb_open(struct vfs_mount *vm, const char *path, int flags,
	      struct vfs_file **out)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_file *nf;
	int ret;

	if (!full)
		return -ENOMEM;
	nf = nfsb_file_alloc(m, full, flags);
	if (!nf) {
		free(full);
		return -ENOMEM;
	}
	/* Close-to-open: what we cached may be older than the file. */
	nfsb_invalidate(m, full);
	ret = nfsb_do_open(m, nf, flags & ~(O_CREAT | O_EXCL), 0);
	if (ret == 0)
		*out = &nf->base;
	else
		nfsb_file_free(nf);
	free(full);
	return ret;
}

struct nfsb_commitreq {
	struct nfsb_wait *w;
	struct nfsb_file *nf;
	bool verf_bad;
};

static void nfsb_commit_verf(struct nfsb_commitreq *r, const char *verf)
{
	pthread_mutex_lock(&r->nf->lock);
	if (r->nf->verf_known && memcmp(r->nf->verf, verf, sizeof(r->nf->verf)))
		r->verf_bad = true;
	pthread_mutex_unlock(&r->nf->lock);
}

static void nfsb_cb_commit3(struct rpc_context *rpc, int status, void *data,
			    void *priv)
{
	struct nfsb_commitreq *r = priv;
	COMMIT3res *res = data;
	int err = 0;

	if (status != RPC_STATUS_SUCCESS)
		err = -EFAULT;
	else if (res->status != NFS3_OK)
		err = nfsstat3_to_errno(res->status);
	else
		nfsb_commit_verf(r, res->COMMIT3res_u.resok.verf);
	nfsb_wait_done(r->w, err);
}

static void nfsb_cb_commit4(struct rpc_context *rpc, int status, void *data,
			    void *priv)
{
	struct nfsb_commitreq *r = priv;
	nfs_resop4 rr, *res = &rr;
	int err = nfsb_v4_res(status, data, res);

	if (err == 0)
		nfsb_commit_verf(r, res->nfs_resop4_u.opcommit.COMMIT4res_u
					    .resok4.writeverf);
	nfsb_wait_done(r->w, err);
}

static int nfsb_start_commit(struct nfsb_op *op, struct nfsb_wait *w, void *arg)
{
	struct nfsb_commitreq *r = arg;
	struct nfsb_file *nf = r->nf;

	r->w = w;
	if (op->m->version == 3) {
		struct nfs_fh *raw = nfsb_rawfh(nf->fh, NFSB_V3_FHSIZE);
		COMMIT3args a;

		if (!raw)
			return -1;
		memset(&a, 0, sizeof(a)); /* offset 0, count 0: all */
		a.file.data.data_len = (u_int)raw->len;
		a.file.data.data_val = raw->val;
		return rpc_nfs3_commit_async(nfs_get_rpc_context(op->nfs),
					     nfsb_cb_commit3, &a, r);
	} else {
		nfs_argop4 tail;

		memset(&tail, 0, sizeof(tail));
		tail.argop = OP_COMMIT; /* offset 0, count 0: all */
		return nfsb_v4_fhop(op, nf, &tail, nfsb_cb_commit4, r);
	}
}

/*
 * Make the file's data stable: COMMIT if unstable writes are outstanding.
 * -EIO if data may have been lost on the way (server restart between WRITE
 * and COMMIT: the verifier changed).  `fsync`: the loss is reported once
 * (taken); a flush reports it and leaves it for the file's next write,
 * fsync or flush (nfsb_flush_err()).
 */
static int nfsb_commit(struct nfsb_file *nf, bool fsync)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);
	struct nfsb_commitreq r = {.nf = nf};
	struct nfsb_op op;
	bool dirty;
	int ret;

	nfsb_wb_drain(nf);
	ret = fsync ? nfsb_take_err(nf) : nfsb_flush_err(nf);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&nf->lock);
	dirty = nf->dirty;
	pthread_mutex_unlock(&nf->lock);
	if (!dirty)
		return 0;
	/* one try, not nfsb_call: a failed COMMIT leaves the data dirty, and
	 * the next flush or fsync sends one again */
	ret = nfsb_get(m, -1, &op);
	if (ret < 0)
		return ret;
	op.own = true; /* no sharing after it (wb.c) */
	ret = nfsb_call_on(&op, nfsb_start_commit, &r);
	nfsb_put(&op);
	pthread_mutex_lock(&nf->lock);
	if (ret == 0 && r.verf_bad) {
		ret = -EIO;
		if (!fsync && !nf->lost) {
			nf->lost = ret;
			nf->told = true;
		}
	}
	/* Clean after success, and after a loss, which is now the file's
	 * error to report; a failed COMMIT keeps the data dirty so that a
	 * later one can tell. */
	if (ret == 0 || r.verf_bad)
		nf->dirty = false;
	pthread_mutex_unlock(&nf->lock);
	return ret;
}

int nfsb_flush(struct vfs_file *f)
{
	/* close(2): like the kernel client, flush and COMMIT so that the
	 * next open anywhere sees the data and errors surface here. */
	int ret = nfsb_commit(nfsb_f(f), false);

	nfsb_set_flushed(nfsb_f(f), true);
	return ret;
}

int nfsb_fsync(struct vfs_file *f, bool datasync)
{
	/* COMMIT covers data and metadata alike in NFS. */
	return nfsb_commit(nfsb_f(f), true);
}

int nfsb_release(struct vfs_file *f)
{
	struct nfsb_file *nf = nfsb_f(f);
	struct nfsb_mount *m = nfsb_m(f->mount);
	bool silly;
	int lost;

	nfsb_wb_drain(nf);
	lost = remote_wb_err(m->wbq, &nf->wbf);
	pthread_mutex_lock(&nf->lock);
	if (!lost)
		lost = nf->lost;
	if (nf->told)
		lost = 0; /* a close reported it */
	pthread_mutex_unlock(&nf->lock);
	if (lost) {
		pthread_mutex_lock(&m->lock);
		log_warn_ratelimited(&m->rl,
				     "%s: %s: data written after the last "
				     "flush was lost: %s",
				     m->display, nf->path, strerror(-lost));
		pthread_mutex_unlock(&m->lock);
	}
	if (nf->fh) {
		/* NFSv3 has no CLOSE: nfs_close() frees the handle without
		 * I/O (libnfs would COMMIT only its own dirty writes, and
		 * ours bypass it), so any context will do, live or not. */
		struct nfs_context *tmp = nfs_init_context();

		if (tmp) {
			nfs_close(tmp, nf->fh);
			nfs_destroy_context(tmp);
		}
	}
	pthread_mutex_lock(&m->open_lock);
	*nf->open_pprev = nf->open_next;
	if (nf->open_next)
		nf->open_next->open_pprev = nf->open_pprev;
	/* The last handle of a silly-renamed file: now it may go. */
	silly = nf->silly && !nfsb_is_open_locked(m, nf->path);
	pthread_cond_broadcast(&m->open_cond);
	pthread_mutex_unlock(&m->open_lock);
	if (silly) {
		struct nfsb_args g = {.a = nf->path};
		int err = nfsb_simple(m, NFSB_UNLINK, &g);

		if (err < 0 && err != -ENOENT)
			log_warn("%s: cannot remove %s: %s", m->display,
				 nf->path, strerror(-err));
		nfsb_invalidate(m, nf->path);
	}
	nfsb_file_free(nf);
	return 0;
}
