/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sftp.c - the SFTP backend (sftp://[user@]host[:port]/path) over libssh2:
 * option spec, mount/unmount, namespace and open-file operations.
 * Sessions live in session.c, the pool in pool.c, the cache in cache.c;
 * internal.h has the map and the lock order.
 *
 * Server quirks this file works around (OpenSSH sftp-server, protocol v3,
 * as exposed by libssh2 1.10):
 *  - Most errno values arrive as SSH_FX_FAILURE; where POSIX needs EEXIST,
 *    ENOTEMPTY, EISDIR or ENOTDIR we look at the object to tell them apart.
 *  - Plain rename never replaces an existing target, and libssh2 1.10
 *    cannot send posix-rename@openssh.com, so replacing renames move the
 *    target aside first (see sftp_rename).
 *  - SETSTAT follows symlinks and lsetstat@ is not reachable, so changing
 *    a symlink's own attributes is refused rather than done to its target.
 *  - The server applies its own umask to new files and directories; modes
 *    are corrected afterwards when we know we created the object.
 *  - Everything is created as the login user; a root login gives new
 *    objects to the caller afterwards (sftp_owner_due), symlinks excepted.
 *  - ENAMETOOLONG and EINVAL both arrive as BAD_MESSAGE, EFBIG, ENOSPC and
 *    EROFS as FAILURE: lengths are checked before sending (sftp_rpath),
 *    sizes explained after (sftp_explain_size).
 *  - Times are unsigned 32-bit seconds and are clamped to that range.
 *  - No inode numbers or link counts in v3: st_ino is a hash of the path
 *    and st_nlink is 1.
 *  - libssh2 1.10 reads the status of SSH_FXP_SYMLINK and of a failed
 *    SSH_FXP_READLINK from the wrong offset (it reports the request id):
 *    their failures carry no usable status, see sftp_err_nostatus().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/remote/opts.h"
#include "backends/sftp/internal.h"
#include "lib/hash.h"
#include "lib/log.h"

#define SFTP_BLKSIZE       (128 * 1024)
/* Small sequential reads are served from a per-file buffer filled with
 * reads of this size: libssh2 keeps four times its read size in flight,
 * so a large buffer is what keeps the link busy.  Reads of at least
 * SFTP_RA_MIN_DIRECT (FUSE sends up to 1 MiB) already do, and skip the
 * extra copy. */
#define SFTP_RA_SIZE       (2u << 20)
#define SFTP_RA_MIN_DIRECT (512u << 10)
/* ... for at most this many files per mount at once, to bound memory */
#define SFTP_RA_MAX        32
/* bytes queued for writing behind, per mount */
#define SFTP_WB_WINDOW     (16u << 20)

static const char *const sftp_hostkey_choices[] = {"strict", "accept-new",
						   NULL};

static const struct vfs_opt_spec sftp_opts[] = {
	{.name = "identity",
	 .type = VFS_OPT_PATH,
	 .help = "private key file (default: ssh-agent, then "
		 "~/.ssh/id_ed25519, id_ecdsa, id_rsa)"},
	{.name = "known_hosts",
	 .type = VFS_OPT_PATH,
	 .def = "~/.ssh/known_hosts",
	 .help = "OpenSSH known_hosts file the server's host key is checked "
		 "against"},
	{.name = "hostkey",
	 .type = VFS_OPT_ENUM,
	 .def = "strict",
	 .choices = sftp_hostkey_choices,
	 .help = "strict: refuse unknown hosts; accept-new: add unknown hosts "
		 "to known_hosts (a changed key is always refused)"},
	REMOTE_OPT_CONNECTIONS,
	REMOTE_OPT_TIMEOUT,
	{.name = "keepalive",
	 .type = VFS_OPT_INT,
	 .def = "15",
	 .min = 0,
	 .max = 3600,
	 .help = "seconds between SSH keepalives on idle sessions (0: off)"},
	REMOTE_OPT_CACHE_TTL,
	{.name = "password",
	 .type = VFS_OPT_STRING,
	 .secret = true,
	 .help = "password (config file only; prefer keys)"},
	REMOTE_OPT_WRITE_BEHIND,
	{.name = "remote_exec",
	 .type = VFS_OPT_BOOL,
	 .def = "no",
	 .help = "allow running commands on the server (used by the image "
		 "store)"},
	{.name = NULL},
};

struct sftp_file {
	struct vfs_file base; /* first: the router sees this */
	pthread_mutex_t lock; /* serialises calls on this handle */
	char *path;           /* mount-relative (owned) */
	char *rpath;          /* remote (owned) */
	unsigned long fxf;    /* LIBSSH2_FXF_* to reopen with */
	/* the remote handle and the session it belongs to; idx < 0: none */
	LIBSSH2_SFTP_HANDLE *h;
	int idx;
	unsigned gen;
	bool need_seek; /* libssh2's pipeline state is unknown */
	int write_err;  /* sticky: a write may have been lost */
	/* read-ahead: ra[0..ra_len) holds the file from ra_off; ra_eof says
	 * the file ended there.  next_off is where the last read ended. */
	char *ra;
	size_t ra_len;
	off_t ra_off;
	bool ra_eof;
	off_t next_off;
	/*
	 * More handles of the file, one per pooled connection (xh[idx],
	 * valid while the slot's generation is still xh[idx].gen), for I/O
	 * that need not go through the handle above: O_DIRECT requests and
	 * the writer threads' writes run on any idle connection at once
	 * instead of queueing on f->lock.  xlock guards the table; a handle
	 * is used only by whoever has its connection checked out.
	 */
	pthread_mutex_t xlock;
	struct sftp_xh {
		LIBSSH2_SFTP_HANDLE *h;
		unsigned gen;
	} * xh;
	/* the mount's open files, under sm->files_lock; `moved`: renamed
	 * or unlinked through this mount since it was opened, so its path
	 * may name another file now and no more handles are opened by it */
	struct sftp_file *next, **pprev;
	bool moved;
};

struct vfs_dir {
	struct remote_listing *ls;
};

static void sftp_files_moved(struct sftp_mount *sm, const char *path);

static pthread_once_t sftp_init_once = PTHREAD_ONCE_INIT;

static void sftp_global_init(void)
{
	libssh2_init(0);
}

/* ---- Helpers -------------------------------------------------------- */

static inline struct sftp_file *sftp_file_of(struct vfs_file *f)
{
	return (struct sftp_file *)f;
}

/*
 * The remote path of a mount-relative one, in *out (a new string): 0,
 * -ENOMEM, or -ENAMETOOLONG for what the server's own system calls would
 * refuse: a component longer than its name_max, or a whole remote path
 * of PATH_MAX bytes or more (sftp-server hands paths whole to its system
 * calls).  Checked here because OpenSSH reports ENAMETOOLONG as
 * SSH_FX_BAD_MESSAGE, which also stands for EINVAL.
 */
static int sftp_rpath(struct sftp_mount *sm, const char *path, char **out)
{
	const char *p = path;

	*out = NULL;
	while (*p) {
		size_t len;

		p += strspn(p, "/");
		len = strcspn(p, "/");
		if (len > sm->name_max)
			return -ENAMETOOLONG;
		p += len;
	}
	*out = vfs_path_join(sm->cfg.root, path);
	if (!*out)
		return -ENOMEM;
	if (strlen(*out) >= PATH_MAX) {
		free(*out);
		*out = NULL;
		return -ENAMETOOLONG;
	}
	return 0;
}

/* For the libssh2 1.10 calls whose SFTP status is garbage: a status error
 * is "failed for some reason", never a broken session. */
static int sftp_err_nostatus(struct sftp_conn *c, int rc)
{
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL)
		return -EIO;
	return sftp_err(c, rc);
}

/* the short basis keeps the inode numbers of earlier versions (hash.h) */
static ino_t sftp_ino(const char *path)
{
	return (ino_t)(vfs_hash_str_from(VFS_HASH_FNV_BASIS_SHORT, path) | 1);
}

static bool sftp_attr_full(const LIBSSH2_SFTP_ATTRIBUTES *a)
{
	const unsigned long all =
		LIBSSH2_SFTP_ATTR_SIZE | LIBSSH2_SFTP_ATTR_UIDGID |
		LIBSSH2_SFTP_ATTR_PERMISSIONS | LIBSSH2_SFTP_ATTR_ACMODTIME;

	return (a->flags & all) == all;
}

static void sftp_attr_to_stat(const LIBSSH2_SFTP_ATTRIBUTES *a,
			      const char *path, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = sftp_ino(path);
	st->st_nlink = 1;
	st->st_blksize = SFTP_BLKSIZE;
	if (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS)
		st->st_mode = (mode_t)a->permissions;
	if (!(st->st_mode & S_IFMT))
		st->st_mode |= S_IFREG;
	if (a->flags & LIBSSH2_SFTP_ATTR_SIZE) {
		st->st_size = (off_t)a->filesize;
		st->st_blocks = (blkcnt_t)((a->filesize + 511) / 512);
	}
	if (a->flags & LIBSSH2_SFTP_ATTR_UIDGID) {
		st->st_uid = (uid_t)a->uid;
		st->st_gid = (gid_t)a->gid;
	}
	if (a->flags & LIBSSH2_SFTP_ATTR_ACMODTIME) {
		st->st_atim.tv_sec = (time_t)a->atime;
		st->st_mtim.tv_sec = (time_t)a->mtime;
		/* v3 has no ctime: mtime is the closest honest value */
		st->st_ctim.tv_sec = (time_t)a->mtime;
	}
}

static unsigned long sftp_fxf(int flags)
{
	unsigned long fxf = 0;

	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		fxf = LIBSSH2_FXF_READ;
		break;
	case O_WRONLY:
		fxf = LIBSSH2_FXF_WRITE;
		break;
	default:
		fxf = LIBSSH2_FXF_READ | LIBSSH2_FXF_WRITE;
		break;
	}
	if (flags & O_APPEND)
		fxf |= LIBSSH2_FXF_APPEND;
	return fxf;
}

/* lstat over an already checked-out connection. */
static int sftp_lstat_conn(struct sftp_conn *c, const char *rpath,
			   const char *path, struct stat *st)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	int rc;

	rc = libssh2_sftp_stat_ex(c->sftp, rpath, strlen(rpath),
				  LIBSSH2_SFTP_LSTAT, &a);
	if (rc)
		return sftp_err(c, rc);
	sftp_attr_to_stat(&a, path, st);
	return 0;
}

/*
 * Check c back in after an idempotent call; true when the call should run
 * once more.  A call that failed because its session broke (a server
 * restart, say) is worth one more try on a fresh session; a timeout is
 * not, since the server may be hung and the caller has waited enough.
 */
