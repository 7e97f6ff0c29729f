/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router.c - the mount table and path-level policy (see router.h).
 *
 * Lock order: table_lock (a rwlock over the mount array) is a leaf; mounts
 * are reference counted so that a request keeps its mount alive without
 * holding the lock while the backend works.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/fault.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/path.h"
#include "lib/url.h"
#include "vfsd/router.h"
#include "vfsd/stats.h"

/*
 * Run backend call `expr` on mount m, counted in its statistics in the
 * slot of op (an enum rop, see rops[]).
 * Every backend call goes through here.  Past the calling thread's
 * deadline (backends/callctx.h: a write under a cross-host lock whose
 * lease ran out) nothing more is sent: whatever the backend.
 */
#define BCALL(m, op, expr)                                                     \
	({                                                                     \
		struct timespec t0_;                                           \
		__typeof__(expr) r_ = -ETIMEDOUT;                              \
		if (!vfs_call_expired()) {                                     \
			stats_begin(&(m)->stats, &t0_);                        \
			r_ = (expr);                                           \
			stats_end(&(m)->stats, rops[op].stat, &t0_, (long)r_); \
		}                                                              \
		r_;                                                            \
	})

/* The same for calls that free what the caller holds: always made. */
#define BCALL_ALWAYS(m, op, expr)                                              \
	({                                                                     \
		struct timespec t0_;                                           \
		stats_begin(&(m)->stats, &t0_);                                \
		__typeof__(expr) r_ = (expr);                                  \
		stats_end(&(m)->stats, rops[op].stat, &t0_, (long)r_);         \
		r_;                                                            \
	})

struct router_mount {
	char *prefix; /* normalised vfsd path, owned */
	size_t plen;
	char *display; /* URL without secrets, owned */
	const struct vfs_backend_ops *ops;
	struct vfs_mount *vm; /* owned; unmount()ed on last put */
	bool readonly;
	bool hidden;               /* left out of its parent's listing */
	unsigned id;               /* mixed into st_ino, see id_get();
				    * 0 until inserted */
	uint64_t space;            /* inode space: never reused */
	atomic_uint_fast64_t refs; /* the table holds one */
	atomic_uint_fast64_t open_files;
	atomic_bool revoked; /* removed by force: files fail EIO */
	enum router_origin origin;
	char *url;             /* as configured (may hold options) */
	struct vfs_opts opts;  /* config options as given, owned */
	struct timespec since; /* when it was mounted */
	struct mount_stats stats;
};

/* An open file (router.h): fi->fh of the FUSE layer's open refers to one. */
struct router_file {
	struct router_mount *mount; /* a reference, dropped with the last
				     * of refs */
	struct vfs_file *vf;        /* the backend's, released with it */
	unsigned long refs;         /* atomic */
};

/*
 * The backend contract as data: one row per member of struct
 * vfs_backend_ops the router calls (backends/backend.h says what each
 * does).  `missing` is what the router answers when a backend's table has
 * no such member, one answer per operation whatever the backend:
 *
 *  - MANDATORY: every table has it; router_add refuses a table without it
 *    (router_ops_check), so the router calls it without looking.
 *  - EMULATED: the router does the work itself (lseek's SEEK_DATA/HOLE,
 *    copy_range).
 *  - 0: there is nothing to do, so it succeeded (flush, fsync: the
 *    backend keeps nothing back; listxattr: no attributes, as the
 *    kernel's NFS client and ext4 answer for a file without any).
 *  - -EPERM for calls that make or remove names, or change attributes:
 *    what link(2), mkdir(2), symlink(2), mknod(2), unlink(2) and rename(2)
 *    say for "the file system does not support" that call.
 *  - -EOPNOTSUPP for the xattr calls and fallocate, as the kernel answers
 *    for a FUSE file system without them (and what cp, tar and libattr
 *    read as "none here"); and for clone, whose caller then copies.
 *  - -EINVAL for readlink: without symlinks nothing is one.
 *  - -EROFS for write: a backend that cannot write is read-only.
 *
 * Never -ENOSYS: the kernel remembers an ENOSYS for the whole FUSE mount
 * (fc->no_fsync, no_setxattr...), i.e. for every vfsd mount at once, so one
 * backend's gap would switch the operation off for all of them.
 *
 * `mutates`: refused with -EROFS on a read-only mount before the backend
 * is asked.  `stat`: the statistics slot the call is counted in
 * (VOP_COUNT: not counted).
 */
enum rop {
	ROP_UNMOUNT,
	ROP_STATFS,
	ROP_GETATTR,
	ROP_SETATTR,
	ROP_READLINK,
	ROP_MKNOD,
	ROP_MKDIR,
	ROP_SYMLINK,
	ROP_LINK,
	ROP_UNLINK,
	ROP_RMDIR,
	ROP_RENAME,
	ROP_OPENDIR,
	ROP_READDIR,
	ROP_RELEASEDIR,
	ROP_GETXATTR,
	ROP_LISTXATTR,
	ROP_SETXATTR,
	ROP_REMOVEXATTR,
	ROP_CREATE,
	ROP_OPEN,
	ROP_READ,
	ROP_WRITE,
	ROP_FGETATTR,
	ROP_FLUSH,
	ROP_FSYNC,
	ROP_FALLOCATE,
	ROP_LSEEK,
	ROP_COPY_RANGE,
	ROP_CLONE,
	ROP_RELEASE,
	ROP_COUNT
};

#define MANDATORY INT_MIN
#define EMULATED  1

struct rop_row {
	const char *name; /* the member's name, for messages */
	size_t member;    /* offsetof(struct vfs_backend_ops, name) */
	int missing;      /* see above */
	bool mutates;
	enum vfs_op stat;
};

#define ROW(op, miss, mut, st)                                                 \
	{                                                                      \
#op, offsetof(struct vfs_backend_ops, op), (miss), (mut), (st) \
	}

static const struct rop_row rops[ROP_COUNT] = {
	[ROP_UNMOUNT] = ROW(unmount, MANDATORY, false, VOP_COUNT),
	[ROP_STATFS] = ROW(statfs, MANDATORY, false, VOP_STATFS),
	[ROP_GETATTR] = ROW(getattr, MANDATORY, false, VOP_GETATTR),
	[ROP_SETATTR] = ROW(setattr, -EPERM, true, VOP_SETATTR),
	[ROP_READLINK] = ROW(readlink, -EINVAL, false, VOP_READLINK),
	[ROP_MKNOD] = ROW(mknod, -EPERM, true, VOP_MKNOD),
	[ROP_MKDIR] = ROW(mkdir, -EPERM, true, VOP_MKDIR),
	[ROP_SYMLINK] = ROW(symlink, -EPERM, true, VOP_SYMLINK),
	[ROP_LINK] = ROW(link, -EPERM, true, VOP_LINK),
	[ROP_UNLINK] = ROW(unlink, -EPERM, true, VOP_UNLINK),
	[ROP_RMDIR] = ROW(rmdir, -EPERM, true, VOP_RMDIR),
	[ROP_RENAME] = ROW(rename, -EPERM, true, VOP_RENAME),
	[ROP_OPENDIR] = ROW(opendir, MANDATORY, false, VOP_OPENDIR),
	[ROP_READDIR] = ROW(readdir, MANDATORY, false, VOP_READDIR),
	[ROP_RELEASEDIR] = ROW(releasedir, MANDATORY, false, VOP_COUNT),
	[ROP_GETXATTR] = ROW(getxattr, -EOPNOTSUPP, false, VOP_GETXATTR),
	[ROP_LISTXATTR] = ROW(listxattr, 0, false, VOP_LISTXATTR),
	[ROP_SETXATTR] = ROW(setxattr, -EOPNOTSUPP, true, VOP_SETXATTR),
	[ROP_REMOVEXATTR] =
		ROW(removexattr, -EOPNOTSUPP, true, VOP_REMOVEXATTR),
	[ROP_CREATE] = ROW(create, -EPERM, true, VOP_CREATE),
	[ROP_OPEN] = ROW(open, MANDATORY, false, VOP_OPEN),
	[ROP_READ] = ROW(read, MANDATORY, false, VOP_READ),
	[ROP_WRITE] = ROW(write, -EROFS, true, VOP_WRITE),
	[ROP_FGETATTR] = ROW(fgetattr, MANDATORY, false, VOP_GETATTR),
	[ROP_FLUSH] = ROW(flush, 0, false, VOP_FLUSH),
	[ROP_FSYNC] = ROW(fsync, 0, false, VOP_FSYNC),
	[ROP_FALLOCATE] = ROW(fallocate, -EOPNOTSUPP, true, VOP_FALLOCATE),
	[ROP_LSEEK] = ROW(lseek, EMULATED, false, VOP_LSEEK),
	[ROP_COPY_RANGE] = ROW(copy_range, EMULATED, true, VOP_COPY_RANGE),
	[ROP_CLONE] = ROW(clone, -EOPNOTSUPP, true, VOP_CLONE),
	[ROP_RELEASE] = ROW(release, MANDATORY, false, VOP_RELEASE),
};

