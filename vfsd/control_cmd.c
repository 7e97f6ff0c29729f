/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control_cmd.c - what each control request does: status, mounts and
 * stats reports, mount add/remove, reload of the config file, image and
 * fault commands.  control.c owns the socket, its connections and their
 * threads; it hands each complete request here, one call per request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/fault.h"
#include "guestfs/lock.h"
#include "lib/log.h"
#include "lib/path.h"
#include "lib/url.h"
#include "vfsd/config.h"
#include "vfsd/control_cmd.h"
#include "vfsd/fuse_ops.h"
#include "vfsd/image_cmd.h"
#include "vfsd/qos.h"
#include "vfsd/report.h"
#include "vfsd/router.h"

/* Serialises reloads and vfsctl mount changes against each other. */
static pthread_mutex_t ctl_change_lock = PTHREAD_MUTEX_INITIALIZER;

static void ctl_invalidate(const char *prefix)
{
	char buf[4096];
	size_t len = strlen(prefix);

	if (len >= sizeof(buf))
		return;
	/* every component: a new prefix may also create virtual dirs */
	for (size_t i = 1; i <= len; i++) {
		if (i == len || prefix[i] == '/') {
			memcpy(buf, prefix, i);
			buf[i] = '\0';
			fuse_ops_invalidate_path(buf);
		}
	}
}

/* ---- reload ------------------------------------------------------- */

struct cur_mount {
	char *prefix, *url;
	bool readonly;
	struct vfs_opts opts;
	enum router_origin origin;
};

struct cur_set {
	struct cur_mount *m;
	size_t n;
};

static void collect_one(void *p, const struct router_view *v)
{
	struct cur_set *set = p;
	struct cur_mount *grown =
		realloc(set->m, (set->n + 1) * sizeof(*grown));
	struct cur_mount *c;

	if (!grown)
		return;
	set->m = grown;
	c = &set->m[set->n];
	memset(c, 0, sizeof(*c));
	c->prefix = strdup(v->prefix);
	c->url = strdup(v->url);
	c->readonly = v->readonly;
	c->origin = v->origin;
	if (!c->prefix || !c->url || vfs_opts_copy(&c->opts, v->opts) < 0) {
		free(c->prefix);
		free(c->url);
		return;
	}
	set->n++;
}

static void cur_set_free(struct cur_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->m[i].prefix);
		free(set->m[i].url);
		vfs_opts_clear(&set->m[i].opts);
	}
	free(set->m);
}

/* The backend's options of a and b are the same: the I/O limits
 * (qos.NAME) change without a remount. */
static bool opts_equal(const struct vfs_opts *a, const struct vfs_opts *b)
{
	size_t na = 0, nb = 0;

	for (size_t i = 0; i < a->n; i++) {
		const char *v = vfs_opts_get(b, a->kv[i].key);

		if (qos_is_opt(a->kv[i].key))
			continue;
		na++;
		if (!v || strcmp(v, a->kv[i].value) != 0)
			return false;
	}
	for (size_t i = 0; i < b->n; i++)
		nb += !qos_is_opt(b->kv[i].key);
	return na == nb;
}

