/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nfs.c - the "nfs" backend: an NFSv3 or NFSv4 export reached with libnfs.
 *
 * Every libnfs call of vfsd lives in this file, so that a later libnfs
 * (6.x changed the read/write signatures, LIBNFS_API_V2) is a local change.
 *
 * Model.  libnfs 4.0 contexts are not thread-safe and 4.0 has no nfs_mt_*
 * API, so a mount owns a pool of `connections` contexts.  A FUSE worker
 * checks one out for the whole call, starts one or many *_async requests on
 * it and then runs the context's event loop itself (poll + nfs_service)
 * until every reply is in or the call's deadline passes.  Large reads and
 * writes are split into chunks that are all in flight at once, so one
 * request of up to 1 MiB costs about one round trip, not one per chunk.
 * libnfs only checks its timeouts inside nfs_service(), which our loop calls
 * at least every 100 ms; our own deadline (the mount's `timeout`) is the
 * authority anyway.
 *
 * Failures.  A context whose nfs_service() failed, whose requests came back
 * with a transport status (libnfs reports those as -EFAULT/-EINTR, which no
 * NFS status maps to) or whose deadline passed is destroyed while the
 * caller's frame is still alive (destroying runs the pending callbacks) and
 * rebuilt by the next checkout.  autoreconnect is off: libnfs would
 * otherwise resend silently across a server restart and hide it.  After a
 * failed rebuild the mount is "down" for a backoff period during which
 * checkouts fail at once with -EIO instead of piling up workers.
 *
 * Data safety.  Writes are UNSTABLE and made stable by COMMIT at flush
 * (close) and fsync.  WRITE and COMMIT go out through the raw RPC API (v3)
 * or as our own COMPOUNDs (v4) so that the write verifier of each reply
 * can be checked: a verifier change before COMMIT means the server
 * restarted and may have lost the data, and the next write/flush/fsync of
 * that file fails with -EIO.
 *
 * NFSv4 and libnfs 4.0.0 (see docs/nfs.md):
 *  - nfs4_compound_async() encodes into a fixed 4 KiB buffer that ignores
 *    the WRITE payload ("ZDR error: Failed to encode COMPOUND4args" for
 *    4 KiB and more; fixed upstream after 4.0 by an allocation hint), so v4
 *    writes are sent in NFSB_V4_WMAX chunks, all in flight together.
 *  - O_CREAT|O_EXCL opens use EXCLUSIVE4, whose verifier the server keeps
 *    in atime/mtime (RFC 7530 16.16.5: the client must follow with a
 *    SETATTR, which libnfs does not send): hence the year-2106 mtimes and a
 *    mode the caller never asked for.  Every v4 create is followed by a
 *    SETATTR of mode and of both times to the server's clock.
 *  - Its OPEN state handling breaks with two opens per context, and its
 *    path-based setattr calls OPEN too; so no OPEN state is kept (see
 *    nfsb_do_open()) and attributes are set by our own SETATTR compound.
 *  - Its READDIR reports no fileid: listings GETATTR every entry.
 *
 * Caching: attributes and directory listings are kept for `cache_ttl`
 * seconds, dropped by our own changes and revalidated at open
 * (close-to-open, as the kernel client does).  No data is cached, so
 * O_DIRECT data goes straight to the server.
 *
 * Open files: NFS servers forget a file at its last unlink even if a
 * client still has it open (NFSv3 has no open; ganesha answers ESTALE), so
 * an unlink or rename-over of a file open here renames it to a hidden
 * ".vfsd-silly-*" name instead, removed at its last release: the kernel
 * client's "silly rename".
 *
 * Lock order: nfsb_file.lock, then nfsb_mount.lock, then the cache's
 * lock (backends/remote/cache.c); open_lock is a leaf.  None is held across a
 * network call.
 */
#include "backends/callctx.h"
#include "backends/nfs/internal.h"
#include "backends/remote/opts.h"
#include "lib/hash.h"

/* ---- Options and mount -------------------------------------------------- */

static const char *const nfsb_versions[] = {"3", "4", NULL};

static const struct vfs_opt_spec nfs_opts[] = {
	{.name = "version",
	 .type = VFS_OPT_ENUM,
	 .def = "3",
	 .choices = nfsb_versions,
	 .help = "NFS protocol version"},
	{.name = "nfsport",
	 .type = VFS_OPT_INT,
	 .min = 1,
	 .max = 65535,
	 .help = "NFS port (default: ask the portmapper; v4: 2049)"},
	{.name = "mountport",
	 .type = VFS_OPT_INT,
	 .min = 1,
	 .max = 65535,
	 .help = "MOUNT port for NFSv3 (default: ask the portmapper)"},
	{.name = "uid",
	 .type = VFS_OPT_INT,
	 .min = 0,
	 .max = 4294967294L,
	 .help = "AUTH_SYS uid sent to the server (default: ours)"},
	{.name = "gid",
	 .type = VFS_OPT_INT,
	 .min = 0,
	 .max = 4294967294L,
	 .help = "AUTH_SYS gid sent to the server (default: ours)"},
	{.name = "tcp-syncnt",
	 .type = VFS_OPT_INT,
	 .min = 1,
	 .max = 255,
	 .help = "SYN retries when connecting (libnfs tcp-syncnt)"},
	REMOTE_OPT_CONNECTIONS,
	REMOTE_OPT_TIMEOUT,
	REMOTE_OPT_CACHE_TTL,
	REMOTE_OPT_WRITE_BEHIND,
	{0}};

static void nfsb_free(struct nfsb_mount *m)
{
	nfsb_wb_stop(m);
	if (m->conns) {
		for (size_t i = 0; i < m->nconn; i++)
			if (m->conns[i].nfs)
				nfs_destroy_context(m->conns[i].nfs);
		free(m->conns);
	}
	remote_cache_free(m->cache);
	pthread_mutex_destroy(&m->open_lock);
	pthread_cond_destroy(&m->open_cond);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m->display);
	free(m->libnfs_url);
	free(m->server);
	free(m->export);
	free(m->subdir);
	free(m);
}

/* Rebuild the libnfs URL for `export` from the validated options. */
static int nfsb_build_url(struct nfsb_mount *m, const struct vfs_url *url,
			  const struct vfs_opts *opts)
{
	static const char *const pass[] = {"nfsport", "mountport",  "uid",
					   "gid",     "tcp-syncnt", NULL};
	char *s = NULL, *next;
	int n;

	n = asprintf(&s, "nfs://%s%s%s%s?version=%d",
		     strchr(m->server, ':') ? "[" : "", m->server,
		     strchr(m->server, ':') ? "]" : "", m->export, m->version);
	if (n < 0)
		return -ENOMEM;
	for (size_t i = 0; pass[i]; i++) {
		const char *v = vfs_opts_get(opts, pass[i]);

		/* nfs://host:PORT/ means the NFS port, as nfsport= does. */
		if (!v && strcmp(pass[i], "nfsport") == 0 && url->port) {
			n = asprintf(&next, "%s&nfsport=%d", s, url->port);
		} else if (v) {
			n = asprintf(&next, "%s&%s=%s", s, pass[i], v);
		} else {
			continue;
		}
		free(s);
		if (n < 0)
			return -ENOMEM;
		s = next;
	}
	free(m->libnfs_url);
	m->libnfs_url = s;
	return 0;
}

/*
 * Find the export: the URL path is EXPORT/PATH and libnfs cannot tell where
 * one ends (MOUNT of a directory below an export is refused by ganesha and
 * others), so try the whole path first and then ever shorter prefixes,
 * keeping the rest as a subdirectory checked by the caller.  NFSv4 walks
 * the pseudo filesystem itself, so the whole path always works there.
 */
static int nfsb_first_connect(struct nfsb_mount *m, const struct vfs_url *url,
			      const struct vfs_opts *opts,
			      struct nfs_context **out, struct vfs_error *err)
{
	char *path = strdup(url->path);
	char msg[256] = "", first[256] = "";
	int ret, first_ret = 0;