/* Whether `ops` has the member of op. */
static bool ops_has(const struct vfs_backend_ops *ops, enum rop op)
{
	void (*fn)(void);

	memcpy(&fn, (const char *)ops + rops[op].member, sizeof(fn));
	return fn != NULL;
}

/*
 * What a mount can do beyond the mandatory members, by name, in this
 * order: an optional member it has (op) or a capability bit (cap).
 */
static const struct {
	const char *name;
	enum rop op; /* ROP_COUNT: by cap */
	uint32_t cap;
} cap_names[] = {
	{"symlink", ROP_SYMLINK, 0},
	{"hardlink", ROP_LINK, 0},
	{"special_files", ROP_COUNT, VFS_CAP_MKNOD},
	{"rename_exchange", ROP_COUNT, VFS_CAP_RENAME_FLAGS},
	{"xattr", ROP_GETXATTR, 0},
	{"fallocate", ROP_FALLOCATE, 0},
	{"punch_hole", ROP_COUNT, VFS_CAP_PUNCH_HOLE},
	{"seek_data", ROP_LSEEK, 0},
	{"copy_range", ROP_COPY_RANGE, 0},
	{"clone", ROP_CLONE, 0},
	{"stable_fsync", ROP_COUNT, VFS_CAP_STABLE_FSYNC},
	{"stable_ino", ROP_COUNT, VFS_CAP_STABLE_INO},
	{"shared", ROP_COUNT, VFS_CAP_SHARED},
	{"acl_umask", ROP_COUNT, VFS_CAP_OWN_UMASK},
};

size_t router_caps(const struct router_view *v, const char **names, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++) {
		bool has = cap_names[i].op == ROP_COUNT
				   ? (v->caps & cap_names[i].cap) != 0
				   : ops_has(v->ops, cap_names[i].op);

		if (has && n < max)
			names[n++] = cap_names[i].name;
	}
	return n;
}

int router_ops_check(const struct vfs_backend_ops *ops, bool by_url,
		     struct vfs_error *err)
{
	const char *name = ops->name ? ops->name : "(unnamed)";

	if (!ops->name)
		return vfs_error_set(err, EINVAL,
				     "backend %s: mandatory member 'name' "
				     "missing from its ops table",
				     name);
	if (by_url && !ops->mount)
		return vfs_error_set(err, EINVAL,
				     "backend %s: mandatory member 'mount' "
				     "missing from its ops table",
				     name);
	for (int op = 0; op < ROP_COUNT; op++)
		if (rops[op].missing == MANDATORY && !ops_has(ops, op))
			return vfs_error_set(err, EINVAL,
					     "backend %s: mandatory member "
					     "'%s' missing from its ops table",
					     name, rops[op].name);
	return 0;
}

struct router_dir {
	struct router_mount *m; /* ref held, or NULL (virtual) */
	struct vfs_dir *vd;     /* backend stream, or NULL */
	struct vfs_dirbuf buf;  /* merged listing when vd == NULL */
	char *path;             /* owned, for rewinddir */
	bool read;              /* entries were asked for */
};

static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct router_mount **mounts; /* protected by table_lock */
static size_t nmounts;               /* protected by table_lock */
static struct timespec start_time;

/*
 * Mount ids.  A mount's id goes into the top byte of every st_ino it
 * reports (mix_ino), so two mounts alive at once must never share one:
 * their files would look like one file to cp, tar and find.  Byte 0xff
 * belongs to virtual directories (virtual_stat), which leaves ids
 * 1..MOUNT_ID_MAX.  They are handed out in turn from where the last one
 * was, so the first mounts keep the numbers they always had and a freed
 * id is reused as late as possible; an id is free again only when its
 * mount is (the last handle of a mount removed by force may outlive the
 * removal by far).  Beyond MOUNT_ID_MAX mounts at once, router_add
 * refuses.  Protected by id_lock, a leaf taken from mount_put too.
 */
#define MOUNT_ID_MAX 254
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static bool id_used[MOUNT_ID_MAX + 1]; /* protected by id_lock */
static unsigned id_next = 1;           /* protected by id_lock */
/* the node table's key of a mount (router_ino_space): unlike the id it
 * is never reused, so a node of a removed mount never matches a file of
 * a later one; protected by id_lock */
static uint64_t space_next = 1;

/* A free mount id, or 0 when all are taken. */
static unsigned id_get(void)
{
	unsigned id = 0;

	pthread_mutex_lock(&id_lock);
	for (unsigned i = 0; i < MOUNT_ID_MAX && !id; i++) {
		unsigned c = (id_next - 1 + i) % MOUNT_ID_MAX + 1;

		if (!id_used[c])
			id = c;
	}
	if (id) {
		id_used[id] = true;
		id_next = id % MOUNT_ID_MAX + 1;
	}
	pthread_mutex_unlock(&id_lock);
	return id;
}

static uint64_t space_get(void)
{
	uint64_t space;

	pthread_mutex_lock(&id_lock);
	space = space_next++;
	pthread_mutex_unlock(&id_lock);
	return space;
}

static void id_put(unsigned id)
{
	if (!id)
		return;
	pthread_mutex_lock(&id_lock);
	id_used[id] = false;
	pthread_mutex_unlock(&id_lock);
}

int router_init(void)
{
	clock_gettime(CLOCK_REALTIME, &start_time);
	pthread_mutex_lock(&id_lock);
	id_next = 1;
	pthread_mutex_unlock(&id_lock);
	return 0;
}

static void mount_get(struct router_mount *m)
{
	atomic_fetch_add(&m->refs, 1);
}

