/*
 * ratelimit.h - the client-side ceiling on API calls.
 *
 * A sliding window: at most @limit calls start within any @window
 * seconds (api_rate per 60 s, plus a small margin for clock skew).  That
 * is the guarantee a server enforcing "N requests per minute" needs; a
 * token bucket refilling at N/60 per second would still let up to 2N
 * through in a minute after an idle one.  A 429 with Retry-After pauses
 * every caller until then.
 *
 * Two lanes share the window.  Opens and lookups reserve a slot and wait
 * for it (cp_ratelimit_reserve); discovery only takes a slot it can use
 * at once, when no reserved caller is still waiting and a few slots stay
 * free for them (cp_ratelimit_try_low), so an open never waits behind
 * more than the one discovery call already on the wire.
 *
 * Thread safety: thread safe (internal mutex).
 */
#ifndef CP_RATELIMIT_H
#define CP_RATELIMIT_H

#include <pthread.h>

struct cp_ratelimit {
	pthread_mutex_t lock;
	double *starts;      /* ring of the last @limit start times; owned */
	unsigned limit;
	unsigned next;       /* index of the oldest start; protected by lock */
	double window;       /* seconds */
	double paused_until; /* protected by lock */
};

/* 0 or -ENOMEM. */
int cp_ratelimit_init(struct cp_ratelimit *rl, unsigned limit, double window);
void cp_ratelimit_destroy(struct cp_ratelimit *rl);

/*
 * Claims the next start slot at or after @now and returns the seconds the
 * caller must wait before sending (0 = send now).  Every call claims a
 * slot, so callers queue fairly in call order.
 */
double cp_ratelimit_reserve(struct cp_ratelimit *rl, double now);

/*
 * The low lane: claims a slot to start at @now only if no reserved
 * caller waits for a later start, the window keeps @keep_free slots
 * free after this one, and no pause is on.  Returns 0 when claimed (send
 * now), else the seconds after which asking again may succeed.
 */
double cp_ratelimit_try_low(struct cp_ratelimit *rl, double now,
			    unsigned keep_free);

/* No call starts before @until (cp_now() scale). */
void cp_ratelimit_pause(struct cp_ratelimit *rl, double until);

#endif
