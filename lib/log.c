/* SPDX-License-Identifier: GPL-2.0-or-later */
/* log.c - leveled logging; stderr in the foreground, syslog as a daemon. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "lib/log.h"

static enum log_level log_level = LOG_LVL_INFO;
static bool log_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const int log_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
static const char *const log_names[] = {"error", "warning", "info", "debug"};

void log_init(const char *ident, bool to_syslog, enum log_level level)
{
	log_level = level;
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = to_syslog;
}

void log_set_syslog(bool to_syslog)
{
	log_syslog = to_syslog;
}

bool log_enabled(enum log_level level)
{
	return level <= log_level;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (!log_enabled(level))
		return;
	if (log_syslog) {
		vsyslog(log_prio[level], fmt, ap);
		return;
	}
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "vfsd: %s: ", log_names[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_warn_ratelimited(struct log_ratelimit *rl, const char *fmt, ...)
{
	struct timespec now;
	unsigned long suppressed;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&log_lock);
	if (rl->last && now.tv_sec - rl->last < 10) {
		rl->suppressed++;
		pthread_mutex_unlock(&log_lock);
		return;
	}
	rl->last = now.tv_sec ? now.tv_sec : 1;
	suppressed = rl->suppressed;
	rl->suppressed = 0;
	pthread_mutex_unlock(&log_lock);

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_WARN, fmt, ap);
	va_end(ap);
	if (suppressed)
		log_warn("(%lu similar messages suppressed)", suppressed);
}