static bool sftp_checkin_retry(struct sftp_mount *sm, struct sftp_conn *c,
			       int rc, int *tries)
{
	bool again = remote_retry_once(rc, c->broken, tries);

	sftp_checkin(sm, c);
	return again;
}

/* ---- Instance ------------------------------------------------------- */

/* Expand a leading "~/" (options.h: VFS_OPT_PATH) to $HOME, or to the
 * passwd entry's directory when HOME is unset.  A new string or NULL. */
static char *sftp_expand(const char *p)
{
	struct passwd pwbuf, *pw = NULL;
	const char *home;
	char buf[4096];

	if (!p)
		return NULL;
	if (strncmp(p, "~/", 2) != 0)
		return strdup(p);
	home = getenv("HOME");
	if (!home || !*home) {
		/* mount() may run on the control thread: reentrant lookup */
		if (getpwuid_r(geteuid(), &pwbuf, buf, sizeof(buf), &pw) || !pw)
			home = "/";
		else
			home = pw->pw_dir;
	}
	return vfs_path_join(home, p + 1);
}

static void sftp_config_clear(struct sftp_config *cfg)
{
	free(cfg->display);
	free(cfg->host);
	free(cfg->user);
	free(cfg->root);
	free(cfg->identity);
	free(cfg->known_hosts);
	if (cfg->password) {
		explicit_bzero(cfg->password, strlen(cfg->password));
		free(cfg->password);
	}
	memset(cfg, 0, sizeof(*cfg));
}

static int sftp_config_fill(struct sftp_config *cfg, const struct vfs_url *url,
			    const struct vfs_opts *opts, struct vfs_error *err)
{
	struct remote_opts ro;
	const char *v;
	char port[16] = "";

	if (!url->host || !*url->host)
		return vfs_error_set(err, EINVAL,
				     "%s: sftp URLs need a host "
				     "(sftp://[user@]host[:port]/path)",
				     url->raw);
	cfg->host = strdup(url->host);
	cfg->port = url->port ? url->port : 22;
	if (url->user) {
		cfg->user = strdup(url->user);
	} else {
		struct passwd pwbuf, *pw = NULL;
		char buf[4096];

		if (getpwuid_r(geteuid(), &pwbuf, buf, sizeof(buf), &pw) || !pw)
			return vfs_error_set(err, EINVAL,
					     "%s: no user name in the URL and "
					     "none for uid %u",
					     url->raw, (unsigned)geteuid());
		cfg->user = strdup(pw->pw_name);
	}
	cfg->root = strdup(url->path ? url->path : "/");
	if (cfg->port != 22)
		snprintf(port, sizeof(port), ":%d", cfg->port);
	if (cfg->host && cfg->user &&
	    asprintf(&cfg->display, "sftp://%s@%s%s%s%s%s", cfg->user,
		     strchr(cfg->host, ':') ? "[" : "", cfg->host,
		     strchr(cfg->host, ':') ? "]" : "", port,
		     url->path ? url->path : "/") < 0)
		cfg->display = NULL;
	v = vfs_opts_get(opts, "identity");
	if (v)
		cfg->identity = sftp_expand(v);
	cfg->known_hosts = sftp_expand(vfs_opts_get(opts, "known_hosts"));
	v = vfs_opts_get(opts, "password");
	if (v)
		cfg->password = strdup(v);
	if (!cfg->host || !cfg->user || !cfg->root || !cfg->display ||
	    !cfg->known_hosts || (v && !cfg->password) ||
	    (vfs_opts_get(opts, "identity") && !cfg->identity))
		return vfs_error_set(err, ENOMEM, "out of memory");
	v = vfs_opts_get(opts, "hostkey");
	cfg->hostkey = v && strcmp(v, "accept-new") == 0
			       ? SFTP_HOSTKEY_ACCEPT_NEW
			       : SFTP_HOSTKEY_STRICT;
	remote_opts_get(opts, &ro);
	cfg->connections = ro.connections;
	cfg->timeout_ms = ro.timeout_s * 1000;
	cfg->keepalive_s = (int)vfs_opts_get_int(opts, "keepalive");
	cfg->cache_ttl_s = ro.cache_ttl_s;
	cfg->remote_exec = vfs_opts_get_bool(opts, "remote_exec");
	cfg->write_behind = ro.write_behind;
	return 0;
}

/*
 * Check the remote root and probe extensions.  libssh2 1.10 does not
 * show the server's extension list, so ask: an unknown extension is
 * answered OP_UNSUPPORTED, a known one any other way (fsync of a
 * directory handle fails harmlessly).
 */
static int sftp_probe(struct sftp_mount *sm, struct sftp_conn *c,
		      struct vfs_error *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	LIBSSH2_SFTP_STATVFS vfs;
	LIBSSH2_SFTP_HANDLE *dh;
	const char *root = sm->cfg.root;
	int rc;

	rc = libssh2_sftp_stat_ex(c->sftp, root, strlen(root),
				  LIBSSH2_SFTP_STAT, &a);
	if (rc) {
		rc = sftp_err(c, rc);
		return vfs_error_set(err, -rc, "%s: remote directory %s: %s",
				     sm->cfg.display, root, strerror(-rc));
	}
	if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) ||
	    !LIBSSH2_SFTP_S_ISDIR(a.permissions))
		return vfs_error_set(err, ENOTDIR,
				     "%s: remote path %s is not a directory",
				     sm->cfg.display, root);

	sm->feat.statvfs =
		libssh2_sftp_statvfs(c->sftp, root, strlen(root), &vfs) == 0;
	sm->name_max =
		sm->feat.statvfs && vfs.f_namemax ? vfs.f_namemax : NAME_MAX;
	if (c->broken)
		return vfs_error_set(
			err, EIO,
			"%s: connection lost while probing the server",
			sm->cfg.display);

	dh = libssh2_sftp_open_ex(c->sftp, root, strlen(root), 0, 0,
				  LIBSSH2_SFTP_OPENDIR);
	if (!dh) {
		rc = sftp_err(c, libssh2_session_last_errno(c->ssh));
		return vfs_error_set(err, -rc, "%s: cannot list %s: %s",
				     sm->cfg.display, root, strerror(-rc));
	}
	rc = libssh2_sftp_fsync(dh);
	sm->feat.fsync = rc == 0 || (rc == LIBSSH2_ERROR_SFTP_PROTOCOL &&
				     libssh2_sftp_last_error(c->sftp) !=
					     LIBSSH2_FX_OP_UNSUPPORTED);
	if (rc && rc != LIBSSH2_ERROR_SFTP_PROTOCOL)
		sftp_err(c, rc);
	if (!c->broken)
		libssh2_sftp_close_handle(dh);
	if (c->broken)
		return vfs_error_set(
			err, EIO,
			"%s: connection lost while probing the server",
			sm->cfg.display);
	return 0;
}

static void sftp_unmount(struct vfs_mount *m);
static void sftp_write_behind(void *file, const char *buf, size_t size,
			      off_t off);

static int sftp_mount(const struct vfs_url *url, const struct vfs_opts *opts,
		      struct vfs_mount **out, struct vfs_error *err)
{
	struct sftp_mount *sm;
	int rc;

	pthread_once(&sftp_init_once, sftp_global_init);
	sm = calloc(1, sizeof(*sm));
	if (!sm)
		return vfs_error_set(err, ENOMEM, "out of memory");
	sm->base.ops = &sftp_ops;
	pthread_mutex_init(&sm->files_lock, NULL);
	rc = sftp_config_fill(&sm->cfg, url, opts, err);
	if (rc < 0)
		goto err_free;
	sm->cache = remote_cache_new(sm->cfg.cache_ttl_s);
	if (!sm->cache || sftp_pool_init(sm) < 0) {
		rc = vfs_error_set(err, ENOMEM, "out of memory");
		goto err_free;
	}
	/* the first session is opened here so that configuration errors
	 * (host key, credentials, path) fail the mount with a message */
	rc = sftp_conn_open(sm, &sm->pool.conns[0], err);
	if (rc < 0)
		goto err_free;
	rc = sftp_probe(sm, &sm->pool.conns[0], err);
	if (rc < 0)
		goto err_free;
	rc = sftp_pool_start(sm);
	if (rc == 0 && sm->cfg.write_behind)
		/* two writers: two files' writes go out at once */
		rc = sftp_wb_new(&sm->wb, sftp_write_behind, 2, SFTP_WB_WINDOW);
	if (rc < 0) {
		vfs_error_set(err, -rc, "%s: cannot start a thread",
			      sm->cfg.display);
		goto err_free;
	}

	sm->base.caps = VFS_CAP_SHARED;
	if (sm->feat.fsync)
		sm->base.caps |= VFS_CAP_STABLE_FSYNC;
	sm->base.attr_timeout = sm->cfg.cache_ttl_s;
	sm->base.entry_timeout = vfs_remote_entry_timeout(sm->cfg.cache_ttl_s);
	log_info("%s: mounted (%d connections, timeout %ds%s%s)",
		 sm->cfg.display, sm->cfg.connections,
		 sm->cfg.timeout_ms / 1000, sm->feat.fsync ? ", fsync" : "",
		 sm->feat.statvfs ? ", statvfs" : "");
	*out = &sm->base;
	return 0;

err_free:
	sftp_unmount(&sm->base);
	return rc;
}

static void sftp_unmount(struct vfs_mount *m)
{
	struct sftp_mount *sm = sftp_mount_of(m);

	sftp_wb_free(sm->wb);
	sftp_pool_destroy(sm);
	pthread_mutex_destroy(&sm->files_lock);
	remote_cache_free(sm->cache);
	sftp_config_clear(&sm->cfg);
	free(sm);
}

static const char *sftp_state(struct vfs_mount *m)
{
	return sftp_pool_state(sftp_mount_of(m));
}

