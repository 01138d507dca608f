/*
 * fetch.h - the fetch engine: range GETs on presigned URLs, straight into
 * cache blocks.
 *
 * I/O threads, one per online CPU up to 4, each drive a curl multi
 * handle of their own; submitted parts go to them in turn, so the
 * consecutive parts of one stream, and parallel streams, are received
 * and copied into blocks on several cores at once.  A transfer ("part")
 * asks for a run of consecutive blocks of one object with
 * "Range: bytes=START-END" (START resumes after the bytes the first block
 * already holds) and writes the body directly into the blocks' buffers;
 * each block is completed, waking its readers, the moment its last byte
 * lands, not when the part ends.  Connections are reused across parts
 * and files by the I/O thread that opened them, DNS and TLS sessions by
 * all of them; connections per host are capped per I/O thread.
 *
 * The engine checks what the data host sends before trusting it:
 * a 206 whose Content-Range starts where asked, ends no later than asked
 * and agrees with the known size and the Content-Length; no more bytes
 * than it announced; the expected ETag.  A 206 that ends earlier is a
 * valid shorter answer: its bytes are kept and the part ends with
 * CP_FETCH_EPARTIAL.  A 200 (Range ignored) is read only as far as
 * needed, the bytes before START skipped, then the transfer is stopped:
 * an object is never buffered.  A transfer making no progress for
 * `timeout` seconds is aborted.
 *
 * Failures end the part: its blocks not yet complete are failed with an
 * errno that tells the reader what to do (see below); the bytes
 * received stay in place so a retry resumes after them.  The engine never
 * retries by itself: retry policy lives with the thread that waits.
 *
 * A small direct part may instead be run on the caller's own thread
 * (cp_fetch_run()): no hand-off to an I/O thread and back, the same
 * checks, over connections that those callers share.  Its GET goes
 * over a kept-alive connection of conn.c (curl opens it, conn.c frames
 * the answer) and, when conn.c declines the answer before handing over
 * a byte, through curl_easy_perform() as before.
 *
 * Thread safety: cp_part_new(), cp_part_new_direct(), cp_fetch_submit(),
 * cp_fetch_run() and cp_fetch_preconnect() may be called from any
 * thread; everything else in a part belongs to the engine once
 * submitted.  A part's done callback runs once, on the I/O thread that
 * ran the part as a rule, but on the thread calling cp_fetch_submit() or
 * cp_fetch_free() for a part the stopping engine refuses; it must not
 * block and must not take a lock that the submitter may hold.  Callbacks
 * of different parts may run at the same time on different I/O threads.
 * cp_part_new() fails its blocks on the calling thread when it cannot
 * allocate.  Each I/O thread's lock is a leaf, held only to hand parts
 * over; so is the lock over the connections opened ahead of need, held
 * only to add or take one.
 */
#ifndef CP_FETCH_H
#define CP_FETCH_H

#include <stdint.h>
#include <time.h>

struct cp_config;
struct cp_cache;
struct cp_block;
struct cp_stats;
struct cp_fetch;

/*
 * How a failed transfer should be handled by whoever retries.  None of
 * them is ENOENT: only the API says that a file does not exist (SPEC 3),
 * so an errno of its own per data-host answer keeps a server's error
 * from reaching a program as "no such file".
 */
#define CP_FETCH_ERETRY EAGAIN     /* transient: back off and resume */
#define CP_FETCH_EEXPIRED EKEYEXPIRED /* data host 403: renew the URL */
#define CP_FETCH_ECHANGED ESTALE   /* ETag/size changed, or 412 */
#define CP_FETCH_EPROTO EPROTO     /* response refused: not retried */
/* A 206 that started where asked but ended earlier, all of it received:
 * the bytes are kept; ask for the rest (no fault, no wait). */
#define CP_FETCH_EPARTIAL EINPROGRESS
/* Data host 404/410: nothing behind this URL.  Asking for a fresh URL
 * once tells whether the file is gone (the API answers 404: ENOENT) or
 * the data host lost it (a fresh URL is refused the same way: EIO); a
 * URL that cannot be renewed (a public one) ends in EIO. */
#define CP_FETCH_EGONE ENXIO

#define CP_PART_MAX_BLOCKS 8
#define CP_ETAG_MAX 128

/* What the data host said about the object (filled by the I/O thread
 * running the part). */
struct cp_object_info {
	long status;              /* HTTP status of the transfer */
	int64_t total;            /* object size; -1 unknown */
	char etag[CP_ETAG_MAX];   /* "" when none */
	time_t last_modified;     /* 0 when none */
	char content_type[128];   /* "" when none */
	char filename[256];       /* from Content-Disposition; "" */
	int64_t range_start, range_end; /* from Content-Range */
	int64_t content_length;   /* -1 when none */
};

struct cp_part;
typedef void (*cp_part_done_fn)(struct cp_part *part, int err, void *arg);