	if (!path)
		return -ENOMEM;
	for (;;) {
		char *slash;

		free(m->export);
		m->export = strdup(path);
		free(m->subdir);
		m->subdir = strdup(url->path[strlen(path)]
					   ? url->path + strlen(path)
					   : "/");
		if (!m->export || !m->subdir) {
			ret = -ENOMEM;
			break;
		}
		ret = nfsb_build_url(m, url, opts);
		if (ret < 0)
			break;
		ret = nfsb_connect(m, vfs_mono_s() + m->timeout, out, msg,
				   sizeof(msg));
		if (ret == 0)
			break;
		if (!first_ret) {
			first_ret = ret;
			snprintf(first, sizeof(first), "%s", msg);
		}
		/* Only a refused export is worth a shorter try; a server
		 * that does not answer will not answer those either. */
		if (ret == -ETIMEDOUT || ret == -EINVAL ||
		    strstr(msg, "connect") || strstr(msg, "portmap") ||
		    m->version == 4)
			break;
		slash = strrchr(path, '/');
		if (!slash || slash == path)
			break;
		*slash = '\0';
	}
	free(path);
	if (ret < 0) {
		if (ret == -ENOMEM)
			return vfs_error_set(err, ENOMEM, "%s: out of memory",
					     m->display);
		if (!first_ret)
			first_ret = ret;
		if (first_ret == -ETIMEDOUT)
			return vfs_error_set(
				err, ETIMEDOUT,
				"%s: server did not answer within %d s",
				m->display, m->timeout);
		if (strstr(first, "Socket") || strstr(first, "connect") ||
		    strstr(first, "POLLHUP") || strstr(first, "portmap"))
			return vfs_error_set(
				err, ECONNREFUSED,
				"%s: cannot reach the NFS%s service of %s: %s",
				m->display, m->version == 3 ? "/MOUNT" : "",
				m->server, first);
		if (first_ret == -EACCES || first_ret == -ENOENT ||
		    first_ret == -EPERM)
			return vfs_error_set(
				err, -first_ret,
				"%s: server refused the mount (no such export, "
				"or not exported to us): %s",
				m->display, first);
		return vfs_error_set(err, -first_ret > 0 ? -first_ret : EIO,
				     "%s: mount failed: %s", m->display,
				     first[0] ? first : strerror(-first_ret));
	}
	return 0;
}

static void nfsb_namemax(struct nfsb_mount *m);

static int nfsb_mount(const struct vfs_url *url, const struct vfs_opts *opts,
		      struct vfs_mount **out, struct vfs_error *err)
{
	struct nfsb_mount *m;
	struct nfsb_op op;
	struct remote_opts ro;
	struct nfs_context *nfs = NULL;
	struct stat st;
	uint64_t rmax, wmax;
	int ret;

	if (!url->host || !*url->host)
		return vfs_error_set(err, EINVAL, "%s: no server in URL",
				     url->raw);
	if (url->user)
		return vfs_error_set(
			err, EINVAL,
			"%s: NFS URLs take no user name (use uid=)", url->raw);
	m = calloc(1, sizeof(*m));
	if (!m)
		return vfs_error_set(err, ENOMEM, "%s: out of memory",
				     url->raw);
	pthread_mutex_init(&m->lock, NULL);
	remote_cond_init(&m->cond);
	pthread_mutex_init(&m->open_lock, NULL);
	pthread_cond_init(&m->open_cond, NULL);
	m->display = vfs_url_display(url);
	remote_pool_init(&m->rp, &m->base, m->display, &m->cond,
			 NFSB_BACKOFF_FIRST_MS, NFSB_BACKOFF_MAX_MS);
	m->server = strdup(url->host);
	if (!m->display || !m->server) {
		ret = vfs_error_set(err, ENOMEM, "%s: out of memory", url->raw);
		goto err_free;
	}
	m->version = (int)strtol(vfs_opts_get(opts, "version"), NULL, 10);
	remote_opts_get(opts, &ro);
	m->timeout = ro.timeout_s;
	m->cache_ttl = (double)ro.cache_ttl_s;
	m->nconn = (size_t)ro.connections;
	m->cache = remote_cache_new(ro.cache_ttl_s);
	if (!m->cache) {
		ret = vfs_error_set(err, ENOMEM, "%s: out of memory",
				    m->display);
		goto err_free;
	}
	m->root_user = geteuid() == 0;
	m->auth_uid =
		vfs_opts_get(opts, "uid")
			? (uid_t)strtoul(vfs_opts_get(opts, "uid"), NULL, 10)
			: geteuid();
	m->conns = calloc(m->nconn, sizeof(*m->conns));
	if (!m->conns) {
		ret = vfs_error_set(err, ENOMEM, "%s: out of memory",
				    m->display);
		goto err_free;
	}

	ret = nfsb_first_connect(m, url, opts, &nfs, err);
	if (ret < 0)
		goto err_free;
	m->conns[0].nfs = nfs;
	m->conns[0].gen = 1;
	rmax = nfs_get_readmax(nfs);
	wmax = nfs_get_writemax(nfs);
	m->rsize = rmax ? (size_t)rmax : 65536;
	m->wsize = wmax ? (size_t)wmax : 65536;
	if (m->rsize > NFSB_CHUNK_MAX)
		m->rsize = NFSB_CHUNK_MAX;
	if (m->wsize > NFSB_CHUNK_MAX)
		m->wsize = NFSB_CHUNK_MAX;
	if (m->version == 4 && m->wsize > NFSB_V4_WMAX)
		m->wsize = NFSB_V4_WMAX;

	/* The part of the path below the export must be a directory. */
	ret = nfsb_get(m, 0, &op);
	if (ret == 0) {
		ret = nfsb_lstat_on(&op, m->subdir, &st);
		nfsb_put(&op);
	}
	if (ret == 0 && !S_ISDIR(st.st_mode))
		ret = -ENOTDIR;
	if (ret < 0) {
		ret = vfs_error_set(err, -ret, "%s: %s%s: %s", m->display,
				    strcmp(m->subdir, "/") ? "path " : "export",
				    strcmp(m->subdir, "/") ? m->subdir : "",
				    strerror(-ret));
		goto err_free;
	}

	nfsb_namemax(m);

	ret = ro.write_behind ? nfsb_wb_init(m) : 0;
	if (ret < 0) {
		ret = vfs_error_set(err, -ret,
				    "%s: cannot start the writer thread: %s",
				    m->display, strerror(-ret));
		goto err_free;
	}
	m->base.caps = VFS_CAP_SHARED | VFS_CAP_STABLE_FSYNC | VFS_CAP_MKNOD |
		       VFS_CAP_STABLE_INO;
	m->base.attr_timeout = m->cache_ttl;
	m->base.entry_timeout = vfs_remote_entry_timeout(m->cache_ttl);
	log_info("%s: mounted export %s (NFSv%d, %zu connections, "
		 "rsize %zu wsize %zu)",
		 m->display, m->export, m->version, m->nconn, m->rsize,
		 m->wsize);
	*out = &m->base;
	return 0;

err_free:
	nfsb_free(m);
	return ret;
}

static void nfsb_unmount(struct vfs_mount *vm)
{
	nfsb_free(nfsb_m(vm));
}

static const char *nfsb_state(struct vfs_mount *vm)
{
	struct nfsb_mount *m = nfsb_m(vm);
	enum remote_state s;

	pthread_mutex_lock(&m->lock);
	s = m->rp.state;
	pthread_mutex_unlock(&m->lock);
	return remote_state_name(s);
}

/* ---- Namespace ---------------------------------------------------------- */

struct nfsb_statvfsreq {
	struct nfsb_wait *w;
	struct nfs_statvfs_64 sv;
};

static void nfsb_cb_statvfs(int err, struct nfs_context *nfs, void *data,
			    void *priv)
{
	struct nfsb_statvfsreq *r = priv;

	if (err == 0)
		r->sv = *(struct nfs_statvfs_64 *)data;
	nfsb_wait_done(r->w, err);
}

static struct nfs_fh *nfsb_rawfh(struct nfsfh *fh, int max);

struct nfsb_pathconfreq {
	struct nfsb_wait *w;
	unsigned long name_max;
};

static void nfsb_cb_pathconf3(struct rpc_context *rpc, int status, void *data,
			      void *priv)
{
	struct nfsb_pathconfreq *r = priv;
	PATHCONF3res *res = data;
	int err = 0;

	if (status != RPC_STATUS_SUCCESS)
		err = -EFAULT;
	else if (res->status != NFS3_OK)
		err = nfsstat3_to_errno(res->status);
	else
		r->name_max = res->PATHCONF3res_u.resok.name_max;
	nfsb_wait_done(r->w, err);
}