static int sftp_statfs(struct vfs_mount *m, const char *path,
		       struct statvfs *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	LIBSSH2_SFTP_STATVFS v;
	struct sftp_conn *c;
	char *rpath;
	int rc, tries = 0;

	if (!sm->feat.statvfs)
		return -ENOSYS;
	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	do {
		rc = sftp_checkout(sm, -1, 0, &c);
		if (rc)
			break;
		rc = libssh2_sftp_statvfs(c->sftp, rpath, strlen(rpath), &v);
		rc = sftp_err(c, rc);
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	free(rpath);
	if (rc)
		return rc;
	memset(st, 0, sizeof(*st));
	st->f_bsize = v.f_bsize;
	st->f_frsize = v.f_frsize;
	st->f_blocks = v.f_blocks;
	st->f_bfree = v.f_bfree;
	st->f_bavail = v.f_bavail;
	st->f_files = v.f_files;
	st->f_ffree = v.f_ffree;
	st->f_favail = v.f_favail;
	st->f_fsid = v.f_fsid;
	st->f_flag = v.f_flag;
	st->f_namemax = v.f_namemax;
	return 0;
}

/* ---- Namespace ------------------------------------------------------ */

/* lstat through the cache; `fresh` skips the cache (and refills it). */
static int sftp_lstat(struct sftp_mount *sm, const char *path, bool fresh,
		      struct stat *st)
{
	struct sftp_conn *c;
	unsigned long gen;
	char *rpath;
	int rc, tries = 0;

	if (!fresh && !vfs_callctx.fresh &&
	    remote_cache_get_attr(sm->cache, path, st))
		return 0;
	gen = remote_cache_gen(sm->cache);
	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	do {
		rc = sftp_checkout(sm, -1, 0, &c);
		if (rc)
			break;
		rc = sftp_lstat_conn(c, rpath, path, st);
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	free(rpath);
	if (rc == 0)
		remote_cache_put_attr(sm->cache, path, st, gen);
	return rc;
}

static int sftp_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	/* a size from before our queued writes would shrink the file in
	 * the kernel's eyes */
	sftp_wb_drain_path(sftp_mount_of(m)->wb, path);
	return sftp_lstat(sftp_mount_of(m), path, false, st);
}

/*
 * The server said FAILURE (-EIO), or NO_SUCH_FILE where OpenSSH folds
 * ENOTDIR into it: name the POSIX error by looking at what is there now.
 * if_exists/if_dir/if_notdir (0: no opinion) are returned when the path
 * exists / is a directory / is not one; otherwise rc stays.
 */
static int sftp_explain(struct sftp_conn *c, const char *rpath, int rc,
			int if_exists, int if_dir, int if_notdir)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	bool isdir;

	if ((rc != -EIO && rc != -ENOENT) || c->broken)
		return rc;
	if (libssh2_sftp_stat_ex(c->sftp, rpath, strlen(rpath),
				 LIBSSH2_SFTP_LSTAT, &a)) {
		if (libssh2_session_last_errno(c->ssh) !=
		    LIBSSH2_ERROR_SFTP_PROTOCOL)
			sftp_err(c, libssh2_session_last_errno(c->ssh));
		return c->broken ? -EIO : rc;
	}
	isdir = (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
		LIBSSH2_SFTP_S_ISDIR(a.permissions);
	if (isdir && if_dir)
		return if_dir;
	if (!isdir && if_notdir)
		return if_notdir;
	return if_exists ? if_exists : rc;
}

/*
 * A change the server answered FAILURE (-EIO) may have met a read-only
 * file system, which SFTP v3 has no code for: -EROFS when statvfs@openssh
 * says so of rpath's directory, else rc.  Only for calls that change
 * something.
 */
static int sftp_explain_rofs(struct sftp_mount *sm, struct sftp_conn *c,
			     const char *rpath, int rc)
{
	LIBSSH2_SFTP_STATVFS v;
	char *dir;
	int src;

	if (rc != -EIO || c->broken || !sm->feat.statvfs)
		return rc;
	dir = vfs_path_parent(rpath);
	if (!dir)
		return rc;
	src = libssh2_sftp_statvfs(c->sftp, dir, strlen(dir), &v);
	free(dir);
	if (src)
		sftp_err(c, src);
	else if (v.f_flag & LIBSSH2_SFTP_ST_RDONLY)
		return -EROFS;
	return rc;
}

/*
 * The smallest maximum file size among the file systems an SFTP server
 * commonly serves: FAT's 4 GiB - 1 (ext4 with 4 KiB blocks allows
 * 16 TiB, XFS and Btrfs 8 EiB).  No file can fail to reach this size for
 * being too large.
 */
#define SFTP_MIN_MAX_FILE 0xffffffffull

/*
 * Name the errno of a failed write or size change (rc; -EIO is the
 * server's SSH_FX_FAILURE).  OpenSSH answers FAILURE for every errno SFTP
 * v3 has no code for (EFBIG, ENOSPC, EROFS, EIO...), with the text
 * "Failure", and libssh2 1.10 passes on neither text nor detail, only the
 * status code.  What can be told from outside:
 *  - a read-only server file system (statvfs@openssh.com, ST_RDONLY):
 *    EROFS;
 *  - a write needing more room than the file system has left: ENOSPC;
 *  - a file that would grow past SFTP_MIN_MAX_FILE, with room left: EFBIG,
 *    the one remaining cause that a size alone explains (truncate to
 *    999999999999999999 on ext4, say).
 * A write at an offset beyond the file system's maximum fails earlier, in
 * sftp-server's lseek(2), with EINVAL, which arrives as BAD_MESSAGE
 * (-EINVAL here): past SFTP_MIN_MAX_FILE that is EFBIG too, as pwrite(2)
 * says on the server itself.  Anything else stays as it was.  `old` and
 * `end` are the file's size before and as asked for (old 0 when unknown),
 * `need` the bytes written (0 for a size change, which allocates
 * nothing).
 */
static int sftp_explain_size(struct sftp_mount *sm, struct sftp_conn *c,
			     const char *rpath, uint64_t old, uint64_t end,
			     size_t need, int rc)
{
	LIBSSH2_SFTP_STATVFS v;
	int src;

	if (c->broken)
		return rc;
	if (rc == -EINVAL && need && end > SFTP_MIN_MAX_FILE)
		return -EFBIG;
	if (rc != -EIO)
		return rc;
	if (sm->feat.statvfs) {
		src = libssh2_sftp_statvfs(c->sftp, rpath, strlen(rpath), &v);
		if (src == 0 && (v.f_flag & LIBSSH2_SFTP_ST_RDONLY))
			return -EROFS;
		if (src == 0 && need && v.f_bavail * v.f_frsize < need)
			return -ENOSPC;
		if (src && (sftp_err(c, src), c->broken))
			return rc;
	}
	if (end > old && end > SFTP_MIN_MAX_FILE)
		return -EFBIG;
	return rc;
}

/*
 * SFTP v3 carries times as unsigned 32-bit seconds (1970 to 2106), and
 * libssh2 sends the low 32 bits of whatever it is given: 2^32 would land
 * in 1970, -1 in 2106.  Out-of-range times are clamped instead, as the
 * kernel clamps times to what a file system can store (s_time_min/max).
 */
static unsigned long sftp_time_clamp(time_t t)
{
	if (t < 0)
		return 0;
	if ((uint64_t)t > UINT32_MAX)
		return UINT32_MAX;
	return (unsigned long)t;
}

/* setattr of what `path` names, over connection c, from current attrs. */
static int sftp_setstat_conn(struct sftp_conn *c, struct sftp_file *f,
			     const char *rpath, const struct stat *cur,
			     const struct vfs_setattr *sa)
{
	LIBSSH2_SFTP_ATTRIBUTES a = {0};
	time_t now = time(NULL);
	int rc;

	if (sa->valid & VFS_SET_MODE) {
		a.flags |= LIBSSH2_SFTP_ATTR_PERMISSIONS;
		a.permissions = sa->mode & 07777;
	}
	if (sa->valid & (VFS_SET_UID | VFS_SET_GID)) {
		/* v3 sets owner and group together */
		a.flags |= LIBSSH2_SFTP_ATTR_UIDGID;
		a.uid = sa->valid & VFS_SET_UID ? sa->uid : cur->st_uid;
		a.gid = sa->valid & VFS_SET_GID ? sa->gid : cur->st_gid;
	}
	if (sa->valid & VFS_SET_SIZE) {
		a.flags |= LIBSSH2_SFTP_ATTR_SIZE;
		a.filesize = (libssh2_uint64_t)sa->size;
	}
	if (sa->valid & (VFS_SET_ATIME | VFS_SET_MTIME | VFS_SET_ATIME_NOW |
			 VFS_SET_MTIME_NOW)) {
		/* ... and both times, in whole seconds */
		a.flags |= LIBSSH2_SFTP_ATTR_ACMODTIME;
		a.atime = cur->st_atim.tv_sec;
		a.mtime = cur->st_mtim.tv_sec;
		if (sa->valid & VFS_SET_ATIME_NOW)
			a.atime = now;
		else if (sa->valid & VFS_SET_ATIME)
			a.atime = sftp_time_clamp(sa->atime.tv_sec);
		if (sa->valid & VFS_SET_MTIME_NOW)
			a.mtime = now;
		else if (sa->valid & VFS_SET_MTIME)
			a.mtime = sftp_time_clamp(sa->mtime.tv_sec);
	}
	if (!a.flags)
		return 0;
	if (f)
		rc = libssh2_sftp_fstat_ex(f->h, &a, 1);
	else
		rc = libssh2_sftp_stat_ex(c->sftp, rpath, strlen(rpath),
					  LIBSSH2_SFTP_SETSTAT, &a);
	return sftp_err(c, rc);
}

/* Does sa change one of a pair SFTP v3 can only set together? */
static bool sftp_setattr_partial(const struct vfs_setattr *sa)
{
	bool uid = sa->valid & VFS_SET_UID, gid = sa->valid & VFS_SET_GID;
	bool at = sa->valid & (VFS_SET_ATIME | VFS_SET_ATIME_NOW);
	bool mt = sa->valid & (VFS_SET_MTIME | VFS_SET_MTIME_NOW);

	return uid != gid || at != mt;
}

/* Would sa leave an object with attributes cur unchanged? */
static bool sftp_setattr_noop(const struct stat *cur,
			      const struct vfs_setattr *sa)
{
	if ((sa->valid & VFS_SET_MODE) &&
	    (sa->mode & 07777) != (cur->st_mode & 07777))
		return false;
	if ((sa->valid & VFS_SET_UID) && sa->uid != cur->st_uid)
		return false;
	if ((sa->valid & VFS_SET_GID) && sa->gid != cur->st_gid)
		return false;
	if ((sa->valid & VFS_SET_SIZE) && sa->size != cur->st_size)
		return false;
	if ((sa->valid & VFS_SET_ATIME) &&
	    sa->atime.tv_sec != cur->st_atim.tv_sec)
		return false;
	if ((sa->valid & VFS_SET_MTIME) &&
	    sa->mtime.tv_sec != cur->st_mtim.tv_sec)
		return false;
	return !(sa->valid & (VFS_SET_ATIME_NOW | VFS_SET_MTIME_NOW));
}

/* Check out the connection f's handle lives on, reopening it by path on
 * any connection if its session is gone.  Called with f->lock held. */
static int sftp_file_begin(struct sftp_mount *sm, struct sftp_file *f,
			   struct sftp_conn **out)
{
	LIBSSH2_SFTP_HANDLE *h;
	struct sftp_conn *c;
	int rc;

	if (f->idx >= 0) {
		rc = sftp_checkout(sm, f->idx, f->gen, out);
		if (rc != -ESTALE)
			return rc;
		/* the handle died with its session */
		sftp_pool_count_file(sm, f->idx, -1);
		f->idx = -1;
		f->h = NULL;
	}
	if (__atomic_load_n(&f->moved, __ATOMIC_RELAXED))
		/* renamed or removed through this mount since it was
		 * opened: its old name may belong to another file now */
		return -ESTALE;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		return rc;
	h = libssh2_sftp_open_ex(c->sftp, f->rpath, strlen(f->rpath), f->fxf, 0,
				 LIBSSH2_SFTP_OPENFILE);
	if (!h) {
		rc = sftp_err(c, libssh2_session_last_errno(c->ssh));
		sftp_checkin(sm, c);
		log_warn_ratelimited(
			&sm->rl, "%s: cannot reopen %s after reconnecting: %s",
			sm->cfg.display, f->path, strerror(-rc));
		return rc == -ENOENT ? -ESTALE : rc;
	}
	f->h = h;
	f->idx = c->idx;
	f->gen = c->gen;
	f->need_seek = true;
	sftp_pool_count_file(sm, f->idx, +1);
	log_debug("%s: reopened %s on connection %d", sm->cfg.display, f->path,
		  f->idx);
	*out = c;
	return 0;
}

static int sftp_setattr(struct vfs_mount *m, const char *path,
			struct vfs_file *vf, const struct vfs_setattr *sa,
			struct stat *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_file *f = vf ? sftp_file_of(vf) : NULL;
	LIBSSH2_SFTP_ATTRIBUTES a;
	struct sftp_conn *c;
	struct stat cur;
	char *rpath;
	int rc;

	/* queued writes land before the change, as they were issued */
	if (path)
		sftp_wb_drain_path(sm->wb, path);
	if (f)
		sftp_wb_drain(sm->wb, f);
	if (f) {
		pthread_mutex_lock(&f->lock);
		f->ra_len = 0;
		rc = sftp_file_begin(sm, f, &c);
		if (rc)
			goto out_unlock;
		/* the current attributes matter only to fill in the half of
		 * owner/group or atime/mtime that v3 must send but the caller
		 * did not give */
		memset(&cur, 0, sizeof(cur));
		rc = 0;
		if (sftp_setattr_partial(sa)) {
			rc = sftp_err(c, libssh2_sftp_fstat_ex(f->h, &a, 0));
			if (!rc)
				sftp_attr_to_stat(&a, f->path, &cur);
		}
		if (!rc) {
			rc = sftp_setstat_conn(c, f, NULL, &cur, sa);
			if (rc && (sa->valid & VFS_SET_SIZE))
				rc = sftp_explain_size(
					sm, c, f->rpath, (uint64_t)cur.st_size,
					(uint64_t)sa->size, 0, rc);
			rc = sftp_explain_rofs(sm, c, f->rpath, rc);
		}
		if (!rc)
			rc = sftp_err(c, libssh2_sftp_fstat_ex(f->h, &a, 0));
		if (!rc)
			sftp_attr_to_stat(&a, f->path, st);
		sftp_checkin(sm, c);
	out_unlock:
		pthread_mutex_unlock(&f->lock);
		/*
		 * Cached under the file's own name, and only while that
		 * still names it: the caller's path may be stale, or NULL
		 * for a file unlinked while open.
		 */
		if (path)
			remote_cache_invalidate(sm->cache, path);
		remote_cache_invalidate(sm->cache, f->path);
		if (!rc && !__atomic_load_n(&f->moved, __ATOMIC_RELAXED))
			remote_cache_put_attr(sm->cache, f->path, st,
					      remote_cache_gen(sm->cache));
		return rc;
	}

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		goto out_free;
	rc = sftp_lstat_conn(c, rpath, path, &cur);
	if (!rc && S_ISLNK(cur.st_mode)) {
		/* SETSTAT would change the link's target instead: only
		 * what changes nothing (cp -a, tar: lchown to the owner the
		 * new link already has) succeeds */
		*st = cur;
		if (!sftp_setattr_noop(&cur, sa))
			rc = -EOPNOTSUPP;
		sftp_checkin(sm, c);
		goto out_free;
	}
	if (!rc) {
		rc = sftp_setstat_conn(c, NULL, rpath, &cur, sa);
		if (rc && (sa->valid & VFS_SET_SIZE))
			rc = sftp_explain_size(sm, c, rpath,
					       (uint64_t)cur.st_size,
					       (uint64_t)sa->size, 0, rc);
		rc = sftp_explain_rofs(sm, c, rpath, rc);
	}
	if (!rc)
		rc = sftp_lstat_conn(c, rpath, path, st);
	sftp_checkin(sm, c);
	remote_cache_invalidate(sm->cache, path);
	if (!rc)
		remote_cache_put_attr(sm->cache, path, st,
				      remote_cache_gen(sm->cache));
out_free:
	free(rpath);
	return rc;
}

static ssize_t sftp_readlink(struct vfs_mount *m, const char *path, char *buf,
			     size_t size)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn *c;
	char target[PATH_MAX + 1], *rpath;
	int rc, tries = 0;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	do {
		rc = sftp_checkout(sm, -1, 0, &c);
		if (rc)
			break;
		rc = libssh2_sftp_symlink_ex(c->sftp, rpath, strlen(rpath),
					     target, sizeof(target),
					     LIBSSH2_SFTP_READLINK);
		if (rc < 0)
			/* no usable status (sftp_err_nostatus): a path that
			 * exists is not a link, one that does not is ENOENT */
			rc = sftp_explain(c, rpath, sftp_err_nostatus(c, rc),
					  -EINVAL, 0, 0);
		if (rc == -EIO && !c->broken)
			rc = -ENOENT;
	} while (sftp_checkin_retry(sm, c, rc < 0 ? rc : 0, &tries));
	free(rpath);
	if (rc < 0)
		return rc;
	memcpy(buf, target, (size_t)rc < size ? (size_t)rc : size);
	return rc;
}

