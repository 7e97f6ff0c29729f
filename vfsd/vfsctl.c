/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfsctl.c - vfsctl(8), the control client of vfsd.  A thin client: it
 * finds the socket, sends one request and prints the reply; the daemon
 * formats tables and JSON.
 *
 * Exit status: 0 success, 1 the daemon refused or failed the command,
 * 2 usage error or no daemon to talk to.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/path.h"
#include "vfsd/ctlpath.h"

static void usage(FILE *out)
{
	fputs("usage: vfsctl [-s SOCKET | -m MOUNTPOINT] [--json] COMMAND "
	      "[ARGS]\n"
	      "\n"
	      "commands:\n"
	      "  status                               version, uptime, mount "
	      "point, host id\n"
	      "  mounts                               the mount table\n"
	      "  mount add PREFIX URL [key=value...]  mount a backend while "
	      "vfsd runs\n"
	      "  mount remove [--force] PREFIX        unmount it (--force: "
	      "open files get EIO)\n"
	      "  stats [PREFIX]                       operation statistics\n"
	      "  reload                               re-read the config file "
	      "(as SIGHUP)\n"
	      "  image list [DIR]                     VM disk images in DIR "
	      "(default: .)\n"
	      "  image info FILE                      format, sizes, backing "
	      "file, lock holders\n"
	      "  image clone SRC DST                  copy an image, "
	      "server-side where possible,\n"
	      "                                       keeping it sparse\n"
	      "  qos set PATH NAME=VALUE...           I/O limits on a mount, "
	      "subtree or file:\n"
	      "                                       bps, bps_rd, bps_wr, "
	      "iops, iops_rd, iops_wr\n"
	      "                                       (each also _max, "
	      "_max_length), iops_size\n"
	      "  qos clear PATH [NAME...]             remove them (all, or "
	      "those named)\n"
	      "  qos show [PATH]                      limits, rates, "
	      "throttled time, queue depth\n"
	      "  files [PATH]                         open files: I/O through "
	      "vfsd, time held back\n"
	      "  top [-n COUNT] [-d SECONDS] [PATH]   the busiest open files, "
	      "refreshed\n"
	      "  fault PREFIX add RULE...             inject faults on a "
	      "fault+ mount (tests only):\n"
	      "                                       op=OP[,OP..] [path=GLOB] "
	      "delay=MS|error=ERRNO|pause\n"
	      "                                       [when=after] [skip=N] "
	      "[count=N]; prints the rule id\n"
	      "  fault PREFIX list                    its rules, hits and "
	      "paused callers\n"
	      "  fault PREFIX clear [ID]              remove rules (their "
	      "paused callers go on)\n"
	      "  fault PREFIX resume [ID]             let paused callers go "
	      "on\n"
	      "\n"
	      "  -s, --socket PATH       the daemon's control socket\n"
	      "  -m, --mountpoint DIR    the daemon serving DIR (default: the "
	      "only one running)\n"
	      "  -j, --json              JSON output for scripts\n",
	      out);
}

/* The only socket in CTL_DIR, or an error message. */
static int find_socket(char *buf, size_t size)
{
	DIR *d = opendir(CTL_DIR);
	struct dirent *de;
	int found = 0;

	if (!d) {
		fprintf(stderr, "vfsctl: no vfsd is running (no %s)\n",
			CTL_DIR);
		return -1;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".sock") != 0)
			continue;
		if (found++ == 0)
			snprintf(buf, size, "%s/%s", CTL_DIR, de->d_name);
	}
	closedir(d);
	if (found == 1)
		return 0;
	if (found == 0)
		fprintf(stderr,
			"vfsctl: no vfsd is running (no socket in %s)\n",
			CTL_DIR);
	else
		fprintf(stderr,
			"vfsctl: %d vfsd daemons are running; name one with -m "
			"MOUNTPOINT or -s SOCKET\n",
			found);
	return -1;
}

/*
 * The vfsd mount point holding `path` (resolved), from mountinfo: the
 * longest fuse.vfsd mount point that is a prefix of it.
 */
static int mount_of(const char *path, char *mnt, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192];
	size_t best = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096], type[256], *dash = strstr(line, " - ");
		size_t len;

		if (!dash || sscanf(dash + 3, "%255s", type) != 1 ||
		    strcmp(type, "fuse.vfsd") != 0 ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		len = strlen(mp);
		if (vfs_path_under(path, mp, len) && len > best && len < size) {
			best = len;
			memcpy(mnt, mp, len + 1);
		}
	}
	fclose(f);
	return best ? 0 : -1;
}

