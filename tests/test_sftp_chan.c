/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_sftp_chan.c - unit tests for the SFTP engine (backends/sftp/chan.c)
 * over a fake transport: the few libssh2 calls the engine makes are
 * defined here, as plain reads and writes on one end of a socketpair,
 * and a server thread in the test reads the other end, parses the
 * requests and answers each with a STATUS OK.  The server can be kept
 * from reading, so that the socket fills and requests wait in the
 * engine's send queue, and what reaches it is known to the byte: what
 * sshd and a real libssh2 session (tests/integration/test_sftp*.py) leave
 * to timing, these tests fix.
 *
 * Its own executable (unit_sftp_chan), not unit_main's: the definitions
 * of libssh2's functions here would stand in for the library's
 * everywhere in the program they are linked into.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backends/remote/pool.h"
#include "backends/sftp/chan.h"
#include "lib/clock.h"
#include "lib/log.h"

Suite *sftp_chan_suite(void);

/* ---- The fake transport (libssh2 as chan.c calls it) ------------------ */

/* The engine's end of the socketpair; one channel per test process
 * (check forks a child per test). */
static struct {
	int fd;
	bool blocking;    /* libssh2_session_set_blocking */
	bool out_blocked; /* the last write found the socket full */
	bool eof;
} fk = {.fd = -1, .blocking = true};

/* Any non-NULL pointer: the engine only hands it back. */
static char fk_tag;

LIBSSH2_CHANNEL *
libssh2_channel_open_ex(LIBSSH2_SESSION *session, const char *channel_type,
			unsigned int channel_type_len, unsigned int window_size,
			unsigned int packet_size, const char *message,
			unsigned int message_len)
{
	return (LIBSSH2_CHANNEL *)(void *)&fk_tag;
}

int libssh2_channel_process_startup(LIBSSH2_CHANNEL *channel,
				    const char *request,
				    unsigned int request_len,
				    const char *message,
				    unsigned int message_len)
{
	return 0;
}

int libssh2_channel_handle_extended_data2(LIBSSH2_CHANNEL *channel,
					  int ignore_mode)
{
	return 0;
}

void libssh2_session_set_blocking(LIBSSH2_SESSION *session, int blocking)
{
	fk.blocking = blocking != 0;
}

int libssh2_session_block_directions(LIBSSH2_SESSION *session)
{
	return fk.out_blocked ? LIBSSH2_SESSION_BLOCK_OUTBOUND
			      : LIBSSH2_SESSION_BLOCK_INBOUND;
}

int libssh2_session_last_errno(LIBSSH2_SESSION *session)
{
	return 0;
}

ssize_t libssh2_channel_write_ex(LIBSSH2_CHANNEL *channel, int stream_id,
				 const char *buf, size_t buflen)
{
	ssize_t n = send(fk.fd, buf, buflen,
			 MSG_NOSIGNAL | (fk.blocking ? 0 : MSG_DONTWAIT));

	fk.out_blocked = n < 0 && errno == EAGAIN;
	if (n < 0)
		return fk.out_blocked ? LIBSSH2_ERROR_EAGAIN
				      : LIBSSH2_ERROR_SOCKET_SEND;
	return n;
}