/* NFSv3 PATHCONF of the directory `full`, through a handle libnfs opens
 * for it (libnfs 4.0 has no pathconf call of its own). */
static int nfsb_v3_namemax(struct nfsb_mount *m, const char *full,
			   unsigned long *out)
{
	struct nfsb_pathconfreq r = {NULL, 0};
	struct nfsb_op op;
	int ret, tries = 0;

	do {
		struct nfsb_wait w;
		struct nfsb_ptrreq o = {&w, NULL};
		struct nfs_fh *raw;
		PATHCONF3args a;

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		nfsb_wait_init(&w);
		w.pending = 1;
		if (nfs_open_async(op.nfs, full, O_RDONLY, nfsb_cb_ptr, &o))
			nfsb_start_failed(&op, &w);
		ret = nfsb_finish(&op, &w);
		if (ret == 0 && !o.ptr)
			ret = -EIO;
		if (ret == 0) {
			raw = nfsb_rawfh(o.ptr, NFSB_V3_FHSIZE);
			memset(&a, 0, sizeof(a));
			if (raw) {
				a.object.data.data_len = (u_int)raw->len;
				a.object.data.data_val = raw->val;
			}
			nfsb_wait_init(&w);
			w.pending = 1;
			r.w = &w;
			if (!raw ||
			    rpc_nfs3_pathconf_async(nfs_get_rpc_context(op.nfs),
						    nfsb_cb_pathconf3, &a, &r))
				nfsb_start_failed(&op, &w);
			ret = nfsb_finish(&op, &w);
			/* an NFSv3 handle holds no server state: this only
			 * frees it */
			nfsb_wait_init(&w);
			w.pending = 1;
			if (nfs_close_async(op.nfs, o.ptr, nfsb_cb_status, &w))
				nfsb_start_failed(&op, &w);
			nfsb_finish(&op, &w);
		}
		nfsb_put(&op);
	} while (nfsb_retry(&op, ret, &tries));
	if (ret < 0)
		return ret;
	if (!r.name_max)
		return -ENOTSUP;
	*out = r.name_max;
	return 0;
}

/*
 * The longest name, asked once at mount: libnfs 4.0's statvfs reports a
 * constant of its own (256 over NFSv3, 1024 over NFSv4) and programs size
 * names from statfs (pathconf(_PC_NAME_MAX)).  The server's answer is
 * capped at NFSB_NAME_MAX as the kernel's NFS client does: servers
 * announce more than the file system beneath them takes (nfs-ganesha's
 * FSAL VFS says 1024 over ext4 and tmpfs), and NAME_MAX is what Linux
 * programs expect.  A server that does not say gets NFSB_NAME_MAX too.
 */
static void nfsb_namemax(struct nfsb_mount *m)
{
	unsigned long n = 0;
	int ret = m->version == 4 ? nfsb_v4_namemax(m, m->subdir, &n)
				  : nfsb_v3_namemax(m, m->subdir, &n);

	if (ret < 0)
		log_info("%s: the server gives no longest name (%s): "
			 "assuming %d",
			 m->display, strerror(-ret), NFSB_NAME_MAX);
	m->namemax = ret == 0 && n < NFSB_NAME_MAX ? n : NFSB_NAME_MAX;
}

static int nfsb_statfs(struct vfs_mount *vm, const char *path,
		       struct statvfs *out)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_statvfsreq r;
	struct nfsb_op op;
	int ret, tries = 0;

	if (!full)
		return -ENOMEM;
	do {
		struct nfsb_wait w;

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			break;
		nfsb_wait_init(&w);
		memset(&r, 0, sizeof(r));
		r.w = &w;
		w.pending = 1;
		if (nfs_statvfs64_async(op.nfs, full, nfsb_cb_statvfs, &r))
			nfsb_start_failed(&op, &w);
		ret = nfsb_finish(&op, &w);
		nfsb_put(&op);
	} while (nfsb_retry(&op, ret, &tries));
	free(full);
	if (ret < 0)
		return ret;
	memset(out, 0, sizeof(*out));
	out->f_bsize = r.sv.f_bsize;
	out->f_frsize = r.sv.f_frsize ? r.sv.f_frsize : r.sv.f_bsize;
	out->f_blocks = r.sv.f_blocks;
	out->f_bfree = r.sv.f_bfree;
	out->f_bavail = r.sv.f_bavail;
	out->f_files = r.sv.f_files;
	out->f_ffree = r.sv.f_ffree;
	out->f_favail = r.sv.f_favail;
	out->f_fsid = r.sv.f_fsid;
	out->f_namemax = m->namemax;
	return 0;
}

static int nfsb_getattr(struct vfs_mount *vm, const char *path, struct stat *st)
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
 * The path-based libnfs calls that only report a status share this shape.
 * `fn` starts the request; `a`/`b` are its path/string arguments and `x`,
 * `y` its integer ones.
 */
enum nfsb_simple {
	NFSB_CHMOD,
	NFSB_CHOWN,
	NFSB_TRUNCATE,
	NFSB_UTIMES,
	NFSB_MKDIR,
	NFSB_MKNOD,
	NFSB_SYMLINK,
	NFSB_LINK,
	NFSB_UNLINK,
	NFSB_RMDIR,
	NFSB_RENAME,
};

struct nfsb_args {
	const char *a, *b;
	long long x, y;
	struct timeval *tv; /* NFSB_UTIMES: NULL = server time */
};

static int nfsb_start_simple(struct nfsb_op *op, enum nfsb_simple what,
			     const struct nfsb_args *g, struct nfsb_wait *w)
{
	struct nfs_context *n = op->nfs;

	switch (what) {
	case NFSB_CHMOD:
		return nfs_lchmod_async(n, g->a, (int)g->x, nfsb_cb_status, w);
	case NFSB_CHOWN:
		return nfs_lchown_async(n, g->a, (int)g->x, (int)g->y,
					nfsb_cb_status, w);
	case NFSB_TRUNCATE:
		return nfs_truncate_async(n, g->a, (uint64_t)g->x,
					  nfsb_cb_status, w);
	case NFSB_UTIMES:
		return nfs_lutimes_async(n, g->a, g->tv, nfsb_cb_status, w);
	case NFSB_MKDIR:
		return nfs_mkdir2_async(n, g->a, (int)g->x, nfsb_cb_status, w);
	case NFSB_MKNOD:
		return nfs_mknod_async(n, g->a, (int)g->x, (int)g->y,
				       nfsb_cb_status, w);
	case NFSB_SYMLINK:
		return nfs_symlink_async(n, g->b, g->a, nfsb_cb_status, w);
	case NFSB_LINK:
		return nfs_link_async(n, g->b, g->a, nfsb_cb_status, w);
	case NFSB_UNLINK:
		return nfs_unlink_async(n, g->a, nfsb_cb_status, w);
	case NFSB_RMDIR:
		return nfs_rmdir_async(n, g->a, nfsb_cb_status, w);
	case NFSB_RENAME:
		return nfs_rename_async(n, g->b, g->a, nfsb_cb_status, w);
	}
	return -EINVAL;
}

/* Run one status-only call with one retry on a broken idle connection.
 * Non-idempotent calls are retried too: the request was never answered,
 * and the server most likely never saw it (its socket was dead). */
static int nfsb_simple(struct nfsb_mount *m, enum nfsb_simple what,
		       const struct nfsb_args *g)
{
	struct nfsb_op op;
	int ret, tries = 0;

	do {
		struct nfsb_wait w;

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		nfsb_wait_init(&w);
		w.pending = 1;
		if (nfsb_start_simple(&op, what, g, &w))
			nfsb_start_failed(&op, &w);
		ret = nfsb_finish(&op, &w);
		nfsb_put(&op);
	} while (nfsb_retry(&op, ret, &tries));
	return ret;
}

static int nfsb_setattr_path(struct nfsb_mount *m, const char *full,
			     const struct vfs_setattr *sa);
static int nfsb_fsetattr(struct nfsb_file *nf, const struct vfs_setattr *sa);

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

/* Whether the directory holding `full` is setgid (then the server gave its
 * group to a new object there, as any file system does). */
