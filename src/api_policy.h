/*
 * api_policy.h - the decisions of api.c's call loop, as pure functions,
 * here so that tests/unit/test_api.c can drive them without a server.
 * Nothing else should need them.
 *
 * Each answer is classified: done (200), a redirect to check, a
 * transient failure to try again, or a final one.  A redirect is
 * followed only to the API's own scheme, host and port (the key goes
 * with it), at most CP_API_MAX_REDIRECTS times per call.  A 429 is the
 * server pacing us, not a fault: it waits Retry-After (else 1, 2, 4 ...
 * 32 s) and spends time, not attempts; other transient failures back
 * off by the retry policy (retry.h).
 *
 * Thread safety: pure; any thread.
 */
#ifndef CP_API_POLICY_H
#define CP_API_POLICY_H

#include <curl/curl.h>

struct cp_retry;

#define CP_API_MAX_REDIRECTS 3

enum cp_api_verdict {
	CP_API_DONE,     /* 200: the body is the answer */
	CP_API_REDIRECT, /* 301, 302, 303, 307, 308: cp_api_redirect_check */
	CP_API_RETRY,    /* a retryable status or network fault */
	CP_API_FAIL,     /* anything else: final */
};

/* What an exchange that ended with @cc and HTTP @status (0: none) means. */
enum cp_api_verdict cp_api_classify(CURLcode cc, long status);

/*
 * Whether to follow a redirect to @location, the @hops-th of this call
 * (this one counted): 0 to follow; -EINVAL when @location is missing or
 * cp_url_check() refuses it, or when it would be more than
 * CP_API_MAX_REDIRECTS; -EXDEV when its scheme, host or port is not
 * @api_url's.
 */
int cp_api_redirect_check(const char *api_url, const char *location,
			  unsigned hops);

/* The wait a 429 asks for: @retry_after when the server gave one
 * (>= 0), else 2^@n429 seconds (@n429: 429s this call saw before this
 * one), at most 32 and at most CP_RETRY_CAP. */
double cp_api_429_wait(double retry_after, unsigned n429);

/*
 * Seconds to wait before trying again after a transient failure with
 * HTTP @status (0: a network fault), or -1 to give up.  After a 429
 * @retry_after is cp_api_429_wait()'s answer: it is waited unless it
 * reaches @deadline, and no attempt is spent.  Otherwise
 * cp_retry_next(@retry, @retry_after, @now) decides (@retry_after < 0:
 * the server gave none).
 */
double cp_api_next_wait(struct cp_retry *retry, long status,
			double retry_after, double deadline, double now);

#endif