ssize_t libssh2_channel_read_ex(LIBSSH2_CHANNEL *channel, int stream_id,
				char *buf, size_t buflen)
{
	ssize_t n = recv(fk.fd, buf, buflen, fk.blocking ? 0 : MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN ? LIBSSH2_ERROR_EAGAIN
				       : LIBSSH2_ERROR_SOCKET_RECV;
	if (n == 0)
		fk.eof = true;
	return n;
}

int libssh2_channel_eof(LIBSSH2_CHANNEL *channel)
{
	return fk.eof;
}

int libssh2_poll_channel_read(LIBSSH2_CHANNEL *channel, int extended)
{
	return 0;
}

int libssh2_keepalive_send(LIBSSH2_SESSION *session, int *seconds_to_next)
{
	*seconds_to_next = 0;
	return 0;
}

int libssh2_channel_free(LIBSSH2_CHANNEL *channel)
{
	return 0;
}

/* backends/remote/pool.c's, which brings the whole pool along. */
void remote_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* ---- The server ---------------------------------------------------- */

#define SRV_BUF     (1024u * 1024)
#define SRV_MAX_IDS 64

/* Reads requests from its end once let go, answers each with a STATUS
 * OK, and keeps their ids in order. */
struct srv {
	int fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool go, stop; /* protected by lock */
	bool joined;
	uint32_t ids[SRV_MAX_IDS];
	size_t nids;  /* protected by lock */
	unsigned bad; /* WRITEs not whole, or not of one byte value */
	uint8_t *buf;
	size_t len;
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		ck_assert_int_gt(n, 0);
		p += n;
		len -= (size_t)n;
	}
}

/* One request of plen bytes (after its length) at p: checked, kept,
 * answered. */
