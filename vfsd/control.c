/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.c - the control socket: a UNIX socket (mode 0600) on which
 * vfsctl(8) asks for status, mounts and statistics and changes mounts.
 *
 * Protocol (one request per connection):
 *   request:  VFSCTL1 [json] COMMAND [ARG...]\n   (words %-encoded)
 *   reply:    OK\n<body>   or   ERR <ERRNO-NAME> <message>\n
 * The server closes the connection after the reply.
 *
 * Only root and the user running the daemon may talk to it (SO_PEERCRED).
 * An acceptor thread reads every request itself (struct ctl_pending), each
 * within CTL_IO_TIMEOUT of its connection, then hands the complete request
 * to a short-lived thread, so a slow command (mounting an unreachable
 * server) does not hold up others and a slow sender holds up nothing.
 * SIGHUP reaches the acceptor through a pipe and triggers a reload.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/fault.h"
#include "guestfs/lock.h"
#include "lib/log.h"
#include "lib/path.h"
#include "lib/clock.h"
#include "lib/url.h"
#include "vfsd/config.h"
#include "vfsd/control.h"
#include "vfsd/ctlpath.h"
#include "vfsd/fuse_ops.h"
#include "vfsd/image_cmd.h"
#include "vfsd/report.h"
#include "vfsd/router.h"

#define CTL_MAX_CLIENTS 32 /* commands running at once */
#define CTL_MAX_PENDING 64 /* connections still sending their request */
#define CTL_IO_TIMEOUT                                                         \
	10 /* seconds a client has for its whole request,                      \
	    * and again for taking the whole reply */

static struct {
	int lfd;     /* listening socket */
	int wake[2]; /* stop ('q') and reload ('r') */
	pthread_t thread;
	bool running;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const struct vfsd_status *status;
	pthread_mutex_t lock; /* protects clients, reload */
	pthread_cond_t idle;
	int clients; /* handler threads alive */
} ctl = {
	.lfd = -1,
	.wake = {-1, -1},
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
};

/* Serialises reloads and vfsctl mount changes against each other. */
static pthread_mutex_t ctl_change_lock = PTHREAD_MUTEX_INITIALIZER;

static void ctl_invalidate(const char *prefix)
{
	char buf[4096];
	size_t len = strlen(prefix);

	if (len >= sizeof(buf))
		return;
	/* every component: a new prefix may also create virtual dirs */
	for (size_t i = 1; i <= len; i++) {
		if (i == len || prefix[i] == '/') {
			memcpy(buf, prefix, i);
			buf[i] = '\0';
			fuse_ops_invalidate_path(buf);
		}
	}
}

/* ---- reload ------------------------------------------------------- */

struct cur_mount {
	char *prefix, *url;
	bool readonly;
	struct vfs_opts opts;
	enum router_origin origin;
};

struct cur_set {
	struct cur_mount *m;
	size_t n;
};

static void collect_one(void *p, const struct router_view *v)
{
	struct cur_set *set = p;
	struct cur_mount *grown =
		realloc(set->m, (set->n + 1) * sizeof(*grown));
	struct cur_mount *c;

	if (!grown)
		return;
	set->m = grown;
	c = &set->m[set->n];
	memset(c, 0, sizeof(*c));
	c->prefix = strdup(v->prefix);
	c->url = strdup(v->url);
	c->readonly = v->readonly;
	c->origin = v->origin;
	if (!c->prefix || !c->url || vfs_opts_copy(&c->opts, v->opts) < 0) {
		free(c->prefix);
		free(c->url);
		return;
	}
	set->n++;
}

static void cur_set_free(struct cur_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->m[i].prefix);
		free(set->m[i].url);
		vfs_opts_clear(&set->m[i].opts);
	}
	free(set->m);
}

static bool opts_equal(const struct vfs_opts *a, const struct vfs_opts *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const char *v = vfs_opts_get(b, a->kv[i].key);

		if (!v || strcmp(v, a->kv[i].value) != 0)
			return false;
	}
	return true;
}

