/*
 * util.h - small helpers every module uses: clocks and deadlines,
 * sleeping that ends at shutdown, random numbers, directories, signal
 * masks, the percent escape of the text files cpfs persists, and
 * min/max/array-size macros.  (Allocation has no wrapper:
 * every caller checks malloc's NULL and answers ENOMEM.)
 *
 * Thread safety: all functions are thread safe.
 */
#ifndef CP_UTIL_H
#define CP_UTIL_H

#include <stddef.h>

/* Seconds since an arbitrary point (CLOCK_MONOTONIC). */
double cp_now(void);

/* Seconds since the Epoch (CLOCK_REALTIME). */
double cp_wallclock(void);

/* Sleeps for @seconds (<= 0 returns at once); returns early once
 * cp_shutdown_begin() was called. */
void cp_sleep(double seconds);

/* The mount is going away: wake every cp_sleep() and make them return at
 * once from now on.  Waits elsewhere check cp_shutting_down(). */
void cp_shutdown_begin(void);
int cp_shutting_down(void);

/* Converts a monotonic deadline (cp_now() scale) into an absolute
 * CLOCK_REALTIME timespec for pthread_cond_timedwait(). */
struct timespec;
void cp_deadline_timespec(double deadline, struct timespec *ts);

/* Returns a uniformly distributed double in [0, 1); thread safe. */
double cp_random(void);

/* mkdir -p, mode 0700 for the directories it creates.  0 or -errno. */
int cp_mkdir_p(const char *path);

/* 0 if a new file can be created in @dir (made and removed), else
 * -errno: catches read-only file systems even for root. */
int cp_dir_writable(const char *dir);

/*
 * The path of @leaf in the cache directory: <cache_dir>/<leaf>, or the
 * default base ($XDG_CACHE_HOME/cpfs, else $HOME/.cache/cpfs, else
 * /var/cache/cpfs for root) when @cache_dir is NULL or empty.  0 or
 * -ENOENT (no base) / -ENAMETOOLONG.
 */
int cp_cache_path(char *out, size_t len, const char *cache_dir,
		  const char *leaf);

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread: they must
 * reach the FUSE loop's threads (libfuse's handlers end the loop), never
 * one of cpfs's own. */
void cp_block_termination_signals(void);

/*
 * Percent escape for fields of persisted text (meta.c records, listing.c
 * lines): every byte outside printable ASCII, and space, '%', '=' and
 * ',', is written %XX, so a field never holds a separator.
 * cp_pct_escape() appends @s to @out at @pos and returns the new length
 * (NUL-terminated), or @cap when it does not fit.
 * cp_pct_unescape() decodes @len bytes of @s into @out (@cap bytes; @out
 * may be @s itself: the text only shrinks): 0, or -EINVAL on a broken
 * escape, an escaped NUL or no room.
 */
size_t cp_pct_escape(char *out, size_t pos, size_t cap, const char *s);
int cp_pct_unescape(char *out, size_t cap, const char *s, size_t len);

#define CP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CP_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