static bool nfsb_parent_setgid(struct nfsb_mount *m, const char *full)
{
	char *dir = vfs_path_parent(full);
	struct stat st;
	bool sgid = false;

	if (dir) {
		sgid = nfsb_lstat_full(m, dir, &st, false) == 0 &&
		       (st.st_mode & S_ISGID);
	}
	free(dir);
	return sgid;
}

/*
 * New objects get the caller's owner when we run as root (the server saw
 * AUTH_SYS uid 0, or the uid= option), and the caller's group unless a
 * setgid directory chose it.  The server's chown clears setuid and setgid
 * bits of a regular file, so they are given back afterwards.
 *
 * A new file is changed through the handle its create returned: in a
 * directory that others may write to on the server, the name may meanwhile
 * hold something else.  libnfs returns no handle for mkdir, mknod and
 * symlink, so those go by name, and only while the name still shows an
 * object that the server gave our own identity (st, read just before): a
 * user who renames another user's object there in the meantime is not
 * given it.  What remains (an object of our own identity swapped in, a
 * directory of the path swapped for a symlink, which libnfs follows) is
 * closed only by creating with the caller's credentials and by handles
 * instead of paths (docs/security.md).
 */
static int nfsb_chown_new(struct nfsb_mount *m, const char *full,
			  struct nfsb_file *nf, const struct vfs_cred *cred,
			  struct stat *st)
{
	struct vfs_setattr sa = {.valid = VFS_SET_UID,
				 .uid = cred ? cred->uid : 0,
				 .gid = cred ? cred->gid : 0};
	mode_t sxid = st->st_mode & (S_ISUID | S_ISGID);
	int ret;

	if (!m->root_user || !cred)
		return 0;
	if (!nfsb_parent_setgid(m, full))
		sa.valid |= VFS_SET_GID;
	if (st->st_uid == cred->uid &&
	    (!(sa.valid & VFS_SET_GID) || st->st_gid == cred->gid))
		return 0;
	/* not what we made (any more), or a squashing server's: leave it;
	 * through an NFSv3 handle too, which libnfs 4.0 found by name */
	if (st->st_uid != m->auth_uid && (!nf || m->version == 3))
		return 0;
	ret = nf ? nfsb_fsetattr(nf, &sa) : nfsb_setattr_path(m, full, &sa);
	if (ret == 0 && S_ISREG(st->st_mode) && sxid) {
		struct vfs_setattr mode = {.valid = VFS_SET_MODE,
					   .mode = st->st_mode & 07777};

		ret = nf ? nfsb_fsetattr(nf, &mode)
			 : nfsb_setattr_path(m, full, &mode);
	}
	if (ret == 0) {
		st->st_uid = cred->uid;
		if (sa.valid & VFS_SET_GID)
			st->st_gid = cred->gid;
	}
	return ret;
}

/* What an exclusive CREATE just made looks like: an empty regular file
 * with one name, never renamed nor changed since (a rename sets its ctime
 * past its mtime). */
static bool nfsb_fresh_file(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_nlink == 1 && st->st_size == 0 &&
	       st->st_mtim.tv_sec == st->st_ctim.tv_sec &&
	       st->st_mtim.tv_nsec == st->st_ctim.tv_nsec;
}

/* After creating `full`: fetch its attributes and fix the owner. */
static int nfsb_created(struct nfsb_mount *m, const char *full,
			const struct vfs_cred *cred, struct stat *st)
{
	unsigned long gen;
	int ret;

	nfsb_invalidate(m, full);
	gen = remote_cache_gen(m->cache);
	ret = nfsb_lstat_full(m, full, st, false);
	if (ret == 0)
		ret = nfsb_chown_new(m, full, NULL, cred, st);
	if (ret == 0)
		remote_cache_put_attr(m->cache, full, st, gen);
	return ret;
}

static int nfsb_setattr_path(struct nfsb_mount *m, const char *full,
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

static int nfsb_fgetattr(struct vfs_file *f, struct stat *st);

static int nfsb_setattr(struct vfs_mount *vm, const char *path,
			struct vfs_file *f, const struct vfs_setattr *sa,
			struct stat *st)
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

static ssize_t nfsb_readlink(struct vfs_mount *vm, const char *path, char *buf,
			     size_t size)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_op op;
	char *target = NULL;
	ssize_t len;
	int ret, tries = 0;

	if (!full)
		return -ENOMEM;
	if (m->version == 4) {
		ret = nfsb_v4_readlink(m, full, &target);
	} else {
		do {
			struct nfsb_wait w;
			struct nfsb_ptrreq r = {&w, NULL};

			ret = nfsb_get(m, -1, &op);
			if (ret < 0)
				break;
			nfsb_wait_init(&w);
			w.pending = 1;
			if (nfs_readlink_async(op.nfs, full, nfsb_cb_strdup,
					       &r))
				nfsb_start_failed(&op, &w);
			ret = nfsb_finish(&op, &w);
			nfsb_put(&op);
			if (ret < 0)
				free(r.ptr);
			else
				target = r.ptr;
		} while (nfsb_retry(&op, ret, &tries));
	}
	free(full);
	if (ret < 0)
		return ret;
	len = (ssize_t)strlen(target);
	memcpy(buf, target, (size_t)len < size ? (size_t)len : size);
	free(target);
	return len;
}

static int nfsb_mknod(struct vfs_mount *vm, const char *path, mode_t mode,
		      dev_t rdev, const struct vfs_cred *cred, struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	int ret;

	if (!full)
		return -ENOMEM;
	g = (struct nfsb_args){.a = full, .x = mode, .y = (long long)rdev};
	if (S_ISREG(mode)) {
		struct vfs_file *f;

		free(full);
		ret = vm->ops->create(vm, path, O_CREAT | O_EXCL | O_WRONLY,
				      mode, cred, &f, st);
		if (ret == 0)
			vm->ops->release(f);
		return ret;
	}
	if (m->version == 4)
		ret = nfsb_v4_mknod(m, full, mode, rdev);
	else
		ret = nfsb_simple(m, NFSB_MKNOD, &g);
	if (ret == 0)
		ret = nfsb_created(m, full, cred, st);
	else
		nfsb_invalidate(m, full);
	free(full);
	return ret;
}

static int nfsb_mkdir(struct vfs_mount *vm, const char *path, mode_t mode,
		      const struct vfs_cred *cred, struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	int ret;

	if (!full)
		return -ENOMEM;
	g = (struct nfsb_args){.a = full, .x = mode & 07777};
	ret = nfsb_simple(m, NFSB_MKDIR, &g);
	if (ret == 0)
		ret = nfsb_created(m, full, cred, st);
	else
		nfsb_invalidate(m, full);
	free(full);
	return ret;
}

static int nfsb_symlink(struct vfs_mount *vm, const char *target,
			const char *path, const struct vfs_cred *cred,
			struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	int ret;

	if (!full)
		return -ENOMEM;
	g = (struct nfsb_args){.a = full, .b = target};
	ret = nfsb_simple(m, NFSB_SYMLINK, &g);
	if (ret == 0)
		ret = nfsb_created(m, full, cred, st);
	else
		nfsb_invalidate(m, full);
	free(full);
	return ret;
}

static int nfsb_link(struct vfs_mount *vm, const char *from, const char *to,
		     struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *ffrom = nfsb_path(m, from), *fto = nfsb_path(m, to);
	struct nfsb_args g;
	int ret = -ENOMEM;

	if (!ffrom || !fto)
		goto out;
	g = (struct nfsb_args){.a = fto, .b = ffrom};
	ret = nfsb_simple(m, NFSB_LINK, &g);
	nfsb_invalidate(m, fto);
	nfsb_invalidate(m, ffrom); /* nlink and ctime changed */
	if (ret == 0)
		ret = nfsb_lstat_full(m, fto, st, false);
out:
	free(ffrom);
	free(fto);
	return ret;
}

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

static void nfsb_invalidate_file(struct nfsb_file *nf)
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

static void nfsb_set_flushed(struct nfsb_file *nf, bool flushed)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);

	pthread_mutex_lock(&m->open_lock);
	nf->flushed = flushed;
	pthread_mutex_unlock(&m->open_lock);
}