int ctl_reload(FILE *out, struct vfs_error *err)
{
	struct vfsd_config cfg = {0};
	struct cur_set cur = {0};
	int ret, failures = 0, changes = 0;

	if (!ctl.status || !ctl.status->config)
		return vfs_error_set(
			err, ENOENT,
			"vfsd runs without a config file: nothing to reload");
	pthread_mutex_lock(&ctl_change_lock);
	ret = cfg_load_file(&cfg, ctl.status->config, err);
	if (ret == 0)
		ret = cfg_validate(&cfg, err);
	if (ret < 0)
		goto out;
	/* holders' records and other hosts count on the lease in force */
	if (cfg.lock_lease && cfg.lock_lease != glock_lease()) {
		fprintf(out,
			"lock_lease = %d takes a restart: %d s stays in "
			"force\n",
			cfg.lock_lease, glock_lease());
		log_warn("reload: lock_lease = %d takes a restart: %d s stays "
			 "in force",
			 cfg.lock_lease, glock_lease());
	}
	router_foreach(collect_one, &cur);

	/* gone or changed: remove first, so a changed one can come back */
	for (size_t i = 0; i < cur.n; i++) {
		struct cur_mount *c = &cur.m[i];
		struct cfg_mount *want = NULL;
		struct vfs_error e;

		if (c->origin != ROUTER_ORIGIN_CONFIG)
			continue;
		for (size_t j = 0; j < cfg.nmounts && !want; j++)
			if (strcmp(cfg.mounts[j].prefix, c->prefix) == 0)
				want = &cfg.mounts[j];
		if (want && strcmp(want->url, c->url) == 0 &&
		    want->readonly == c->readonly &&
		    opts_equal(&want->opts, &c->opts))
			continue;
		vfs_error_init(&e);
		if (router_remove(c->prefix, false, &e) < 0) {
			fprintf(out, "kept %s: %s\n", c->prefix, e.msg);
			failures++;
			continue;
		}
		fuse_ops_forget_mount(c->prefix);
		ctl_invalidate(c->prefix);
		fprintf(out, "removed %s\n", c->prefix);
		changes++;
	}
	/* new or changed: add */
	for (size_t j = 0; j < cfg.nmounts; j++) {
		struct cfg_mount *w = &cfg.mounts[j];
		struct vfs_error e;
		bool present = false;

		for (size_t i = 0; i < cur.n && !present; i++) {
			struct cur_mount *c = &cur.m[i];

			present = strcmp(c->prefix, w->prefix) == 0 &&
				  (c->origin != ROUTER_ORIGIN_CONFIG ||
				   (strcmp(w->url, c->url) == 0 &&
				    w->readonly == c->readonly &&
				    opts_equal(&w->opts, &c->opts)));
		}
		if (present)
			continue;
		vfs_error_init(&e);
		if (router_add(w->prefix, w->url, &w->opts, w->readonly,
			       ROUTER_ORIGIN_CONFIG, &e) < 0) {
			fprintf(out, "failed %s: %s\n", w->prefix, e.msg);
			failures++;
			continue;
		}
		ctl_invalidate(w->prefix);
		fprintf(out, "added %s\n", w->prefix);
		changes++;
	}
	if (!changes && !failures)
		fprintf(out, "no changes\n");
	if (failures)
		ret = vfs_error_set(
			err, EBUSY, "reload of %s: %d mount%s not applied",
			ctl.status->config, failures, failures == 1 ? "" : "s");
out:
	pthread_mutex_unlock(&ctl_change_lock);
	cur_set_free(&cur);
	cfg_free(&cfg);
	return ret;
}

/* ---- commands ------------------------------------------------------- */

