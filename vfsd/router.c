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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/fault.h"
#include "vfsd/log.h"
#include "vfsd/router.h"
#include "vfsd/stats.h"
#include "vfsd/url.h"

/*
 * Run backend call `expr` on mount m, counted in its statistics as op.
 * Every backend call goes through here.  Past the calling thread's
 * deadline (backends/callctx.h: a write under a cross-host lock whose
 * lease ran out) nothing more is sent: whatever the backend.
 */
#define BCALL(m, op, expr)                                         \
	({                                                         \
		struct timespec t0_;                               \
		__typeof__(expr) r_ = -ETIMEDOUT;                  \
		if (!vfs_call_expired()) {                         \
			stats_begin(&(m)->stats, &t0_);            \
			r_ = (expr);                               \
			stats_end(&(m)->stats, (op), &t0_, (long)r_); \
		}                                                  \
		r_;                                                \
	})

/* The same for calls that free what the caller holds: always made. */
#define BCALL_ALWAYS(m, op, expr)                                  \
	({                                                         \
		struct timespec t0_;                               \
		stats_begin(&(m)->stats, &t0_);                    \
		__typeof__(expr) r_ = (expr);                      \
		stats_end(&(m)->stats, (op), &t0_, (long)r_);      \
		r_;                                                \
	})

struct router_mount {
	char *prefix;			/* normalised vfsd path, owned */
	size_t plen;
	char *display;			/* URL without secrets, owned */
	const struct vfs_backend_ops *ops;
	struct vfs_mount *vm;		/* owned; unmount()ed on last put */
	bool readonly;
	bool hidden;			/* left out of its parent's listing */
	unsigned id;			/* slot mixed into st_ino, see
					 * slot_get(); 0 until inserted */
	uint64_t space;			/* inode space: never reused */
	atomic_uint_fast64_t refs;	/* the table holds one */
	atomic_uint_fast64_t open_files;
	atomic_bool revoked;		/* removed by force: files fail EIO */
	enum router_origin origin;
	char *url;			/* as configured (may hold options) */
	struct vfs_opts opts;		/* config options as given, owned */
	struct timespec since;		/* when it was mounted */
	struct mount_stats stats;
};

struct router_dir {
	struct router_mount *m;		/* ref held, or NULL (virtual) */
	struct vfs_dir *vd;		/* backend stream, or NULL */
	struct vfs_dirbuf buf;		/* merged listing when vd == NULL */
	char *path;			/* owned, for rewinddir */
	bool read;			/* entries were asked for */
};

static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct router_mount **mounts;	/* protected by table_lock */
static size_t nmounts;			/* protected by table_lock */
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
static bool id_used[MOUNT_ID_MAX + 1];	/* protected by id_lock */
static unsigned id_next = 1;		/* protected by id_lock */
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