/* Open files at `from` or below it are now at `to`. */
static void nfsb_moved_locked(struct nfsb_mount *m, const char *from,
			      const char *to, bool silly)
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
static int nfsb_silly_rename(struct nfsb_mount *m, const char *full)
{
	struct nfsb_args g;
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
	g = (struct nfsb_args){.a = silly, .b = full};
	ret = nfsb_simple(m, NFSB_RENAME, &g);
	if (ret == 0) {
		pthread_mutex_lock(&m->open_lock);
		nfsb_moved_locked(m, full, silly, true);
		pthread_mutex_unlock(&m->open_lock);
		ret = 1;
	}
	free(silly);
	return ret;
}

static int nfsb_unlink(struct vfs_mount *vm, const char *path)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	struct stat st;
	bool linked = false;
	int ret;

	if (!full)
		return -ENOMEM;
	/* Other names of a hard-linked inode change nlink: if it may have
	 * some, forget every cached attribute, else just this name's. */
	if (!remote_cache_get_attr(m->cache, full, &st) || st.st_nlink != 1 ||
	    S_ISDIR(st.st_mode))
		linked = true;
	ret = nfsb_silly_rename(m, full);
	if (ret == 0) {
		g = (struct nfsb_args){.a = full};
		ret = nfsb_simple(m, NFSB_UNLINK, &g);
	} else if (ret > 0) {
		ret = 0;
	}
	if (linked)
		remote_cache_clear(m->cache);
	else
		nfsb_invalidate(m, full);
	free(full);
	return ret;
}

static int nfsb_rmdir(struct vfs_mount *vm, const char *path)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_args g;
	int ret;

	if (!full)
		return -ENOMEM;
	g = (struct nfsb_args){.a = full};
	ret = nfsb_simple(m, NFSB_RMDIR, &g);
	remote_cache_clear(m->cache);
	free(full);
	return ret;
}

static int nfsb_rename(struct vfs_mount *vm, const char *from, const char *to,
		       unsigned flags)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *ffrom, *fto;
	struct nfsb_args g;
	int ret = -ENOMEM;

	/* NFS RENAME replaces atomically but knows no flags: NOREPLACE is
	 * a check before the RENAME (not atomic against other clients). */
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	ffrom = nfsb_path(m, from);
	fto = nfsb_path(m, to);
	if (!ffrom || !fto)
		goto out;
	if (flags & RENAME_NOREPLACE) {
		struct stat st;

		ret = nfsb_lstat_full(m, fto, &st, false);
		if (ret == 0)
			ret = -EEXIST;
		if (ret != -ENOENT)
			goto out;
	}
	/* A target open here would lose its handles: keep it aside. */
	if (strcmp(ffrom, fto) != 0) {
		ret = nfsb_silly_rename(m, fto);
		if (ret < 0)
			goto out;
	}
	g = (struct nfsb_args){.a = fto, .b = ffrom};
	ret = nfsb_simple(m, NFSB_RENAME, &g);
	if (ret == 0) {
		pthread_mutex_lock(&m->open_lock);
		nfsb_moved_locked(m, ffrom, fto, false);
		pthread_mutex_unlock(&m->open_lock);
	}
	remote_cache_clear(m->cache);
out:
	free(ffrom);
	free(fto);
	return ret;
}

/* ---- Directories ----------------------------------------------------------
 */

static void nfsb_dirent_stat(struct stat *st, const struct nfsdirent *de)
{
	static const mode_t types[] = {
		[1] = S_IFREG, [2] = S_IFDIR,  [3] = S_IFBLK, [4] = S_IFCHR,
		[5] = S_IFLNK, [6] = S_IFSOCK, [7] = S_IFIFO,
	};

	memset(st, 0, sizeof(*st));
	st->st_ino = de->inode;
	/* NF3* and NF4* file types share their values. */
	st->st_mode = (de->type < 8 ? types[de->type] : 0) | (de->mode & 07777);
	st->st_nlink = de->nlink;
	st->st_uid = de->uid;
	st->st_gid = de->gid;
	st->st_size = de->size;
	st->st_rdev = de->rdev;
	st->st_dev = de->dev;
	st->st_blksize = de->blksize ? de->blksize : 4096;
	st->st_blocks = de->blocks ? de->blocks : (de->used + 511) / 512;
	st->st_atim.tv_sec = de->atime.tv_sec;
	st->st_atim.tv_nsec = de->atime_nsec;
	st->st_mtim.tv_sec = de->mtime.tv_sec;
	st->st_mtim.tv_nsec = de->mtime_nsec;
	st->st_ctim.tv_sec = de->ctime.tv_sec;
	st->st_ctim.tv_nsec = de->ctime_nsec;
}

struct nfsb_entreq {
	struct nfsb_wait *w;
	struct vfs_dirbuf_ent *e;
	int err;
};

static void nfsb_cb_entstat(int err, struct nfs_context *nfs, void *data,
			    void *priv)
{
	struct nfsb_entreq *r = priv;

	if (err == 0)
		nfsb_stat_from64(&r->e->st, data);
	r->err = err;
	/* One entry gone or unreadable does not fail the listing. */
	nfsb_wait_done(r->w, nfsb_is_transport(err) ? err : 0);
}

#define NFSB_STAT_BATCH 256

/*
 * libnfs 4.0.0's NFSv4 READDIR does not return the entries' fileid (it
 * reports inode 0, sometimes garbage, and glibc's readdir() skips d_ino 0
 * entries), so NFSv4 listings get each entry's attributes by GETATTR,
 * NFSB_STAT_BATCH requests in flight at a time on the listing's context.
 * Entries that vanished meanwhile are dropped.
 */
static int nfsb_v4_fill(struct nfsb_op *op, const char *full,
			struct vfs_dirbuf *db)
{
	struct nfsb_entreq *r = calloc(db->n ? db->n : 1, sizeof(*r));
	size_t kept = 0;
	int ret = 0;

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < db->n && ret == 0; i += NFSB_STAT_BATCH) {
		size_t end = i + NFSB_STAT_BATCH < db->n ? i + NFSB_STAT_BATCH
							 : db->n;
		char **paths = calloc(end - i, sizeof(*paths));
		struct nfsb_wait w;

		if (!paths) {
			ret = -ENOMEM;
			break;
		}
		nfsb_wait_init(&w);
		for (size_t j = i; j < end; j++) {
			r[j] = (struct nfsb_entreq){&w, &db->ents[j], -EIO};
			w.pending++;
			if (asprintf(&paths[j - i], "%s%s%s", full,
				     strcmp(full, "/") ? "/" : "",
				     db->ents[j].name) < 0) {
				paths[j - i] = NULL;
				w.pending--;
				continue;
			}
			if (nfs_lstat64_async(op->nfs, paths[j - i],
					      nfsb_cb_entstat, &r[j]))
				nfsb_start_failed(op, &w);
		}
		ret = nfsb_finish(op, &w);
		for (size_t j = i; j < end; j++)
			free(paths[j - i]);
		free(paths);
	}
	if (ret == 0) {
		for (size_t i = 0; i < db->n; i++) {
			struct vfs_dirbuf_ent *e = &db->ents[i];

			if (r[i].err == -ENOENT) {
				free(e->name);
				continue;
			}
			if (r[i].err < 0) {
				/* Keep the name and type; a stand-in inode
				 * number, never 0. */
				e->st.st_ino = vfs_hash_str(e->name) | 1u << 31;
				e->flags &= ~VFS_DIRENT_FULL;
			}
			db->ents[kept++] = *e;
		}
		db->n = kept;
	}
	free(r);
	return ret;
}

/* READDIRPLUS the whole directory `full` into a new listing and feed the
 * children's attributes to the cache. */
static int nfsb_list(struct nfsb_mount *m, const char *full,
		     struct remote_listing **out)
{
	struct remote_listing *l;
	struct nfsb_op op;
	struct nfsdir *dir = NULL;
	struct nfsdirent *de;
	unsigned long gen = remote_cache_gen(m->cache);
	int ret, tries = 0;