static int cmd_mount(FILE *out, char **argv, int argc, struct vfs_error *err)
{
	char prefix[4096];
	int ret;

	if (argc >= 1 && strcmp(argv[0], "add") == 0) {
		struct vfs_opts opts = {0};

		if (argc < 3)
			return vfs_error_set(
				err, EINVAL,
				"usage: mount add PREFIX URL [key=value...]");
		for (int i = 3; i < argc; i++) {
			char *eq = strchr(argv[i], '=');

			if (!eq || eq == argv[i]) {
				char safe[200];

				vfs_opts_clear(&opts);
				return vfs_error_set(
					err, EINVAL,
					"'%s': options are key=value",
					vfs_url_redact(argv[i], safe,
						       sizeof(safe)));
			}
			*eq = '\0';
			/* from the command line: secrets are refused */
			if (vfs_opts_set(&opts, argv[i], eq + 1,
					 VFS_ORIGIN_URL) < 0) {
				vfs_opts_clear(&opts);
				return vfs_error_set(err, ENOMEM,
						     "out of memory");
			}
		}
		pthread_mutex_lock(&ctl_change_lock);
		ret = router_add(argv[1], argv[2], &opts, false,
				 ROUTER_ORIGIN_CONTROL, err);
		pthread_mutex_unlock(&ctl_change_lock);
		vfs_opts_clear(&opts);
		if (ret < 0)
			return ret;
		snprintf(prefix, sizeof(prefix), "%s", argv[1]);
		vfs_path_normalize(prefix);
		ctl_invalidate(prefix);
		fprintf(out, "mounted %s\n", prefix);
		return 0;
	}
	if (argc >= 1 && strcmp(argv[0], "remove") == 0) {
		bool force = argc == 3 && strcmp(argv[1], "--force") == 0;

		if (argc != 2 + force)
			return vfs_error_set(
				err, EINVAL,
				"usage: mount remove [--force] PREFIX");
		snprintf(prefix, sizeof(prefix), "%s", argv[1 + force]);
		pthread_mutex_lock(&ctl_change_lock);
		ret = router_remove(prefix, force, err);
		pthread_mutex_unlock(&ctl_change_lock);
		if (ret < 0)
			return ret;
		vfs_path_normalize(prefix);
		fuse_ops_forget_mount(prefix);
		ctl_invalidate(prefix);
		fprintf(out, "removed %s\n", prefix);
		return 0;
	}
	return vfs_error_set(err, EINVAL,
			     "usage: mount add PREFIX URL [key=value...] | "
			     "mount remove [--force] PREFIX");
}

/*
 * A path vfsctl resolved on the host, as a vfsd path: it must lie inside
 * our mount point.  buf gets the vfsd path.
 */
static int host_to_vfsd(const char *host, char *buf, size_t size,
			struct vfs_error *err)
{
	const char *mnt = ctl.status->mountpoint;
	size_t len = strlen(mnt);

	if (strncmp(host, mnt, len) != 0 ||
	    (host[len] != '\0' && host[len] != '/'))
		return vfs_error_set(err, EXDEV, "%s is not inside %s", host,
				     mnt);
	snprintf(buf, size, "%s", host[len] ? host + len : "/");
	if (vfs_path_normalize(buf) < 0)
		return vfs_error_set(err, EINVAL, "bad path %s", host);
	return 0;
}

static int cmd_image(FILE *out, bool json, char **argv, int argc,
		     struct vfs_error *err)
{
	char path[4096];
	int ret;

	if (argc == 2 && strcmp(argv[0], "list") == 0) {
		ret = host_to_vfsd(argv[1], path, sizeof(path), err);
		return ret < 0 ? ret : image_cmd_list(out, path, json, err);
	}
	if (argc == 2 && strcmp(argv[0], "info") == 0) {
		ret = host_to_vfsd(argv[1], path, sizeof(path), err);
		return ret < 0 ? ret : image_cmd_info(out, path, json, err);
	}
	if (argc == 3 && strcmp(argv[0], "clone") == 0) {
		char to[4096];

		struct stat st;

		ret = host_to_vfsd(argv[1], path, sizeof(path), err);
		if (ret == 0)
			ret = host_to_vfsd(argv[2], to, sizeof(to), err);
		if (ret < 0)
			return ret;
		/* the usual complaints, in the caller's names */
		ret = router_getattr(path, &st);
		if (ret < 0)
			return vfs_error_set(err, -ret, "%s: %s", argv[1],
					     strerror(-ret));
		if (!S_ISREG(st.st_mode))
			return vfs_error_set(err, EINVAL,
					     "%s: not a regular file", argv[1]);
		ret = router_getattr(to, &st);
		if (ret == 0 || ret != -ENOENT)
			return vfs_error_set(err, ret ? -ret : EEXIST, "%s: %s",
					     argv[2],
					     strerror(ret ? -ret : EEXIST));
		ret = router_clone(path, to, err);
		/* the kernel may remember that the name did not exist */
		fuse_ops_invalidate_path(to);
		if (ret == 0)
			fprintf(out, "copied %s to %s on the server\n", argv[1],
				argv[2]);
		return ret;
	}
	return vfs_error_set(err, EINVAL,
			     "usage: image list DIR | image info FILE | image "
			     "clone SRC DST (paths inside the mount)");
}

