/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_remote_unit.c - the connection-pool core the network backends
 * share (backends/remote/pool.c): state names and transitions, the
 * reconnect count, the backoff policy, the retry-once rule, the option
 * rows both drivers declare (backends/remote/opts.h), and the cache's
 * generations (backends/remote/cache.c), and the write-behind core
 * (backends/remote/wb.c): window, ordering, coalescing, sticky errors,
 * drains.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/callctx.h"
#include "backends/remote/cache.h"
#include "backends/remote/opts.h"
#include "backends/remote/pool.h"
#include "backends/remote/slots.h"
#include "backends/remote/wb.h"

static struct vfs_mount vm;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void setup(struct remote_pool *rp, unsigned first, unsigned max)
{
	memset(&vm, 0, sizeof(vm));
	remote_pool_init(rp, &vm, "test://server/", &cond, NULL, first, max);
}

START_TEST(test_state_names)
{
	ck_assert_str_eq(remote_state_name(REMOTE_CONNECTED), "connected");
	ck_assert_str_eq(remote_state_name(REMOTE_RECONNECTING),
			 "reconnecting");
	ck_assert_str_eq(remote_state_name(REMOTE_DOWN), "down");
}
END_TEST

START_TEST(test_transitions_and_count)
{
	struct remote_pool rp;

	setup(&rp, 250, 5000);
	pthread_mutex_lock(&lock);
	ck_assert_int_eq(rp.state, REMOTE_CONNECTED);
	/* a pool member's first connection is no reconnect */
	remote_pool_connected_locked(&rp, false);
	ck_assert_uint_eq(vm.reconnects, 0);
	/* a broken connection: reconnecting, then a new one counts */
	remote_pool_broken_locked(&rp, false, "reset");
	ck_assert_int_eq(rp.state, REMOTE_RECONNECTING);
	remote_pool_connected_locked(&rp, true);
	ck_assert_int_eq(rp.state, REMOTE_CONNECTED);
	ck_assert_uint_eq(vm.reconnects, 1);
	/* a timeout: down at once, from any state */
	remote_pool_broken_locked(&rp, false, "reset");
	remote_pool_broken_locked(&rp, true, "no answer");
	ck_assert_int_eq(rp.state, REMOTE_DOWN);
	/* a broken connection while down does not hide the outage */
	remote_pool_broken_locked(&rp, false, "reset");
	ck_assert_int_eq(rp.state, REMOTE_DOWN);
	remote_pool_connected_locked(&rp, true);
	ck_assert_int_eq(rp.state, REMOTE_CONNECTED);
	ck_assert_uint_eq(vm.reconnects, 2);
	pthread_mutex_unlock(&lock);
}
END_TEST

/* Back to connected from reconnecting or down, the cache is dropped (and
 * so is a put of a fetch made before); connected again while connected,
 * it is not. */
START_TEST(test_connected_again_clears_cache)
{
	struct remote_cache *c = remote_cache_new(60);
	struct stat st = {.st_mode = S_IFREG | 0644, .st_size = 1}, got;
	struct remote_pool rp;
	uint64_t gen;

	ck_assert_ptr_nonnull(c);
	memset(&vm, 0, sizeof(vm));
	remote_pool_init(&rp, &vm, "test://server/", &cond, c, 250, 5000);
	pthread_mutex_lock(&lock);
	remote_cache_put_attr(c, "/a", &st, remote_cache_gen(c));
	remote_pool_connected_locked(&rp, false);
	ck_assert(remote_cache_get_attr(c, "/a", &got));
	for (int i = 0; i < 2; i++) {
		/* i == 0: a connection broke; 1: a call timed out */
		gen = remote_cache_gen(c);
		remote_pool_broken_locked(&rp, i == 1, "gone");
		/* still served while the server is away */
		ck_assert(remote_cache_get_attr(c, "/a", &got));
		remote_pool_connected_locked(&rp, true);
		ck_assert(!remote_cache_get_attr(c, "/a", &got));
		remote_cache_put_attr(c, "/a", &st, gen);
		ck_assert(!remote_cache_get_attr(c, "/a", &got));
		remote_cache_put_attr(c, "/a", &st, remote_cache_gen(c));
	}
	pthread_mutex_unlock(&lock);
	remote_cache_free(c);
}
END_TEST

START_TEST(test_backoff)
{
	struct remote_pool rp;

	setup(&rp, 1000, 10000);
	pthread_mutex_lock(&lock);
	/* a timeout without an attempt holds the first delay */
	ck_assert_uint_eq(remote_pool_backoff_hold_locked(&rp), 1000);
	ck_assert_uint_eq(remote_pool_backoff_hold_locked(&rp), 1000);
	/* failed attempts double it up to the maximum */
	ck_assert_uint_eq(remote_pool_backoff_next_locked(&rp), 2000);
	ck_assert_uint_eq(remote_pool_backoff_next_locked(&rp), 4000);
	ck_assert_uint_eq(remote_pool_backoff_next_locked(&rp), 8000);
	ck_assert_uint_eq(remote_pool_backoff_next_locked(&rp), 10000);
	ck_assert_uint_eq(remote_pool_backoff_next_locked(&rp), 10000);
	ck_assert_uint_eq(remote_pool_backoff_hold_locked(&rp), 10000);
	/* a success starts over */
	remote_pool_connected_locked(&rp, true);
	ck_assert_uint_eq(remote_pool_backoff_next_locked(&rp), 1000);
	remote_pool_backoff_reset_locked(&rp);
	ck_assert_uint_eq(remote_pool_backoff_next_locked(&rp), 1000);
	pthread_mutex_unlock(&lock);
}
END_TEST

START_TEST(test_retry_once)
{
	int tries = 0;

	/* not broken, or a timeout, or success: never */
	ck_assert(!remote_retry_once(-EIO, false, &tries));
	ck_assert(!remote_retry_once(-ETIMEDOUT, true, &tries));
	ck_assert(!remote_retry_once(0, true, &tries));
	ck_assert_int_eq(tries, 0);
	/* a broken connection: once */
	ck_assert(remote_retry_once(-EIO, true, &tries));
	ck_assert(!remote_retry_once(-EIO, true, &tries));
}
END_TEST

static long ms_until(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (t->tv_sec - now.tv_sec) * 1000 +
	       (t->tv_nsec - now.tv_nsec) / 1000000;
}

START_TEST(test_deadline)
{
	struct remote_deadline d;
	struct vfs_callctx old;

	/* no caller deadline: the mount's timeout */
	remote_deadline_start(&d, 20000);
	ck_assert_int_eq(d.budget_ms, 20000);
	ck_assert_int_gt(ms_until(&d.at), 19000);
	/* a caller's sooner deadline wins */
	old = vfs_callctx_push(vfs_mono_ns() + 2000000000LL, false);
	remote_deadline_start(&d, 20000);
	ck_assert_int_le(d.budget_ms, 2000);
	ck_assert_int_gt(d.budget_ms, 1000);
	ck_assert_int_le(ms_until(&d.at), 2000);
	vfs_callctx_pop(old);
	/* a passed one: nothing left, and a wait ends at once */
	old = vfs_callctx_push(vfs_mono_ns() - 1000000, false);
	remote_deadline_start(&d, 20000);
	ck_assert_int_le(d.budget_ms, 0);
	ck_assert_int_le(ms_until(&d.at), 0);
	vfs_callctx_pop(old);
}
END_TEST

START_TEST(test_option_rows)
{
	static const struct vfs_opt_spec rows[] = {
		REMOTE_OPT_CONNECTIONS,
		REMOTE_OPT_TIMEOUT,
		REMOTE_OPT_CACHE_TTL,
		REMOTE_OPT_WRITE_BEHIND,
		{0},
	};
	const char *drivers[] = {"sftp", "nfs"};

	/* each driver's table has every row, as the core declares it */
	for (size_t d = 0; d < 2; d++) {
		const struct vfs_backend_ops *ops = backend_find(drivers[d]);

		ck_assert_ptr_nonnull(ops);
		for (const struct vfs_opt_spec *r = rows; r->name; r++) {
			const struct vfs_opt_spec *o = ops->opts;

			while (o->name && strcmp(o->name, r->name) != 0)
				o++;
			ck_assert_msg(o->name, "%s lacks %s", drivers[d],
				      r->name);
			ck_assert_int_eq(o->type, r->type);
			ck_assert_str_eq(o->def, r->def);
			ck_assert_int_eq(o->min, r->min);
			ck_assert_int_eq(o->max, r->max);
		}
	}
}
END_TEST

/*
 * A reader that fetched before a change must not store its answer after
 * the change's invalidation: neither an attribute nor a listing, nor
 * after an invalidation that found nothing to drop, nor after a clear.
 */