/*
 * Does the object we just created (attributes *st) have to be given to
 * the caller?  SFTP creates everything as the login user.  When that is
 * root on the server (the new object is owned by uid 0) it can give the
 * object away, and does, as a local file system makes new objects the
 * caller's: owner the caller, group the caller's or, under a setgid
 * directory, the directory's (which the server's own kernel already
 * chose).  Any other login cannot chown, so its objects stay its own (as
 * with sshfs; vfsd(8) says so).  Returns 1 with the group in *gid, 0, or
 * -errno when the parent could not be read.
 */
static int sftp_owner_due(struct sftp_mount *sm, struct sftp_conn *c,
			  const char *rpath, const char *path,
			  const struct stat *st, const struct vfs_cred *cred,
			  gid_t *gid)
{
	char *ppath, *prpath;
	struct stat dir;
	int rc;

	if (!cred || st->st_uid != 0 ||
	    (cred->uid == st->st_uid && cred->gid == st->st_gid))
		return 0;
	*gid = cred->gid;
	if (cred->gid != st->st_gid) {
		ppath = vfs_path_parent(path);
		prpath = vfs_path_parent(rpath);
		rc = ppath && prpath ? 0 : -ENOMEM;
		if (!rc && !remote_cache_get_attr(sm->cache, ppath, &dir))
			rc = sftp_lstat_conn(c, prpath, ppath, &dir);
		free(ppath);
		free(prpath);
		if (rc)
			return rc;
		if (dir.st_mode & S_ISGID)
			*gid = st->st_gid;
	}
	return cred->uid != st->st_uid || *gid != st->st_gid;
}

/*
 * Finish an object we just created (attributes in *st, updated): the
 * caller's owner (sftp_owner_due), then the mode asked for, which the
 * server's umask may have narrowed (the router applied the caller's
 * already).  Through handle h, else by path.  0, or the chown's error:
 * the caller then removes the object, so that nobody sees an object the
 * caller was told does not exist, or one with the wrong owner.  A failed
 * chmod leaves the mode the server chose (reported in *st).
 */
static int sftp_finish_new(struct sftp_mount *sm, struct sftp_conn *c,
			   LIBSSH2_SFTP_HANDLE *h, const char *rpath,
			   const char *path, mode_t mode,
			   const struct vfs_cred *cred, struct stat *st)
{
	LIBSSH2_SFTP_ATTRIBUTES a = {0};
	mode_t want = mode & 07777;
	gid_t gid;
	int rc;

	if (S_ISDIR(st->st_mode))
		/* mkdir(2) takes set-group-ID from a setgid parent, which
		 * the server did, never from the mode */
		want = (mode & 01777) | (st->st_mode & S_ISGID);
	rc = sftp_owner_due(sm, c, rpath, path, st, cred, &gid);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		a.flags = LIBSSH2_SFTP_ATTR_UIDGID;
		a.uid = cred->uid;
		a.gid = gid;
		rc = h ? libssh2_sftp_fstat_ex(h, &a, 1)
		       : libssh2_sftp_stat_ex(c->sftp, rpath, strlen(rpath),
					      LIBSSH2_SFTP_SETSTAT, &a);
		rc = sftp_err(c, rc);
		if (rc) {
			log_warn_ratelimited(
				&sm->rl,
				"%s: cannot give new %s to uid %u gid %u: %s",
				sm->cfg.display, path, (unsigned)cred->uid,
				(unsigned)gid, strerror(-rc));
			return rc;
		}
		st->st_uid = cred->uid;
		st->st_gid = gid;
		/* chown(2) clears set-user-ID and set-group-ID of anything
		 * but a directory: set them again below */
		if (!S_ISDIR(st->st_mode))
			st->st_mode &= ~(mode_t)(S_ISUID | S_ISGID);
	}
	if ((st->st_mode & 07777) != want) {
		a.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
		a.permissions = want;
		rc = h ? libssh2_sftp_fstat_ex(h, &a, 1)
		       : libssh2_sftp_stat_ex(c->sftp, rpath, strlen(rpath),
					      LIBSSH2_SFTP_SETSTAT, &a);
		if (sftp_err(c, rc) == 0)
			st->st_mode = (st->st_mode & S_IFMT) | want;
	}
	return 0;
}

static int sftp_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
		      const struct vfs_cred *cred, struct stat *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn *c;
	char *rpath;
	int rc;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		goto out;
	rc = sftp_err(c, libssh2_sftp_mkdir_ex(c->sftp, rpath, strlen(rpath),
					       mode & 07777));
	if (rc)
		rc = sftp_explain_rofs(
			sm, c, rpath,
			sftp_explain(c, rpath, rc, -EEXIST, 0, 0));
	if (!rc) {
		/* by path: SFTP has no handle of a directory that SETSTAT
		 * could use */
		rc = sftp_lstat_conn(c, rpath, path, st);
		if (!rc)
			rc = sftp_finish_new(sm, c, NULL, rpath, path, mode,
					     cred, st);
		if (rc && !c->broken)
			libssh2_sftp_rmdir_ex(c->sftp, rpath, strlen(rpath));
	}
	sftp_checkin(sm, c);
	remote_cache_invalidate_name(sm->cache, path);
	if (!rc)
		remote_cache_put_attr(sm->cache, path, st,
				      remote_cache_gen(sm->cache));