static void progress(uint64_t done, uint64_t total, bool final)
{
	int pct = total ? (int)(done * 100 / total) : 100, bars = pct / 5;

	fprintf(stderr, "\r[%.*s%*s] %3d%%  %.1f/%.1f MiB", bars,
		"####################", 20 - bars, "", pct,
		(double)done / 1048576.0, (double)total / 1048576.0);
	if (final)
		fputc('\n', stderr);
}

static int ctl_request_to(FILE *out, const char *path, bool json, char **argv,
			  int argc, void (*tick)(void *ctx), void *ctx,
			  const char *const *quiet)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *req, buf[65536];
	bool ok = false, first = true;
	size_t len;
	ssize_t n;
	int fd;

	len = strlen(CTL_PROTO) + 8;
	for (int i = 0; i < argc; i++)
		len += 3 * strlen(argv[i]) + 1;
	req = calloc(1, len);
	if (!req) {
		fprintf(stderr, "vfsctl: out of memory\n");
		return 2;
	}
	strcpy(req, CTL_PROTO);
	if (json)
		strcat(req, " json");
	for (int i = 0; i < argc; i++) {
		strcat(req, " ");
		ctl_encode_word(argv[i], req);
	}
	strcat(req, "\n");

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "vfsctl: no vfsd listening on %s: %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		free(req);
		return 2;
	}
	/* a daemon that refuses us may close before reading: its reply
	 * still waits in the socket, so a failed send is not the end */
	len = strlen(req);
	for (size_t off = 0; off < len; off += (size_t)n) {
		n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
	}
	free(req);

	/* first line: OK or ERR NAME message; then the body */
	for (;;) {
		char *p = buf;
		size_t m;

		if (tick && first) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};

			if (poll(&pfd, 1, 1000) == 0) {
				tick(ctx);
				continue;
			}
		}
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		m = (size_t)n;
		if (first) {
			char *nl = memchr(buf, '\n', m);

			first = false;
			if (m >= 3 && strncmp(buf, "OK\n", 3) == 0) {
				ok = true;
				p += 3;
				m -= 3;
			} else {
				const char *msg = buf, *name = NULL;

				if (nl)
					*nl = '\0';
				else
					buf[m < sizeof(buf) ? m : m - 1] = '\0';
				if (strncmp(msg, "ERR ", 4) == 0) {
					name = msg + 4;
					msg = strchr(name, ' ');
					msg = msg ? msg + 1 : buf;
				}
				close(fd);
				for (; quiet && *quiet && name; quiet++)
					if (strncmp(name, *quiet,
						    strlen(*quiet)) == 0 &&
					    name[strlen(*quiet)] == ' ')
						return 3;
				fprintf(stderr, "vfsctl: %s\n", msg);
				return 1;
			}
		}
		fwrite(p, 1, m, out);
	}
	close(fd);
	if (!ok) {
		fprintf(stderr,
			"vfsctl: %s closed the connection without a reply\n",
			path);
		return 2;
	}
	return 0;
}

static int ctl_request_ex(const char *path, bool json, char **argv, int argc,
			  void (*tick)(void *ctx), void *ctx,
			  const char *const *quiet)
{
	return ctl_request_to(stdout, path, json, argv, argc, tick, ctx, quiet);
}

/*
 * Send one request (the words argv[0..argc-1]) to the daemon at socket
 * `path` and print its reply: the body to stdout, an error to stderr.
 * While the reply is outstanding tick(ctx) runs about once a second (a
 * progress display), if given.  Returns the exit status: 0 OK, 1 the
 * daemon answered ERR, 2 no daemon to talk to.  With `quiet` (a
 * NULL-terminated list of error names such as "EOPNOTSUPP") an error of
 * one of those names is not printed and 3 is returned instead: the caller
 * has a way around it.
 */
static int ctl_request(const char *path, bool json, char **argv, int argc,
		       void (*tick)(void *ctx), void *ctx)
{
	return ctl_request_ex(path, json, argv, argc, tick, ctx, NULL);
}

/*
 * image clone, client side: copy_file_range over the data extents only, so
 * holes stay holes; through vfsd that is the backend's copy_range where it
 * has one (copy_file_range or a reflink on a local directory), else the
 * daemon's own copy, which does not write zeros past the end of the file
 * either: that is why the size is set only at the end.
 */