static void mount_put(struct router_mount *m)
{
	if (atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	m->ops->unmount(m->vm);
	id_put(m->id);
	free(m->prefix);
	free(m->display);
	free(m->url);
	vfs_opts_clear(&m->opts);
	free(m);
}

void router_shutdown(void)
{
	pthread_rwlock_wrlock(&table_lock);
	for (size_t i = 0; i < nmounts; i++)
		mount_put(mounts[i]);
	free(mounts);
	mounts = NULL;
	nmounts = 0;
	pthread_rwlock_unlock(&table_lock);
}

/* prefix lies strictly beneath path */
static bool leads_to(const char *path, const char *prefix)
{
	size_t len = strlen(path);

	if (len == 1)
		return prefix[1] != '\0';
	return strncmp(prefix, path, len) == 0 && prefix[len] == '/';
}

/* Longest-prefix match; a reference is taken on the result. */
static struct router_mount *resolve(const char *path, const char **rel)
{
	struct router_mount *best = NULL;

	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts; i++) {
		struct router_mount *m = mounts[i];

		if (vfs_path_under(path, m->prefix, m->plen) &&
		    (!best || m->plen > best->plen))
			best = m;
	}
	if (best)
		mount_get(best);
	pthread_rwlock_unlock(&table_lock);
	if (best) {
		*rel = best->plen == 1 ? path : path + best->plen;
		if (!**rel)
			*rel = "/";
	}
	return best;
}

static bool is_virtual_dir(const char *path)
{
	bool found = false;

	if (strcmp(path, "/") == 0)
		return true;
	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts && !found; i++)
		found = leads_to(path, mounts[i]->prefix);
	pthread_rwlock_unlock(&table_lock);
	return found;
}

static bool is_mount_point(const char *path)
{
	bool found = false;

	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts && !found; i++)
		found = strcmp(path, mounts[i]->prefix) == 0;
	pthread_rwlock_unlock(&table_lock);
	return found;
}

static uint64_t mix_ino(unsigned id, uint64_t ino)
{
	return ino ^ ((uint64_t)id << 56);
}

static void virtual_stat(const char *path, struct stat *st)
{
	/* the short basis keeps earlier versions' inode numbers (hash.h) */
	uint64_t h = vfs_hash_str_from(VFS_HASH_FNV_BASIS_SHORT, path);

	memset(st, 0, sizeof(*st));
	st->st_ino = (h >> 8) | (0xffULL << 56);
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = start_time;
}

/*
 * The mount for a path an operation will change.  NULL with *err set when
 * nothing may be changed there: no mount (-EROFS inside a virtual directory,
 * else -ENOENT) or a read-only mount.
 */
static struct router_mount *route_rw(const char *path, const char **rel,
				     int *err)
{
	struct router_mount *m = resolve(path, rel);

	if (!m) {
		/* inside a virtual directory nothing may be created */
		char *parent = vfs_path_parent(path);

		*err = is_virtual_dir(path) ||
				       (parent && is_virtual_dir(parent))
			       ? -EROFS
			       : -ENOENT;
		free(parent);
		return NULL;
	}
	if (m->readonly) {
		mount_put(m);
		*err = -EROFS;
		return NULL;
	}
	return m;
}

/*
 * Whether m's backend lacks op (an optional member): then m's reference is
 * dropped and *ret is the row's answer (rops[]).
 */
static bool lacks(struct router_mount *m, enum rop op, int *ret)
{
	if (ops_has(m->ops, op))
		return false;
	*ret = rops[op].missing;
	mount_put(m);
	return true;
}

/*
 * The mount for operation op on `path`, with a reference, when the call is
 * its backend's to answer; else NULL and *ret the answer: no mount
 * (-ENOENT, or -EROFS in a virtual directory when op mutates), a read-only
 * mount when op mutates, or the row's answer for a member it lacks.
 */
static struct router_mount *route_op(enum rop op, const char *path,
				     const char **rel, int *ret)
{
	struct router_mount *m;

	if (rops[op].mutates) {
		m = route_rw(path, rel, ret);
	} else {
		m = resolve(path, rel);
		*ret = -ENOENT;
	}
	if (!m || lacks(m, op, ret))
		return NULL;
	return m;
}

/*
 * Whether a call of op on open file f is its backend's to answer; else *ret
 * is the answer: -EIO once its mount was removed by force, -EROFS when op
 * mutates a read-only mount, the row's answer for a member it lacks.
 */
static bool file_ready(const struct router_file *f, enum rop op, int *ret)
{
	const struct router_mount *m = f->mount;

	if (atomic_load(&m->revoked))
		*ret = -EIO;
	else if (rops[op].mutates && m->readonly)
		*ret = -EROFS;
	else if (!ops_has(m->ops, op))
		*ret = rops[op].missing;
	else
		return true;
	return false;
}

/* Creating or removing a name that is (or leads to) a mount point. */
static int check_not_mount_point(const char *path)
{
	if (is_mount_point(path) || (is_virtual_dir(path)))
		return -EBUSY;
	return 0;
}

static int table_insert(struct router_mount *m);

/* lock_lease in seconds (0: unchecked); set once before the first mount */
static int lock_lease;

void router_set_lock_lease(int seconds)
{
	lock_lease = seconds;
}

/*
 * A remote mount's timeout bounds how long one request to it may take.  A
 * lock holder renews every lease/6 and may rely on its record for 2/3 of
 * the lease after sending it (guestfs/lease.c), so a renewal that takes a
 * whole timeout must still fit: timeout <= lease/3.  Longer, a live holder
 * would lose its locks to one slow request.
 */
static int lease_check(const struct vfs_backend_ops *ops,
		       const struct vfs_opts *opts, const char *what,
		       struct vfs_error *err)
{
	long timeout;
	bool has = false;

	for (const struct vfs_opt_spec *o = ops->opts; o && o->name && !has;
	     o++)
		has = strcmp(o->name, "timeout") == 0;
	if (!has || !lock_lease)
		return 0;
	timeout = vfs_opts_get_int(opts, "timeout");
	if (timeout * 3 <= lock_lease)
		return 0;
	return vfs_error_set(
		err, EINVAL,
		"%s: timeout = %ld s is too long for lock_lease = %d s: a lock "
		"holder must be able to renew within 2/3 of the lease, so a "
		"request may take at most lock_lease/3 = %d s; lower timeout "
		"or raise lock_lease to %ld or more",
		what, timeout, lock_lease, lock_lease / 3, timeout * 3);
}

int router_add(const char *prefix_in, const char *url_s,
	       const struct vfs_opts *cfg_opts, bool readonly,
	       enum router_origin origin, struct vfs_error *err)
{
	struct router_mount *m = NULL;
	struct vfs_opts opts = {0};
	struct vfs_url url;
	char *prefix, what[300];
	int ret;

