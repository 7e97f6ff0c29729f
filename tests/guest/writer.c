// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * writer - the test guest's verifying writer (PID 1 of the test guest's
 * initramfs, after init has loaded the virtio modules).
 *
 * WRITERS threads write 4 KiB blocks across a data disk with O_DIRECT (so
 * several writes are in flight at once, as in a guest's queue), each tagged
 * with (generation, block number) in a header and a trailer and carrying a
 * payload derived from (run seed, generation, block) with a checksum over
 * all of it, and issues fdatasync (a virtio flush) every FLUSH_EVERY
 * writes.  Its memory holds the generation it last wrote to each block and
 * saw acknowledged; memory travels with the guest in a live migration, so
 * a verify on the destination checks what the source's host stored.
 *
 * A write that failed (the guest saw EIO: werror=report) leaves its block
 * "either": the last acknowledged generation or any attempted since are
 * acceptable, as long as the block is whole.  Two writes of one block are
 * never in flight at once (a writer that laps a stalled one waits for it),
 * so the order of acknowledgements is the order on the disk.  Anything else is
 * an error: a torn block (header, trailer and checksum disagree), a block of
 * another generation (a lost acknowledged write, or a stale read), or a foreign
 * block.
 *
 * Commands, one per line on the console (stdin):
 *   start SEED      start (or resume) writing; SEED names the run.
 *                   Refused ("ERR ...") once a stream has run: the
 *                   disk no longer holds what the record says
 *   pause           stop writing, flush, answer "PAUSED"
 *   verify          pause, flush, read back every block, answer
 *                   "VERDICT ok ..." or "VERDICT FAIL ..."; writing
 *                   resumes if it was running.  record=inconsistent
 *                   says the writer's own memory disagrees with itself
 *                   (see verify())
 *   stats           "STATS ..." with write and flush counts and the
 *                   longest write and flush latency since the last stats
 *   randread SECONDS  4 KiB O_DIRECT reads of random blocks, one at a
 *                   time (queue depth 1), for SECONDS (guest clock);
 *                   answers "RANDREAD count=... errors=... p50_us=...
 *                   p99_us=... max_us=..." (latencies in microseconds).
 *                   It does not pause the writer: a guest that only
 *                   reads is never started
 *   stream SECONDS  the noisy neighbour's streaming writer: STREAMERS
 *                   threads writing 1 MiB O_DIRECT chunks one after
 *                   another over the disk (wrapping around at its end),
 *                   one chunk each in flight, for SECONDS (guest clock),
 *                   then a flush; answers "STREAM mib_s=... bytes=...
 *                   writes=... errors=... seconds=... flush_ms=..."
 *                   (mib_s over the writes, the flush not counted).
 *                   Its chunks are not blocks of the writer's: it is
 *                   refused ("ERR ...") once the writer has been
 *                   started, and after it `start` is refused, so a
 *                   `verify` never judges a streamed disk
 *   poweroff        flush and power the guest off
 * While writing it prints "HB ..." lines about four times a second (guest
 * time), so the host can measure stalls from outside.  Lines it prints
 * start with a fixed word and hold key=value pairs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define BS          4096
#define FLUSH_EVERY 64
#define WRITERS     4 /* writes in flight at once, as a guest's queue holds */
#define MAGIC       0x3154534744534656ULL /* "VFSDGST1" */
#define CHUNK       (1 << 20)             /* a streaming write */
#define STREAMERS   8 /* streaming writes in flight at once */

struct hdr {
	uint64_t magic;
	uint64_t seed;
	uint64_t gen;
	uint64_t block;
	uint64_t sum; /* over the block with this field zero */
};

struct tail {
	uint64_t gen;
	uint64_t block;
};

enum { ST_NONE = 0, ST_ACKED, ST_EITHER };

struct blockstate {
	uint64_t gen;   /* last acknowledged generation (0: never written) */
	uint64_t tried; /* latest failed generation, when state EITHER */
	uint64_t acks;  /* acknowledged writes of it: their sum is `writes` */
	uint8_t state;
	uint8_t busy; /* a write of this block is in flight */
};

static int disk = -1;
static uint64_t nblocks;
static uint64_t seed;
static struct blockstate *bs;
static uint64_t stride; /* coprime with nblocks: a pass visits every block */
static unsigned char *wbufs[WRITERS];
static uint64_t started_ns[WRITERS]; /* protected by lock: 0 when idle */

/* protected by lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int want_run; /* the console asks for writing */
static int running;  /* writer threads inside a write cycle */
static uint64_t next_index, since_flush;
static uint64_t last_hb_ns; /* any writer prints the next heartbeat */
static uint64_t writes, flushes, write_errors, flush_errors, gen;
static uint64_t max_write_ns, max_flush_ns;

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* splitmix64: the payload is a pure function of (seed, gen, block), so a
 * verify can rebuild what should be on the disk without storing it. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = mix(h ^ w);
	}
	return h;
}