	do {
		struct nfsb_wait w;
		struct nfsb_ptrreq r = {&w, NULL};

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		nfsb_wait_init(&w);
		w.pending = 1;
		if (nfs_opendir_async(op.nfs, full, nfsb_cb_ptr, &r))
			nfsb_start_failed(&op, &w);
		ret = nfsb_finish(&op, &w);
		dir = r.ptr;
		if (ret < 0 || !dir) {
			nfsb_put(&op);
			ret = ret < 0 ? ret : -EIO;
		}
	} while (ret < 0 && nfsb_retry(&op, ret, &tries));
	if (ret < 0)
		return ret;

	l = remote_listing_new();
	if (!l) {
		ret = -ENOMEM;
		nfs_closedir(op.nfs, dir);
		goto out;
	}
	/* The listing is complete in memory now: nfs_readdir() walks it
	 * without I/O. */
	while ((de = nfs_readdir(op.nfs, dir))) {
		struct stat st;

		if (strcmp(de->name, ".") == 0 || strcmp(de->name, "..") == 0)
			continue;
		nfsb_dirent_stat(&st, de);
		ret = vfs_dirbuf_add(&l->db, de->name, &st, VFS_DIRENT_FULL);
		if (ret < 0)
			break;
	}
	nfs_closedir(op.nfs, dir);
	if (ret == 0 && m->version == 4)
		ret = nfsb_v4_fill(&op, full, &l->db);
	for (size_t i = 0; ret == 0 && m->cache_ttl > 0 && i < l->db.n; i++) {
		const struct vfs_dirbuf_ent *e = &l->db.ents[i];
		char *child;

		if (!(e->flags & VFS_DIRENT_FULL) ||
		    asprintf(&child, "%s%s%s", full,
			     strcmp(full, "/") ? "/" : "", e->name) < 0)
			continue;
		remote_cache_put_attr(m->cache, child, &e->st, gen);
		free(child);
	}
	if (ret < 0) {
		vfs_dirbuf_clear(&l->db);
		free(l);
		l = NULL;
	}
out:
	nfsb_put(&op);
	if (!l)
		return ret;
	*out = l;
	return 0;
}

static int nfsb_opendir(struct vfs_mount *vm, const char *path,
			struct vfs_dir **out)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct remote_listing *l = NULL;
	struct vfs_dir *d;
	int ret = 0;

	if (!full)
		return -ENOMEM;
	d = calloc(1, sizeof(*d));
	if (!d) {
		free(full);
		return -ENOMEM;
	}
	/* lease records are read fresh (backends/callctx.h) */
	if (!vfs_callctx.fresh)
		l = remote_cache_get_listing(m->cache, full);
	if (!l) {
		unsigned long gen = remote_cache_gen(m->cache);

		ret = nfsb_list(m, full, &l);
		if (ret == 0)
			remote_cache_put_listing(m->cache, full, l, gen);
	}
	free(full);
	if (ret < 0) {
		free(d);
		return ret;
	}
	d->list = l;
	*out = d;
	return 0;
}

static int nfsb_readdir(struct vfs_mount *vm, struct vfs_dir *d, off_t off,
			vfs_fill_fn fill, void *ctx)
{
	return vfs_dirbuf_fill(&d->list->db, off, fill, ctx);
}

