/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * attr.c - attributes: getattr, setattr by path (libnfs's calls over
 * NFSv3, our own COMPOUND over NFSv4) and by an open file's handle
 * (one SETATTR), fgetattr.
 */
#include "backends/nfs/internal.h"

int nfsb_getattr(struct vfs_mount *vm, const char *path, struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	const char *base = strrchr(path, '/');
	char *full;
	int ret;

	/* longer than statfs says: refused as the kernel's client does.
	 * The kernel looks every name up before it creates, links or
	 * renames to it, so this one check covers those too. */
	if (base && strlen(base + 1) > m->namemax)
		return -ENAMETOOLONG;
	full = nfsb_path(m, path);
	if (!full)
		return -ENOMEM;
	/* a size from before our queued writes would shrink the file in
	 * the kernel's eyes */
	nfsb_wb_drain_path(m, full);
	ret = nfsb_lstat_full(m, full, st, true);
	free(full);
	return ret;
}

/*
 * NFSv3 times are unsigned 32-bit seconds: a time outside 1970..2106 is
 * clamped, as the kernel clamps times a file system cannot hold, rather
 * than wrapped into another century.
 */
static time_t nfsb_time3(time_t sec)
{
	return sec < 0                    ? 0
	       : sec > (time_t)UINT32_MAX ? (time_t)UINT32_MAX
					  : sec;
}

int nfsb_setattr_path(struct nfsb_mount *m, const char *full,
		      const struct vfs_setattr *sa)
{
	struct nfsb_args g = {.a = full};
	int ret = 0;

	if (!sa->valid)
		return 0;
	if (m->version == 4)
		return nfsb_v4_setattr(m, full, sa);

	if (sa->valid & VFS_SET_MODE) {
		g.x = sa->mode & 07777;
		ret = nfsb_simple(m, NFSB_CHMOD, &g);
	}
	if (ret == 0 && (sa->valid & (VFS_SET_UID | VFS_SET_GID))) {
		/* libnfs leaves an id alone when given -1. */
		g.x = sa->valid & VFS_SET_UID ? (long long)sa->uid : -1;
		g.y = sa->valid & VFS_SET_GID ? (long long)sa->gid : -1;
		ret = nfsb_simple(m, NFSB_CHOWN, &g);
	}
	if (ret == 0 && (sa->valid & VFS_SET_SIZE)) {
		g.x = sa->size;
		ret = nfsb_simple(m, NFSB_TRUNCATE, &g);
	}
	if (ret == 0 && (sa->valid & (VFS_SET_ATIME | VFS_SET_MTIME |
				      VFS_SET_ATIME_NOW | VFS_SET_MTIME_NOW))) {
		struct timeval tv[2];
		bool a_now = sa->valid & VFS_SET_ATIME_NOW;
		bool m_now = sa->valid & VFS_SET_MTIME_NOW;
		bool a_set = (sa->valid & VFS_SET_ATIME) || a_now;
		bool m_set = (sa->valid & VFS_SET_MTIME) || m_now;
		struct stat cur;

		if (a_now && m_now) {
			/* NULL asks libnfs for SET_TO_SERVER_TIME. */
			g.tv = NULL;
		} else {
			struct timespec now;

			/* libnfs sets both times or none: keep the one not
			 * asked for, and take "now" from our clock. */
			if (!a_set || !m_set) {
				ret = nfsb_lstat_full(m, full, &cur, false);
				if (ret < 0)
					return ret;
			}
			clock_gettime(CLOCK_REALTIME, &now);
			tv[0].tv_sec = nfsb_time3(a_now   ? now.tv_sec
						  : a_set ? sa->atime.tv_sec
							  : cur.st_atim.tv_sec);
			tv[0].tv_usec = (a_now   ? now.tv_nsec
					 : a_set ? sa->atime.tv_nsec
						 : cur.st_atim.tv_nsec) /
					1000;
			tv[1].tv_sec = nfsb_time3(m_now   ? now.tv_sec
						  : m_set ? sa->mtime.tv_sec
							  : cur.st_mtim.tv_sec);
			tv[1].tv_usec = (m_now   ? now.tv_nsec
					 : m_set ? sa->mtime.tv_nsec
						 : cur.st_mtim.tv_nsec) /
					1000;
			g.tv = tv;
		}
		ret = nfsb_simple(m, NFSB_UTIMES, &g);
	}
	return ret;
}

int nfsb_setattr(struct vfs_mount *vm, const char *path, struct vfs_file *f,
		 const struct vfs_setattr *sa, struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full;
	int ret;

	if (f) {
		struct nfsb_file *nf = nfsb_f(f);

		/* queued writes land before the change, as they were issued */
		nfsb_wb_drain_file(nf);
		ret = nfsb_fsetattr(nf, sa);
		if (ret == 0 && st)
			ret = nfsb_fgetattr(f, st);
		return ret;
	}
	full = nfsb_path(m, path);
	if (!full)
		return -ENOMEM;
	nfsb_wb_drain_path(m, full);
	ret = nfsb_setattr_path(m, full, sa);
	nfsb_invalidate(m, full);
	if (ret == 0 && st)
		ret = nfsb_lstat_full(m, full, st, false);
	free(full);
	return ret;
}

struct nfsb_fstatreq {
	struct nfsb_statreq r;
	struct nfsb_file *nf;
};

