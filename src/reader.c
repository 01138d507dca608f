/*
 * reader.c - probes, reads with retries, prefetch (see reader.h).
 *
 * Owns: struct cp_handle (one per open file, freed at release) and the
 * prefetch state in it (handle->lock).  Runs in FUSE worker threads only;
 * talks to the I/O threads through the cache (block states) and
 * cp_fetch_submit().
 */
#include "reader.h"

#include <inttypes.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cfg.h"
#include "diskcache.h"
#include "fetch.h"
#include "files.h"
#include "log.h"
#include "loop.h"
#include "reader_prefetch.h"
#include "retry.h"
#include "stats.h"
#include "util.h"

/* A read this close to where the last one ended, or to the end of the
 * prefetch window, is still sequential: the kernel sends readahead
 * requests concurrently and out of order, and far ahead. */
#define SEQ_SLACK ((int64_t)8 << 20)
/* A first read smaller than this is no sign of a sequential reader (the
 * kernel's first readahead for one is larger): a file(1) probe, a header,
 * a 4 KiB O_DIRECT or random reader.  It opens no window; the next read
 * in order does. */
#define SMALL_FIRST_READ ((int64_t)64 << 10)
/* Bytes read in order after which a handle leaves random mode. */
#define SEQ_RUN ((int64_t)4 << 20)
#define RANDOM_AFTER_SEEKS 2
/* The window stops growing after FLAT_ROUNDS rounds in a row whose rate
 * did not reach RATE_RISE x the best; it probes again after
 * PROBE_AFTER_ROUNDS more (reader_prefetch.h). */
#define RATE_RISE 1.25
#define FLAT_ROUNDS 2
#define PROBE_AFTER_ROUNDS 4
_Static_assert(CP_PART_BLOCKS <= CP_PART_MAX_BLOCKS,
	       "a transfer of CP_PART_BLOCKS must fit in struct cp_part");

/* What a probe of an object of unknown size asks for: enough for its
 * Content-Range (size) and ETag, and the whole of a tiny object. */
#define PROBE_BYTES 4096

/* Shorter 206 answers one request follows up at once, for free. */
#define PARTIAL_FREE 64

struct cp_reader {
	const struct cp_config *cfg;
	struct cp_files *files;
	struct cp_cache *cache;
	struct cp_fetch *fetch;
	struct cp_diskcache *dc;
	struct cp_stats *stats;
	unsigned window_max;   /* per handle, blocks */
	size_t fetching_max;   /* all handles, blocks */
	atomic_uint streams;   /* handles with a window open, which share
				* fetching_max (see share()) */
	pthread_mutex_t lock;
	struct cp_handle *handles; /* open handles; protected by lock */
	struct served *served;     /* hash set, see served_add(); lock */
	size_t served_cap, served_n;
	int served_lost;           /* out of memory: assume all served */
};

/* Bytes of generation @gen of file @key reached the kernel, whose page
 * cache may keep them: that file may not switch objects under a handle
 * (never a mix of two objects).  key 0 = empty slot. */
struct served {
	uint64_t key, gen;
};

struct cp_handle {
	struct cp_reader *reader;
	struct cp_file *file;
	pthread_mutex_t lock;
	/* protected by lock: */
	struct cp_file_view view; /* the object served: size, ETag, gen */
	struct cp_prefetch pf;
	int served;               /* bytes went to the kernel */
	int probed;               /* the data host was asked about the
				   * object of view (its ETag is in view,
				   * or it has none) */
	int streaming;            /* counted in reader->streams */
	/* Not under lock: every read looks at it (cp_reader_grown()). */
	atomic_int grown;         /* switched to a larger object the kernel
				   * has not been told of */
	struct cp_handle *prev, *next; /* reader->handles; reader->lock */
};

/* One FUSE request's view of the network: its URL lease and retries. */
struct attempt {
	struct cp_reader *reader;
	struct cp_file *file;
	const struct cp_file_view *view;
	char *url;            /* NULL until a transfer needs one */
	int part_blocks;      /* blocks per transfer: 1, 2, 4 or 8 */
	uint64_t url_gen;
	int renewed;          /* the one free 403 renewal is spent */
	int gone_asked;       /* a 404 from the data host made us ask the
			       * API for a fresh URL once */
	int partials;         /* shorter 206s followed up free of charge */
	struct cp_retry retry;
	double deadline;
};

struct cp_reader *cp_reader_new(const struct cp_config *cfg,
				struct cp_files *files,
				struct cp_cache *cache,
				struct cp_fetch *fetch,
				struct cp_diskcache *dc,
				struct cp_stats *stats)
{
	struct cp_reader *r = calloc(1, sizeof(*r));
	size_t cap = cp_cache_capacity(cache);

