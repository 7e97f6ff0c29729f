/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_nfs_unit.c - the NFS backend through its ops table, without FUSE.
 *
 * Without a server: the option spec and the start-up errors (refused
 * connection, no server in the URL).  With VFSD_NFS_URL set to the URL of
 * a scratch export (for instance one of tests/integration/ganesha.py),
 * the data path as well: create, write across several chunks, read back,
 * listing, truncate, rename, unlink.  The connection pool (conn.c) is
 * driven directly, with stand-in contexts it never uses and a URL that
 * fails at once where a context must be built.  Run by unit_main
 * ("unit_main nfs").
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/callctx.h"
#include "backends/nfs/internal.h"

static const struct vfs_backend_ops *nfs(void)
{
	const struct vfs_backend_ops *ops = backend_find("nfs");

	ck_assert_ptr_nonnull(ops);
	return ops;
}

/* Parse `url` and validate its query against the NFS spec. */
static int parse(const char *url, struct vfs_url *u, struct vfs_opts *o,
		 struct vfs_error *err)
{
	int ret;

	vfs_error_init(err);
	memset(u, 0, sizeof(*u));
	memset(o, 0, sizeof(*o));
	ret = vfs_url_parse(url, u, err);
	if (ret < 0)
		return ret;
	ret = vfs_opts_copy(o, &u->query);
	if (ret < 0)
		return ret;
	return vfs_opts_validate(o, nfs()->opts, "mount /t", err);
}

/* A TCP port on 127.0.0.1 nobody listens on (bound, then closed). */
static int closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(s, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(s);
	return port;
}

START_TEST(test_option_spec)
{
	struct vfs_url u;
	struct vfs_opts o;
	struct vfs_error err;

	ck_assert_int_eq(parse("nfs://h/e?version=4&connections=8&timeout=3"
			       "&cache_ttl=0&nfsport=2049&uid=0&gid=0",
			       &u, &o, &err),
			 0);
	ck_assert_str_eq(vfs_opts_get(&o, "version"), "4");
	ck_assert_int_eq(vfs_opts_get_int(&o, "connections"), 8);
	vfs_url_clear(&u);
	vfs_opts_clear(&o);

	/* defaults */
	ck_assert_int_eq(parse("nfs://h/e", &u, &o, &err), 0);
	ck_assert_str_eq(vfs_opts_get(&o, "version"), "3");
	ck_assert_int_eq(vfs_opts_get_int(&o, "connections"), 4);
	ck_assert_int_eq(vfs_opts_get_int(&o, "timeout"), 20);
	ck_assert_int_eq(vfs_opts_get_int(&o, "cache_ttl"), 1);
	vfs_url_clear(&u);
	vfs_opts_clear(&o);

	static const char *const bad[] = {
		"nfs://h/e?version=2",      "nfs://h/e?connections=0",
		"nfs://h/e?connections=65", "nfs://h/e?nfsport=70000",
		"nfs://h/e?timeout=0",      "nfs://h/e?bogus=1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(parse(bad[i], &u, &o, &err), -EINVAL);
		ck_assert_int_ne(err.code, 0);
		vfs_url_clear(&u);
		vfs_opts_clear(&o);
	}
}
END_TEST

