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

bool fo_caller_dying(pid_t tid)
{
	unsigned long long mask;
	char path[64], line[128];
	bool dying = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		if ((sscanf(line, "SigPnd: %llx", &mask) == 1 ||
		     sscanf(line, "ShdPnd: %llx", &mask) == 1) &&
		    (mask & (1ull << (SIGKILL - 1))))
			dying = true;
	fclose(f);
	return dying;
}

pid_t fo_caller_tgid(pid_t tid)
{
	char path[64], line[128];
	int tgid = 0;
	FILE *f;

	if (tid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid > 0 ? (pid_t)tgid : 0;
}

/* 1 when task `name` of /proc/TGID/task is exiting or a zombie, 0 when it
 * runs, -1 when it is gone (reaped meanwhile). */
static int task_exiting(pid_t tgid, const char *name)
{
	char path[320], buf[512], *p, state;
	unsigned long flags;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)tgid, name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold anything, parentheses too */
	p = strrchr(buf, ')');
	/* after it: state ppid pgrp session tty_nr tpgid flags */
	if (!p ||
	    sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
		return 0; /* unreadable: taken as running */
	return state == 'Z' || state == 'X' || (flags & FO_PF_EXITING);
}

bool fo_process_gone(pid_t tgid)
{
	static int proc_ok = -1; /* /proc can tell at all */
	char path[64];
	struct dirent *e;
	bool gone = true;
	DIR *d;

	if (tgid <= 0)
		return false;
	if (proc_ok < 0)
		proc_ok = access("/proc/self/task", R_OK) == 0;
	if (!proc_ok)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)tgid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT || errno == ESRCH;
	while (gone && (e = readdir(d)))
		if (e->d_name[0] != '.' && task_exiting(tgid, e->d_name) == 0)
			gone = false;
	closedir(d);
	return gone;
}