START_TEST(test_cache_put_after_invalidate)
{
	struct remote_cache *c = remote_cache_new(60);
	struct remote_listing *l = remote_listing_new();
	struct stat st = {.st_mode = S_IFREG | 0644, .st_size = 1}, got;
	uint64_t gen;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(l);
	/* cached, then a reader fetches, a write invalidates, the reader
	 * puts its old answer */
	remote_cache_put_attr(c, "/d/f", &st, remote_cache_gen(c));
	gen = remote_cache_gen(c);
	remote_cache_invalidate(c, "/d/f");
	remote_cache_put_attr(c, "/d/f", &st, gen);
	ck_assert(!remote_cache_get_attr(c, "/d/f", &got));
	/* the same with nothing cached when the write came */
	gen = remote_cache_gen(c);
	remote_cache_invalidate(c, "/d/g");
	remote_cache_put_attr(c, "/d/g", &st, gen);
	ck_assert(!remote_cache_get_attr(c, "/d/g", &got));
	/* a rename (a new name in /d) drops a listing of /d fetched before */
	gen = remote_cache_gen(c);
	remote_cache_invalidate_name(c, "/d/h");
	remote_cache_put_listing(c, "/d", l, gen);
	ck_assert_ptr_null(remote_cache_get_listing(c, "/d"));
	remote_cache_invalidate_dir(c, "/e");
	remote_cache_put_listing(c, "/e", l, gen);
	ck_assert_ptr_null(remote_cache_get_listing(c, "/e"));
	/* a clear drops every older fetch */
	gen = remote_cache_gen(c);
	remote_cache_clear(c);
	remote_cache_put_attr(c, "/x", &st, gen);
	ck_assert(!remote_cache_get_attr(c, "/x", &got));
	/* a fetch after the change is kept, and so is one that saw no
	 * change of its path */
	gen = remote_cache_gen(c);
	remote_cache_put_attr(c, "/d/f", &st, gen);
	ck_assert(remote_cache_get_attr(c, "/d/f", &got));
	remote_cache_put_listing(c, "/d", l, gen);
	ck_assert_ptr_nonnull(remote_cache_get_listing(c, "/d"));
	remote_listing_put(c, l); /* the reference get returned */
	remote_listing_put(c, l); /* ours */
	remote_cache_free(c);
}
END_TEST

/*
 * Attributes a change of our own was answered with: stored after the
 * change's own invalidation (which a plain put with a gen taken before
 * the change would count against it), but not when anything else
 * invalidated the path, or cleared the cache, since the gen was taken.
 */
START_TEST(test_cache_invalidate_put)
{
	struct remote_cache *c = remote_cache_new(60);
	struct remote_listing *l = remote_listing_new();
	struct stat old = {.st_mode = S_IFREG | 0644, .st_size = 1};
	struct stat st = {.st_mode = S_IFREG | 0644, .st_size = 2}, got;
	struct stat dir = {.st_mode = S_IFDIR | 0755};
	uint64_t gen;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(l);
	remote_cache_put_attr(c, "/d/f", &old, remote_cache_gen(c));
	remote_cache_put_attr(c, "/d", &dir, remote_cache_gen(c));
	remote_cache_put_listing(c, "/d", l, remote_cache_gen(c));
	/* our own change (a new name): the new attributes are stored, the
	 * parent's listing and attributes dropped */
	gen = remote_cache_gen(c);
	remote_cache_invalidate_put(c, "/d/f", true, &st, gen);
	ck_assert(remote_cache_get_attr(c, "/d/f", &got));
	ck_assert_int_eq(got.st_size, 2);
	ck_assert_ptr_null(remote_cache_get_listing(c, "/d"));
	ck_assert(!remote_cache_get_attr(c, "/d", &got));
	/* without `name` the parent's attributes stay */
	remote_cache_put_attr(c, "/d", &dir, remote_cache_gen(c));
	gen = remote_cache_gen(c);
	remote_cache_invalidate_put(c, "/d/f", false, &old, gen);
	ck_assert(remote_cache_get_attr(c, "/d/f", &got));
	ck_assert_int_eq(got.st_size, 1);
	ck_assert(remote_cache_get_attr(c, "/d", &got));
	/* another call invalidated the path between our request and the
	 * put: what we were answered may predate its change */
	gen = remote_cache_gen(c);
	remote_cache_invalidate(c, "/d/f");
	remote_cache_invalidate_put(c, "/d/f", false, &st, gen);
	ck_assert(!remote_cache_get_attr(c, "/d/f", &got));
	/* the same with an old entry there: it goes too */
	remote_cache_put_attr(c, "/d/f", &old, remote_cache_gen(c));
	gen = remote_cache_gen(c);
	remote_cache_invalidate_name(c, "/d/f");
	remote_cache_put_attr(c, "/d/f", &old, remote_cache_gen(c));
	remote_cache_invalidate_put(c, "/d/f", true, &st, gen);
	ck_assert(!remote_cache_get_attr(c, "/d/f", &got));
	/* a clear since the gen: likewise */
	gen = remote_cache_gen(c);
	remote_cache_clear(c);
	remote_cache_invalidate_put(c, "/d/f", false, &st, gen);
	ck_assert(!remote_cache_get_attr(c, "/d/f", &got));
	/* and the gen of a put right after stays good: ours stamped the
	 * path before the later put's gen */
	gen = remote_cache_gen(c);
	remote_cache_invalidate_put(c, "/d/f", false, &st, gen);
	remote_cache_put_attr(c, "/d/f", &old, remote_cache_gen(c));
	ck_assert(remote_cache_get_attr(c, "/d/f", &got));
	ck_assert_int_eq(got.st_size, 1);
	remote_listing_put(c, l);
	remote_cache_free(c);

	/* no cache: nothing is stored */
	c = remote_cache_new(0);
	ck_assert_ptr_nonnull(c);
	remote_cache_invalidate_put(c, "/d/f", false, &st, remote_cache_gen(c));
	ck_assert(!remote_cache_get_attr(c, "/d/f", &got));
	remote_cache_free(c);
}
END_TEST

/* A listing of /d in a cache that tracks names, with the entries given. */
static void names_list(struct remote_cache *c, const char *dir,
		       const char *const *names)
{
	struct remote_listing *l = remote_listing_new();
	struct stat st = {.st_mode = S_IFREG | 0644};

	ck_assert_ptr_nonnull(l);
	for (; *names; names++)
		ck_assert_int_eq(vfs_dirbuf_add(&l->db, *names, &st, 0), 0);
	remote_cache_put_listing(c, dir, l, remote_cache_gen(c));
	remote_listing_put(c, l);
}

/*
 * Names of a listed directory (remote_cache_track_names): a name the
 * listing lacks is absent, until a change of ours or a lookup says
 * otherwise; a change the cache cannot follow forgets the directory.
 */