/* fault PREFIX add RULE... | list | clear [ID] | resume [ID] (fault.c) */
static int cmd_fault(FILE *out, bool json, char **argv, int argc,
		     struct vfs_error *err)
{
	struct fault_cmd c = {
		.prefix = argc ? argv[0] : "",
		.argv = argv + 1,
		.argc = argc - 1,
		.json = json,
		.out = out,
		.err = err,
	};

	if (argc < 2)
		return vfs_error_set(
			err, EINVAL,
			"usage: fault PREFIX add RULE... | fault PREFIX list | "
			"fault PREFIX clear [ID] | fault PREFIX resume [ID]");
	return router_with_backend(argv[0], fault_command, &c, err);
}

static int ctl_dispatch(FILE *out, bool json, char **argv, int argc,
			struct vfs_error *err)
{
	const char *cmd = argc ? argv[0] : "";

	if (strcmp(cmd, "status") == 0 && argc == 1) {
		report_status(out, json, ctl.status);
		return 0;
	}
	if (strcmp(cmd, "mounts") == 0 && argc == 1) {
		report_mounts(out, json);
		return 0;
	}
	if (strcmp(cmd, "stats") == 0 && argc <= 2) {
		char prefix[4096];

		if (argc == 1)
			return report_stats(out, NULL, json, err);
		snprintf(prefix, sizeof(prefix), "%s", argv[1]);
		if (prefix[0] != '/' || vfs_path_normalize(prefix) < 0)
			return vfs_error_set(err, EINVAL,
					     "'%s' is not an absolute prefix",
					     argv[1]);
		return report_stats(out, prefix, json, err);
	}
	if (strcmp(cmd, "mount") == 0)
		return cmd_mount(out, argv + 1, argc - 1, err);
	if (strcmp(cmd, "image") == 0)
		return cmd_image(out, json, argv + 1, argc - 1, err);
	if (strcmp(cmd, "fault") == 0)
		return cmd_fault(out, json, argv + 1, argc - 1, err);
	if (strcmp(cmd, "reload") == 0 && argc == 1) {
		int ret = ctl_reload(out, err);

		if (ret == 0)
			log_info("reloaded %s (vfsctl)", ctl.status->config);
		return ret;
	}
	return vfs_error_set(err, EINVAL,
			     "unknown command '%s' (status, mounts, mount add, "
			     "mount remove, stats, reload, image list, image "
			     "info, image clone, fault)",
			     cmd);
}

/* ---- connections ----------------------------------------------------- */

/*
 * Send all of buf on the non-blocking socket fd, waiting for room until
 * `deadline` (vfs_mono_ms) at the latest: a client that does not read its
 * reply loses it rather than holding a thread.
 */
static void write_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int64_t left = deadline - vfs_mono_ms();

			if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
				return;
			continue;
		}
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void reply_err(int fd, int code, const char *msg, int64_t deadline)
{
	char line[1024];
	const char *name = strerrorname_np(code);
	int n = snprintf(line, sizeof(line), "ERR %s %s\n", name ? name : "EIO",
			 msg);

	write_all(fd, line,
		  n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1,
		  deadline);
}

/* A request read in full, handed to a thread of its own. */
struct ctl_job {
	int fd;
	char *req; /* the request line without its newline (owned) */
};