static int clone_copy(const char *src, const char *dst)
{
	bool tty = isatty(STDERR_FILENO);
	struct timespec last = {0};
	struct stat st;
	off_t off = 0;
	int in, out, ret = 1;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		fprintf(stderr, "vfsctl: %s: %s\n", src, strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "vfsctl: %s: not a regular file\n", src);
		close(in);
		return 1;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		   st.st_mode & 0777);
	if (out < 0) {
		fprintf(stderr, "vfsctl: %s: %s\n", dst, strerror(errno));
		close(in);
		return 1;
	}
	while (off < st.st_size) {
		off_t data = lseek(in, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0) {
			/* no hole information: everything is data */
			data = off;
			hole = st.st_size;
		} else {
			hole = lseek(in, data, SEEK_HOLE);
			if (hole < 0)
				hole = st.st_size;
		}
		while (data < hole) {
			loff_t oi = data, oo = data;
			size_t chunk = (size_t)(hole - data) > (64u << 20)
					       ? (64u << 20)
					       : (size_t)(hole - data);
			ssize_t n =
				copy_file_range(in, &oi, out, &oo, chunk, 0);

			if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP ||
				      errno == ENOSYS || errno == EINVAL)) {
				static char buf[1 << 20];

				n = pread(in, buf,
					  chunk < sizeof(buf) ? chunk
							      : sizeof(buf),
					  data);
				if (n > 0 &&
				    pwrite(out, buf, (size_t)n, data) != n)
					n = -1;
			}
			if (n < 0) {
				fprintf(stderr, "\nvfsctl: copying %s: %s\n",
					src, strerror(errno));
				goto fail;
			}
			if (n == 0)
				break;
			data += n;
			if (tty) {
				struct timespec now;

				clock_gettime(CLOCK_MONOTONIC, &now);
				if (now.tv_sec != last.tv_sec) {
					progress((uint64_t)data,
						 (uint64_t)st.st_size, false);
					last = now;
				}
			}
		}
		off = hole;
	}
	if (ftruncate(out, st.st_size) < 0 || fsync(out) < 0) {
		fprintf(stderr, "vfsctl: %s: %s\n", dst, strerror(errno));
		goto fail;
	}
	if (tty)
		progress((uint64_t)st.st_size, (uint64_t)st.st_size, true);
	ret = 0;
	goto out;
fail:
	unlink(dst);
out:
	close(in);
	if (close(out) < 0 && ret == 0) {
		fprintf(stderr, "vfsctl: %s: %s\n", dst, strerror(errno));
		unlink(dst);
		ret = 1;
	}
	return ret;
}

struct clone_progress {
	const char *dst;
	uint64_t total;
};

static void clone_tick(void *p)
{
	struct clone_progress *cp = p;
	struct stat st;

	if (stat(cp->dst, &st) == 0)
		progress((uint64_t)st.st_size < cp->total ? (uint64_t)st.st_size
							  : cp->total,
			 cp->total, false);
}

/*
 * image clone: first ask the daemon serving both names to copy on the
 * server (sftp with remote_exec: GNU cp there, nothing crosses the
 * network); where it cannot, copy here.  `sock` is -s's socket or "".
 */
static int image_clone(const char *src, const char *dst, const char *sock)
{
	char rsrc[PATH_MAX], rdst[PATH_MAX], dir[PATH_MAX], mnt[PATH_MAX],
		mnt2[PATH_MAX], path[108];
	const char *base = strrchr(dst, '/');
	struct clone_progress cp = {.dst = dst};
	struct stat st;
	static char w_image[] = "image", w_clone[] = "clone";
	char *words[4];
	int ret;

	if (!realpath(src, rsrc) || stat(rsrc, &st) < 0) {
		fprintf(stderr, "vfsctl: %s: %s\n", src, strerror(errno));
		return 1;
	}
	snprintf(dir, sizeof(dir), "%.*s",
		 base ? (int)(base - dst) + (base == dst) : 1,
		 base ? dst : ".");
	base = base ? base + 1 : dst;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		fprintf(stderr, "vfsctl: %s: not a file name\n", dst);
		return 2;
	}
	if (!realpath(dir, rdst) || mount_of(rsrc, mnt, sizeof(mnt)) < 0 ||
	    mount_of(rdst, mnt2, sizeof(mnt2)) < 0 || strcmp(mnt, mnt2) != 0 ||
	    strlen(rdst) + strlen(base) + 2 > sizeof(rdst))
		return clone_copy(src, dst);
	if (strcmp(rdst, "/") != 0)
		strcat(rdst, "/");
	strcat(rdst, base);
	if (sock[0])
		snprintf(path, sizeof(path), "%s", sock);
	else if (ctl_default_path(mnt, path, sizeof(path)) < 0)
		return clone_copy(src, dst);
	words[0] = w_image;
	words[1] = w_clone;
	words[2] = rsrc;
	words[3] = rdst;
	cp.total = (uint64_t)st.st_size;
	/* no server-side copy here, or the names are on two backends: copy
	 * through the mount */
	static const char *const fallback[] = {"EOPNOTSUPP", "EXDEV", NULL};

	ret = ctl_request_ex(path, false, words, 4,
			     isatty(STDERR_FILENO) ? clone_tick : NULL, &cp,
			     fallback);
	if (ret == 0 && isatty(STDERR_FILENO))
		progress(cp.total, cp.total, true);
	if (ret == 3)
		return clone_copy(src, dst);
	return ret;
}