out:
	free(rpath);
	return rc;
}

static int sftp_symlink(struct vfs_mount *m, const char *target,
			const char *path, const struct vfs_cred *cred,
			struct stat *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn *c;
	char *rpath;
	int rc;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		goto out;
	/* libssh2 1.10 cannot report whether SYMLINK failed (see the top
	 * of the file): check before and look after */
	rc = sftp_lstat_conn(c, rpath, path, st);
	if (rc != -ENOENT) {
		rc = rc ? rc : -EEXIST;
		goto out_checkin;
	}
	/* OpenSSH reads SSH_FXP_SYMLINK's two paths in the opposite order
	 * to the draft; libssh2 sends its first argument first, so the
	 * target goes first for OpenSSH to create link `rpath` */
	rc = sftp_err_nostatus(
		c,
		libssh2_sftp_symlink_ex(c->sftp, target, strlen(target), rpath,
					strlen(rpath), LIBSSH2_SFTP_SYMLINK));
	if (rc && c->broken)
		goto out_checkin;
	/* The link stays the login user's: SETSTAT follows symlinks (and
	 * lsetstat@openssh.com cannot be sent), so a chown would change the
	 * target, which may be anybody's file on the server. */
	rc = sftp_lstat_conn(c, rpath, path, st);
	if (rc == 0 && !S_ISLNK(st->st_mode))
		rc = -EEXIST; /* someone else made something else there */
	else if (rc == -ENOENT)
		/* not created; the kernel looked the parent up just before,
		 * so the server refused: a read-only file system, or most
		 * likely permissions */
		rc = sftp_explain_rofs(sm, c, rpath, -EIO) == -EROFS ? -EROFS
								     : -EACCES;
out_checkin:
	sftp_checkin(sm, c);
	remote_cache_invalidate_name(sm->cache, path);
	if (!rc)
		remote_cache_put_attr(sm->cache, path, st,
				      remote_cache_gen(sm->cache));
out:
	free(rpath);
	return rc;
}

static int sftp_unlink(struct vfs_mount *m, const char *path)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn *c;
	char *rpath;
	int rc;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		goto out;
	rc = sftp_err(c, libssh2_sftp_unlink_ex(c->sftp, rpath, strlen(rpath)));
	if (rc)
		rc = sftp_explain_rofs(
			sm, c, rpath,
			sftp_explain(c, rpath, rc, 0, -EISDIR, 0));
	sftp_checkin(sm, c);
	if (!rc)
		sftp_files_moved(sm, path);
	remote_cache_invalidate_name(sm->cache, path);
out:
	free(rpath);
	return rc;
}

static int sftp_rmdir(struct vfs_mount *m, const char *path)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn *c;
	char *rpath;
	int rc;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		goto out;
	rc = sftp_err(c, libssh2_sftp_rmdir_ex(c->sftp, rpath, strlen(rpath)));
	if (rc)
		/* read-only first: the directory is still there then, which
		 * would make it look non-empty */
		rc = sftp_explain(c, rpath, sftp_explain_rofs(sm, c, rpath, rc),
				  0, -ENOTEMPTY, -ENOTDIR);
	sftp_checkin(sm, c);
	remote_cache_invalidate_name(sm->cache, path);
	remote_cache_invalidate_dir(sm->cache, path);
out:
	free(rpath);
	return rc;
}

static int sftp_rename_raw(struct sftp_conn *c, const char *from,
			   const char *to)
{
	return sftp_err(c, libssh2_sftp_rename_ex(c->sftp, from, strlen(from),
						  to, strlen(to), 0));
}

/*
 * Replace `to` by `from` without ever losing `to`'s content: move the
 * target aside under a hidden name in its directory, move the source in,
 * then delete the hidden copy; each failure undoes the steps before it.
 * Not atomic: for a moment `to` does not exist.
 */
static int sftp_rename_replace(struct sftp_mount *sm, struct sftp_conn *c,
			       const char *rfrom, const char *rto,
			       const struct stat *sfrom, const struct stat *sto)
{
	static unsigned long seq;
	const char *slash = strrchr(rto, '/');
	char *tmp;
	int rc, undo;

	if (S_ISDIR(sto->st_mode) && !S_ISDIR(sfrom->st_mode))
		return -EISDIR;
	if (!S_ISDIR(sto->st_mode) && S_ISDIR(sfrom->st_mode))
		return -ENOTDIR;
	if (asprintf(&tmp, "%.*s/.vfsd-rename-%ld-%lu", (int)(slash - rto), rto,
		     (long)getpid(),
		     __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED)) < 0)
		return -ENOMEM;
	rc = sftp_rename_raw(c, rto, tmp);
	if (rc)
		goto out;
	rc = sftp_rename_raw(c, rfrom, rto);
	if (rc) {
		undo = sftp_rename_raw(c, tmp, rto);
		goto undo_check;
	}
	if (S_ISDIR(sto->st_mode)) {
		rc = sftp_err(c,
			      libssh2_sftp_rmdir_ex(c->sftp, tmp, strlen(tmp)));
		if (rc) {
			/* POSIX: only an empty directory may be replaced */
			if (rc == -EIO && !c->broken)
				rc = -ENOTEMPTY;
			undo = sftp_rename_raw(c, rto, rfrom);
			if (!undo)
				undo = sftp_rename_raw(c, tmp, rto);
			goto undo_check;
		}
	} else if (sftp_err(c, libssh2_sftp_unlink_ex(c->sftp, tmp,
						      strlen(tmp)))) {
		/* the rename happened; only a hidden copy is left over */
		log_warn_ratelimited(&sm->rl, "%s: rename left %s behind",
				     sm->cfg.display, tmp);
	}
	goto out;
undo_check:
	if (undo)
		log_err("%s: rename failed and could not be undone: the old %s "
			"is now %s",
			sm->cfg.display, rto, tmp);
out:
	free(tmp);
	return rc;
}

static int sftp_rename(struct vfs_mount *m, const char *from, const char *to,
		       unsigned flags)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct stat sfrom, sto;
	struct sftp_conn *c;
	char *rfrom, *rto = NULL;
	int rc;

	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE cannot be done over SFTP */
	rc = sftp_rpath(sm, from, &rfrom);
	if (!rc)
		rc = sftp_rpath(sm, to, &rto);
	if (rc)
		goto out;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		goto out;
	rc = sftp_lstat_conn(c, rfrom, from, &sfrom);
	if (rc)
		goto out_checkin;
	if (strcmp(from, to) == 0)
		goto out_checkin;
	if (flags & RENAME_NOREPLACE) {
		/* OpenSSH's rename refuses to replace by itself; the check
		 * covers servers whose rename would (still racy there) */
		rc = sftp_lstat_conn(c, rto, to, &sto);
		if (rc != -ENOENT) {
			rc = rc ? rc : -EEXIST;
			goto out_checkin;
		}
	}
	rc = sftp_rename_raw(c, rfrom, rto);
	if (rc && !c->broken && !(flags & RENAME_NOREPLACE) &&
	    sftp_lstat_conn(c, rto, to, &sto) == 0)
		rc = sftp_rename_replace(sm, c, rfrom, rto, &sfrom, &sto);
	rc = sftp_explain_rofs(sm, c, rto, rc);
out_checkin:
	sftp_checkin(sm, c);
	if (!rc && strcmp(from, to) != 0) {
		sftp_files_moved(sm, from);
		sftp_files_moved(sm, to); /* what it replaced */
	}
	remote_cache_invalidate_name(sm->cache, from);
	remote_cache_invalidate_name(sm->cache, to);
	if (!rc && S_ISDIR(sfrom.st_mode))
		/* every cached path below `from` is now wrong */
		remote_cache_clear(sm->cache);
out:
	free(rfrom);
	free(rto);
	return rc;
}

/* ---- Directories ---------------------------------------------------- */

static int sftp_list(struct sftp_mount *sm, struct sftp_conn *c,
		     const char *path, const char *rpath,
		     struct remote_listing *ls)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	LIBSSH2_SFTP_HANDLE *dh;
	char name[NAME_MAX * 4 + 1];
	unsigned long gen = remote_cache_gen(sm->cache);
	int rc, ret = 0;

	dh = libssh2_sftp_open_ex(c->sftp, rpath, strlen(rpath), 0, 0,
				  LIBSSH2_SFTP_OPENDIR);
	if (!dh)
		return sftp_err(c, libssh2_session_last_errno(c->ssh));
	/* libssh2 fetches entries a batch (~100 from OpenSSH) at a time */
	while ((rc = libssh2_sftp_readdir_ex(dh, name, sizeof(name), NULL, 0,
					     &a)) > 0) {
		unsigned flags = 0;
		struct stat st;
		char *child;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		/* the entry's mount-relative path: st_ino and cache key */
		if (asprintf(&child, "%s/%s", strcmp(path, "/") ? path : "",
			     name) < 0) {
			ret = -ENOMEM;
			break;
		}
		sftp_attr_to_stat(&a, child, &st);
		if (sftp_attr_full(&a)) {
			flags = VFS_DIRENT_FULL;
			remote_cache_put_attr(sm->cache, child, &st, gen);
		}
		free(child);
		ret = vfs_dirbuf_add(&ls->db, name, &st, flags);
		if (ret < 0)
			break;
	}
	if (!ret && rc < 0)
		ret = sftp_err(c, rc);
	if (!c->broken)
		libssh2_sftp_close_handle(dh);
	return ret;
}

static int sftp_opendir(struct vfs_mount *m, const char *path,
			struct vfs_dir **out)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct remote_listing *ls;
	struct sftp_conn *c;
	unsigned long gen;
	struct vfs_dir *d;
	char *rpath;
	int rc, tries = 0;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	/* lease records are read fresh (backends/callctx.h) */
	ls = vfs_callctx.fresh ? NULL
			       : remote_cache_get_listing(sm->cache, path);
	if (ls)
		goto done;
	gen = remote_cache_gen(sm->cache);
	rc = sftp_rpath(sm, path, &rpath);
	if (rc) {
		free(d);
		return rc;
	}
	do {
		ls = remote_listing_new();
		if (!ls) {
			rc = -ENOMEM;
			break;
		}
		rc = sftp_checkout(sm, -1, 0, &c);
		if (rc) {
			remote_listing_put(sm->cache, ls);
			break;
		}
		rc = sftp_list(sm, c, path, rpath, ls);
		if (rc) {
			remote_listing_put(sm->cache, ls);
			ls = NULL;
		}
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	free(rpath);
	if (rc) {
		free(d);
		return rc;
	}
	remote_cache_put_listing(sm->cache, path, ls, gen);
done:
	d->ls = ls;
	*out = d;
	return 0;
}