static int nfsb_start_fstat(struct nfsb_op *op, struct nfsb_wait *w, void *arg)
{
	struct nfsb_fstatreq *fr = arg;

	fr->r.w = w;
	if (op->m->version == 4)
		return nfsb_v4_start_fstat(op, fr->nf, &fr->r);
	return nfs_fstat64_async(op->nfs, fr->nf->fh, nfsb_cb_stat, &fr->r);
}

int nfsb_fgetattr(struct vfs_file *f, struct stat *st)
{
	struct nfsb_file *nf = nfsb_f(f);
	struct nfsb_mount *m = nfsb_m(f->mount);
	struct nfsb_fstatreq fr = {{NULL, st}, nf};

	/* every handle's queued writes: the size must include them, or the
	 * kernel would cut its own idea of the file short */
	nfsb_wb_drain_file(nf);
	/* By handle: the open file, whatever another client named it.  Not
	 * cached under its name either: another client may have given that
	 * name to another file, and a lookup must find that one. */
	return nfsb_call(m, nfsb_start_fstat, &fr);
}

void nfsb_cb_setattr3(struct rpc_context *rpc, int status, void *data,
		      void *priv)
{
	SETATTR3res *res = data;
	int err = 0;

	if (status != RPC_STATUS_SUCCESS)
		err = -EFAULT;
	else if (res->status != NFS3_OK)
		err = nfsstat3_to_errno(res->status);
	nfsb_wait_done(priv, err);
}

static time_how nfsb_time_how(const struct vfs_setattr *sa, unsigned set,
			      unsigned now, const struct timespec *ts,
			      nfstime3 *out)
{
	if (sa->valid & now)
		return SET_TO_SERVER_TIME;
	if (!(sa->valid & set))
		return DONT_CHANGE;
	out->seconds = (uint32_t)nfsb_time3(ts->tv_sec);
	out->nseconds = (uint32_t)ts->tv_nsec;
	return SET_TO_CLIENT_TIME;
}

/* Start one NFSv3 SETATTR of everything sa asks for on nf's handle. */
static int nfsb_start_setattr3(struct nfsb_op *op, struct nfsb_file *nf,
			       const struct vfs_setattr *sa,
			       struct nfsb_wait *w)
{
	struct nfs_fh *raw = nfsb_rawfh(nf->fh, NFSB_V3_FHSIZE);
	SETATTR3args a;
	sattr3 *n = &a.new_attributes;

	if (!raw)
		return -1;
	memset(&a, 0, sizeof(a));
	a.object.data.data_len = (u_int)raw->len;
	a.object.data.data_val = raw->val;
	if (sa->valid & VFS_SET_MODE) {
		n->mode.set_it = 1;
		n->mode.set_mode3_u.mode = sa->mode & 07777;
	}
	if (sa->valid & VFS_SET_UID) {
		n->uid.set_it = 1;
		n->uid.set_uid3_u.uid = sa->uid;
	}
	if (sa->valid & VFS_SET_GID) {
		n->gid.set_it = 1;
		n->gid.set_gid3_u.gid = sa->gid;
	}
	if (sa->valid & VFS_SET_SIZE) {
		n->size.set_it = 1;
		n->size.set_size3_u.size = (uint64_t)sa->size;
	}
	n->atime.set_it =
		nfsb_time_how(sa, VFS_SET_ATIME, VFS_SET_ATIME_NOW, &sa->atime,
			      &n->atime.set_atime_u.atime);
	n->mtime.set_it =
		nfsb_time_how(sa, VFS_SET_MTIME, VFS_SET_MTIME_NOW, &sa->mtime,
			      &n->mtime.set_mtime_u.mtime);
	return rpc_nfs3_setattr_async(nfs_get_rpc_context(op->nfs),
				      nfsb_cb_setattr3, &a, w);
}

struct nfsb_fsetattrreq {
	struct nfsb_file *nf;
	const struct vfs_setattr *sa;
};

static int nfsb_start_fsetattr(struct nfsb_op *op, struct nfsb_wait *w,
			       void *arg)
{
	const struct nfsb_fsetattrreq *r = arg;
	char abuf[NFSB_V4_ATTRBUF];
	uint32_t bm[2];
	nfs_argop4 tail;

	if (op->m->version == 3)
		return nfsb_start_setattr3(op, r->nf, r->sa, w);
	memset(&tail, 0, sizeof(tail));
	tail.argop = OP_SETATTR;
	nfsb_v4_fattr(r->sa, bm, abuf,
		      &tail.nfs_argop4_u.opsetattr.obj_attributes);
	return nfsb_v4_fhop(op, r->nf, &tail, nfsb_cb_compound4, w);
}

/*
 * Change an open file's attributes through its file handle, in one
 * SETATTR: it reaches the file the descriptor has open whatever names it
 * has now (renamed by another client, unlinked while open), and sets
 * times with nanoseconds and "now" as the server's clock, which libnfs's
 * path calls cannot.
 */
int nfsb_fsetattr(struct nfsb_file *nf, const struct vfs_setattr *sa)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);
	struct nfsb_fsetattrreq r = {nf, sa};
	struct nfsb_op op;
	int ret, tries = 0;

	if (!sa->valid)
		return 0;
	/* not nfsb_call: a check-out that fails returns at once, leaving the
	 * cache as it is */
	do {
		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		ret = nfsb_call_on(&op, nfsb_start_fsetattr, &r);
		nfsb_put(&op);
	} while (nfsb_retry(&op, ret, &tries));
	nfsb_invalidate_file(nf);
	return ret;
}
