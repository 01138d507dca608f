/*
 * log.h - the daemon's only way to say something.
 *
 * Lines go to stderr while the process is in the foreground and to syslog
 * once it has daemonized.  Nothing here ever prints an API key or the
 * query of a URL: callers pass URLs through cp_log_url() first.
 *
 * Thread safety: thread safe; each call writes one whole line.
 */
#ifndef CP_LOG_H
#define CP_LOG_H

#include <stddef.h>

enum cp_log_level {
	CP_LOG_ERR,
	CP_LOG_WARN,
	CP_LOG_INFO,
	CP_LOG_DEBUG,
};

/* @debug enables CP_LOG_DEBUG lines; default threshold is CP_LOG_INFO. */
void cp_log_init(int debug);

/* After daemonizing: send lines to syslog instead of stderr. */
void cp_log_use_syslog(void);

int cp_log_enabled(enum cp_log_level level);

void cp_log(enum cp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define cp_err(...) cp_log(CP_LOG_ERR, __VA_ARGS__)
#define cp_warn(...) cp_log(CP_LOG_WARN, __VA_ARGS__)
#define cp_info(...) cp_log(CP_LOG_INFO, __VA_ARGS__)
#define cp_dbg(...)                                                            \
	do {                                                                   \
		if (cp_log_enabled(CP_LOG_DEBUG))                              \
			cp_log(CP_LOG_DEBUG, __VA_ARGS__);                     \
	} while (0)

/*
 * Writes a loggable form of @url into @buf: "scheme://host[:port]/path",
 * without userinfo, query or fragment; split by cp_url_split()
 * (valid.h), the one URL parser.  Returns @buf.  A NULL or unparsable
 * URL gives "(invalid url)".
 */
const char *cp_log_url(const char *url, char *buf, size_t len);

#endif