	prefix = strdup(prefix_in);
	if (!prefix)
		return vfs_error_set(err, ENOMEM, "out of memory");
	ret = vfs_prefix_normalize(prefix, err);
	if (ret < 0) {
		free(prefix);
		return ret;
	}
	ret = vfs_url_parse(url_s, &url, err);
	if (ret < 0) {
		free(prefix);
		return ret;
	}
	snprintf(what, sizeof(what), "mount %s", prefix);
	m = calloc(1, sizeof(*m));
	if (!m) {
		ret = vfs_error_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	m->ops = backend_find(url.scheme);
	if (!m->ops) {
		ret = vfs_error_set(err, EPROTONOSUPPORT,
				    "%s: unknown URL scheme '%s' in '%s' "
				    "(known: file, sftp, nfs)",
				    what, url.scheme, url.raw);
		goto fail;
	}
	ret = router_ops_check(m->ops, true, err);
	if (ret < 0)
		goto fail;
	if ((cfg_opts && (ret = vfs_opts_copy(&opts, cfg_opts)) < 0)) {
		ret = vfs_error_set(err, -ret, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < url.query.n; i++) {
		ret = vfs_opts_set(&opts, url.query.kv[i].key,
				   url.query.kv[i].value, VFS_ORIGIN_URL);
		if (ret < 0) {
			ret = vfs_error_set(err, -ret, "out of memory");
			goto fail;
		}
	}
	ret = vfs_opts_validate(&opts, m->ops->opts, what, err);
	if (ret == 0)
		ret = lease_check(m->ops, &opts, what, err);
	if (ret < 0)
		goto fail;

	/* refuse duplicates before connecting anywhere */
	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts && ret == 0; i++)
		if (strcmp(mounts[i]->prefix, prefix) == 0)
			ret = -EEXIST;
	pthread_rwlock_unlock(&table_lock);
	if (ret < 0) {
		ret = vfs_error_set(err, EEXIST,
				    "%s: prefix is already mounted", what);
		goto fail;
	}

	ret = m->ops->mount(&url, &opts, &m->vm, err);
	if (ret < 0) {
		vfs_error_set(err, -ret, "%s: %s: %s", what, url.raw,
			      strerror(-ret));
		goto fail;
	}
	m->vm->ops = m->ops;
	/* fault+X: X's instance behind the test-only fault wrapper */
	if (fault_scheme(url.scheme)) {
		ret = fault_wrap(&m->vm, what, err);
		if (ret < 0)
			goto fail;
		m->ops = m->vm->ops;
	}
	m->prefix = prefix;
	m->plen = strlen(prefix);
	m->display = vfs_url_display(&url);
	m->url = strdup(url_s);
	m->readonly = readonly;
	m->origin = origin;
	if (cfg_opts)
		vfs_opts_copy(&m->opts, cfg_opts);
	ret = table_insert(m);
	if (ret < 0) {
		if (ret == -EMFILE)
			vfs_error_set(
				err, EMFILE,
				"%s: too many mounts at once (at most %d)",
				what, MOUNT_ID_MAX);
		else
			vfs_error_set(err, -ret, "%s: %s", what,
				      ret == -EEXIST
					      ? "prefix is already mounted"
					      : strerror(-ret));
		prefix = NULL; /* m owns it now */
		mount_put(m);
		m = NULL;
		goto fail;
	}
	log_info("mounted %s at %s%s", m->display ? m->display : url.raw,
		 m->prefix, readonly ? " (read-only)" : "");
	vfs_url_clear(&url);
	vfs_opts_clear(&opts);
	return 0;
fail:
	free(m);
	free(prefix);
	vfs_url_clear(&url);
	vfs_opts_clear(&opts);
	return ret;
}
/*
 * Put a fully set up mount into the table, taking the table's reference.
 * -EEXIST if its prefix is taken.
 */
static int table_insert(struct router_mount *m)
{
	struct router_mount **grown;
	int ret = 0;

	atomic_init(&m->refs, 1);
	atomic_init(&m->open_files, 0);
	atomic_init(&m->revoked, false);
	clock_gettime(CLOCK_REALTIME, &m->since);
	m->id = id_get();
	if (!m->id)
		return -EMFILE;
	m->space = space_get();
	pthread_rwlock_wrlock(&table_lock);
	for (size_t i = 0; i < nmounts && ret == 0; i++)
		if (strcmp(mounts[i]->prefix, m->prefix) == 0)
			ret = -EEXIST;
	grown = ret ? NULL : realloc(mounts, (nmounts + 1) * sizeof(*mounts));
	if (grown) {
		mounts = grown;
		mounts[nmounts++] = m;
	} else if (!ret) {
		ret = -ENOMEM;
	}
	pthread_rwlock_unlock(&table_lock);
	return ret;
}

int router_add_internal(const char *prefix, struct vfs_mount *vm, bool visible,
			struct vfs_error *err)
{
	struct router_mount *m;
	int ret = router_ops_check(vm->ops, false, err);

	if (ret < 0) {
		/* without unmount the instance cannot be freed */
		if (vm->ops->unmount)
			vm->ops->unmount(vm);
		return ret;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->prefix = strdup(prefix)) ||
	    !(m->display = strdup("vfsd:internal")) ||
	    !(m->url = strdup("vfsd:internal"))) {
		if (m) {
			free(m->prefix);
			free(m->display);
		}
		free(m);
		vm->ops->unmount(vm);
		return vfs_error_set(err, ENOMEM, "out of memory");
	}
	m->plen = strlen(prefix);
	m->ops = vm->ops;
	m->vm = vm;
	m->readonly = true;
	m->hidden = !visible;
	m->origin = ROUTER_ORIGIN_INTERNAL;
	ret = table_insert(m);
	if (ret < 0) {
		vfs_error_set(err, -ret, "internal mount %s: %s", prefix,
			      strerror(-ret));
		mount_put(m);
	}
	return ret;
}

/* Copy and normalise a prefix given by a control client into buf. */
static int prefix_norm(const char *in, char *buf, size_t size,
		       struct vfs_error *err)
{
	char q[80];

	if (snprintf(buf, size, "%s", in) >= (int)size || buf[0] != '/' ||
	    vfs_path_normalize(buf) < 0)
		return vfs_error_set(err, EINVAL,
				     "'%s' is not an absolute prefix",
				     vfs_quote(in, q, sizeof(q)));
	return 0;
}

int router_remove(const char *prefix_in, bool force, struct vfs_error *err)
{
	struct router_mount *m = NULL;
	char prefix[4096];
	uint64_t open;
	int ret = 0;

	if (prefix_norm(prefix_in, prefix, sizeof(prefix), err) < 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&table_lock);
	for (size_t i = 0; i < nmounts; i++) {
		if (strcmp(mounts[i]->prefix, prefix) != 0)
			continue;
		m = mounts[i];
		if (m->origin == ROUTER_ORIGIN_INTERNAL) {
			ret = vfs_error_set(
				err, EPERM,
				"%s is vfsd's own and cannot be removed",
				prefix);
			break;
		}
		open = atomic_load(&m->open_files);
		if (open && !force) {
			ret = vfs_error_set(
				err, EBUSY,
				"%s: %llu file%s open under it (--force makes "
				"them fail with EIO)",
				prefix, (unsigned long long)open,
				open == 1 ? "" : "s");
			break;
		}
		if (open)
			atomic_store(&m->revoked, true);
		memmove(&mounts[i], &mounts[i + 1],
			(nmounts - i - 1) * sizeof(*mounts));
		nmounts--;
		break;
	}
	pthread_rwlock_unlock(&table_lock);
	if (!m)
		return vfs_error_set(err, ENOENT, "%s is not mounted", prefix);
	if (ret < 0)
		return ret;
	log_info("unmounted %s from %s%s", m->display, m->prefix,
		 atomic_load(&m->revoked) ? " (open files revoked)" : "");
	/* calls paused by fault rules hold m: let them finish */
	fault_detach(m->vm);
	mount_put(m);
	return 0;
}

int router_with_backend(const char *prefix_in,
			int (*fn)(struct vfs_mount *vm, void *ctx), void *ctx,
			struct vfs_error *err)
{
	struct router_mount *m = NULL;
	char prefix[4096];
	int ret;

	if (prefix_norm(prefix_in, prefix, sizeof(prefix), err) < 0)
		return -EINVAL;
	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts && !m; i++)
		if (strcmp(mounts[i]->prefix, prefix) == 0)
			m = mounts[i];
	if (m)
		mount_get(m);
	pthread_rwlock_unlock(&table_lock);
	if (!m)
		return vfs_error_set(err, ENOENT, "%s is not mounted", prefix);
	ret = fn(m->vm, ctx);
	mount_put(m);
	return ret;
}