START_TEST(test_refused_is_fast_and_named)
{
	char url[128];
	struct vfs_url u;
	struct vfs_opts o;
	struct vfs_error err;
	struct vfs_mount *m = NULL;
	struct timespec t0, t1;
	int port = closed_port(), ret;

	snprintf(url, sizeof(url),
		 "nfs://127.0.0.1/x?nfsport=%d&mountport=%d&timeout=5", port,
		 port);
	ck_assert_int_eq(parse(url, &u, &o, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = nfs()->mount(&u, &o, &m, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(ret, 0);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(err.code, -ret);
	ck_assert_ptr_nonnull(strstr(err.msg, "nfs://127.0.0.1/x"));
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 5);
	vfs_url_clear(&u);
	vfs_opts_clear(&o);

	/* a user name has no meaning for NFS */
	ck_assert_int_eq(parse("nfs://me@127.0.0.1/x", &u, &o, &err), 0);
	ck_assert_int_eq(nfs()->mount(&u, &o, &m, &err), -EINVAL);
	vfs_url_clear(&u);
	vfs_opts_clear(&o);
}
END_TEST

static int count_fill(void *ctx, const char *name, const struct stat *st,
		      unsigned flags, off_t next)
{
	if (strcmp(name, "big") == 0 && (flags & VFS_DIRENT_FULL))
		ck_assert_int_eq(st->st_size, 3 << 20);
	ck_assert_int_ne(st->st_ino, 0);
	(*(int *)ctx)++;
	return 0;
}

START_TEST(test_data_path)
{
	const char *url = getenv("VFSD_NFS_URL");
	const size_t size = 3 << 20; /* several chunks per call */
	struct vfs_cred cred = {
		.uid = getuid(), .gid = getgid(), .pid = getpid()};
	struct vfs_setattr sa = {.valid = VFS_SET_SIZE, .size = 10};
	struct vfs_url u;
	struct vfs_opts o;
	struct vfs_error err;
	struct vfs_mount *m;
	struct vfs_file *f;
	struct vfs_dir *d;
	struct stat st;
	char *buf, *back;
	int n = 0;

	if (!url) {
		fprintf(stderr, "test_data_path: VFSD_NFS_URL not set, "
				"data path not tested\n");
		return;
	}
	ck_assert_int_eq(parse(url, &u, &o, &err), 0);
	ck_assert_msg(nfs()->mount(&u, &o, &m, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(nfs()->state(m), "connected");
	ck_assert_int_eq(nfs()->mkdir(m, "/unit", 0755, &cred, &st), 0);
	ck_assert_int_eq(nfs()->create(m, "/unit/big",
				       O_CREAT | O_EXCL | O_RDWR, 0640, &cred,
				       &f, &st),
			 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	buf = malloc(size);
	back = malloc(size);
	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(back);
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(i * 131 + 7);
	ck_assert_int_eq(nfs()->write(f, buf, size, 0), (ssize_t)size);
	ck_assert_int_eq(nfs()->fsync(f, false), 0);
	ck_assert_int_eq(nfs()->read(f, back, size, 0), (ssize_t)size);
	ck_assert_int_eq(memcmp(buf, back, size), 0);
	ck_assert_int_eq(nfs()->read(f, back, 100, size - 10), 10);
	ck_assert_int_eq(nfs()->flush(f), 0);
	ck_assert_int_eq(nfs()->release(f), 0);

	ck_assert_int_eq(nfs()->opendir(m, "/unit", &d), 0);
	ck_assert_int_eq(nfs()->readdir(m, d, 0, count_fill, &n), 0);
	nfs()->releasedir(m, d);
	ck_assert_int_eq(n, 1);

	ck_assert_int_eq(nfs()->setattr(m, "/unit/big", NULL, &sa, &st), 0);
	ck_assert_int_eq(st.st_size, 10);
	ck_assert_int_eq(nfs()->rename(m, "/unit/big", "/unit/small", 0), 0);
	ck_assert_int_eq(nfs()->getattr(m, "/unit/big", &st), -ENOENT);
	ck_assert_int_eq(nfs()->unlink(m, "/unit/small"), 0);
	ck_assert_int_eq(nfs()->rmdir(m, "/unit"), 0);
	free(buf);
	free(back);
	nfs()->unmount(m);
	vfs_url_clear(&u);
	vfs_opts_clear(&o);
}
END_TEST

/* ---- The connection pool (conn.c) ---------------------------------- */

/* Stands for a live context: the pool hands it out but never uses it. */
static char pool_fake_ctx;
#define POOL_LIVE ((struct nfs_context *)(void *)&pool_fake_ctx)

static char pool_display[] = "nfs://test/export";
static char pool_bad_url[] = "not-a-url"; /* any rebuild fails at once */
static char pool_server[] = "127.0.0.1";
static char pool_export[] = "/export";

/* A mount whose pool has n slots, the first `live` of them connected. */
static void pool_setup(struct nfsb_mount *m, size_t n, size_t live)
{
	memset(m, 0, sizeof(*m));
	m->display = pool_display;
	m->libnfs_url = pool_bad_url;
	m->server = pool_server;
	m->export = pool_export;
	m->version = 3;
	m->timeout = 5;
	pthread_mutex_init(&m->lock, NULL);
	remote_cond_init(&m->cond);
	m->cache = remote_cache_new(60);
	ck_assert_ptr_nonnull(m->cache);
	remote_pool_init(&m->rp, &m->base, m->display, &m->cond, m->cache,
			 NFSB_BACKOFF_FIRST_MS, NFSB_BACKOFF_MAX_MS);
	ck_assert_int_eq(
		remote_slots_init(&m->slots, &m->rp, &m->lock, &m->cond, &m->rl,
				  &nfsb_slot_ops, m, n,
				  &(struct remote_slots_opts){
					  .timeout_ms = m->timeout * 1000L,
					  .connect_min_ms = NFSB_REBUILD_MIN_MS,
				  }),
		0);
	for (size_t i = 0; i < live; i++) {
		m->slots.slot[i].conn = POOL_LIVE;
		m->slots.slot[i].gen = 1;
	}
}

static void pool_teardown(struct nfsb_mount *m)
{
	remote_cache_free(m->cache);
	remote_slots_free(&m->slots);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
}

static int start_must_not_run(struct nfsb_op *op, struct nfsb_wait *w,
			      void *arg)
{
	(void)op;
	(void)w;
	*(int *)arg = 1;
	return -1;
}

/* A request that follows a failed one on the same checkout (an open's
 * close after its PATHCONF timed out) finds the context destroyed: it
 * fails without reaching libnfs with no context. */
START_TEST(test_call_on_lost_context)
{
	struct nfsb_mount m;
	struct nfsb_op a;
	int ran = 0;

	pool_setup(&m, 1, 1);
	ck_assert_int_eq(nfsb_get(&m, -1, &a), 0);
	a.nfs = NULL; /* as nfsb_kill() after a timeout */
	a.dead = true;
	ck_assert_int_eq(nfsb_call_on(&a, start_must_not_run, &ran), -EIO);
	ck_assert_int_eq(ran, 0);
	nfsb_put(&a);
	pool_teardown(&m);
}
END_TEST

/* A context broke and waits for its rebuild; a call on another one is
 * answered: the server is back, the mount says connected. */
START_TEST(test_pool_connected_once_answered)
{
	struct nfsb_mount m;
	struct nfsb_op a, b;

	pool_setup(&m, 2, 2);
	ck_assert_int_eq(nfsb_get(&m, -1, &a), 0);
	a.dead = true; /* as nfsb_finish() on a connection reset */
	nfsb_put(&a);
	ck_assert_str_eq(remote_state_name(m.rp.state), "reconnecting");
	ck_assert_int_eq(nfsb_get(&m, -1, &b), 0);
	ck_assert_int_ne(b.idx, a.idx); /* a live one, not a rebuild */
	ck_assert_ptr_eq(b.nfs, POOL_LIVE);
	b.answered = true; /* as nfsb_finish() on a reply */
	nfsb_put(&b);
	ck_assert_str_eq(remote_state_name(m.rp.state), "connected");
	ck_assert_uint_eq(m.base.reconnects, 0);
	pool_teardown(&m);
}
END_TEST

/* The server stopped answering (the mount is down) and is answered again:
 * what the cache had from before the outage is dropped, while an answer
 * on a mount that never went away leaves it. */
START_TEST(test_pool_cache_dropped_after_outage)
{
	struct nfsb_mount m;
	struct nfsb_op a, b;
	struct stat st = {.st_mode = S_IFREG | 0644, .st_size = 1}, got;

	pool_setup(&m, 2, 2);
	remote_cache_put_attr(m.cache, "/f", &st, remote_cache_gen(m.cache));
	ck_assert_int_eq(nfsb_get(&m, -1, &a), 0);
	a.answered = true;
	nfsb_put(&a);
	ck_assert(remote_cache_get_attr(m.cache, "/f", &got));

	ck_assert_int_eq(nfsb_get(&m, -1, &a), 0);
	a.dead = true; /* as nfsb_finish() when no answer came in time */
	a.timed_out = true;
	nfsb_put(&a);
	ck_assert_str_eq(remote_state_name(m.rp.state), "down");
	m.slots.down_until = 0; /* the backoff is over */
	ck_assert_int_eq(nfsb_get(&m, -1, &b), 0);
	ck_assert_ptr_eq(b.nfs, POOL_LIVE);
	b.answered = true;
	nfsb_put(&b);
	ck_assert_str_eq(remote_state_name(m.rp.state), "connected");
	ck_assert(!remote_cache_get_attr(m.cache, "/f", &got));
	pool_teardown(&m);
}
END_TEST

/* One slot that cannot connect leaves a mount with a working one up; the
 * slot waits out the backoff, the calls use the working one. */
START_TEST(test_pool_one_slot_fails)
{
	struct nfsb_mount m;
	struct nfsb_op a, b;
	struct vfs_callctx old;
	int ret;

	pool_setup(&m, 2, 1);
	ck_assert_int_eq(nfsb_get(&m, -1, &a), 0);
	ck_assert_int_eq(a.idx, 0);
	/* slot 1 is all that is idle: its connect fails, and the call waits
	 * for slot 0 (here until its own deadline) */
	old = vfs_callctx_push(vfs_mono_ns() + 300000000LL, false);
	ret = nfsb_get(&m, -1, &b);
	vfs_callctx_pop(old);
	ck_assert_int_eq(ret, -ETIMEDOUT);
	ck_assert_str_eq(remote_state_name(m.rp.state), "connected");
	ck_assert(m.slots.slot[1].retry_at > vfs_mono_s());
	nfsb_put(&a);
	/* not down: a call gets the working context, not EIO, and the
	 * failed slot is not tried again before its backoff */
	ck_assert_int_eq(nfsb_get(&m, -1, &b), 0);
	ck_assert_int_eq(b.idx, 0);
	ck_assert_ptr_eq(b.nfs, POOL_LIVE);
	nfsb_put(&b);
	ck_assert_uint_eq(m.base.reconnects, 0);
	pool_teardown(&m);

	/* with no working context left, the mount is down */
	pool_setup(&m, 2, 0);
	ck_assert_int_eq(nfsb_get(&m, -1, &a), -EIO);
	ck_assert_str_eq(remote_state_name(m.rp.state), "down");
	pool_teardown(&m);
}
END_TEST

/* A context given up at a caller's deadline is no broken connection: no
 * state change, and its rebuild is not counted as a reconnect. */
START_TEST(test_pool_abandoned_not_counted)
{
	struct nfsb_mount m;
	struct nfsb_op a;

	pool_setup(&m, 2, 2);
	ck_assert_int_eq(nfsb_get(&m, -1, &a), 0);
	a.dead = true; /* as nfsb_finish() at the caller's deadline */
	a.abandoned = true;
	nfsb_put(&a);
	ck_assert_str_eq(remote_state_name(m.rp.state), "connected");
	pthread_mutex_lock(&m.lock);
	remote_slot_up_locked(&m.rp, &m.slots.slot[a.idx], POOL_LIVE);
	pthread_mutex_unlock(&m.lock);
	ck_assert_uint_eq(m.base.reconnects, 0);
	/* a broken one is counted */
	ck_assert_int_eq(nfsb_get(&m, 0, &a), 0);
	a.dead = true;
	nfsb_put(&a);
	ck_assert_str_eq(remote_state_name(m.rp.state), "reconnecting");
	pthread_mutex_lock(&m.lock);
	remote_slot_up_locked(&m.rp, &m.slots.slot[0], POOL_LIVE);
	pthread_mutex_unlock(&m.lock);
	ck_assert_uint_eq(m.base.reconnects, 1);
	ck_assert_str_eq(remote_state_name(m.rp.state), "connected");
	pool_teardown(&m);
}
END_TEST

/* Review (issue 16): a slot whose rebuild keeps failing beside a working
 * context.  pool.h: "each further failure doubles the wait up to max_ms",
 * and "a slot that fails beside it waits the backoff alone".  Each cycle:
 * the working context is busy, a call tries the failed slot (its rebuild
 * fails), then a call on the working context is answered. */
static void pool_fail_cycle(struct nfsb_mount *m, double *delay,
			    const char **state)
{
	struct nfsb_op a, b;
	struct vfs_callctx old;

	ck_assert_int_eq(nfsb_get(m, -1, &a), 0);
	ck_assert_int_eq(a.idx, 0);
	old = vfs_callctx_push(vfs_mono_ns() + 100000000LL, false);
	ck_assert_int_eq(nfsb_get(m, -1, &b), -ETIMEDOUT);
	vfs_callctx_pop(old);
	*delay = m->slots.slot[1].retry_at - vfs_mono_s();
	*state = remote_state_name(m->rp.state);
	a.answered = true; /* as nfsb_finish() on a reply */
	nfsb_put(&a);
	/* past the slot's backoff: the next cycle tries it again */
	while (vfs_mono_s() < m->slots.slot[1].retry_at)
		usleep(10000);
}

/* The mount works (slot 0 answers); only slot 1 cannot connect.  Its
 * failures are no state change of the mount: it stays connected. */
START_TEST(test_pool_failing_slot_state)
{
	struct nfsb_mount m;
	const char *state;
	double delay;

	pool_setup(&m, 2, 1);
	m.slots.slot[1].gen = 1; /* it had a context that broke */
	pool_fail_cycle(&m, &delay, &state);
	ck_assert_msg(strcmp(state, "connected") == 0,
		      "one failing slot beside a working one: mount %s", state);
	pool_teardown(&m);
}
END_TEST

/* ... and the failing slot's wait doubles with each failure; it is not
 * reset to the first step by the calls the working context answers. */
START_TEST(test_pool_failing_slot_backoff_grows)
{
	struct nfsb_mount m;
	const char *state;
	double d[3];

	pool_setup(&m, 2, 1);
	m.slots.slot[1].gen = 1;
	for (int i = 0; i < 3; i++)
		pool_fail_cycle(&m, &d[i], &state);
	ck_assert_msg(
		d[2] > 1.5 * NFSB_BACKOFF_FIRST_MS / 1000.0,
		"third failure of the slot waits %.3f s (%.3f, %.3f before)",
		d[2], d[0], d[1]);
	pool_teardown(&m);
}
END_TEST

/* A server that takes connections and never answers: a listening socket
 * nobody accepts on.  Returns the socket; *port its port. */
static int blackhole(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(s, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(s, 16), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return s;
}

/* A rebuild cut short by the caller's own deadline (backends/callctx.h)
 * shows nothing about the server, as a call abandoned at that deadline
 * does not (test_pool_abandoned_not_counted): the mount must not go down
 * and fail the next callers, who have time, with EIO. */
START_TEST(test_pool_rebuild_at_caller_deadline)
{
	struct nfsb_mount m;
	struct nfsb_op a;
	struct vfs_callctx old;
	char url[160];
	int port, s = blackhole(&port), ret;

	pool_setup(&m, 1, 0);
	m.slots.slot[0].gen = 1;
	m.slots.slot[0].abandoned = true; /* given up at an earlier deadline */
	snprintf(url, sizeof(url),
		 "nfs://127.0.0.1/export?version=3&nfsport=%d&mountport=%d",
		 port, port);
	m.libnfs_url = url;
	old = vfs_callctx_push(vfs_mono_ns() + 200000000LL, false);
	ret = nfsb_get(&m, -1, &a);
	vfs_callctx_pop(old);
	ck_assert_int_eq(ret, -ETIMEDOUT);
	ck_assert_msg(strcmp(remote_state_name(m.rp.state), "down") != 0,
		      "the caller's deadline made the mount down");
	close(s);
	pool_teardown(&m);
}
END_TEST

struct pool_later {
	struct nfsb_op *op;
	unsigned ms;
};

static void *pool_put_later(void *arg)
{
	struct pool_later *l = arg;

	usleep(l->ms * 1000);
	l->op->answered = true;
	nfsb_put(l->op);
	return NULL;
}

/* A slot whose new connections go unanswered (a server at its connection
 * limit, a firewall dropping new flows) beside a working context: the
 * working one is busy for 100 ms when a call comes, and idle after.  The
 * call must not fail: it has its whole timeout, and a working context. */
START_TEST(test_pool_rebuild_hangs_beside_live)
{
	struct nfsb_mount m;
	struct nfsb_op a, b;
	struct pool_later l = {&a, 100};
	pthread_t t;
	char url[160];
	int port, s = blackhole(&port), ret;
	double t0;

	pool_setup(&m, 2, 1);
	m.timeout = 2;
	m.slots.timeout_ms = 2000;
	m.slots.slot[1].gen = 1;
	snprintf(url, sizeof(url),
		 "nfs://127.0.0.1/export?version=3&nfsport=%d&mountport=%d",
		 port, port);
	m.libnfs_url = url;
	ck_assert_int_eq(nfsb_get(&m, -1, &a), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, pool_put_later, &l), 0);
	t0 = vfs_mono_s();
	ret = nfsb_get(&m, -1, &b);
	pthread_join(t, NULL);
	ck_assert_msg(ret == 0,
		      "call failed with %d after %.2f s; the working context "
		      "was idle after 0.1 s",
		      ret, vfs_mono_s() - t0);
	nfsb_put(&b);
	close(s);
	pool_teardown(&m);
}
END_TEST

/* A mount for what the wire logs through a chunk's file (a READ
 * answered with more than it asked). */
static struct nfsb_mount read_m;

/* ---- wire.c against a scripted server ------------------------------------ */

struct wire_rig {
	int ls, ctx, ctx_srv, srv;
	struct nfsb_wire *wi;
	struct nfsb_file nf;
	struct nfsb_wait w;
	struct nfsb_chunk c;
	char data[5];
};

/* A listener, a "context" socket connected to it (what the wire copies its
 * peer from) and the wire's first WRITE, accepted as rig->srv. */
static void wire_rig_start(struct wire_rig *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	memset(r, 0, sizeof(*r));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->ls = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(r->ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(r->ls, 4), 0);
	ck_assert_int_eq(getsockname(r->ls, (struct sockaddr *)&sa, &len), 0);
	r->ctx = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(r->ctx, (struct sockaddr *)&sa, sizeof(sa)),
			 0);
	r->ctx_srv = accept(r->ls, NULL, NULL);
	r->srv = -1;
	r->wi = nfsb_wire_new(1000, 100);
	ck_assert_ptr_nonnull(r->wi);
	pthread_mutex_init(&r->nf.lock, NULL);
	memcpy(r->nf.fh4, "FH-ABCDEF", 9);
	r->nf.fh4_len = 9;
	memcpy(r->data, "hello", 5);
}

static void wire_rig_stop(struct wire_rig *r)
{
	nfsb_wire_free(r->wi);
	pthread_mutex_destroy(&r->nf.lock);
	close(r->ctx);
	close(r->ctx_srv);
	if (r->srv >= 0)
		close(r->srv);
	close(r->ls);
}

static void read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = read(fd, (char *)buf + got, n - got);

		ck_assert_int_gt(k, 0);
		got += (size_t)k;
	}
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Queue a WRITE of "hello" at 2^32 + 7 and read it on the server side:
 * its xid.  The call is checked byte by byte where it matters. */
static uint32_t wire_send(struct wire_rig *r)
{
	unsigned char mark[4], rec[512];
	size_t len;

	nfsb_wait_init(&r->w);
	r->c = (struct nfsb_chunk){
		.w = &r->w,
		.nf = &r->nf,
		.buf = r->data,
		.want = 5,
		.off = (off_t)(1ull << 32) + 7,
	};
	r->w.pending = 1;
	ck_assert_int_eq(nfsb_wire_write(r->wi, r->ctx, vfs_mono_s() + 5, 0,
					 &r->nf, &r->c, 0),
			 0);
	if (r->srv < 0)
		r->srv = accept(r->ls, NULL, NULL);
	ck_assert_int_ge(r->srv, 0);
	read_full(r->srv, mark, 4);
	ck_assert(mark[0] & 0x80); /* one fragment */
	len = be32(mark) & 0x7fffffff;
	ck_assert_uint_le(len, sizeof(rec));
	read_full(r->srv, rec, len);
	ck_assert_uint_eq(be32(rec + 4), 0);       /* CALL */
	ck_assert_uint_eq(be32(rec + 12), 100003); /* NFS */
	ck_assert_uint_eq(be32(rec + 16), 4);
	ck_assert_uint_eq(be32(rec + 20), 1); /* COMPOUND */
	/* the data, padded to 4, ends the record; before it its length,
	 * the stable flag and the 64-bit offset */
	ck_assert_uint_eq(len % 4, 0);
	ck_assert(memcmp(rec + len - 8, "hello\0\0\0", 8) == 0);
	ck_assert_uint_eq(be32(rec + len - 12), 5);
	ck_assert_uint_eq(be32(rec + len - 16), 0);
	ck_assert_uint_eq(be32(rec + len - 20), 7);
	ck_assert_uint_eq(be32(rec + len - 24), 1);
	return be32(rec);
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	return p + 4;
}

/* A record (mark included) answering xid: the COMPOUND's status and, if
 * `results`, PUTFH and WRITE results (count 5, UNSTABLE4). */
static size_t wire_reply(unsigned char *buf, uint32_t xid, uint32_t status,
			 bool results)
{
	unsigned char *p = buf + 4;

	p = put32(p, xid);
	p = put32(p, 1); /* REPLY */
	p = put32(p, 0); /* accepted */
	p = put32(p, 0); /* AUTH_NONE verifier */
	p = put32(p, 0);
	p = put32(p, 0); /* SUCCESS */
	p = put32(p, status);
	p = put32(p, 0); /* tag */
	if (results) {
		p = put32(p, 2);
		p = put32(p, OP_PUTFH);
		p = put32(p, NFS4_OK);
		p = put32(p, OP_WRITE);
		p = put32(p, NFS4_OK);
		p = put32(p, 5);
		p = put32(p, UNSTABLE4);
		memcpy(p, "VERIFIER", 8);
		p += 8;
	} else {
		p = put32(p, 0);
	}
	put32(buf, 0x80000000u | (uint32_t)(p - buf - 4));
	return (size_t)(p - buf);
}

/* Service the wire until the chunk completed or 2 s passed: the last
 * nfsb_wire_service() result. */
static int wire_run(struct wire_rig *r)
{
	double until = vfs_mono_s() + 2;
	int ret = 0;

	while (r->w.pending && vfs_mono_s() < until) {
		struct pollfd pfd = {.fd = nfsb_wire_fd(r->wi),
				     .events = nfsb_wire_events(r->wi)};

		poll(&pfd, 1, 50);
		ret = nfsb_wire_service(r->wi, pfd.revents);
		if (ret < 0)
			break;
	}
	return ret;
}

/* What a server answers, sane or not, ends as a result, a transport
 * failure or a broken stream; never a crash, a hang or a request matched
 * to another's reply. */
START_TEST(test_wire_replies)
{
	struct wire_rig r;
	unsigned char buf[256];
	uint32_t xid;
	size_t n;

	wire_rig_start(&r);

	/* a good reply, written one byte at a time */
	xid = wire_send(&r);
	n = wire_reply(buf, xid, NFS4_OK, true);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(write(r.srv, buf + i, 1), 1);
		ck_assert_int_eq(nfsb_wire_service(r.wi, POLLIN), 0);
		usleep(200);
	}
	ck_assert_int_eq(wire_run(&r), 0);
	ck_assert_int_eq(r.w.pending, 0);
	ck_assert_int_eq(r.w.err, 0);
	ck_assert_uint_eq(r.c.got, 5);
	ck_assert(r.c.unstable);
	ck_assert(memcmp(r.nf.verf, "VERIFIER", 8) == 0);

	/* a reply to no request of ours is dropped; the right one
	 * completes */
	xid = wire_send(&r);
	n = wire_reply(buf, xid + 1000, NFS4_OK, true);
	ck_assert_int_eq(write(r.srv, buf, n), (ssize_t)n);
	ck_assert_int_eq(wire_run(&r), 0);
	ck_assert_int_eq(r.w.pending, 1);
	n = wire_reply(buf, xid, NFS4_OK, true);
	ck_assert_int_eq(write(r.srv, buf, n), (ssize_t)n);
	ck_assert_int_eq(wire_run(&r), 0);
	ck_assert_int_eq(r.w.pending, 0);
	ck_assert_int_eq(r.w.err, 0);

	/* the server's error */
	xid = wire_send(&r);
	n = wire_reply(buf, xid, NFS4ERR_ACCESS, false);
	ck_assert_int_eq(write(r.srv, buf, n), (ssize_t)n);
	ck_assert_int_eq(wire_run(&r), 0);
	ck_assert_int_eq(r.w.err, -EACCES);
	ck_assert(!r.w.transport);

	/* two fragments make one record */
	xid = wire_send(&r);
	n = wire_reply(buf, xid, NFS4_OK, true);
	{
		unsigned char two[300];
		size_t first = 12, rest = n - 4 - first;

		put32(two, (uint32_t)first);
		memcpy(two + 4, buf + 4, first);
		put32(two + 4 + first, 0x80000000u | (uint32_t)rest);
		memcpy(two + 8 + first, buf + 4 + first, rest);
		ck_assert_int_eq(write(r.srv, two, n + 4), (ssize_t)(n + 4));
	}
	ck_assert_int_eq(wire_run(&r), 0);
	ck_assert_int_eq(r.w.pending, 0);
	ck_assert_int_eq(r.w.err, 0);

	/* OK but cut short: no results; the connection is not trusted */
	xid = wire_send(&r);
	n = wire_reply(buf, xid, NFS4_OK, false);
	put32(buf, 0x80000000u | (uint32_t)(n - 8)); /* resarray cut */
	ck_assert_int_eq(write(r.srv, buf, n - 4), (ssize_t)(n - 4));
	ck_assert_int_eq(wire_run(&r), 0);
	ck_assert_int_eq(r.w.pending, 0);
	ck_assert(r.w.transport);

	/* a record longer than any reply: the stream is broken; resetting
	 * completes what was pending as a transport failure */
	wire_send(&r);
	put32(buf, 0x80000000u | (64u << 20));
	ck_assert_int_eq(write(r.srv, buf, 4), 4);
	ck_assert_int_eq(wire_run(&r), -EPROTO);
	ck_assert_int_eq(r.w.pending, 1);
	nfsb_wire_reset(r.wi);
	ck_assert_int_eq(r.w.pending, 0);
	ck_assert(r.w.transport);
	close(r.srv);
	r.srv = -1;

	/* the server closes with a request pending */
	wire_send(&r);
	close(r.srv);
	r.srv = -1;
	ck_assert_int_lt(wire_run(&r), 0);
	nfsb_wire_reset(r.wi);
	ck_assert(r.w.transport);

	/* an idle connection the server closed is replaced before the next
	 * WRITE, which then goes through */
	xid = wire_send(&r);
	n = wire_reply(buf, xid, NFS4_OK, true);
	ck_assert_int_eq(write(r.srv, buf, n), (ssize_t)n);
	ck_assert_int_eq(wire_run(&r), 0);
	ck_assert_int_eq(r.w.err, 0);
	close(r.srv);
	r.srv = -1;
	usleep(50000);
	xid = wire_send(&r);
	n = wire_reply(buf, xid, NFS4_OK, true);
	ck_assert_int_eq(write(r.srv, buf, n), (ssize_t)n);
	ck_assert_int_eq(wire_run(&r), 0);
	ck_assert_int_eq(r.w.pending, 0);
	ck_assert_int_eq(r.w.err, 0);

	wire_rig_stop(&r);
}
END_TEST

/* A READ reply's record: `len` bytes of data (the count and eof before
 * them as v3 or v4 has them), `body` the data. */
static size_t wire_read_reply(unsigned char *buf, uint32_t xid, int version,
			      uint32_t status, const char *body, uint32_t len,
			      bool eof)
{
	unsigned char *p = buf + 4;

	p = put32(p, xid);
	p = put32(p, 1);
	p = put32(p, 0);
	p = put32(p, 0);
	p = put32(p, 0);
	p = put32(p, 0);
	p = put32(p, status);
	if (version == 3) {
		p = put32(p, 1); /* attributes follow */
		memset(p, 0, 84);
		p += 84;
		if (status)
			goto out;
		p = put32(p, len);
	} else {
		p = put32(p, 0); /* tag */
		p = put32(p, 2);
		if (status)
			goto out;
		p = put32(p, OP_PUTFH);
		p = put32(p, NFS4_OK);
		p = put32(p, OP_READ);
		p = put32(p, NFS4_OK);
	}
	p = put32(p, eof);
	p = put32(p, len);
	memcpy(p, body, len);
	p += len;
	while ((p - buf) % 4)
		*p++ = 0;
out:
	put32(buf, 0x80000000u | (uint32_t)(p - buf - 4));
	return (size_t)(p - buf);
}

/* READs: the data lands in the caller's buffer; a reply with more than
 * was asked is a broken (or hostile) server's: that request fails with
 * EIO, nothing of it is taken, and it is logged once per mount; the
 * server's error; v3 and v4. */
START_TEST(test_wire_reads)
{
	for (int version = 3; version <= 4; version++) {
		struct wire_rig r;
		struct sockaddr_storage peer;
		unsigned char mark[4], rec[512], buf[512];
		char dst[16];
		bool low;
		uint32_t xid;
		size_t n;

		wire_rig_start(&r);
		ck_assert_int_eq(nfsb_wire_peer(r.ctx, &peer, &low), 0);
		for (int round = 0; round < 3; round++) {
			memset(dst, 'x', sizeof(dst));
			nfsb_wait_init(&r.w);
			r.w.pending = 1;
			read_m.display = pool_display;
			r.nf.base.mount = &read_m.base;
			r.c = (struct nfsb_chunk){.w = &r.w,
						  .nf = &r.nf,
						  .buf = dst,
						  .want = 10,
						  .off = 5};
			ck_assert_int_eq(nfsb_wire_read(r.wi, &peer, low,
							vfs_mono_s() + 5,
							version, "FH", 2, &r.c),
					 0);
			if (r.srv < 0)
				r.srv = accept(r.ls, NULL, NULL);
			read_full(r.srv, mark, 4);
			n = be32(mark) & 0x7fffffff;
			ck_assert_uint_le(n, sizeof(rec));
			read_full(r.srv, rec, n);
			xid = be32(rec);
			ck_assert_uint_eq(be32(rec + 16), (uint32_t)version);
			if (round == 0) /* 7 bytes and end of file */
				n = wire_read_reply(buf, xid, version, 0,
						    "ABCDEFG", 7, true);
			else if (round == 1) /* more than asked */
				n = wire_read_reply(buf, xid, version, 0,
						    "0123456789ABCDEF", 16,
						    false);
			else /* NFS3ERR_ACCES / NFS4ERR_ACCESS: 13 both */
				n = wire_read_reply(buf, xid, version, 13, "",
						    0, false);
			ck_assert_int_eq(write(r.srv, buf, n), (ssize_t)n);
			ck_assert_int_eq(wire_run(&r), 0);
			ck_assert_int_eq(r.w.pending, 0);
			if (round == 0) {
				ck_assert_int_eq(r.w.err, 0);
				ck_assert_uint_eq(r.c.got, 7);
				ck_assert(r.c.eof);
				ck_assert(memcmp(dst, "ABCDEFGxxxxxxxxx", 16) ==
					  0);
			} else if (round == 1) {
				/* nothing of it taken, and said once */
				ck_assert_int_eq(r.w.err, -EIO);
				ck_assert(read_m.read_overrun_logged);
				ck_assert(memcmp(dst, "xxxxxxxxxxxxxxxx", 16) ==
					  0);
			} else {
				ck_assert_int_eq(r.w.err, -EACCES);
			}
		}
		wire_rig_stop(&r);
	}
}
END_TEST

/* Queue a READ of `want` bytes into dst (version 3 or 4) and read the call
 * on the server side: its xid. */
static uint32_t wire_read_send(struct wire_rig *r, int version, char *dst,
			       size_t want)
{
	struct sockaddr_storage peer;
	unsigned char mark[4], rec[512];
	bool low;
	size_t n;

	ck_assert_int_eq(nfsb_wire_peer(r->ctx, &peer, &low), 0);
	nfsb_wait_init(&r->w);
	r->w.pending = 1;
	read_m.display = pool_display;
	r->nf.base.mount = &read_m.base;
	r->c = (struct nfsb_chunk){
		.w = &r->w, .nf = &r->nf, .buf = dst, .want = want, .off = 5};
	ck_assert_int_eq(nfsb_wire_read(r->wi, &peer, low, vfs_mono_s() + 5,
					version, "FH", 2, &r->c),
			 0);
	if (r->srv < 0) {
		int one = 1;

		r->srv = accept(r->ls, NULL, NULL);
		ck_assert_int_ge(r->srv, 0);
		/* each write() of a cut reply out at once, not after the
		 * delayed ACK of the one before */
		setsockopt(r->srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	read_full(r->srv, mark, 4);
	n = be32(mark) & 0x7fffffff;
	ck_assert_uint_le(n, sizeof(rec));
	read_full(r->srv, rec, n);
	return be32(rec);
}

/* Write `n` bytes to the server's end and service the wire until it took
 * them all (the request may stay pending): the last service result. */
static int wire_feed(struct wire_rig *r, const unsigned char *p, size_t n)
{
	int ret;

	if (n)
		ck_assert_int_eq(write(r->srv, p, n), (ssize_t)n);
	for (int i = 0; i < 20; i++) {
		int avail = 0;

		ret = nfsb_wire_service(r->wi, POLLIN);
		if (ret < 0)
			return ret;
		/* the wire took everything written (loopback queues it on
		 * the client's side as write() returns) */
		if (ioctl(nfsb_wire_fd(r->wi), FIONREAD, &avail) == 0 &&
		    avail == 0)
			break;
		usleep(1000);
	}
	return nfsb_wire_service(r->wi, POLLIN);
}

/* Re-cut the single-fragment record rec (mark included, n bytes) into two
 * fragments, the first with `first` bytes of the record: into out, its
 * length returned. */
static size_t wire_refrag(unsigned char *out, const unsigned char *rec,
			  size_t n, size_t first)
{
	size_t len = n - 4;

	put32(out, (uint32_t)first);
	memcpy(out + 4, rec + 4, first);
	put32(out + 4 + first, 0x80000000u | (uint32_t)(len - first));
	memcpy(out + 8 + first, rec + 4 + first, len - first);
	return n + 4;
}

/* A READ reply, v3 and v4, with as much data as asked, less (7) and none,
 * cut at every byte into two writes and at every byte into two fragments
 * (inside the head and inside the data): the data, its length and end of
 * file always land as sent, and nothing outside the asked bytes is
 * touched. */
START_TEST(test_wire_read_splits)
{
	static const char body[] = "0123456789";

	for (int version = 3; version <= 4; version++) {
		struct wire_rig r;

		wire_rig_start(&r);
		for (int len = 0; len <= 10; len += len ? 3 : 7) {
			unsigned char buf[512], two[520];
			size_t n = 0;

			for (size_t cut = 0;; cut++) {
				for (int how = 0; how < 2; how++) {
					char dst[16];
					uint32_t xid;
					size_t m;

					memset(dst, 'x', sizeof(dst));
					xid = wire_read_send(&r, version,
							     dst + 3, 10);
					n = wire_read_reply(
						buf, xid, version, 0, body,
						(uint32_t)len, len < 10);
					if (cut >= n - 4)
						break;
					if (how == 0) {
						ck_assert_int_eq(
							wire_feed(&r, buf, cut),
							0);
						ck_assert_int_eq(
							wire_feed(&r, buf + cut,
								  n - cut),
							0);
					} else {
						m = wire_refrag(two, buf, n,
								cut);
						ck_assert_int_eq(
							wire_feed(&r, two, m),
							0);
					}
					ck_assert_int_eq(wire_run(&r), 0);
					ck_assert_int_eq(r.w.pending, 0);
					ck_assert_int_eq(r.w.err, 0);
					ck_assert_uint_eq(r.c.got, (size_t)len);
					ck_assert(r.c.eof == (len < 10));
					ck_assert(memcmp(dst, "xxx", 3) == 0);
					ck_assert(memcmp(dst + 3, body,
							 (size_t)len) == 0);
					for (size_t i = 3 + (size_t)len;
					     i < sizeof(dst); i++)
						ck_assert_int_eq(dst[i], 'x');
				}
				if (cut >= n - 4)
					break;
			}
			/* the request of the last round, never answered */
			nfsb_wire_reset(r.wi);
			close(r.srv);
			r.srv = -1;
		}
		wire_rig_stop(&r);
	}
}
END_TEST

/* Replies no sane server sends: a failed PUTFH, a verifier 4 GiB long, a
 * record that ends inside the data, a reply to a request still being
 * written, bytes with nothing asked.  Each fails its request (or is
 * dropped) without touching the reader's buffer beyond what it asked. */
START_TEST(test_wire_hostile)
{
	for (int version = 3; version <= 4; version++) {
		struct wire_rig r;
		unsigned char buf[512];
		char dst[16];
		uint32_t xid;
		size_t n;

		wire_rig_start(&r);

		/* v4: PUTFH failed, no READ result */
		memset(dst, 'x', sizeof(dst));
		xid = wire_read_send(&r, version, dst, 10);
		n = wire_read_reply(buf, xid, version, NFS4ERR_ACCESS, "", 0,
				    false);
		ck_assert_int_eq(wire_feed(&r, buf, n), 0);
		ck_assert_int_eq(wire_run(&r), 0);
		ck_assert_int_eq(r.w.err, -EACCES);
		ck_assert(!r.w.transport);
		ck_assert(memcmp(dst, "xxxxxxxxxxxxxxxx", 16) == 0);

		/* a verifier of 0xffffffff bytes in a short record */
		xid = wire_read_send(&r, version, dst, 10);
		n = wire_read_reply(buf, xid, version, 0, "0123456789", 10,
				    false);
		put32(buf + 20, 0xffffffffu); /* its length */
		ck_assert_int_eq(wire_feed(&r, buf, n), 0);
		ck_assert_int_eq(wire_run(&r), 0);
		ck_assert_int_eq(r.w.pending, 0);
		ck_assert(r.w.transport);
		ck_assert(memcmp(dst, "xxxxxxxxxxxxxxxx", 16) == 0);

		/* a record that ends inside its data: the stream is broken */
		xid = wire_read_send(&r, version, dst, 10);
		n = wire_read_reply(buf, xid, version, 0, "0123456789", 10,
				    false);
		put32(buf, 0x80000000u | (uint32_t)(n - 4 - 8));
		ck_assert_int_eq(write(r.srv, buf, n - 8), (ssize_t)(n - 8));
		ck_assert_int_eq(wire_run(&r), -EPROTO);
		nfsb_wire_reset(r.wi);
		ck_assert(r.w.transport);
		ck_assert_int_eq(dst[10], 'x');
		close(r.srv);
		r.srv = -1;

		/* bytes with nothing pending: the next request goes on a
		 * new connection, and the old one's bytes reach no one */
		xid = wire_read_send(&r, version, dst, 10);
		n = wire_read_reply(buf, xid, version, 0, "0123456789", 10,
				    false);
		ck_assert_int_eq(wire_feed(&r, buf, n), 0);
		ck_assert_int_eq(wire_run(&r), 0);
		ck_assert_int_eq(r.w.err, 0);
		n = wire_read_reply(buf, xid + 1, version, 0, "ABCDEFGHIJ", 10,
				    false);
		ck_assert_int_eq(write(r.srv, buf, n), (ssize_t)n);
		usleep(20000);
		close(r.srv);
		r.srv = -1;
		memset(dst, 'x', sizeof(dst));
		xid = wire_read_send(&r, version, dst, 10);
		n = wire_read_reply(buf, xid, version, 0, "0123456789", 10,
				    true);
		ck_assert_int_eq(wire_feed(&r, buf, n), 0);
		ck_assert_int_eq(wire_run(&r), 0);
		ck_assert_int_eq(r.w.err, 0);
		ck_assert(memcmp(dst, "0123456789xxxxxx", 16) == 0);

		/* a fragment of 2 GiB - 1 */
		xid = wire_read_send(&r, version, dst, 10);
		put32(buf, 0x7fffffffu);
		ck_assert_int_eq(write(r.srv, buf, 4), 4);
		ck_assert_int_eq(wire_run(&r), -EPROTO);
		nfsb_wire_reset(r.wi);
		ck_assert(r.w.transport);
		close(r.srv);
		r.srv = -1;

		/* a WRITE's reply of 8 KiB (a long tag), on a wire that
		 * READs made take records that long: the stream is broken,
		 * nothing is overrun */
		xid = wire_read_send(&r, version, dst, 10);
		n = wire_read_reply(buf, xid, version, 0, "0123456789", 10,
				    false);
		ck_assert_int_eq(wire_feed(&r, buf, n), 0);
		ck_assert_int_eq(wire_run(&r), 0);
		xid = wire_send(&r);
		{
			static unsigned char big[8192 + 64];
			size_t k = wire_reply(big, xid, NFS4_OK, false);

			put32(big + 32, 8192); /* the tag's length */
			put32(big, 0x80000000u | (uint32_t)(k - 4 + 8192));
			ck_assert_int_eq(write(r.srv, big, k + 8192),
					 (ssize_t)(k + 8192));
		}
		ck_assert_int_eq(wire_run(&r), -EPROTO);
		nfsb_wire_reset(r.wi);
		ck_assert(r.w.transport);

		wire_rig_stop(&r);
	}

	/* a reply to a WRITE the wire is still sending is no reply: it
	 * must not complete (the data is still being read from the
	 * caller's buffer) */
	{
		struct wire_rig r;
		size_t big = 16u << 20;
		char *data = malloc(big);
		unsigned char head[8], buf[256];
		uint32_t xid;
		size_t n;

		ck_assert_ptr_nonnull(data);
		memset(data, 'd', big);
		wire_rig_start(&r);
		nfsb_wait_init(&r.w);
		r.w.pending = 1;
		r.c = (struct nfsb_chunk){
			.w = &r.w, .nf = &r.nf, .buf = data, .want = big};
		ck_assert_int_eq(nfsb_wire_write(r.wi, r.ctx, vfs_mono_s() + 5,
						 0, &r.nf, &r.c, 0),
				 0);
		r.srv = accept(r.ls, NULL, NULL);
		read_full(r.srv, head, 8);
		xid = be32(head + 4);
		n = wire_reply(buf, xid, NFS4_OK, true);
		ck_assert_int_eq(write(r.srv, buf, n), (ssize_t)n);
		for (int i = 0; i < 20; i++) {
			usleep(2000);
			ck_assert_int_eq(nfsb_wire_service(r.wi, POLLIN), 0);
		}
		ck_assert_int_eq(r.w.pending, 1);
		nfsb_wire_reset(r.wi);
		ck_assert(r.w.transport);
		wire_rig_stop(&r);
		free(data);
	}
}
END_TEST

struct wire_flood {
	int fd;
	double until;
};

/* Empty records, the costliest bytes to take in (each a record mark and
 * a record's end), as fast as the socket takes them, until `until`. */
static void *wire_flood_main(void *arg)
{
	struct wire_flood *f = arg;
	static unsigned char buf[1 << 20];

	for (size_t i = 0; i + 4 <= sizeof(buf); i += 4)
		put32(buf + i, 0x80000000u);
	while (vfs_mono_s() < f->until)
		if (write(f->fd, buf, sizeof(buf)) <= 0)
			break;
	return NULL;
}

/* A server that floods the connection with bytes answering nothing, faster
 * than they are taken in: the wire's service returns often enough for its
 * caller to keep its deadline (without a bound on what one call takes in,
 * a call lasted as long as the flood in two runs of three). */
START_TEST(test_wire_flood)
{
	struct wire_rig r;
	struct wire_flood f;
	pthread_t t;
	char dst[16];
	double t0, longest = 0;

	wire_rig_start(&r);
	wire_read_send(&r, 3, dst, 10);
	f.fd = r.srv;
	f.until = vfs_mono_s() + 3;
	ck_assert_int_eq(pthread_create(&t, NULL, wire_flood_main, &f), 0);
	t0 = vfs_mono_s();
	while (vfs_mono_s() - t0 < 1) {
		double s = vfs_mono_s();
		struct pollfd pfd = {.fd = nfsb_wire_fd(r.wi),
				     .events = POLLIN};

		poll(&pfd, 1, 50);
		ck_assert_int_eq(nfsb_wire_service(r.wi, pfd.revents), 0);
		if (vfs_mono_s() - s > longest)
			longest = vfs_mono_s() - s;
	}
	nfsb_wire_reset(r.wi);
	shutdown(r.srv, SHUT_RDWR);
	pthread_join(t, NULL);
	ck_assert_msg(longest < 0.5, "one service call took %.2f s", longest);
	ck_assert(r.w.transport);
	wire_rig_stop(&r);
}
END_TEST

/* A server that refuses the connection (restarting, say): the request
 * completes at once as a transport failure, so that the caller rebuilds
 * the context and tries again, as for a connection lost under it; the
 * same for a WRITE whose context's socket is no longer connected. */
START_TEST(test_wire_unreachable)
{
	struct wire_rig r;
	struct sockaddr_storage peer;
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer;
	char dst[16];
	int s;

	wire_rig_start(&r);
	/* a port nothing listens on */
	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&peer, 0, sizeof(peer));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)sin, sizeof(*sin)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)sin,
				     &(socklen_t){sizeof(*sin)}),
			 0);
	close(s);
	nfsb_wait_init(&r.w);
	r.w.pending = 1;
	r.c = (struct nfsb_chunk){
		.w = &r.w, .nf = &r.nf, .buf = dst, .want = 10};
	ck_assert_int_eq(nfsb_wire_read(r.wi, &peer, false, vfs_mono_s() + 2, 3,
					"FH", 2, &r.c),
			 0);
	ck_assert_int_eq(r.w.pending, 0);
	ck_assert(r.w.transport);
	ck_assert(!nfsb_wire_busy(r.wi));

	/* a context socket that is not connected */
	s = socket(AF_INET, SOCK_STREAM, 0);
	nfsb_wait_init(&r.w);
	r.w.pending = 1;
	r.c = (struct nfsb_chunk){
		.w = &r.w, .nf = &r.nf, .buf = r.data, .want = 5};
	ck_assert_int_eq(
		nfsb_wire_write(r.wi, s, vfs_mono_s() + 2, 0, &r.nf, &r.c, 0),
		0);
	ck_assert_int_eq(r.w.pending, 0);
	ck_assert(r.w.transport);
	close(s);

	/* a server that takes no connection (its accept queue full: the
	 * SYN is dropped) until the call's deadline: not queued, no
	 * completion, so that the call fails without a retry that would
	 * wait as long again */
	{
		int full = socket(AF_INET, SOCK_STREAM, 0), in;
		double t0;

		sin->sin_port = 0;
		ck_assert_int_eq(
			bind(full, (struct sockaddr *)sin, sizeof(*sin)), 0);
		ck_assert_int_eq(listen(full, 0), 0);
		ck_assert_int_eq(getsockname(full, (struct sockaddr *)sin,
					     &(socklen_t){sizeof(*sin)}),
				 0);
		in = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_eq(
			connect(in, (struct sockaddr *)sin, sizeof(*sin)), 0);
		nfsb_wait_init(&r.w);
		r.w.pending = 1;
		r.c = (struct nfsb_chunk){
			.w = &r.w, .nf = &r.nf, .buf = dst, .want = 10};
		t0 = vfs_mono_s();
		ck_assert_int_ne(nfsb_wire_read(r.wi, &peer, false, t0 + 0.3, 3,
						"FH", 2, &r.c),
				 0);
		ck_assert_double_lt(vfs_mono_s() - t0, 1);
		ck_assert_int_eq(r.w.pending, 1);
		close(in);
		close(full);
	}
	wire_rig_stop(&r);
}
END_TEST