START_TEST(test_cache_names)
{
	static const char *const ab[] = {"a", "b", NULL};
	struct remote_cache *c = remote_cache_new(60);
	struct stat st = {.st_mode = S_IFREG | 0644}, got;
	uint64_t gen;
	char *dir;

	ck_assert_ptr_nonnull(c);
	/* not opted in: never absent, never listed */
	names_list(c, "/d", ab);
	ck_assert(!remote_cache_absent(c, "/d/x"));
	for (int i = 0; i < 10; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/d/x"));
	remote_cache_free(c);

	c = remote_cache_new(60);
	ck_assert_ptr_nonnull(c);
	remote_cache_track_names(c);
	/* unknown directory: nothing is absent */
	ck_assert(!remote_cache_absent(c, "/d/x"));
	names_list(c, "/d", ab);
	ck_assert(remote_cache_absent(c, "/d/x"));
	ck_assert(!remote_cache_absent(c, "/d/a"));
	ck_assert(!remote_cache_absent(c, "/d/b"));
	/* other directories are not known */
	ck_assert(!remote_cache_absent(c, "/e/x"));
	ck_assert(!remote_cache_absent(c, "/d/a/x"));
	/* the root's children */
	names_list(c, "/", ab);
	ck_assert(remote_cache_absent(c, "/x"));
	ck_assert(!remote_cache_absent(c, "/a"));
	/* the root is no name of any directory */
	ck_assert(!remote_cache_absent(c, "/"));
	for (int i = 0; i < 10; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/"));

	/* a name we made is present at once, the directory stays known */
	gen = remote_cache_gen(c);
	remote_cache_invalidate_put(c, "/d/x", true, &st, gen);
	ck_assert(!remote_cache_absent(c, "/d/x"));
	ck_assert(remote_cache_absent(c, "/d/y"));
	/* ... also once its attributes went (a write of ours) */
	remote_cache_invalidate(c, "/d/x");
	ck_assert(!remote_cache_get_attr(c, "/d/x", &got));
	ck_assert(!remote_cache_absent(c, "/d/x"));
	ck_assert(remote_cache_absent(c, "/d/y"));
	/* a name we removed is absent at once */
	gen = remote_cache_gen(c);
	remote_cache_gone(c, "/d/a", gen);
	ck_assert(remote_cache_absent(c, "/d/a"));
	ck_assert(!remote_cache_absent(c, "/d/b"));
	/* a lookup that found a name (another client made it) */
	remote_cache_put_attr(c, "/d/z", &st, remote_cache_gen(c));
	remote_cache_invalidate(c, "/d/z");
	ck_assert(!remote_cache_absent(c, "/d/z"));

	/* a removal raced by another change of the name: not known */
	gen = remote_cache_gen(c);
	remote_cache_invalidate_put(c, "/d/b", true, &st, remote_cache_gen(c));
	remote_cache_gone(c, "/d/b", gen);
	ck_assert(!remote_cache_absent(c, "/d/b"));
	ck_assert(!remote_cache_absent(c, "/d/y"));
	names_list(c, "/d", ab);
	ck_assert(remote_cache_absent(c, "/d/y"));
	/* a creation raced likewise */
	gen = remote_cache_gen(c);
	remote_cache_invalidate(c, "/d/n");
	remote_cache_invalidate_put(c, "/d/n", true, &st, gen);
	ck_assert(!remote_cache_absent(c, "/d/n"));
	ck_assert(!remote_cache_absent(c, "/d/y"));
	names_list(c, "/d", ab);
	/* a change of a name the cache cannot follow */
	remote_cache_invalidate_name(c, "/d/a");
	ck_assert(!remote_cache_absent(c, "/d/y"));
	names_list(c, "/d", ab);
	remote_cache_invalidate_dir(c, "/d");
	ck_assert(!remote_cache_absent(c, "/d/y"));
	names_list(c, "/d", ab);
	remote_cache_clear(c);
	ck_assert(!remote_cache_absent(c, "/d/y"));
	/* a listing fetched before a change of ours is not stored */
	gen = remote_cache_gen(c);
	remote_cache_invalidate_put(c, "/d/q", true, &st, remote_cache_gen(c));
	{
		struct remote_listing *l = remote_listing_new();

		ck_assert_ptr_nonnull(l);
		remote_cache_put_listing(c, "/d", l, gen);
		remote_listing_put(c, l);
	}
	ck_assert(!remote_cache_absent(c, "/d/q"));
	ck_assert(!remote_cache_absent(c, "/d/y"));

	/* the fourth miss in a directory lists it, once at a time */
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/e/x"));
	dir = remote_cache_list_due(c, "/e/x");
	ck_assert_ptr_nonnull(dir);
	ck_assert_str_eq(dir, "/e");
	for (int i = 0; i < 10; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/e/y"));
	remote_cache_list_end(c, dir, false);
	free(dir);
	/* known: no listing is due */
	names_list(c, "/e", ab);
	for (int i = 0; i < 10; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/e/y"));
	/* too big: not again for a while */
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/f/x"));
	dir = remote_cache_list_due(c, "/f/x");
	ck_assert_ptr_nonnull(dir);
	remote_cache_list_end(c, dir, true);
	free(dir);
	for (int i = 0; i < 10; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/f/x"));
	remote_cache_free(c);

	/* no cache, nothing known */
	c = remote_cache_new(0);
	ck_assert_ptr_nonnull(c);
	remote_cache_track_names(c);
	names_list(c, "/d", ab);
	ck_assert(!remote_cache_absent(c, "/d/x"));
	for (int i = 0; i < 10; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/d/x"));
	remote_cache_free(c);
}
END_TEST

/*
 * When a directory is listed for the names it lacks: after the fourth
 * lookup that found nothing, also with creations between them (each drops
 * the directory's attributes and listing); after more for a directory
 * whose last listing took more requests; not again soon after a failed
 * listing; and what a listing made known ends with cache_ttl.
 */
START_TEST(test_cache_names_listing_due)
{
	static const char *const none[] = {NULL};
	struct remote_cache *c = remote_cache_new(1);
	struct remote_listing *l;
	struct stat st = {.st_mode = S_IFREG | 0644};
	struct stat dir = {.st_mode = S_IFDIR | 0755};
	char name[32], *due;

	ck_assert_ptr_nonnull(c);
	remote_cache_track_names(c);
	/* a tar's pattern: lookup, create, lookup, create ... */
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "/d/n%d", i);
		remote_cache_put_attr(c, "/d", &dir, remote_cache_gen(c));
		ck_assert_ptr_null(remote_cache_list_due(c, name));
		remote_cache_invalidate_put(c, name, true, &st,
					    remote_cache_gen(c));
		ck_assert(!remote_cache_get_attr(c, "/d", &st));
	}
	due = remote_cache_list_due(c, "/d/n3");
	ck_assert_ptr_nonnull(due);
	ck_assert_str_eq(due, "/d");
	/* the listing: 1000 names */
	l = remote_listing_new();
	ck_assert_ptr_nonnull(l);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		ck_assert_int_eq(vfs_dirbuf_add(&l->db, name, &st, 0), 0);
	}
	remote_cache_put_listing(c, "/d", l, remote_cache_gen(c));
	remote_listing_put(c, l);
	remote_cache_list_end(c, due, false);
	free(due);
	ck_assert(remote_cache_absent(c, "/d/x"));
	ck_assert(!remote_cache_absent(c, "/d/n999"));
	/* its names are known for cache_ttl, no longer */
	usleep(1100 * 1000);
	remote_cache_expire(c);
	ck_assert(!remote_cache_absent(c, "/d/x"));
	/* 1000 entries cost 10 READDIRs: the next listing after 11 misses */
	for (int i = 0; i < 10; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/d/x"));
	due = remote_cache_list_due(c, "/d/x");
	ck_assert_ptr_nonnull(due);
	/* it failed (EACCES, say): not again for a while */
	remote_cache_list_end(c, due, true);
	free(due);
	for (int i = 0; i < 20; i++)
		ck_assert_ptr_null(remote_cache_list_due(c, "/d/x"));
	/* an empty listing makes every name absent */
	names_list(c, "/e", none);
	ck_assert(remote_cache_absent(c, "/e/anything"));
	remote_cache_free(c);
}
END_TEST

/* A per-slot backoff counter follows the pool's policy. */
START_TEST(test_backoff_counter)
{
	unsigned ms = 0;

	ck_assert_uint_eq(remote_backoff_next(&ms, 1000, 10000), 1000);
	ck_assert_uint_eq(remote_backoff_next(&ms, 1000, 10000), 2000);
	ck_assert_uint_eq(remote_backoff_next(&ms, 1000, 10000), 4000);
	ck_assert_uint_eq(remote_backoff_next(&ms, 1000, 10000), 8000);
	ck_assert_uint_eq(remote_backoff_next(&ms, 1000, 10000), 10000);
	ck_assert_uint_eq(remote_backoff_next(&ms, 1000, 10000), 10000);
	ms = 0;
	ck_assert_uint_eq(remote_backoff_next(&ms, 1000, 10000), 1000);
}
END_TEST

/* ---- write-behind core (backends/remote/wb.c) ---- */

/* A fake mount: two files, a sender that records what it was given and
 * may be held at a gate or made to fail. */
struct wbt {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool gate_shut; /* sends wait while set */
	int entered;    /* sends begun */
	int sends;
	size_t send_len[16];
	off_t send_off[16];
	int fail;                   /* what the next sends return */
	struct remote_wb_file f[2]; /* files "a" and "b" */
};

static struct wbt wbt;

static int wbt_send(void *ctx, struct remote_wb_file *file, const char *data,
		    size_t len, off_t off)
{
	struct wbt *t = ctx;
	int ret;

	(void)file;
	(void)data;
	pthread_mutex_lock(&t->lock);
	t->entered++;
	pthread_cond_broadcast(&t->cond);
	while (t->gate_shut)
		pthread_cond_wait(&t->cond, &t->lock);
	if (t->sends < 16) {
		t->send_len[t->sends] = len;
		t->send_off[t->sends] = off;
	}
	t->sends++;
	ret = t->fail;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

static bool wbt_file_at(void *ctx, const struct remote_wb_file *file,
			const char *path)
{
	struct wbt *t = ctx;

	return strcmp(path, file == &t->f[0] ? "a" : "b") == 0;
}

static const struct remote_wb_ops wbt_ops = {
	.send = wbt_send,
	.file_at = wbt_file_at,
};

static void wbt_setup(void)
{
	memset(&wbt, 0, sizeof(wbt));
	pthread_mutex_init(&wbt.lock, NULL);
	pthread_cond_init(&wbt.cond, NULL);
}

static void wbt_gate(bool shut)
{
	pthread_mutex_lock(&wbt.lock);
	wbt.gate_shut = shut;
	pthread_cond_broadcast(&wbt.cond);
	pthread_mutex_unlock(&wbt.lock);
}

/* Wait until n sends have begun (they may wait at the gate). */
static void wbt_wait_entered(int n)
{
	pthread_mutex_lock(&wbt.lock);
	while (wbt.entered < n)
		pthread_cond_wait(&wbt.cond, &wbt.lock);
	pthread_mutex_unlock(&wbt.lock);
}

static void wbt_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static char wbt_buf[64];

/* A call that may block, run on a thread of its own. */
struct wbt_call {
	struct remote_wb *wb;
	int what;      /* 0: write 60 bytes to "a"; 1: drain "a"; 2: drain path
			* "a"; 3: drain all */
	bool returned; /* atomic */
	pthread_t th;
};

static void *wbt_call_main(void *arg)
{
	struct wbt_call *c = arg;

	switch (c->what) {
	case 0:
		ck_assert_int_eq(
			remote_wb_write(c->wb, &wbt.f[0], wbt_buf, 60, 1000),
			0);
		break;
	case 1:
		remote_wb_drain(c->wb, &wbt.f[0]);
		break;
	case 2:
		remote_wb_drain_path(c->wb, "a");
		break;
	default:
		remote_wb_drain_all(c->wb);
		break;
	}
	__atomic_store_n(&c->returned, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void wbt_call_start(struct wbt_call *c, struct remote_wb *wb, int what)
{
	*c = (struct wbt_call){.wb = wb, .what = what};
	ck_assert_int_eq(pthread_create(&c->th, NULL, wbt_call_main, c), 0);
}

static bool wbt_call_returned(struct wbt_call *c)
{
	return __atomic_load_n(&c->returned, __ATOMIC_SEQ_CST);
}

/* A writer beyond the window waits until a job is done; one larger than
 * the window goes alone into an empty queue. */
START_TEST(test_wb_window)
{
	struct remote_wb *wb;
	struct remote_wjob *j;
	struct wbt_call c;

	wbt_setup();
	/* no sender threads: this test is the sender */
	ck_assert_int_eq(remote_wb_new(&wb, &wbt_ops, &wbt, 0, 100, 0), 0);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 60, 0), 0);
	ck_assert_uint_eq(wbt.f[0].pending, 1);
	wbt_call_start(&c, wb, 0);
	wbt_sleep_ms(100);
	ck_assert(!wbt_call_returned(&c));
	j = remote_wb_take(wb);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(j->off, 0);
	remote_wb_done(wb, j, 0);
	pthread_join(c.th, NULL);
	ck_assert(wbt_call_returned(&c));
	j = remote_wb_take(wb);
	ck_assert_int_eq(j->off, 1000);
	remote_wb_done(wb, j, 0);
	/* larger than the window, into an empty queue: no wait */
	{
		static char big[200];

		ck_assert_int_eq(
			remote_wb_write(wb, &wbt.f[1], big, sizeof(big), 0), 0);
	}
	j = remote_wb_take(wb);
	ck_assert_uint_eq(j->len, 200);
	remote_wb_done(wb, j, 0);
	ck_assert_uint_eq(wbt.f[0].pending, 0);
	ck_assert_uint_eq(wbt.f[1].pending, 0);
	remote_wb_free(wb);
}
END_TEST

/* Overlapping jobs of a file never go together, and later jobs of that
 * file wait behind the held one; other files go on. */
START_TEST(test_wb_order)
{
	struct remote_wb *wb;
	struct remote_wjob *a, *b, *c, *d;

	wbt_setup();
	ck_assert_int_eq(remote_wb_new(&wb, &wbt_ops, &wbt, 0, 1000, 0), 0);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 0), 0);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 5), 0);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 100), 0);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[1], wbt_buf, 10, 0), 0);
	a = remote_wb_take(wb);
	ck_assert_ptr_eq(a->file, &wbt.f[0]);
	ck_assert_int_eq(a->off, 0);
	/* [5,15) overlaps [0,10) being sent; [100,110) is behind it */
	d = remote_wb_take(wb);
	ck_assert_ptr_eq(d->file, &wbt.f[1]);
	ck_assert_ptr_null(remote_wb_take(wb));
	remote_wb_done(wb, a, 0);
	b = remote_wb_take(wb);
	ck_assert_int_eq(b->off, 5);
	/* does not overlap [5,15): may go beside it */
	c = remote_wb_take(wb);
	ck_assert_int_eq(c->off, 100);
	ck_assert_ptr_null(remote_wb_take(wb));
	remote_wb_done(wb, c, 0);
	remote_wb_done(wb, b, 0);
	remote_wb_done(wb, d, 0);
	ck_assert(!remote_wb_stopping(wb));
	remote_wb_stop(wb);
	ck_assert(remote_wb_stopping(wb));
	remote_wb_free(wb);
}
END_TEST