	if (!r)
		return NULL;
	r->cfg = cfg;
	r->files = files;
	r->cache = cache;
	r->fetch = fetch;
	r->dc = dc;
	r->stats = stats;
	/* Blocks asked for ahead of the readers: all of the cache but 12
	 * blocks for the reads themselves (pinned while their replies go
	 * out) and what was read last; half of a small cache.  A window
	 * is as much a bandwidth-delay product as the memory allows: at
	 * +20 ms each way 64 MiB carries about 300 MiB/s.  Readers share
	 * it (share()), and CP_GET_PREFETCH keeps them from evicting each
	 * other's window. */
	r->fetching_max = CP_MAX(cap / 2, cap > 12 ? cap - 12 : 0);
	if (!r->fetching_max)
		r->fetching_max = 1;
	r->window_max = CP_WINDOW_MAX;
	if (r->window_max > r->fetching_max)
		r->window_max = r->fetching_max;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

/* A handle's share of the in-flight budget, in blocks: each reader with a
 * window open gets as much (the connections are shared alike: a window
 * is sent as transfers of the same size for every reader). */
static unsigned share(struct cp_reader *r)
{
	unsigned n = atomic_load(&r->streams);
	size_t each = r->fetching_max / (n ? n : 1);

	return each < r->window_max ? (unsigned)each : r->window_max;
}

/* Counts @h in the readers that share the budget, or not.  Called
 * without h->lock (the count is atomic); @delta from note_stream(). */
static void count_stream(struct cp_reader *r, int delta)
{
	if (delta)
		atomic_fetch_add(&r->streams, (unsigned)delta);
}

/* Whether @h has a window open now; returns the change to the count.
 * Called with h->lock held. */
static int note_stream(struct cp_handle *h)
{
	int streaming = !h->pf.random && h->pf.ahead > 0;

	if (streaming == h->streaming)
		return 0;
	h->streaming = streaming;
	return streaming ? 1 : -1;
}

void cp_reader_free(struct cp_reader *reader)
{
	if (!reader)
		return;
	/* At unmount the kernel does not release what is still open. */
	while (reader->handles)
		cp_handle_free(reader->handles);
	free(reader->served);
	pthread_mutex_destroy(&reader->lock);
	free(reader);
}

static void attempt_init(struct attempt *a, struct cp_reader *r,
			 struct cp_file *file,
			 const struct cp_file_view *view)
{
	memset(a, 0, sizeof(*a));
	a->part_blocks = CP_PART_BLOCKS;
	a->reader = r;
	a->file = file;
	a->view = view;
	a->deadline = cp_now() + r->cfg->deadline;
	cp_retry_init(&a->retry, r->cfg->retries, a->deadline);
}

static void attempt_done(struct attempt *a)
{
	free(a->url);
}

/* Makes sure a->url is a lease, renewing it when @stale_gen is it. */
static int attempt_lease(struct attempt *a, uint64_t stale_gen)
{
	if (a->url && (stale_gen == 0 || stale_gen != a->url_gen))
		return 0;
	free(a->url);
	a->url = NULL;
	return cp_files_lease(a->reader->files, a->file, stale_gen, &a->url,
			      &a->url_gen, a->deadline);
}

static size_t block_want(int64_t size, uint64_t index)
{
	int64_t left = size - (int64_t)(index * CP_BLOCK_SIZE);

	return left < (int64_t)CP_BLOCK_SIZE ? (size_t)left : CP_BLOCK_SIZE;
}

/* Offers a block fetched from the network to the disk cache; or fills
 * an empty one from it.  Both run with the block pinned. */
static void save_block(struct cp_reader *r, const struct cp_file_view *v,
		       struct cp_file *file, struct cp_block *b)
{
	if (r->dc && v->etag[0] && cp_cache_take_unsaved(r->cache, b))
		cp_diskcache_put(r->dc, file->id, v->etag, b->index, b->data,
				 b->want);
}

static int load_block(struct cp_reader *r, const struct cp_file_view *v,
		      struct cp_file *file, struct cp_block *b)
{
	if (!r->dc || !v->etag[0] || b->filled)
		return 0;
	if (cp_diskcache_get(r->dc, file->id, v->etag, b->index, b->data,
			     b->want) < 0)
		return 0;
	b->filled = b->want;
	cp_cache_complete(r->cache, b);
	cp_cache_take_unsaved(r->cache, b); /* it came from the disk */
	return 1;
}

/*
 * Sends the blocks in @run (consecutive, each with a FETCHING pin) as one
 * transfer.  On failure to get a URL the blocks fail with that error.
 */
static void send_run(struct attempt *a, struct cp_block **run, int *n)
{
	struct cp_reader *r = a->reader;
	struct cp_part *part;
	int err, i;

	if (*n == 0)
		return;
	err = attempt_lease(a, 0);
	if (err < 0) {
		for (i = 0; i < *n; i++)
			cp_cache_fail(r->cache, run[i], -err, 1, 0);
		*n = 0;
		return;
	}
	part = cp_part_new(r->fetch, a->file->ino, a->url, a->view->etag,
			   a->view->size, run, *n);
	if (part) {
		part->lease_gen = a->url_gen;
		cp_fetch_submit(r->fetch, part);
	}
	*n = 0;
}

/* Adds block @b (marked FETCHING) to the run being built, sending the
 * run first when @b cannot extend it. */
static void add_to_run(struct attempt *a, struct cp_block **run, int *n,
		       struct cp_block *b)
{
	/* A transfer resumes only its first block: a block holding bytes
	 * from an earlier attempt starts a transfer of its own. */
	if (*n && (run[*n - 1]->index + 1 != b->index || b->filled ||
		   *n == a->part_blocks || b->index % a->part_blocks == 0))
		send_run(a, run, n);
	run[(*n)++] = b;
}

/* Starts a transfer for @b unless it is there or on its way. */
static void want_block(struct attempt *a, struct cp_block **run, int *n,
		       struct cp_block *b)
{
	struct cp_reader *r = a->reader;
	int started = cp_cache_begin_fetch(r->cache, b);

	if (!started) {
		send_run(a, run, n);
		return;
	}
	/* An earlier transfer failed; a URL renewal, or the rest of a
	 * shorter answer, is no retry. */
	if (started < 0 && started != -CP_FETCH_EEXPIRED &&
	    started != -CP_FETCH_EPARTIAL)
		cp_stats_inc(r->stats, retries);
	if (load_block(r, a->view, a->file, b)) {
		send_run(a, run, n);
		return;
	}
	add_to_run(a, run, n, b);
}

/*
 * What may be tried again without spending the retry budget or waiting:
 * renewing a URL the data host called expired (once), and asking for
 * the rest of a shorter 206 (a server that keeps answering short pays
 * with retries after PARTIAL_FREE times).  Marks the allowance used.
 */
static int free_of_charge(struct attempt *a, int err)
{
	if (err == CP_FETCH_EEXPIRED && !a->renewed) {
		a->renewed = 1;
		return 1;
	}
	if (err == CP_FETCH_EPARTIAL && a->partials < PARTIAL_FREE) {
		a->partials++;
		return 1;
	}
	return 0;
}

/*
 * Decides what to do after a transfer failed with @err (positive): 0 to
 * try again (after waiting, or renewing the URL), or -errno to give up.
 * @tag is the lease generation of the URL that failed.
 */
static int after_failure(struct attempt *a, int err, uint64_t tag)
{
	struct cp_reader *r = a->reader;
	double delay = 0;

	if (cp_shutting_down())
		return -EIO;
	switch (err) {
	case CP_FETCH_ECHANGED:
		if (cp_files_changed(r->files, a->file, a->view->gen))
			cp_cache_drop_key(r->cache, a->file->ino);
		return -ESTALE;
	case CP_FETCH_EEXPIRED:
	case CP_FETCH_EPARTIAL:
	case CP_FETCH_ERETRY:
	case ECANCELED:
	case ENOMEM:
		if (free_of_charge(a, err))
			break;
		delay = cp_retry_next(&a->retry, -1, cp_now());
		if (delay < 0) {
			cp_warn("%s: giving up after %u attempts",
				a->file->id, a->retry.attempts);
			return -EIO;
		}
		cp_stats_inc(r->stats, retries);
		break;
	case CP_FETCH_EGONE:
		if (a->gone_asked) {
			cp_warn("%s: the data host has no object at its URL",
				a->file->id);
			return -EIO;
		}
		/* Is the file gone?  The API knows; a fresh URL, once. */
		a->gone_asked = 1;
		break;
	case ENOENT:
	case EACCES:
		/* The API refused a URL (no transfer was made). */
		return -err;
	default:
		return -EIO;
	}
	cp_sleep(delay);
	if (cp_shutting_down())
		return -EIO;
	if (err == CP_FETCH_EEXPIRED || err == CP_FETCH_EGONE) {
		int e = attempt_lease(a, tag ? tag : a->url_gen);

		if (e < 0)
			return e;
	}
	return 0;
}

/*
 * Waits for @b, resuming its transfer after failures as the retry policy
 * allows.  0, or -errno when the read must fail.
 */
static int wait_block(struct attempt *a, struct cp_block *b, int *waited)
{
	struct cp_reader *r = a->reader;

	for (;;) {
		struct cp_block *run[1];
		int n = 0, w = 0, err;

		err = cp_cache_wait(r->cache, b, a->deadline, &w);
		*waited |= w;
		if (err == 0)
			return 0;
		if (err == -ETIMEDOUT) {
			cp_warn("%s: no data within %u s; giving up",
				a->file->id, r->cfg->deadline);
			return -EIO;
		}
		err = after_failure(a, -err, cp_cache_fail_tag(r->cache, b));
		if (err < 0)
			return err == -ENOENT ? -EIO : err;
		want_block(a, run, &n, b);
		send_run(a, run, &n);
	}
}

/*
 * The outcome of one part that a FUSE worker waits for as a whole (a
 * probe, a direct read), handed over by an I/O thread.  Shared by the
 * waiter and the engine, each holding a reference while it may touch it
 * (sshfs's struct read_chunk and chunk_put()): a waiter that gives up at
 * its deadline drops its reference and the engine frees the struct, and
 * the buffer a direct part writes into, when the part ends.
 */
struct part_wait {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	unsigned refs;        /* protected by lock */
	int done;             /* protected by lock */
	int headers;          /* the answer's headers passed; lock */
	int err;              /* protected by lock */
	/* Written by the engine before it sets done; read by the waiter
	 * only after it saw done under the lock: */
	int64_t pos;          /* where the part stopped */
	struct cp_object_info info;
	char *buf;            /* direct parts write here; freed with the
			       * last reference unless taken */
};

/* A wait with one reference (the caller's) and a buffer of @buflen
 * bytes (none when 0).  NULL on ENOMEM. */
static struct part_wait *part_wait_new(size_t buflen)
{
	struct part_wait *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (buflen && !(p->buf = malloc(buflen))) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->done_cond, NULL);
	p->refs = 1;
	p->done = 1; /* no part outstanding */
	return p;
}

