/*
 * util.h - small helpers every module uses: monotonic time, sleeping,
 * allocation that cannot silently fail.
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

/* Sleeps for @seconds (<= 0 returns at once). */
void cp_sleep(double seconds);

/* Converts a monotonic deadline (cp_now() scale) into an absolute
 * CLOCK_REALTIME timespec for pthread_cond_timedwait(). */
struct timespec;
void cp_deadline_timespec(double deadline, struct timespec *ts);

/* Returns a uniformly distributed double in [0, 1); thread safe. */
double cp_random(void);

#define CP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CP_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