void router_foreach(router_view_fn fn, void *ctx)
{
	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts; i++) {
		struct router_mount *m = mounts[i];
		const char *state =
			m->ops->state ? m->ops->state(m->vm) : "connected";
		struct router_view v = {
			.prefix = m->prefix,
			.url = m->url,
			.display = m->display,
			.backend = m->ops->name,
			.state = state,
			.readonly = m->readonly,
			.passthrough = m->vm->caps & VFS_CAP_PASSTHROUGH,
			.ops = m->ops,
			.caps = m->vm->caps,
			.hidden = m->hidden,
			.origin = m->origin,
			.open_files = atomic_load(&m->open_files),
			.reconnects = __atomic_load_n(&m->vm->reconnects,
						      __ATOMIC_RELAXED),
			.since = m->since,
			.opts = &m->opts,
			.stats = &m->stats,
		};

		fn(ctx, &v);
	}
	pthread_rwlock_unlock(&table_lock);
}

size_t router_mount_count(void)
{
	size_t n;

	n = 0;
	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts; i++)
		n += mounts[i]->origin != ROUTER_ORIGIN_INTERNAL;
	pthread_rwlock_unlock(&table_lock);
	return n;
}

bool router_any_shared(void)
{
	bool shared = false;

	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts; i++)
		shared |= (mounts[i]->vm->caps & VFS_CAP_SHARED) != 0;
	pthread_rwlock_unlock(&table_lock);
	return shared;
}

void router_timeouts(const char *path, double *attr, double *entry,
		     bool *shared)
{
	const char *rel;
	struct router_mount *m = resolve(path, &rel);

	*attr = *entry = 1.0;
	if (shared)
		*shared = false;
	if (m) {
		*attr = m->vm->attr_timeout;
		*entry = m->vm->entry_timeout;
		if (shared)
			*shared = m->vm->caps & VFS_CAP_SHARED;
		mount_put(m);
	}
}

uint64_t router_ino_space(const char *path)
{
	const char *rel;
	struct router_mount *m = resolve(path, &rel);
	uint64_t space = 0;

	if (m) {
		if (m->vm->caps & VFS_CAP_STABLE_INO)
			space = m->space;
		mount_put(m);
	}
	return space;
}

bool router_file_is_shared(const struct router_file *f)
{
	return f->mount->vm->caps & VFS_CAP_SHARED;
}

bool router_file_uncached(const struct router_file *f)
{
	return f->vf->uncached;
}

void router_file_write_through(struct router_file *f)
{
	/* read by the backend's writers at each write (backend.h) */
	atomic_store(&f->vf->write_through, true);
}

bool router_dir_is_shared(const struct router_dir *d)
{
	return d->m && (d->m->vm->caps & VFS_CAP_SHARED);
}

/* ---- Namespace ---------------------------------------------------- */

int router_getattr(const char *path, struct stat *st)
{
	const char *rel;
	struct router_mount *m = resolve(path, &rel);
	int ret = -ENOENT;

	if (m) {
		ret = BCALL(m, ROP_GETATTR, m->ops->getattr(m->vm, rel, st));
		if (ret == 0)
			st->st_ino = mix_ino(m->id, st->st_ino);
		mount_put(m);
		/* a directory leading to a prefix need not exist below */
		if (ret != -ENOENT || !is_virtual_dir(path) ||
		    is_mount_point(path))
			return ret;
	}
	if (is_virtual_dir(path)) {
		virtual_stat(path, st);
		return 0;
	}
	return ret;
}

int router_setattr(const char *path, struct router_file *f,
		   const struct vfs_setattr *sa, struct stat *st)
{
	const char *rel = NULL;
	struct router_mount *m;
	int ret;

	if (f) {
		if (!file_ready(f, ROP_SETATTR, &ret))
			return ret;
		m = f->mount;
		mount_get(m);
		if (path) {
			struct router_mount *pm = resolve(path, &rel);

			if (pm != m)
				rel = NULL;
			if (pm)
				mount_put(pm);
		}
	} else {
		m = route_op(ROP_SETATTR, path, &rel, &ret);
		if (!m)
			return ret;
	}
	/* with a handle, no path (or one on another mount) is NULL: never
	 * "/", which a backend could take for the mount's root */
	ret = BCALL(m, ROP_SETATTR,
		    m->ops->setattr(m->vm, rel, f ? f->vf : NULL, sa, st));
	if (ret == 0)
		st->st_ino = mix_ino(m->id, st->st_ino);
	mount_put(m);
	return ret;
}

int router_access(const char *path, int mask, const struct vfs_cred *cred)
{
	struct stat st;
	unsigned bits;
	int ret = router_getattr(path, &st);

	if (ret < 0 || mask == F_OK)
		return ret;
	if (mask & W_OK) {
		const char *rel;
		struct router_mount *m = resolve(path, &rel);
		bool ro = !m || m->readonly;

		if (m)
			mount_put(m);
		if (ro)
			return -EROFS;
	}
	if (cred->uid == 0) {
		if ((mask & X_OK) && !S_ISDIR(st.st_mode) &&
		    !(st.st_mode & 0111))
			return -EACCES;
		return 0;
	}
	if (cred->uid == st.st_uid)
		bits = (st.st_mode >> 6) & 7;
	else if (cred->gid == st.st_gid)
		bits = (st.st_mode >> 3) & 7;
	else
		bits = st.st_mode & 7;
	if (((mask & R_OK) && !(bits & 4)) || ((mask & W_OK) && !(bits & 2)) ||
	    ((mask & X_OK) && !(bits & 1)))
		return -EACCES;
	return 0;
}

ssize_t router_readlink(const char *path, char *buf, size_t size)
{
	const char *rel;
	struct router_mount *m = resolve(path, &rel);
	ssize_t ret;
	int missing;

	if (!m)
		return is_virtual_dir(path) ? -EINVAL : -ENOENT;
	if (lacks(m, ROP_READLINK, &missing))
		return missing;
	ret = BCALL(m, ROP_READLINK, m->ops->readlink(m->vm, rel, buf, size));
	mount_put(m);
	return ret;
}

/*
 * The mount a call creating `path` goes to (op: its row), with a
 * reference; else NULL with *ret the answer.  A mount point or a directory
 * leading to one already exists.
 */
static struct router_mount *route_create(enum rop op, const char *path,
					 const char **rel, int *ret)
{
	*ret = check_not_mount_point(path);
	if (*ret < 0) {
		*ret = *ret == -EBUSY ? -EEXIST : *ret;
		return NULL;
	}
	return route_op(op, path, rel, ret);
}

/* The end of a creating call: the new object's st_ino made the mount's. */
static int created(struct router_mount *m, int ret, struct stat *st)
{
	if (ret == 0)
		st->st_ino = mix_ino(m->id, st->st_ino);
	mount_put(m);
	return ret;
}

/*
 * The mode a creating call hands `m`: the caller's umask is still to be
 * applied (the kernel leaves it to us, FUSE_DONT_MASK).  A backend that
 * creates through a file system with default ACLs applies it itself, so
 * that a default ACL on the parent replaces it as it would there.
 */
static mode_t create_mode(const struct router_mount *m, mode_t mode,
			  const struct vfs_cred *cred)
{
	return m->vm->caps & VFS_CAP_OWN_UMASK ? mode : mode & ~cred->umask;
}

int router_mknod(const char *path, mode_t mode, dev_t rdev,
		 const struct vfs_cred *cred, struct stat *st)
{
	const char *rel;
	int ret;
	struct router_mount *m = route_create(ROP_MKNOD, path, &rel, &ret);
	mode_t type = mode & S_IFMT;

	if (!m)
		return ret;
	/* a FIFO, socket or device where there can be none: no round trip */
	if (type && type != S_IFREG && !(m->vm->caps & VFS_CAP_MKNOD)) {
		mount_put(m);
		return -EOPNOTSUPP;
	}
	return created(
		m,
		BCALL(m, ROP_MKNOD,
		      m->ops->mknod(m->vm, rel, create_mode(m, mode, cred),
				    rdev, cred, st)),
		st);
}

