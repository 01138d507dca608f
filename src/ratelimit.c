/*
 * ratelimit.c - sliding-window ceiling on API calls.
 *
 * Owns a ring of the last @limit reserved start times, protected by
 * rl->lock.  Any thread that is about to call the API reserves a slot;
 * reservations are handed out in call order and never go back in time,
 * so the ring is sorted and its oldest entry bounds the next start.
 */
#include "ratelimit.h"

#include <errno.h>
#include <stdlib.h>

/* A start time so far in the past that it never delays anyone. */
#define LONG_AGO (-1e12)

int cp_ratelimit_init(struct cp_ratelimit *rl, unsigned limit, double window)
{
	unsigned i;

	if (limit == 0)
		limit = 1;
	rl->starts = calloc(limit, sizeof(*rl->starts));
	if (!rl->starts)
		return -ENOMEM;
	for (i = 0; i < limit; i++)
		rl->starts[i] = LONG_AGO;
	if (pthread_mutex_init(&rl->lock, NULL) != 0) {
		free(rl->starts);
		rl->starts = NULL;
		return -ENOMEM;
	}
	rl->limit = limit;
	rl->next = 0;
	rl->window = window > 0 ? window : 0;
	rl->paused_until = LONG_AGO;
	return 0;
}

void cp_ratelimit_destroy(struct cp_ratelimit *rl)
{
	if (!rl->starts)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->starts);
	rl->starts = NULL;
}

double cp_ratelimit_reserve(struct cp_ratelimit *rl, double now)
{
	double t, newest;

	pthread_mutex_lock(&rl->lock);
	newest = rl->starts[(rl->next + rl->limit - 1) % rl->limit];
	t = now;
	if (t < rl->paused_until)
		t = rl->paused_until;
	if (t < rl->starts[rl->next] + rl->window)
		t = rl->starts[rl->next] + rl->window;
	if (t < newest)
		t = newest; /* keep call order: never start before the last */
	rl->starts[rl->next] = t;
	rl->next = (rl->next + 1) % rl->limit;
	pthread_mutex_unlock(&rl->lock);
	return t - now;
}

double cp_ratelimit_try_low(struct cp_ratelimit *rl, double now,
			    unsigned keep_free)
{
	double newest, bound, wait = 0;

	if (keep_free >= rl->limit)
		keep_free = rl->limit - 1;
	pthread_mutex_lock(&rl->lock);
	newest = rl->starts[(rl->next + rl->limit - 1) % rl->limit];
	/* The (keep_free+1)-th oldest start must have left the window. */
	bound = rl->starts[(rl->next + keep_free) % rl->limit] + rl->window;
	if (now < rl->paused_until)
		wait = rl->paused_until - now;
	else if (newest > now)
		wait = newest - now; /* a reserved caller goes first */
	else if (now < bound)
		wait = bound - now;
	if (wait <= 0) {
		rl->starts[rl->next] = now;
		rl->next = (rl->next + 1) % rl->limit;
	}
	pthread_mutex_unlock(&rl->lock);
	return wait > 0 ? wait : 0;
}

void cp_ratelimit_pause(struct cp_ratelimit *rl, double until)
{
	pthread_mutex_lock(&rl->lock);
	if (until > rl->paused_until)
		rl->paused_until = until;
	pthread_mutex_unlock(&rl->lock);
}
