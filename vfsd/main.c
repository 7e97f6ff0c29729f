/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * main.c - vfsd(8): arguments, configuration, daemon life cycle.
 *
 * Start-up order matters for error reporting: the configuration is read and
 * every backend is connected before anything is mounted, so a bad URL or an
 * unreachable server ends with a one-line message, exit status 2 and no
 * mount.  Without -f the process forks first (before any thread exists);
 * the parent waits until the child's mount answers a stat(), so a script
 * can use the mount on its next line, then exits with the child's verdict.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guestfs/lock.h"
#include "lib/log.h"
#include "vfsd/config.h"
#include "vfsd/control.h"
#include "vfsd/ctlfs.h"
#include "vfsd/ctlpath.h"
#include "vfsd/fuse_ops.h"
#include "vfsd/inode.h"
#include "vfsd/passthrough.h"
#include "vfsd/qos.h"
#include "vfsd/router.h"

#define VFSD_DEFAULT_CONFIG "/etc/vfsd/vfsd.conf"
#define VFSD_DEFAULT_LOCAL  "/var/lib/vfsd/local"
/* Enough workers that a hung backend (bounded by its pool) never starves
 * the others. */
#define VFSD_MAX_THREADS    256
#define EXIT_USAGE          2

struct vfsd_args {
	bool foreground;
	bool debug;
	const char *config;
	const char **maps;
	size_t nmaps;
	char *fuse_opts;        /* comma-joined -o values, owned */
	const char *mountpoint; /* NULL: from the config file */
	const char *control;    /* --control PATH, or NULL for the default */
	const char *host_id;    /* --host-id, or NULL */
	bool allow_other_unchecked; /* --allow-other-unchecked */
	int log_level;              /* -1: default */
};

static int ready_fd = -1; /* pipe to the waiting parent, or -1 */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vfsd [-f] [-d] [-c CONFIG] [-m PREFIX=URL]... [-o "
		"FUSEOPT[,...]] [CONFIG] MOUNTPOINT\n"
		"\n"
		"Serve local directories, NFS exports and SFTP servers under "
		"one mount point.\n"
		"\n"
		"  -f, --foreground      stay in the foreground, log to "
		"stderr\n"
		"  -d, --debug           debug logging (implies -f)\n"
		"  -c, --config FILE     read mounts from FILE (vfsd.conf(5))\n"
		"  -m, --mount P=URL     map prefix P to URL (file:///dir, "
		"sftp://host/dir,\n"
		"                        nfs://host/export); repeatable\n"
		"  -o OPT[,OPT...]       FUSE mount options (allow_other, "
		"default_permissions...)\n"
		"      --control PATH    control socket (default "
		"/run/vfsd/<mount point>.sock)\n"
		"      --host-id NAME    this instance's identity towards "
		"other hosts\n"
		"      --allow-other-unchecked\n"
		"                        as root, accept -o allow_other "
		"without\n"
		"                        default_permissions (dangerous: "
		"vfsd.8)\n"
		"      --log-level LVL   error, warning, info (default) or "
		"debug\n"
		"  -h, --help            this text\n"
		"  -V, --version         print the version\n"
		"\n"
		"Without -c and -m, %s is read if it exists; otherwise vfsd "
		"serves\n"
		"/local from %s.  A CONFIG before MOUNTPOINT is the same as "
		"-c\n"
		"(the form mount -t fuse.vfsd CONFIG MOUNTPOINT uses).  "
		"MOUNTPOINT may\n"
		"come from the config file's [vfsd] mountpoint instead.\n",
		VFSD_DEFAULT_CONFIG, VFSD_DEFAULT_LOCAL);
}

static int append_opt(char **opts, const char *o)
{
	char *n;

	if (asprintf(&n, "%s%s%s", *opts ? *opts : "", *opts ? "," : "", o) < 0)
		return -ENOMEM;
	free(*opts);
	*opts = n;
	return 0;
}