int router_mkdir(const char *path, mode_t mode, const struct vfs_cred *cred,
		 struct stat *st)
{
	const char *rel;
	int ret;
	struct router_mount *m = route_create(ROP_MKDIR, path, &rel, &ret);

	if (!m)
		return ret;
	return created(
		m,
		BCALL(m, ROP_MKDIR,
		      m->ops->mkdir(m->vm, rel, create_mode(m, mode, cred),
				    cred, st)),
		st);
}

int router_symlink(const char *target, const char *path,
		   const struct vfs_cred *cred, struct stat *st)
{
	const char *rel;
	int ret;
	struct router_mount *m = route_create(ROP_SYMLINK, path, &rel, &ret);

	if (!m)
		return ret;
	return created(m,
		       BCALL(m, ROP_SYMLINK,
			     m->ops->symlink(m->vm, target, rel, cred, st)),
		       st);
}

/* Two paths on one mount, or -EXDEV; refs on the returned mount. */
static struct router_mount *route_pair(const char *a, const char **rela,
				       const char *b, const char **relb,
				       int *err)
{
	struct router_mount *ma, *mb;

	ma = route_rw(a, rela, err);
	if (!ma)
		return NULL;
	mb = route_rw(b, relb, err);
	if (!mb) {
		mount_put(ma);
		return NULL;
	}
	if (ma != mb) {
		mount_put(ma);
		mount_put(mb);
		*err = -EXDEV;
		return NULL;
	}
	mount_put(mb);
	return ma;
}

int router_link(const char *from, const char *to, struct stat *st)
{
	const char *ra, *rb;
	struct router_mount *m;
	int ret = check_not_mount_point(to);

	if (ret < 0)
		return -EEXIST;
	m = route_pair(from, &ra, to, &rb, &ret);
	if (!m || lacks(m, ROP_LINK, &ret))
		return ret;
	return created(m, BCALL(m, ROP_LINK, m->ops->link(m->vm, ra, rb, st)),
		       st);
}

/* The mount a call removing `path` goes to, as route_op; a mount point
 * or a directory leading to one is busy. */
static struct router_mount *route_remove(enum rop op, const char *path,
					 const char **rel, int *ret)
{
	*ret = check_not_mount_point(path);
	if (*ret < 0)
		return NULL;
	return route_op(op, path, rel, ret);
}

int router_unlink(const char *path)
{
	const char *rel;
	int ret;
	struct router_mount *m = route_remove(ROP_UNLINK, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_UNLINK, m->ops->unlink(m->vm, rel));
	mount_put(m);
	return ret;
}

int router_rmdir(const char *path)
{
	const char *rel;
	int ret;
	struct router_mount *m = route_remove(ROP_RMDIR, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_RMDIR, m->ops->rmdir(m->vm, rel));
	mount_put(m);
	return ret;
}

int router_rename(const char *from, const char *to, unsigned flags)
{
	const char *ra, *rb;
	struct router_mount *m;
	int ret;

	if (check_not_mount_point(from) < 0 || check_not_mount_point(to) < 0)
		return -EBUSY;
	m = route_pair(from, &ra, to, &rb, &ret);
	if (!m || lacks(m, ROP_RENAME, &ret))
		return ret;
	if (flags && !(m->vm->caps & VFS_CAP_RENAME_FLAGS) &&
	    flags != RENAME_NOREPLACE)
		ret = -EINVAL;
	else
		ret = BCALL(m, ROP_RENAME,
			    m->ops->rename(m->vm, ra, rb, flags));
	mount_put(m);
	return ret;
}

int router_statfs(const char *path, struct statvfs *st)
{
	const char *rel;
	struct router_mount *m = resolve(path, &rel);
	int ret;

	if (!m) {
		memset(st, 0, sizeof(*st));
		st->f_bsize = st->f_frsize = 4096;
		st->f_namemax = 255;
		return 0;
	}
	ret = BCALL(m, ROP_STATFS, m->ops->statfs(m->vm, rel, st));
	mount_put(m);
	return ret;
}

ssize_t router_getxattr(const char *path, const char *name, void *buf,
			size_t size)
{
	const char *rel;
	struct router_mount *m = resolve(path, &rel);
	ssize_t ret;

	int missing;

	if (!m)
		return -ENODATA;
	if (lacks(m, ROP_GETXATTR, &missing))
		return missing;
	ret = BCALL(m, ROP_GETXATTR,
		    m->ops->getxattr(m->vm, rel, name, buf, size));
	mount_put(m);
	/* a directory leading to a prefix, not there below: none */
	if (ret == -ENOENT && is_virtual_dir(path))
		ret = -ENODATA;
	return ret;
}

ssize_t router_listxattr(const char *path, char *buf, size_t size)
{
	const char *rel;
	struct router_mount *m = resolve(path, &rel);
	ssize_t ret;

	int missing;

	if (!m)
		return 0;
	if (lacks(m, ROP_LISTXATTR, &missing))
		return missing;
	ret = BCALL(m, ROP_LISTXATTR, m->ops->listxattr(m->vm, rel, buf, size));
	mount_put(m);
	if (ret == -ENOENT && is_virtual_dir(path))
		ret = 0;
	return ret;
}

int router_setxattr(const char *path, const char *name, const void *value,
		    size_t size, int flags)
{
	const char *rel;
	int ret;
	struct router_mount *m = route_op(ROP_SETXATTR, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_SETXATTR,
		    m->ops->setxattr(m->vm, rel, name, value, size, flags));
	mount_put(m);
	return ret;
}

int router_removexattr(const char *path, const char *name)
{
	const char *rel;
	int ret;
	struct router_mount *m = route_op(ROP_REMOVEXATTR, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_REMOVEXATTR, m->ops->removexattr(m->vm, rel, name));
	mount_put(m);
	return ret;
}

/* ---- Directories --------------------------------------------------- */

struct fill_mix {
	vfs_fill_fn fill;
	void *ctx;
	unsigned id;
};

static int fill_mixed(void *ctx, const char *name, const struct stat *st,
		      unsigned flags, off_t next)
{
	struct fill_mix *fm = ctx;
	struct stat s = *st;

	s.st_ino = mix_ino(fm->id, s.st_ino);
	return fm->fill(fm->ctx, name, &s, flags, next);
}

static int fill_collect(void *ctx, const char *name, const struct stat *st,
			unsigned flags, off_t next)
{
	return vfs_dirbuf_add(ctx, name, st, flags) < 0;
}

/* Names of prefixes directly beneath path, as a NULL-ended array. */
static char **child_prefixes(const char *path, size_t *count)
{
	char **names = NULL;
	size_t n = 0, plen = strlen(path);

	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts; i++) {
		const char *p = mounts[i]->prefix, *start, *end;
		char **grown;
		bool dup = false;

		if (!leads_to(path, p) || mounts[i]->hidden)
			continue;
		start = p + (plen == 1 ? 1 : plen + 1);
		end = strchrnul(start, '/');
		for (size_t j = 0; j < n && !dup; j++)
			dup = strlen(names[j]) == (size_t)(end - start) &&
			      strncmp(names[j], start, end - start) == 0;
		if (dup)
			continue;
		grown = realloc(names, (n + 2) * sizeof(*names));
		if (!grown)
			break;
		names = grown;
		names[n] = strndup(start, end - start);
		if (names[n])
			n++;
		names[n] = NULL;
	}
	pthread_rwlock_unlock(&table_lock);
	*count = n;
	return names;
}