/* Sync senders: contiguous jobs queued behind a busy sender go out as
 * one write. */
START_TEST(test_wb_coalesce)
{
	struct remote_wb *wb;

	wbt_setup();
	wbt_gate(true);
	ck_assert_int_eq(remote_wb_new(&wb, &wbt_ops, &wbt, 1, 1000, 100), 0);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 0), 0);
	wbt_wait_entered(1); /* the sender took it: at the gate */
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 10), 0);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 20), 0);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 40), 0);
	wbt_gate(false);
	remote_wb_drain(wb, &wbt.f[0]);
	ck_assert_int_eq(wbt.sends, 3);
	ck_assert_uint_eq(wbt.send_len[0], 10);
	ck_assert_int_eq(wbt.send_off[1], 10);
	ck_assert_uint_eq(wbt.send_len[1], 20);
	ck_assert_int_eq(wbt.send_off[2], 40);
	remote_wb_free(wb);
}
END_TEST

/* A failed job's error stays on its file until taken, once; the first
 * failure wins. */
START_TEST(test_wb_sticky_error)
{
	struct remote_wb *wb;

	wbt_setup();
	ck_assert_int_eq(remote_wb_new(&wb, &wbt_ops, &wbt, 1, 1000, 0), 0);
	ck_assert_int_eq(remote_wb_err(NULL, &wbt.f[0]), 0);
	wbt.fail = -EIO;
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 0), 0);
	remote_wb_drain(wb, &wbt.f[0]);
	pthread_mutex_lock(&wbt.lock);
	wbt.fail = -ENOSPC;
	pthread_mutex_unlock(&wbt.lock);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 0), 0);
	remote_wb_drain(wb, &wbt.f[0]);
	/* the other file is untouched */
	ck_assert_int_eq(remote_wb_err(wb, &wbt.f[1]), 0);
	/* peeked (sftp's write), then taken (flush) once */
	ck_assert_int_eq(remote_wb_err(wb, &wbt.f[0]), -EIO);
	ck_assert_int_eq(remote_wb_err(wb, &wbt.f[0]), -EIO);
	ck_assert_int_eq(remote_wb_take_err(wb, &wbt.f[0]), -EIO);
	ck_assert_int_eq(remote_wb_take_err(wb, &wbt.f[0]), 0);
	remote_wb_free(wb);
}
END_TEST

/* Drains of a file, of a path and of everything wait for the jobs being
 * sent, and only for those they concern. */
START_TEST(test_wb_drain)
{
	struct remote_wb *wb;
	struct wbt_call c[3];

	wbt_setup();
	wbt_gate(true);
	ck_assert_int_eq(remote_wb_new(&wb, &wbt_ops, &wbt, 2, 1000, 0), 0);
	ck_assert_int_eq(remote_wb_write(wb, &wbt.f[0], wbt_buf, 10, 0), 0);
	wbt_wait_entered(1);
	/* nothing of "b" is queued: no wait */
	remote_wb_drain(wb, &wbt.f[1]);
	remote_wb_drain_path(wb, "b");
	for (int i = 0; i < 3; i++)
		wbt_call_start(&c[i], wb, i + 1);
	wbt_sleep_ms(100);
	for (int i = 0; i < 3; i++)
		ck_assert(!wbt_call_returned(&c[i]));
	wbt_gate(false);
	for (int i = 0; i < 3; i++) {
		pthread_join(c[i].th, NULL);
		ck_assert(wbt_call_returned(&c[i]));
	}
	ck_assert_int_eq(wbt.sends, 1);
	ck_assert_uint_eq(wbt.f[0].pending, 0);
	remote_wb_free(wb);
}
END_TEST