static int parse_args(int argc, char **argv, struct vfsd_args *a)
{
	static const struct option longopts[] = {
		{"foreground", no_argument, NULL, 'f'},
		{"debug", no_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"mount", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"control", required_argument, NULL, 'C'},
		{"host-id", required_argument, NULL, 'H'},
		{"log-level", required_argument, NULL, 'L'},
		{"allow-other-unchecked", no_argument, NULL, 'U'},
		{0}};
	static const char *const levels[] = {"error", "warning", "info",
					     "debug"};
	int c;

	while ((c = getopt_long(argc, argv, "fdc:m:o:hV", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'f':
			a->foreground = true;
			break;
		case 'd':
			a->debug = a->foreground = true;
			break;
		case 'c':
			a->config = optarg;
			break;
		case 'm': {
			const char **grown = realloc(
				a->maps, (a->nmaps + 1) * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			a->maps = grown;
			a->maps[a->nmaps++] = optarg;
			break;
		}
		case 'o':
			if (append_opt(&a->fuse_opts, optarg) < 0)
				return -ENOMEM;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("vfsd %s (libfuse %s)\n", VFSD_VERSION,
			       fuse_pkgversion());
			exit(0);
		case 'C':
			a->control = optarg;
			break;
		case 'H':
			a->host_id = optarg;
			break;
		case 'U':
			a->allow_other_unchecked = true;
			break;
		case 'L':
			a->log_level = -1;
			for (int i = 0; i < 4; i++)
				if (strcmp(optarg, levels[i]) == 0)
					a->log_level = i;
			if (a->log_level < 0) {
				fprintf(stderr,
					"vfsd: --log-level must be error, "
					"warning, info or debug\n");
				return -EINVAL;
			}
			break;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (argc - optind > 2) {
		fprintf(stderr, "vfsd: too many arguments\n");
		usage(stderr);
		return -EINVAL;
	}
	if (argc - optind == 2) {
		if (a->config) {
			fprintf(stderr,
				"vfsd: a config file is given twice (-c and "
				"%s)\n",
				argv[optind]);
			return -EINVAL;
		}
		a->config = argv[optind++];
	}
	a->mountpoint = optind < argc ? argv[optind] : NULL;
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int load_config(const struct vfsd_args *a, struct vfsd_config *cfg,
		       struct vfs_error *err)
{
	int ret;

	if (a->config) {
		ret = cfg_load_file(cfg, a->config, err);
		if (ret < 0)
			return ret;
	}
	for (size_t i = 0; i < a->nmaps; i++) {
		ret = cfg_add_mapping(cfg, a->maps[i], err);
		if (ret < 0)
			return ret;
	}
	if (!a->config && !a->nmaps) {
		if (access(VFSD_DEFAULT_CONFIG, F_OK) == 0)
			return cfg_load_file(cfg, VFSD_DEFAULT_CONFIG, err);
		ret = mkdir_p(VFSD_DEFAULT_LOCAL, 0755);
		if (ret < 0)
			return vfs_error_set(err, -ret, "cannot create %s: %s",
					     VFSD_DEFAULT_LOCAL,
					     strerror(-ret));
		log_info("no configuration (%s absent, no -c or -m): serving "
			 "the default namespace /local -> %s",
			 VFSD_DEFAULT_CONFIG, VFSD_DEFAULT_LOCAL);
		ret = cfg_add_mapping(cfg, "/local=file://" VFSD_DEFAULT_LOCAL,
				      err);
		if (ret < 0)
			return ret;
	}
	return cfg_validate(cfg, err);
}

static int check_mountpoint(const char *mnt, char *real)
{
	struct statvfs sv;
	struct stat st;

	/* statfs always reaches a FUSE daemon; stat may be served from the
	 * kernel's attribute cache even after the daemon died */
	if (statvfs(mnt, &sv) < 0 || stat(mnt, &st) < 0) {
		if (errno == ENOTCONN)
			fprintf(stderr,
				"vfsd: %s: stale FUSE mount (Transport "
				"endpoint is not connected): a previous daemon "
				"died; run 'fusermount3 -u %s' first\n",
				mnt, mnt);
		else
			fprintf(stderr, "vfsd: mount point %s: %s\n", mnt,
				strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vfsd: mount point %s: not a directory\n", mnt);
		return -1;
	}
	if (!realpath(mnt, real)) {
		fprintf(stderr, "vfsd: mount point %s: %s\n", mnt,
			strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Fork; the parent waits for one status byte from the child (0 = mounted)
 * and exits with it.  A child that dies early closes the pipe: exit 2.
 */
static void daemonize_early(void)
{
	int fds[2];
	pid_t pid;
	unsigned char status = EXIT_USAGE;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		perror("vfsd: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("vfsd: fork");
		exit(1);
	}
	if (pid > 0) {
		close(fds[1]);
		if (read(fds[0], &status, 1) != 1)
			status = EXIT_USAGE;
		exit(status);
	}
	close(fds[0]);
	ready_fd = fds[1];
	setsid();
}

static void report_ready(unsigned char status)
{
	if (ready_fd < 0)
		return;
	if (write(ready_fd, &status, 1) != 1)
		log_warn("could not tell the parent process: %s",
			 strerror(errno));
	close(ready_fd);
	ready_fd = -1;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/*
 * The kernel's default readahead window for FUSE (128 KiB) keeps a
 * sequential reader at small requests; raise it to our request size.  Best
 * effort: it needs root and sysfs.
 */
static void tune_bdi(dev_t dev)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major(dev), minor(dev));
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%d\n", 1024);
	fclose(f);
}

struct ready_arg {
	char mnt[PATH_MAX];
	struct fuse_session *se;
};

/* What stat_in_child's child sends back: the mount's device or an errno. */
struct stat_reply {
	int err;
	dev_t dev;
};

/* The child of stat_in_child: only async-signal-safe calls, for the
 * process that forked it is multi-threaded. */
static void stat_child(const char *path, int w)
{
	struct stat_reply r = {0};
	struct stat st = {0};
	sigset_t all;

	/* our descriptors but the pipe: above all /dev/fuse */
	if (dup2(w, STDIN_FILENO) < 0)
		_exit(1);
	closefrom(STDIN_FILENO + 1);
	/* libfuse's handlers and ours act on the daemon's state */
	signal(SIGHUP, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	r.err = stat(path, &st) < 0 ? errno : 0;
	r.dev = st.st_dev;
	_exit(write(STDIN_FILENO, &r, sizeof(r)) == sizeof(r) ? 0 : 1);
}

/*
 * stat(2) of our own mount point, done by a child process that holds no
 * descriptor but its pipe.  Done by a thread of ours, the stat would make
 * that thread wait in the kernel for our own answer, uninterruptibly once
 * a worker has read the request: a SIGKILL then leaves the process a
 * zombie that never releases /dev/fuse, and the mount hangs for good.
 * The child does not keep /dev/fuse open, so our death aborts the
 * connection and its stat returns at once.
 */
static int stat_in_child(const char *path, dev_t *dev)
{
	struct stat_reply r;
	sigset_t all, old;
	int fds[2], status = 0, tries = 0;
	pid_t pid;
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	sigfillset(&all);
	for (;;) {
		/* no handler of ours may run in the child before it resets
		 * them */
		pthread_sigmask(SIG_SETMASK, &all, &old);
		pid = fork();
		if (pid == 0)
			stat_child(path, fds[1]);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (pid > 0 || (errno != EAGAIN && errno != ENOMEM) ||
		    ++tries == 50)
			break;
		usleep(100 * 1000); /* a passing shortage of memory or pids */
	}
	if (pid < 0) {
		int e = errno;

		close(fds[0]);
		close(fds[1]);
		return -e;
	}
	close(fds[1]);
	do
		n = read(fds[0], &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(r)) {
		log_err("the process checking the mount ended without an "
			"answer (%s %d)",
			WIFSIGNALED(status) ? "signal" : "status",
			WIFSIGNALED(status) ? WTERMSIG(status)
					    : WEXITSTATUS(status));
		return -EIO;
	}
	*dev = r.dev;
	return -r.err;
}

/*
 * The ready thread is detached: once main() starts tearing the session
 * down (a stop during start-up), it must touch neither the session nor
 * the parent's pipe.
 */
static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static bool ready_gone;

/* Waits for the mount to answer, then releases the waiting parent. */
static void *ready_thread(void *p)
{
	struct ready_arg *ra = p;
	dev_t dev = 0;
	int ret = stat_in_child(ra->mnt, &dev);

	pthread_mutex_lock(&ready_lock);
	if (ready_gone) {
		/* main() reports and ends the session */
	} else if (ret < 0) {
		log_err("%s: mount does not answer: %s", ra->mnt,
			strerror(-ret));
		report_ready(1);
		fuse_session_exit(ra->se);
	} else {
		tune_bdi(dev);
		fuse_ops_mounted(dev);
		log_info("vfsd %s serving %zu mount%s at %s", VFSD_VERSION,
			 router_mount_count(),
			 router_mount_count() == 1 ? "" : "s", ra->mnt);
		if (ready_fd >= 0) {
			log_set_syslog(true);
			detach_stdio();
		}
		report_ready(0);
	}
	pthread_mutex_unlock(&ready_lock);
	free(ra);
	return NULL;
}

static struct fuse_session *session_new(const struct vfsd_args *a)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	const struct fuse_lowlevel_ops *ops;
	struct fuse_session *se = NULL;
	size_t size;

	if (fuse_opt_add_arg(&args, "vfsd") < 0 ||
	    fuse_opt_add_arg(&args, "-o") < 0 ||
	    fuse_opt_add_arg(&args, "fsname=vfsd,subtype=vfsd") < 0)
		goto out;
	if (a->fuse_opts && (fuse_opt_add_arg(&args, "-o") < 0 ||
			     fuse_opt_add_arg(&args, a->fuse_opts) < 0))
		goto out;
	if (a->debug && fuse_opt_add_arg(&args, "-d") < 0)
		goto out;
	ops = fuse_ops_table(&size);
	se = fuse_session_new(&args, ops, size, NULL);
out:
	fuse_opt_free_args(&args);
	return se;
}

static void sighup(int sig)
{
	ctl_request_reload();
}

/* The default host id: this machine's id and the mount point. */
static char *default_host_id(const char *mnt)
{
	char id[64] = "", *out = NULL;
	FILE *f = fopen("/etc/machine-id", "r");

	if (f) {
		if (!fgets(id, sizeof(id), f))
			id[0] = '\0';
		fclose(f);
	}
	id[strcspn(id, "\n")] = '\0';
	if (!id[0] && gethostname(id, sizeof(id) - 1) < 0)
		snprintf(id, sizeof(id), "unknown");
	if (asprintf(&out, "%s:%s", id, mnt) < 0)
		return NULL;
	return out;
}

int main(int argc, char **argv)
{
	struct vfsd_args a = {.log_level = -1};
	struct vfsd_status status = {.version = VFSD_VERSION};
	char ctlpath[128], *host_id = NULL;
	struct vfs_mount *ctlfs;
	struct vfsd_config cfg = {0};
	struct fuse_ops_config foc = {0};
	struct fuse_loop_config *lc = NULL;
	struct fuse_session *se = NULL;
	struct vfs_error err;
	const char *fuse_warning = NULL;
	struct ready_arg *ra;
	char mnt[PATH_MAX];
	pthread_t tid;
	int ret, exit_status = EXIT_USAGE;

	vfs_error_init(&err);
	/*
	 * Data moves through buffers of 1-8 MiB (write-behind jobs, libnfs's
	 * encoded WRITEs, copies).  glibc would mmap each one and unmap it
	 * when freed, so every MiB written paid 256 page faults and the
	 * zeroing of 256 fresh pages (perf: a third of the writer thread's
	 * time).  Keep them on the heap for reuse, and keep up to 64 MiB of
	 * freed heap rather than hand it back at once.
	 */
	mallopt(M_MMAP_THRESHOLD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	/*
	 * New objects get the modes their callers ask for, the caller's own
	 * umask already applied (fuse_ops.c): the shell that started vfsd
	 * has no say in them.  Files of the daemon's own give their modes.
	 */
	umask(0);
	if (parse_args(argc, argv, &a) < 0)
		return EXIT_USAGE;
	log_init("vfsd", false,
		 a.log_level >= 0 ? (enum log_level)a.log_level
		 : a.debug        ? LOG_LVL_DEBUG
				  : LOG_LVL_INFO);
	if (a.host_id && cfg_check_host_id("--host-id", a.host_id, &err) < 0) {
		fprintf(stderr, "vfsd: %s\n", err.msg);
		goto out;
	}
	ret = load_config(&a, &cfg, &err);
	if (ret == 0)
		ret = cfg_check_fuse_opts(a.fuse_opts, geteuid() == 0,
					  a.allow_other_unchecked ||
						  cfg.allow_other_unchecked,
					  &fuse_warning, &err);
	if (ret < 0) {
		fprintf(stderr, "vfsd: %s\n", err.msg);
		goto out;
	}
	if (!a.mountpoint)
		a.mountpoint = cfg.mountpoint;
	if (!a.mountpoint) {
		fprintf(stderr, "vfsd: missing MOUNTPOINT (give it, or set "
				"mountpoint in [vfsd] of the config file)\n");
		usage(stderr);
		goto out;
	}
	if (check_mountpoint(a.mountpoint, mnt) < 0)
		goto out;
	if (a.control)
		snprintf(ctlpath, sizeof(ctlpath), "%s", a.control);
	else if (ctl_default_path(mnt, ctlpath, sizeof(ctlpath)) < 0) {
		fprintf(stderr,
			"vfsd: %s: the default control socket path is too "
			"long; give --control PATH\n",
			mnt);
		goto out;
	}
	host_id = a.host_id     ? strdup(a.host_id)
		  : cfg.host_id ? strdup(cfg.host_id)
				: default_host_id(mnt);
	if (!host_id) {
		fprintf(stderr, "vfsd: out of memory\n");
		goto out;
	}
	status.mountpoint = mnt;
	status.host_id = host_id;
	status.control = ctlpath;
	status.config = cfg.file;
	if (!a.foreground) {
		daemonize_early();
		/* start-up failures still reach the terminal (fprintf) */
		log_set_syslog(true);
	}
	if (fuse_warning)
		log_warn("%s", fuse_warning);

	if (router_init() < 0 || inode_table_init() < 0) {
		log_err("out of memory");
		goto out;
	}
	router_set_lock_lease(cfg.lock_lease ? cfg.lock_lease
					     : GLOCK_LEASE_DEFAULT);
	for (size_t i = 0; i < cfg.nmounts; i++) {
		struct cfg_mount *m = &cfg.mounts[i];

		ret = router_add(m->prefix, m->url, &m->opts, m->readonly,
				 m->where && strcmp(m->where, "-m") == 0
					 ? ROUTER_ORIGIN_CMDLINE
					 : ROUTER_ORIGIN_CONFIG,
				 &err);
		if (ret < 0) {
			fprintf(stderr, "vfsd: %s\n", err.msg);
			goto out_router;
		}
	}
	/* [qos] sections (the mounts' limits came with them) */
	if (cfg_apply_qos(&cfg, &err) < 0) {
		fprintf(stderr, "vfsd: %s\n", err.msg);
		goto out_router;
	}
	ctlfs = ctlfs_new(&status);
	if (!ctlfs || router_add_internal("/.vfsd", ctlfs, cfg.show_control_dir,
					  &err) < 0) {
		fprintf(stderr, "vfsd: %s\n",
			ctlfs ? err.msg : "out of memory");
		goto out_router;
	}
	status.pid = getpid();
	clock_gettime(CLOCK_MONOTONIC, &status.started);
	if (ctl_start(ctlpath, &status, &err) < 0) {
		fprintf(stderr, "vfsd: %s\n", err.msg);
		goto out_router;
	}
	if (glock_init(host_id, cfg.lock_lease ? cfg.lock_lease
					       : GLOCK_LEASE_DEFAULT) < 0) {
		fprintf(stderr, "vfsd: cannot start the lock lease thread\n");
		goto out_router;
	}
	if (qos_store_watch_start() < 0) {
		fprintf(stderr, "vfsd: cannot start the stored limits' "
				"watcher thread\n");
		goto out_router;
	}
	foc.writeback = cfg.writeback;
	foc.posix_acl =
		cfg_fuse_opt_present(a.fuse_opts, "default_permissions");
	fuse_ops_configure(&foc);

	se = session_new(&a);
	if (!se) {
		fprintf(stderr, "vfsd: bad FUSE options '%s'\n",
			a.fuse_opts ? a.fuse_opts : "");
		goto out_router;
	}
	fuse_ops_set_session(se);
	if (fuse_set_signal_handlers(se) < 0)
		goto out_session;
	/* libfuse ends the session on SIGHUP; ours means "reload" */
	signal(SIGHUP, sighup);
	if (fuse_session_mount(se, mnt) < 0) {
		fprintf(stderr, "vfsd: cannot mount on %s\n", mnt);
		goto out_signals;
	}
	if (pt_session_setup(se) < 0)
		log_warn("kernel passthrough: cannot hook the session's I/O; "
			 "local files take the normal path");

	ra = calloc(1, sizeof(*ra));
	if (!ra)
		goto out_unmount;
	snprintf(ra->mnt, sizeof(ra->mnt), "%s", mnt);
	ra->se = se;
	if (pthread_create(&tid, NULL, ready_thread, ra) != 0) {
		free(ra);
		goto out_unmount;
	}
	pthread_detach(tid);

	lc = fuse_loop_cfg_create();
	if (!lc)
		goto out_unmount;
	fuse_loop_cfg_set_clone_fd(lc, 1);
	fuse_loop_cfg_set_max_threads(lc, VFSD_MAX_THREADS);
	fuse_loop_cfg_set_idle_threads(lc, 16);
	ret = fuse_session_loop_mt(se, lc);
	fuse_ops_drain();
	/* libfuse's signal handlers end the loop with the signal's number:
	 * SIGTERM and SIGINT are a stop asked for, a clean exit (systemd's
	 * stop would otherwise leave the unit failed) */
	exit_status = ret == 0 || ret == SIGTERM || ret == SIGINT ? 0 : 1;
	log_info("%s: unmounting", mnt);

out_unmount:
	pthread_mutex_lock(&ready_lock);
	ready_gone = true;
	pthread_mutex_unlock(&ready_lock);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_ops_set_session(NULL);
	fuse_session_destroy(se);
out_router:
	report_ready(EXIT_USAGE);
	qos_store_watch_stop();
	ctl_stop();
	glock_shutdown();
	router_shutdown();
	qos_shutdown();
	inode_table_destroy();
out:
	if (lc)
		fuse_loop_cfg_destroy(lc);
	cfg_free(&cfg);
	free(host_id);
	free(a.maps);
	free(a.fuse_opts);
	return exit_status;
}
