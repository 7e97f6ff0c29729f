/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sftp.c - the SFTP backend (sftp://[user@]host[:port]/path): option
 * spec, mount/unmount, statfs and the ops table.  libssh2 carries SSH;
 * SFTP itself is our own engine (chan.c, req.c, proto.c).  The operations
 * live in attr.c, namespace.c, dir.c, file.c and io.c, sessions in
 * session.c, the pool in pool.c, the cache in backends/remote/cache.c;
 * internal.h has the map and the lock order.
 *
 * Server quirks this backend works around (OpenSSH sftp-server, protocol
 * v3 and the extensions of OpenSSH's PROTOCOL file):
 *  - Most errno values arrive as SSH_FX_FAILURE; where POSIX needs EEXIST,
 *    ENOTEMPTY, EISDIR or ENOTDIR we look at the object to tell them apart.
 *  - Plain rename never replaces an existing target: posix-rename@openssh
 *    .com does, atomically; without it, replacing renames move the target
 *    aside first (see sftp_rename).
 *  - SETSTAT follows symlinks: a symlink's own attributes are set with
 *    lsetstat@openssh.com, or refused without it rather than done to its
 *    target.
 *  - The server applies its own umask to new files and directories; modes
 *    are corrected afterwards when we know we created the object.
 *  - Everything is created as the login user; a root login gives new
 *    objects to the caller afterwards (sftp_owner_due).
 *  - ENAMETOOLONG and EINVAL both arrive as BAD_MESSAGE, EFBIG, ENOSPC and
 *    EROFS as FAILURE: lengths are checked before sending (sftp_rpath),
 *    sizes explained after (sftp_explain_size).
 *  - Times are unsigned 32-bit whole seconds and are clamped to that
 *    range.
 *  - No inode numbers or link counts in v3: st_ino is a hash of the path
 *    and st_nlink is 1.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/remote/opts.h"
#include "backends/sftp/internal.h"
#include "lib/log.h"

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
	REMOTE_OPT_READAHEAD,
	{.name = "cache_names",
	 .type = VFS_OPT_BOOL,
	 .def = "no",
	 .help = "a directory listed within cache_ttl answers for names it "
		 "lacks, without a request (another host's new files show "
		 "within cache_ttl)"},
	{.name = "remote_exec",
	 .type = VFS_OPT_BOOL,
	 .def = "no",
	 .help = "allow running commands on the server (used by the image "
		 "store)"},
	{.name = NULL},
};

static pthread_once_t sftp_init_once = PTHREAD_ONCE_INIT;

static void sftp_global_init(void)
{
	libssh2_init(0);
}

/* ---- Helpers -------------------------------------------------------- */

/*
 * The remote path of a mount-relative one, in *out (a new string): 0,
 * -ENOMEM, or -ENAMETOOLONG for what the server's own system calls would
 * refuse: a component longer than its name_max, or a whole remote path
 * of PATH_MAX bytes or more (sftp-server hands paths whole to its system
 * calls).  Checked here because OpenSSH reports ENAMETOOLONG as
 * SSH_FX_BAD_MESSAGE, which also stands for EINVAL.
 */
int sftp_rpath(struct sftp_mount *sm, const char *path, char **out)
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

/*
 * Check c back in after an idempotent call; true when the call should run
 * once more.  A call that failed because its session broke (a server
 * restart, say) is worth one more try on a fresh session; a timeout is
 * not, since the server may be hung and the caller has waited enough.
 */
bool sftp_checkin_retry(struct sftp_mount *sm, struct sftp_conn *c, int rc,
			int *tries)
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
	cfg->cache_names = vfs_opts_get_bool(opts, "cache_names");
	cfg->write_behind = ro.write_behind;
	cfg->readahead_bytes = ro.readahead_bytes;
	return 0;
}

/* Check the remote root; the longest name from statvfs@openssh.com. */
static int sftp_probe(struct sftp_mount *sm, struct sftp_conn *c,
		      struct vfs_error *err)
{
	const char *root = sm->cfg.root;
	struct sftp_statvfs v;
	struct sftp_attrs a;
	int rc;

