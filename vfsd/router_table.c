/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router_table.c - the mount table (see router.h): mounting and removing,
 * mount ids, the references that keep a mount alive, and finding the
 * mount of a path by longest prefix.  Lock order: router_internal.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/fault.h"
#include "guestfs/layer.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/path.h"
#include "lib/url.h"
#include "vfsd/qos.h"
#include "vfsd/router_internal.h"

static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct router_mount **mounts; /* protected by table_lock */
static size_t nmounts;               /* protected by table_lock */
static struct timespec start_time;

/*
 * Mount ids.  A mount's id goes into the top byte of every st_ino it
 * reports (mix_ino), so two mounts alive at once must never share one:
 * their files would look like one file to cp, tar and find.  Byte 0xff
 * belongs to virtual directories (rt_virtual_stat), which leaves ids
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

void rt_mount_get(struct router_mount *m)
{
	atomic_fetch_add(&m->refs, 1);
}

void rt_mount_put(struct router_mount *m)
{
	if (atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	m->ops->unmount(m->vm);
	fair_destroy(&m->fair);
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
		rt_mount_put(mounts[i]);
	free(mounts);
	mounts = NULL;
	nmounts = 0;
	pthread_rwlock_unlock(&table_lock);
}

void router_detach_faults(void)
{
	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts; i++)
		for (struct vfs_mount *vm = mounts[i]->vm; vm; vm = vm->lower)
			fault_detach(vm);
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
struct router_mount *rt_resolve(const char *path, const char **rel)
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
		rt_mount_get(best);
	pthread_rwlock_unlock(&table_lock);
	if (best) {
		*rel = best->plen == 1 ? path : path + best->plen;
		if (!**rel)
			*rel = "/";
	}
	return best;
}

bool rt_is_virtual_dir(const char *path)
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

bool rt_is_mount_point(const char *path)
{
	bool found = false;

	pthread_rwlock_rdlock(&table_lock);
	for (size_t i = 0; i < nmounts && !found; i++)
		found = strcmp(path, mounts[i]->prefix) == 0;
	pthread_rwlock_unlock(&table_lock);
	return found;
}

/* Names of prefixes directly beneath path, as a NULL-ended array. */
char **rt_child_prefixes(const char *path, size_t *count)
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

char **router_prefixes_beneath(const char *path)
{
	char **out;
	size_t n = 0;

	pthread_rwlock_rdlock(&table_lock);
	out = calloc(nmounts + 1, sizeof(*out));
	for (size_t i = 0; out && i < nmounts; i++) {
		if (!leads_to(path, mounts[i]->prefix))
			continue;
		out[n] = strdup(mounts[i]->prefix);
		if (!out[n]) {
			while (n)
				free(out[--n]);
			free(out);
			out = NULL;
			break;
		}
		n++;
	}
	pthread_rwlock_unlock(&table_lock);
	return out;
}

void rt_virtual_stat(const char *path, struct stat *st)
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
	struct vfs_opts opts = {0}, bopts = {0};
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
	/* the mount's I/O limits (qos.NAME) are the router's, the rest
	 * the backend's */
	ret = qos_from_opts(prefix, &opts, QOS_ORIGIN_CONFIG, what, true,
			    &bopts, err);
	if (ret == 0)
		ret = vfs_opts_validate(&bopts, m->ops->opts, what, err);
	if (ret == 0)
		ret = lease_check(m->ops, &bopts, what, err);
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

	ret = m->ops->mount(&url, &bopts, &m->vm, err);
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
	/* the image store over it: locks, image attributes */
	ret = image_layer_wrap(&m->vm, readonly, what, err);
	if (ret < 0)
		goto fail;
	m->ops = m->vm->ops;
	m->layered = true;
	{
		const struct vfs_mount *b = m->vm;

		while (b->lower)
			b = b->lower;
		fair_init(&m->fair, b->share_reqs, b->share_bytes,
			  qos_fair_opt(&opts));
		fair_set_ahead(&m->fair, b->share_ahead);
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
		rt_mount_put(m);
		m = NULL;
		goto fail;
	}
	log_info("mounted %s at %s%s", m->display ? m->display : url.raw,
		 m->prefix, readonly ? " (read-only)" : "");
	/* checked above: only memory can fail it, and the mount stays */
	if (qos_from_opts(m->prefix, &opts,
			  origin == ROUTER_ORIGIN_CONFIG ? QOS_ORIGIN_CONFIG
							 : QOS_ORIGIN_RUNTIME,
			  what, false, NULL, err) < 0)
		log_warn("%s: its I/O limits are not applied: %s", what,
			 err->msg);
	vfs_url_clear(&url);
	vfs_opts_clear(&opts);
	vfs_opts_clear(&bopts);
	return 0;