/* path equals prefix, or lies beneath it */
static bool under_prefix(const char *path, const char *prefix, size_t plen)
{
	if (plen == 1)
		return true;
	return strncmp(path, prefix, plen) == 0 &&
	       (path[plen] == '\0' || path[plen] == '/');
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

		if (under_prefix(path, m->prefix, m->plen) &&
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
	uint64_t h = 1469598103934665603ULL;

	for (const char *p = path; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
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
		char *parent = strdup(path), *slash = parent ? strrchr(parent, '/') : NULL;

		if (slash)
			slash[slash == parent ? 1 : 0] = '\0';
		*err = is_virtual_dir(path) || (parent && is_virtual_dir(parent))
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
 * the lease after sending it (guestfs/lock.c), so a renewal that takes a
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
	return vfs_error_set(err, EINVAL,
			     "%s: timeout = %ld s is too long for lock_lease = %d s: a lock holder must be able to renew within 2/3 of the lease, so a request may take at most lock_lease/3 = %d s; lower timeout or raise lock_lease to %ld or more",
			     what, timeout, lock_lease, lock_lease / 3,
			     timeout * 3);
}

int router_add(const char *prefix_in, const char *url_s,
	       const struct vfs_opts *cfg_opts, bool readonly,
	       enum router_origin origin, struct vfs_error *err)
{
	struct router_mount *m = NULL;
	struct vfs_opts opts = { 0 };
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
				    "%s: unknown URL scheme '%s' in '%s' (known: file, sftp, nfs)",
				    what, url.scheme, url.raw);
		goto fail;
	}
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
		ret = vfs_error_set(err, EEXIST, "%s: prefix is already mounted",
				    what);
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
			vfs_error_set(err, EMFILE,
				      "%s: too many mounts at once (at most %d)",
				      what, MOUNT_ID_MAX);
		else
			vfs_error_set(err, -ret, "%s: %s", what,
				      ret == -EEXIST ? "prefix is already mounted"
						     : strerror(-ret));
		prefix = NULL;	/* m owns it now */
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

int router_add_internal(const char *prefix, struct vfs_mount *vm,
			bool visible, struct vfs_error *err)
{
	struct router_mount *m = calloc(1, sizeof(*m));
	int ret;

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
		return vfs_error_set(err, EINVAL, "'%s' is not an absolute prefix",
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
			ret = vfs_error_set(err, EPERM,
					    "%s is vfsd's own and cannot be removed",
					    prefix);
			break;
		}
		open = atomic_load(&m->open_files);
		if (open && !force) {
			ret = vfs_error_set(err, EBUSY,
					    "%s: %llu file%s open under it (--force makes them fail with EIO)",
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
		const char *state = m->ops->state ? m->ops->state(m->vm)
						  : "connected";
		struct router_view v = {
			.prefix = m->prefix,
			.url = m->url,
			.display = m->display,
			.backend = m->ops->name,
			.state = state,
			.readonly = m->readonly,
			.passthrough = m->vm->caps & VFS_CAP_PASSTHROUGH,
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
		ret = BCALL(m, VOP_GETATTR, m->ops->getattr(m->vm, rel, st));
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
		m = f->mount;
		if (m->readonly)
			return -EROFS;
		mount_get(m);
		if (path) {
			struct router_mount *pm = resolve(path, &rel);

			if (pm != m)
				rel = NULL;
			if (pm)
				mount_put(pm);
		}
	} else {
		m = route_rw(path, &rel, &ret);
		if (!m)
			return ret;
	}
	/* with a handle, no path (or one on another mount) is NULL: never
	 * "/", which a backend could take for the mount's root */
	ret = m->ops->setattr
		      ? BCALL(m, VOP_SETATTR,
			      m->ops->setattr(m->vm, rel, f ? f->vf : NULL, sa,
					      st))
		      : -ENOSYS;
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

	if (!m)
		return is_virtual_dir(path) ? -EINVAL : -ENOENT;
	ret = m->ops->readlink ? BCALL(m, VOP_READLINK,
				       m->ops->readlink(m->vm, rel, buf, size))
			       : -EINVAL;
	mount_put(m);
	return ret;
}

/* Common frame of the calls that create one name. */
#define ROUTE_CREATE(path, call)                                   \
	do {                                                       \
		const char *rel;                                   \
		struct router_mount *m;                            \
		int ret_ = check_not_mount_point(path);            \
		if (ret_ < 0)                                      \
			return ret_ == -EBUSY ? -EEXIST : ret_;    \
		m = route_rw(path, &rel, &ret_);                   \
		if (!m)                                            \
			return ret_;                               \
		ret_ = (call);                                     \
		if (ret_ == 0)                                     \
			st->st_ino = mix_ino(m->id, st->st_ino);   \
		mount_put(m);                                      \
		return ret_;                                       \
	} while (0)

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
	ROUTE_CREATE(path, m->ops->mknod
				   ? BCALL(m, VOP_MKNOD,
					   m->ops->mknod(m->vm, rel,
							 create_mode(m, mode,
								     cred),
							 rdev,
							 cred, st))
				   : -EPERM);
}

int router_mkdir(const char *path, mode_t mode, const struct vfs_cred *cred,
		 struct stat *st)
{
	ROUTE_CREATE(path, m->ops->mkdir
				   ? BCALL(m, VOP_MKDIR,
					   m->ops->mkdir(m->vm, rel,
							 create_mode(m, mode,
								     cred),
							 cred, st))
				   : -EPERM);
}

int router_symlink(const char *target, const char *path,
		   const struct vfs_cred *cred, struct stat *st)
{
	ROUTE_CREATE(path, m->ops->symlink
				   ? BCALL(m, VOP_SYMLINK,
					   m->ops->symlink(m->vm, target, rel,
							   cred, st))
				   : -EPERM);
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
	if (!m)
		return ret;
	ret = m->ops->link ? BCALL(m, VOP_LINK, m->ops->link(m->vm, ra, rb, st))
			   : -EPERM;
	if (ret == 0)
		st->st_ino = mix_ino(m->id, st->st_ino);
	mount_put(m);
	return ret;
}

static int route_remove(const char *path, bool dir)
{
	const char *rel;
	struct router_mount *m;
	int ret = check_not_mount_point(path);

	if (ret < 0)
		return ret;
	m = route_rw(path, &rel, &ret);
	if (!m)
		return ret;
	if (dir)
		ret = m->ops->rmdir
			      ? BCALL(m, VOP_RMDIR, m->ops->rmdir(m->vm, rel))
			      : -EPERM;
	else
		ret = m->ops->unlink
			      ? BCALL(m, VOP_UNLINK, m->ops->unlink(m->vm, rel))
			      : -EPERM;
	mount_put(m);
	return ret;
}

int router_unlink(const char *path)
{
	return route_remove(path, false);
}

int router_rmdir(const char *path)
{
	return route_remove(path, true);
}

int router_rename(const char *from, const char *to, unsigned flags)
{
	const char *ra, *rb;
	struct router_mount *m;
	int ret;

	if (check_not_mount_point(from) < 0 || check_not_mount_point(to) < 0)
		return -EBUSY;
	m = route_pair(from, &ra, to, &rb, &ret);
	if (!m)
		return ret;
	if (!m->ops->rename)
		ret = -EPERM;
	else if (flags && !(m->vm->caps & VFS_CAP_RENAME_FLAGS) &&
		 flags != RENAME_NOREPLACE)
		ret = -EINVAL;
	else
		ret = BCALL(m, VOP_RENAME, m->ops->rename(m->vm, ra, rb, flags));
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
	ret = m->ops->statfs
		      ? BCALL(m, VOP_STATFS, m->ops->statfs(m->vm, rel, st))
		      : -ENOSYS;
	mount_put(m);
	return ret;
}

ssize_t router_getxattr(const char *path, const char *name, void *buf,
			size_t size)
{
	const char *rel;
	struct router_mount *m = resolve(path, &rel);
	ssize_t ret;

	if (!m)
		return -ENODATA;
	ret = m->ops->getxattr
		      ? BCALL(m, VOP_GETXATTR,
			      m->ops->getxattr(m->vm, rel, name, buf, size))
		      : -EOPNOTSUPP;
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

	if (!m)
		return 0;
	ret = m->ops->listxattr
		      ? BCALL(m, VOP_LISTXATTR,
			      m->ops->listxattr(m->vm, rel, buf, size))
		      : 0;
	mount_put(m);
	if (ret == -ENOENT && is_virtual_dir(path))
		ret = 0;
	return ret;
}

int router_setxattr(const char *path, const char *name, const void *value,
		    size_t size, int flags)
{
	const char *rel;
	struct router_mount *m = route_rw(path, &rel, &(int){ 0 });
	int ret;

	if (!m)
		return -EROFS;
	ret = m->ops->setxattr
		      ? BCALL(m, VOP_SETXATTR,
			      m->ops->setxattr(m->vm, rel, name, value, size,
					       flags))
		      : -EOPNOTSUPP;
	mount_put(m);
	return ret;
}

int router_removexattr(const char *path, const char *name)
{
	const char *rel;
	struct router_mount *m = route_rw(path, &rel, &(int){ 0 });
	int ret;

	if (!m)
		return -EROFS;
	ret = m->ops->removexattr
		      ? BCALL(m, VOP_REMOVEXATTR,
			      m->ops->removexattr(m->vm, rel, name))
		      : -EOPNOTSUPP;
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

	if (d->m && d->m->ops->opendir) {
		struct vfs_dir *vd;

		ret = BCALL(d->m, VOP_OPENDIR,
			    d->m->ops->opendir(d->m->vm, rel, &vd));
		if (ret == 0) {
			struct fill_mix fm = { fill_collect, &d->buf, d->m->id };

			ret = BCALL(d->m, VOP_READDIR,
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
	} else if (!d->m->ops->opendir) {
		ret = -ENOSYS;
	} else {
		ret = BCALL(d->m, VOP_OPENDIR,
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

int router_readdir(struct router_dir *d, off_t off, vfs_fill_fn fill,
		   void *ctx)
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
	fm = (struct fill_mix){ fill, ctx, d->m->id };
	return BCALL(d->m, VOP_READDIR,
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
	f->mount = m;	/* takes over the caller's reference */
	f->vf = vf;
	f->refs = 1;
	f->pt_mode = 0;	/* PT_UNTRACKED, until fuse_ops.c opens it */
	f->pt_kill_on_close = false;
	f->wo_direct = false;
	atomic_fetch_add(&m->open_files, 1);
	*out = f;
	return 0;
}

int router_create(const char *path, int flags, mode_t mode,
		  const struct vfs_cred *cred, struct router_file **out,
		  struct stat *st)
{
	const char *rel;
	struct router_mount *m;
	struct vfs_file *vf;
	int ret = check_not_mount_point(path);

	if (ret < 0)
		return -EEXIST;
	m = route_rw(path, &rel, &ret);
	if (!m)
		return ret;
	if (!m->ops->create) {
		mount_put(m);
		return -EPERM;
	}
	ret = BCALL(m, VOP_CREATE,
		    m->ops->create(m->vm, rel, flags,
				   create_mode(m, mode, cred), cred, &vf,
				   st));
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
		m = route_rw(path, &rel, &ret);
		if (!m)
			return ret;
	} else {
		m = resolve(path, &rel);
		if (!m)
			return is_virtual_dir(path) ? -EISDIR : -ENOENT;
	}
	ret = m->ops->open
		      ? BCALL(m, VOP_OPEN, m->ops->open(m->vm, rel, flags, &vf))
		      : -ENOSYS;
	if (ret < 0) {
		mount_put(m);
		return ret;
	}
	return file_new(m, vf, out);
}

/* A file of a mount removed by force answers EIO from then on. */
#define FILE_CHECK(f)                                        \
	do {                                                 \
		if (atomic_load(&(f)->mount->revoked))       \
			return -EIO;                         \
	} while (0)

ssize_t router_read(struct router_file *f, void *buf, size_t size, off_t off)
{
	struct router_mount *m = f->mount;

	FILE_CHECK(f);
	if (!m->ops->read)
		return -ENOSYS;
	return BCALL(m, VOP_READ, m->ops->read(f->vf, buf, size, off));
}

int router_file_host_fd(struct router_file *f)
{
	if (atomic_load(&f->mount->revoked))
		return -1;
	return f->vf->host_fd;
}

int router_file_passthrough_fd(struct router_file *f)
{
	if (!(f->mount->vm->caps & VFS_CAP_PASSTHROUGH) || f->vf->uncached)
		return -1;
	return router_file_host_fd(f);
}

void router_account(struct router_file *f, enum vfs_op op,
		    const struct timespec *t0, long ret)
{
	stats_end(&f->mount->stats, op, t0, ret);
}

void router_account_begin(struct router_file *f, struct timespec *t0)
{
	stats_begin(&f->mount->stats, t0);
}

ssize_t router_write(struct router_file *f, const void *buf, size_t size,
		     off_t off)
{
	struct router_mount *m = f->mount;

	FILE_CHECK(f);
	if (m->readonly)
		return -EROFS;
	if (!m->ops->write)
		return -ENOSYS;
	return BCALL(m, VOP_WRITE, m->ops->write(f->vf, buf, size, off));
}

int router_fgetattr(struct router_file *f, struct stat *st)
{
	struct router_mount *m = f->mount;
	int ret;

	FILE_CHECK(f);
	ret = m->ops->fgetattr
		      ? BCALL(m, VOP_GETATTR, m->ops->fgetattr(f->vf, st))
		      : -ENOSYS;
	if (ret == 0)
		st->st_ino = mix_ino(m->id, st->st_ino);
	return ret;
}

int router_flush(struct router_file *f)
{
	struct router_mount *m = f->mount;

	FILE_CHECK(f);
	return m->ops->flush ? BCALL(m, VOP_FLUSH, m->ops->flush(f->vf)) : 0;
}

int router_fsync(struct router_file *f, bool datasync)
{
	struct router_mount *m = f->mount;

	FILE_CHECK(f);
	return m->ops->fsync
		       ? BCALL(m, VOP_FSYNC, m->ops->fsync(f->vf, datasync))
		       : -ENOSYS;
}

int router_fallocate(struct router_file *f, int mode, off_t off, off_t len)
{
	struct router_mount *m = f->mount;

	FILE_CHECK(f);
	if (m->readonly)
		return -EROFS;
	return m->ops->fallocate
		       ? BCALL(m, VOP_FALLOCATE,
			       m->ops->fallocate(f->vf, mode, off, len))
		       : -EOPNOTSUPP;
}

off_t router_lseek(struct router_file *f, off_t off, int whence)
{
	struct router_mount *m = f->mount;
	struct stat st;
	int ret;

	FILE_CHECK(f);
	if (m->ops->lseek)
		return BCALL(m, VOP_LSEEK, m->ops->lseek(f->vf, off, whence));
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

	FILE_CHECK(in);
	FILE_CHECK(out);
	if (in->mount != m)
		return -EXDEV;
	if (m->readonly)
		return -EROFS;
	if (flags)
		return -EINVAL;
	if (m->ops->copy_range)
		return BCALL(m, VOP_COPY_RANGE,
			     m->ops->copy_range(in->vf, off_in, out->vf,
						off_out, len, flags));
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
	if (!m->ops->clone)
		ret = -EOPNOTSUPP;
	else
		ret = BCALL(m, VOP_CLONE, m->ops->clone(m->vm, ra, rb, err));
	mount_put(m);
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
	ret = BCALL_ALWAYS(m, VOP_RELEASE, m->ops->release(f->vf));

	if (ret < 0)
		log_debug("release on %s: %s", m->prefix, strerror(-ret));
	atomic_fetch_sub(&m->open_files, 1);
	mount_put(m);
	free(f);
}