/* Drops a reference; the last one frees.  Called with p->lock held;
 * returns with it released (and @p maybe gone). */
static void part_wait_put_locked(struct part_wait *p)
{
	int last = --p->refs == 0;

	pthread_mutex_unlock(&p->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->done_cond);
	free(p->buf);
	free(p);
}

static void part_wait_put(struct part_wait *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	part_wait_put_locked(p);
}

/* The engine's end of a part (an I/O thread): results, wake-up, its
 * reference dropped. */
static void part_wait_done(struct cp_part *part, int err, void *arg)
{
	struct part_wait *p = arg;

	pthread_mutex_lock(&p->lock);
	p->info = part->info;
	p->err = err;
	p->pos = part->pos;
	p->done = 1;
	pthread_cond_signal(&p->done_cond);
	part_wait_put_locked(p);
}

/* The engine found the answer's headers good (an I/O thread): what they
 * say, before the body.  The engine keeps its reference until done. */
static void part_wait_headers(struct cp_part *part, int err, void *arg)
{
	struct part_wait *p = arg;

	pthread_mutex_lock(&p->lock);
	p->info = part->info;
	p->headers = 1;
	pthread_cond_signal(&p->done_cond);
	pthread_mutex_unlock(&p->lock);
	(void)err;
}

/* Submits @part, whose end (and with @headers, whose checked headers)
 * @p is told of. */
static void submit_part(struct attempt *a, struct cp_part *part,
			struct part_wait *p, int headers)
{
	part->lease_gen = a->url_gen;
	part->done = part_wait_done;
	part->on_headers = headers ? part_wait_headers : NULL;
	part->done_arg = p;
	pthread_mutex_lock(&p->lock);
	p->done = 0;
	p->headers = 0;
	p->refs++; /* the engine's, dropped in part_wait_done() */
	pthread_mutex_unlock(&p->lock);
	cp_fetch_submit(a->reader->fetch, part);
}

/*
 * Waits for the part submitted on @p to end (or, with @headers, for its
 * headers to pass, whichever comes first).  Returns 0 or the part's
 * positive errno, and then p->info is the answer's (p->pos too when it
 * ended); or ETIMEDOUT when the engine did not get there in time: the
 * part still holds its reference to @p then (and so to p->buf), and the
 * caller may only drop its own.
 */
static int wait_part(struct attempt *a, struct part_wait *p, int headers)
{
	struct timespec ts;
	int err;

	cp_deadline_timespec(a->deadline + 1, &ts);
	cp_loop_blocking();
	pthread_mutex_lock(&p->lock);
	while (!p->done && !(headers && p->headers))
		if (pthread_cond_timedwait(&p->done_cond, &p->lock, &ts) ==
		    ETIMEDOUT)
			break;
	if (headers && p->headers)
		err = 0;
	else
		err = p->done ? p->err : ETIMEDOUT;
	pthread_mutex_unlock(&p->lock);
	return err;
}

/* Submits @part (which writes where @p says) and waits for it to end
 * (see wait_part()). */
static int run_part(struct attempt *a, struct cp_part *part,
		    struct part_wait *p)
{
	submit_part(a, part, p, 0);
	return wait_part(a, p, 0);
}

/*
 * Asks for the first PROBE_BYTES of the object once, into @p's buffer:
 * a small range whose Content-Range tells the size and whose headers the
 * ETag.  0 or the positive errno of the part (ETIMEDOUT when the engine
 * did not end it in time).
 */
static int probe_once(struct attempt *a, struct part_wait *p)
{
	struct cp_reader *r = a->reader;
	struct cp_part *part;

	part = cp_part_new_direct(r->fetch, a->file->ino, a->url, NULL, -1, 0,
				  p->buf, PROBE_BYTES);
	return part ? run_part(a, part, p) : ENOMEM;
}

/* An object no larger than the probe came whole with it: its one block
 * goes to the cache, and reading it costs no request. */
static void keep_probe(struct cp_reader *r, struct cp_file *file,
		       const struct part_wait *p)
{
	int64_t total = p->info.total;
	struct cp_block *b;

	if (total <= 0 || total > PROBE_BYTES || p->pos != total)
		return;
	b = cp_cache_get(r->cache, file->ino, 0, (size_t)total,
			 CP_GET_CREATE);
	if (!b)
		return;
	if (cp_cache_begin_fetch(r->cache, b)) {
		cp_cache_set_want(r->cache, b, (size_t)total);
		memcpy(b->data, p->buf, (size_t)total);
		b->filled = (size_t)total;
		cp_cache_complete(r->cache, b);
	}
	cp_cache_unpin(r->cache, b);
}