/*
 * A directory that leads to prefixes: the backend's entries (if a mount
 * covers it) with every child prefix shown as the mounted root it is.
 */
static int opendir_merged(struct router_dir *d, const char *path,
			  const char *rel, char **children, size_t nchildren)
{
	struct stat st;
	int ret = 0;

	if (d->m) {
		struct vfs_dir *vd;

		ret = BCALL(d->m, ROP_OPENDIR,
			    d->m->ops->opendir(d->m->vm, rel, &vd));
		if (ret == 0) {
			struct fill_mix fm = {fill_collect, &d->buf, d->m->id};

			ret = BCALL(d->m, ROP_READDIR,
				    d->m->ops->readdir(d->m->vm, vd, 0,
						       fill_mixed, &fm));
			d->m->ops->releasedir(d->m->vm, vd);
		}
		if (ret == -ENOENT)
			ret = 0;
		if (ret < 0)
			return ret;
	}
	if (!vfs_dirbuf_has(&d->buf, ".")) {
		router_getattr(path, &st);
		if (vfs_dirbuf_add(&d->buf, ".", &st, 0) < 0 ||
		    vfs_dirbuf_add(&d->buf, "..", &st, 0) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < nchildren; i++) {
		char *cp;
		bool found = false;

		if (asprintf(&cp, "%s/%s", strcmp(path, "/") ? path : "",
			     children[i]) < 0)
			return -ENOMEM;
		if (router_getattr(cp, &st) < 0)
			virtual_stat(cp, &st);
		free(cp);
		for (size_t j = 0; j < d->buf.n; j++) {
			if (strcmp(d->buf.ents[j].name, children[i]) == 0) {
				d->buf.ents[j].st = st;
				d->buf.ents[j].flags = VFS_DIRENT_FULL;
				found = true;
			}
		}
		if (!found &&
		    vfs_dirbuf_add(&d->buf, children[i], &st, VFS_DIRENT_FULL))
			return -ENOMEM;
	}
	return 0;
}

int router_opendir(const char *path, struct router_dir **out)
{
	struct router_dir *d = calloc(1, sizeof(*d));
	const char *rel = "/";
	size_t nchildren;
	char **children;
	int ret;

	if (!d)
		return -ENOMEM;
	d->path = strdup(path);
	if (!d->path) {
		free(d);
		return -ENOMEM;
	}
	d->m = resolve(path, &rel);
	children = child_prefixes(path, &nchildren);
	if (nchildren) {
		ret = opendir_merged(d, path, rel, children, nchildren);
	} else if (!d->m) {
		ret = -ENOENT;
	} else {
		ret = BCALL(d->m, ROP_OPENDIR,
			    d->m->ops->opendir(d->m->vm, rel, &d->vd));
	}
	for (size_t i = 0; i < nchildren; i++)
		free(children[i]);
	free(children);
	if (ret < 0) {
		router_releasedir(d);
		return ret;
	}
	*out = d;
	return 0;
}

int router_readdir(struct router_dir *d, off_t off, vfs_fill_fn fill, void *ctx)
{
	struct fill_mix fm;

	if (off == 0 && d->read) {
		/*
		 * rewinddir(3): the stream must show the directory as it is
		 * now, as a new opendir would; listings read whole at opendir
		 * (NFS, SFTP, merged views) are read again.
		 */
		struct router_dir *nd, tmp;
		int ret = router_opendir(d->path, &nd);

		if (ret < 0)
			return ret;
		tmp = *d;
		*d = *nd;
		*nd = tmp;
		router_releasedir(nd);
	}
	d->read = true;
	if (!d->vd)
		return vfs_dirbuf_fill(&d->buf, off, fill, ctx);
	fm = (struct fill_mix){fill, ctx, d->m->id};
	return BCALL(d->m, ROP_READDIR,
		     d->m->ops->readdir(d->m->vm, d->vd, off, fill_mixed, &fm));
}

void router_releasedir(struct router_dir *d)
{
	if (d->vd)
		d->m->ops->releasedir(d->m->vm, d->vd);
	vfs_dirbuf_clear(&d->buf);
	if (d->m)
		mount_put(d->m);
	free(d->path);
	free(d);
}

/* ---- Open files ---------------------------------------------------- */

static int file_new(struct router_mount *m, struct vfs_file *vf,
		    struct router_file **out)
{
	struct router_file *f = malloc(sizeof(*f));

	if (!f) {
		m->ops->release(vf);
		return -ENOMEM;
	}
	vf->mount = m->vm;
	f->mount = m; /* takes over the caller's reference */
	f->vf = vf;
	f->refs = 1;
	atomic_fetch_add(&m->open_files, 1);
	*out = f;
	return 0;
}

int router_create(const char *path, int flags, mode_t mode,
		  const struct vfs_cred *cred, struct router_file **out,
		  struct stat *st)
{
	const char *rel;
	struct vfs_file *vf;
	int ret;
	struct router_mount *m = route_create(ROP_CREATE, path, &rel, &ret);

	if (!m)
		return ret;
	ret = BCALL(m, ROP_CREATE,
		    m->ops->create(m->vm, rel, flags,
				   create_mode(m, mode, cred), cred, &vf, st));
	if (ret < 0) {
		mount_put(m);
		return ret;
	}
	st->st_ino = mix_ino(m->id, st->st_ino);
	return file_new(m, vf, out);
}

int router_open(const char *path, int flags, struct router_file **out)
{
	const char *rel;
	struct router_mount *m;
	struct vfs_file *vf;
	bool writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	int ret;

	if (writing) {
		/* refused here when no write could follow (rops[ROP_WRITE]) */
		m = route_op(ROP_WRITE, path, &rel, &ret);
		if (!m)
			return ret;
	} else {
		m = resolve(path, &rel);
		if (!m)
			return is_virtual_dir(path) ? -EISDIR : -ENOENT;
	}
	ret = BCALL(m, ROP_OPEN, m->ops->open(m->vm, rel, flags, &vf));
	if (ret < 0) {
		mount_put(m);
		return ret;
	}
	return file_new(m, vf, out);
}

ssize_t router_read(struct router_file *f, void *buf, size_t size, off_t off)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!file_ready(f, ROP_READ, &ret))
		return ret;
	return BCALL(m, ROP_READ, m->ops->read(f->vf, buf, size, off));
}

int router_zerocopy_begin(struct router_file *f, bool write, size_t size,
			  off_t off, struct router_zerocopy *zc)
{
	enum rop op = write ? ROP_WRITE : ROP_READ;
	int ret;

	if (!file_ready(f, op, &ret))
		return ret;
	/* O_DIRECT: the backend may have to serve what the host fd cannot
	 * (backends/local.c: unaligned requests) */
	if (f->vf->host_fd < 0 || (f->vf->flags & O_DIRECT))
		return 0;
	/* what BCALL checks: the file system beneath cannot drop a write it
	 * was handed, so the last check is before handing it over */
	if (vfs_call_expired())
		return -ETIMEDOUT;
	router_file_get(f);
	*zc = (struct router_zerocopy){.fd = f->vf->host_fd,
				       .f = f,
				       .write = write,
				       .size = size,
				       .off = off};
	stats_begin(&f->mount->stats, &zc->t0);
	return 1;
}