struct cp_part {
	uint64_t key;             /* file key, for logs */
	char *url;                /* owned (freed with the part) */
	char if_match[CP_ETAG_MAX]; /* expected ETag, "" = none */
	int64_t size;             /* known object size, -1 = probe */
	int nblocks;
	struct cp_block *blocks[CP_PART_MAX_BLOCKS]; /* consecutive, each
				   * with a FETCHING pin taken by the caller */
	char *dest;               /* direct part: caller's buffer, or NULL */
	uint64_t lease_gen;       /* which URL lease @url came from */
	cp_part_done_fn done;     /* may be NULL; runs once, when the part
				   * ends (see Thread safety above) */
	cp_part_done_fn on_headers; /* may be NULL; runs at most once, on
				   * the I/O thread running the part, when
				   * the response headers passed the
				   * checks (info is complete, err 0),
				   * before the first body byte lands;
				   * done still runs later.  Same rules
				   * as done. */
	void *done_arg;           /* for done and on_headers */
	struct cp_object_info info;
	/* engine-private state below */
	struct cp_fetch *engine;
	void *easy;
	struct curl_slist *headers;
	int64_t start, end;       /* asked range, inclusive */
	int64_t last;             /* last byte this answer may give */
	int64_t pos;              /* absolute offset of the next byte */
	int64_t skip;             /* bytes to discard (200 answers) */
	int cur;                  /* block being filled */
	int checked;              /* response headers validated */
	int satisfied;            /* every block complete */
	int err;                  /* positive errno decided mid-transfer */
	unsigned nheaders;        /* header lines of this answer */
	size_t head_bytes;        /* and their bytes (CP_CONN_HEAD_MAX) */
	struct cp_part *next;     /* submit queue */
	struct cp_part *run_prev, *run_next; /* running list */
};

/* @cfg, @cache and @stats must outlive the engine.  Starts the I/O
 * threads.  NULL on failure. */
struct cp_fetch *cp_fetch_new(const struct cp_config *cfg,
			      struct cp_cache *cache, struct cp_stats *stats);

/* Shutdown, without waiting: transfers running or submitted from now on
 * fail with ECANCELED. */
void cp_fetch_stop(struct cp_fetch *engine);

/* Stops the I/O threads (cp_fetch_stop() if not done) and frees. */
void cp_fetch_free(struct cp_fetch *engine);

/*
 * Allocates a part for @url (copied) covering @blocks (consecutive, each
 * already marked with cp_cache_begin_fetch()).  @size is the object size,
 * or -1 for a probe (one block asked as bytes=0-(BLOCK-1); the size comes
 * from Content-Range).  NULL on ENOMEM (the blocks are then failed).
 */
struct cp_part *cp_part_new(struct cp_fetch *engine, uint64_t key,
			    const char *url, const char *if_match,
			    int64_t size, struct cp_block **blocks,
			    int nblocks);

/*
 * A direct part: bytes [@start, @start + @len) of an object of known
 * @size land in @dest (owned by the caller, who must wait for the done
 * callback before freeing it).  For random reads, which do not go
 * through cache blocks.  @size -1 makes it a small probe (@start 0): the
 * size comes from Content-Range, and only the bytes the object has are
 * asked for (info.total; the part's end is min(@len, size) - 1).  NULL
 * on ENOMEM.
 */
struct cp_part *cp_part_new_direct(struct cp_fetch *engine, uint64_t key,
				   const char *url, const char *if_match,
				   int64_t size, int64_t start, char *dest,
				   size_t len);

/* Hands @part to an I/O thread (ownership passes; freed after done). */
void cp_fetch_submit(struct cp_fetch *engine, struct cp_part *part);

/*
 * Runs the direct @part on the calling thread (ownership passes; freed
 * before returning; its done and on_headers are not called), within
 * @deadline (cp_now() scale) and until shutdown.  Returns 0 or the
 * positive errno a done callback would get; *@pos is where the part
 * stopped and *@info what the data host said (either may be NULL).
 * Connections are kept for the next call from any thread.  Must not be
 * called once cp_fetch_free() has begun.
 */
int cp_fetch_run(struct cp_fetch *engine, struct cp_part *part,
		 double deadline, int64_t *pos, struct cp_object_info *info);

/*
 * Starts opening connections to @url's host (its first address) so that
 * the I/O threads have @n ready (at most 8, fewer as curl holds idle ones
 * or some wait already): a transfer that needs a new connection to that
 * address takes a waiting one instead of paying a round trip to
 * connect.  No request is sent on them; one nobody took within 5 s is
 * closed (by the first I/O thread, within a second more, even if no
 * transfer runs).  For a reader that will soon spread a window over
 * several transfers (its first one still waiting for its answer).
 * None is opened when the environment names a proxy (curl connects to
 * that, never to the data host).  Any thread; resolves the host on the
 * calling thread.
 */
void cp_fetch_preconnect(struct cp_fetch *engine, const char *url, int n);

#endif