int ctl_reload(const struct vfsd_status *st, FILE *out, struct vfs_error *err)
{
	struct vfsd_config cfg = {0};
	struct cur_set cur = {0};
	int ret, failures = 0, changes = 0;

	if (!st || !st->config)
		return vfs_error_set(
			err, ENOENT,
			"vfsd runs without a config file: nothing to reload");
	pthread_mutex_lock(&ctl_change_lock);
	ret = cfg_load_file(&cfg, st->config, err);
	if (ret == 0)
		ret = cfg_validate(&cfg, err);
	if (ret < 0)
		goto out;
	/* holders' records and other hosts count on the lease in force */
	if (cfg.lock_lease && cfg.lock_lease != glock_lease()) {
		fprintf(out,
			"lock_lease = %d takes a restart: %d s stays in "
			"force\n",
			cfg.lock_lease, glock_lease());
		log_warn("reload: lock_lease = %d takes a restart: %d s stays "
			 "in force",
			 cfg.lock_lease, glock_lease());
	}
	router_foreach(collect_one, &cur);

	/* gone or changed: remove first, so a changed one can come back */
	for (size_t i = 0; i < cur.n; i++) {
		struct cur_mount *c = &cur.m[i];
		struct cfg_mount *want = NULL;
		struct vfs_error e;

		if (c->origin != ROUTER_ORIGIN_CONFIG)
			continue;
		for (size_t j = 0; j < cfg.nmounts && !want; j++)
			if (strcmp(cfg.mounts[j].prefix, c->prefix) == 0)
				want = &cfg.mounts[j];
		if (want && strcmp(want->url, c->url) == 0 &&
		    want->readonly == c->readonly &&
		    opts_equal(&want->opts, &c->opts))
			continue;
		vfs_error_init(&e);
		if (router_remove(c->prefix, false, &e) < 0) {
			fprintf(out, "kept %s: %s\n", c->prefix, e.msg);
			failures++;
			continue;
		}
		fuse_ops_forget_mount(c->prefix);
		ctl_invalidate(c->prefix);
		fprintf(out, "removed %s\n", c->prefix);
		changes++;
	}
	/* new or changed: add */
	for (size_t j = 0; j < cfg.nmounts; j++) {
		struct cfg_mount *w = &cfg.mounts[j];
		struct vfs_error e;
		bool present = false;

		for (size_t i = 0; i < cur.n && !present; i++) {
			struct cur_mount *c = &cur.m[i];

			present = strcmp(c->prefix, w->prefix) == 0 &&
				  (c->origin != ROUTER_ORIGIN_CONFIG ||
				   (strcmp(w->url, c->url) == 0 &&
				    w->readonly == c->readonly &&
				    opts_equal(&w->opts, &c->opts)));
		}
		if (present)
			continue;
		vfs_error_init(&e);
		if (router_add(w->prefix, w->url, &w->opts, w->readonly,
			       ROUTER_ORIGIN_CONFIG, &e) < 0) {
			fprintf(out, "failed %s: %s\n", w->prefix, e.msg);
			failures++;
			continue;
		}
		ctl_invalidate(w->prefix);
		fprintf(out, "added %s\n", w->prefix);
		changes++;
	}
	/* the config's limits as it says now, on mounts kept or new; a
	 * rule kept keeps its buckets and its waiting requests */
	qos_reload_begin(QOS_ORIGIN_CONFIG);
	{
		struct vfs_error e;

		vfs_error_init(&e);
		if (cfg_apply_qos(&cfg, &e) < 0) {
			fprintf(out, "limits not applied: %s\n", e.msg);
			failures++;
		}
	}
	qos_reload_end(QOS_ORIGIN_CONFIG);
	if (!changes && !failures)
		fprintf(out, "no changes to mounts\n");
	if (failures)
		ret = vfs_error_set(
			err, EBUSY, "reload of %s: %d mount%s not applied",
			st->config, failures,
			failures == 1 ? " or limit" : "s or limits");
out:
	pthread_mutex_unlock(&ctl_change_lock);
	cur_set_free(&cur);
	cfg_free(&cfg);
	return ret;
}

/* ---- commands ------------------------------------------------------- */

