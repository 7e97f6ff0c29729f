/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuse_caller.c - whether the process behind a FUSE request still waits
 * for its answer, read from /proc.
 *
 * A request waiting for its I/O limit (fuse_wait.c, qos.h) may wait for
 * days at a few bytes a second.  A caller the kernel is killing sends an
 * INTERRUPT with its synchronous requests (fo_caller_dying()).  The
 * kernel's own reads on a process's behalf (readahead, libaio, io_uring)
 * are never interrupted: they wait for the limit after their process is
 * gone, holding its files open (and a libaio process's exit, which waits
 * for them).  A read whose whole process is gone or exiting
 * (fo_process_gone()) can fail instead: nobody takes its data, and the
 * page cache reads again what a later caller asks for.  The process and
 * not the thread: a thread may end while its process reaps the
 * asynchronous reads it submitted.
 */
#define FUSE_USE_VERSION 314
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vfsd/fuse_internal.h"

#define FO_PF_EXITING 0x00000004 /* task flag: in do_exit() */
#define FO_PF_KTHREAD 0x00200000 /* task flag: a kernel thread */

/*
 * Whether /proc tells of the processes of vfsd's own PID namespace, the
 * one FUSE gives the callers' pids in: not when it is another's (vfsd
 * started in a namespace of its own without its /proc), where a pid
 * names some other process or none.
 */
static bool proc_ours(void)
{
	static int ours = -1;
	char link[32];
	ssize_t n;

	if (ours < 0) {
		n = readlink("/proc/self", link, sizeof(link) - 1);
		if (n > 0)
			link[n] = '\0';
		ours = n > 0 && atol(link) == (long)getpid();
	}
	return ours;
}

/* Whether /proc failed to open a file of pid because pid is gone, and
 * not for want of a descriptor, memory or access (hidepid=), which leave
 * its process as it was: kill() asks the kernel itself. */
static bool pid_gone(pid_t pid, int open_errno)
{
	return (open_errno == ENOENT || open_errno == ESRCH) &&
	       kill(pid, 0) < 0 && errno == ESRCH;
}

bool fo_caller_dying(pid_t tid)
{
	unsigned long long mask;
	char path[64], line[128];
	bool dying = false;
	FILE *f;

	/* 0: a caller outside vfsd's PID namespace; no signal of it can
	 * be told from another, and the request waits as with any */
	if (tid <= 0 || !proc_ours())
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return pid_gone(tid, errno);
	while (fgets(line, sizeof(line), f))
		if ((sscanf(line, "SigPnd: %llx", &mask) == 1 ||
		     sscanf(line, "ShdPnd: %llx", &mask) == 1) &&
		    (mask & (1ull << (SIGKILL - 1))))
			dying = true;
	fclose(f);
	return dying;
}

/* A task's state and flags from its stat file at `path`: 0, or the
 * errno of its open (state '?' and flags 0 when it cannot be parsed). */
static int task_stat(const char *path, char *state, unsigned long *flags)
{
	char buf[512], *p;
	size_t n;
	FILE *f;

	*state = '?';
	*flags = 0;
	f = fopen(path, "re");
	if (!f)
		return errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold anything, parentheses too */
	p = strrchr(buf, ')');
	/* after it: state ppid pgrp session tty_nr tpgid flags */
	if (!p ||
	    sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", state, flags) != 2) {
		*state = '?';
		*flags = 0;
	}
	return 0;
}

pid_t fo_caller_tgid(pid_t tid, bool *kernel)
{
	char path[64], line[128], state;
	int tgid = 0, kthread = -1;
	FILE *f;

	*kernel = false;
	if (tid <= 0 || !proc_ours())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return pid_gone(tid, errno) ? -1 : 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) != 1)
			sscanf(line, "Kthread: %d", &kthread);
	fclose(f);
	/* kernels before the Kthread line: the task's flags.  (Not its
	 * memory: a user thread in exit, blocked in the FLUSH of its files,
	 * has none left either.) */
	if (kthread < 0) {
		unsigned long flags;
		int err;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
		err = task_stat(path, &state, &flags);
		if (err)
			return pid_gone(tid, err) ? -1 : 0;
		if (state == '?')
			return 0; /* unreadable: unknown */
		kthread = !!(flags & FO_PF_KTHREAD);
	}
	/* a kernel thread reads for others (a loop device's worker), which
	 * wait whether or not it lives on */
	if (kthread) {
		*kernel = true;
		return 0;
	}
	return tgid > 0 ? (pid_t)tgid : 0;
}

/* 1 when task `name` of /proc/TGID/task is exiting or a zombie, 0 when it
 * runs or cannot be read (no descriptor left, say), -1 when it is gone
 * (reaped meanwhile). */
static int task_exiting(pid_t tgid, const char *name)
{
	char path[320], state;
	unsigned long flags;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)tgid, name);
	err = task_stat(path, &state, &flags);
	if (err)
		return pid_gone((pid_t)atoi(name), err) ? -1 : 0;
	if (state == '?')
		return 0; /* unreadable: taken as running */
	return state == 'Z' || state == 'X' || (flags & FO_PF_EXITING);
}

bool fo_process_gone(pid_t tgid)
{
	char path[64];
	struct dirent *e;
	bool gone = true;
	DIR *d;

	if (tgid <= 0 || !proc_ours())
		return false;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)tgid);
	d = opendir(path);
	if (!d)
		return pid_gone(tgid, errno);
	while (gone && (e = readdir(d)))
		if (e->d_name[0] != '.' && task_exiting(tgid, e->d_name) == 0)
			gone = false;
	closedir(d);
	return gone;
}