/* ---- top ------------------------------------------------------------- */

struct top_row {
	char *path;  /* owned */
	double v[6]; /* read B, written B, read ops, write ops, held ms,
		      * waiting */
	double rate[5];
};

/* A JSON string at *p (after its opening quote) into out, unescaped
 * enough for a terminal; *p moves past the closing quote.  A \u00XX
 * (a control character, or a byte of a name that is no UTF-8: report.c)
 * shows as \xXX and a backslash as \\, as the text forms show them
 * (vfsctl.8), so that such names stay apart. */
static void top_str(const char **p, char *out, size_t size)
{
	size_t n = 0;

	for (; **p && **p != '"'; (*p)++) {
		char c = **p;

		if (c == '\\' && (*p)[1] == 'u') {
			char hex[5] = "";
			unsigned long u;
			char *end;

			(*p)++;
			for (int i = 0; i < 4 && (*p)[1] && (*p)[1] != '"';
			     i++) {
				(*p)++;
				hex[i] = **p;
			}
			u = strtoul(hex, &end, 16);
			if (*end == '\0' && end - hex == 4 && u <= 0xff &&
			    n + 4 < size) {
				n += (size_t)snprintf(out + n, size - n,
						      "\\x%02lx", u);
				continue;
			}
			c = '?';
		} else if (c == '\\' && (*p)[1]) {
			static const char esc[] = "b\bf\fn\nr\rt\t";
			const char *e = strchr(esc, (*p)[1]);

			(*p)++;
			c = **p;
			if (c == '\\' && n + 2 < size) {
				/* as the text forms show it */
				out[n++] = '\\';
			} else if (e && (e - esc) % 2 == 0 && n + 4 < size) {
				n += (size_t)snprintf(out + n, size - n,
						      "\\x%02x",
						      (unsigned char)e[1]);
				continue;
			}
		}
		/* a C1 control in UTF-8 (U+0080..U+009F) is one to the
		 * terminal too */
		if ((unsigned char)c == 0xc2 &&
		    (unsigned char)(*p)[1] >= 0x80 &&
		    (unsigned char)(*p)[1] <= 0x9f) {
			(*p)++;
			c = '\x01';
		}
		if (n + 1 < size)
			out[n++] =
				(unsigned char)c < ' ' || c == 0x7f ? '?' : c;
	}
	if (**p == '"')
		(*p)++;
	out[n] = '\0';
}

/* The number after "key": in line, or 0. */
static double top_num(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(line, pat);
	return p ? strtod(p + strlen(pat), NULL) : 0;
}

static int top_path_cmp(const void *a, const void *b)
{
	return strcmp(((const struct top_row *)a)->path,
		      ((const struct top_row *)b)->path);
}

static void top_rows_clear(struct top_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].path);
}

/* Parse `files --json` (one object a line, ours) into rows sorted by
 * path, summed by path (several opens of one file are one row): as many
 * files as are open, so no row is larger than its name and none is
 * looked for by a walk over the others.  Returns how many. */
