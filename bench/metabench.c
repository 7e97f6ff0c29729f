/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metabench.c - one phase of the small-file metadata benchmark.
 *
 *   metabench DIR N create|stat|unlink
 *
 * Works on the files DIR/f000000 .. DIR/f<N-1>: create opens each with
 * O_CREAT|O_EXCL|O_WRONLY and closes it (an empty file), stat stat()s each,
 * unlink removes each.  One thread, one file at a time: this measures the
 * latency of a metadata round trip, which is what FUSE adds to.
 *
 * Prints "PHASE N SECONDS OPS_PER_SECOND" on stdout; exits 1 on the first
 * failing call, naming it on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char path[4096];
	struct stat st;
	const char *dir, *phase;
	double t0, t;
	long n;

	if (argc != 4) {
		fprintf(stderr, "usage: %s DIR N create|stat|unlink\n",
			argv[0]);
		return 2;
	}
	dir = argv[1];
	n = strtol(argv[2], NULL, 10);
	phase = argv[3];
	if (n <= 0 || (strcmp(phase, "create") && strcmp(phase, "stat") &&
		       strcmp(phase, "unlink"))) {
		fprintf(stderr, "metabench: bad arguments\n");
		return 2;
	}
	t0 = now();
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%06ld", dir, i);
		if (phase[0] == 'c') {
			int fd = open(path,
				      O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
				      0644);

			if (fd < 0 || close(fd) < 0)
				goto fail;
		} else if (phase[0] == 's') {
			if (stat(path, &st) < 0)
				goto fail;
		} else if (unlink(path) < 0) {
			goto fail;
		}
	}
	t = now() - t0;
	printf("%s %ld %.6f %.1f\n", phase, n, t, n / t);
	return 0;
fail:
	fprintf(stderr, "metabench: %s %s: %s\n", phase, path, strerror(errno));
	return 1;
}
