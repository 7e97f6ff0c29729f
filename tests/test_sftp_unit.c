/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_sftp_unit.c - unit tests for the SFTP backend's server-free parts:
 * the status/libssh2 → errno mapping, OpenSSH fingerprint formatting, the
 * attribute/listing cache, the option spec and mount's failure paths, and
 * the connection pool's bookkeeping driven directly, over sessions that
 * are never connected (pool.c).
 * Everything that needs an sshd is in tests/integration/test_sftp.py.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/callctx.h"
#include "backends/sftp/internal.h"
#include "lib/options.h"
#include "lib/url.h"

Suite *sftp_suite(void);

START_TEST(test_status_errno)
{
	static const struct {
		unsigned long status;
		int err;
	} map[] = {
		{SFTP_FX_OK, 0},
		{SFTP_FX_NO_SUCH_FILE, -ENOENT},
		{SFTP_FX_NO_SUCH_PATH, -ENOENT},
		{SFTP_FX_PERMISSION_DENIED, -EACCES},
		{SFTP_FX_WRITE_PROTECT, -EROFS},
		{SFTP_FX_FAILURE, -EIO},
		{SFTP_FX_OP_UNSUPPORTED, -EOPNOTSUPP},
		{SFTP_FX_FILE_ALREADY_EXISTS, -EEXIST},
		{SFTP_FX_NO_SPACE_ON_FILESYSTEM, -ENOSPC},
		{SFTP_FX_QUOTA_EXCEEDED, -EDQUOT},
		{SFTP_FX_DIR_NOT_EMPTY, -ENOTEMPTY},
		{SFTP_FX_NOT_A_DIRECTORY, -ENOTDIR},
		{SFTP_FX_LINK_LOOP, -ELOOP},
		{SFTP_FX_INVALID_HANDLE, -EBADF},
		{SFTP_FX_NO_CONNECTION, -ENOTCONN},
		{SFTP_FX_CONNECTION_LOST, -ECONNABORTED},
		/* OpenSSH's answer to EINVAL and ENAMETOOLONG; names are
		 * checked before they are sent, so it means EINVAL */
		{SFTP_FX_BAD_MESSAGE, -EINVAL},
		{9999, -EIO},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		ck_assert_msg(sftp_status_errno(map[i].status) == map[i].err,
			      "status %lu: expected %d, got %d", map[i].status,
			      map[i].err, sftp_status_errno(map[i].status));
	/* never a positive errno, never -1 (EPERM would be a lie) */
	for (unsigned long st = 0; st < 40; st++) {
		ck_assert_int_le(sftp_status_errno(st), 0);
		ck_assert_int_ne(sftp_status_errno(st), -1);
	}
}
END_TEST

START_TEST(test_libssh2_errno)
{
	bool transport;

	ck_assert_int_eq(sftp_libssh2_errno(LIBSSH2_ERROR_TIMEOUT, &transport),
			 -ETIMEDOUT);
	ck_assert(transport);
	ck_assert_int_eq(
		sftp_libssh2_errno(LIBSSH2_ERROR_SOCKET_RECV, &transport),
		-EIO);
	ck_assert(transport);
	ck_assert_int_eq(
		sftp_libssh2_errno(LIBSSH2_ERROR_CHANNEL_CLOSED, &transport),
		-EIO);
	ck_assert(transport);
	ck_assert_int_eq(
		sftp_libssh2_errno(LIBSSH2_ERROR_BUFFER_TOO_SMALL, &transport),
		-ENAMETOOLONG);
	ck_assert(!transport);
	ck_assert_int_eq(sftp_libssh2_errno(LIBSSH2_ERROR_NONE, &transport), 0);
	ck_assert(!transport);
	for (int rc = -1; rc >= -50; rc--) {
		int e = sftp_libssh2_errno(rc, &transport);

		ck_assert_int_lt(e, 0);
		ck_assert_int_ne(e, -1);
	}
}
END_TEST

START_TEST(test_fingerprint)
{
	unsigned char digest[32];
	char out[64];

	for (int i = 0; i < 32; i++)
		digest[i] = (unsigned char)i;
	sftp_fingerprint_fmt(digest, out, sizeof(out));
	/* what `ssh-keygen -l -E sha256` prints: no '=' padding */
	ck_assert_str_eq(out,
			 "SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
	memset(digest, 0xff, sizeof(digest));
	sftp_fingerprint_fmt(digest, out, sizeof(out));
	ck_assert_str_eq(out,
			 "SHA256://////////////////////////////////////////8");
	/* too small a buffer: empty, never overrun */
	sftp_fingerprint_fmt(digest, out, 10);
	ck_assert_str_eq(out, "");
}
END_TEST

static struct stat st_of(off_t size)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0644;
	st.st_size = size;
	return st;
}

START_TEST(test_cache_attr)
{
	struct remote_cache *c = remote_cache_new(60);
	struct stat st = st_of(42), got;

	ck_assert_ptr_nonnull(c);
	ck_assert(!remote_cache_get_attr(c, "/a/b", &got));
	remote_cache_put_attr(c, "/a/b", &st, remote_cache_gen(c));
	ck_assert(remote_cache_get_attr(c, "/a/b", &got));
	ck_assert_int_eq(got.st_size, 42);
	ck_assert(!remote_cache_get_attr(c, "/a", &got));
	remote_cache_invalidate(c, "/a/b");
	ck_assert(!remote_cache_get_attr(c, "/a/b", &got));
	remote_cache_put_attr(c, "/x", &st, remote_cache_gen(c));
	remote_cache_clear(c);
	ck_assert(!remote_cache_get_attr(c, "/x", &got));
	remote_cache_free(c);
}
END_TEST

START_TEST(test_cache_invalidate_name)
{
	struct remote_cache *c = remote_cache_new(60);
	struct stat st = st_of(1), got;

	remote_cache_put_attr(c, "/d", &st, remote_cache_gen(c));
	remote_cache_put_attr(c, "/d/f", &st, remote_cache_gen(c));
	/* a write to /d/f leaves the directory's attributes alone */
	remote_cache_invalidate(c, "/d/f");
	ck_assert(remote_cache_get_attr(c, "/d", &got));
	/* a new or removed name changes the directory's times */
	remote_cache_put_attr(c, "/d/f", &st, remote_cache_gen(c));
	remote_cache_invalidate_name(c, "/d/f");
	ck_assert(!remote_cache_get_attr(c, "/d/f", &got));
	ck_assert(!remote_cache_get_attr(c, "/d", &got));
	/* ... also the mount's root */
	remote_cache_put_attr(c, "/", &st, remote_cache_gen(c));
	remote_cache_invalidate_name(c, "/top");
	ck_assert(!remote_cache_get_attr(c, "/", &got));
	remote_cache_free(c);
}
END_TEST

START_TEST(test_cache_disabled)
{
	struct remote_cache *c = remote_cache_new(0);
	struct remote_listing *l = remote_listing_new();
	struct stat st = st_of(1), got;

	remote_cache_put_attr(c, "/f", &st, remote_cache_gen(c));
	ck_assert(!remote_cache_get_attr(c, "/f", &got));
	remote_cache_put_listing(c, "/", l, remote_cache_gen(c));
	ck_assert_ptr_null(remote_cache_get_listing(c, "/"));
	remote_listing_put(c, l);
	remote_cache_free(c);
}
END_TEST

START_TEST(test_cache_listing)
{
	struct remote_cache *c = remote_cache_new(60);
	struct remote_listing *l = remote_listing_new(), *got;
	struct stat st = st_of(7);

	ck_assert_int_eq(vfs_dirbuf_add(&l->db, "f", &st, VFS_DIRENT_FULL), 0);
	remote_cache_put_listing(c, "/d", l, remote_cache_gen(c));
	remote_listing_put(c, l); /* the cache keeps its own reference */
	got = remote_cache_get_listing(c, "/d");
	ck_assert_ptr_eq(got, l);
	/* a change inside /d drops the listing from the cache, but an open
	 * stream keeps reading it */
	remote_cache_invalidate(c, "/d/f");
	ck_assert_ptr_null(remote_cache_get_listing(c, "/d"));
	ck_assert_uint_eq(got->db.n, 1);
	ck_assert_str_eq(got->db.ents[0].name, "f");
	remote_listing_put(c, got);

	/* entries directly under the root have "/" as parent */
	l = remote_listing_new();
	remote_cache_put_listing(c, "/", l, remote_cache_gen(c));
	remote_listing_put(c, l);
	ck_assert_ptr_nonnull(got = remote_cache_get_listing(c, "/"));
	remote_listing_put(c, got);
	remote_cache_invalidate(c, "/top");
	ck_assert_ptr_null(remote_cache_get_listing(c, "/"));

	l = remote_listing_new();
	remote_cache_put_listing(c, "/e", l, remote_cache_gen(c));
	remote_listing_put(c, l);
	remote_cache_invalidate_dir(c, "/e");
	ck_assert_ptr_null(remote_cache_get_listing(c, "/e"));
	remote_cache_free(c);
}
END_TEST

START_TEST(test_cache_expiry)
{
	struct remote_cache *c = remote_cache_new(1);
	struct stat st = st_of(3), got;

	remote_cache_put_attr(c, "/f", &st, remote_cache_gen(c));
	ck_assert(remote_cache_get_attr(c, "/f", &got));
	usleep(1100 * 1000);
	ck_assert(!remote_cache_get_attr(c, "/f", &got));
	remote_cache_expire(c);
	remote_cache_free(c);
}
END_TEST

/* ---- The connection pool (pool.c) ---------------------------------- */

static char pool_display[] = "sftp://test/";

/* A pool of n slots, each with an up session that is never connected
 * (libssh2 only tears it down).  No maintenance thread: the test makes
 * its reconnects with pool_reopen(). */
static void pool_setup(struct sftp_mount *sm, int n)
{
	memset(sm, 0, sizeof(*sm));
	sm->cfg.display = pool_display;
	sm->cfg.connections = n;
	sm->cfg.timeout_ms = 5000;
	sm->cache = remote_cache_new(0);
	ck_assert_ptr_nonnull(sm->cache);
	ck_assert_int_eq(sftp_pool_init(sm), 0);
	for (int i = 0; i < n; i++) {
		struct sftp_sess *s = &sm->pool.sess[i];

		s->ssh = libssh2_session_init();
		ck_assert_ptr_nonnull(s->ssh);
		sm->pool.ss.slot[i].conn = s;
		sm->pool.ss.slot[i].gen = 1;
	}
}

/* What the maintenance thread does once it opened a session in slot c. */
static void pool_reopen(struct sftp_mount *sm, int idx)
{
	struct sftp_sess *s = &sm->pool.sess[idx];

	ck_assert(!sm->pool.ss.slot[idx].conn && !sm->pool.ss.slot[idx].busy &&
		  !s->ssh);
	s->ssh = libssh2_session_init();
	ck_assert_ptr_nonnull(s->ssh);
	pthread_mutex_lock(&sm->pool.lock);
	/* counts a reconnect, or not, as for every backend */
	remote_slots_up_locked(&sm->pool.ss, idx, s);
	pthread_mutex_unlock(&sm->pool.lock);
}

static void pool_teardown(struct sftp_mount *sm)
{
	for (int i = 0; i < sm->pool.n; i++)
		if (sm->pool.sess[i].ssh)
			sftp_sess_close(&sm->pool.sess[i], false);
	sftp_pool_destroy(sm);
	remote_cache_free(sm->cache);
}

static struct sftp_conn *pool_take(struct sftp_mount *sm, int idx,
				   struct sftp_conn *c)
{
	ck_assert_int_eq(sftp_checkout(sm, idx, sm->pool.ss.slot[idx].gen, c),
			 0);
	return c;
}

/* A session busy when the pool failed, whose call fails only after the
 * pool reconnected, closes itself and leaves the new sessions alone. */
START_TEST(test_pool_late_failure)
{
	struct sftp_mount sm;
	struct sftp_conn ca, cb, *a, *b;

	pool_setup(&sm, 3);
	a = pool_take(&sm, 0, &ca);
	b = pool_take(&sm, 1, &cb);
	b->broken = true; /* as req.c on a connection reset */
	sftp_checkin(&sm, b);
	ck_assert_str_eq(sftp_pool_state(&sm), "reconnecting");
	ck_assert(!sftp_pool_up(&sm, 1) && !sftp_pool_up(&sm, 2));
	ck_assert(sftp_pool_up(&sm, 0) && sm.pool.ss.slot[a->idx].doomed);
	pool_reopen(&sm, 1);
	pool_reopen(&sm, 2);
	ck_assert_str_eq(sftp_pool_state(&sm), "connected");
	ck_assert_uint_eq(sm.base.reconnects, 2);
	/* the old session's call fails now */
	a->broken = true;
	sftp_checkin(&sm, a);
	ck_assert(!sftp_pool_up(&sm, 0));
	ck_assert(sftp_pool_up(&sm, 1) && sm.pool.sess[1].ssh);
	ck_assert(sftp_pool_up(&sm, 2) && sm.pool.sess[2].ssh);
	ck_assert_str_eq(sftp_pool_state(&sm), "connected");
	pool_reopen(&sm, 0);
	ck_assert_uint_eq(sm.base.reconnects, 3);
	/* a failure of a session made since is a new one: all go */
	b = pool_take(&sm, 1, &cb);
	b->broken = true;
	sftp_checkin(&sm, b);
	ck_assert_str_eq(sftp_pool_state(&sm), "reconnecting");
	for (int i = 0; i < 3; i++)
		ck_assert(!sftp_pool_up(&sm, i));
	pool_teardown(&sm);
}
END_TEST

/* A session cut because a write missed its caller's deadline goes alone:
 * the mount stays connected, and the session that replaces it is no
 * reconnect. */
START_TEST(test_pool_abandoned)
{
	struct sftp_mount sm;
	struct sftp_conn ca, cb, *a, *b;
	struct vfs_callctx old;

	pool_setup(&sm, 2);
	old = vfs_callctx_push(vfs_mono_ns() + 20000000LL, false);
	a = pool_take(&sm, 0, &ca);
	ck_assert(a->fenced);
	usleep(30000);
	/* as req.c when the channel failed with -ECANCELED */
	a->broken = true;
	a->cancelled = true;
	sftp_checkin(&sm, a);
	vfs_callctx_pop(old);
	ck_assert(!sftp_pool_up(&sm, 0));
	ck_assert(sftp_pool_up(&sm, 1));
	ck_assert_str_eq(sftp_pool_state(&sm), "connected");
	pool_reopen(&sm, 0);
	ck_assert_uint_eq(sm.base.reconnects, 0);
	/* a session that broke is counted */
	b = pool_take(&sm, 1, &cb);
	b->broken = true;
	sftp_checkin(&sm, b);
	pool_reopen(&sm, 0);
	pool_reopen(&sm, 1);
	ck_assert_uint_eq(sm.base.reconnects, 2);
	pool_teardown(&sm);
}
END_TEST

/* links.c: groups of names through link, unlink and rename. */
START_TEST(test_links_groups)
{
	struct remote_cache *cache = remote_cache_new(1);
	struct sftp_links *l = sftp_links_new(cache);
	char *other;
	nlink_t n;
	ino_t ino;

	ck_assert_ptr_nonnull(l);
	ck_assert(!sftp_links_get(l, "/a", &ino, &n, NULL));
	sftp_links_linked(l, "/a", "/d/b", 7);
	sftp_links_linked(l, "/d/b", "/c", 99); /* b has a group: 99 unused */
	ck_assert(sftp_links_get(l, "/c", &ino, &n, &other));
	ck_assert_uint_eq(ino, 7);
	ck_assert_uint_eq(n, 3);
	ck_assert_ptr_nonnull(other);
	ck_assert_str_ne(other, "/c");
	free(other);
	/* a directory renamed: the names below it move */
	sftp_links_moved(l, "/d", "/e");
	ck_assert(!sftp_links_get(l, "/d/b", &ino, &n, NULL));
	ck_assert(sftp_links_get(l, "/e/b", &ino, &n, NULL) && ino == 7);
	/* "/dd" is not below "/d" */
	sftp_links_linked(l, "/a", "/dd", 0);
	sftp_links_moved(l, "/e/b", "/d");
	ck_assert(sftp_links_get(l, "/dd", &ino, &n, NULL) && n == 4);
	ck_assert(sftp_links_get(l, "/d", &ino, &n, NULL));
	/* a rename onto a grouped name: that name is gone */
	sftp_links_moved(l, "/x", "/c");
	ck_assert(!sftp_links_get(l, "/c", &ino, &n, NULL));
	ck_assert(sftp_links_get(l, "/a", &ino, &n, NULL) && n == 3);
	sftp_links_gone(l, "/a");
	sftp_links_gone(l, "/dd");
	ck_assert(sftp_links_get(l, "/d", &ino, &n, &other) && n == 1);
	ck_assert_ptr_null(other);
	/* the last name goes: the group with it */
	sftp_links_gone(l, "/d");
	ck_assert(!sftp_links_get(l, "/d", &ino, &n, NULL));
	/* linking a name to itself's group again changes nothing */
	sftp_links_linked(l, "/p", "/q", 5);
	sftp_links_linked(l, "/p", "/q", 5);
	ck_assert(sftp_links_get(l, "/q", &ino, &n, NULL) && n == 2);
	sftp_links_free(l);
	remote_cache_free(cache);
}
END_TEST

static int validate(const char *key, const char *value, int origin)
{
	struct vfs_opts o = {0};
	struct vfs_error err;
	int ret;

	vfs_error_init(&err);
	ck_assert_int_eq(vfs_opts_set(&o, key, value, origin), 0);
	ret = vfs_opts_validate(&o, sftp_ops.opts, "test", &err);
	vfs_opts_clear(&o);
	return ret;
}

START_TEST(test_option_spec)
{
	struct vfs_opts o = {0};
	struct vfs_error err;

	ck_assert_str_eq(sftp_ops.name, "sftp");
	vfs_error_init(&err);
	ck_assert_int_eq(vfs_opts_validate(&o, sftp_ops.opts, "test", &err), 0);
	ck_assert_str_eq(vfs_opts_get(&o, "known_hosts"), "~/.ssh/known_hosts");
	ck_assert_str_eq(vfs_opts_get(&o, "hostkey"), "strict");
	ck_assert_int_eq(vfs_opts_get_int(&o, "connections"), 4);
	ck_assert_int_eq(vfs_opts_get_int(&o, "timeout"), 20);
	ck_assert_int_eq(vfs_opts_get_int(&o, "keepalive"), 15);
	ck_assert_int_eq(vfs_opts_get_int(&o, "cache_ttl"), 1);
	ck_assert(!vfs_opts_get_bool(&o, "remote_exec"));
	ck_assert(!vfs_opts_get_bool(&o, "cache_names"));
	vfs_opts_clear(&o);

	ck_assert_int_eq(validate("hostkey", "accept-new", VFS_ORIGIN_URL), 0);
	ck_assert_int_eq(validate("hostkey", "yes", VFS_ORIGIN_URL), -EINVAL);
	ck_assert_int_eq(validate("connections", "0", VFS_ORIGIN_URL), -EINVAL);
	ck_assert_int_eq(validate("connections", "65", VFS_ORIGIN_URL),
			 -EINVAL);
	ck_assert_int_eq(validate("keepalive", "0", VFS_ORIGIN_URL), 0);
	ck_assert_int_eq(validate("identity", "relative", VFS_ORIGIN_URL),
			 -EINVAL);
	ck_assert_int_eq(validate("remote_exec", "yes", VFS_ORIGIN_URL), 0);
	ck_assert_int_eq(validate("cache_names", "yes", VFS_ORIGIN_URL), 0);
	ck_assert_int_eq(validate("cache_names", "2", VFS_ORIGIN_URL), -EINVAL);
	/* a password only from a config file */
	ck_assert_int_eq(validate("password", "pw", VFS_ORIGIN_URL), -EINVAL);
	ck_assert_int_eq(validate("password", "pw", VFS_ORIGIN_CONFIG), 0);
}
END_TEST

/* A port on 127.0.0.1 with nobody listening. */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int try_mount(const char *s, struct vfs_error *err)
{
	struct vfs_mount *m = NULL;
	struct vfs_url url;
	int ret;

	vfs_error_init(err);
	ck_assert_int_eq(vfs_url_parse(s, &url, err), 0);
	ck_assert_int_eq(
		vfs_opts_validate(&url.query, sftp_ops.opts, "test", err), 0);
	ret = sftp_ops.mount(&url, &url.query, &m, err);
	vfs_url_clear(&url);
	ck_assert_ptr_null(m);
	return ret;
}

START_TEST(test_mount_failures)
{
	struct vfs_error err;
	char url[128];

	snprintf(url, sizeof(url), "sftp://u@127.0.0.1:%d/srv?timeout=2",
		 closed_port());
	ck_assert_int_eq(try_mount(url, &err), -ECONNREFUSED);
	ck_assert_int_eq(err.code, ECONNREFUSED);
	ck_assert_ptr_nonnull(strstr(err.msg, "sftp://u@127.0.0.1:"));
	ck_assert_ptr_nonnull(strstr(err.msg, "port"));

	ck_assert_int_eq(try_mount("sftp:///no/host", &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "need a host"));
}
END_TEST

#if VFSD_BULK_CTR
/*
 * The bulk AES-128-CTR of backends/sftp/ctr.c gives byte for byte what
 * OpenSSL's own gives, in whatever pieces the data comes, across keystream
 * refills, encrypting and decrypting, and with key and IV given separately.
 */
START_TEST(test_bulk_ctr_matches_openssl)
{
	const EVP_CIPHER *ours = (const EVP_CIPHER *)sftp_ctr_cipher();
	EVP_CIPHER *ref = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
	size_t total = 300 * 1024 + 7, off;
	unsigned char key[16], iv[16];
	unsigned char *in = malloc(total), *a = malloc(total),
		      *b = malloc(total);
	int round;

	ck_assert_ptr_nonnull(ours);
	ck_assert_ptr_nonnull(ref);
	ck_assert_ptr_ne(ours, ref);
	srand(42);
	for (round = 0; round < 4; round++) {
		EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new(),
			       *y = EVP_CIPHER_CTX_new();
		int n = 0, enc = round & 1;

		for (size_t i = 0; i < total; i++)
			in[i] = (unsigned char)rand();
		for (int i = 0; i < 16; i++) {
			key[i] = (unsigned char)rand();
			iv[i] = (unsigned char)rand();
		}
		/* the IV's last bytes near wrap-around: the counter carries */
		memset(iv + 12, 0xff, 4);
		if (round < 2) {
			ck_assert(EVP_CipherInit(x, ours, key, iv, enc));
		} else {
			ck_assert(EVP_CipherInit(x, ours, key, NULL, enc));
			ck_assert(EVP_CipherInit(x, NULL, NULL, iv, enc));
		}
		ck_assert(EVP_EncryptInit_ex(y, ref, NULL, key, iv));
		ck_assert(EVP_EncryptUpdate(y, b, &n, in, (int)total));
		for (off = 0; off < total;) {
			/* as libssh2 does: 16 bytes, and odd pieces too */
			size_t len =
				round == 0 ? 16 : 1 + (size_t)rand() % 5000;

			if (len > total - off)
				len = total - off;
			ck_assert(EVP_Cipher(x, a + off, in + off,
					     (unsigned)len) >= 1);
			off += len;
		}
		ck_assert_int_eq(memcmp(a, b, total), 0);
		if (round == 1) {
			/* a re-init without key or IV goes on, never over */
			EVP_CIPHER_CTX *z = EVP_CIPHER_CTX_new();
			unsigned char two[32];

			ck_assert(EVP_CipherInit(z, ours, key, iv, 1));
			ck_assert(EVP_Cipher(z, two, in, 16) >= 1);
			ck_assert(EVP_CipherInit(z, NULL, NULL, NULL, -1));
			ck_assert(EVP_Cipher(z, two + 16, in + 16, 16) >= 1);
			ck_assert_int_eq(memcmp(two, b, 32), 0);
			/* a new key without an IV encrypts nothing */
			ck_assert(EVP_CipherInit(z, NULL, key, NULL, -1));
			ck_assert_int_le(EVP_Cipher(z, two, in, 16), 0);
			/* copies would share the keystream: refused */
			EVP_CIPHER_CTX *w = EVP_CIPHER_CTX_new();

			ck_assert_int_eq(EVP_CIPHER_CTX_copy(w, x), 0);
			EVP_CIPHER_CTX_free(w);
			EVP_CIPHER_CTX_free(z);
		}
		EVP_CIPHER_CTX_free(x);
		EVP_CIPHER_CTX_free(y);
	}
	EVP_CIPHER_free(ref);
	free(in);
	free(a);
	free(b);
}
END_TEST

/*
 * What libssh2 1.10 (src/openssl.c, built on OpenSSL 3) does with one
 * block: anything but -1 from EVP_Cipher() is success, and the output is
 * then copied over the block it sends.  0 when it would go on, 1 when it
 * fails the packet (LIBSSH2_ERROR_ENCRYPT / _DECRYPT).
 */
static int libssh2_crypt(EVP_CIPHER_CTX *ctx, unsigned char *block)
{
	unsigned char buf[16];
	int ret;

	memset(buf, 0xa5, sizeof(buf)); /* stands for stale stack bytes */
	ret = EVP_Cipher(ctx, buf, block, 16);
	if (ret == -1)
		return 1;
	memcpy(block, buf, 16);
	return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/*
 * Every failure inside the bulk cipher fails closed: the init callback
 * says 0 (EVP_CipherInit() fails, and so does libssh2's key exchange),
 * a cipher call says -1 (what libssh2 takes as failure) with its output
 * zeroed, and the context stays failed until a new IV.
 */
START_TEST(test_bulk_ctr_fails_closed)
{
	const EVP_CIPHER *ours = (const EVP_CIPHER *)sftp_ctr_cipher();
	EVP_CIPHER *ref = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
	static const unsigned int init_faults[] = {SFTP_CTR_FAIL_ALLOC,
						   SFTP_CTR_FAIL_KEY};
	size_t big = 64 * 1024 - 8; /* the first refill's keystream, almost */
	unsigned char key[16], iv[16], block[16], plain[16], out[32];
	unsigned char *in = calloc(1, big + 32), *a = malloc(big + 32),
		      *b = malloc(big + 32);
	EVP_CIPHER_CTX *x, *y;
	int n = 0;

	ck_assert_ptr_nonnull(ours);
	ck_assert_ptr_nonnull(ref);
	memset(key, 7, sizeof(key));
	memset(iv, 9, sizeof(iv));
	memcpy(plain, "sixteen bytes..", 16);

	/* the bulk context cannot be allocated, or not keyed */
	for (size_t i = 0; i < 2; i++) {
		x = EVP_CIPHER_CTX_new();
		sftp_ctr_test_faults = init_faults[i];
		ck_assert_int_eq(EVP_CipherInit(x, ours, key, iv, 1), 0);
		ck_assert_uint_eq(sftp_ctr_test_faults, 0);
		memcpy(block, plain, 16);
		ck_assert_int_eq(libssh2_crypt(x, block), 1);
		memcpy(out, plain, 16);
		ck_assert_int_eq(EVP_Cipher(x, out, out, 16), -1);
		ck_assert(all_zero(out, 16));
		EVP_CIPHER_CTX_free(x);
	}

	/* a key and no IV yet */
	x = EVP_CIPHER_CTX_new();
	ck_assert(EVP_CipherInit(x, ours, key, NULL, 1));
	memcpy(block, plain, 16);
	ck_assert_int_eq(libssh2_crypt(x, block), 1);
	EVP_CIPHER_CTX_free(x);

	/* the first keystream refill fails, in place */
	x = EVP_CIPHER_CTX_new();
	ck_assert(EVP_CipherInit(x, ours, key, iv, 1));
	sftp_ctr_test_faults = SFTP_CTR_FAIL_REFILL;
	memcpy(out, plain, 16);
	ck_assert_int_eq(EVP_Cipher(x, out, out, 16), -1);
	ck_assert(all_zero(out, 16));
	/* and it stays failed, though OpenSSL would answer now */
	memcpy(block, plain, 16);
	ck_assert_int_eq(libssh2_crypt(x, block), 1);
	ck_assert_int_eq(EVP_EncryptUpdate(x, out, &n, plain, 16), 0);
	/* until a new IV restarts the keystream */
	ck_assert(EVP_CipherInit(x, NULL, NULL, iv, -1));
	y = EVP_CIPHER_CTX_new();
	ck_assert(EVP_EncryptInit_ex(y, ref, NULL, key, iv));
	ck_assert(EVP_EncryptUpdate(y, b, &n, in, (int)(big + 32)));
	ck_assert_int_eq(EVP_Cipher(x, a, in, (unsigned)big), (int)big);
	ck_assert_int_eq(memcmp(a, b, big), 0);

	/* a later refill fails, in the middle of a call */
	sftp_ctr_test_faults = SFTP_CTR_FAIL_REFILL;
	memcpy(out, in + big, 16);
	ck_assert_int_eq(EVP_Cipher(x, out, out, 16), -1);
	ck_assert(all_zero(out, 16));
	memcpy(block, plain, 16);
	ck_assert_int_eq(libssh2_crypt(x, block), 1);
	EVP_CIPHER_CTX_free(x);

	/* without faults, what libssh2 and EVP_Encrypt* get is right */
	x = EVP_CIPHER_CTX_new();
	ck_assert(EVP_CipherInit(x, ours, key, iv, 1));
	memcpy(block, in, 16);
	ck_assert_int_eq(libssh2_crypt(x, block), 0);
	ck_assert_int_eq(memcmp(block, b, 16), 0);
	ck_assert(EVP_EncryptUpdate(x, out, &n, in + 16, 16));
	ck_assert_int_eq(n, 16);
	ck_assert_int_eq(memcmp(out, b + 16, 16), 0);
	ck_assert(EVP_EncryptFinal_ex(x, out, &n));
	ck_assert_int_eq(n, 0);
	EVP_CIPHER_CTX_free(x);
	EVP_CIPHER_CTX_free(y);
	EVP_CIPHER_free(ref);
	free(in);
	free(a);
	free(b);
}
END_TEST

/*
 * The run-time checks before libssh2 gets the bulk cipher: each failing
 * one names its reason, and in this process (linked as the daemon is)
 * they pass, after which callers other than libssh2 still get OpenSSL's.
 */
START_TEST(test_bulk_ctr_engages_only_when_safe)
{
	const void *openssl = dlsym(RTLD_NEXT, "EVP_aes_128_ctr");
	const void *ours = (const void *)EVP_aes_128_ctr;
	/* a libc function no sanitizer runtime intercepts (printf would be
	 * found in libasan under -Db_sanitize) */
	const void *libc = dlsym(RTLD_DEFAULT, "gnu_get_libc_version");
	char why[256];

	ck_assert_ptr_nonnull(openssl);
	ck_assert_ptr_ne(openssl, ours);
	ck_assert(!sftp_ctr_check(NULL, openssl, ours, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "not built on OpenSSL"));
	ck_assert(!sftp_ctr_check(libc, openssl, ours, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "libssh2 uses libcrypto "));
	ck_assert_ptr_nonnull(strstr(why, "libc.so"));
	ck_assert_ptr_nonnull(strstr(why, "libcrypto.so"));
	ck_assert(!sftp_ctr_check(openssl, openssl, openssl, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "would not call"));
	ck_assert(sftp_ctr_check(openssl, openssl, ours, why, sizeof(why)));

	ck_assert(sftp_ctr_engage());
	ck_assert(sftp_ctr_engage());
	ck_assert_ptr_eq(EVP_aes_128_ctr(),
			 ((const EVP_CIPHER *(*)(void))(uintptr_t)openssl)());
}
END_TEST
#else
START_TEST(test_bulk_ctr_left_out)
{
	ck_assert(!sftp_ctr_engage());
}
END_TEST
#endif

Suite *sftp_suite(void)
{
	Suite *s = suite_create("sftp");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_status_errno);
	tcase_add_test(tc, test_libssh2_errno);
	tcase_add_test(tc, test_fingerprint);
	tcase_add_test(tc, test_cache_attr);
	tcase_add_test(tc, test_cache_invalidate_name);
	tcase_add_test(tc, test_cache_disabled);
	tcase_add_test(tc, test_cache_listing);
	tcase_add_test(tc, test_cache_expiry);
	tcase_add_test(tc, test_option_spec);
	tcase_add_test(tc, test_mount_failures);
#if VFSD_BULK_CTR
	tcase_add_test(tc, test_bulk_ctr_matches_openssl);
	tcase_add_test(tc, test_bulk_ctr_fails_closed);
	tcase_add_test(tc, test_bulk_ctr_engages_only_when_safe);
#else
	tcase_add_test(tc, test_bulk_ctr_left_out);
#endif
	tcase_add_test(tc, test_pool_late_failure);
	tcase_add_test(tc, test_pool_abandoned);
	tcase_add_test(tc, test_links_groups);
	suite_add_tcase(s, tc);
	return s;
}