static void serve(struct ctl_job *job)
{
	char *argv[64], *save = NULL, *w;
	struct vfs_error err;
	char *body = NULL;
	size_t blen = 0;
	bool json = false;
	int argc = 0, ret, fd = job->fd;
	int64_t deadline;
	FILE *out;

	vfs_error_init(&err);
	w = strtok_r(job->req, " ", &save);
	if (!w || strcmp(w, CTL_PROTO) != 0) {
		reply_err(fd, EPROTO, "not a " CTL_PROTO " request",
			  vfs_mono_ms() + CTL_IO_TIMEOUT * 1000);
		return;
	}
	while ((w = strtok_r(NULL, " ", &save)) && argc < 64) {
		if (ctl_decode_word(w) < 0) {
			reply_err(fd, EINVAL, "bad %-escape in request",
				  vfs_mono_ms() + CTL_IO_TIMEOUT * 1000);
			return;
		}
		if (argc == 0 && !json && strcmp(w, "json") == 0) {
			json = true;
			continue;
		}
		argv[argc++] = w;
	}
	out = open_memstream(&body, &blen);
	if (!out) {
		reply_err(fd, ENOMEM, "out of memory",
			  vfs_mono_ms() + CTL_IO_TIMEOUT * 1000);
		return;
	}
	ret = ctl_dispatch(out, json, argv, argc, &err);
	fclose(out);
	/* the command may take long (a server to reach); the reply has its
	 * own time from now on */
	deadline = vfs_mono_ms() + CTL_IO_TIMEOUT * 1000;
	if (ret < 0) {
		reply_err(fd, err.code ? err.code : -ret,
			  err.msg[0] ? err.msg : strerror(-ret), deadline);
	} else {
		write_all(fd, "OK\n", 3, deadline);
		write_all(fd, body, blen, deadline);
	}
	free(body);
}

static void *client_thread(void *p)
{
	struct ctl_job *job = p;

	serve(job);
	close(job->fd);
	free(job->req);
	free(job);
	pthread_mutex_lock(&ctl.lock);
	if (--ctl.clients == 0)
		pthread_cond_broadcast(&ctl.idle);
	pthread_mutex_unlock(&ctl.lock);
	return NULL;
}

/* Run a complete request on a thread of its own; takes fd and req. */
static void start_job(int fd, char *req)
{
	struct ctl_job *job = NULL;
	pthread_attr_t attr;
	pthread_t tid;
	bool busy;

	pthread_mutex_lock(&ctl.lock);
	busy = ctl.clients >= CTL_MAX_CLIENTS;
	if (!busy)
		ctl.clients++;
	pthread_mutex_unlock(&ctl.lock);
	if (busy) {
		reply_err(fd, EBUSY,
			  "too many control commands in progress; try again",
			  vfs_mono_ms());
		goto fail;
	}
	job = malloc(sizeof(*job));
	if (job) {
		job->fd = fd;
		job->req = req;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&tid, &attr, client_thread, job) == 0) {
			pthread_attr_destroy(&attr);
			return;
		}
		pthread_attr_destroy(&attr);
	}
	reply_err(fd, EAGAIN, "cannot start a thread for the command",
		  vfs_mono_ms());
	pthread_mutex_lock(&ctl.lock);
	if (--ctl.clients == 0)
		pthread_cond_broadcast(&ctl.idle);
	pthread_mutex_unlock(&ctl.lock);
fail:
	free(job);
	free(req);
	close(fd);
}

static void handle_reload_signal(void)
{
	struct vfs_error err;
	char *body = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&body, &len);

	if (!out)
		return;
	vfs_error_init(&err);
	if (ctl_reload(out, &err) < 0)
		log_err("reload (SIGHUP): %s", err.msg);
	fclose(out);
	for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n"))
		log_info("reload (SIGHUP): %s", line);
	free(body);
}

/*
 * A connection whose request is still arriving.  The acceptor reads all of
 * them itself, with poll(), and starts a thread only for a complete
 * request: a client that sends slowly (or not at all) holds no thread and
 * no command slot, only one of CTL_MAX_PENDING places, for at most
 * CTL_IO_TIMEOUT in all.  When every place is taken, a new connection
 * takes the place of the one that has been sending longest, so slow
 * clients cannot lock vfsctl out, however many there are.
 */
