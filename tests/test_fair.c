/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_fair.c - unit tests of vfsd/fair.c, the fair sharing of a busy
 * mount: a file with nothing in flight goes at once, the capacity holds
 * for the rest, and waiting files are served round robin by bytes, in
 * proportion to their weights.  Requests are real threads blocked in
 * fair_enter(); the test plays the backend by finishing them.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "vfsd/fair.h"

struct req {
	struct fair_sched *s;
	struct fair_flow *f;
	uint64_t bytes;
	atomic_bool in; /* admitted */
	int order;      /* admission number */
	pthread_t t;
};

static atomic_int admitted;

static void *enter(void *arg)
{
	struct req *r = arg;

	fair_enter(r->s, r->f, r->bytes, r->f->weight);
	r->order = atomic_fetch_add(&admitted, 1);
	atomic_store(&r->in, true);
	return NULL;
}

static void start(struct req *r, struct fair_sched *s, struct fair_flow *f,
		  uint64_t bytes)
{
	memset(r, 0, sizeof(*r));
	r->s = s;
	r->f = f;
	r->bytes = bytes;
	ck_assert_int_eq(pthread_create(&r->t, NULL, enter, r), 0);
}

/* Whether r is admitted within ms milliseconds. */
static bool admitted_within(struct req *r, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (atomic_load(&r->in))
			return true;
		usleep(1000);
	}
	return atomic_load(&r->in);
}

static void finish(struct req *r)
{
	pthread_join(r->t, NULL);
	fair_exit(r->s, r->f, r->bytes);
}

START_TEST(fair_idle_file_goes_first)
{
	struct fair_sched s;
	struct fair_flow streamer = {0}, reader = {0};
	struct req w[6], rd;

	/* four requests at once (NFS with four connections): three for a
	 * busy file, one kept for a file with nothing in flight */
	fair_init(&s, 4, 0, true);
	for (int i = 0; i < 6; i++)
		start(&w[i], &s, &streamer, 1 << 20);
	usleep(50000);
	ck_assert_uint_eq(s.reqs, 3);
	start(&rd, &s, &reader, 4096);
	ck_assert(admitted_within(&rd, 2000));
	ck_assert_uint_eq(s.reqs, 4);
	finish(&rd);
	/* as the streamer's finish, the rest go, three at a time */
	for (int done = 0; done < 6;) {
		for (int i = 0; i < 6; i++)
			if (atomic_load(&w[i].in) && w[i].bytes) {
				finish(&w[i]);
				w[i].bytes = 0;
				done++;
			}
		ck_assert_uint_le(s.reqs, 3);
		usleep(1000);
	}
	ck_assert_uint_eq(s.reqs, 0);
	ck_assert_uint_eq(s.bytes, 0);
	fair_destroy(&s);
}
END_TEST

START_TEST(fair_round_robin_by_bytes)
{
	struct fair_sched s;
	struct fair_flow big = {0}, small = {0};
	struct req hold, b[4], sm[40];
	int small_before_last_big = 0;

	/* a byte capacity of 1 MiB: one 1 MiB request at a time */
	fair_init(&s, 0, 1 << 20, true);
	start(&hold, &s, &big, 1 << 20); /* nothing in flight: goes */
	ck_assert(admitted_within(&hold, 2000));
	for (int i = 0; i < 4; i++)
		start(&b[i], &s, &big, 1 << 20);
	usleep(20000);
	/* the small file's first request goes at once (nothing in flight);
	 * its others wait with the big ones */
	for (int i = 0; i < 40; i++)
		start(&sm[i], &s, &small, 16384);
	usleep(50000);
	/* drain: finish whatever is admitted, in order */
	for (int left = 45; left > 0;) {
		bool any = false;

		if (hold.bytes && atomic_load(&hold.in)) {
			finish(&hold);
			hold.bytes = 0;
			left--;
			any = true;
		}
		for (int i = 0; i < 4; i++)
			if (b[i].bytes && atomic_load(&b[i].in)) {
				finish(&b[i]);
				b[i].bytes = 0;
				left--;
				any = true;
			}
		for (int i = 0; i < 40; i++)
			if (sm[i].bytes && atomic_load(&sm[i].in)) {
				finish(&sm[i]);
				sm[i].bytes = 0;
				left--;
				any = true;
			}
		if (!any)
			usleep(2000);
	}
	/* by bytes: while the big file sent its four 1 MiB requests, the
	 * small one (640 KiB in all) was done long before the last */
	{
		int last_big = 0;

		for (int i = 0; i < 4; i++)
			if (b[i].order > last_big)
				last_big = b[i].order;
		for (int i = 0; i < 40; i++)
			small_before_last_big += sm[i].order < last_big;
	}
	ck_assert_int_eq(small_before_last_big, 40);
	ck_assert_uint_eq(s.bytes, 0);
	ck_assert_uint_ge(s.waited, 40);
	fair_destroy(&s);
}
END_TEST

