/*
 * retry.c - the retry policy: full-jitter exponential backoff bounded by
 * attempts and by a deadline; a server's Retry-After replaces the jitter.
 *
 * Owns nothing shared; a struct cp_retry lives on the stack of the one
 * thread running a request.
 */
#include "retry.h"

#include "util.h"

void cp_retry_init(struct cp_retry *r, unsigned max_attempts, double deadline)
{
	r->attempts = 0;
	r->max_attempts = max_attempts ? max_attempts : 1;
	r->base = CP_RETRY_BASE;
	r->cap = CP_RETRY_CAP;
	r->deadline = deadline;
}

double cp_retry_next(struct cp_retry *r, double retry_after, double now)
{
	double ceiling, wait;
	unsigned n;

	r->attempts++;
	if (r->attempts >= r->max_attempts)
		return -1;
	if (retry_after >= 0) {
		wait = retry_after;
	} else {
		ceiling = r->base;
		for (n = 1; n < r->attempts && ceiling < r->cap; n++)
			ceiling *= 2;
		if (ceiling > r->cap)
			ceiling = r->cap;
		wait = cp_random() * ceiling;
	}
	if (now + wait < r->deadline)
		return wait;
	/* A server's Retry-After past the deadline: give up now.  A
	 * jittered wait that would overshoot: try once more halfway to the
	 * deadline rather than give up early. */
	if (retry_after >= 0 || r->deadline - now < 0.1)
		return -1;
	return (r->deadline - now) / 2;
}

int cp_retry_status_transient(long status)
{
	switch (status) {
	case 408:
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return 1;
	default:
		return 0;
	}
}