void router_zerocopy_end(struct router_zerocopy *zc, ssize_t ret)
{
	struct router_file *f = zc->f;
	enum rop op = zc->write ? ROP_WRITE : ROP_READ;
	long bytes = (long)ret;
	struct stat st;

	if (!zc->write && ret >= 0) {
		/* the reply says nothing of what the kernel spliced; a
		 * read is short only at the end of the file */
		off_t left = 0;

		bytes = (long)zc->size;
		if (fstat(zc->fd, &st) == 0) {
			if (st.st_size > zc->off)
				left = st.st_size - zc->off;
			if (left < bytes)
				bytes = (long)left;
		}
	}
	stats_end(&f->mount->stats, rops[op].stat, &zc->t0, bytes);
	router_release(f);
}

int router_file_passthrough_fd(struct router_file *f)
{
	if (!(f->mount->vm->caps & VFS_CAP_PASSTHROUGH) || f->vf->uncached ||
	    atomic_load(&f->mount->revoked))
		return -1;
	return f->vf->host_fd;
}

ssize_t router_write(struct router_file *f, const void *buf, size_t size,
		     off_t off)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!file_ready(f, ROP_WRITE, &ret))
		return ret;
	return BCALL(m, ROP_WRITE, m->ops->write(f->vf, buf, size, off));
}

int router_fgetattr(struct router_file *f, struct stat *st)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!file_ready(f, ROP_FGETATTR, &ret))
		return ret;
	ret = BCALL(m, ROP_FGETATTR, m->ops->fgetattr(f->vf, st));
	if (ret == 0)
		st->st_ino = mix_ino(m->id, st->st_ino);
	return ret;
}

int router_flush(struct router_file *f)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!file_ready(f, ROP_FLUSH, &ret))
		return ret;
	return BCALL(m, ROP_FLUSH, m->ops->flush(f->vf));
}

int router_fsync(struct router_file *f, bool datasync)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!file_ready(f, ROP_FSYNC, &ret))
		return ret;
	return BCALL(m, ROP_FSYNC, m->ops->fsync(f->vf, datasync));
}

int router_fallocate(struct router_file *f, int mode, off_t off, off_t len)
{
	struct router_mount *m = f->mount;
	int ret;

	if (!file_ready(f, ROP_FALLOCATE, &ret))
		return ret;
	if ((mode & FALLOC_FL_PUNCH_HOLE) &&
	    !(m->vm->caps & VFS_CAP_PUNCH_HOLE))
		return -EOPNOTSUPP;
	return BCALL(m, ROP_FALLOCATE,
		     m->ops->fallocate(f->vf, mode, off, len));
}

off_t router_lseek(struct router_file *f, off_t off, int whence)
{
	struct router_mount *m = f->mount;
	struct stat st;
	int ret;

	if (file_ready(f, ROP_LSEEK, &ret))
		return BCALL(m, ROP_LSEEK, m->ops->lseek(f->vf, off, whence));
	if (ret != EMULATED)
		return ret;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	/* without hole information the whole file is data */
	ret = router_fgetattr(f, &st);
	if (ret < 0)
		return ret;
	if (off < 0 || off >= st.st_size)
		return -ENXIO;
	return whence == SEEK_DATA ? off : st.st_size;
}

/*
 * A backend without server-side copy: move the data here, in large
 * pieces, rather than let the kernel bounce every page through two FUSE
 * requests.  The backends keep many requests in flight for each piece.
 * At most COPY_MAX per call (callers loop on short counts), so one request
 * never holds a worker for long.
 *
 * Holes stay holes although these backends cannot report them: a piece
 * of zeros that would land at or past the destination's end of file
 * already reads as zeros there, so it is not sent; the size is set once
 * at the end instead.  That is what keeps an image clone sparse (vfsctl
 * copies into a file it sizes only afterwards).
 */
#define COPY_PIECE (1u << 20)
#define COPY_MAX   (64u << 20)

static bool all_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* the first 16 bytes checked one by one, the rest by overlapping
	 * comparison with themselves: fast, and any non-zero byte shows */
	for (size_t i = 0; i < len && i < 16; i++)
		if (p[i])
			return false;
	return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

static ssize_t copy_in_daemon(struct router_file *in, off_t off_in,
			      struct router_file *out, off_t off_out,
			      size_t len)
{
	void *buf = vfs_scratch(VFS_SCRATCH_ROUTER, COPY_PIECE);
	struct stat st;
	off_t eof, skipped_to = 0;
	size_t done = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = router_fgetattr(out, &st);
	if (ret < 0)
		return ret;
	eof = st.st_size;
	if (len > COPY_MAX)
		len = COPY_MAX;
	while (done < len) {
		size_t want = len - done < COPY_PIECE ? len - done : COPY_PIECE;
		off_t at = off_out + (off_t)done;
		ssize_t n = router_read(in, buf, want, off_in + (off_t)done);
		ssize_t w;

		if (n <= 0) {
			if (n < 0 && done == 0)
				return n;
			break;
		}
		if (at >= eof && all_zero(buf, (size_t)n)) {
			done += (size_t)n;
			skipped_to = at + n;
			continue;
		}
		w = router_write(out, buf, (size_t)n, at);
		if (w < 0) {
			if (!done)
				return w;
			break;
		}
		done += (size_t)w;
		if (at + w > eof)
			eof = at + w;
		if (w < n)
			break;
	}
	if (skipped_to > eof) {
		/* zeros at the end were skipped: the size must still say
		 * they were copied, and one written byte does that through
		 * the handle alone (no path needed, one block allocated) */
		static const char zero;

		ret = (int)router_write(out, &zero, 1, skipped_to - 1);
		if (ret < 0)
			return ret;
	}
	return (ssize_t)done;
}

ssize_t router_copy_range(struct router_file *in, off_t off_in,
			  struct router_file *out, off_t off_out, size_t len,
			  unsigned flags)
{
	struct router_mount *m = out->mount;
	int ret;

	if (atomic_load(&in->mount->revoked))
		return -EIO;
	if (in->mount != m)
		return atomic_load(&m->revoked) ? -EIO : -EXDEV;
	if (flags)
		return m->readonly ? -EROFS : -EINVAL;
	if (file_ready(out, ROP_COPY_RANGE, &ret))
		return BCALL(m, ROP_COPY_RANGE,
			     m->ops->copy_range(in->vf, off_in, out->vf,
						off_out, len, flags));
	if (ret != EMULATED)
		return ret;
	return copy_in_daemon(in, off_in, out, off_out, len);
}

int router_clone(const char *from, const char *to, struct vfs_error *err)
{
	const char *ra, *rb;
	struct router_mount *m;
	int ret;

	if (check_not_mount_point(from) < 0 || check_not_mount_point(to) < 0)
		return vfs_error_set(err, EBUSY, "%s or %s is a mount point",
				     from, to);
	m = route_pair(from, &ra, to, &rb, &ret);
	if (!m)
		return vfs_error_set(err, -ret, "%s to %s: %s", from, to,
				     strerror(-ret));
	if (!lacks(m, ROP_CLONE, &ret)) {
		ret = BCALL(m, ROP_CLONE, m->ops->clone(m->vm, ra, rb, err));
		mount_put(m);
	}
	if (ret == -EOPNOTSUPP && !err->msg[0])
		vfs_error_set(err, EOPNOTSUPP,
			      "%s: no server-side copy on this mount", from);
	return ret;
}

void router_file_get(struct router_file *f)
{
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

void router_release(struct router_file *f)
{
	struct router_mount *m = f->mount;
	int ret;

	if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	ret = BCALL_ALWAYS(m, ROP_RELEASE, m->ops->release(f->vf));

	if (ret < 0)
		log_debug("release on %s: %s", m->prefix, strerror(-ret));
	atomic_fetch_sub(&m->open_files, 1);
	mount_put(m);
	free(f);
}