START_TEST(fair_weights)
{
	struct fair_sched s;
	struct fair_flow light = {0}, heavy = {.weight = 300};
	struct req hold, l[40], h[40];
	int heavy_in_first = 0;
	int orders[80], n = 0;

	/* one request at a time, both files backlogged with 64 KiB
	 * requests: the heavy one gets three times the light one's turns */
	fair_init(&s, 0, 64 << 10, true);
	start(&hold, &s, &light, 64 << 10);
	ck_assert(admitted_within(&hold, 2000));
	for (int i = 0; i < 40; i++) {
		start(&l[i], &s, &light, 64 << 10);
		start(&h[i], &s, &heavy, 64 << 10);
	}
	usleep(100000);
	finish(&hold);
	/* finish one at a time, noting who went */
	while (n < 40) {
		bool any = false;

		for (int i = 0; i < 40 && !any; i++) {
			if (l[i].bytes && atomic_load(&l[i].in)) {
				finish(&l[i]);
				l[i].bytes = 0;
				orders[n++] = 0;
				any = true;
			} else if (h[i].bytes && atomic_load(&h[i].in)) {
				finish(&h[i]);
				h[i].bytes = 0;
				orders[n++] = 1;
				any = true;
			}
		}
		if (!any)
			usleep(1000);
	}
	for (int i = 0; i < 40; i++)
		heavy_in_first += orders[i];
	/* 30 of 40, give or take the first request the heavy file got at
	 * once (nothing in flight) and a round's rounding */
	ck_assert_int_ge(heavy_in_first, 27);
	ck_assert_int_le(heavy_in_first, 33);
	for (int i = 0; i < 40; i++) {
		for (int j = 0; j < 2; j++) {
			struct req *r = j ? &h[i] : &l[i];

			while (r->bytes) {
				if (atomic_load(&r->in)) {
					finish(r);
					r->bytes = 0;
				} else {
					/* others hold the capacity */
					for (int k = 0; k < 40; k++)
						for (int m = 0; m < 2; m++) {
							struct req *o =
								m ? &h[k]
								  : &l[k];

							if (o->bytes &&
							    atomic_load(
								    &o->in)) {
								finish(o);
								o->bytes = 0;
							}
						}
					usleep(1000);
				}
			}
		}
	}
	ck_assert_uint_eq(s.reqs, 0);
	fair_destroy(&s);
}
END_TEST