static int cmd_mount(FILE *out, char **argv, int argc, struct vfs_error *err)
{
	char prefix[4096];
	int ret;

	if (argc >= 1 && strcmp(argv[0], "add") == 0) {
		struct vfs_opts opts = {0};

		if (argc < 3)
			return vfs_error_set(
				err, EINVAL,
				"usage: mount add PREFIX URL [key=value...]");
		for (int i = 3; i < argc; i++) {
			char *eq = strchr(argv[i], '=');

			if (!eq || eq == argv[i]) {
				char safe[200];

				vfs_opts_clear(&opts);
				return vfs_error_set(
					err, EINVAL,
					"'%s': options are key=value",
					vfs_url_redact(argv[i], safe,
						       sizeof(safe)));
			}
			*eq = '\0';
			/* from the command line: secrets are refused */
			if (vfs_opts_set(&opts, argv[i], eq + 1,
					 VFS_ORIGIN_URL) < 0) {
				vfs_opts_clear(&opts);
				return vfs_error_set(err, ENOMEM,
						     "out of memory");
			}
		}
		pthread_mutex_lock(&ctl_change_lock);
		ret = router_add(argv[1], argv[2], &opts, false,
				 ROUTER_ORIGIN_CONTROL, err);
		pthread_mutex_unlock(&ctl_change_lock);
		vfs_opts_clear(&opts);
		if (ret < 0)
			return ret;
		snprintf(prefix, sizeof(prefix), "%s", argv[1]);
		vfs_path_normalize(prefix);
		ctl_invalidate(prefix);
		fprintf(out, "mounted %s\n", prefix);
		return 0;
	}
	if (argc >= 1 && strcmp(argv[0], "remove") == 0) {
		bool force = argc == 3 && strcmp(argv[1], "--force") == 0;

		if (argc != 2 + force)
			return vfs_error_set(
				err, EINVAL,
				"usage: mount remove [--force] PREFIX");
		snprintf(prefix, sizeof(prefix), "%s", argv[1 + force]);
		pthread_mutex_lock(&ctl_change_lock);
		ret = router_remove(prefix, force, err);
		/* before a mount added at the prefix by another client can
		 * get nodes of its own, which this would kill */
		if (ret == 0) {
			vfs_path_normalize(prefix);
			fuse_ops_forget_mount(prefix);
		}
		pthread_mutex_unlock(&ctl_change_lock);
		if (ret < 0)
			return ret;
		ctl_invalidate(prefix);
		fprintf(out, "removed %s\n", prefix);
		return 0;
	}
	return vfs_error_set(err, EINVAL,
			     "usage: mount add PREFIX URL [key=value...] | "
			     "mount remove [--force] PREFIX");
}

/*
 * A path vfsctl resolved on the host, as a vfsd path: it must lie inside
 * our mount point.  buf gets the vfsd path.
 */
static int host_to_vfsd(const char *mnt, const char *host, char *buf,
			size_t size, struct vfs_error *err)
{
	size_t len = strlen(mnt);

	if (strncmp(host, mnt, len) != 0 ||
	    (host[len] != '\0' && host[len] != '/'))
		return vfs_error_set(err, EXDEV, "%s is not inside %s", host,
				     mnt);
	snprintf(buf, size, "%s", host[len] ? host + len : "/");
	if (vfs_path_normalize(buf) < 0)
		return vfs_error_set(err, EINVAL, "bad path %s", host);
	return 0;
}

