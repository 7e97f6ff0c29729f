/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config.h - vfsd.conf(5) and -m PREFIX=URL mappings.
 *
 *   [vfsd]
 *   writeback_cache = no | yes
 *   host_id = NAME
 *   mountpoint = /mnt/vfsd
 *   show_control_dir = no | yes
 *   allow_other_unchecked = no | yes
 *
 *   [mount /data]
 *   url = file:///srv/data
 *   readonly = no
 *   qos.<setting> = <value>        (the mount's I/O limits, qos.h)
 *   <backend option> = <value>
 *
 *   [qos /data/vm/tenant-a]
 *   <setting> = <value>            (bps, iops_wr, ...: lib/throttle.h)
 *
 * Errors name the file and line ("vfsd.conf:12: ...").  Backend options
 * are checked against the backend's spec here already, so a typo is
 * reported with its line before anything connects.
 */
#ifndef VFSD_CONFIG_H
#define VFSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/error.h"
#include "lib/options.h"
#include "vfsd/fuse_ops.h"

struct cfg_mount {
	char *prefix; /* normalised, owned */
	char *url;    /* owned */
	bool readonly;
	struct vfs_opts opts; /* backend options, owned */
	int *lines;           /* config line of each opts.kv[i], or NULL */
	char *where;          /* "FILE:LINE" or "-m", owned */
};

/* A [qos PATH] section: I/O limits on a subtree or file (qos.h). */
struct cfg_qos {
	char *path;           /* normalised, owned */
	struct vfs_opts opts; /* its settings as qos.NAME = value, owned */
	char *where;          /* "FILE:LINE" of the section, owned */
};

struct vfsd_config {
	struct cfg_mount *mounts; /* owned */
	size_t nmounts;
	struct cfg_qos *qos; /* owned */
	size_t nqos;
	enum fo_writeback writeback;
	char *host_id;              /* owned, or NULL */
	char *mountpoint;           /* owned, or NULL */
	bool show_control_dir;      /* list /.vfsd in / */
	int lock_lease;             /* seconds; 0: the default */
	bool allow_other_unchecked; /* see cfg_check_fuse_opts */
	char *file;                 /* config file path, owned, or NULL */
};

/* Apply the config's I/O limits ([qos] sections, the mounts' qos.NAME
 * keys) as rules of origin QOS_ORIGIN_CONFIG.  0 or -errno with *err. */
int cfg_apply_qos(const struct vfsd_config *cfg, struct vfs_error *err);

/* Parse a config file into *cfg (zeroed by the caller or cfg_init).
 * 0 or -errno with *err naming FILE:LINE and the problem. */
int cfg_load_file(struct vfsd_config *cfg, const char *path,
		  struct vfs_error *err);
/* Parse config text; `name` stands for the file in messages.  `private`
 * says whether secrets may appear (the file is readable by its owner
 * only). */
int cfg_load_string(struct vfsd_config *cfg, const char *text, const char *name,
		    bool private_file, struct vfs_error *err);
/* Add one -m PREFIX=URL mapping. */
int cfg_add_mapping(struct vfsd_config *cfg, const char *arg,
		    struct vfs_error *err);
/* Check the whole set: prefixes, duplicates, URL syntax, known schemes and
 * every backend option.  0 or -errno with *err set. */
int cfg_validate(const struct vfsd_config *cfg, struct vfs_error *err);
void cfg_free(struct vfsd_config *cfg);

/* Longest host id: lock records carry it (guestfs/lock.h). */
#define CFG_HOST_ID_MAX 127

/*
 * Check a host id given by the user, as host_id in [vfsd] or --host-id
 * (`what` names it in the message): 1 to CFG_HOST_ID_MAX bytes, no space,
 * control character, '/' or '\\' (it names files on shared storage and
 * lines in logs).  0, or -EINVAL with *err set.
 */
int cfg_check_host_id(const char *what, const char *id, struct vfs_error *err);

/*
 * The FUSE mount options (the comma-joined -o values, or NULL) against who
 * runs vfsd.  allow_other without default_permissions lets every local user
 * in, and the kernel then checks no permissions: each of them acts on the
 * backends with the daemon's rights.  Running as root (`root`), that is
 * refused (-EPERM with *err saying why and what to do) unless `unchecked`
 * (--allow-other-unchecked, allow_other_unchecked = yes) asks for it; then,
 * and when not root, it is allowed and *warning points to a message for
 * the log.  Otherwise 0 and *warning is NULL.
 */
int cfg_check_fuse_opts(const char *fuse_opts, bool root, bool unchecked,
			const char **warning, struct vfs_error *err);

/* Whether the comma-separated FUSE option list `opts` (may be NULL) holds
 * `name` as one item. */
bool cfg_fuse_opt_present(const char *opts, const char *name);

#endif /* VFSD_CONFIG_H */