static void fill(unsigned char *buf, uint64_t s, uint64_t g, uint64_t b)
{
	struct hdr h = {MAGIC, s, g, b, 0};
	struct tail t = {g, b};
	uint64_t x = mix(s ^ mix(g ^ mix(b)));

	for (size_t i = sizeof(h); i + 8 <= BS - sizeof(t); i += 8) {
		x = mix(x);
		memcpy(buf + i, &x, 8);
	}
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + BS - sizeof(t), &t, sizeof(t));
	h.sum = checksum(buf, BS);
	memcpy(buf, &h, sizeof(h));
}

/* What a block read back holds: 0 all zeros (never written), 1 a whole
 * block of ours (*g set), -1 anything else (torn or foreign). */
static int classify(unsigned char *buf, uint64_t b, uint64_t *g)
{
	static const unsigned char zero[BS];
	struct hdr h;
	struct tail t;
	uint64_t sum;

	if (!memcmp(buf, zero, BS))
		return 0;
	memcpy(&h, buf, sizeof(h));
	memcpy(&t, buf + BS - sizeof(t), sizeof(t));
	if (h.magic != MAGIC || h.seed != seed || h.block != b ||
	    t.block != b || t.gen != h.gen)
		return -1;
	sum = h.sum;
	h.sum = 0;
	memcpy(buf, &h, sizeof(h));
	if (checksum(buf, BS) != sum)
		return -1;
	*g = h.gen;
	return 1;
}

static void note_max(uint64_t *max, uint64_t t0)
{
	uint64_t d = now_ns() - t0;

	if (d > *max)
		*max = d;
}