static int sftp_readdir(struct vfs_mount *m, struct vfs_dir *d, off_t off,
			vfs_fill_fn fill, void *ctx)
{
	return vfs_dirbuf_fill(&d->ls->db, off, fill, ctx);
}

static void sftp_releasedir(struct vfs_mount *m, struct vfs_dir *d)
{
	remote_listing_put(sftp_mount_of(m)->cache, d->ls);
	free(d);
}

/* ---- Open files ----------------------------------------------------- */

/* A new handle for path in *out: 0 or -errno (sftp_rpath). */
static int sftp_file_new(struct sftp_mount *sm, const char *path, int flags,
			 struct sftp_file **out)
{
	struct sftp_file *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	rc = sftp_rpath(sm, path, &f->rpath);
	f->path = strdup(path);
	f->xh = calloc((size_t)sm->pool.n, sizeof(*f->xh));
	if (!rc && (!f->path || !f->xh))
		rc = -ENOMEM;
	if (rc) {
		free(f->xh);
		free(f->path);
		free(f->rpath);
		free(f);
		return rc;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->xlock, NULL);
	f->base.mount = &sm->base;
	f->base.flags = flags & ~(O_CREAT | O_EXCL | O_TRUNC);
	f->base.host_fd = -1;
	/* a reopen after reconnecting must not create or truncate again */
	f->fxf = sftp_fxf(flags);
	f->idx = -1;
	pthread_mutex_lock(&sm->files_lock);
	f->next = sm->files;
	if (f->next)
		f->next->pprev = &f->next;
	f->pprev = &sm->files;
	sm->files = f;
	pthread_mutex_unlock(&sm->files_lock);
	*out = f;
	return 0;
}

/* Files open at `path` or below it no longer have it for a name. */
static void sftp_files_moved(struct sftp_mount *sm, const char *path)
{
	size_t len = strlen(path);

	pthread_mutex_lock(&sm->files_lock);
	for (struct sftp_file *f = sm->files; f; f = f->next)
		if (strncmp(f->path, path, len) == 0 &&
		    (f->path[len] == '\0' || f->path[len] == '/'))
			__atomic_store_n(&f->moved, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&sm->files_lock);
}

static void sftp_file_free(struct sftp_file *f)
{
	struct sftp_mount *sm = sftp_mount_of(f->base.mount);

	pthread_mutex_lock(&sm->files_lock);
	*f->pprev = f->next;
	if (f->next)
		f->next->pprev = f->pprev;
	pthread_mutex_unlock(&sm->files_lock);
	if (f->ra) {
		free(f->ra);
		__atomic_sub_fetch(&sftp_mount_of(f->base.mount)->ra_buffers, 1,
				   __ATOMIC_RELAXED);
	}
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->xlock);
	free(f->xh);
	free(f->path);
	free(f->rpath);
	free(f);
}

static void sftp_file_attach(struct sftp_mount *sm, struct sftp_file *f,
			     struct sftp_conn *c, LIBSSH2_SFTP_HANDLE *h)
{
	f->h = h;
	f->idx = c->idx;
	f->gen = c->gen;
	sftp_pool_count_file(sm, c->idx, +1);
}

/*
 * Open rpath and lstat it in one round trip: in non-blocking mode both
 * requests go out before either answer is awaited, then both answers are
 * collected in blocking mode (libssh2 keeps each call's progress apart and
 * matches answers by request id).  Returns the open's result; *hp is the
 * handle or NULL, *arc the lstat's result (meaningful after a successful
 * open; -EAGAIN when it was not sent and the caller must fstat).
 */
static int sftp_open_lstat(struct sftp_conn *c, const char *rpath,
			   unsigned long fxf, long mode,
			   LIBSSH2_SFTP_HANDLE **hp, LIBSSH2_SFTP_ATTRIBUTES *a,
			   int *arc)
{
	size_t len = strlen(rpath);
	LIBSSH2_SFTP_HANDLE *h;
	bool open_pending, stat_pending = false;
	int open_err = 0, src = -EAGAIN;

	libssh2_session_set_blocking(c->ssh, 0);
	h = libssh2_sftp_open_ex(c->sftp, rpath, len, fxf, mode,
				 LIBSSH2_SFTP_OPENFILE);
	open_pending = !h && libssh2_session_last_errno(c->ssh) ==
				     LIBSSH2_ERROR_EAGAIN;
	if (!h && !open_pending)
		open_err = libssh2_session_last_errno(c->ssh);
	/* send LSTAT only behind a completely sent OPEN */
	if (open_pending && !(libssh2_session_block_directions(c->ssh) &
			      LIBSSH2_SESSION_BLOCK_OUTBOUND)) {
		int r = libssh2_sftp_stat_ex(c->sftp, rpath, len,
					     LIBSSH2_SFTP_LSTAT, a);

		stat_pending = r == LIBSSH2_ERROR_EAGAIN;
		if (!stat_pending)
			src = r ? sftp_err(c, r) : 0;
	}
	libssh2_session_set_blocking(c->ssh, 1);
	if (stat_pending)
		/* first, in case it is half sent */
		src = sftp_err(c, libssh2_sftp_stat_ex(c->sftp, rpath, len,
						       LIBSSH2_SFTP_LSTAT, a));
	if (open_pending && !c->broken) {
		h = libssh2_sftp_open_ex(c->sftp, rpath, len, fxf, mode,
					 LIBSSH2_SFTP_OPENFILE);
		if (!h)
			open_err = libssh2_session_last_errno(c->ssh);
	}
	*hp = h;
	*arc = src;
	if (h)
		return 0;
	return c->broken ? -EIO : sftp_err(c, open_err ? open_err : -EIO);
}

static int sftp_create(struct vfs_mount *m, const char *path, int flags,
		       mode_t mode, const struct vfs_cred *cred,
		       struct vfs_file **out, struct stat *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	LIBSSH2_SFTP_ATTRIBUTES a;
	LIBSSH2_SFTP_HANDLE *h;
	struct sftp_conn *c;
	struct sftp_file *f;
	bool created = true;
	int rc, arc;

	rc = sftp_file_new(sm, path, flags, &f);
	if (rc)
		return rc;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		goto err_free;
	/* Always exclusive first, so that we know whether we created the
	 * file and may fix its mode; fall back for plain O_CREAT. */
	rc = sftp_open_lstat(c, f->rpath,
			     f->fxf | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL |
				     LIBSSH2_FXF_TRUNC,
			     mode & 07777, &h, &a, &arc);
	if (!h) {
		rc = sftp_explain_rofs(sm, c, f->rpath,
				       sftp_explain(c, f->rpath, rc, -EEXIST,
						    -EISDIR, -EEXIST));
		if (rc == -EEXIST && !(flags & O_EXCL)) {
			created = false;
			h = libssh2_sftp_open_ex(
				c->sftp, f->rpath, strlen(f->rpath),
				f->fxf | LIBSSH2_FXF_CREAT |
					(flags & O_TRUNC ? LIBSSH2_FXF_TRUNC
							 : 0),
				mode & 07777, LIBSSH2_SFTP_OPENFILE);
			rc = h ? 0
			       : sftp_explain(
					 c, f->rpath,
					 sftp_err(c, libssh2_session_last_errno(
							     c->ssh)),
					 0, -EISDIR, 0);
			arc = -EAGAIN;
		}
		if (rc)
			goto err_checkin;
	}
	/* lstat answered with the open, unless it could not be sent then */
	rc = arc == -EAGAIN ? sftp_err(c, libssh2_sftp_fstat_ex(h, &a, 0))
			    : arc;
	if (!rc) {
		sftp_attr_to_stat(&a, path, st);
		if (created)
			rc = sftp_finish_new(sm, c, h, f->rpath, path, mode,
					     cred, st);
	}
	if (rc) {
		if (!c->broken)
			libssh2_sftp_close_handle(h);
		if (created && !c->broken)
			libssh2_sftp_unlink_ex(c->sftp, f->rpath,
					       strlen(f->rpath));
		goto err_checkin;
	}
	sftp_file_attach(sm, f, c, h);
	sftp_checkin(sm, c);
	remote_cache_invalidate_name(sm->cache, path);
	remote_cache_put_attr(sm->cache, path, st, remote_cache_gen(sm->cache));
	*out = &f->base;
	return 0;

err_checkin:
	sftp_checkin(sm, c);
	remote_cache_invalidate_name(sm->cache, path);
err_free:
	sftp_file_free(f);
	return rc;
}

static int sftp_open(struct vfs_mount *m, const char *path, int flags,
		     struct vfs_file **out)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	LIBSSH2_SFTP_HANDLE *h = NULL;
	struct sftp_conn *c;
	struct sftp_file *f;
	int rc, tries = 0;

	rc = sftp_file_new(sm, path, flags, &f);
	if (rc)
		return rc;
	/* close-to-open: whatever we remember of this file may be old */
	remote_cache_invalidate(sm->cache, path);
	do {
		rc = sftp_checkout(sm, -1, 0, &c);
		if (rc)
			break;
		h = libssh2_sftp_open_ex(
			c->sftp, f->rpath, strlen(f->rpath),
			f->fxf | (flags & O_TRUNC ? LIBSSH2_FXF_TRUNC : 0), 0,
			LIBSSH2_SFTP_OPENFILE);
		if (h) {
			sftp_file_attach(sm, f, c, h);
			rc = 0;
		} else {
			rc = sftp_err(c, libssh2_session_last_errno(c->ssh));
			rc = sftp_explain(c, f->rpath, rc, 0, -EISDIR, 0);
			if ((flags & (O_ACCMODE | O_TRUNC)) != O_RDONLY)
				rc = sftp_explain_rofs(sm, c, f->rpath, rc);
		}
		/* retrying an open that may have truncated is harmless:
		 * it truncates the same file again */
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	if (rc) {
		sftp_file_free(f);
		return rc;
	}
	*out = &f->base;
	return 0;
}

/*
 * The server refused a write (rc, from its status).  That leaves the
 * session in doubt: libssh2 1.10 then forgets the writes it had queued
 * behind the refused one, also one it had sent only in part (the SSH
 * window was full), so the server may be waiting for the rest of that
 * request and would take our next one for it (a hang until the
 * timeout).  So the session is closed (only this one: the server is
 * fine; other files' handles on it are reopened by path, as after a
 * reconnect) and the errno explained (sftp_explain_size) over another.
 * Called with c checked out; checks it in.  Returns the errno.
 */
