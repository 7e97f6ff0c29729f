/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log.h - leveled logging to stderr (foreground) or syslog (daemon).
 * Never pass secrets: messages are written as given.
 */
#ifndef VFSD_LIB_LOG_H
#define VFSD_LIB_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *ident, bool to_syslog, enum log_level level);
void log_set_syslog(bool to_syslog);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)  log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_enabled(LOG_LVL_DEBUG))                                \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                   \
	} while (0)

/*
 * Rate-limited warning for data paths: at most one message per `key`
 * site every 10 seconds, with a count of what was suppressed.
 */
struct log_ratelimit {
	long last; /* monotonic seconds of the last message */
	unsigned long suppressed;
};
void log_warn_ratelimited(struct log_ratelimit *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* VFSD_LIB_LOG_H */