static int do_flush(void)
{
	uint64_t t0 = now_ns();
	int r = fdatasync(disk);

	pthread_mutex_lock(&lock);
	note_max(&max_flush_ns, t0);
	if (r == 0)
		flushes++;
	else
		flush_errors++;
	pthread_mutex_unlock(&lock);
	if (r)
		say("ERR flush errno=%d", errno);
	return r;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static void *write_loop(void *arg)
{
	unsigned char *buf = arg;
	int slot = 0;

	while (wbufs[slot] != buf)
		slot++;

	for (;;) {
		uint64_t b, g, i, t0;
		int flush = 0;
		ssize_t n;

		pthread_mutex_lock(&lock);
		if (!want_run) {
			while (!want_run)
				pthread_cond_wait(&cond, &lock);
		}
		running++;
		i = next_index++;
		/* generation 1 is the first pass over the disk */
		g = i / nblocks + 1;
		if (g > gen)
			gen = g;
		if (++since_flush >= FLUSH_EVERY) {
			since_flush = 0;
			flush = 1;
		}
		b = (i * stride) % nblocks;
		/* a writer a whole pass behind (stalled) still holds this
		 * block: overlapping writes of one block could land in
		 * either order, whatever the acknowledgements say */
		while (bs[b].busy)
			pthread_cond_wait(&cond, &lock);
		bs[b].busy = 1;
		pthread_mutex_unlock(&lock);

		fill(buf, seed, g, b);
		t0 = now_ns();
		pthread_mutex_lock(&lock);
		started_ns[slot] = t0;
		pthread_mutex_unlock(&lock);
		n = pwrite(disk, buf, BS, (off_t)(b * BS));
		pthread_mutex_lock(&lock);
		started_ns[slot] = 0;
		note_max(&max_write_ns, t0);
		if (n == BS) {
			bs[b].gen = g;
			bs[b].state = ST_ACKED;
			bs[b].acks++;
			writes++;
		} else {
			/* the last acknowledged generation may still be there,
			 * or this one, or another failed since */
			bs[b].state = ST_EITHER;
			bs[b].tried = g;
			write_errors++;
		}
		bs[b].busy = 0;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		if (n != BS)
			say("ERR write block=%" PRIu64 " gen=%" PRIu64
			    " errno=%d",
			    b, g, n < 0 ? errno : EIO);
		if (flush)
			do_flush();
		pthread_mutex_lock(&lock);
		running--;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		pthread_mutex_lock(&lock);
		if (now_ns() - last_hb_ns >= 250000000ULL) {
			/* whichever writer completes first: the heartbeat stops
			 * only when every write in flight is stuck */
			last_hb_ns = now_ns();
			say("HB writes=%" PRIu64 " gen=%" PRIu64
			    " errors=%" PRIu64,
			    writes, gen, write_errors + flush_errors);
		}
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static void pause_writer(void)
{
	pthread_mutex_lock(&lock);
	want_run = 0;
	while (running)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	do_flush();
}

static void resume_writer(void)
{
	pthread_mutex_lock(&lock);
	want_run = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static void verify(unsigned char *buf)
{
	uint64_t ok = 0, never = 0, either = 0, bad = 0, ioerr = 0, acks = 0;
	int was = want_run;

	pause_writer();
	for (uint64_t b = 0; b < nblocks; b++) {
		uint64_t g = 0;
		int c;

		acks += bs[b].acks;

		if (pread(disk, buf, BS, (off_t)(b * BS)) != BS) {
			if (ioerr++ < 5)
				say("BAD block=%" PRIu64 " read errno=%d", b,
				    errno);
			continue;
		}
		c = classify(buf, b, &g);
		if (bs[b].state == ST_NONE && c == 0) {
			never++;
		} else if (bs[b].state == ST_ACKED && c == 1 &&
			   g == bs[b].gen) {
			ok++;
		} else if (bs[b].state == ST_EITHER &&
			   ((c == 1 && g >= bs[b].gen && g <= bs[b].tried) ||
			    (c == 0 && bs[b].gen == 0))) {
			either++;
		} else {
			if (bad++ < 5)
				say("BAD block=%" PRIu64 " expect=%" PRIu64
				    " state=%u found=%s gen=%" PRIu64,
				    b, bs[b].gen, bs[b].state,
				    c == 1   ? "ours"
				    : c == 0 ? "zeros"
					     : "torn-or-foreign",
				    g);
		}
	}
	/* each acknowledgement is counted twice under one lock: in the
	 * block's record and in `writes`.  They disagree only when the
	 * guest's own memory lost an update (a memory page that a live
	 * migration did not carry over), which no disk can cause */
	say("VERDICT %s blocks=%" PRIu64 " ok=%" PRIu64 " unwritten=%" PRIu64
	    " either=%" PRIu64 " bad=%" PRIu64 " ioerr=%" PRIu64
	    " writes=%" PRIu64 " gen=%" PRIu64 " write_errors=%" PRIu64
	    " acks=%" PRIu64 " record=%s",
	    bad || ioerr ? "FAIL" : "ok", nblocks, ok, never, either, bad,
	    ioerr, writes, gen, write_errors, acks,
	    acks == writes ? "consistent" : "inconsistent");
	if (was)
		resume_writer();
}

/* One streaming run (stream()): the threads share it under `lock`. */
struct streamrun {
	uint64_t end_ns; /* no write begins after this */
	uint64_t next;   /* the next chunk, counted from the first */
	uint64_t chunks; /* whole chunks on the disk */
	uint64_t bytes, writes, errors;
	uint64_t last_ns; /* when the last write came back */
	unsigned char *buf[STREAMERS];
};

static void *stream_loop(void *arg)
{
	struct streamrun *sr = arg;
	unsigned char *buf = NULL;

	pthread_mutex_lock(&lock);
	for (int t = 0; t < STREAMERS && !buf; t++) {
		buf = sr->buf[t];
		sr->buf[t] = NULL;
	}
	pthread_mutex_unlock(&lock);
	for (;;) {
		uint64_t c;
		ssize_t n;

		if (now_ns() >= sr->end_ns)
			break;
		pthread_mutex_lock(&lock);
		c = sr->next++ % sr->chunks;
		pthread_mutex_unlock(&lock);
		n = pwrite(disk, buf, CHUNK, (off_t)(c * CHUNK));
		pthread_mutex_lock(&lock);
		sr->last_ns = now_ns();
		if (n == CHUNK) {
			sr->bytes += CHUNK;
			sr->writes++;
		} else if (sr->errors++ < 5) {
			pthread_mutex_unlock(&lock);
			say("ERR stream chunk=%" PRIu64 " errno=%d", c,
			    n < 0 ? errno : EIO);
			continue;
		}
		pthread_mutex_unlock(&lock);
	}
	free(buf);
	return NULL;
}

/* What a streaming neighbour does (bench/bench_guest_qos.py): 1 MiB
 * writes in order over the disk, STREAMERS in flight, for `seconds`. */
static void stream(unsigned seconds)
{
	struct streamrun sr = {0};
	pthread_t tid[STREAMERS];
	uint64_t t0, t1, f0;
	int started = 0, fr;

	sr.chunks = nblocks * BS / CHUNK;
	if (!sr.chunks) {
		say("ERR stream needs a disk of at least 1 MiB");
		return;
	}
	for (int t = 0; t < STREAMERS; t++) {
		if (posix_memalign((void **)&sr.buf[t], BS, CHUNK)) {
			while (t--)
				free(sr.buf[t]);
			say("ERR stream out of memory");
			return;
		}
		/* data, not zeros, that no layer could skip */
		for (size_t i = 0; i + 8 <= CHUNK; i += 8) {
			uint64_t x = mix(((uint64_t)t << 32) ^ i);

			memcpy(sr.buf[t] + i, &x, 8);
		}
	}
	t0 = now_ns();
	sr.end_ns = t0 + seconds * 1000000000ULL;
	for (int t = 0; t < STREAMERS; t++)
		if (pthread_create(&tid[t], NULL, stream_loop, &sr) == 0)
			started++;
		else
			break;
	for (int t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
	for (int t = 0; t < STREAMERS; t++)
		free(sr.buf[t]); /* those no thread took */
	t1 = sr.last_ns > t0 ? sr.last_ns : now_ns();
	f0 = now_ns();
	fr = fdatasync(disk);
	if (fr)
		say("ERR stream flush errno=%d", errno);
	say("STREAM mib_s=%.2f bytes=%" PRIu64 " writes=%" PRIu64
	    " errors=%" PRIu64 " seconds=%u threads=%d flush_ms=%.1f",
	    started ? sr.bytes / ((t1 - t0) / 1e9) / CHUNK : 0, sr.bytes,
	    sr.writes, sr.errors + (fr != 0), seconds, started,
	    (now_ns() - f0) / 1e6);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The latency of the reads of lat[0..n) (sorted) at percentile p, by
 * nearest rank, in microseconds. */
static double percentile_us(const uint64_t *lat, uint64_t n, unsigned p)
{
	uint64_t k = (n * p + 99) / 100;

	return n ? lat[k ? k - 1 : 0] / 1e3 : 0;
}

/* What a small synchronous reader sees (the noisy-neighbour benchmark,
 * bench/bench_guest_qos.py): reads of random blocks for `seconds`, each
 * one only after the last came back, every latency kept. */
static void randread(unsigned char *buf, unsigned seconds)
{
	uint64_t n = 0, cap = 4096, errors = 0, x = now_ns();
	uint64_t end = x + seconds * 1000000000ULL;
	uint64_t *lat = malloc(cap * sizeof(*lat));

	if (!lat) {
		say("ERR randread out of memory");
		return;
	}
	for (uint64_t t0 = now_ns(); t0 < end; t0 = now_ns()) {
		uint64_t b;
		ssize_t r;

		x = mix(x);
		b = x % nblocks;
		r = pread(disk, buf, BS, (off_t)(b * BS));
		if (r != BS) {
			if (errors++ < 5)
				say("ERR read block=%" PRIu64 " errno=%d", b,
				    r < 0 ? errno : EIO);
			continue;
		}
		if (n == cap) {
			uint64_t *more = realloc(lat, 2 * cap * sizeof(*lat));

			if (!more)
				break;
			lat = more;
			cap *= 2;
		}
		lat[n++] = now_ns() - t0;
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	say("RANDREAD count=%" PRIu64 " errors=%" PRIu64 " seconds=%u"
	    " p50_us=%.0f p99_us=%.0f max_us=%.0f",
	    n, errors, seconds, percentile_us(lat, n, 50),
	    percentile_us(lat, n, 99), n ? lat[n - 1] / 1e3 : 0);
	free(lat);
}

static void quiet_console(void)
{
	struct termios t;

	/* commands come from a program: no echo, no CR/LF games */
	if (tcgetattr(0, &t) == 0) {
		t.c_lflag &= ~(ECHO | ECHONL);
		t.c_iflag &= ~ICRNL;
		t.c_oflag &= ~OPOST;
		tcsetattr(0, TCSANOW, &t);
	}
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/vda";
	unsigned char *rbuf;
	uint64_t bytes = 0;
	pthread_t tid;
	char line[256];
	int streamed = 0; /* a stream overwrote the disk */

	setvbuf(stdout, NULL, _IOLBF, 0);
	quiet_console();
	disk = open(dev, O_RDWR | O_DIRECT);
	if (disk < 0 || ioctl(disk, BLKGETSIZE64, &bytes) < 0 || bytes < BS) {
		say("FATAL cannot open %s: %s", dev, strerror(errno));
		for (;;)
			pause();
	}
	nblocks = bytes / BS;
	bs = calloc(nblocks, sizeof(*bs));
	if (posix_memalign((void **)&rbuf, BS, BS) || !bs) {
		say("FATAL out of memory");
		for (;;)
			pause();
	}
	/* an odd stride scatters a pass's writes over the disk, as a
	 * guest's random writes are */
	stride = (nblocks / 2 + 1) | 1;
	while (gcd(stride, nblocks) != 1)
		stride++;
	for (int t = 0; t < WRITERS; t++) {
		if (posix_memalign((void **)&wbufs[t], BS, BS) ||
		    pthread_create(&tid, NULL, write_loop, wbufs[t])) {
			say("FATAL no writer thread");
			for (;;)
				pause();
		}
	}
	say("READY disk=%s blocks=%" PRIu64 " writers=%d", dev, nblocks,
	    WRITERS);
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t s;
		unsigned secs;

		line[strcspn(line, "\r\n")] = 0;
		if (sscanf(line, "start %" SCNu64, &s) == 1) {
			if (streamed) {
				say("ERR a stream overwrote the disk");
				continue;
			}
			pthread_mutex_lock(&lock);
			if (seed && s != seed) {
				pthread_mutex_unlock(&lock);
				say("ERR seed already %" PRIu64, seed);
				continue;
			}
			seed = s;
			pthread_mutex_unlock(&lock);
			resume_writer();
			say("STARTED seed=%" PRIu64, s);
		} else if (!strcmp(line, "pause")) {
			pause_writer();
			say("PAUSED writes=%" PRIu64, writes);
		} else if (!strcmp(line, "verify")) {
			if (!seed)
				say("ERR not started");
			else
				verify(rbuf);
		} else if (!strcmp(line, "stats")) {
			pthread_mutex_lock(&lock);
			uint64_t oldest = 0, now = now_ns();

			/* a write that never comes back shows here */
			for (int t = 0; t < WRITERS; t++)
				if (started_ns[t] &&
				    now - started_ns[t] > oldest)
					oldest = now - started_ns[t];
			say("STATS writes=%" PRIu64 " flushes=%" PRIu64
			    " gen=%" PRIu64 " write_errors=%" PRIu64
			    " flush_errors=%" PRIu64
			    " max_write_ms=%.1f max_flush_ms=%.1f "
			    "oldest_inflight_ms=%.1f",
			    writes, flushes, gen, write_errors, flush_errors,
			    max_write_ns / 1e6, max_flush_ns / 1e6,
			    oldest / 1e6);
			max_write_ns = max_flush_ns = 0;
			pthread_mutex_unlock(&lock);
		} else if (sscanf(line, "randread %u", &secs) == 1) {
			if (secs < 1 || secs > 3600)
				say("ERR randread takes 1 to 3600 seconds");
			else
				randread(rbuf, secs);
		} else if (sscanf(line, "stream %u", &secs) == 1) {
			if (secs < 1 || secs > 3600) {
				say("ERR stream takes 1 to 3600 seconds");
			} else if (seed) {
				say("ERR stream would overwrite the writer's "
				    "blocks");
			} else {
				streamed = 1;
				stream(secs);
			}
		} else if (!strcmp(line, "poweroff")) {
			pause_writer();
			say("POWEROFF");
			sync();
			reboot(RB_POWER_OFF);
		} else if (line[0]) {
			say("ERR unknown command '%s'", line);
		}
	}
	/* PID 1 must not exit: the console went away, keep the writer going */
	for (;;)
		pause();
}