static int sftp_write_refused(struct sftp_mount *sm, struct sftp_conn *c,
			      const char *rpath, uint64_t end, size_t need,
			      int rc)
{
	struct sftp_conn *other;

	sftp_checkin_discard(sm, c);
	if (sftp_checkout(sm, -1, 0, &other) == 0) {
		rc = sftp_explain_size(sm, other, rpath, 0, end, need, rc);
		sftp_checkin(sm, other);
	}
	return rc;
}

/* sftp_io_any(): no second handle could be had; use the file's own */
#define SFTP_USE_OWN (-4096 - 1)

/*
 * Check out any idle connection and the file's handle on it, opened by
 * path the first time (a handle of a dead session is forgotten).  Returns
 * 0, -errno if no connection could be had, or SFTP_USE_OWN (nothing
 * checked out) when no handle may or could be opened by path: the file
 * was renamed or removed through this mount since it was opened, or the
 * open failed (a file created read-only is writable only through the
 * handle that created it).
 */
static int sftp_file_any(struct sftp_mount *sm, struct sftp_file *f,
			 struct sftp_conn **out, LIBSSH2_SFTP_HANDLE **hout)
{
	LIBSSH2_SFTP_HANDLE *h = NULL;
	struct sftp_conn *c;
	int rc;

	if (__atomic_load_n(&f->moved, __ATOMIC_RELAXED))
		return SFTP_USE_OWN;
	rc = sftp_checkout(sm, -1, 0, &c);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->xlock);
	if (f->xh[c->idx].h && f->xh[c->idx].gen == c->gen)
		h = f->xh[c->idx].h;
	pthread_mutex_unlock(&f->xlock);
	if (!h) {
		/* no O_APPEND: the kernel's offsets are the truth, and the
		 * pieces of one append may go out on several sessions */
		unsigned long fxf =
			f->fxf &
			~(unsigned long)(LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL |
					 LIBSSH2_FXF_TRUNC |
					 LIBSSH2_FXF_APPEND);

		h = libssh2_sftp_open_ex(c->sftp, f->rpath, strlen(f->rpath),
					 fxf, 0, LIBSSH2_SFTP_OPENFILE);
		if (!h) {
			sftp_err(c, libssh2_session_last_errno(c->ssh));
			sftp_checkin(sm, c);
			return SFTP_USE_OWN;
		}
		pthread_mutex_lock(&f->xlock);
		/* a handle of this slot's dead session was counted already */
		if (!f->xh[c->idx].h)
			sftp_pool_count_file(sm, c->idx, +1);
		f->xh[c->idx].h = h;
		f->xh[c->idx].gen = c->gen;
		pthread_mutex_unlock(&f->xlock);
	}
	*out = c;
	*hout = h;
	return 0;
}

/* Close the extra handles (release). */
static void sftp_file_close_any(struct sftp_mount *sm, struct sftp_file *f)
{
	for (int i = 0; i < sm->pool.n; i++) {
		struct sftp_conn *c;

		if (!f->xh[i].h)
			continue;
		if (sftp_checkout(sm, i, f->xh[i].gen, &c) == 0) {
			sftp_close_deferred(c, f->xh[i].h);
			sftp_checkin(sm, c);
			sftp_pool_count_file(sm, i, -1);
		} else {
			/* gone with its session, or unreachable: it lives
			 * until the session ends */
			sftp_pool_count_file(sm, i, -1);
		}
		f->xh[i].h = NULL;
	}
}

/*
 * The buffer size to hand libssh2_sftp_read() when `want` bytes are still
 * wanted and nothing beyond them will be.  libssh2 1.10 requests four
 * times the buffer it is given ahead of the handle's position: right when
 * streaming through one handle, waste for sftp_io_any()'s reads, which
 * seek (dropping whatever was read ahead) before each request, so that a
 * 4 KiB random read had the server read, encrypt and send 16 KiB.  With a
 * quarter of what is wanted it requests just that; the rest of what the
 * server sent comes from libssh2's own buffer, with no new request, as
 * long as every later call asks for at most a quarter of what is left.
 */
static size_t sftp_no_read_ahead(size_t want)
{
	return want >= 64 ? want / 4 : want;
}

/*
 * One read or write at `off` through any connection, without f->lock.
 * Reads stop short only at end of file.  Returns bytes, -errno, or
 * SFTP_USE_OWN (see sftp_file_any).  A write cut off by a broken
 * connection fails with -EIO; the write-behind caller keeps that on the
 * file.
 */
static ssize_t sftp_io_any(struct sftp_mount *sm, struct sftp_file *f,
			   char *buf, size_t size, off_t off, bool write)
{
	LIBSSH2_SFTP_HANDLE *h = NULL;
	struct sftp_conn *c = NULL;
	size_t total = 0;
	int rc, tries = 0, stalls = 0;

	do {
		rc = sftp_file_any(sm, f, &c, &h);
		if (rc)
			return rc;
		total = 0;
		libssh2_sftp_seek64(h, (libssh2_uint64_t)off);
		while (total < size) {
			ssize_t n;

			if (write && total && vfs_call_expired()) {
				/* as in sftp_write_locked */
				c->broken = true;
				rc = -ETIMEDOUT;
				break;
			}
			n = write ? libssh2_sftp_write(h, buf + total,
						       size - total)
				  : libssh2_sftp_read(
					    h, buf + total,
					    sftp_no_read_ahead(size - total));
			if (n < 0) {
				rc = sftp_err(c, (int)n);
				if (write && !c->broken)
					return sftp_write_refused(
						sm, c, f->rpath,
						(uint64_t)off + size,
						size - total, rc);
				break;
			}
			if (n == 0) {
				if (!write)
					break; /* end of file */
				if (++stalls > 1000) {
					rc = -EIO;
					break;
				}
			}
			total += (size_t)n;
		}
		if (rc && write && c->broken) {
			/* some of it may have arrived: no retry, which could
			 * race later writes; the caller hears of the loss
			 * now (the write-behind caller makes it sticky).
			 * What our kernel still holds is discarded when the
			 * connection closes (sftp_conn_close); a piece the
			 * server already took may still land (see there) */
			sftp_checkin(sm, c);
			return -EIO;
		}
		/* a read whose idle session was found dead goes once more */
	} while (sftp_checkin_retry(sm, c, write ? 0 : rc, &tries));
	if (rc)
		return rc;
	return (ssize_t)total;
}

/* Position libssh2's per-handle stream at off.  Seeking throws away
 * libssh2's read-ahead, so only seek when the stream is elsewhere.
 * Returns whether it had to. */
static bool sftp_position(struct sftp_file *f, off_t off)
{
	if (f->need_seek || libssh2_sftp_tell64(f->h) != (uint64_t)off) {
		libssh2_sftp_seek64(f->h, (libssh2_uint64_t)off);
		f->need_seek = false;
		return true;
	}
	return false;
}

/*
 * Large reads: libssh2 1.10 splits a read into ~30 KB SSH_FXP_READs and
 * keeps up to four times the caller's buffer in flight, continuing from
 * where the last read stopped; that is the pipelining that makes
 * sequential reads fast, as long as reads arrive in order.  Reads until
 * EOF or size; called with f->lock held and c checked out.
 */
static ssize_t sftp_read_conn(struct sftp_file *f, struct sftp_conn *c,
			      char *buf, size_t size, off_t off)
{
	size_t total = 0;
	/* A read that does not continue the stream may be one of many at
	 * random places: no read-ahead for it (the next seek would throw it
	 * away).  Once reads follow each other, libssh2 reads ahead. */
	bool jumped = sftp_position(f, off);

	while (total < size) {
		size_t ask = jumped ? sftp_no_read_ahead(size - total)
				    : size - total;
		ssize_t n = libssh2_sftp_read(f->h, buf + total, ask);

		if (n == 0)
			break;
		if (n < 0) {
			f->need_seek = true;
			return sftp_err(c, (int)n);
		}
		total += n;
	}
	return (ssize_t)total;
}

/* Copy what the read-ahead buffer holds of [off, off+size) to buf;
 * returns the bytes copied (0 when off is outside it). */
static size_t sftp_ra_copy(struct sftp_file *f, char *buf, size_t size,
			   off_t off)
{
	size_t skip, n;

	if (!f->ra_len || off < f->ra_off ||
	    off >= f->ra_off + (off_t)f->ra_len)
		return 0;
	skip = off - f->ra_off;
	n = f->ra_len - skip < size ? f->ra_len - skip : size;
	memcpy(buf, f->ra + skip, n);
	return n;
}

/* Use a read-ahead buffer for f?  Only for the second read in a row that
 * continues the previous one, not for O_DIRECT (no cache of ours). */
static bool sftp_ra_want(struct sftp_mount *sm, struct sftp_file *f,
			 size_t size, off_t off)
{
	if (size >= SFTP_RA_MIN_DIRECT)
		return false;
	if (f->ra)
		return off == f->next_off || f->ra_len == 0;
	if ((f->base.flags & O_DIRECT) || off == 0 || off != f->next_off)
		return false;
	if (__atomic_add_fetch(&sm->ra_buffers, 1, __ATOMIC_RELAXED) >
	    SFTP_RA_MAX) {
		__atomic_sub_fetch(&sm->ra_buffers, 1, __ATOMIC_RELAXED);
		return false;
	}
	f->ra = malloc(SFTP_RA_SIZE);
	if (!f->ra) {
		__atomic_sub_fetch(&sm->ra_buffers, 1, __ATOMIC_RELAXED);
		return false;
	}
	return true;
}

static ssize_t sftp_read(struct vfs_file *vf, void *buf, size_t size, off_t off)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	struct sftp_conn *c;
	ssize_t total, n;
	off_t pos;
	int tries = 0;

	/* what we (through any handle of the file) wrote behind is not
	 * there yet */
	sftp_wb_drain_path(sm->wb, f->path);
	if (vf->flags & O_DIRECT) {
		/* no cache of ours, any idle connection: a guest's parallel
		 * requests run in parallel */
		n = sftp_io_any(sm, f, buf, size, off, false);
		if (n != SFTP_USE_OWN)
			return n;
	}
	pthread_mutex_lock(&f->lock);
	/* FUSE may deliver read-ahead requests out of order: whatever the
	 * buffer holds is served from it */
	total = (ssize_t)sftp_ra_copy(f, buf, size, off);
	if ((size_t)total == size ||
	    (total && f->ra_eof && off + total == f->ra_off + (off_t)f->ra_len))
		goto out;
	pos = off + total;
	do {
		n = sftp_file_begin(sm, f, &c);
		if (n < 0)
			break;
		if (sftp_ra_want(sm, f, size - total, pos)) {
			n = sftp_read_conn(f, c, f->ra, SFTP_RA_SIZE, pos);
			f->ra_len = n > 0 ? (size_t)n : 0;
			f->ra_off = pos;
			f->ra_eof = n >= 0 && (size_t)n < SFTP_RA_SIZE;
			if (n >= 0)
				n = sftp_ra_copy(f, (char *)buf + total,
						 size - total, pos);
		} else {
			n = sftp_read_conn(f, c, (char *)buf + total,
					   size - total, pos);
		}
	} while (sftp_checkin_retry(sm, c, n < 0 ? (int)n : 0, &tries));
	total = n < 0 ? n : total + n;