static int cmd_image(const char *mnt, FILE *out, bool json, char **argv,
		     int argc, struct vfs_error *err)
{
	char path[4096];
	int ret;

	if (argc == 2 && strcmp(argv[0], "list") == 0) {
		ret = host_to_vfsd(mnt, argv[1], path, sizeof(path), err);
		return ret < 0 ? ret : image_cmd_list(out, path, json, err);
	}
	if (argc == 2 && strcmp(argv[0], "info") == 0) {
		ret = host_to_vfsd(mnt, argv[1], path, sizeof(path), err);
		return ret < 0 ? ret : image_cmd_info(out, path, json, err);
	}
	if (argc == 3 && strcmp(argv[0], "clone") == 0) {
		char to[4096];

		struct stat st;

		ret = host_to_vfsd(mnt, argv[1], path, sizeof(path), err);
		if (ret == 0)
			ret = host_to_vfsd(mnt, argv[2], to, sizeof(to), err);
		if (ret < 0)
			return ret;
		/* the usual complaints, in the caller's names */
		ret = router_getattr(path, &st);
		if (ret < 0)
			return vfs_error_set(err, -ret, "%s: %s", argv[1],
					     strerror(-ret));
		if (!S_ISREG(st.st_mode))
			return vfs_error_set(err, EINVAL,
					     "%s: not a regular file", argv[1]);
		ret = router_getattr(to, &st);
		if (ret == 0 || ret != -ENOENT)
			return vfs_error_set(err, ret ? -ret : EEXIST, "%s: %s",
					     argv[2],
					     strerror(ret ? -ret : EEXIST));
		ret = router_clone(path, to, err);
		/* the kernel may remember that the name did not exist */
		fuse_ops_invalidate_path(to);
		if (ret == 0)
			fprintf(out, "copied %s to %s on the server\n", argv[1],
				argv[2]);
		return ret;
	}
	return vfs_error_set(err, EINVAL,
			     "usage: image list DIR | image info FILE | image "
			     "clone SRC DST (paths inside the mount)");
}

/* fault PREFIX add RULE... | list | clear [ID] | resume [ID] (fault.c) */
static int cmd_fault(FILE *out, bool json, char **argv, int argc,
		     struct vfs_error *err)
{
	struct fault_cmd c = {
		.prefix = argc ? argv[0] : "",
		.argv = argv + 1,
		.argc = argc - 1,
		.json = json,
		.out = out,
		.err = err,
	};

	if (argc < 2)
		return vfs_error_set(
			err, EINVAL,
			"usage: fault PREFIX add RULE... | fault PREFIX list | "
			"fault PREFIX clear [ID] | fault PREFIX resume [ID]");
	return router_with_backend(argv[0], fault_command, &c, err);
}

/* qos set PATH NAME=VALUE... | qos clear PATH [NAME...] | qos show [PATH]
 * (qos.h); PATH is a host path inside the mount point */
static int cmd_qos(const char *mnt, FILE *out, bool json, char **argv, int argc,
		   struct vfs_error *err)
{
	const char *names[THROTTLE_NAMES];
	uint64_t values[THROTTLE_NAMES];
	struct throttle_cfg scratch;
	char path[4096];
	size_t n = 0;
	int ret;