/*
 * Resolve when the size is known and only the ETag is not (a file listed
 * with its size): no probe, since the first read's own transfer carries it
 * (first_transfer()).  Only the URL is asked for, so that an id the API
 * refuses fails the open as it did when a probe ran here.  Called as the
 * file's resolver; ends the resolve.
 */
static int resolve_lease(struct cp_reader *r, struct cp_file *file,
			 const struct cp_file_view *view)
{
	struct attempt a;
	int ret;

	attempt_init(&a, r, file, view);
	ret = attempt_lease(&a, 0);
	attempt_done(&a);
	cp_files_end_resolve(r->files, file, NULL, ret);
	return ret;
}

/* cp_reader_resolve(); with @force, a file whose size is known but which
 * was not probed is probed too. */
static int resolve(struct cp_reader *r, struct cp_file *file, int need_probe,
		   int force)
{
	struct cp_file_view view = { .size = -1 };
	struct part_wait *p;
	struct attempt a;
	int ret;

	ret = cp_files_begin_resolve(r->files, file, need_probe,
				     cp_now() + r->cfg->deadline);
	if (ret <= 0)
		return ret;
	cp_files_view(r->files, file, &view);
	if (view.size >= 0 && !force)
		return resolve_lease(r, file, &view);
	attempt_init(&a, r, file, &view);
	p = part_wait_new(PROBE_BYTES);
	if (!p) {
		ret = -ENOMEM;
		goto out;
	}
	/* Blocks cached under an older view of the object are stale. */
	cp_cache_drop_key(r->cache, file->ino);
	while (ret == 1) {
		int err;

		ret = attempt_lease(&a, 0);
		if (ret < 0)
			break;
		err = probe_once(&a, p);
		/* A shorter answer told the size and the ETag all the same. */
		if (err == CP_FETCH_EPARTIAL)
			err = 0;
		if (err == 0 || err == ETIMEDOUT) {
			ret = err ? -EIO : 0;
			break;
		}
		if (err == CP_FETCH_ECHANGED)
			err = CP_FETCH_ERETRY; /* nothing known to change */
		ret = after_failure(&a, err, a.url_gen);
		if (ret == 0)
			ret = 1; /* try again */
	}
	if (ret == -ESTALE)
		ret = -EIO;
	if (ret == 0)
		keep_probe(r, file, p);
out:
	cp_files_end_resolve(r->files, file, ret == 0 ? &p->info : NULL,
			     ret);
	part_wait_put(p);
	attempt_done(&a);
	return ret;
}

int cp_reader_resolve(struct cp_reader *r, struct cp_file *file,
		      int need_probe)
{
	return resolve(r, file, need_probe, 0);
}

struct cp_handle *cp_handle_new(struct cp_reader *r, struct cp_file *file)
{
	struct cp_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->reader = r;
	h->file = file;
	cp_files_view(r->files, file, &h->view);
	h->probed = h->view.etag[0] != '\0';
	pthread_mutex_init(&h->lock, NULL);
	atomic_init(&h->grown, 0);
	cp_prefetch_init(&h->pf);
	pthread_mutex_lock(&r->lock);
	h->next = r->handles;
	if (r->handles)
		r->handles->prev = h;
	r->handles = h;
	pthread_mutex_unlock(&r->lock);
	return h;
}

