/*
 * loop.c - the FUSE worker loop (see loop.h).
 *
 * Owns: the worker threads and the reader role.  loop->lock guards the
 * worker list and the counts, and is a leaf.  The role itself is passed
 * without a lock (loop->seq, loop->role_free, a semaphore), so
 * cp_loop_blocking() may be called with any other lock held.
 *
 * The role, step by step.  The holder reads a request, makes seq odd,
 * processes the request and makes seq even again with a compare and
 * swap.  Whoever makes an odd seq even decides who holds the role next:
 * the holder at the end of its request keeps it; cp_loop_blocking()
 * sets role_free and wakes the watcher; the watcher, seeing the same odd
 * seq for a whole tick, takes it over.  A holder whose swap fails has
 * lost the role and becomes a spare when its request ends.
 */
#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define IDLE_MAX 8      /* plain spares kept besides the watcher */
#define WAKE_SIGNAL SIGUSR2 /* ends the reader's read(2) at the end */
#define WATCH_TICK 0.05 /* seconds a request may hold the role unasked */

struct loop;

struct worker {
	struct loop *loop;
	pthread_t thread;
	unsigned id;
	atomic_int in_read;   /* in (or about to enter) read(2) on /dev/fuse */
	int holding;          /* this thread only: holds the reader role */
	unsigned long seq;    /* this thread only: seq of its request */
	struct fuse_buf buf;  /* this thread only */
	int exited;           /* protected by loop->lock */
	struct worker *next;  /* protected by loop->lock */
};

struct loop {
	struct fuse_session *se;
	unsigned max_threads;
	sem_t finish;    /* posted by a worker that sees the session end */
	sem_t watch_sem; /* wakes the watcher: role freed, request begun */
	atomic_ulong seq;         /* odd: the holder processes a request */
	atomic_int role_free;     /* released and not taken yet */
	atomic_int watcher_asleep; /* waits for a request, no timeout */
	atomic_ulong handoffs, takeovers;
	pthread_mutex_t lock;
	pthread_cond_t spare_cond; /* plain spares wait here */
	struct worker *workers;    /* protected by lock */
	unsigned nthreads;         /* protected by lock: not exited */
	unsigned nspare;           /* protected by lock: in spare_cond */
	unsigned next_id;          /* protected by lock */
	int watcher;               /* protected by lock: a spare watches */
	int exiting;               /* protected by lock */
	int error;                 /* protected by lock */
};

static _Thread_local struct worker *self;

static void *worker_main(void *arg);

/* Joins and frees the workers that left on their own.  With lock. */
static void reap(struct loop *loop)
{
	struct worker **pw = &loop->workers;

	while (*pw) {
		struct worker *w = *pw;

		if (!w->exited) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		pthread_join(w->thread, NULL); /* it has unlocked already */
		free(w->buf.mem);
		free(w);
	}
}

/* Starts a worker, unless the loop ends or has its maximum.  With lock. */
static void spawn(struct loop *loop)
{
	struct worker *w;

	if (loop->exiting || loop->nthreads >= loop->max_threads)
		return;
	reap(loop);
	w = calloc(1, sizeof(*w));
	if (!w)
		return;
	w->loop = loop;
	w->id = loop->next_id++;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		cp_warn("cannot start a FUSE worker");
		free(w);
		return;
	}
	w->next = loop->workers;
	loop->workers = w;
	loop->nthreads++;
}

/* Someone must watch the holder: a plain spare, else a new worker.
 * With lock. */
static void want_watcher(struct loop *loop)
{
	if (loop->watcher || loop->exiting)
		return;
	if (loop->nspare)
		pthread_cond_signal(&loop->spare_cond);
	else
		spawn(loop);
}

static int grab_free_role(struct loop *loop)
{
	int one = 1;

	return atomic_load(&loop->role_free) &&
	       atomic_compare_exchange_strong(&loop->role_free, &one, 0);
}

static int loop_ends(struct loop *loop)
{
	return loop->exiting || fuse_session_exited(loop->se);
}

/*
 * The watcher: takes the role when it is freed, or from a holder busy
 * on one request for a whole tick.  Sleeps without a timeout once no
 * request has begun for a tick.  1: holds the role; 0: the loop ends.
 * Called and returns with lock.
 */