	if (argc == 1 && strcmp(argv[0], "show") == 0) {
		qos_report(out, NULL, json);
		return 0;
	}
	if (argc < 2)
		goto usage;
	ret = host_to_vfsd(mnt, argv[1], path, sizeof(path), err);
	if (ret < 0)
		return ret;
	/* what is stored with a file now, not what this host read */
	qos_store_refresh(path);
	if (argc == 2 && strcmp(argv[0], "show") == 0) {
		qos_report(out, path, json);
		return 0;
	}
	if (strcmp(argv[0], "set") == 0 && argc >= 3) {
		for (int i = 2; i < argc; i++) {
			char *eq = strchr(argv[i], '=');

			if (!eq)
				return vfs_error_set(err, EINVAL,
						     "'%s': settings are "
						     "NAME=VALUE",
						     argv[i]);
			*eq = '\0';
			if (!throttle_field(&scratch, argv[i]))
				return vfs_error_set(
					err, EINVAL,
					"unknown setting '%s' (known: bps, "
					"bps_rd, bps_wr, iops, iops_rd, "
					"iops_wr, each also with _max and "
					"_max_length, and iops_size)",
					argv[i]);
			if (n == THROTTLE_NAMES)
				return vfs_error_set(err, EINVAL,
						     "too many settings");
			if (throttle_parse_value(eq + 1, &values[n]) < 0)
				return vfs_error_set(
					err, EINVAL,
					"%s = '%s': expected a plain decimal "
					"integer (bytes or operations per "
					"second, seconds, bytes)",
					argv[i], eq + 1);
			for (int j = 0; j < THROTTLE_NAMES; j++)
				if (strcmp(throttle_names[j], argv[i]) == 0)
					names[n] = throttle_names[j];
			n++;
		}
		ret = qos_store_set(path, names, values, n, err);
		if (ret == 0)
			fprintf(out, "limits of %s set\n", path);
		return ret;
	}
	if (strcmp(argv[0], "clear") == 0) {
		enum qos_origin origin;

		if (qos_origin_of(path, &origin) < 0)
			return vfs_error_set(err, ENOENT, "%s has no limits",
					     path);
		for (int i = 2; i < argc; i++) {
			if (!throttle_field(&scratch, argv[i]))
				return vfs_error_set(err, EINVAL,
						     "unknown setting '%s'",
						     argv[i]);
			for (int j = 0; j < THROTTLE_NAMES; j++)
				if (strcmp(throttle_names[j], argv[i]) == 0)
					names[n] = throttle_names[j];
			values[n++] = 0;
			if (n == THROTTLE_NAMES)
				break;
		}
		if (argc == 2)
			for (n = 0; n < THROTTLE_NAMES; n++) {
				names[n] = throttle_names[n];
				values[n] = 0;
			}
		ret = qos_store_set(path, names, values, n, err);
		if (ret == 0)
			fprintf(out, "limits of %s cleared\n", path);
		return ret;
	}
usage:
	return vfs_error_set(err, EINVAL,
			     "usage: qos set PATH NAME=VALUE... | qos clear "
			     "PATH [NAME...] | qos show [PATH]");
}

int ctl_dispatch(const struct vfsd_status *st, FILE *out, bool json,
		 char **argv, int argc, struct vfs_error *err)
{
	const char *cmd = argc ? argv[0] : "";

	if (strcmp(cmd, "status") == 0 && argc == 1) {
		report_status(out, json, st);
		return 0;
	}
	if (strcmp(cmd, "mounts") == 0 && argc == 1) {
		report_mounts(out, json);
		return 0;
	}
	if (strcmp(cmd, "stats") == 0 && argc <= 2) {
		char prefix[4096];

		if (argc == 1)
			return report_stats(out, NULL, json, err);
		snprintf(prefix, sizeof(prefix), "%s", argv[1]);
		if (prefix[0] != '/' || vfs_path_normalize(prefix) < 0)
			return vfs_error_set(err, EINVAL,
					     "'%s' is not an absolute prefix",
					     argv[1]);
		return report_stats(out, prefix, json, err);
	}
	if (strcmp(cmd, "mount") == 0)
		return cmd_mount(out, argv + 1, argc - 1, err);
	if (strcmp(cmd, "image") == 0)
		return cmd_image(st->mountpoint, out, json, argv + 1, argc - 1,
				 err);
	if (strcmp(cmd, "fault") == 0)
		return cmd_fault(out, json, argv + 1, argc - 1, err);
	if (strcmp(cmd, "qos") == 0)
		return cmd_qos(st->mountpoint, out, json, argv + 1, argc - 1,
			       err);
	if (strcmp(cmd, "files") == 0 && argc <= 2) {
		char path[4096];
		int ret = 0;

		if (argc == 2)
			ret = host_to_vfsd(st->mountpoint, argv[1], path,
					   sizeof(path), err);
		if (ret == 0)
			report_files(out, argc == 2 ? path : NULL, json);
		return ret;
	}
	if (strcmp(cmd, "reload") == 0 && argc == 1) {
		int ret = ctl_reload(st, out, err);

		if (ret == 0)
			log_info("reloaded %s (vfsctl)", st->config);
		return ret;
	}
	return vfs_error_set(err, EINVAL,
			     "unknown command '%s' (status, mounts, mount add, "
			     "mount remove, stats, reload, image list, image "
			     "info, image clone, fault, qos, files)",
			     cmd);
}
