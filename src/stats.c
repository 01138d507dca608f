/*
 * stats.c - formatting of the live counters.
 *
 * The counters themselves are atomics in struct cp_stats (see stats.h);
 * this file only reads them, from whichever thread asks (the getxattr
 * handler, the SIGUSR1 dump).
 */
#include "stats.h"

#include <inttypes.h>
#include <stdio.h>

size_t cp_stats_format(const struct cp_stats *stats, char *buf, size_t len)
{
	size_t need = 0;
	int n;

	if (!buf)
		len = 0;
	if (len)
		buf[0] = '\0';
#define CP_STATS_PRINT(name)                                                   \
	n = snprintf(need < len ? buf + need : NULL,                           \
		     need < len ? len - need : 0, "%s=%" PRIu64 "\n", #name,   \
		     (uint64_t)atomic_load_explicit(&stats->name,              \
						    memory_order_relaxed));    \
	if (n > 0)                                                             \
		need += (size_t)n;
	CP_STATS_FIELDS(CP_STATS_PRINT)
#undef CP_STATS_PRINT
	return need;
}