struct ctl_pending {
	int fd;
	char *buf; /* CTL_MAX_REQ bytes */
	size_t len;
	int64_t deadline; /* vfs_mono_ms() by which the line must be in */
};

/*
 * Read what has arrived: 1 when the request line is complete (its newline
 * replaced by a NUL), 0 when more is to come, -errno when the client
 * closed early (-EPROTO), sent too much (-E2BIG) or failed.
 */
static int pending_read(struct ctl_pending *p)
{
	for (;;) {
		ssize_t n;
		char *nl;

		if (p->len == CTL_MAX_REQ - 1)
			return -E2BIG;
		n = recv(p->fd, p->buf + p->len, CTL_MAX_REQ - 1 - p->len,
			 MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPROTO;
		nl = memchr(p->buf + p->len, '\n', (size_t)n);
		p->len += (size_t)n;
		if (nl) {
			*nl = '\0';
			return 1;
		}
	}
}

/* Give up on pending[i] with an error reply; the last one takes its place. */
static void pending_drop(struct ctl_pending *pend, size_t *npend, size_t i,
			 int code, const char *msg)
{
	if (code)
		reply_err(pend[i].fd, code, msg, vfs_mono_ms());
	close(pend[i].fd);
	free(pend[i].buf);
	pend[i] = pend[--*npend];
}

/* Accept one connection into pend (making room if it is full). */
static void pending_accept(struct ctl_pending *pend, size_t *npend)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int fd = accept4(ctl.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct ctl_pending *p;

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warn("control: refused uid %u (only root and uid %u)",
			 cred.uid, geteuid());
		reply_err(fd, EACCES,
			  "permission denied: only root and the user running "
			  "vfsd may control it",
			  vfs_mono_ms());
		close(fd);
		return;
	}
	if (*npend == CTL_MAX_PENDING) {
		size_t oldest = 0;

		for (size_t i = 1; i < *npend; i++)
			if (pend[i].deadline < pend[oldest].deadline)
				oldest = i;
		pending_drop(pend, npend, oldest, ETIMEDOUT,
			     "request too slow: other clients are waiting");
	}
	p = &pend[*npend];
	p->buf = malloc(CTL_MAX_REQ);
	if (!p->buf) {
		reply_err(fd, ENOMEM, "out of memory", vfs_mono_ms());
		close(fd);
		return;
	}
	p->fd = fd;
	p->len = 0;
	p->deadline = vfs_mono_ms() + CTL_IO_TIMEOUT * 1000;
	(*npend)++;
}