static void srv_packet(struct srv *s, const uint8_t *p, size_t plen)
{
	uint8_t reply[21];
	uint32_t id;

	ck_assert_uint_ge(plen, 5);
	id = be32(p + 1);
	if (p[0] == SFTP_WRITE) {
		/* type, id, handle, offset, length, data */
		size_t hlen = plen >= 9 ? be32(p + 5) : SIZE_MAX;
		size_t at = 21 + hlen;
		bool ok = hlen < plen && at <= plen &&
			  be32(p + 17 + hlen) == plen - at;

		for (size_t i = at + 1; ok && i < plen; i++)
			ok = p[i] == p[at];
		if (!ok)
			s->bad++;
	}
	pthread_mutex_lock(&s->lock);
	if (s->nids < SRV_MAX_IDS)
		s->ids[s->nids++] = id;
	pthread_mutex_unlock(&s->lock);
	put_be32(reply, 17);
	reply[4] = SFTP_STATUS;
	put_be32(reply + 5, id);
	memset(reply + 9, 0, 12); /* SSH_FX_OK, no message, no language */
	write_all(s->fd, reply, sizeof(reply));
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	for (;;) {
		struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
		ssize_t n;
		bool stop;

		pthread_mutex_lock(&s->lock);
		while (!s->go && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		stop = s->stop;
		pthread_mutex_unlock(&s->lock);
		if (poll(&pfd, 1, 20) == 0) {
			if (stop)
				break;
			continue;
		}
		n = read(s->fd, s->buf + s->len, SRV_BUF - s->len);
		if (n <= 0)
			break;
		s->len += (size_t)n;
		while (s->len >= 4 && s->len - 4 >= be32(s->buf)) {
			size_t plen = be32(s->buf);

			srv_packet(s, s->buf + 4, plen);
			memmove(s->buf, s->buf + 4 + plen, s->len - 4 - plen);
			s->len -= 4 + plen;
		}
	}
	return NULL;
}

/* Let the server read (go), or keep it from reading from its next
 * read on. */
static void srv_set_go(struct srv *s, bool go)
{
	pthread_mutex_lock(&s->lock);
	s->go = go;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void srv_go(struct srv *s)
{
	srv_set_go(s, true);
}

/* Stop the server once it read what came (idempotent). */
static void srv_join(struct srv *s)
{
	if (s->joined)
		return;
	s->joined = true;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
}

/* The ids the server read so far, in order, compared with want[n]. */
static void srv_assert_ids(struct srv *s, const uint32_t *want, size_t n)
{
	pthread_mutex_lock(&s->lock);
	ck_assert_uint_eq(s->nids, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(s->ids[i], want[i]);
	pthread_mutex_unlock(&s->lock);
}

/* ---- Setup --------------------------------------------------------- */

static struct srv srv;
static struct sftp_chan *chan;

/* A channel whose socket holds little, so that one large WRITE fills it
 * while the server does not read. */
static void chan_setup(void)
{
	static const uint8_t version[] = {0, 0, 0, 5, SFTP_VERSION, 0, 0, 0, 3};
	uint8_t init[9];
	int sv[2], small = 4096;
	char msg[128];
	size_t got = 0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)),
		0);
	fk.fd = sv[0];
	memset(&srv, 0, sizeof(srv));
	srv.fd = sv[1];
	srv.buf = malloc(SRV_BUF);
	ck_assert_ptr_nonnull(srv.buf);
	pthread_mutex_init(&srv.lock, NULL);
	pthread_cond_init(&srv.cond, NULL);
	/* the VERSION is there before the engine asks */
	write_all(srv.fd, version, sizeof(version));
	ck_assert_int_eq(sftp_chan_start((LIBSSH2_SESSION *)(void *)&fk_tag,
					 fk.fd, 0, NULL, NULL, &chan, msg,
					 sizeof(msg)),
			 0);
	while (got < sizeof(init)) {
		ssize_t n = read(srv.fd, init + got, sizeof(init) - got);

		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	ck_assert_int_eq(init[4], SFTP_INIT);
	ck_assert_int_eq(pthread_create(&srv.thread, NULL, srv_main, &srv), 0);
}

static void chan_teardown(void)
{
	srv_join(&srv);
	sftp_chan_stop(chan);
	close(fk.fd);
	close(srv.fd);
	free(srv.buf);
}

/* An asynchronous request's completion, seen by the test. */
struct done_box {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
};

static void on_done(struct sftp_req *r)
{
	struct done_box *d = r->priv;

	pthread_mutex_lock(&d->lock);
	d->err = r->err;
	d->done = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void box_init(struct done_box *d)
{
	pthread_mutex_init(&d->lock, NULL);
	remote_cond_init(&d->cond);
	d->done = false;
	d->err = 1;
}

/* The error the request of d completed with (fails after 10 s). */
static int box_wait(struct done_box *d)
{
	struct timespec at;
	int err;

	vfs_ts_after_ms(&at, CLOCK_MONOTONIC, 10000);
	pthread_mutex_lock(&d->lock);
	while (!d->done)
		if (pthread_cond_timedwait(&d->cond, &d->lock, &at) ==
		    ETIMEDOUT)
			break;
	ck_assert(d->done);
	err = d->err;
	pthread_mutex_unlock(&d->lock);
	return err;
}

/*
 * A WRITE of len bytes of `fill`; asynchronous into d if d is not NULL.
 * The data is the request's priv's, or freed with the request by the
 * caller (req_free).
 */
static struct sftp_req *req_write(size_t len, uint8_t fill, struct done_box *d)
{
	struct sftp_req *r = sftp_req_new();
	uint8_t *data = malloc(len);

	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_nonnull(data);
	memset(data, fill, len);
	sftp_buf_begin(&r->pkt, SFTP_WRITE, 0);
	sftp_put_str(&r->pkt, "h", 1);
	sftp_put_u64(&r->pkt, 0);
	sftp_put_u32(&r->pkt, (uint32_t)len);
	ck_assert_int_eq(sftp_buf_end(&r->pkt, len), 0);
	r->data = data;
	r->data_len = len;
	if (d) {
		box_init(d);
		r->done = on_done;
		r->priv = d;
	}
	return r;
}

/* ... under a lock's lease that ends `in` seconds from now */
static struct sftp_req *req_fenced(size_t len, uint8_t fill, struct done_box *d,
				   double in)
{
	struct sftp_req *r = req_write(len, fill, d);

	r->cancel_on_miss = true;
	r->send_by = vfs_mono_s() + in;
	return r;
}

static void req_free(struct sftp_req *r)
{
	const void *data = r->data;

	sftp_req_put(chan, r);
	free((void *)data);
}

/* sftp_chan_wait for r, with time to spare: r must complete when the
 * engine acts on it, well before the wait would give it up. */
static int wait_prompt(struct sftp_req *r)
{
	double t0 = vfs_mono_s();
	int rc = sftp_chan_wait(chan, r, t0 + 20, false);

	ck_assert_msg(vfs_mono_s() - t0 < 5, "the wait took %.1f s",
		      vfs_mono_s() - t0);
	return rc;
}

/* Sleep until `t` (vfs_mono_s) has passed. */
static void sleep_past(double t)
{
	double left;

	while ((left = t - vfs_mono_s()) >= 0)
		usleep((useconds_t)(left * 1e6) + 1000);
}

/* ---- Tests --------------------------------------------------------- */

/*
 * Fenced writes still in the send queue when their send-by time passes,
 * behind a large write the full socket holds up, with no caller waiting
 * for them (their threads descheduled, say): once the socket drains the
 * driver must drop them, unsent, instead of writing them after the
 * lease ended, and the requests behind them go on.
 */
START_TEST(test_late_fenced_write_never_sent)
{
	struct done_box da, db2;
	struct sftp_req *a = req_write(200 * 1024, 'a', &da);
	struct sftp_req *b1 = req_fenced(1000, 'b', NULL, 0.05);
	struct sftp_req *b2 = req_fenced(1000, 'B', &db2, 0.05);
	struct sftp_req *b3 = req_fenced(1000, '3', NULL, 60);
	struct sftp_req *c = req_write(1000, 'c', NULL);
	uint32_t want[3];

	ck_assert_int_eq(sftp_chan_submit(chan, a), 0);
	ck_assert_int_eq(sftp_chan_submit(chan, b1), 0);
	ck_assert_int_eq(sftp_chan_submit(chan, b2), 0);
	ck_assert_int_eq(sftp_chan_submit(chan, b3), 0);
	ck_assert_int_eq(sftp_chan_submit(chan, c), 0);
	sleep_past(b1->send_by + 0.05);
	srv_go(&srv);

	/* as sftp_adopt_locked would have said, had the caller been in
	 * time to give it up: not sent, the session fine */
	ck_assert_int_eq(wait_prompt(b1), -ETIMEDOUT);
	ck_assert_int_eq(box_wait(&db2), -ETIMEDOUT);
	ck_assert_int_eq(wait_prompt(b3), 0);
	ck_assert_int_eq(wait_prompt(c), 0);
	ck_assert_int_eq(box_wait(&da), 0);
	ck_assert_int_eq(sftp_chan_error(chan), 0);
	ck_assert_uint_eq(sftp_chan_inflight(chan), 0);

	want[0] = a->id;
	want[1] = b3->id;
	want[2] = c->id;
	srv_join(&srv);
	srv_assert_ids(&srv, want, 3);
	ck_assert_uint_eq(srv.bad, 0);
	req_free(a);
	req_free(b1);
	req_free(b2);
	req_free(b3);
	req_free(c);
}
END_TEST

/*
 * A fenced write whose send-by time passed before the engine took it
 * from the submission queue (its caller descheduled between its check in
 * req.c and the submit, or between the submit and its wait): whichever
 * thread drives, the caller itself when it comes to wait or the loop,
 * must not send it, and the channel goes on.
 */
START_TEST(test_fenced_write_late_at_submit)
{
	struct sftp_req *b = req_fenced(1000, 'b', NULL, 0);
	struct sftp_req *c = req_write(1000, 'c', NULL);

	srv_go(&srv);
	ck_assert_int_eq(sftp_chan_submit(chan, b), 0);
	ck_assert_int_eq(wait_prompt(b), -ETIMEDOUT);
	ck_assert_int_eq(sftp_chan_error(chan), 0);
	/* the channel goes on */
	ck_assert_int_eq(sftp_chan_submit(chan, c), 0);
	ck_assert_int_eq(wait_prompt(c), 0);
	srv_join(&srv);
	srv_assert_ids(&srv, &c->id, 1);
	req_free(b);
	req_free(c);
}
END_TEST

/*
 * A fenced write whose packet was on the wire before its send-by time,
 * its data held up by the full socket past it: it is not dropped (its
 * header without its data would corrupt the stream) but goes out whole.
 */
START_TEST(test_fenced_write_begun_goes_whole)
{
	struct done_box db;
	struct sftp_req *b = req_fenced(200 * 1024, 'b', &db, 1.0);
	struct sftp_req *c = req_write(1000, 'c', NULL);
	struct pollfd pfd = {.fd = srv.fd, .events = POLLIN};
	uint32_t want[2];

	ck_assert_int_eq(sftp_chan_submit(chan, b), 0);
	/* its first bytes reached the server's end: it was begun */
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert(vfs_mono_s() < b->send_by);
	sleep_past(b->send_by + 0.05);
	srv_go(&srv);
	ck_assert_int_eq(box_wait(&db), 0);
	ck_assert_int_eq(sftp_chan_submit(chan, c), 0);
	ck_assert_int_eq(wait_prompt(c), 0);
	ck_assert_int_eq(sftp_chan_error(chan), 0);
	want[0] = b->id;
	want[1] = c->id;
	srv_join(&srv);
	srv_assert_ids(&srv, want, 2);
	ck_assert_uint_eq(srv.bad, 0);
	req_free(b);
	req_free(c);
}
END_TEST

struct release {
	pthread_t thread;
	double at;
};

/* Let the server go as soon as rl->at passes: before the waiting caller's
 * timed wait (rounded up to the next millisecond) wakes. */
static void *release_main(void *arg)
{
	struct release *rl = arg;
	struct timespec at = {.tv_sec = (time_t)rl->at};

	at.tv_nsec = (long)((rl->at - (double)at.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) ==
	       EINTR)
		;
	srv_go(&srv);
	return NULL;
}

/*
 * The race itself, many times: a fenced write queued behind a write the
 * full socket holds up, its caller waiting until its deadline as req.c
 * does, and the server let go to read at that deadline, so that the
 * driver may reach the write before or after the caller gives it up.
 * Either way it fails with -ETIMEDOUT, unsent, and the channel goes on.
 */
START_TEST(test_fenced_write_given_up_at_deadline)
{
	enum { ROUNDS = 20 };
	uint32_t late[ROUNDS];

	for (int i = 0; i < ROUNDS; i++) {
		struct done_box da;
		struct sftp_req *a = req_write(200 * 1024, 'a', &da);
		struct sftp_req *b = req_fenced(1000, 'b', NULL, 0.02);
		struct release rl;

		srv_set_go(&srv, false);
		ck_assert_int_eq(sftp_chan_submit(chan, a), 0);
		ck_assert_int_eq(sftp_chan_submit(chan, b), 0);
		late[i] = b->id;
		rl.at = b->send_by;
		ck_assert_int_eq(
			pthread_create(&rl.thread, NULL, release_main, &rl), 0);
		ck_assert_int_eq(sftp_chan_wait(chan, b, b->send_by, false),
				 -ETIMEDOUT);
		pthread_join(rl.thread, NULL);
		ck_assert_int_eq(box_wait(&da), 0);
		ck_assert_int_eq(sftp_chan_error(chan), 0);
		req_free(a);
		req_free(b);
	}
	srv_join(&srv);
	for (size_t i = 0; i < srv.nids; i++)
		for (int j = 0; j < ROUNDS; j++)
			ck_assert_uint_ne(srv.ids[i], late[j]);
	ck_assert_uint_eq(srv.nids, ROUNDS);
	ck_assert_uint_eq(srv.bad, 0);
}
END_TEST

Suite *sftp_chan_suite(void)
{
	Suite *s = suite_create("sftp_chan");
	TCase *tc = tcase_create("fence");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, chan_setup, chan_teardown);
	tcase_add_test(tc, test_late_fenced_write_never_sent);
	tcase_add_test(tc, test_fenced_write_late_at_submit);
	tcase_add_test(tc, test_fenced_write_begun_goes_whole);
	tcase_add_test(tc, test_fenced_write_given_up_at_deadline);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	log_init("vfsd-unit", false, LOG_LVL_ERR);
	sr = srunner_create(sftp_chan_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