out:
	if (total > 0)
		f->next_off = off + total;
	pthread_mutex_unlock(&f->lock);
	return total;
}

/*
 * libssh2 1.10 sends the whole buffer as pipelined ~30 KB writes and
 * returns as each is acknowledged in order; the loop ends when the
 * server has acknowledged everything, so no write is reported done that
 * the server has not accepted.  Called with f->lock held.
 */
static int sftp_write_locked(struct sftp_mount *sm, struct sftp_file *f,
			     const char *buf, size_t size, off_t off)
{
	struct sftp_conn *c;
	size_t total = 0;
	bool refused = false;
	int rc, stalls = 0;

	rc = sftp_file_begin(sm, f, &c);
	if (rc)
		return rc;
	f->ra_len = 0;
	sftp_position(f, off);
	while (total < size) {
		ssize_t n;

		if (total && vfs_call_expired()) {
			/* a lease's deadline passed mid-write: what is left
			 * must never arrive, so the connection goes */
			c->broken = true;
			rc = -ETIMEDOUT;
			break;
		}
		n = libssh2_sftp_write(f->h, buf + total, size - total);
		if (n < 0) {
			rc = sftp_err(c, (int)n);
			refused = !c->broken;
			break;
		}
		if (n == 0 && ++stalls > 1000) {
			rc = -EIO;
			break;
		}
		total += n;
	}
	if (rc) {
		f->need_seek = true;
		/* some of this data may not have arrived: this call says so,
		 * and the next write may go again on another connection
		 * (sftp_conn_close says what of this one may still land).
		 * Only write-behind, whose caller was answered long ago,
		 * keeps the error for the file's next write, fsync or close. */
		if (c->broken)
			rc = -EIO;
	}
	if (refused)
		return sftp_write_refused(sm, c, f->rpath, (uint64_t)off + size,
					  size - total, rc);
	sftp_checkin(sm, c);
	return rc;
}

/* The writer threads' half of write-behind (wb.c): the caller was
 * answered long ago, so any failure is left for its next write, flush or
 * fsync. */
static void sftp_write_behind(void *file, const char *buf, size_t size,
			      off_t off)
{
	struct sftp_file *f = file;
	struct sftp_mount *sm = sftp_mount_of(f->base.mount);
	ssize_t n;
	int err;

	/* after one loss the rest of the queue is not sent: the file's
	 * content is in doubt until the caller hears of it */
	pthread_mutex_lock(&f->lock);
	err = f->write_err;
	pthread_mutex_unlock(&f->lock);
	if (err)
		return;
	/* any connection: the two writers' pieces go out in parallel */
	n = sftp_io_any(sm, f, (char *)buf, size, off, true);
	if (n == SFTP_USE_OWN) {
		/* no second handle for this file: its own still writes */
		pthread_mutex_lock(&f->lock);
		n = sftp_write_locked(sm, f, buf, size, off);
		pthread_mutex_unlock(&f->lock);
	}
	if (n < 0) {
		pthread_mutex_lock(&f->lock);
		if (!f->write_err)
			f->write_err = (int)n;
		pthread_mutex_unlock(&f->lock);
	}
	remote_cache_invalidate(sm->cache, f->path);
}

static ssize_t sftp_write(struct vfs_file *vf, const void *buf, size_t size,
			  off_t off)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	/* appends go through the file's own handle, in order: the server
	 * puts each at its end of file, whatever offset we send */
	bool append = vf->flags & O_APPEND;
	bool direct = (vf->flags & O_DIRECT) && !append;
	bool behind = sm->wb && !direct && !append && !vf->write_through &&
		      !(vf->flags & (O_SYNC | O_DSYNC));
	int rc;

	if (!behind)
		/* synchronous: nothing of ours, through any handle of the
		 * file, may still be on its way to land after this */
		sftp_wb_drain_path(sm->wb, f->path);
	pthread_mutex_lock(&f->lock);
	/* a lost write fails every write until close or fsync reports it */
	rc = f->write_err;
	if (!rc && !behind && !direct) {
		rc = sftp_write_locked(sm, f, buf, size, off);
	} else if (!rc) {
		/* written through another handle: what libssh2 read ahead
		 * on this one may be older */
		f->ra_len = 0;
		f->need_seek = true;
	}
	pthread_mutex_unlock(&f->lock);
	if (!rc && behind) {
		rc = sftp_wb_write(sm->wb, f, f->path, buf, size, off);
	} else if (!rc && direct) {
		/* O_DIRECT (QEMU's cache=none): any idle connection, so that
		 * a guest's parallel requests run in parallel */
		ssize_t n = sftp_io_any(sm, f, (char *)buf, size, off, true);

		if (n == SFTP_USE_OWN) {
			/* no second handle for this file: its own */
			pthread_mutex_lock(&f->lock);
			n = sftp_write_locked(sm, f, buf, size, off);
			pthread_mutex_unlock(&f->lock);
		}
		rc = n < 0 ? (int)n : 0;
	}
	remote_cache_invalidate(sm->cache, f->path);
	return rc ? rc : (ssize_t)size;
}

static int sftp_fgetattr(struct vfs_file *vf, struct stat *st)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	LIBSSH2_SFTP_ATTRIBUTES a;
	struct sftp_conn *c;
	unsigned long gen;
	int rc, tries = 0;

	/* every handle's queued writes: the size must include them */
	sftp_wb_drain_path(sm->wb, f->path);
	gen = remote_cache_gen(sm->cache);
	pthread_mutex_lock(&f->lock);
	do {
		rc = sftp_file_begin(sm, f, &c);
		if (rc)
			break;
		rc = sftp_err(c, libssh2_sftp_fstat_ex(f->h, &a, 0));
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	pthread_mutex_unlock(&f->lock);
	if (rc)
		return rc;
	sftp_attr_to_stat(&a, f->path, st);
	remote_cache_put_attr(sm->cache, f->path, st, gen);
	return 0;
}

/* close(2): the queued writes go out first, and their errors surface
 * here. */
static int sftp_flush(struct vfs_file *vf)
{
	struct sftp_file *f = sftp_file_of(vf);
	int rc;

	sftp_wb_drain(sftp_mount_of(vf->mount)->wb, f);
	pthread_mutex_lock(&f->lock);
	rc = f->write_err;
	f->write_err = 0;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int sftp_fsync(struct vfs_file *vf, bool datasync)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	struct sftp_conn *c;
	int rc;

	sftp_wb_drain(sm->wb, f);
	pthread_mutex_lock(&f->lock);
	if (f->write_err) {
		rc = f->write_err;
		f->write_err = 0;
		goto out;
	}
	if (!sm->feat.fsync) {
		rc = -EOPNOTSUPP;
		goto out;
	}
	rc = sftp_file_begin(sm, f, &c);
	if (rc)
		goto out;
	rc = libssh2_sftp_fsync(f->h);
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL &&
	    libssh2_sftp_last_error(c->sftp) == LIBSSH2_FX_OP_UNSUPPORTED)
		sm->feat.fsync = false;
	rc = sftp_err(c, rc);
	sftp_checkin(sm, c);
out:
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int sftp_release(struct vfs_file *vf)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	struct sftp_conn *c;
	int rc = 0;

	sftp_wb_drain(sm->wb, f);
	sftp_file_close_any(sm, f);
	pthread_mutex_lock(&f->lock);
	if (f->idx >= 0) {
		rc = sftp_checkout(sm, f->idx, f->gen, &c);
		if (rc == 0) {
			rc = sftp_close_deferred(c, f->h);
			sftp_checkin(sm, c);
		} else if (rc == -ESTALE) {
			/* the handle went with its session */
			rc = 0;
		}
		/* on other errors the server-side handle lives until its
		 * session ends; libssh2's memory for it is in that session's
		 * arena */
		sftp_pool_count_file(sm, f->idx, -1);
	}
	if (!rc)
		rc = f->write_err;
	pthread_mutex_unlock(&f->lock);
	remote_cache_invalidate(sm->cache, f->path);
	sftp_file_free(f);
	return rc;
}

static int sftp_clone(struct vfs_mount *m, const char *from, const char *to,
		      struct vfs_error *err)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	char *rfrom, *rto = NULL;
	int rc;

	if (!sm->cfg.remote_exec)
		return -EOPNOTSUPP;
	sftp_wb_drain_path(sm->wb, from);
	rc = sftp_rpath(sm, from, &rfrom);
	if (!rc)
		rc = sftp_rpath(sm, to, &rto);
	if (!rc)
		rc = sftp_exec_clone(sm, rfrom, rto, err);
	else
		vfs_error_set(err, -rc, "%s: %s", sm->cfg.display,
			      strerror(-rc));
	remote_cache_invalidate_name(sm->cache, to);
	free(rfrom);
	free(rto);
	return rc;
}

/* Only regular files can be made over SFTP (as an empty exclusive open). */
static int sftp_mknod(struct vfs_mount *m, const char *path, mode_t mode,
		      dev_t rdev, const struct vfs_cred *cred, struct stat *st)
{
	struct vfs_file *f;
	int rc;

	if (!S_ISREG(mode))
		return -EOPNOTSUPP;
	rc = sftp_create(m, path, O_WRONLY | O_CREAT | O_EXCL, mode, cred, &f,
			 st);
	if (rc)
		return rc;
	return sftp_release(f);
}

const struct vfs_backend_ops sftp_ops = {
	.name = "sftp",
	.opts = sftp_opts,
	.mount = sftp_mount,
	.unmount = sftp_unmount,
	.statfs = sftp_statfs,
	.state = sftp_state,
	.getattr = sftp_getattr,
	.setattr = sftp_setattr,
	.readlink = sftp_readlink,
	.mknod = sftp_mknod,
	.mkdir = sftp_mkdir,
	.symlink = sftp_symlink,
	.unlink = sftp_unlink,
	.rmdir = sftp_rmdir,
	.rename = sftp_rename,
	.opendir = sftp_opendir,
	.readdir = sftp_readdir,
	.releasedir = sftp_releasedir,
	.create = sftp_create,
	.open = sftp_open,
	.read = sftp_read,
	.write = sftp_write,
	.fgetattr = sftp_fgetattr,
	.flush = sftp_flush,
	.fsync = sftp_fsync,
	.release = sftp_release,
	.clone = sftp_clone,
};