START_TEST(fair_idle_files_taking_turns_starve_nobody)
{
	struct fair_sched s;
	struct fair_flow streamer = {0}, rf[3] = {{0}};
	struct req s1, s2, rd[3];
	bool live[3] = {true, true, true};

	/* NFS with one connection: one request for busy files, one kept for
	 * a file with nothing in flight */
	fair_init(&s, 2, 0, true);
	start(&s1, &s, &streamer, 1 << 20);
	ck_assert(admitted_within(&s1, 2000));
	start(&s2, &s, &streamer, 1 << 20);
	ck_assert(!admitted_within(&s2, 20));
	for (int i = 0; i < 3; i++) {
		start(&rd[i], &s, &rf[i], 4096);
		ck_assert(admitted_within(&rd[i], 2000));
	}
	/* the streamer's request is done: it has nothing in flight and one
	 * waiting, while three synchronous readers take turns, each issuing
	 * its next request while the others' are in flight */
	finish(&s1);
	for (int k = 0; k < 60 && !atomic_load(&s2.in); k++) {
		int j = k % 3;

		while (!atomic_load(&rd[j].in) && !atomic_load(&s2.in))
			usleep(1000);
		if (!atomic_load(&rd[j].in))
			break;
		finish(&rd[j]);
		start(&rd[j], &s, &rf[j], 4096);
		usleep(3000);
	}
	ck_assert(admitted_within(&s2, 100));
	finish(&s2);
	/* the readers left go */
	for (int n = 0; n < 2000 && (live[0] || live[1] || live[2]); n++) {
		for (int i = 0; i < 3; i++)
			if (live[i] && atomic_load(&rd[i].in)) {
				finish(&rd[i]);
				live[i] = false;
			}
		usleep(1000);
	}
	ck_assert(!live[0] && !live[1] && !live[2]);
	ck_assert_uint_eq(s.reqs, 0);
	ck_assert_uint_eq(s.starved, 0);
	fair_destroy(&s);
}
END_TEST

START_TEST(fair_kept_place_serves_a_waiting_idle_file)
{
	struct fair_sched s;
	struct fair_flow streamer = {0}, reader = {0};
	struct req s1, s2, rd;

	/* one request for busy files, one kept for a file with nothing in
	 * flight: the streamer's next request, once its last is done, is
	 * such a file's and takes the kept place the reader left free */
	fair_init(&s, 2, 0, true);
	start(&s1, &s, &streamer, 1 << 20);
	ck_assert(admitted_within(&s1, 2000));
	start(&s2, &s, &streamer, 1 << 20);
	ck_assert(!admitted_within(&s2, 20));
	start(&rd, &s, &reader, 4096);
	ck_assert(admitted_within(&rd, 2000));
	finish(&s1);
	ck_assert(admitted_within(&s2, 1000));
	finish(&rd);
	finish(&s2);
	ck_assert_uint_eq(s.reqs, 0);
	fair_destroy(&s);
}
END_TEST

START_TEST(fair_small_reader_not_held_by_a_streamers_bytes)
{
	struct fair_sched s;
	struct fair_flow streamer = {0}, reader = {0};
	struct req s1, s2, r1, r2;

	/* NFS's capacity: four requests, 1 MiB of data.  A reader at queue
	 * depth 2 beside a streamer's megabyte: its second request waits
	 * (the bytes are full), but once its first is done, its turn does
	 * not wait out the streamer's megabyte: a small request of a file
	 * with nothing in flight goes past the bytes */
	fair_init(&s, 4, 1 << 20, true);
	start(&s1, &s, &streamer, 1 << 20);
	ck_assert(admitted_within(&s1, 2000));
	start(&r1, &s, &reader, 4096);
	ck_assert(admitted_within(&r1, 2000));
	start(&r2, &s, &reader, 4096);
	ck_assert(!admitted_within(&r2, 20));
	start(&s2, &s, &streamer, 1 << 20);
	ck_assert(!admitted_within(&s2, 20));
	finish(&r1);
	ck_assert(admitted_within(&r2, 1000));
	ck_assert(!atomic_load(&s2.in));
	finish(&r2);
	finish(&s1);
	ck_assert(admitted_within(&s2, 1000));
	finish(&s2);
	ck_assert_uint_eq(s.reqs, 0);
	ck_assert_uint_eq(s.starved, 0);
	fair_destroy(&s);
}
END_TEST

START_TEST(fair_off_admits_everything)
{
	struct fair_sched s;
	struct fair_flow f = {0};

	fair_init(&s, 1, 0, false);
	for (int i = 0; i < 10; i++)
		ck_assert(!fair_enter(&s, &f, 1 << 20, 0));
	/* a backend without a capacity is never shared out */
	fair_init(&s, 0, 0, true);
	ck_assert(!fair_enter(&s, &f, 1 << 20, 0));
	fair_destroy(&s);
}
END_TEST