struct wire_drain {
	int fd;
	double until;
	size_t got;
};

/* Read what the server is sent until `until`, counting it. */
static void *wire_drain_main(void *arg)
{
	struct wire_drain *d = arg;
	static char buf[1 << 16];

	while (vfs_mono_s() < d->until) {
		struct pollfd pfd = {.fd = d->fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		n = read(d->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		d->got += (size_t)n;
	}
	return NULL;
}

/* The server reads all it is sent for 1.5 s while the wire is serviced
 * for 1 s: what reached it is in d->got. */
static void wire_serve_drained(struct wire_rig *r, struct wire_drain *d)
{
	pthread_t t;
	double t0;

	*d = (struct wire_drain){.fd = r->srv, .until = vfs_mono_s() + 1.5};
	ck_assert_int_eq(pthread_create(&t, NULL, wire_drain_main, d), 0);
	t0 = vfs_mono_s();
	while (vfs_mono_s() - t0 < 1) {
		struct pollfd pfd = {.fd = nfsb_wire_fd(r->wi),
				     .events = nfsb_wire_events(r->wi)};

		poll(&pfd, 1, 20);
		ck_assert_int_eq(nfsb_wire_service(r->wi, pfd.revents), 0);
	}
	pthread_join(t, NULL);
}

/* A WRITE under its caller's deadline, queued behind one the full socket
 * holds up, does not go out once the deadline passed, though the wire is
 * serviced (as nfsb_drive does when it wakes just past the deadline,
 * before its caller gives the request up): only the first WRITE reaches
 * the server. */
START_TEST(test_wire_send_by)
{
	struct wire_rig r;
	size_t big = 32u << 20;
	char *data = malloc(big);
	struct nfsb_wait w2;
	struct nfsb_chunk c2;
	struct wire_drain d;

	ck_assert_ptr_nonnull(data);
	memset(data, 'd', big);
	wire_rig_start(&r);
	nfsb_wait_init(&r.w);
	r.w.pending = 1;
	r.c = (struct nfsb_chunk){
		.w = &r.w, .nf = &r.nf, .buf = data, .want = big};
	ck_assert_int_eq(nfsb_wire_write(r.wi, r.ctx, vfs_mono_s() + 5, 0,
					 &r.nf, &r.c, 0),
			 0);
	r.srv = accept(r.ls, NULL, NULL);
	ck_assert_int_ge(r.srv, 0);
	nfsb_wait_init(&w2);
	w2.pending = 1;
	c2 = (struct nfsb_chunk){
		.w = &w2, .nf = &r.nf, .buf = r.data, .want = 5};
	ck_assert_int_eq(nfsb_wire_write(r.wi, r.ctx, vfs_mono_s() + 5,
					 vfs_mono_s() + 0.1, &r.nf, &c2, 0),
			 0);
	usleep(200000);
	/* the server reads all it is sent, the wire is serviced */
	wire_serve_drained(&r, &d);
	/* the first WRITE, whole (its head, the data), not a byte more */
	ck_assert_uint_gt(d.got, big);
	ck_assert_uint_lt(d.got, big + 200);
	ck_assert_int_eq(w2.pending, 1);
	/* its caller gives it up */
	nfsb_wire_reset(r.wi);
	ck_assert_int_eq(w2.pending, 0);
	ck_assert(w2.transport);
	wire_rig_stop(&r);

	/* a WRITE under a deadline that passes while it is partly sent: the
	 * rest is held, the server never has it whole */
	wire_rig_start(&r);
	nfsb_wait_init(&r.w);
	r.w.pending = 1;
	r.c = (struct nfsb_chunk){
		.w = &r.w, .nf = &r.nf, .buf = data, .want = big};
	ck_assert_int_eq(nfsb_wire_write(r.wi, r.ctx, vfs_mono_s() + 5,
					 vfs_mono_s() + 0.1, &r.nf, &r.c, 0),
			 0);
	r.srv = accept(r.ls, NULL, NULL);
	ck_assert_int_ge(r.srv, 0);
	usleep(200000);
	wire_serve_drained(&r, &d);
	ck_assert_uint_lt(d.got, big);
	ck_assert_int_eq(r.w.pending, 1);
	nfsb_wire_reset(r.wi);
	ck_assert(r.w.transport);
	wire_rig_stop(&r);
	free(data);
}
END_TEST

Suite *nfs_suite(void);

Suite *nfs_suite(void)
{
	Suite *s = suite_create("nfs");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_option_spec);
	tcase_add_test(tc, test_refused_is_fast_and_named);
	tcase_add_test(tc, test_data_path);
	tcase_add_test(tc, test_call_on_lost_context);
	tcase_add_test(tc, test_wire_replies);
	tcase_add_test(tc, test_wire_reads);
	tcase_add_test(tc, test_wire_read_splits);
	tcase_add_test(tc, test_wire_hostile);
	tcase_add_test(tc, test_wire_flood);
	tcase_add_test(tc, test_wire_unreachable);
	tcase_add_test(tc, test_wire_send_by);
	tcase_add_test(tc, test_pool_connected_once_answered);
	tcase_add_test(tc, test_pool_cache_dropped_after_outage);
	tcase_add_test(tc, test_pool_one_slot_fails);
	tcase_add_test(tc, test_pool_abandoned_not_counted);
	tcase_add_test(tc, test_pool_failing_slot_state);
	tcase_add_test(tc, test_pool_failing_slot_backoff_grows);
	tcase_add_test(tc, test_pool_rebuild_at_caller_deadline);
	tcase_add_test(tc, test_pool_rebuild_hangs_beside_live);
	suite_add_tcase(s, tc);
	return s;
}