static size_t top_parse(char *text, struct top_row **rows, size_t *cap)
{
	static const char *const keys[6] = {"read_bytes", "write_bytes",
					    "read_ops",   "write_ops",
					    "held_ms",    "waiting"};
	size_t n = 0, m = 0;

	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		const char *p = strstr(line, "{\"path\": \"");
		char path[4096];

		if (!p)
			continue;
		p += strlen("{\"path\": \"");
		top_str(&p, path, sizeof(path));
		if (n == *cap) {
			size_t nc = *cap ? 2 * *cap : 64;
			struct top_row *g = realloc(*rows, nc * sizeof(*g));

			if (!g)
				break;
			*rows = g;
			*cap = nc;
		}
		memset(&(*rows)[n], 0, sizeof(**rows));
		if (!((*rows)[n].path = strdup(path)))
			break;
		for (int k = 0; k < 6; k++)
			(*rows)[n].v[k] = top_num(p, keys[k]);
		n++;
	}
	if (!n)
		return 0;
	qsort(*rows, n, sizeof(**rows), top_path_cmp);
	for (size_t i = 1; i < n; i++) {
		struct top_row *r = &(*rows)[i], *last = &(*rows)[m];

		if (strcmp(r->path, last->path) == 0) {
			for (int k = 0; k < 6; k++)
				last->v[k] += r->v[k];
			free(r->path);
		} else {
			(*rows)[++m] = *r;
		}
	}
	return m + 1;
}

static int top_cmp(const void *a, const void *b)
{
	const struct top_row *x = *(struct top_row *const *)a,
			     *y = *(struct top_row *const *)b;
	double bx = x->rate[0] + x->rate[1], by = y->rate[0] + y->rate[1];

	if (bx != by)
		return bx < by ? 1 : -1;
	return strcmp(x->path, y->path);
}

/*
 * vfsctl top [-n COUNT] [-d SECONDS] [PATH]: the busiest open files (of
 * the mount or subtree PATH), refreshed every SECONDS (default 1), COUNT
 * times (default: until interrupted), from the daemon's counters of each
 * file (`files --json`): rates over the last interval, time held back by
 * limits and fair sharing, requests waiting now.
 */