static int watch(struct loop *loop)
{
	unsigned long last = atomic_load(&loop->seq);
	double since = cp_now();
	int took = 0;

	loop->watcher = 1;
	while (!loop_ends(loop)) {
		unsigned long s = atomic_load(&loop->seq);
		struct timespec ts;
		int asleep = 0;

		if (grab_free_role(loop)) {
			took = 1;
			break;
		}
		if (s != last) {
			last = s;
			since = cp_now();
		} else if (cp_now() - since >= WATCH_TICK) {
			if (s & 1) {
				if (atomic_compare_exchange_strong(&loop->seq,
								   &s, s + 1)) {
					atomic_fetch_add(&loop->takeovers, 1);
					took = 1;
					break;
				}
				continue;
			}
			/* Idle: the next request's start posts watch_sem
			 * (the holder stores seq, then loads the flag). */
			atomic_store(&loop->watcher_asleep, 1);
			asleep = atomic_load(&loop->seq) == s;
			if (!asleep)
				atomic_store(&loop->watcher_asleep, 0);
		}
		pthread_mutex_unlock(&loop->lock);
		if (asleep) {
			while (sem_wait(&loop->watch_sem) < 0 && errno == EINTR)
				;
		} else {
			cp_deadline_timespec(since + WATCH_TICK, &ts);
			sem_timedwait(&loop->watch_sem, &ts);
		}
		pthread_mutex_lock(&loop->lock);
		if (asleep) {
			atomic_store(&loop->watcher_asleep, 0);
			last = atomic_load(&loop->seq);
			since = cp_now();
		}
	}
	loop->watcher = 0;
	return took;
}

/*
 * Waits as a spare until this worker holds the reader role (1), or it
 * is not needed: the loop ends, or enough spares wait already (0).
 * Called and returns with lock.
 */
static int take_role(struct loop *loop)
{
	while (!loop_ends(loop)) {
		if (grab_free_role(loop) || (!loop->watcher && watch(loop))) {
			want_watcher(loop);
			return 1;
		}
		if (loop->watcher && loop->nspare >= IDLE_MAX)
			return 0;
		if (loop->watcher) {
			loop->nspare++;
			pthread_cond_wait(&loop->spare_cond, &loop->lock);
			loop->nspare--;
		}
	}
	sem_post(&loop->finish);
	return 0;
}

/* Starting a request: seq odd, and the sleeping watcher woken. */
static void request_begin(struct loop *loop, struct worker *w)
{
	int one = 1;

	/* Even: only the holder changes it now. */
	w->seq = atomic_load_explicit(&loop->seq, memory_order_relaxed) + 1;
	atomic_store(&loop->seq, w->seq);
	if (atomic_load(&loop->watcher_asleep) &&
	    atomic_compare_exchange_strong(&loop->watcher_asleep, &one, 0))
		sem_post(&loop->watch_sem);
}

/* Ending one: keeps the role unless it was given or taken away. */
static void request_end(struct loop *loop, struct worker *w)
{
	unsigned long s = w->seq;

	if (w->holding &&
	    !atomic_compare_exchange_strong(&loop->seq, &s, s + 1))
		w->holding = 0; /* the watcher took it over */
}

/* The hot loop: read a request, process it, again, while holding. */
static void serve(struct loop *loop, struct worker *w)
{
	w->holding = 1;
	while (w->holding && !fuse_session_exited(loop->se)) {
		int res;

		/* At the end, WAKE_SIGNAL interrupts read(2) here (and only
		 * here): -EINTR, and the loop sees the session exited. */
		atomic_store(&w->in_read, 1);
		if (fuse_session_exited(loop->se)) {
			atomic_store(&w->in_read, 0);
			break;
		}
		res = fuse_session_receive_buf(loop->se, &w->buf);
		atomic_store(&w->in_read, 0);
		if (res == -EINTR)
			continue;
		if (res <= 0) {
			if (res < 0) {
				pthread_mutex_lock(&loop->lock);
				loop->error = res;
				pthread_mutex_unlock(&loop->lock);
				fuse_session_exit(loop->se);
			}
			break;
		}
		request_begin(loop, w);
		fuse_session_process_buf(loop->se, &w->buf);
		request_end(loop, w);
	}
	w->holding = 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct loop *loop = w->loop;
	char name[16];

	self = w;
	cp_block_termination_signals();
	snprintf(name, sizeof(name), "cpfs-fuse-%u", w->id % 100000);
	pthread_setname_np(pthread_self(), name);
	pthread_mutex_lock(&loop->lock);
	while (take_role(loop)) {
		pthread_mutex_unlock(&loop->lock);
		serve(loop, w);
		pthread_mutex_lock(&loop->lock);
	}
	w->exited = 1;
	loop->nthreads--;
	pthread_mutex_unlock(&loop->lock);
	return NULL;
}