/* Freeing sends what is queued first. */
START_TEST(test_wb_free_sends_all)
{
	struct remote_wb *wb;

	wbt_setup();
	ck_assert_int_eq(remote_wb_new(&wb, &wbt_ops, &wbt, 2, 1000, 0), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(remote_wb_write(wb, &wbt.f[i % 2], wbt_buf, 10,
						 (off_t)i * 100),
				 0);
	remote_wb_free(wb);
	ck_assert_int_eq(wbt.sends, 5);
	ck_assert_uint_eq(wbt.f[0].pending, 0);
	ck_assert_uint_eq(wbt.f[1].pending, 0);
}
END_TEST

/* ---- The connection slots (slots.c) -------------------------------- */

/* A fake driver: its connects succeed or fail as told, after `ms`, and
 * count how many run at once. */
struct fake_drv {
	pthread_mutex_t lock;
	int result;  /* of each connect: 0 or -errno */
	unsigned ms; /* how long one takes */
	int calls, running, most;
	int closes; /* connections the core closed */
};

static char fake_conn;
#define FAKE_LIVE ((void *)&fake_conn)

static int fake_connect(void *drv, double by, void **conn, char *msg,
			size_t msglen)
{
	struct fake_drv *d = drv;
	double end;

	pthread_mutex_lock(&d->lock);
	d->calls++;
	if (++d->running > d->most)
		d->most = d->running;
	pthread_mutex_unlock(&d->lock);
	end = vfs_mono_s() + d->ms / 1000.0;
	while (vfs_mono_s() < end && vfs_mono_s() < by)
		usleep(1000);
	pthread_mutex_lock(&d->lock);
	d->running--;
	pthread_mutex_unlock(&d->lock);
	if (vfs_mono_s() < end)
		return -ETIMEDOUT;
	if (d->result == 0)
		*conn = FAKE_LIVE;
	else
		snprintf(msg, msglen, "refused");
	return d->result;
}

static void fake_close(void *drv, void *conn)
{
	struct fake_drv *d = drv;

	ck_assert_ptr_eq(conn, FAKE_LIVE);
	pthread_mutex_lock(&d->lock);
	d->closes++;
	pthread_mutex_unlock(&d->lock);
}

static const struct remote_slot_ops fake_ops = {.connect = fake_connect};
static const struct remote_slot_ops fake_close_ops = {
	.connect = fake_connect,
	.close = fake_close,
};

struct slots_fix {
	struct remote_pool rp;
	struct remote_slots ss;
	struct fake_drv drv;
	pthread_cond_t cond;
	struct log_ratelimit rl;
};

/* n slots, the first `live` connected (generation 1), with options o. */
static void slots_setup_opts(struct slots_fix *f, size_t n, size_t live,
			     const struct remote_slots_opts *o)
{
	memset(f, 0, sizeof(*f));
	memset(&vm, 0, sizeof(vm));
	pthread_mutex_init(&f->drv.lock, NULL);
	remote_cond_init(&f->cond);
	remote_pool_init(&f->rp, &vm, "test://server/", &f->cond, NULL, 100,
			 1000);
	ck_assert_int_eq(remote_slots_init(&f->ss, &f->rp, &lock, &f->cond,
					   &f->rl, &fake_close_ops, &f->drv, n,
					   o),
			 0);
	for (size_t i = 0; i < live; i++) {
		f->ss.slot[i].conn = FAKE_LIVE;
		f->ss.slot[i].gen = 1;
	}
}

/* The options of a driver whose maintenance thread connects (sftp). */
static const struct remote_slots_opts maint_opts = {
	.timeout_ms = 300,
	.connector = REMOTE_CONNECT_MAINT,
	.probe_interval_ms = 50,
	.pick = REMOTE_PICK_LEAST_LOADED,
	.fail_all = true,
};

static void slots_set_state(struct slots_fix *f, enum remote_state st)
{
	pthread_mutex_lock(&lock);
	remote_pool_set_state_locked(&f->rp, st, NULL);
	pthread_mutex_unlock(&lock);
}

/* What a maintenance thread does: connect the slot that is due (it
 * must be idx), with the outcome rc. */
static void slots_maint_attempt(struct slots_fix *f, int idx, int rc)
{
	pthread_mutex_lock(&lock);
	ck_assert_int_eq(remote_slots_maint_next_locked(&f->ss), idx);
	ck_assert(f->ss.connecting && f->ss.slot[idx].busy);
	remote_slots_maint_done_locked(&f->ss, idx, rc, rc ? NULL : FAKE_LIVE,
				       rc ? "refused" : NULL);
	pthread_mutex_unlock(&lock);
}

/* n slots, the first `live` connected; the mount's timeout timeout_ms. */
static void slots_setup(struct slots_fix *f, size_t n, size_t live,
			long timeout_ms)
{
	memset(f, 0, sizeof(*f));
	memset(&vm, 0, sizeof(vm));
	pthread_mutex_init(&f->drv.lock, NULL);
	remote_cond_init(&f->cond);
	remote_pool_init(&f->rp, &vm, "test://server/", &f->cond, NULL, 100,
			 1000);
	ck_assert_int_eq(remote_slots_init(&f->ss, &f->rp, &lock, &f->cond,
					   &f->rl, &fake_ops, &f->drv, n,
					   &(struct remote_slots_opts){
						   .timeout_ms = timeout_ms,
					   }),
			 0);
	for (size_t i = 0; i < live; i++) {
		f->ss.slot[i].conn = FAKE_LIVE;
		f->ss.slot[i].gen = 1;
	}
}

static void slots_teardown(struct slots_fix *f)
{
	remote_slots_free(&f->ss);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->drv.lock);
}

/* All slots busy: a checkout waits until the call's deadline (the
 * caller's, or else the mount's timeout), then fails with -ETIMEDOUT;
 * past the caller's deadline it sends nothing. */
START_TEST(test_slots_wait_until_deadline)
{
	struct slots_fix f;
	struct remote_checkout a, b;
	struct vfs_callctx old;
	double t0, waited;

	slots_setup(&f, 1, 1, 300);
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
	ck_assert_ptr_eq(a.conn, FAKE_LIVE);
	t0 = vfs_mono_s();
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &b), -ETIMEDOUT);
	waited = vfs_mono_s() - t0;
	ck_assert_msg(waited >= 0.28 && waited < 1.0, "waited %.3f s", waited);

	old = vfs_callctx_push(vfs_mono_ns() + 100000000LL, false);
	t0 = vfs_mono_s();
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &b), -ETIMEDOUT);
	waited = vfs_mono_s() - t0;
	vfs_callctx_pop(old);
	ck_assert_msg(waited >= 0.08 && waited < 0.25, "waited %.3f s", waited);

	old = vfs_callctx_push(vfs_mono_ns() - 1, false);
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_IDLE);
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &b), -ETIMEDOUT);
	vfs_callctx_pop(old);
	ck_assert_int_eq(f.drv.calls, 0);
	slots_teardown(&f);
}
END_TEST

struct slots_caller {
	struct slots_fix *f;
	int ret;
};

static void *slots_get_put(void *arg)
{
	struct slots_caller *c = arg;
	struct remote_checkout co;

	c->ret = remote_slots_get(&c->f->ss, -1, &co);
	if (c->ret == 0) {
		usleep(20000);
		remote_slots_put(&c->f->ss, co.idx, REMOTE_PUT_IDLE);
	}
	return NULL;
}

/* No slot connected: of three callers at once, one connects and the
 * others wait for it; never two connect attempts at a time. */
