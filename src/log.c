/*
 * log.c - one line per message, to stderr or (once daemonized) syslog.
 *
 * Owns the threshold and the destination, both atomics set from main()
 * before or between mounts.  Every thread logs.  A message is formatted
 * into a local buffer, control characters are replaced (text from the
 * network must not forge extra log lines), and the line is written with
 * one write(2) so lines from different threads never interleave.
 */
#include "log.h"

#include "valid.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define LINE_MAX_LEN 2048

static atomic_int log_threshold = CP_LOG_INFO;
static atomic_int log_syslog;

void cp_log_init(int debug)
{
	atomic_store(&log_threshold, debug ? CP_LOG_DEBUG : CP_LOG_INFO);
}

void cp_log_use_syslog(void)
{
	openlog("cpfs", LOG_PID, LOG_DAEMON);
	atomic_store(&log_syslog, 1);
}

int cp_log_enabled(enum cp_log_level level)
{
	return (int)level <= atomic_load(&log_threshold);
}

static const char *level_prefix(enum cp_log_level level)
{
	switch (level) {
	case CP_LOG_ERR:
		return "error: ";
	case CP_LOG_WARN:
		return "warning: ";
	case CP_LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

static int level_priority(enum cp_log_level level)
{
	switch (level) {
	case CP_LOG_ERR:
		return LOG_ERR;
	case CP_LOG_WARN:
		return LOG_WARNING;
	case CP_LOG_DEBUG:
		return LOG_DEBUG;
	default:
		return LOG_INFO;
	}
}

void cp_log(enum cp_log_level level, const char *fmt, ...)
{
	char line[LINE_MAX_LEN];
	size_t off, n, i;
	va_list ap;
	int len;

	if (!cp_log_enabled(level))
		return;
	off = (size_t)snprintf(line, sizeof(line), "cpfs: %s",
			       level_prefix(level));
	va_start(ap, fmt);
	len = vsnprintf(line + off, sizeof(line) - off - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	n = strlen(line);
	while (n > off && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	for (i = off; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 && c != '\t')
			line[i] = '?';
		else if (c == 0x7f)
			line[i] = '?';
	}
	if (atomic_load(&log_syslog)) {
		line[n] = '\0';
		syslog(level_priority(level), "%s", line + 6);
		return;
	}
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

const char *cp_log_url(const char *url, char *buf, size_t len)
{
	struct cp_url u;
	const char *p, *end;
	size_t o = 0;

	if (!buf || !len)
		return buf;
	if (cp_url_split(url, &u) < 0) {
		snprintf(buf, len, "(invalid url)");
		return buf;
	}
	/* "scheme://", then host, port and path: no userinfo, no query */
	for (p = u.scheme; p < u.scheme + u.scheme_len + 3 && o + 1 < len; p++)
		buf[o++] = *p;
	end = u.path + u.path_len;
	for (p = u.authority; p < end && o + 1 < len; p++) {
		unsigned char c = (unsigned char)*p;

		buf[o++] = (c <= 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	buf[o] = '\0';
	return buf;
}
