/*
 * util.c - clocks, sleeping and a thread-safe random source.
 *
 * Shared state: the shutdown flag and the sleepers' condition variable.
 * The random generator keeps one state per thread
 * (thread-local), seeded from getrandom() on first use.  Called from
 * every thread.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

static double ts_seconds(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

double cp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_seconds(&ts);
}

double cp_wallclock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_seconds(&ts);
}

/* Adds @seconds (>= 0, already clamped) to @ts, normalising nsec. */
static void ts_add(struct timespec *ts, double seconds)
{
	time_t whole = (time_t)seconds;
	long nsec = (long)((seconds - (double)whole) * 1e9);

	ts->tv_sec += whole;
	ts->tv_nsec += nsec;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Large enough for any real wait, small enough never to overflow time_t. */
#define MAX_WAIT (100.0 * 365 * 86400)

/* Sleepers wait on one condition variable so shutdown can wake them. */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cond = PTHREAD_COND_INITIALIZER;
static atomic_int shutting_down;

void cp_sleep(double seconds)
{
	struct timespec until;

	if (!(seconds > 0))
		return;
	cp_deadline_timespec(cp_now() + seconds, &until);
	cp_loop_blocking();
	pthread_mutex_lock(&sleep_lock);
	while (!atomic_load(&shutting_down) &&
	       pthread_cond_timedwait(&sleep_cond, &sleep_lock, &until) !=
		       ETIMEDOUT)
		;
	pthread_mutex_unlock(&sleep_lock);
}

void cp_shutdown_begin(void)
{
	pthread_mutex_lock(&sleep_lock);
	atomic_store(&shutting_down, 1);
	pthread_cond_broadcast(&sleep_cond);
	pthread_mutex_unlock(&sleep_lock);
}

int cp_shutting_down(void)
{
	return atomic_load(&shutting_down);
}

void cp_deadline_timespec(double deadline, struct timespec *ts)
{
	double left = deadline - cp_now();

	if (!(left > 0))
		left = 0;
	if (left > MAX_WAIT)
		left = MAX_WAIT;
	clock_gettime(CLOCK_REALTIME, ts);
	ts_add(ts, left);
}

static _Thread_local uint64_t rng_state;
static _Thread_local int rng_seeded;

/* splitmix64: small, fast, and good enough for jitter. */
static uint64_t rng_next(void)
{
	uint64_t z;

	rng_state += 0x9e3779b97f4a7c15ULL;
	z = rng_state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

double cp_random(void)
{
	if (!rng_seeded) {
		uint64_t seed = 0;

		if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(seed)) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			seed = (uint64_t)ts.tv_nsec ^
			       ((uint64_t)ts.tv_sec << 32) ^
			       (uint64_t)(uintptr_t)&rng_state ^
			       (uint64_t)pthread_self();
		}
		rng_state = seed;
		rng_seeded = 1;
	}
	return (double)(rng_next() >> 11) * 0x1.0p-53;
}

int cp_mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	size_t i;

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

int cp_dir_writable(const char *dir)
{
	char tmp[PATH_MAX];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s/.probe.XXXXXX", dir) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(fd);
	unlink(tmp);
	return 0;
}

void cp_block_termination_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int cp_cache_path(char *out, size_t len, const char *cache_dir,
		  const char *leaf)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;

	if (cache_dir && *cache_dir)
		n = snprintf(out, len, "%s/%s", cache_dir, leaf);
	else if (xdg && xdg[0] == '/') /* relative ones are ignored (XDG) */
		n = snprintf(out, len, "%s/cpfs/%s", xdg, leaf);
	else if (home && home[0] == '/')
		n = snprintf(out, len, "%s/.cache/cpfs/%s", home, leaf);
	else if (geteuid() == 0)
		n = snprintf(out, len, "/var/cache/cpfs/%s", leaf);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

size_t cp_pct_escape(char *out, size_t pos, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c > 0x20 && c < 0x7f && c != '%' && c != '=' && c != ',') {
			if (pos + 1 >= cap)
				return cap;
			out[pos++] = (char)c;
		} else {
			if (pos + 3 >= cap)
				return cap;
			out[pos++] = '%';
			out[pos++] = hex[c >> 4];
			out[pos++] = hex[c & 15];
		}
	}
	if (pos < cap)
		out[pos] = '\0';
	return pos;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cp_pct_unescape(char *out, size_t cap, const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -EINVAL;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = hi << 4 | lo;
			i += 2;
		}
		if (c == 0 || n + 1 >= cap)
			return -EINVAL;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}