	rc = sftp_r_stat(c, root, true, &a);
	if (rc)
		return vfs_error_set(err, -rc, "%s: remote directory %s: %s",
				     sm->cfg.display, root, strerror(-rc));
	if (!(a.flags & SFTP_ATTR_PERMISSIONS) || !S_ISDIR(a.perm))
		return vfs_error_set(err, ENOTDIR,
				     "%s: remote path %s is not a directory",
				     sm->cfg.display, root);
	sm->name_max = NAME_MAX;
	if (sm->feat.statvfs) {
		rc = sftp_r_statvfs(c, root, &v);
		if (rc == 0 && v.namemax)
			sm->name_max = (size_t)v.namemax;
		else if (rc == -EOPNOTSUPP || rc == -ENOSYS)
			sm->feat.statvfs = false;
	}
	if (c->broken)
		return vfs_error_set(
			err, EIO,
			"%s: connection lost while probing the server",
			sm->cfg.display);
	return 0;
}

static void sftp_unmount(struct vfs_mount *m);

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
	if (sm->cache && sm->cfg.cache_names)
		/* every change of a name here goes through the calls that
		 * track names (remote_cache_gone() for removals) */
		remote_cache_track_names(sm->cache);
	sm->links = sftp_links_new(sm->cache);
	if (!sm->cache || !sm->links || sftp_pool_init(sm) < 0) {
		rc = vfs_error_set(err, ENOMEM, "out of memory");
		goto err_free;
	}
	/* the first session is opened here so that configuration errors
	 * (host key, credentials, path) fail the mount with a message */
	rc = sftp_sess_open(sm, &sm->pool.sess[0], SFTP_SESS_FIRST, err);
	if (rc < 0)
		goto err_free;
	{
		struct sftp_conn c = {.sm = sm,
				      .s = &sm->pool.sess[0],
				      .chan = sm->pool.sess[0].chan,
				      .deadline = vfs_mono_s() +
						  sm->cfg.timeout_ms / 1000.0};

		rc = sftp_probe(sm, &c, err);
		if (rc < 0)
			goto err_free;
	}
	rc = sftp_pool_start(sm);
	if (rc == 0 && sm->cfg.write_behind)
		rc = sftp_wb_start(sm);
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
	/* requests pipeline on each session's one stream: what is sent
	 * before a reader's request is what it waits behind
	 * (docs/performance.md, "Noisy neighbours") */
	sm->base.share_bytes = SFTP_SHARE_BYTES * (uint64_t)sm->cfg.connections;
	sm->base.readahead_bytes = sm->cfg.readahead_bytes;
	/* a lone sequential reader: 3 READs of 1 MiB in flight on its
	 * file's session (read-ahead, vfsd/router_ra.c); a newcomer's
	 * requests go on a session of their own or behind those */
	sm->base.share_ahead = 3;
	log_info("%s: mounted (%d connections, timeout %ds; server: "
		 "%s%s%s%s%s%s)",
		 sm->cfg.display, sm->cfg.connections,
		 sm->cfg.timeout_ms / 1000, sm->feat.fsync ? "fsync " : "",
		 sm->feat.statvfs ? "statvfs " : "",
		 sm->feat.hardlink ? "hardlink " : "",
		 sm->feat.lsetstat ? "lsetstat " : "",
		 sm->feat.posix_rename ? "posix-rename " : "",
		 sm->feat.copy_data ? "copy-data" : "");
	*out = &sm->base;
	return 0;

err_free:
	sftp_unmount(&sm->base);
	return rc;
}

static void sftp_unmount(struct vfs_mount *m)
{
	struct sftp_mount *sm = sftp_mount_of(m);

	remote_wb_free(sm->wb);
	sftp_pool_destroy(sm);
	pthread_mutex_destroy(&sm->files_lock);
	remote_cache_free(sm->cache);
	sftp_links_free(sm->links);
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
	struct sftp_conn cc, *c = &cc;
	struct sftp_statvfs v;
	char *rpath;
	int rc, tries = 0;

	if (!sm->feat.statvfs)
		return -ENOSYS;
	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	do {
		rc = sftp_checkout(sm, -1, 0, c);
		if (rc)
			break;
		rc = sftp_r_statvfs(c, rpath, &v);
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	free(rpath);
	if (rc)
		return rc;
	memset(st, 0, sizeof(*st));
	st->f_bsize = v.bsize;
	st->f_frsize = v.frsize;
	st->f_blocks = v.blocks;
	st->f_bfree = v.bfree;
	st->f_bavail = v.bavail;
	st->f_files = v.files;
	st->f_ffree = v.ffree;
	st->f_favail = v.favail;
	st->f_fsid = v.fsid;
	st->f_flag = v.flag;
	st->f_namemax = v.namemax;
	return 0;
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
	.link = sftp_link,
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
	.copy_range = sftp_copy_range,
};