START_TEST(test_slots_one_connect_at_a_time)
{
	struct slots_fix f;
	struct slots_caller c[3];
	pthread_t t[3];

	slots_setup(&f, 3, 0, 2000);
	f.drv.ms = 100;
	for (int i = 0; i < 3; i++) {
		c[i] = (struct slots_caller){&f, 1};
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, slots_get_put, &c[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(c[i].ret, 0);
	}
	ck_assert_int_eq(f.drv.most, 1);
	ck_assert_int_ge(f.drv.calls, 1);
	/* first connects of a slot: no reconnect, no state change */
	ck_assert_uint_eq(vm.reconnects, 0);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	slots_teardown(&f);
}
END_TEST

/* A failed connect with no connection left: the mount is down, the
 * checkouts that follow fail with -EIO at once without an attempt until
 * the backoff has passed, and the next failure waits twice as long. */
START_TEST(test_slots_backoff_when_down)
{
	struct slots_fix f;
	struct remote_checkout a;
	double left;

	slots_setup(&f, 2, 0, 1000);
	f.ss.slot[0].gen = 1; /* it had a connection that broke */
	f.drv.result = -ECONNREFUSED;
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), -EIO);
	ck_assert_str_eq(remote_state_name(f.rp.state), "down");
	ck_assert_int_eq(f.drv.calls, 1);
	left = f.ss.down_until - vfs_mono_s();
	ck_assert_msg(left > 0.05 && left <= 0.1, "backoff %.3f s", left);
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), -EIO);
	ck_assert_int_eq(f.drv.calls, 1); /* no attempt in the backoff */
	while (vfs_mono_s() < f.ss.down_until)
		usleep(5000);
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), -EIO);
	ck_assert_int_eq(f.drv.calls, 2);
	left = f.ss.down_until - vfs_mono_s();
	ck_assert_msg(left > 0.15 && left <= 0.2, "backoff %.3f s", left);
	/* the server is back: the first success makes it connected and is
	 * a reconnect (slot 0 had one that broke) */
	while (vfs_mono_s() < f.ss.down_until)
		usleep(5000);
	f.drv.result = 0;
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	ck_assert_uint_eq(vm.reconnects, 1);
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_IDLE);
	slots_teardown(&f);
}
END_TEST

/* A slot that fails beside a working one waits its own backoff, which
 * doubles, and changes no state. */
START_TEST(test_slots_backoff_per_slot)
{
	struct slots_fix f;
	struct remote_checkout a, b;
	struct vfs_callctx old;
	unsigned backoff[2];

	slots_setup(&f, 2, 1, 1000);
	f.ss.slot[1].gen = 1;
	f.drv.result = -ECONNREFUSED;
	for (int i = 0; i < 2; i++) {
		int calls = f.drv.calls;

		ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
		ck_assert_int_eq(a.idx, 0);
		double t0 = vfs_mono_s(), t1;

		old = vfs_callctx_push(vfs_mono_ns() + 50000000LL, false);
		ck_assert_int_eq(remote_slots_get(&f.ss, -1, &b), -ETIMEDOUT);
		vfs_callctx_pop(old);
		t1 = vfs_mono_s();
		ck_assert_int_eq(f.drv.calls, calls + 1);
		/* the retry time is the failure's time plus the backoff: read
		 * against the times around the call, so a slow machine cannot
		 * make it look shorter */
		backoff[i] = f.ss.slot[1].backoff_ms;
		ck_assert_msg(f.ss.slot[1].retry_at >=
					      t0 + backoff[i] / 1000.0 &&
				      f.ss.slot[1].retry_at <=
					      t1 + backoff[i] / 1000.0 + 1e-3,
			      "retry_at %.3f s after the call, backoff %u ms",
			      f.ss.slot[1].retry_at - t0, backoff[i]);
		ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
		remote_slots_put(&f.ss, a.idx, REMOTE_PUT_ANSWERED);
		/* in its backoff the slot is not tried: the working one
		 * is taken */
		ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
		ck_assert_int_eq(a.idx, 0);
		remote_slots_put(&f.ss, a.idx, REMOTE_PUT_IDLE);
		ck_assert_int_eq(f.drv.calls, calls + 1);
		while (vfs_mono_s() < f.ss.slot[1].retry_at)
			usleep(5000);
	}
	ck_assert_msg(backoff[0] > 0 && backoff[0] <= 100 &&
			      backoff[1] == 2 * backoff[0],
		      "backoffs %u, %u ms", backoff[0], backoff[1]);
	slots_teardown(&f);
}
END_TEST

/* A connection given up at the caller's deadline is no broken one: no
 * state change, and the connection that replaces it is no reconnect; a
 * broken one is. */
START_TEST(test_slots_abandoned_no_reconnect)
{
	struct slots_fix f;
	struct remote_checkout a;

	slots_setup(&f, 1, 1, 1000);
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_ABANDONED);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	ck_assert_ptr_null(f.ss.slot[0].conn);
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
	ck_assert_int_eq(f.drv.calls, 1);
	ck_assert_uint_eq(vm.reconnects, 0);

	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_BROKEN);
	ck_assert_str_eq(remote_state_name(f.rp.state), "reconnecting");
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
	ck_assert_uint_eq(vm.reconnects, 1);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");

	/* a server that did not answer: down, and new calls fail fast */
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_TIMED_OUT);
	ck_assert_str_eq(remote_state_name(f.rp.state), "down");
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), -EIO);
	ck_assert_int_eq(f.drv.calls, 2);
	slots_teardown(&f);
}
END_TEST

/* A maintenance thread connects: a checkout never does, it waits until
 * its deadline for a slot the thread connected. */
START_TEST(test_slots_maint_connects)
{
	struct slots_fix f;
	struct remote_checkout a;
	double t0, waited;

	slots_setup_opts(&f, 1, 0, &maint_opts);
	slots_set_state(&f, REMOTE_RECONNECTING);
	t0 = vfs_mono_s();
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), -ETIMEDOUT);
	waited = vfs_mono_s() - t0;
	ck_assert_msg(waited >= 0.28 && waited < 1.0, "waited %.3f s", waited);
	ck_assert_int_eq(f.drv.calls, 0);
	slots_maint_attempt(&f, 0, 0);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
	ck_assert_ptr_eq(a.conn, FAKE_LIVE);
	ck_assert_uint_eq(a.gen, 1);
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_IDLE);
	ck_assert_int_eq(f.drv.calls, 0);
	slots_teardown(&f);
}
END_TEST

static void *slots_get_only(void *arg)
{
	struct slots_caller *c = arg;
	struct remote_checkout co;

	c->ret = remote_slots_get(&c->f->ss, -1, &co);
	if (c->ret == 0)
		remote_slots_put(&c->f->ss, co.idx, REMOTE_PUT_IDLE);
	return NULL;
}

/* Wait (at most 2 s) for a checkout to wait on a probe. */
static void slots_wait_probe(struct slots_fix *f)
{
	double until = vfs_mono_s() + 2;
	bool w = false;

	while (!w && vfs_mono_s() < until) {
		usleep(1000);
		pthread_mutex_lock(&lock);
		w = f->ss.probe_waiter;
		pthread_mutex_unlock(&lock);
	}
	ck_assert_msg(w, "no checkout waits for a probe");
}

/* While down, one checkout has an attempt made at once and waits for it
 * (and the others fail fast), at most once per probe interval. */
START_TEST(test_slots_maint_probe_when_down)
{
	struct slots_fix f;
	struct slots_caller c = {&f, 1};
	struct remote_checkout a;
	pthread_t t;

	slots_setup_opts(&f, 1, 0, &maint_opts);
	slots_set_state(&f, REMOTE_DOWN);
	/* no attempt due on the thread's own for a long while */
	vfs_ts_after_ms(&f.ss.next_attempt, CLOCK_MONOTONIC, 10000);
	usleep(60000); /* the probe interval since the last attempt */
	ck_assert_int_eq(pthread_create(&t, NULL, slots_get_only, &c), 0);
	slots_wait_probe(&f);
	/* one probe at a time */
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), -EIO);
	/* the probe made the attempt due now */
	slots_maint_attempt(&f, 0, -ECONNREFUSED);
	pthread_join(t, NULL);
	ck_assert_int_eq(c.ret, -EIO);
	/* within the probe interval of that attempt: no wait */
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), -EIO);
	ck_assert(!f.ss.probe_waiter);

	usleep(60000);
	vfs_ts_after_ms(&f.ss.next_attempt, CLOCK_MONOTONIC, 10000);
	c.ret = 1;
	ck_assert_int_eq(pthread_create(&t, NULL, slots_get_only, &c), 0);
	slots_wait_probe(&f);
	slots_maint_attempt(&f, 0, 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(c.ret, 0);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	ck_assert_int_eq(f.drv.calls, 0);
	slots_teardown(&f);
}
END_TEST

/* REMOTE_PICK_LEAST_LOADED: the idle slot with the lowest load, ties
 * spread over the pool. */