#define FAIR_SPARE_MAX 3

static void *enter_ahead(void *arg)
{
	struct req *r = arg;

	fair_enter_ahead(r->s, r->f, r->bytes, r->f->weight);
	atomic_store(&r->in, true);
	return NULL;
}

/* start(), for a request that reads ahead (fair_enter_ahead) */
static void start_ahead(struct req *r, struct fair_sched *s,
			struct fair_flow *f, uint64_t bytes)
{
	memset(r, 0, sizeof(*r));
	r->s = s;
	r->f = f;
	r->bytes = bytes;
	ck_assert_int_eq(pthread_create(&r->t, NULL, enter_ahead, r), 0);
}

/*
 * A file that reads ahead (fair_enter_ahead), alone on the mount, has
 * FAIR_SPARE_MAX requests in flight, past the capacity, and no more; the
 * rest go in turn as its requests end.  With another file busy, its
 * requests take their turns as any.
 */
START_TEST(fair_reading_ahead_alone_goes_past_the_capacity)
{
	struct fair_sched s;
	struct fair_flow f = {0}, g = {0};
	struct req more, other;

	/* NFS with four connections: capacity 2, 3 for a lone reader */
	fair_init(&s, 2, 0, true);
	fair_set_ahead(&s, FAIR_SPARE_MAX);
	for (int i = 0; i < FAIR_SPARE_MAX; i++)
		ck_assert(fair_enter_ahead(&s, &f, 1 << 20, 0));
	ck_assert_uint_eq(s.reqs, FAIR_SPARE_MAX);
	start_ahead(&more, &s, &f, 1 << 20);
	ck_assert(!admitted_within(&more, 50));
	/* one ends: the next goes, past the capacity of 2 */
	fair_exit(&s, &f, 1 << 20);
	ck_assert(admitted_within(&more, 2000));
	ck_assert_uint_eq(s.reqs, FAIR_SPARE_MAX);
	finish(&more);
	/* a request of the file that did not come through
	 * fair_enter_ahead (a write) keeps to the capacity */
	start(&other, &s, &f, 1 << 20);
	fair_exit(&s, &f, 1 << 20);
	ck_assert(!admitted_within(&other, 50));
	for (int i = 2; i < FAIR_SPARE_MAX; i++)
		fair_exit(&s, &f, 1 << 20);
	ck_assert(admitted_within(&other, 2000));
	finish(&other);
	ck_assert_uint_eq(s.reqs, 0);
	/* another file busy: as any request, within the capacity */
	start(&other, &s, &g, 4096);
	ck_assert(admitted_within(&other, 2000));
	ck_assert(fair_enter_ahead(&s, &f, 1 << 20, 0));
	ck_assert_uint_eq(s.reqs, 2);
	start_ahead(&more, &s, &f, 1 << 20);
	ck_assert(!admitted_within(&more, 50));
	finish(&other);
	fair_exit(&s, &f, 1 << 20);
	ck_assert(admitted_within(&more, 2000));
	finish(&more);
	ck_assert_uint_eq(s.reqs, 0);
	fair_destroy(&s);
}
END_TEST

Suite *fair_suite(void);

Suite *fair_suite(void)
{
	Suite *s = suite_create("fair");
	TCase *tc = tcase_create("sched");

	tcase_add_test(tc, fair_idle_file_goes_first);
	tcase_add_test(tc, fair_round_robin_by_bytes);
	tcase_add_test(tc, fair_weights);
	tcase_add_test(tc, fair_idle_files_taking_turns_starve_nobody);
	tcase_add_test(tc, fair_kept_place_serves_a_waiting_idle_file);
	tcase_add_test(tc, fair_small_reader_not_held_by_a_streamers_bytes);
	tcase_add_test(tc, fair_off_admits_everything);
	tcase_add_test(tc, fair_reading_ahead_alone_goes_past_the_capacity);
	suite_add_tcase(s, tc);
	return s;
}
