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
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vfsd/ctlpath.h"

static void usage(FILE *out)
{
	fputs("usage: vfsctl [-s SOCKET | -m MOUNTPOINT] [--json] COMMAND [ARGS]\n"
	      "\n"
	      "commands:\n"
	      "  status                               version, uptime, mount point, host id\n"
	      "  mounts                               the mount table\n"
	      "  mount add PREFIX URL [key=value...]  mount a backend while vfsd runs\n"
	      "  mount remove [--force] PREFIX        unmount it (--force: open files get EIO)\n"
	      "  stats [PREFIX]                       operation statistics\n"
	      "  reload                               re-read the config file (as SIGHUP)\n"
	      "\n"
	      "  -s, --socket PATH       the daemon's control socket\n"
	      "  -m, --mountpoint DIR    the daemon serving DIR (default: the only one running)\n"
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
		fprintf(stderr, "vfsctl: no vfsd is running (no %s)\n", CTL_DIR);
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
		fprintf(stderr, "vfsctl: no vfsd is running (no socket in %s)\n",
			CTL_DIR);
	else
		fprintf(stderr,
			"vfsctl: %d vfsd daemons are running; name one with -m MOUNTPOINT or -s SOCKET\n",
			found);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "mountpoint", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[sizeof(sa.sun_path)] = "", *req, buf[65536];
	const char *mnt = NULL;
	bool json = false, ok = false, first = true;
	size_t len;
	ssize_t n;
	int c, fd;

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
	if (mnt) {
		char real[PATH_MAX];

		if (!realpath(mnt, real)) {
			fprintf(stderr, "vfsctl: %s: %s\n", mnt, strerror(errno));
			return 2;
		}
		if (ctl_default_path(real, path, sizeof(path)) < 0) {
			fprintf(stderr, "vfsctl: %s: socket path too long; use -s\n",
				real);
			return 2;
		}
	} else if (!path[0] && find_socket(path, sizeof(path)) < 0) {
		return 2;
	}

	len = strlen(CTL_PROTO) + 8;
	for (int i = optind; i < argc; i++)
		len += 3 * strlen(argv[i]) + 1;
	req = calloc(1, len);
	if (!req) {
		fprintf(stderr, "vfsctl: out of memory\n");
		return 2;
	}
	strcpy(req, CTL_PROTO);
	if (json)
		strcat(req, " json");
	for (int i = optind; i < argc; i++) {
		strcat(req, " ");
		ctl_encode_word(argv[i], req);
	}
	strcat(req, "\n");

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "vfsctl: no vfsd listening on %s: %s\n", path,
			strerror(errno));
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
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *p = buf;
		size_t m = (size_t)n;

		if (first) {
			char *nl = memchr(buf, '\n', m);

			first = false;
			if (m >= 3 && strncmp(buf, "OK\n", 3) == 0) {
				ok = true;
				p += 3;
				m -= 3;
			} else {
				const char *msg = buf;

				if (nl)
					*nl = '\0';
				else
					buf[m < sizeof(buf) ? m : m - 1] = '\0';
				if (strncmp(msg, "ERR ", 4) == 0) {
					msg = strchr(msg + 4, ' ');
					msg = msg ? msg + 1 : buf;
				}
				fprintf(stderr, "vfsctl: %s\n", msg);
				close(fd);
				return 1;
			}
		}
		fwrite(p, 1, m, stdout);
	}
	close(fd);
	if (!ok) {
		fprintf(stderr, "vfsctl: %s closed the connection without a reply\n",
			path);
		return 2;
	}
	return 0;
}