void cp_handle_free(struct cp_handle *h)
{
	struct cp_reader *r;

	if (!h)
		return;
	r = h->reader;
	if (h->streaming)
		count_stream(r, -1);
	pthread_mutex_lock(&r->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		r->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&r->lock);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* ---- the prefetch planner (reader_prefetch.h) ---- */

void cp_prefetch_init(struct cp_prefetch *pf)
{
	memset(pf, 0, sizeof(*pf));
	pf->window = CP_WINDOW_START;
}

/* A quarter of the window, so that a young window is already spread over
 * several connections (which hides latency) and a grown one costs few
 * requests. */
int cp_prefetch_part_blocks(unsigned window)
{
	int part = CP_PART_BLOCKS;

	while (part > 1 && (unsigned)part * 4 > window)
		part /= 2;
	return part;
}

/* Is a read at [@off, ...) sequential: near where the last one ended,
 * or inside (or just past) what was asked for ahead?  The kernel sends
 * readahead concurrently, out of order, and far ahead. */
static int sequential(const struct cp_prefetch *pf, int64_t off)
{
	int64_t reach = CP_MAX(pf->next_off,
			       (int64_t)(pf->ahead << CP_BLOCK_SHIFT));

	return off <= reach + SEQ_SLACK && off + SEQ_SLACK >= pf->next_off;
}

void cp_prefetch_plan(struct cp_prefetch *pf, int64_t size, int64_t off,
		      int64_t end, unsigned max, uint64_t *from, uint64_t *to)
{
	uint64_t last = (uint64_t)(end - 1) >> CP_BLOCK_SHIFT;
	uint64_t nblocks = ((uint64_t)size + CP_BLOCK_SIZE - 1) >>
			   CP_BLOCK_SHIFT;
	int small_first = pf->next_off == 0 && pf->run == 0 &&
			  pf->seeks == 0 && end - off < SMALL_FIRST_READ;

	if (pf->window > CP_MAX(max, CP_WINDOW_MIN))
		pf->window = CP_MAX(max, CP_WINDOW_MIN);
	pf->seek = !sequential(pf, off);
	if (!pf->seek) {
		pf->run += end - off;
		if (pf->run >= SEQ_RUN) {
			pf->random = 0;
			pf->seeks = 0;
		}
		if (end > pf->next_off)
			pf->next_off = end;
	} else {
		if (pf->run < SEQ_RUN && ++pf->seeks >= RANDOM_AFTER_SEEKS)
			pf->random = 1;
		pf->run = end - off;
		pf->next_off = end;
		pf->window = CP_WINDOW_MIN;
		pf->ahead = 0;
		/* Rates measured elsewhere in the object say little. */
		pf->round_t = 0;
		pf->best_rate = 0;
		pf->flat = 0;
		pf->full = 0;
	}
	pf->small_first = small_first;
	*from = *to = last + 1;
	if (pf->random || pf->seek || small_first)
		return;
	if (pf->ahead > *from)
		*from = pf->ahead;
	*to = last + 1 + pf->window;
	if (*to > nblocks)
		*to = nblocks;
	/* Top the window up a whole part at a time (not a block per read),
	 * so transfers stay large. */
	if (*to < nblocks &&
	    *to < *from + (uint64_t)cp_prefetch_part_blocks(pf->window)) {
		*to = *from;
		return;
	}
	if (*to > pf->ahead)
		pf->ahead = *to;
}

void cp_prefetch_cut(struct cp_prefetch *pf, uint64_t index,
		     int memory_short)
{
	if (memory_short)
		pf->window = CP_MAX(pf->window / 2, CP_WINDOW_MIN);
	if (pf->ahead > index)
		pf->ahead = index;
}

/* A round ended at @now: did the throughput still rise? */
static void round_end(struct cp_prefetch *pf, double now)
{
	double rate = (double)(pf->next_off - pf->round_off) /
		      (now - pf->round_t);

	if (rate >= pf->best_rate * RATE_RISE) {
		pf->best_rate = rate;
		pf->flat = 0;
		pf->full = 0;
	} else if (!pf->full && ++pf->flat >= FLAT_ROUNDS) {
		pf->full = 1;
		pf->flat = 0;
	} else if (pf->full && ++pf->flat >= PROBE_AFTER_ROUNDS) {
		/* Probe: grow again, measured from today's rate. */
		pf->full = 0;
		pf->flat = 0;
		pf->best_rate = rate;
	}
	pf->round_t = now;
	pf->round_off = pf->next_off;
}

void cp_prefetch_served(struct cp_prefetch *pf, double now, int waited,
			unsigned max)
{
	if (pf->random || pf->seek)
		return;
	if (pf->round_t == 0) {
		pf->round_t = now;
		pf->round_off = pf->next_off;
	} else if (now > pf->round_t &&
		   pf->next_off - pf->round_off >=
			   ((int64_t)pf->window << CP_BLOCK_SHIFT)) {
		round_end(pf, now);
	}
	if (waited && !pf->full && pf->window < max)
		pf->window = CP_MIN(pf->window * 2, max);
}

/* ---- reads ---- */

/* Starts transfers for the missing blocks of the read and the prefetch
 * window, within the memory and in-flight budgets. */
static void issue(struct attempt *a, struct cp_handle *h,
		  struct cp_block **need, int n, uint64_t from, uint64_t to)
{
	struct cp_reader *r = a->reader;
	struct cp_block *run[CP_PART_BLOCKS];
	int nrun = 0, i;
	uint64_t idx;

	for (i = 0; i < n; i++)
		want_block(a, run, &nrun, need[i]);
	for (idx = from; idx < to; idx++) {
		struct cp_block *b;

		/* Prefetch whole parts: a sliver of budget left by other
		 * readers would cost a request for a block or two. */
		if (idx % a->part_blocks == 0 &&
		    cp_cache_fetching(r->cache) + nrun + a->part_blocks >
			    r->fetching_max) {
			/* Out of budget: the rest is for a later read. */
			pthread_mutex_lock(&h->lock);
			cp_prefetch_cut(&h->pf, idx, 0);
			pthread_mutex_unlock(&h->lock);
			break;
		}
		b = cp_cache_get(r->cache, h->file->ino, idx,
				 block_want(a->view->size, idx),
				 CP_GET_PREFETCH);
		if (!b) {
			/* Memory is short: prefetch less from now on. */
			pthread_mutex_lock(&h->lock);
			cp_prefetch_cut(&h->pf, idx, 1);
			pthread_mutex_unlock(&h->lock);
			break;
		}
		want_block(a, run, &nrun, b);
		cp_cache_unpin(r->cache, b);
	}
	send_run(a, run, &nrun);
}

/* Pins the blocks [first, first + n) if every one is READY (a random
 * reader may still find what others fetched).  1 if so, else 0. */
static int pin_if_cached(struct cp_handle *h, uint64_t first, int n,
			 struct cp_block **blocks)
{
	struct cp_cache *cache = h->reader->cache;
	int i;

	for (i = 0; i < n; i++) {
		blocks[i] = cp_cache_get(cache, h->file->ino, first + i, 0,
					 CP_GET_FIND);
		if (!blocks[i] ||
		    cp_cache_state(cache, blocks[i], NULL) != CP_BLOCK_READY) {
			cp_reader_unpin(h->reader, blocks, blocks[i] ? i + 1 : i);
			return 0;
		}
	}
	return 1;
}

/* ---- objects that changed ---- */

static size_t served_slot(const struct served *set, size_t cap, uint64_t key)
{
	size_t i = (size_t)(key * 0x9E3779B97F4A7C15ULL) & (cap - 1);

	while (set[i].key && set[i].key != key)
		i = (i + 1) & (cap - 1);
	return i;
}

/* Records that bytes of (@key, @gen) are going to the kernel.  Called
 * with r->lock held. */
static void served_add(struct cp_reader *r, uint64_t key, uint64_t gen)
{
	size_t i;

	if (r->served_n * 2 >= r->served_cap) {
		size_t cap = r->served_cap ? r->served_cap * 2 : 64;
		struct served *set = calloc(cap, sizeof(*set));

		if (!set) {
			r->served_lost = 1;
			return;
		}
		for (i = 0; i < r->served_cap; i++)
			if (r->served[i].key)
				set[served_slot(set, cap, r->served[i].key)] =
					r->served[i];
		free(r->served);
		r->served = set;
		r->served_cap = cap;
	}
	i = served_slot(r->served, r->served_cap, key);
	if (!r->served[i].key)
		r->served_n++;
	r->served[i].key = key;
	r->served[i].gen = gen;
}

/* Whether bytes of (@key, @gen) may be in the kernel's page cache. */
static int served_under(struct cp_reader *r, uint64_t key, uint64_t gen)
{
	int served;
	size_t i;

	pthread_mutex_lock(&r->lock);
	served = r->served_lost;
	if (!served && r->served_cap) {
		i = served_slot(r->served, r->served_cap, key);
		served = r->served[i].key == key && r->served[i].gen == gen;
	}
	pthread_mutex_unlock(&r->lock);
	return served;
}

/* Bytes of @v are about to be returned through @h.  Marked before the
 * last check that the object did not change (see switch_object()). */
static void note_served(struct cp_handle *h, const struct cp_file_view *v)
{
	struct cp_reader *r = h->reader;
	int first;

	pthread_mutex_lock(&h->lock);
	first = !h->served;
	h->served = 1;
	pthread_mutex_unlock(&h->lock);
	if (first) {
		pthread_mutex_lock(&r->lock);
		served_add(r, h->file->ino, v->gen);
		pthread_mutex_unlock(&r->lock);
	}
}

/* Marks the bytes of a read as served, then checks that @v is still the
 * object behind the id: -ESTALE if not (never bytes of two objects). */
static int still_current(struct cp_handle *h, const struct cp_file_view *v)
{
	struct cp_file_view now;

	note_served(h, v);
	cp_files_view(h->reader->files, h->file, &now);
	return now.gen == v->gen ? 0 : -ESTALE;
}

/*
 * The object behind @h's id changed (a 412, a new ETag or size) from
 * what @seen describes.  A handle that has not served a byte, of a file
 * whose bytes under @seen no handle served (the kernel's page cache may
 * keep those: a program must never see a mix of two objects), probes the
 * object again (the file table keeps and persists what it learns),
 * switches to it and the read goes on.  1 if it did (or a concurrent
 * read on @h did), 0 if the read must fail.
 *
 * The kernel was told the old size.  A larger object would be cut
 * there, so the handle notes it (cp_reader_grown()) and the caller drops
 * the kernel's attributes: a read past the old end then asks for them
 * again.  A smaller one is EIO now, and the next open reads it (known
 * and persisted already): the kernel takes a new size from a short
 * read, but only from the first of the short reads in flight, and pages
 * between the new end and the end that one sets would read as zeros.
 *
 * Why this is safe: a read marks its bytes served before its last look
 * at the generation (still_current()); a switch looks for that mark
 * after the generation moved on.  So either the read saw the change, or
 * the switch sees the mark.
 */
static int switch_object(struct cp_handle *h, const struct cp_file_view *seen)
{
	struct cp_reader *r = h->reader;
	struct cp_file_view fresh;
	int served, moved;

	pthread_mutex_lock(&h->lock);
	served = h->served;
	moved = h->view.gen != seen->gen;
	pthread_mutex_unlock(&h->lock);
	if (served)
		return 0;
	if (moved)
		return 1; /* a concurrent read switched already */
	if (served_under(r, h->file->ino, seen->gen))
		return 0;
	/* Forget the old object (a no-op when the read that saw the change
	 * did so), then learn the new one. */
	if (cp_files_changed(r->files, h->file, seen->gen))
		cp_cache_drop_key(r->cache, h->file->ino);
	if (cp_reader_resolve(r, h->file, 1) < 0)
		return 0;
	cp_files_view(r->files, h->file, &fresh);
	if (fresh.gen == seen->gen || fresh.size < seen->size)
		return 0;
	pthread_mutex_lock(&h->lock);
	served = h->served;
	if (!served && h->view.gen == seen->gen) {
		h->view = fresh;
		cp_prefetch_init(&h->pf);
		if (fresh.size > seen->size)
			atomic_store(&h->grown, 1);
	}
	pthread_mutex_unlock(&h->lock);
	if (!served)
		cp_info("%s: the object changed before this open read from "
			"it; reading the new one (%" PRId64 " bytes, was %"
			PRId64 ")", h->file->id, fresh.size, seen->size);
	return !served;
}

/* Pins the @n blocks of a read from @first into @blocks (all at once).
 * 0, or -EIO with nothing pinned. */
static int pin_read(struct attempt *a, struct cp_handle *h, uint64_t first,
		    int n, struct cp_block **blocks)
{
	struct cp_reader *r = a->reader;

	if (cp_cache_get_run(r->cache, h->file->ino, first, n, a->view->size,
			     blocks, a->deadline) < 0) {
		cp_warn("%s: no cache memory free within %u s", h->file->id,
			r->cfg->deadline);
		return -EIO;
	}
	return 0;
}

/* ---- the first read of an object known by its size only ---- */

/* The file table learnt what @h's first read needed (another read did
 * the learning): @v and the handle take its ETag.  0, or -ESTALE when
 * the object is no longer the one @v describes. */
static int adopt_probe(struct cp_handle *h, struct cp_file_view *v)
{
	struct cp_file_view now;

	cp_files_view(h->reader->files, h->file, &now);
	if (now.gen != v->gen || now.size != v->size)
		return -ESTALE;
	memcpy(v->etag, now.etag, sizeof(v->etag));
	pthread_mutex_lock(&h->lock);
	if (h->view.gen == v->gen) {
		memcpy(h->view.etag, now.etag, sizeof(h->view.etag));
		h->probed = 1;
	}
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* Marks the first @n of @blocks FETCHING for this read (all, or the
 * ones from the first up to one that is not EMPTY or FAILED).  Returns
 * how many. */
static int begin_first_run(struct cp_reader *r, struct cp_block **blocks,
			   int n)
{
	int i;

	for (i = 0; i < n && i < CP_PART_MAX_BLOCKS; i++)
		if (!cp_cache_begin_fetch(r->cache, blocks[i]))
			break;
	return i;
}

/* Records what the first answer about the object said (as the file's
 * resolver, which this ends), and @v and @h take its ETag. */
static void learnt(struct cp_handle *h, struct cp_file_view *v,
		   const struct cp_object_info *info)
{
	cp_files_end_resolve(h->reader->files, h->file, info, 0);
	memcpy(v->etag, info->etag, sizeof(v->etag));
	pthread_mutex_lock(&h->lock);
	if (h->view.gen == v->gen) {
		memcpy(h->view.etag, v->etag, sizeof(h->view.etag));
		h->probed = 1;
	}
	pthread_mutex_unlock(&h->lock);
}

/*
 * Random reads skip the cache: [@off, @end) is fetched into a buffer of
 * its own, with one range GET run on this thread (no hand-off to the I/O
 * thread, like curl would), resumed after failures.  When @h has not
 * learnt its object yet (!@probed), this GET carries the probe, as
 * first_transfer() does: sent without If-Match as the file's resolver,
 * the size checked, its ETag recorded; a failed try starts again from
 * @off (no bytes of two answers without If-Match).  Returns the malloc'd
 * buffer in *@out, or -errno.
 */
static int read_direct(struct attempt *a, struct cp_handle *h,
		       struct cp_file_view *v, int probed, int64_t off,
		       int64_t end, char **out)
{
	struct cp_reader *r = a->reader;
	struct cp_object_info info;
	char *buf;
	int64_t pos = off;
	int ret = 0, learn = 0;

	if (!probed) {
		ret = cp_files_begin_resolve(r->files, h->file, 1,
					     a->deadline);
		if (ret < 0)
			return ret == -ENOENT ? -EIO : ret;
		if (ret == 0 && adopt_probe(h, v) < 0)
			return -ESTALE;
		learn = ret == 1;
		ret = 0;
	}
	buf = malloc((size_t)(end - off));
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (pos < end) {
		struct cp_part *part;
		int64_t reached = pos;
		int err;

		ret = attempt_lease(a, 0);
		if (ret < 0)
			break;
		part = cp_part_new_direct(r->fetch, a->file->ino, a->url,
					  learn ? NULL : v->etag, v->size, pos,
					  buf + (pos - off),
					  (size_t)(end - pos));
		if (!part) {
			ret = -ENOMEM;
			break;
		}
		part->lease_gen = a->url_gen;
		err = cp_fetch_run(r->fetch, part, a->deadline, &reached,
				   &info);
		if (err == 0)
			break;
		if (!learn && reached > pos)
			pos = reached;
		ret = after_failure(a, err, a->url_gen);
		if (ret < 0)
			break;
	}
out:
	if (learn && ret == 0)
		learnt(h, v, &info);
	else if (learn)
		cp_files_end_resolve(r->files, h->file, NULL, ret);
	if (ret == 0)
		*out = buf;
	else
		free(buf);
	return ret == -ENOENT ? -EIO : ret;
}

/* Extends the first transfer's run of @n blocks (the read's) with the
 * window ahead, up to @to and a whole part: blocks made for a prefetch,
 * marked FETCHING (that state keeps them).  Returns the run's length. */
static int first_window(struct attempt *a, struct cp_handle *h,
			struct cp_block **run, int n, uint64_t to)
{
	struct cp_reader *r = a->reader;
	uint64_t idx = run[n - 1]->index + 1;

	for (; idx < to && n < CP_PART_BLOCKS; idx++) {
		struct cp_block *b = cp_cache_get(
			r->cache, h->file->ino, idx,
			block_want(a->view->size, idx), CP_GET_PREFETCH);
		int started;

		if (!b)
			break;
		started = cp_cache_begin_fetch(r->cache, b);
		if (started)
			run[n++] = b;
		cp_cache_unpin(r->cache, b);
		if (!started)
			break;
	}
	return n;
}

/* How many transfers a window of @cap blocks will be spread over when
 * the blocks from @next on are still to be asked for (none past the end
 * of an object of @size bytes).  The first of them go out while the
 * window is still growing, in parts of a quarter of it (4 blocks at 16),
 * after the sliver the first transfer left: counted so, but no more than
 * the whole share needs at full size, and one more. */
static int window_parts(int64_t size, uint64_t next, unsigned cap)
{
	uint64_t nblocks = ((uint64_t)size + CP_BLOCK_SIZE - 1) >>
			   CP_BLOCK_SHIFT;
	uint64_t rest = nblocks > next ? nblocks - next : 0;
	uint64_t young, full;

	if (rest == 0)
		return 0;
	young = (CP_MIN(rest, (uint64_t)cap) + 3) / 4 + 1;
	full = ((uint64_t)cap + CP_PART_BLOCKS - 1) / CP_PART_BLOCKS + 1;
	return (int)CP_MIN(young, full);
}

/*
 * The first transfer of the object, for a file whose size is known
 * (manifest, discovery) but that was not probed in this mount: instead of
 * a probe before the data, the range GET of the read's first blocks
 * carries it.  As the file's resolver (single flight: concurrent first
 * reads wait for it), this sends that GET with no If-Match (the engine
 * checks the size against @v's), waits for its headers only, and records
 * what they say (ETag, Last-Modified, type) in the file table, which
 * persists it; @v and the handle take the ETag, so every later transfer
 * names the object with If-Match: the blocks of one read, and the window
 * ahead, are of one object.
 *
 * The window ahead [@from, @to), when it continues the read, rides on
 * the same transfer up to a whole part: the one connection open so far
 * streams it, and none of the rest may be asked for before the ETag is
 * known.  Meanwhile the connections the rest will need (the handle's
 * share @cap of the budget, or what is left of the object, in whole
 * transfers) are opened, with no request on them
 * (cp_fetch_preconnect()): each costs a round trip on a far link, which
 * the window's transfers then do not wait for.
 *
 * Returns 0 with the read's @n blocks pinned in @blocks (the first ones
 * on their way), 1 when the file was learnt meanwhile or cannot be
 * learnt this way (nothing pinned, @v updated: read as usual), or -errno
 * with nothing pinned.
 */
static int first_transfer(struct attempt *a, struct cp_handle *h,
			  struct cp_file_view *v, uint64_t first, int n,
			  uint64_t from, uint64_t to, unsigned cap,
			  struct cp_block **blocks)
{
	struct cp_reader *r = a->reader;
	struct cp_object_info info;
	struct part_wait *p;
	int ret, pinned = 0, tries = 0, window = 0;

	ret = cp_files_begin_resolve(r->files, h->file, 1, a->deadline);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return adopt_probe(h, v) < 0 ? -ESTALE : 1;
	/* Blocks of the id cached before anything was learnt are of no
	 * known object. */
	cp_cache_drop_key(r->cache, h->file->ino);
	p = part_wait_new(0);
	if (!p) {
		cp_files_end_resolve(r->files, h->file, NULL, -ENOMEM);
		return -ENOMEM;
	}
	ret = pin_read(a, h, first, n, blocks);
	pinned = ret == 0;
	while (ret == 0) {
		struct cp_part *part;
		int i, nrun, err;

		struct cp_block *run[CP_PART_MAX_BLOCKS];

		nrun = begin_first_run(r, blocks, n);
		if (nrun == 0) {
			ret = 1; /* on its way already: probe, then read */
			break;
		}
		memcpy(run, blocks, (size_t)nrun * sizeof(*run));
		window = tries++ == 0 && nrun == n &&
			 from == first + (uint64_t)n && to > from;
		if (window)
			nrun = first_window(a, h, run, nrun, to);
		ret = attempt_lease(a, 0);
		if (ret < 0) {
			for (i = 0; i < nrun; i++)
				cp_cache_fail(r->cache, run[i], -ret, 1, 0);
			break;
		}
		part = cp_part_new(r->fetch, h->file->ino, a->url, NULL,
				   v->size, run, nrun);
		if (!part) {
			ret = -ENOMEM; /* and the blocks were failed */
			break;
		}
		submit_part(a, part, p, 1);
		/* While it waits for its answer, the connections the
		 * window will be spread over are opened. */
		if (window)
			cp_fetch_preconnect(r->fetch, a->url,
					    window_parts(v->size,
							 first + (uint64_t)nrun,
							 cap));
		err = wait_part(a, p, 1);
		if (err == 0) {
			/* The engine may still write p->info (at the end). */
			pthread_mutex_lock(&p->lock);
			info = p->info;
			pthread_mutex_unlock(&p->lock);
			break;
		}
		if (err == ETIMEDOUT) {
			cp_warn("%s: no answer within %u s; giving up",
				h->file->id, r->cfg->deadline);
			ret = -EIO;
			break;
		}
		/* CP_FETCH_ECHANGED (not the size the kernel was told)
		 * ends in -ESTALE; the rest retry as any read does. */
		ret = after_failure(a, err, a->url_gen);
	}
	if (ret == 0) {
		learnt(h, v, &info);
	} else {
		cp_files_end_resolve(r->files, h->file, NULL,
				     ret == 1 ? 0 : ret);
		if (pinned)
			cp_reader_unpin(r, blocks, n);
	}
	part_wait_put(p);
	return ret;
}

/* ---- the read paths ---- */

/*
 * The sequential path: pins the read's blocks (all at once, unless
 * @pinned says they are in @blocks already), starts what is missing and
 * the window [@from, @to) ahead, then waits for the read's blocks.  With
 * @cached (a random reader found them all cached) nothing is started.
 * 0, or -errno with nothing pinned.
 */
static int read_pinned(struct attempt *a, struct cp_handle *h,
		       uint64_t first, int n, uint64_t from, uint64_t to,
		       int pinned, int cached, struct cp_block **blocks,
		       int *waited)
{
	struct cp_reader *r = a->reader;
	int i, ret = 0;

	if (!pinned && pin_read(a, h, first, n, blocks) < 0)
		return -EIO;
	if (!cached)
		issue(a, h, blocks, n, from, to);
	for (i = 0; i < n && ret == 0; i++)
		ret = wait_block(a, blocks[i], waited);
	if (ret == 0)
		ret = still_current(h, a->view);
	if (ret < 0) {
		cp_reader_unpin(r, blocks, n);
		return ret;
	}
	for (i = 0; i < n; i++)
		save_block(r, a->view, h->file, blocks[i]);
	return 0;
}

/* After a read of [@off, @end) from cache blocks: the planner learns how
 * fast data came (a window that made the reader wait grows while that
 * still helps), and a block whose every byte a sequential reader was
 * given goes to the cold end of the cache (drop-behind: the kernel's
 * page cache has it). */
static void after_read(struct cp_handle *h, int waited, int random,
		       int64_t off, int64_t end, struct cp_block **blocks,
		       int n)
{
	struct cp_reader *r = h->reader;
	unsigned max;
	double now;

	if (random)
		return;
	max = share(r);
	now = cp_now();
	pthread_mutex_lock(&h->lock);
	cp_prefetch_served(&h->pf, now, waited, max);
	pthread_mutex_unlock(&h->lock);
	cp_cache_served(r->cache, blocks, n,
			(size_t)off & (CP_BLOCK_SIZE - 1), (size_t)(end - off));
}

/* Before a random read of an object not probed yet: the probe (into
 * the file table), and @v takes what it learnt.  0 or -errno. */
static int probe_first(struct cp_handle *h, struct cp_file_view *v)
{
	int ret = resolve(h->reader, h->file, 1, 1);

	if (ret < 0)
		return ret == -ENOENT ? -EIO : ret;
	return adopt_probe(h, v);
}

/* One try at a read of the object @v describes (cp_reader_read()). */
static ssize_t read_once(struct cp_handle *h, struct cp_file_view *v,
			 off_t off, size_t size, struct cp_block **blocks,
			 int max, int *nblocks, char **direct)
{
	struct cp_reader *r = h->reader;
	struct cp_file_view now;
	struct attempt a;
	uint64_t first, last, from, to;
	int64_t end;
	int n, random, probed, pinned = 0, waited = 0, ret, delta;
	unsigned cap = share(r);

	cp_files_view(r->files, h->file, &now);
	if (now.gen != v->gen)
		return -ESTALE; /* the object changed since open */
	if (off < 0)
		return -EINVAL;
	if (off >= v->size || size == 0)
		return 0;
	end = CP_MIN(off + (int64_t)size, v->size);
	first = (uint64_t)off >> CP_BLOCK_SHIFT;
	last = (uint64_t)(end - 1) >> CP_BLOCK_SHIFT;
	n = (int)(last - first + 1);
	if (n > max)
		return -EINVAL;
	attempt_init(&a, r, h->file, v);
	pthread_mutex_lock(&h->lock);
	cp_prefetch_plan(&h->pf, v->size, off, end, cap, &from, &to);
	delta = note_stream(h);
	/* A small first read (a header, file(1), a first byte) is fetched
	 * direct, just what the kernel asked for, not a whole block: the
	 * reads that go on in order open a window then.  Not when it runs
	 * to the end of the object: a small file read whole goes through
	 * the cache, and so to the disk cache (a second backup is free). */
	random = h->pf.random || (h->pf.small_first && end < v->size);
	probed = h->probed;
	a.part_blocks = cp_prefetch_part_blocks(h->pf.window);
	pthread_mutex_unlock(&h->lock);
	count_stream(r, delta);
	/* A read larger than the whole cache cannot be pinned: it goes
	 * direct, like a random one. */
	if ((size_t)n > cp_cache_capacity(r->cache))
		random = 1;
	if (!probed && !random) {
		ret = first_transfer(&a, h, v, first, n, from, to, cap,
				     blocks);
		pinned = ret == 0; /* 1: nothing pinned */
		if (ret == 1)
			ret = probe_first(h, v);
		if (ret < 0) {
			attempt_done(&a);
			return ret == -ENOENT ? -EIO : ret;
		}
	}
	if (random && !pin_if_cached(h, first, n, blocks)) {
		ret = read_direct(&a, h, v, probed, off, end, direct);
		attempt_done(&a);
		if (ret == 0 && (ret = still_current(h, v)) < 0) {
			free(*direct);
			*direct = NULL;
		}
		return ret < 0 ? ret : end - off;
	}
	ret = read_pinned(&a, h, first, n, from, to, pinned || random, random,
			  blocks, &waited);
	attempt_done(&a);
	if (ret < 0)
		return ret;
	after_read(h, waited, random, off, end, blocks, n);
	*nblocks = n;
	return end - off;
}

int cp_reader_grown(struct cp_handle *h)
{
	/* One load per read; the exchange only after a switch. */
	return atomic_load_explicit(&h->grown, memory_order_relaxed) &&
	       atomic_exchange(&h->grown, 0);
}

ssize_t cp_reader_read(struct cp_handle *h, off_t off, size_t size,
		       struct cp_block **blocks, int max, int *nblocks,
		       char **direct)
{
	struct cp_file_view v;
	ssize_t got;
	int tries = 0;

	*nblocks = 0;
	*direct = NULL;
	for (;;) {
		pthread_mutex_lock(&h->lock);
		v = h->view;
		pthread_mutex_unlock(&h->lock);
		got = read_once(h, &v, off, size, blocks, max, nblocks,
				direct);
		/* One switch to a new object per read; a second change in
		 * the meantime is EIO like any other. */
		if (got != -ESTALE || tries++ || !switch_object(h, &v))
			return got;
	}
}

void cp_reader_unpin(struct cp_reader *r, struct cp_block **blocks,
		     int nblocks)
{
	int i;

	for (i = 0; i < nblocks; i++)
		cp_cache_unpin(r->cache, blocks[i]);
}
