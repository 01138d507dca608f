/*
 * retry.h - the one retry policy, for API calls and data transfers alike.
 *
 * Full-jitter exponential backoff: the n-th wait is uniform in
 * [0, min(cap, base * 2^n)], bounded by a number of attempts and by a
 * total deadline per FUSE request.  A server's Retry-After, when given,
 * replaces the jittered wait (still within the deadline).
 *
 * Thread safety: a struct cp_retry belongs to one request in one thread.
 */
#ifndef CP_RETRY_H
#define CP_RETRY_H

#define CP_RETRY_BASE 0.25 /* seconds */
#define CP_RETRY_CAP 20.0  /* seconds */

struct cp_retry {
	unsigned attempts;     /* made so far */
	unsigned max_attempts; /* >= 1, the first attempt included */
	double base, cap;
	double deadline;       /* cp_now() scale */
};

void cp_retry_init(struct cp_retry *r, unsigned max_attempts,
		   double deadline);

/*
 * Called after a failed attempt.  Returns the seconds to wait before the
 * next one, or -1 when no attempt is left, when the server's Retry-After
 * would pass the deadline, or when less than 0.1 s is left.  A jittered
 * wait that would pass the deadline is cut to half the time left.
 * @retry_after < 0 means the server gave none.
 */
double cp_retry_next(struct cp_retry *r, double retry_after, double now);

/* 1 for HTTP statuses worth another try (408, 429, 500, 502, 503, 504). */
int cp_retry_status_transient(long status);

#endif