static void release(struct worker *w)
{
	struct loop *loop = w->loop;
	unsigned long s = w->seq;

	w->holding = 0;
	if (!atomic_compare_exchange_strong(&loop->seq, &s, s + 1))
		return; /* the watcher took it over already */
	atomic_fetch_add_explicit(&loop->handoffs, 1, memory_order_relaxed);
	atomic_store(&loop->role_free, 1);
	sem_post(&loop->watch_sem);
}

void cp_loop_blocking(void)
{
	struct worker *w = self;

	if (w && w->holding)
		release(w);
}

void cp_loop_blocking_fd(int fd, short events)
{
	struct worker *w = self;
	struct pollfd p = { .fd = fd, .events = events };
	const struct timespec grace = { 0, CP_LOOP_GRACE_US * 1000L };

	if (!w || !w->holding)
		return;
	/* Ready (or failed: the caller's own wait sees it) in time. */
	if (ppoll(&p, 1, &grace, NULL) != 0)
		return;
	release(w);
}

static void on_wake_signal(int sig)
{
	(void)sig; /* only to interrupt read(2) */
}

/*
 * Ends the read(2) of the worker waiting in it (there is at most one):
 * WAKE_SIGNAL, without SA_RESTART, makes it fail with EINTR.  Sent again
 * every few milliseconds until every worker has left, in case it came
 * just before the read began.  Busy workers are not signalled: they
 * finish their request and see the session exited.  (Not
 * pthread_cancel(): a thread unwound by cancellation leaves its
 * frames' stack poisoned under AddressSanitizer.)
 */
static void wake_readers(struct loop *loop)
{
	const struct timespec tick = { 0, 5 * 1000 * 1000 };

	for (;;) {
		struct worker *w;
		int left = 0;

		pthread_mutex_lock(&loop->lock);
		for (w = loop->workers; w; w = w->next) {
			if (w->exited)
				continue;
			left = 1;
			if (atomic_load(&w->in_read))
				pthread_kill(w->thread, WAKE_SIGNAL);
		}
		pthread_mutex_unlock(&loop->lock);
		if (!left)
			return;
		nanosleep(&tick, NULL);
	}
}

int cp_loop_run(struct fuse_session *se, unsigned max_threads)
{
	struct sigaction sa = { .sa_handler = on_wake_signal };
	struct loop *loop = calloc(1, sizeof(*loop));
	struct worker *w;
	int err;

	if (!loop)
		return -ENOMEM;
	loop->se = se;
	loop->max_threads = max_threads < 2 ? 2 : max_threads;
	sem_init(&loop->finish, 0, 0);
	sem_init(&loop->watch_sem, 0, 0);
	atomic_init(&loop->seq, 0);
	atomic_init(&loop->role_free, 1);
	atomic_init(&loop->watcher_asleep, 0);
	atomic_init(&loop->handoffs, 0);
	atomic_init(&loop->takeovers, 0);
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->spare_cond, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(WAKE_SIGNAL, &sa, NULL); /* no SA_RESTART */

	pthread_mutex_lock(&loop->lock);
	spawn(loop);
	err = loop->nthreads ? 0 : -EAGAIN;
	pthread_mutex_unlock(&loop->lock);
	/* A signal interrupts sem_wait() here: the workers block them. */
	while (!err && !fuse_session_exited(se))
		sem_wait(&loop->finish);

	pthread_mutex_lock(&loop->lock);
	loop->exiting = 1;
	pthread_cond_broadcast(&loop->spare_cond);
	sem_post(&loop->watch_sem);
	pthread_mutex_unlock(&loop->lock);
	wake_readers(loop);
	/* exiting: the list no longer changes. */
	while ((w = loop->workers)) {
		loop->workers = w->next;
		pthread_join(w->thread, NULL);
		free(w->buf.mem);
		free(w);
	}
	if (!err)
		err = loop->error;
	cp_dbg("FUSE workers: %u started, %lu hand-offs, %lu taken over",
	       loop->next_id, atomic_load(&loop->handoffs),
	       atomic_load(&loop->takeovers));
	fuse_session_reset(se);
	pthread_cond_destroy(&loop->spare_cond);
	pthread_mutex_destroy(&loop->lock);
	sem_destroy(&loop->watch_sem);
	sem_destroy(&loop->finish);
	free(loop);
	return err;
}