static void *acceptor(void *arg)
{
	struct ctl_pending pend[CTL_MAX_PENDING];
	struct pollfd pfd[2 + CTL_MAX_PENDING];
	size_t npend = 0;

	for (;;) {
		int64_t now = vfs_mono_ms(), wait = -1;

		pfd[0] = (struct pollfd){.fd = ctl.lfd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = ctl.wake[0], .events = POLLIN};
		for (size_t i = 0; i < npend; i++) {
			int64_t left = pend[i].deadline - now;

			pfd[2 + i] = (struct pollfd){.fd = pend[i].fd,
						     .events = POLLIN};
			if (left < 0)
				left = 0;
			if (wait < 0 || left < wait)
				wait = left;
		}
		if (poll(pfd, 2 + npend, (int)wait) < 0) {
			if (errno == EINTR)
				continue;
			log_err("control: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents) {
			char c = 0;

			if (read(ctl.wake[0], &c, 1) == 1 && c == 'r') {
				handle_reload_signal();
				continue;
			}
			break; /* 'q' or closed: stop */
		}
		/* backwards: pending_drop moves the last entry, seen already */
		now = vfs_mono_ms();
		for (size_t i = npend; i-- > 0;) {
			int ret = 0;

			/* past the deadline, what has arrived still counts
			 * (a long reload may have kept us from reading) */
			if (pfd[2 + i].revents || pend[i].deadline <= now)
				ret = pending_read(&pend[i]);
			if (ret == 0 && pend[i].deadline <= now)
				ret = -ETIMEDOUT;
			if (ret == 1) {
				start_job(pend[i].fd, pend[i].buf);
				pend[i] = pend[--npend];
			} else if (ret == -ETIMEDOUT) {
				pending_drop(pend, &npend, i, ETIMEDOUT,
					     "request not complete within "
					     "the time allowed");
			} else if (ret < 0) {
				pending_drop(pend, &npend, i, -ret,
					     "malformed request");
			}
		}
		if (pfd[0].revents & POLLIN)
			pending_accept(pend, &npend);
	}
	while (npend)
		pending_drop(pend, &npend, npend - 1, 0, NULL);
	return NULL;
}

int ctl_start(const char *path, const struct vfsd_status *status,
	      struct vfs_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	mode_t old;
	int ret;

	if (len >= sizeof(sa.sun_path))
		return vfs_error_set(err, ENAMETOOLONG,
				     "control socket path %s is too long",
				     path);
	memcpy(ctl.path, path, len + 1);
	memcpy(sa.sun_path, path, len + 1);
	ctl.status = status;
	if (strncmp(path, CTL_DIR "/", sizeof(CTL_DIR)) == 0 &&
	    mkdir(CTL_DIR, 0755) < 0 && errno != EEXIST)
		return vfs_error_set(err, errno, "cannot create %s: %s",
				     CTL_DIR, strerror(errno));
	ctl.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl.lfd < 0)
		return vfs_error_set(err, errno, "control socket: %s",
				     strerror(errno));
	/* a live daemon answers; a dead one left a file we may replace */
	if (connect(ctl.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		ret = vfs_error_set(err, EADDRINUSE,
				    "control socket %s is in use by another "
				    "vfsd (give --control PATH)",
				    path);
		goto fail;
	}
	close(ctl.lfd);
	ctl.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl.lfd < 0)
		return vfs_error_set(err, errno, "control socket: %s",
				     strerror(errno));
	unlink(path);
	old = umask(0177); /* the socket is born 0600 */
	ret = bind(ctl.lfd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0 || listen(ctl.lfd, 16) < 0) {
		ret = vfs_error_set(err, errno, "control socket %s: %s", path,
				    strerror(errno));
		goto fail;
	}
	if (pipe2(ctl.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		ret = vfs_error_set(err, errno, "pipe: %s", strerror(errno));
		goto fail_unlink;
	}
	if (pthread_create(&ctl.thread, NULL, acceptor, NULL) != 0) {
		ret = vfs_error_set(err, EAGAIN, "cannot start control thread");
		goto fail_pipe;
	}
	ctl.running = true;
	log_info("control socket %s", path);
	return 0;
fail_pipe:
	close(ctl.wake[0]);
	close(ctl.wake[1]);
	ctl.wake[0] = ctl.wake[1] = -1;
fail_unlink:
	unlink(path);
fail:
	close(ctl.lfd);
	ctl.lfd = -1;
	return ret;
}

void ctl_request_reload(void)
{
	/* async-signal-safe: a byte down the pipe */
	if (ctl.wake[1] >= 0) {
		ssize_t r = write(ctl.wake[1], "r", 1);

		(void)r;
	}
}

void ctl_stop(void)
{
	if (!ctl.running)
		return;
	if (write(ctl.wake[1], "q", 1) != 1)
		log_warn("control: cannot wake the acceptor");
	pthread_join(ctl.thread, NULL);
	close(ctl.lfd);
	unlink(ctl.path);
	/* let commands in flight finish before the router goes away */
	pthread_mutex_lock(&ctl.lock);
	while (ctl.clients)
		pthread_cond_wait(&ctl.idle, &ctl.lock);
	pthread_mutex_unlock(&ctl.lock);
	close(ctl.wake[0]);
	close(ctl.wake[1]);
	ctl.wake[0] = ctl.wake[1] = -1;
	ctl.lfd = -1;
	ctl.running = false;
}