START_TEST(test_slots_least_loaded)
{
	struct slots_fix f;
	struct remote_slots_opts o = {
		.timeout_ms = 1000,
		.pick = REMOTE_PICK_LEAST_LOADED,
	};
	struct remote_checkout a, b;
	bool seen[3] = {false, false, false};

	slots_setup_opts(&f, 3, 3, &o);
	remote_slots_load(&f.ss, 0, +2);
	remote_slots_load(&f.ss, 2, +1);
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
	ck_assert_int_eq(a.idx, 1);
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &b), 0);
	ck_assert_int_eq(b.idx, 2);
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_IDLE);
	remote_slots_put(&f.ss, b.idx, REMOTE_PUT_IDLE);
	remote_slots_load(&f.ss, 0, -2);
	remote_slots_load(&f.ss, 2, -1);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(remote_slots_get(&f.ss, -1, &a), 0);
		seen[a.idx] = true;
		remote_slots_put(&f.ss, a.idx, REMOTE_PUT_IDLE);
	}
	ck_assert(seen[0] && seen[1] && seen[2]);
	ck_assert_int_eq(f.drv.calls, 0);
	slots_teardown(&f);
}
END_TEST

/* shared (sftp's engine): many calls have one slot out at once, the pick
 * counts them; a broken one changes the state at once, but the connection
 * is closed only when its last user gives it back, and no connect goes
 * into the slot before. */
START_TEST(test_slots_shared)
{
	static const struct remote_slots_opts o = {
		.timeout_ms = 300,
		.connector = REMOTE_CONNECT_MAINT,
		.probe_interval_ms = 50,
		.pick = REMOTE_PICK_LEAST_LOADED,
		.fail_all = true,
		.shared = true,
	};
	struct slots_fix f;
	struct remote_checkout a, b, c, d;

	slots_setup_opts(&f, 2, 2, &o);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &a), 0);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &b), 0);
	ck_assert_int_eq(f.ss.slot[0].users, 2);
	/* the least loaded counts the users: slot 1, then slot 1 again
	 * (1 user against 2) */
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &c), 0);
	ck_assert_int_eq(c.idx, 1);
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &d), 0);
	ck_assert_int_eq(d.idx, 1);
	remote_slots_put(&f.ss, d.idx, REMOTE_PUT_IDLE);
	/* a broken call: the pool fails now (slot 1 still has a user, so
	 * it is doomed, not closed), slot 0 stays until b is back */
	remote_slots_put_why(&f.ss, a.idx, REMOTE_PUT_BROKEN, "reset");
	ck_assert_str_eq(remote_state_name(f.rp.state), "reconnecting");
	ck_assert_int_eq(f.drv.closes, 0);
	ck_assert(f.ss.slot[0].conn && f.ss.slot[0].doomed);
	ck_assert(f.ss.slot[1].conn && f.ss.slot[1].doomed);
	pthread_mutex_lock(&lock);
	ck_assert_int_eq(remote_slots_maint_next_locked(&f.ss), -1);
	pthread_mutex_unlock(&lock);
	/* a doomed slot is pinned no more */
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &d), -ESTALE);
	remote_slots_put(&f.ss, b.idx, REMOTE_PUT_IDLE);
	ck_assert_int_eq(f.drv.closes, 1);
	ck_assert(!f.ss.slot[0].conn && !f.ss.slot[0].busy &&
		  !f.ss.slot[0].users);
	remote_slots_put_why(&f.ss, c.idx, REMOTE_PUT_BROKEN, "reset");
	ck_assert_int_eq(f.drv.closes, 2);
	ck_assert(!f.ss.slot[1].conn && !f.ss.slot[1].users);
	/* only now are they connected again, and the mount with them */
	slots_maint_attempt(&f, 0, 0);
	slots_maint_attempt(&f, 1, 0);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	slots_teardown(&f);
}
END_TEST

/* remote_slots_get_packed: data calls fill the session with the most of
 * them up to `pack`, then the next; never one with other calls out, a
 * doomed one, or one whose calls have not come back for
 * REMOTE_PACK_STALL_S; with none left, the least loaded.  Other calls keep
 * the least loaded pick. */
START_TEST(test_slots_packed)
{
	static const struct remote_slots_opts o = {
		.timeout_ms = 300,
		.connector = REMOTE_CONNECT_MAINT,
		.probe_interval_ms = 50,
		.pick = REMOTE_PICK_LEAST_LOADED,
		.shared = true,
	};
	struct slots_fix f;
	struct remote_checkout m0, m1, d[4], m;

	slots_setup_opts(&f, 3, 3, &o);
	/* metadata calls on slots 0 and 1: data packs on slot 2 alone */
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &m0), 0);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 1, 1, &m1), 0);
	ck_assert(!m0.packed && !m1.packed);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(remote_slots_get_packed(&f.ss, 2, &d[i]), 0);
		ck_assert_int_eq(d[i].idx, 2);
		ck_assert(d[i].packed);
	}
	ck_assert_int_eq(f.ss.slot[2].packed, 2);
	/* slot 2 full: the least loaded, beside a metadata call */
	ck_assert_int_eq(remote_slots_get_packed(&f.ss, 2, &d[2]), 0);
	ck_assert_int_ne(d[2].idx, 2);
	remote_slots_put_packed(&f.ss, d[2].idx, REMOTE_PUT_IDLE, NULL);
	remote_slots_put(&f.ss, m0.idx, REMOTE_PUT_IDLE);
	remote_slots_put(&f.ss, m1.idx, REMOTE_PUT_IDLE);
	/* a metadata call goes to an idle slot, not the packed one */
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &m), 0);
	ck_assert_int_ne(m.idx, 2);
	remote_slots_put(&f.ss, m.idx, REMOTE_PUT_IDLE);
	/* one back: the fuller slot with room goes first */
	remote_slots_put_packed(&f.ss, d[1].idx, REMOTE_PUT_IDLE, NULL);
	ck_assert_int_eq(remote_slots_get_packed(&f.ss, 2, &d[1]), 0);
	ck_assert_int_eq(d[1].idx, 2);
	/* ... unless its calls have not come back for a while */
	remote_slots_put_packed(&f.ss, d[1].idx, REMOTE_PUT_IDLE, NULL);
	f.ss.slot[2].since = vfs_mono_s() - 2 * REMOTE_PACK_STALL_S;
	ck_assert_int_eq(remote_slots_get_packed(&f.ss, 2, &d[1]), 0);
	ck_assert_int_ne(d[1].idx, 2);
	remote_slots_put_packed(&f.ss, d[1].idx, REMOTE_PUT_IDLE, NULL);
	/* (until one comes back) */
	f.ss.slot[2].since = vfs_mono_s();
	/* a doomed slot (broken while another call has it) gets none */
	ck_assert_int_eq(remote_slots_get_packed(&f.ss, 2, &d[1]), 0);
	ck_assert_int_eq(d[1].idx, 2);
	remote_slots_put_packed(&f.ss, d[1].idx, REMOTE_PUT_BROKEN, "reset");
	ck_assert(f.ss.slot[2].doomed);
	ck_assert_int_eq(remote_slots_get_packed(&f.ss, 2, &d[3]), 0);
	ck_assert_int_ne(d[3].idx, 2);
	remote_slots_put_packed(&f.ss, d[3].idx, REMOTE_PUT_IDLE, NULL);
	remote_slots_put_packed(&f.ss, d[0].idx, REMOTE_PUT_IDLE, NULL);
	for (int i = 0; i < 3; i++)
		ck_assert(!f.ss.slot[i].users && !f.ss.slot[i].packed);
	slots_teardown(&f);
}
END_TEST

/* fail_all: a connection that breaks takes the others of its epoch down
 * (idle ones at once, busy ones when put back); a late failure of one
 * made before that failure goes alone. */
START_TEST(test_slots_fail_all_epoch)
{
	struct slots_fix f;
	struct remote_checkout a, b;

	slots_setup_opts(&f, 3, 3, &maint_opts);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &a), 0);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 1, 1, &b), 0);
	remote_slots_put_why(&f.ss, b.idx, REMOTE_PUT_BROKEN, "reset");
	ck_assert_str_eq(remote_state_name(f.rp.state), "reconnecting");
	ck_assert_int_eq(f.drv.closes, 2);
	ck_assert(!f.ss.slot[1].conn && !f.ss.slot[1].busy);
	ck_assert(!f.ss.slot[2].conn && !f.ss.slot[2].busy);
	ck_assert(f.ss.slot[0].conn && f.ss.slot[0].doomed);
	/* the maintenance thread reconnects at once */
	slots_maint_attempt(&f, 1, 0);
	slots_maint_attempt(&f, 2, 0);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	ck_assert_uint_eq(vm.reconnects, 2);
	/* the old connection's call fails now: it goes alone */
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_BROKEN);
	ck_assert_int_eq(f.drv.closes, 3);
	ck_assert_ptr_null(f.ss.slot[0].conn);
	ck_assert(f.ss.slot[1].conn && f.ss.slot[2].conn);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	slots_maint_attempt(&f, 0, 0);
	ck_assert_uint_eq(vm.reconnects, 3);
	/* one made since: all go */
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 1, 2, &b), 0);
	remote_slots_put(&f.ss, b.idx, REMOTE_PUT_TIMED_OUT);
	ck_assert_str_eq(remote_state_name(f.rp.state), "down");
	ck_assert_int_eq(f.drv.closes, 6);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_null(f.ss.slot[i].conn);
	slots_teardown(&f);
}
END_TEST