static void nfsb_releasedir(struct vfs_mount *vm, struct vfs_dir *d)
{
	struct nfsb_mount *m = nfsb_m(vm);

	remote_listing_put(m->cache, d->list);
	free(d);
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

/* A plausible file handle of libnfs's, or NULL (see struct nfs_fh). */
static struct nfs_fh *nfsb_rawfh(struct nfsfh *fh, int max)
{
	struct nfs_fh *raw = nfs_get_fh(fh);

	if (!raw || raw->len <= 0 || raw->len > max || !raw->val)
		return NULL;
	return raw;
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
 */
static int nfsb_do_open(struct nfsb_mount *m, struct nfsb_file *nf, int flags,
			mode_t mode)
{
	struct nfsb_op op;
	int ret, tries = 0;

	do {
		struct nfsb_wait w;
		struct nfsb_ptrreq r = {&w, NULL};
		int lf = nfsb_lib_flags(flags);

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		nfsb_wait_init(&w);
		w.pending = 1;
		if (flags & O_CREAT) {
			if (nfs_create_async(op.nfs, nf->path, lf,
					     (int)(mode & 07777), nfsb_cb_ptr,
					     &r))
				nfsb_start_failed(&op, &w);
		} else if (nfs_open_async(op.nfs, nf->path, lf, nfsb_cb_ptr,
					  &r)) {
			nfsb_start_failed(&op, &w);
		}
		ret = nfsb_finish(&op, &w);
		if (ret == 0 && !r.ptr)
			ret = -EIO;
		if (ret == 0 && m->version == 4) {
			struct nfs_fh *raw = nfsb_rawfh(r.ptr, NFS4_FHSIZE);

			if (raw) {
				memcpy(nf->fh4, raw->val, (size_t)raw->len);
				nf->fh4_len = (u_int)raw->len;
			} else {
				ret = -EIO;
			}
			nfsb_wait_init(&w);
			w.pending = 1;
			/* Frees r.ptr whatever the server answers. */
			if (nfs_close_async(op.nfs, r.ptr, nfsb_cb_status, &w))
				nfsb_start_failed(&op, &w);
			if (nfsb_finish(&op, &w) < 0 && ret == 0 && op.dead)
				ret = -EIO;
		} else if (ret == 0) {
			nf->fh = r.ptr;
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

static int nfsb_fstat_on(struct nfsb_op *op, struct nfsfh *fh, struct stat *st)
{
	struct nfsb_wait w;
	struct nfsb_statreq r = {&w, st};

	nfsb_wait_init(&w);
	w.pending = 1;
	if (nfs_fstat64_async(op->nfs, fh, nfsb_cb_stat, &r))
		nfsb_start_failed(op, &w);
	return nfsb_finish(op, &w);
}

/* v4 create fix-up, see the head comment: EXCLUSIVE4 left its verifier
 * in the times and applied no mode.  Through the new handle: the name may
 * hold another file by now (nfsb_chown_new). */
static int nfsb_v4_fixup(struct nfsb_file *nf, mode_t mode)
{
	struct vfs_setattr sa = {
		.valid = VFS_SET_MODE | VFS_SET_ATIME_NOW | VFS_SET_MTIME_NOW,
		.mode = mode,
	};

	return nfsb_fsetattr(nf, &sa);
}

static int nfsb_release(struct vfs_file *f);
static int nfsb_fgetattr(struct vfs_file *f, struct stat *st);

static int nfsb_create(struct vfs_mount *vm, const char *path, int flags,
		       mode_t mode, const struct vfs_cred *cred,
		       struct vfs_file **out, struct stat *st)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct nfsb_file *nf = NULL;
	bool created = true;
	int swapped = 0;
	unsigned long gen = 0;
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
	for (int i = 0; i < 3; i++) {
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
	if (ret < 0) {
		nfsb_file_free(nf);
		goto out;
	}
	if (created && m->version == 4)
		ret = nfsb_v4_fixup(nf, mode);
	/* GETATTR through the new handle: no path walk. */
	nfsb_invalidate(m, full);
	gen = remote_cache_gen(m->cache);
	if (ret == 0)
		ret = nfsb_fgetattr(&nf->base, st);
	if (ret == 0 && created && m->version == 3 && !nfsb_fresh_file(st)) {
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

static int nfsb_open(struct vfs_mount *vm, const char *path, int flags,
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

static void nfsb_cb_read(int err, struct nfs_context *nfs, void *data,
			 void *priv)
{
	struct nfsb_chunk *c = priv;

	if (err > 0) {
		size_t n = (size_t)err < c->want ? (size_t)err : c->want;

		memcpy(c->buf, data, n);
		c->got = n;
		err = 0;
	}
	nfsb_wait_done(c->w, err);
}

static void nfsb_cb_read4(struct rpc_context *rpc, int status, void *data,
			  void *priv)
{
	struct nfsb_chunk *c = priv;
	nfs_resop4 rr, *r = &rr;
	int err = nfsb_v4_res(status, data, r);

	if (err == 0) {
		READ4resok *ok = &r->nfs_resop4_u.opread.READ4res_u.resok4;
		size_t n = ok->data.data_len < c->want ? ok->data.data_len
						       : c->want;

		memcpy(c->buf, ok->data.data_val, n);
		c->got = n;
	}
	nfsb_wait_done(c->w, err);
}

static int nfsb_start_read(struct nfsb_op *op, struct nfsb_file *nf,
			   struct nfsb_chunk *c)
{
	nfs_argop4 tail;

	if (op->m->version == 3)
		return nfs_pread_async(op->nfs, nf->fh, (uint64_t)c->off,
				       c->want, nfsb_cb_read, c);
	memset(&tail, 0, sizeof(tail));
	tail.argop = OP_READ;
	/* stateid all zero: the anonymous stateid */
	tail.nfs_argop4_u.opread.offset = (offset4)c->off;
	tail.nfs_argop4_u.opread.count = (count4)c->want;
	return nfsb_v4_fhop(op, nf, &tail, nfsb_cb_read4, c);
}

static ssize_t nfsb_read(struct vfs_file *f, void *buf, size_t size, off_t off)
{
	struct nfsb_file *nf = nfsb_f(f);
	struct nfsb_mount *m = nfsb_m(f->mount);
	size_t chunk = m->rsize, n = (size + chunk - 1) / chunk;
	struct nfsb_chunk stackc[8],
		*c = n <= 8 ? stackc : calloc(n, sizeof(*c));
	struct nfsb_op op;
	ssize_t ret;
	int tries = 0;

	if (!c)
		return -ENOMEM;
	nfsb_set_flushed(nf, false);
	/* what we wrote behind (through any handle of it) is not there
	 * yet */
	nfsb_wb_drain_file(nf);
	if (size == 0) {
		ret = 0;
		goto out;
	}
	do {
		struct nfsb_wait w;
		size_t total = 0;

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			goto out;
		nfsb_wait_init(&w);
		for (size_t i = 0; i < n; i++) {
			c[i] = (struct nfsb_chunk){
				.w = &w,
				.nf = nf,
				.buf = (char *)buf + i * chunk,
				.off = off + (off_t)(i * chunk),
				.want = size - i * chunk < chunk
						? size - i * chunk
						: chunk,
			};
			w.pending++;
			if (nfsb_start_read(&op, nf, &c[i]))
				nfsb_start_failed(&op, &w);
		}
		ret = nfsb_finish(&op, &w);
		nfsb_put(&op);
		if (ret < 0)
			continue;
		/* Short only at end of file: stop at the first short chunk. */
		for (size_t i = 0; i < n; i++) {
			total += c[i].got;
			if (c[i].got < c[i].want)
				break;
		}
		ret = (ssize_t)total;
	} while (ret < 0 && nfsb_retry(&op, (int)ret, &tries));
out:
	if (c != stackc)
		free(c);
	return ret;
}

/* A WRITE reply for `c`: compare its verifier with the one of the file's
 * uncommitted data. */
static void nfsb_note_write(struct nfsb_chunk *c, size_t count, bool unstable,
			    const char *verf)
{
	struct nfsb_file *nf = c->nf;

	c->got = count < c->want ? count : c->want;
	c->unstable = unstable;
	pthread_mutex_lock(&nf->lock);
	if (nf->verf_known && nf->dirty &&
	    memcmp(nf->verf, verf, sizeof(nf->verf)))
		c->verf_bad = true;
	memcpy(nf->verf, verf, sizeof(nf->verf));
	nf->verf_known = true;
	/* at once, not when the whole request is done: a resent rest of it
	 * must be compared against this verifier */
	if (unstable)
		nf->dirty = true;
	pthread_mutex_unlock(&nf->lock);
}

static void nfsb_cb_write3(struct rpc_context *rpc, int status, void *data,
			   void *priv)
{
	struct nfsb_chunk *c = priv;
	WRITE3res *res = data;
	int err = 0;

	if (status != RPC_STATUS_SUCCESS) {
		err = -EFAULT; /* no reply: transport */
	} else if (res->status != NFS3_OK) {
		err = nfsstat3_to_errno(res->status);
	} else {
		WRITE3resok *ok = &res->WRITE3res_u.resok;

		nfsb_note_write(c, ok->count, ok->committed == UNSTABLE,
				ok->verf);
	}
	nfsb_wait_done(c->w, err);
}

static void nfsb_cb_write4(struct rpc_context *rpc, int status, void *data,
			   void *priv)
{
	struct nfsb_chunk *c = priv;
	nfs_resop4 rr, *r = &rr;
	int err = nfsb_v4_res(status, data, r);

	if (err == 0) {
		WRITE4resok *ok = &r->nfs_resop4_u.opwrite.WRITE4res_u.resok4;

		nfsb_note_write(c, ok->count, ok->committed == UNSTABLE4,
				ok->writeverf);
	}
	nfsb_wait_done(c->w, err);
}

/* Start the WRITE of one chunk; `stable` is 0, 1 or 2 (UNSTABLE,
 * DATA_SYNC, FILE_SYNC: the same values in v3 and v4). */
int nfsb_start_write(struct nfsb_op *op, struct nfsb_file *nf,
		     struct nfsb_chunk *c, int stable)
{
	if (op->m->version == 3) {
		struct nfs_fh *raw = nfsb_rawfh(nf->fh, NFSB_V3_FHSIZE);
		WRITE3args a;

		if (!raw)
			return -1;
		memset(&a, 0, sizeof(a));
		a.file.data.data_len = (u_int)raw->len;
		a.file.data.data_val = raw->val;
		a.offset = (uint64_t)c->off;
		a.count = (count3)c->want;
		a.stable = stable;
		a.data.data_len = (u_int)c->want;
		a.data.data_val = c->buf;
		return rpc_nfs3_write_async(nfs_get_rpc_context(op->nfs),
					    nfsb_cb_write3, &a, c);
	} else {
		nfs_argop4 tail;

		memset(&tail, 0, sizeof(tail));
		tail.argop = OP_WRITE;
		tail.nfs_argop4_u.opwrite.offset = (offset4)c->off;
		tail.nfs_argop4_u.opwrite.stable = stable;
		tail.nfs_argop4_u.opwrite.data.data_len = (u_int)c->want;
		tail.nfs_argop4_u.opwrite.data.data_val = c->buf;
		return nfsb_v4_fhop(op, nf, &tail, nfsb_cb_write4, c);
	}
}

/* Sticky error of `nf`, reported once. */
static int nfsb_take_err(struct nfsb_file *nf)
{
	int err;

	pthread_mutex_lock(&nf->lock);
	err = nf->err;
	nf->err = 0;
	pthread_mutex_unlock(&nf->lock);
	return err;
}

static ssize_t nfsb_write(struct vfs_file *f, const void *buf, size_t size,
			  off_t off)
{
	struct nfsb_file *nf = nfsb_f(f);
	struct nfsb_mount *m = nfsb_m(f->mount);
	size_t chunk = m->wsize, n = (size + chunk - 1) / chunk;
	struct nfsb_chunk stackc[8], *c;
	int stable = (f->flags & O_SYNC) == O_SYNC ? 2
		     : (f->flags & O_DSYNC)        ? 1
						   : 0;
	struct nfsb_op op;
	bool unstable = false, verf_bad = false;
	ssize_t ret;
	int tries = 0;

	nfsb_set_flushed(nf, false);
	ret = nfsb_take_err(nf);
	if (ret < 0)
		return ret;
	if (size == 0)
		return 0;
	if (m->wb && !stable && !(f->flags & O_DIRECT) && !f->write_through) {
		ret = nfsb_wb_write(nf, buf, size, off);
		nfsb_invalidate_file(nf);
		return ret;
	}
	/* synchronous: nothing of ours, through any handle of the file,
	 * may still be on its way to land after this */
	nfsb_wb_drain_file(nf);
	c = n <= 8 ? stackc : calloc(n, sizeof(*c));
	if (!c)
		return -ENOMEM;
	do {
		struct nfsb_wait w;

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			goto out;
		nfsb_wait_init(&w);
		for (size_t i = 0; i < n; i++) {
			c[i] = (struct nfsb_chunk){
				.w = &w,
				.nf = nf,
				.buf = (char *)buf + i * chunk,
				.off = off + (off_t)(i * chunk),
				.want = size - i * chunk < chunk
						? size - i * chunk
						: chunk,
			};
			w.pending++;
			if (nfsb_start_write(&op, nf, &c[i], stable))
				nfsb_start_failed(&op, &w);
		}
		ret = nfsb_finish(&op, &w);
		/* A server may write less than asked: send the rest, one
		 * chunk at a time (rare, never seen with ganesha). */
		for (size_t i = 0; ret == 0 && i < n; i++) {
			while (ret == 0 && c[i].got < c[i].want) {
				struct nfsb_chunk *ci = &c[i];
				bool was_unstable = ci->unstable;

				ci->buf += ci->got;
				ci->off += (off_t)ci->got;
				ci->want -= ci->got;
				ci->got = 0;
				nfsb_wait_init(&w);
				w.pending = 1;
				if (nfsb_start_write(&op, nf, ci, stable))
					nfsb_start_failed(&op, &w);
				ret = nfsb_finish(&op, &w);
				ci->unstable |= was_unstable;
				if (ret == 0 && ci->got == 0)
					ret = -EIO;
			}
		}
		nfsb_put(&op);
		if (ret < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			unstable |= c[i].unstable;
			verf_bad |= c[i].verf_bad;
		}
	} while (ret < 0 && nfsb_retry(&op, (int)ret, &tries));
	if (ret < 0)
		goto out;

	pthread_mutex_lock(&nf->lock);
	/* A new verifier while earlier unstable data was not committed: the
	 * server restarted and may have lost it.  The new data stays dirty
	 * for the next COMMIT. */
	ret = verf_bad ? -EIO : (ssize_t)size;
	if (unstable)
		nf->dirty = true;
	pthread_mutex_unlock(&nf->lock);
	nfsb_invalidate_file(nf);
out:
	if (c != stackc)
		free(c);
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

/*
 * Make the file's data stable: COMMIT if unstable writes are outstanding.
 * -EIO if data may have been lost on the way (server restart between WRITE
 * and COMMIT: the verifier changed).
 */
static int nfsb_commit(struct nfsb_file *nf)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);
	struct nfsb_commitreq r;
	struct nfsb_op op;
	struct nfsb_wait w;
	bool dirty;
	int ret;

	nfsb_wb_drain(nf);
	ret = nfsb_take_err(nf);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&nf->lock);
	dirty = nf->dirty;
	pthread_mutex_unlock(&nf->lock);
	if (!dirty)
		return 0;
	ret = nfsb_get(m, -1, &op);
	if (ret < 0)
		return ret;
	r = (struct nfsb_commitreq){.w = &w, .nf = nf};
	nfsb_wait_init(&w);
	w.pending = 1;
	if (m->version == 3) {
		struct nfs_fh *raw = nfsb_rawfh(nf->fh, NFSB_V3_FHSIZE);
		COMMIT3args a;

		memset(&a, 0, sizeof(a)); /* offset 0, count 0: all */
		if (raw) {
			a.file.data.data_len = (u_int)raw->len;
			a.file.data.data_val = raw->val;
		}
		if (!raw || rpc_nfs3_commit_async(nfs_get_rpc_context(op.nfs),
						  nfsb_cb_commit3, &a, &r))
			nfsb_start_failed(&op, &w);
	} else {
		nfs_argop4 tail;

		memset(&tail, 0, sizeof(tail));
		tail.argop = OP_COMMIT; /* offset 0, count 0: all */
		if (nfsb_v4_fhop(&op, nf, &tail, nfsb_cb_commit4, &r))
			nfsb_start_failed(&op, &w);
	}
	ret = nfsb_finish(&op, &w);
	nfsb_put(&op);
	pthread_mutex_lock(&nf->lock);
	if (ret == 0 && r.verf_bad)
		ret = -EIO;
	/* Clean after success, and after a reported loss (reported once, as
	 * the kernel reports writeback errors); a failed COMMIT keeps the
	 * data dirty so that a later one can tell. */
	if (ret == 0 || r.verf_bad)
		nf->dirty = false;
	pthread_mutex_unlock(&nf->lock);
	return ret;
}

static int nfsb_fgetattr(struct vfs_file *f, struct stat *st)
{
	struct nfsb_file *nf = nfsb_f(f);
	struct nfsb_mount *m = nfsb_m(f->mount);
	struct nfsb_op op;
	int ret, tries = 0;

	/* every handle's queued writes: the size must include them, or the
	 * kernel would cut its own idea of the file short */
	nfsb_wb_drain_file(nf);
	/* By handle: the open file, whatever another client named it.  Not
	 * cached under its name either: another client may have given that
	 * name to another file, and a lookup must find that one. */
	do {
		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			break;
		if (m->version == 4)
			ret = nfsb_v4_fstat(&op, nf, st);
		else
			ret = nfsb_fstat_on(&op, nf->fh, st);
		nfsb_put(&op);
	} while (nfsb_retry(&op, ret, &tries));
	return ret;
}

static void nfsb_cb_setattr3(struct rpc_context *rpc, int status, void *data,
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

/*
 * Change an open file's attributes through its file handle, in one
 * SETATTR: it reaches the file the descriptor has open whatever names it
 * has now (renamed by another client, unlinked while open), and sets
 * times with nanoseconds and "now" as the server's clock, which libnfs's
 * path calls cannot.
 */
static int nfsb_fsetattr(struct nfsb_file *nf, const struct vfs_setattr *sa)
{
	struct nfsb_mount *m = nfsb_m(nf->base.mount);
	struct nfsb_op op;
	int ret, tries = 0;

	if (!sa->valid)
		return 0;
	do {
		struct nfsb_wait w;

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		nfsb_wait_init(&w);
		w.pending = 1;
		if (m->version == 3) {
			if (nfsb_start_setattr3(&op, nf, sa, &w))
				nfsb_start_failed(&op, &w);
		} else {
			char abuf[NFSB_V4_ATTRBUF];
			uint32_t bm[2];
			nfs_argop4 tail;

			memset(&tail, 0, sizeof(tail));
			tail.argop = OP_SETATTR;
			nfsb_v4_fattr(
				sa, bm, abuf,
				&tail.nfs_argop4_u.opsetattr.obj_attributes);
			if (nfsb_v4_fhop(&op, nf, &tail, nfsb_cb_compound4, &w))
				nfsb_start_failed(&op, &w);
		}
		ret = nfsb_finish(&op, &w);
		nfsb_put(&op);
	} while (nfsb_retry(&op, ret, &tries));
	nfsb_invalidate_file(nf);
	return ret;
}

static int nfsb_flush(struct vfs_file *f)
{
	/* close(2): like the kernel client, flush and COMMIT so that the
	 * next open anywhere sees the data and errors surface here. */
	int ret = nfsb_commit(nfsb_f(f));

	nfsb_set_flushed(nfsb_f(f), true);
	return ret;
}

static int nfsb_fsync(struct vfs_file *f, bool datasync)
{
	/* COMMIT covers data and metadata alike in NFS. */
	return nfsb_commit(nfsb_f(f));
}

static int nfsb_release(struct vfs_file *f)
{
	struct nfsb_file *nf = nfsb_f(f);
	struct nfsb_mount *m = nfsb_m(f->mount);
	bool silly;

	nfsb_wb_drain(nf);
	if (nf->err) {
		pthread_mutex_lock(&m->lock);
		log_warn_ratelimited(&m->rl,
				     "%s: %s: data written after the last "
				     "flush was lost: %s",
				     m->display, nf->path, strerror(-nf->err));
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

const struct vfs_backend_ops nfs_ops = {
	.name = "nfs",
	.opts = nfs_opts,
	.mount = nfsb_mount,
	.unmount = nfsb_unmount,
	.statfs = nfsb_statfs,
	.state = nfsb_state,
	.getattr = nfsb_getattr,
	.setattr = nfsb_setattr,
	.readlink = nfsb_readlink,
	.mknod = nfsb_mknod,
	.mkdir = nfsb_mkdir,
	.symlink = nfsb_symlink,
	.link = nfsb_link,
	.unlink = nfsb_unlink,
	.rmdir = nfsb_rmdir,
	.rename = nfsb_rename,
	.opendir = nfsb_opendir,
	.readdir = nfsb_readdir,
	.releasedir = nfsb_releasedir,
	.create = nfsb_create,
	.open = nfsb_open,
	.read = nfsb_read,
	.write = nfsb_write,
	.fgetattr = nfsb_fgetattr,
	.flush = nfsb_flush,
	.fsync = nfsb_fsync,
	.release = nfsb_release,
};