fail:
	free(m);
	free(prefix);
	vfs_url_clear(&url);
	vfs_opts_clear(&opts);
	vfs_opts_clear(&bopts);
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
		rt_mount_put(m);
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
	/* the mount's own limits go with it (a mount added there later
	 * brings its own) */
	qos_clear(m->prefix);
	/* the revoked files write nothing more: their locks must not be
	 * renewed as if they could */
	if (atomic_load(&m->revoked) && m->layered)
		image_layer_revoke(m->vm);
	/* calls paused by fault rules hold m: let them finish */
	for (struct vfs_mount *vm = m->vm; vm; vm = vm->lower)
		fault_detach(vm);
	rt_mount_put(m);
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
		rt_mount_get(m);
	pthread_rwlock_unlock(&table_lock);
	if (!m)
		return vfs_error_set(err, ENOENT, "%s is not mounted", prefix);
	/* the backend's instance is the one beneath the image store's */
	ret = fn(m->layered ? m->vm->lower : m->vm, ctx);
	rt_mount_put(m);
	return ret;
}

int router_with_path(const char *path,
		     int (*fn)(struct vfs_mount *vm, const char *rel,
			       void *ctx),
		     void *ctx)
{
	const char *rel;
	struct router_mount *m = rt_resolve(path, &rel);
	int ret;

	if (!m)
		return -ENOENT;
	ret = fn(m->vm, rel, ctx);
	rt_mount_put(m);
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
			.passthrough = rt_caps(m) & VFS_CAP_PASSTHROUGH,
			.ops = m->ops,
			.backend_ops = rt_bottom(m)->ops,
			.caps = rt_caps(m),
			.hidden = m->hidden,
			.origin = m->origin,
			.open_files = atomic_load(&m->open_files),
			.reconnects = __atomic_load_n(&rt_bottom(m)->reconnects,
						      __ATOMIC_RELAXED),
			.wb_max = __atomic_load_n(&rt_bottom(m)->wb_max,
						  __ATOMIC_RELAXED),
			.wb_shared_max = __atomic_load_n(
				&rt_bottom(m)->wb_shared_max, __ATOMIC_RELAXED),
			.wb_shared_max_bytes = __atomic_load_n(
				&rt_bottom(m)->wb_shared_max_bytes,
				__ATOMIC_RELAXED),
			.ra_budget = rt_bottom(m)->readahead_bytes,
			.ra_held = atomic_load_explicit(&m->ra_held,
							memory_order_relaxed),
			.since = m->since,
			.opts = &m->opts,
			.stats = &m->stats,
		};

		fair_snapshot(&m->fair, &v.fair);
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
		shared |= (rt_caps(mounts[i]) & VFS_CAP_SHARED) != 0;
	pthread_rwlock_unlock(&table_lock);
	return shared;
}

void router_timeouts(const char *path, double *attr, double *entry,
		     bool *shared)
{
	const char *rel;
	struct router_mount *m = rt_resolve(path, &rel);

	*attr = *entry = 1.0;
	if (shared)
		*shared = false;
	if (m) {
		*attr = m->vm->attr_timeout;
		*entry = m->vm->entry_timeout;
		if (shared)
			*shared = rt_caps(m) & VFS_CAP_SHARED;
		rt_mount_put(m);
	}
}

uint64_t router_ino_space(const char *path)
{
	const char *rel;
	struct router_mount *m = rt_resolve(path, &rel);
	uint64_t space = 0;

	if (m) {
		if (rt_caps(m) & VFS_CAP_STABLE_INO)
			space = m->space;
		rt_mount_put(m);
	}
	return space;
}