/* A pinned checkout takes its slot while it holds the connection of
 * that generation, waits while it is busy, and answers -ESTALE once it
 * does not; a discarded connection changes no state. */
START_TEST(test_slots_pinned)
{
	struct slots_fix f;
	struct remote_checkout a, b;
	struct vfs_callctx old;

	slots_setup_opts(&f, 2, 2, &maint_opts);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 1, 1, &a), 0);
	ck_assert_int_eq(a.idx, 1);
	old = vfs_callctx_push(vfs_mono_ns() + 50000000LL, false);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 1, 1, &b), -ETIMEDOUT);
	vfs_callctx_pop(old);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 2, &b), -ESTALE);
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_DISCARD);
	ck_assert_int_eq(f.drv.closes, 1);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 1, 1, &b), -ESTALE);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &b), 0);
	remote_slots_put(&f.ss, b.idx, REMOTE_PUT_IDLE);
	slots_teardown(&f);
}
END_TEST

/* fail_all: a connection reserved for the driver's own use (a keepalive)
 * when the pool failed is dropped when it comes back, even as usable,
 * and its slot is reconnected. */
START_TEST(test_slots_doomed_put_idle)
{
	struct slots_fix f;
	struct remote_checkout b;
	void *conn;

	slots_setup_opts(&f, 2, 2, &maint_opts);
	pthread_mutex_lock(&lock);
	conn = remote_slots_take_locked(&f.ss, 0);
	pthread_mutex_unlock(&lock);
	ck_assert_ptr_eq(conn, FAKE_LIVE);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 1, 1, &b), 0);
	remote_slots_put(&f.ss, b.idx, REMOTE_PUT_BROKEN);
	ck_assert(f.ss.slot[0].doomed);
	remote_slots_put(&f.ss, 0, REMOTE_PUT_IDLE);
	ck_assert_ptr_null(f.ss.slot[0].conn);
	ck_assert(!f.ss.slot[0].doomed && !f.ss.slot[0].busy);
	ck_assert_int_eq(f.drv.closes, 2);
	slots_maint_attempt(&f, 0, 0);
	slots_maint_attempt(&f, 1, 0);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	slots_teardown(&f);
}
END_TEST

/* fail_all: a connection doomed by the failure but still out is no
 * working connection: the maintenance thread's failed attempt makes the
 * mount down, and checkouts fail fast instead of waiting their whole
 * timeout for a connection that can only be dropped. */
START_TEST(test_slots_doomed_not_live)
{
	struct slots_fix f;
	struct remote_checkout a, b;
	double t0;

	slots_setup_opts(&f, 2, 2, &maint_opts);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &a), 0);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 1, 1, &b), 0);
	remote_slots_put_why(&f.ss, b.idx, REMOTE_PUT_BROKEN, "reset");
	ck_assert(f.ss.slot[0].doomed);
	ck_assert_str_eq(remote_state_name(f.rp.state), "reconnecting");
	slots_maint_attempt(&f, 1, -ECONNREFUSED);
	ck_assert_str_eq(remote_state_name(f.rp.state), "down");
	t0 = vfs_mono_s();
	ck_assert_int_eq(remote_slots_get(&f.ss, -1, &b), -EIO);
	ck_assert(vfs_mono_s() - t0 < 0.1);
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_IDLE);
	ck_assert_ptr_null(f.ss.slot[0].conn);
	ck_assert_int_eq(f.drv.closes, 2);
	slots_teardown(&f);
}
END_TEST

/* fail_all: a connection whose connect began before a failure and ended
 * after it is of the epoch it began in: its own later failure goes alone,
 * and does not take down the connections made since. */
START_TEST(test_slots_connect_across_failure)
{
	struct slots_fix f;
	struct remote_checkout a;
	int idx;

	slots_setup_opts(&f, 3, 1, &maint_opts);
	pthread_mutex_lock(&lock);
	idx = remote_slots_maint_next_locked(&f.ss);
	pthread_mutex_unlock(&lock);
	ck_assert_int_eq(idx, 1);
	/* meanwhile the pool fails */
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &a), 0);
	remote_slots_put_why(&f.ss, a.idx, REMOTE_PUT_BROKEN, "reset");
	ck_assert_int_eq(f.drv.closes, 1);
	/* the connect begun before that ends now, then the others */
	pthread_mutex_lock(&lock);
	remote_slots_maint_done_locked(&f.ss, 1, 0, FAKE_LIVE, NULL);
	pthread_mutex_unlock(&lock);
	slots_maint_attempt(&f, 0, 0);
	slots_maint_attempt(&f, 2, 0);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	/* the one begun before the failure breaks: it goes alone */
	ck_assert_int_eq(
		remote_slots_get_pinned(&f.ss, 1, f.ss.slot[1].gen, &a), 0);
	remote_slots_put_why(&f.ss, a.idx, REMOTE_PUT_TIMED_OUT, "timeout");
	ck_assert_int_eq(f.drv.closes, 2);
	ck_assert_ptr_null(f.ss.slot[1].conn);
	ck_assert(f.ss.slot[0].conn && f.ss.slot[2].conn);
	ck_assert_str_eq(remote_state_name(f.rp.state), "connected");
	slots_teardown(&f);
}
END_TEST

/* A pinned checkout of a connection doomed by fail_all (still out on a
 * call) answers -ESTALE at once: it would only be dropped when put back,
 * and the caller reopens its handle elsewhere (or fails fast while the
 * mount is down) instead of waiting for that call. */
START_TEST(test_slots_pinned_doomed_stale)
{
	struct slots_fix f;
	struct remote_checkout a, b;
	double t0;

	slots_setup_opts(&f, 2, 2, &maint_opts);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &a), 0);
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 1, 1, &b), 0);
	remote_slots_put_why(&f.ss, b.idx, REMOTE_PUT_TIMED_OUT, "timeout");
	ck_assert(f.ss.slot[0].doomed);
	t0 = vfs_mono_s();
	ck_assert_int_eq(remote_slots_get_pinned(&f.ss, 0, 1, &b), -ESTALE);
	ck_assert(vfs_mono_s() - t0 < 0.1);
	remote_slots_put(&f.ss, a.idx, REMOTE_PUT_IDLE);
	slots_teardown(&f);
}
END_TEST

Suite *remote_suite(void);

Suite *remote_suite(void)
{
	Suite *s = suite_create("remote");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_state_names);
	tcase_add_test(tc, test_transitions_and_count);
	tcase_add_test(tc, test_connected_again_clears_cache);
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_retry_once);
	tcase_add_test(tc, test_deadline);
	tcase_add_test(tc, test_option_rows);
	tcase_add_test(tc, test_cache_put_after_invalidate);
	tcase_add_test(tc, test_cache_invalidate_put);
	tcase_add_test(tc, test_cache_names);
	tcase_add_test(tc, test_cache_names_listing_due);
	tcase_add_test(tc, test_backoff_counter);
	tcase_add_test(tc, test_wb_window);
	tcase_add_test(tc, test_wb_order);
	tcase_add_test(tc, test_wb_coalesce);
	tcase_add_test(tc, test_wb_sticky_error);
	tcase_add_test(tc, test_wb_drain);
	tcase_add_test(tc, test_wb_free_sends_all);
	tcase_add_test(tc, test_slots_wait_until_deadline);
	tcase_add_test(tc, test_slots_one_connect_at_a_time);
	tcase_add_test(tc, test_slots_backoff_when_down);
	tcase_add_test(tc, test_slots_backoff_per_slot);
	tcase_add_test(tc, test_slots_abandoned_no_reconnect);
	tcase_add_test(tc, test_slots_maint_connects);
	tcase_add_test(tc, test_slots_maint_probe_when_down);
	tcase_add_test(tc, test_slots_least_loaded);
	tcase_add_test(tc, test_slots_fail_all_epoch);
	tcase_add_test(tc, test_slots_shared);
	tcase_add_test(tc, test_slots_packed);
	tcase_add_test(tc, test_slots_pinned);
	tcase_add_test(tc, test_slots_doomed_put_idle);
	tcase_add_test(tc, test_slots_doomed_not_live);
	tcase_add_test(tc, test_slots_connect_across_failure);
	tcase_add_test(tc, test_slots_pinned_doomed_stale);
	suite_add_tcase(s, tc);
	return s;
}
