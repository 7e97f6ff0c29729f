/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nfs.c - the "nfs" backend: an NFSv3 or NFSv4 export reached with libnfs.
 *
 * Every libnfs call of vfsd lives in backends/nfs/, so that a later libnfs
 * (6.x changed the read/write signatures, LIBNFS_API_V2) is a local change.
 * This file holds the options, mount and unmount, statfs and the ops
 * table; internal.h has the map of the other files.
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
 * failed rebuild with no other context working the mount is "down" for a
 * backoff period during which checkouts fail at once with -EIO instead of
 * piling up workers; a slot failing beside working contexts waits a
 * backoff of its own instead (nfsb_get()).
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
 *    WRITEs are encoded by us and sent on a connection of our own beside
 *    each context, from the caller's buffer (wire.c), at the server's
 *    wtmax like v3's.  READs (v3 and v4) go there too, their data
 *    received straight into the caller's buffer where libnfs would decode
 *    it into one of its own to be copied.
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
 * network call.  The write-behind core's lock (backends/remote/wb.h) is
 * taken under none of ours and holds only open_lock (wb.c).
 */
#include "backends/nfs/internal.h"
#include "backends/remote/opts.h"

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
	REMOTE_OPT_READAHEAD,
	{0}};

static void nfsb_free(struct nfsb_mount *m)
{
	nfsb_wb_stop(m);
	for (size_t i = 0; i < m->slots.n; i++) {
		if (m->slots.slot[i].conn)
			nfs_destroy_context(m->slots.slot[i].conn);
		if (m->wires)
			nfsb_wire_free(m->wires[i]);
	}
	free(m->wires);
	remote_slots_free(&m->slots);
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

static void nfsb_limits(struct nfsb_mount *m);

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
	m->server = strdup(url->host);
	if (!m->display || !m->server) {
		ret = vfs_error_set(err, ENOMEM, "%s: out of memory", url->raw);
		goto err_free;
	}
	m->version = (int)strtol(vfs_opts_get(opts, "version"), NULL, 10);
	remote_opts_get(opts, &ro);
	m->timeout = ro.timeout_s;
	m->cache_ttl = (double)ro.cache_ttl_s;
	m->base.readahead_bytes = ro.readahead_bytes;
	m->cache = remote_cache_new(ro.cache_ttl_s);
	if (!m->cache) {
		ret = vfs_error_set(err, ENOMEM, "%s: out of memory",
				    m->display);
		goto err_free;
	}
	remote_pool_init(&m->rp, &m->base, m->display, &m->cond, m->cache,
			 NFSB_BACKOFF_FIRST_MS, NFSB_BACKOFF_MAX_MS);
	m->root_user = geteuid() == 0;
	m->auth_uid =
		vfs_opts_get(opts, "uid")
			? (uid_t)strtoul(vfs_opts_get(opts, "uid"), NULL, 10)
			: geteuid();
	if (remote_slots_init(&m->slots, &m->rp, &m->lock, &m->cond, &m->rl,
			      &nfsb_slot_ops, m, (size_t)ro.connections,
			      &(struct remote_slots_opts){
				      .timeout_ms = m->timeout * 1000L,
				      .connect_min_ms = NFSB_REBUILD_MIN_MS,
			      }) < 0) {
		ret = vfs_error_set(err, ENOMEM, "%s: out of memory",
				    m->display);
		goto err_free;
	}

	m->auth_gid =
		vfs_opts_get(opts, "gid")
			? (gid_t)strtoul(vfs_opts_get(opts, "gid"), NULL, 10)
			: getegid();
	/* calloc'd: nfsb_free() frees what a failure leaves */
	m->wires = calloc(m->slots.n, sizeof(*m->wires));
	ret = m->wires ? 0 : -ENOMEM;
	for (size_t i = 0; ret == 0 && i < m->slots.n; i++) {
		m->wires[i] = nfsb_wire_new(m->auth_uid, m->auth_gid);
		if (!m->wires[i])
			ret = -ENOMEM;
	}
	if (ret < 0) {
		ret = vfs_error_set(err, ENOMEM, "%s: out of memory",
				    m->display);
		goto err_free;
	}
	ret = nfsb_first_connect(m, url, opts, &nfs, err);
	if (ret < 0)
		goto err_free;
	m->slots.slot[0].conn = nfs;
	m->slots.slot[0].gen = 1;
	rmax = nfs_get_readmax(nfs);
	wmax = nfs_get_writemax(nfs);
	m->rsize = rmax ? (size_t)rmax : 65536;
	m->wsize = wmax ? (size_t)wmax : 65536;
	if (m->rsize > NFSB_CHUNK_MAX)
		m->rsize = NFSB_CHUNK_MAX;
	if (m->wsize > NFSB_CHUNK_MAX)
		m->wsize = NFSB_CHUNK_MAX;

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

	nfsb_limits(m);

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
	/* one call per context at a time, the others queue for a slot:
	 * busy files share the slots, one kept free for a file with nothing
	 * in flight, and 1 MiB of data.  One 1 MiB WRITE in flight already
	 * streams at the server's pace, and each further one is server time
	 * a small reader waits behind (docs/performance.md, "Noisy
	 * neighbours"); small requests cost the server little, and a lone
	 * random reader held to one at a time would wait a whole round trip
	 * for each of its requests */
	m->base.share_reqs = (unsigned)m->slots.n;
	m->base.share_bytes = NFSB_SHARE_BYTES;
	/* a lone sequential reader: READs on all connections but one, at
	 * most 3 (read-ahead, vfsd/router_ra.c) */
	m->base.share_ahead = m->slots.n > 4 ? 3 : (unsigned)m->slots.n - 1;
	log_info("%s: mounted export %s (NFSv%d, %zu connections, "
		 "rsize %zu wsize %zu)",
		 m->display, m->export, m->version, m->slots.n, m->rsize,
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

struct nfsb_statvfsreq {
	struct nfsb_wait *w;
	const char *full;
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

static int nfsb_start_statvfs(struct nfsb_op *op, struct nfsb_wait *w,
			      void *arg)
{
	struct nfsb_statvfsreq *r = arg;

	memset(&r->sv, 0, sizeof(r->sv));
	r->w = w;
	return nfs_statvfs64_async(op->nfs, r->full, nfsb_cb_statvfs, r);
}

struct nfsb_pathconfreq {
	struct nfsb_wait *w;
	char fh[NFSB_V3_FHSIZE]; /* the directory's handle, */
	int fh_len;              /* 0 if none */
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

static int nfsb_start_pathconf3(struct nfsb_op *op, struct nfsb_wait *w,
				void *arg)
{
	struct nfsb_pathconfreq *r = arg;
	PATHCONF3args a;

	r->w = w;
	if (!r->fh_len)
		return -1;
	memset(&a, 0, sizeof(a));
	a.object.data.data_len = (u_int)r->fh_len;
	a.object.data.data_val = r->fh;
	return rpc_nfs3_pathconf_async(nfs_get_rpc_context(op->nfs),
				       nfsb_cb_pathconf3, &a, r);
}

/* NFSv3 PATHCONF of the directory `full`, through a handle libnfs opens
 * for it (libnfs 4.0 has no pathconf call of its own). */
static int nfsb_v3_namemax(struct nfsb_mount *m, const char *full,
			   unsigned long *out)
{
	struct nfsb_pathconfreq r = {.w = NULL};
	struct nfsb_op op;
	int ret, tries = 0;

	/* three requests on one context, the handle its own: not nfsb_call */
	do {
		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		ret = nfsb_v3_fh_on(&op, full, r.fh, &r.fh_len);
		if (ret == 0)
			ret = nfsb_call_on(&op, nfsb_start_pathconf3, &r);
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
/* The longest name, and over NFSv4 the transfer sizes: libnfs 4.0.0
 * reports none for v4, which left READs and WRITEs at 64 KiB where the
 * server takes 1 MiB.  v4 READs stop at NFSB_V4_RMAX: ganesha answered
 * 1 MiB ones at a third of the pace of 512 KiB ones (docs/performance.md),
 * where v3's 1 MiB READs are its fastest. */
static void nfsb_limits(struct nfsb_mount *m)
{
	unsigned long n = 0;
	int ret;

	if (m->version == 4) {
		struct nfsb_v4_limits lim;

		ret = nfsb_v4_limits(m, m->subdir, &lim);
		if (ret == 0 && !lim.maxname)
			ret = -ENOTSUP;
		if (ret == 0)
			n = lim.maxname;
		if (ret == 0 && lim.maxread)
			m->rsize = lim.maxread < NFSB_V4_RMAX
					   ? (size_t)lim.maxread
					   : NFSB_V4_RMAX;
		if (ret == 0 && lim.maxwrite)
			m->wsize = lim.maxwrite < NFSB_CHUNK_MAX
					   ? (size_t)lim.maxwrite
					   : NFSB_CHUNK_MAX;
	} else {
		ret = nfsb_v3_namemax(m, m->subdir, &n);
	}
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
	struct nfsb_statvfsreq r = {.full = full};
	int ret;

	if (!full)
		return -ENOMEM;
	ret = nfsb_call(m, nfsb_start_statvfs, &r);
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