static int top(const char *sock, int argc, char **argv)
{
	struct top_row *prev = NULL, *cur = NULL;
	size_t nprev = 0, capprev = 0, capcur = 0;
	double interval = 1.0;
	long count = -1;
	const char *path = NULL;
	bool tty = isatty(STDOUT_FILENO);

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			count = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			interval = strtod(argv[++i], NULL);
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else {
			fprintf(stderr, "vfsctl: usage: top [-n COUNT] [-d "
					"SECONDS] [PATH]\n");
			return 2;
		}
	}
	if (interval < 0.1 || interval > 3600 || count == 0) {
		fprintf(stderr, "vfsctl: top: -d is 0.1 to 3600 seconds, -n at "
				"least 1\n");
		return 2;
	}
	for (long round = 0; count < 0 || round <= count; round++) {
		static char w_files[] = "files";
		char *words[2] = {w_files, (char *)path}, *text = NULL;
		size_t len = 0, n;
		FILE *f = open_memstream(&text, &len);
		int ret;

		if (!f)
			return 2;
		ret = ctl_request_to(f, sock, true, words, path ? 2 : 1, NULL,
				     NULL, NULL);
		fclose(f);
		if (ret != 0) {
			free(text);
			top_rows_clear(prev, nprev);
			free(prev);
			free(cur);
			return ret;
		}
		n = top_parse(text, &cur, &capcur);
		free(text);
		for (size_t i = 0; i < n; i++) {
			struct top_row *o =
				nprev ? bsearch(&cur[i], prev, nprev,
						sizeof(*prev), top_path_cmp)
				      : NULL;

			for (int k = 0; k < 5; k++)
				cur[i].rate[k] =
					o && cur[i].v[k] >= o->v[k]
						? (cur[i].v[k] - o->v[k]) /
							  interval
						: 0;
		}
		if (round > 0) {
			struct top_row **order = malloc(n * sizeof(*order) + 1);

			if (!order) {
				top_rows_clear(cur, n);
				top_rows_clear(prev, nprev);
				free(prev);
				free(cur);
				return 2;
			}
			for (size_t i = 0; i < n; i++)
				order[i] = &cur[i];
			qsort(order, n, sizeof(*order), top_cmp);
			if (tty)
				fputs("\033[H\033[2J", stdout);
			printf("%-40s %10s %10s %8s %8s %8s %4s\n", "FILE",
			       "READ/s", "WRITE/s", "RD op/s", "WR op/s",
			       "HELD ms", "WAIT");
			for (size_t i = 0; i < n && i < 30; i++)
				printf("%-40.40s %8.1fMi %8.1fMi %8.0f %8.0f "
				       "%8.0f %4.0f\n",
				       order[i]->path,
				       order[i]->rate[0] / 1048576.0,
				       order[i]->rate[1] / 1048576.0,
				       order[i]->rate[2], order[i]->rate[3],
				       order[i]->rate[4] * interval,
				       order[i]->v[5]);
			free(order);
			if (!tty)
				putchar('\n');
			fflush(stdout);
		}
		/* cur becomes prev: swap the buffers */
		top_rows_clear(prev, nprev);
		{
			struct top_row *t = prev;
			size_t c = capprev;

			prev = cur;
			capprev = capcur;
			nprev = n;
			cur = t;
			capcur = c;
		}
		if (count < 0 || round < count)
			usleep((useconds_t)(interval * 1e6));
	}
	top_rows_clear(prev, nprev);
	free(prev);
	free(cur);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"mountpoint", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0}};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[sizeof(sa.sun_path)] = "";
	const char *mnt = NULL;
	bool json = false;
	int c;

	/* options stop at the command: "mount remove --force" keeps its flag */
	while ((c = getopt_long(argc, argv, "+s:m:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			snprintf(path, sizeof(path), "%s", optarg);
			break;
		case 'm':
			mnt = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (mnt && path[0]) {
		fprintf(stderr, "vfsctl: give -s or -m, not both\n");
		return 2;
	}
	if (argc - optind >= 2 && strcmp(argv[optind], "image") == 0) {
		const char *sub = argv[optind + 1];
		static char real[PATH_MAX], owner[PATH_MAX];

		if (strcmp(sub, "clone") == 0) {
			if (argc - optind != 4) {
				usage(stderr);
				return 2;
			}
			return image_clone(argv[optind + 2], argv[optind + 3],
					   path);
		}
		/* image list/info take host paths; the daemon gets them
		 * resolved, and by default the daemon is the one serving them
		 */
		if (strcmp(sub, "list") == 0 && argc - optind == 2) {
			static char dot[] = ".", *nargv[3];

			nargv[0] = argv[optind];
			nargv[1] = argv[optind + 1];
			nargv[2] = dot;
			argv = nargv;
			argc = 3;
			optind = 0;
		}
		if (argc - optind == 3) {
			if (!realpath(argv[optind + 2], real)) {
				fprintf(stderr, "vfsctl: %s: %s\n",
					argv[optind + 2], strerror(errno));
				return 2;
			}
			argv[optind + 2] = real;
			if (!mnt && !path[0] &&
			    mount_of(real, owner, sizeof(owner)) == 0)
				mnt = owner;
		}
	}
	/* files PATH, top [...] PATH: host paths too */
	if ((argc - optind == 2 && strcmp(argv[optind], "files") == 0) ||
	    (argc - optind >= 2 && strcmp(argv[optind], "top") == 0 &&
	     argv[argc - 1][0] != '-' && strcmp(argv[argc - 2], "-n") &&
	     strcmp(argv[argc - 2], "-d"))) {
		static char real[PATH_MAX], owner[PATH_MAX];

		if (!realpath(argv[argc - 1], real)) {
			fprintf(stderr, "vfsctl: %s: %s\n", argv[argc - 1],
				strerror(errno));
			return 2;
		}
		argv[argc - 1] = real;
		if (!mnt && !path[0] &&
		    mount_of(real, owner, sizeof(owner)) == 0)
			mnt = owner;
	}
	/* qos set/clear/show PATH: a host path, resolved, and by default
	 * the daemon serving it */
	if (argc - optind >= 3 && strcmp(argv[optind], "qos") == 0) {
		static char real[PATH_MAX], owner[PATH_MAX];

		if (!realpath(argv[optind + 2], real)) {
			fprintf(stderr, "vfsctl: %s: %s\n", argv[optind + 2],
				strerror(errno));
			return 2;
		}
		argv[optind + 2] = real;
		if (!mnt && !path[0] &&
		    mount_of(real, owner, sizeof(owner)) == 0)
			mnt = owner;
	}
	if (mnt) {
		char real[PATH_MAX];

		if (!realpath(mnt, real)) {
			fprintf(stderr, "vfsctl: %s: %s\n", mnt,
				strerror(errno));
			return 2;
		}
		if (ctl_default_path(real, path, sizeof(path)) < 0) {
			fprintf(stderr,
				"vfsctl: %s: socket path too long; use -s\n",
				real);
			return 2;
		}
	} else if (!path[0] && find_socket(path, sizeof(path)) < 0) {
		return 2;
	}

	if (strcmp(argv[optind], "top") == 0)
		return top(path, argc - optind - 1, argv + optind + 1);
	return ctl_request(path, json, argv + optind, argc - optind, NULL,
			   NULL);
}
