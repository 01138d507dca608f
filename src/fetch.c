/*
 * fetch.c - the fetch engine (see fetch.h).
 *
 * Owns: the I/O threads, one "loop" each (struct io_loop): a curl multi
 * handle, a pool of easy handles and the queue of parts submitted to
 * it.  A loop's queue is the only state of it shared with other threads
 * (loop->lock); everything a part holds once it is running is touched by
 * its loop's thread alone, except block data, which readers see only
 * after cp_cache_complete().  The loops share DNS and TLS sessions
 * through one curl share, locked by curl's short critical sections
 * (io_share_locks: leaves, never held across I/O); each keeps its own
 * connections.
 *
 * Also owns what cp_fetch_run() uses on the callers' threads: a second
 * curl share (connections, DNS, TLS sessions), whose locks are curl's
 * own short critical sections (one mutex per kind of data, leaves, never
 * held across I/O), a pool of idle easy handles (sync_lock), and
 * conn.c's pool of kept-alive connections, tried first (run_conn()).
 *
 * And the connections opened ahead of need (cp_fetch_preconnect(), at
 * the end of the file): filled by any thread, taken by the I/O threads'
 * curl when it opens a connection, the stale ones closed by the first
 * I/O thread (pre_lock, a leaf, held only to add, take or expire an
 * entry; connect(), close() and DNS happen outside).
 */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache.h"
#include "cfg.h"
#include "curlopt.h"
#include "conn.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "retry.h"
#include "stats.h"
#include "util.h"
#include "valid.h"

/* Per I/O thread: stalled ones must not queue others. */
#define MAX_HOST_CONNECTIONS 32
/* One I/O thread per online CPU, up to this many: receiving a byte and
 * copying it into its block costs a core's time, and one thread doing
 * that for every stream serialises them. */
#define MAX_IO_THREADS 4
#define MAX_HEADERS 100
#define MAX_HEADER_LINE 8192
#define MAX_ERROR_BODY (64 * 1024)
#define RECV_BUFFER (256 * 1024)
/* cp_fetch_run()'s transfers are small: a large buffer would be
 * allocated (mmap'd) and faulted in again for each one. */
#define SYNC_RECV_BUFFER (16 * 1024)
/* Connections opened ahead of need (cp_fetch_preconnect()): at most
 * this many wait, each for at most PRECONN_TTL seconds. */
#define PRECONN_MAX 8
#define PRECONN_TTL 5.0

struct preconn {
	int fd;
	double born;
	socklen_t len;
	struct sockaddr_storage addr;
};

/* One I/O thread and what it alone drives. */
struct io_loop {
	struct cp_fetch *engine;
	pthread_t thread;
	int started;               /* thread created; set before it runs */
	CURLM *multi;
	pthread_mutex_t lock;      /* a leaf: hands parts over */
	struct cp_part *queue;     /* protected by lock */
	int stop;                  /* protected by lock */
	struct cp_part *running;   /* started parts; this thread only */
	CURL *pool[8];             /* idle easy handles; this thread only */
	unsigned npool;
	int pre_handed;            /* fd just taken from the connections
				    * opened ahead; this thread only */
};

struct cp_fetch {
	const struct cp_config *cfg;
	struct cp_cache *cache;
	struct cp_stats *stats;
	struct io_loop loops[MAX_IO_THREADS];
	unsigned nloops;           /* set before the threads start */
	atomic_uint next_loop;     /* round robin of cp_fetch_submit() */
	CURLSH *share;             /* the loops' DNS and TLS sessions */
	pthread_mutex_t io_share_locks[CURL_LOCK_DATA_LAST];
	CURLSH *sync_share;        /* cp_fetch_run()'s connections */
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t sync_lock;
	CURL *sync_pool[16];       /* idle; protected by sync_lock */
	unsigned nsync;            /* protected by sync_lock */
	struct cp_conns *conns;    /* cp_fetch_run()'s GETs without curl's
				    * transfer machinery; may be NULL */
	/* Connections opened ahead of need, which the I/O thread's
	 * transfers take instead of connecting (see the end of the file): */
	pthread_mutex_t pre_lock;
	struct preconn pre[PRECONN_MAX]; /* protected by pre_lock */
	unsigned npre;             /* protected by pre_lock */
	unsigned pre_opening;      /* being connected; pre_lock */
	atomic_int sockets;        /* curl's sockets on the I/O threads */
	atomic_int busy;           /* parts running on the I/O threads */
	int proxied;               /* curl goes through a proxy: none are
				    * opened ahead; set before the threads */
};

static void preconn_setup(struct io_loop *loop, CURL *easy);
static void preconn_sweep(struct cp_fetch *engine);

static void part_free(struct cp_part *part)
{
	curl_slist_free_all(part->headers);
	free(part->url);
	free(part);
}

struct cp_part *cp_part_new(struct cp_fetch *engine, uint64_t key,
			    const char *url, const char *if_match,
			    int64_t size, struct cp_block **blocks,
			    int nblocks)
{
	struct cp_part *part = calloc(1, sizeof(*part));
	int i;

	if (part)
		part->url = strdup(url);
	if (!part || !part->url || nblocks < 1 ||
	    nblocks > CP_PART_MAX_BLOCKS) {
		free(part ? part->url : NULL);
		free(part);
		for (i = 0; i < nblocks; i++)
			cp_cache_fail(engine->cache, blocks[i], ENOMEM, 1, 0);
		return NULL;
	}
	part->engine = engine;
	part->key = key;
	part->size = size;
	part->nblocks = nblocks;
	memcpy(part->blocks, blocks, nblocks * sizeof(*blocks));
	if (if_match)
		snprintf(part->if_match, sizeof(part->if_match), "%s",
			 if_match);
	part->info.total = -1;
	part->info.content_length = -1;
	part->start = (int64_t)blocks[0]->index * CP_BLOCK_SIZE +
		      blocks[0]->filled;
	if (size < 0)
		part->end = CP_BLOCK_SIZE - 1;
	else
		part->end = (int64_t)blocks[nblocks - 1]->index *
				    CP_BLOCK_SIZE +
			    blocks[nblocks - 1]->want - 1;
	part->pos = part->start;
	return part;
}

struct cp_part *cp_part_new_direct(struct cp_fetch *engine, uint64_t key,
				   const char *url, const char *if_match,
				   int64_t size, int64_t start, char *dest,
				   size_t len)
{
	struct cp_part *part = calloc(1, sizeof(*part));

	if (part)
		part->url = strdup(url);
	if (!part || !part->url || len == 0 || (size < 0 && start != 0)) {
		free(part ? part->url : NULL);
		free(part);
		return NULL;
	}
	part->engine = engine;
	part->key = key;
	part->size = size;
	part->dest = dest;
	if (if_match)
		snprintf(part->if_match, sizeof(part->if_match), "%s",
			 if_match);
	part->info.total = -1;
	part->info.content_length = -1;
	part->start = part->pos = start;
	part->end = start + (int64_t)len - 1;
	return part;
}

/* ---- response checks (I/O thread) ---- */

static void part_error(struct cp_part *part, int err, const char *what)
{
	char u[256];

	if (part->err)
		return;
	part->err = err;
	cp_warn("%s: %s (HTTP %ld)", cp_log_url(part->url, u, sizeof(u)),
		what, part->info.status);
}

static int status_errno(long status)
{
	switch (status) {
	case 403:
		return CP_FETCH_EEXPIRED;
	case 404:
	case 410:
		return CP_FETCH_EGONE;
	case 412:
		return CP_FETCH_ECHANGED;
	default:
		return cp_retry_status_transient(status) ? CP_FETCH_ERETRY
							 : CP_FETCH_EPROTO;
	}
}

/* Probe: the first answer tells the object's size. */
static void learn_size(struct cp_part *part, int64_t total)
{
	struct cp_block *b = part->blocks[0];
	size_t want = total < (int64_t)CP_BLOCK_SIZE ? (size_t)total
						      : CP_BLOCK_SIZE;

	if (part->dest) {
		/* A direct probe: as much of its range as there is. */
		part->size = total;
		part->end = CP_MIN(part->end, total - 1);
		part->satisfied = part->end < part->start;
		return;
	}
	part->size = total;
	part->end = (int64_t)want - 1;
	cp_cache_set_want(part->engine->cache, b, want);
	if (want == 0) {
		part->satisfied = 1;
		part->cur = 1;
		cp_cache_complete(part->engine->cache, b);
	}
}

/* 206: the range must start where asked and end no later than asked.
 * Ending earlier is allowed (HTTP lets a server send less): the bytes
 * are taken and the part ends with CP_FETCH_EPARTIAL. */
static void check_206(struct cp_part *part)
{
	struct cp_object_info *info = &part->info;
	int64_t end;

	if (info->total < 0) {
		part_error(part, CP_FETCH_EPROTO,
			   "206 without a valid Content-Range");
		return;
	}
	if (part->size < 0)
		learn_size(part, info->total);
	end = CP_MIN(part->end, info->total - 1);
	if (info->range_start != part->pos || info->range_end > end) {
		part_error(part, CP_FETCH_EPROTO,
			   "Content-Range does not match the request");
		return;
	}
	if (info->content_length >= 0 &&
	    info->content_length != info->range_end - info->range_start + 1) {
		part_error(part, CP_FETCH_EPROTO,
			   "Content-Length does not match Content-Range");
		return;
	}
	part->last = info->range_end;
}

/* 200: Range ignored; skip to our bytes, stop when we have them. */
static void check_200(struct cp_part *part)
{
	if (part->info.total < 0 && part->size < 0) {
		part_error(part, CP_FETCH_EPROTO,
			   "200 without a length for a probe");
		return;
	}
	if (part->size < 0)
		learn_size(part, part->info.total);
	part->skip = part->pos;
	part->last = part->end;
}

/* 416: only an empty object may answer a probe so. */
static void check_416(struct cp_part *part)
{
	if (part->info.total == 0 && part->size < 0) {
		learn_size(part, 0);
		return;
	}
	part_error(part, CP_FETCH_EPROTO, "416 for a range inside the object");
}

/* Called once all response headers are in: decide whether to trust the
 * body that follows. */
static void check_response(struct cp_part *part, CURL *easy)
{
	struct cp_object_info *info = &part->info;
	long status;

	part->checked = 1;
	/* Without a transfer of curl's (conn.c), header_cb() took the
	 * status from the status line. */
	if (easy)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &info->status);
	status = info->status;
	if (status != 200 && status != 206 && status != 416) {
		part_error(part, status_errno(status),
			   status == 403 ? "access denied (URL expired?)"
					 : "data host refused the range");
		return;
	}
	if (status == 200)
		info->total = info->content_length; /* the whole object */
	if (status != 416 && part->if_match[0] && info->etag[0] &&
	    strcmp(part->if_match, info->etag) != 0) {
		part_error(part, CP_FETCH_ECHANGED, "object changed (ETag)");
		return;
	}
	if (part->size >= 0 && info->total >= 0 && info->total != part->size) {
		part_error(part, CP_FETCH_ECHANGED, "object size changed");
		return;
	}
	if (status == 206)
		check_206(part);
	else if (status == 200)
		check_200(part);
	else
		check_416(part);
}

/* The response was checked: tell whoever wants to know before the body
 * (a first read learning the object's ETag). */
static void headers_checked(struct cp_part *part)
{
	cp_part_done_fn fn = part->on_headers;

	if (!fn || part->err)
		return;
	part->on_headers = NULL;
	fn(part, 0, part->done_arg);
}

/* ---- response headers (I/O thread) ---- */

static void take_content_range(struct cp_object_info *info, const char *v)
{
	if (cp_http_parse_content_range(v, &info->range_start,
					&info->range_end, &info->total) < 0)
		info->total = -1;
}

static void take_content_length(struct cp_object_info *info, const char *v)
{
	if (cp_http_parse_content_length(v, &info->content_length) < 0)
		info->content_length = -1;
}

static void take_etag(struct cp_object_info *info, const char *v)
{
	if (cp_http_parse_etag(v, info->etag, sizeof(info->etag)) < 0)
		info->etag[0] = '\0';
}

static void take_last_modified(struct cp_object_info *info, const char *v)
{
	time_t t;

	if (cp_http_parse_date(v, &t) == 0)
		info->last_modified = t;
}

static void take_content_type(struct cp_object_info *info, const char *v)
{
	snprintf(info->content_type, sizeof(info->content_type), "%s", v);
}

static void take_filename(struct cp_object_info *info, const char *v)
{
	if (cp_http_parse_filename(v, info->filename,
				   sizeof(info->filename)) < 0)
		info->filename[0] = '\0';
}

/* The response headers the engine reads, and what each one sets. */
static const struct {
	const char *name;
	void (*take)(struct cp_object_info *info, const char *value);
} response_headers[] = {
	{ "Content-Range", take_content_range },
	{ "Content-Length", take_content_length },
	{ "ETag", take_etag },
	{ "Last-Modified", take_last_modified },
	{ "Content-Type", take_content_type },
	{ "Content-Disposition", take_filename },
};

static size_t header_cb(char *line, size_t size, size_t n, void *arg)
{
	struct cp_part *part = arg;
	struct cp_object_info *info = &part->info;
	size_t len = size * n, i;
	char val[512];

	part->head_bytes += len;
	if (len > MAX_HEADER_LINE || ++part->nheaders > MAX_HEADERS ||
	    part->head_bytes > CP_CONN_HEAD_MAX) {
		part_error(part, CP_FETCH_EPROTO, "response headers too large");
		return 0;
	}
	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		int minor;

		/* A new response (after a 100 or a redirect): start over. */
		if (!part->easy &&
		    cp_http_parse_status(line, len, &minor, &info->status) < 0)
			info->status = 0;
		part->nheaders = 1;
		part->head_bytes = len;
		info->total = -1;
		info->content_length = -1;
		info->etag[0] = '\0';
		return len;
	}
	if (len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
		check_response(part, part->easy);
		headers_checked(part);
		return len;
	}
	for (i = 0; i < CP_ARRAY_SIZE(response_headers); i++) {
		if (cp_http_header_value(line, len, response_headers[i].name,
					 val, sizeof(val)) >= 0) {
			response_headers[i].take(info, val);
			break;
		}
	}
	return len;
}

/* Copies up to @len body bytes to where they belong (the caller's buffer
 * of a direct part, or the block being filled, which is completed when
 * full).  Returns how many it took. */
static size_t deliver(struct cp_part *part, const char *ptr, size_t len)
{
	struct cp_block *b;
	size_t c;

	if (part->dest) {
		c = CP_MIN(len, (size_t)(part->end + 1 - part->pos));
		memcpy(part->dest + (part->pos - part->start), ptr, c);
		part->pos += c;
		if (part->pos == part->end + 1)
			part->satisfied = 1;
		return c;
	}
	b = part->blocks[part->cur];
	c = CP_MIN(len, b->want - b->filled);
	memcpy(b->data + b->filled, ptr, c);
	b->filled += c;
	part->pos += c;
	if (b->filled == b->want) {
		cp_cache_complete(part->engine->cache, b);
		if (++part->cur == part->nblocks)
			part->satisfied = 1;
	}
	return c;
}

static size_t write_cb(char *ptr, size_t size, size_t n, void *arg)
{
	struct cp_part *part = arg;
	size_t len = size * n, left = len;

	if (!part->checked) {
		check_response(part, part->easy);
		headers_checked(part);
	}
	if (part->err == CP_FETCH_EPROTO)
		return 0; /* refused: hang up, its connection is not reused */
	if (part->err) {
		/* An error answer: read a little of it, then hang up. */
		part->skip += len;
		return part->skip > MAX_ERROR_BODY ? 0 : len;
	}
	cp_stats_add(part->engine->stats, bytes_fetched, len);
	while (left) {
		size_t c;

		if (part->skip) {
			c = CP_MIN(left, (size_t)part->skip);
			part->skip -= c;
			ptr += c;
			left -= c;
			continue;
		}
		if (part->satisfied || part->pos > part->last) {
			if (part->info.status == 206) {
				part_error(part, CP_FETCH_EPROTO,
					   "body longer than the range");
				part->satisfied = 0;
			}
			return 0; /* 200: we have our bytes; stop here */
		}
		c = deliver(part, ptr,
			    CP_MIN(left, (size_t)(part->last + 1 - part->pos)));
		ptr += c;
		left -= c;
	}
	return len;
}

/* ---- the I/O threads ---- */

static CURL *easy_get(struct io_loop *loop)
{
	CURL *easy;

	if (loop->npool) {
		easy = loop->pool[--loop->npool];
		curl_easy_reset(easy);
	} else {
		easy = curl_easy_init();
	}
	return easy;
}

static void easy_put(struct io_loop *loop, CURL *easy)
{
	if (loop->npool < CP_ARRAY_SIZE(loop->pool))
		loop->pool[loop->npool++] = easy;
	else
		curl_easy_cleanup(easy);
}

/* curl errors that mean a malformed answer, not a flaky network. */
static int refused(CURLcode result)
{
	switch (result) {
	case CURLE_OUT_OF_MEMORY: /* a header beyond curl's own limit */
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_RANGE_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* How a transfer ended, from what it received and curl's @result: 0
 * or a positive errno; the blocks not complete are failed with it. */
static int settle_part(struct cp_fetch *engine, struct cp_part *part,
		       CURLcode result)
{
	int err = part->err, i;
	char u[256];

	if (part->satisfied) {
		err = 0;
	} else if (!err && result == CURLE_OK && part->checked &&
		   part->pos == part->last + 1) {
		/* A shorter 206, all of it here: the reader asks for the
		 * rest. */
		err = CP_FETCH_EPARTIAL;
	} else if (!err && refused(result)) {
		/* curl itself refused the answer (e.g. a giant header). */
		err = CP_FETCH_EPROTO;
		cp_warn("%s: response refused: %s",
			cp_log_url(part->url, u, sizeof(u)),
			curl_easy_strerror(result));
	} else if (!err) {
		/* Cut short, stalled, reset: resume after what we have. */
		err = CP_FETCH_ERETRY;
		cp_warn("%s: transfer failed at byte %lld: %s",
			cp_log_url(part->url, u, sizeof(u)),
			(long long)part->pos,
			result == CURLE_OK ? "body ended early"
					   : curl_easy_strerror(result));
	}
	if (err && err != CP_FETCH_EPARTIAL)
		cp_stats_inc(engine->stats, data_errors);
	for (i = part->cur; i < part->nblocks; i++) {
		/* Bytes of a refused answer, or of a probe that learnt no
		 * size, are not kept. */
		int keep = part->size >= 0 && part->checked &&
			   (err == CP_FETCH_ERETRY || err == CP_FETCH_EPARTIAL ||
			    err == CP_FETCH_EEXPIRED || err == ECANCELED);

		cp_cache_fail(engine->cache, part->blocks[i], err, keep,
			      part->lease_gen);
	}
	return err;
}

/* Ends @part, which @loop ran (or refused before starting it). */
static void finish_part(struct io_loop *loop, struct cp_part *part,
			CURLcode result)
{
	struct cp_fetch *engine = loop->engine;
	int err = settle_part(engine, part, result);

	if (part->easy) {
		curl_multi_remove_handle(loop->multi, part->easy);
		easy_put(loop, part->easy);
		if (part->run_prev)
			part->run_prev->run_next = part->run_next;
		else
			loop->running = part->run_next;
		if (part->run_next)
			part->run_next->run_prev = part->run_prev;
		/* Only a part that was started counted as in flight. */
		cp_stats_dec(engine->stats, transfers_in_flight);
		atomic_fetch_sub(&engine->busy, 1);
	}
	if (part->done)
		part->done(part, err, part->done_arg);
	part_free(part);
}

/* Sets up @easy to run @part, its connections shared through @share. */
static void setup_easy(struct cp_fetch *engine, struct cp_part *part,
		       CURL *easy, CURLSH *share)
{
	const struct cp_config *cfg = engine->cfg;
	char range[64];

	part->easy = easy;
	snprintf(range, sizeof(range), "%lld-%lld", (long long)part->start,
		 (long long)part->end);
	if (part->if_match[0]) {
		char h[sizeof(part->if_match) + 16];

		snprintf(h, sizeof(h), "If-Match: %s", part->if_match);
		part->headers = curl_slist_append(NULL, h);
	}
	curl_easy_setopt(easy, CURLOPT_URL, part->url);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, part);
	curl_easy_setopt(easy, CURLOPT_RANGE, range);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, part->headers);
	cp_curl_safe_defaults(easy, cfg);
	curl_easy_setopt(easy, CURLOPT_SHARE, share);
	curl_easy_setopt(easy, CURLOPT_BUFFERSIZE,
			 share == engine->share ? (long)RECV_BUFFER
						: (long)SYNC_RECV_BUFFER);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, (long)cfg->timeout);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, (long)cfg->timeout);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, part);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, part);
	if (cp_log_enabled(CP_LOG_DEBUG)) {
		char u[256];

		cp_dbg("GET %s range %s",
		       cp_log_url(part->url, u, sizeof(u)), range);
	}
	cp_stats_inc(engine->stats, data_requests);
}

static int start_part(struct io_loop *loop, struct cp_part *part)
{
	struct cp_fetch *engine = loop->engine;
	CURL *easy = easy_get(loop);

	if (!easy)
		return -ENOMEM;
	/* From here on finish_part() undoes both. */
	cp_stats_inc(engine->stats, transfers_in_flight);
	atomic_fetch_add(&engine->busy, 1);
	setup_easy(engine, part, easy, engine->share);
	preconn_setup(loop, easy);
	part->run_next = loop->running;
	if (loop->running)
		loop->running->run_prev = part;
	loop->running = part;
	if (curl_multi_add_handle(loop->multi, easy) != CURLM_OK)
		return -EIO;
	return 0;
}

static void collect_done(struct io_loop *loop)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(loop->multi, &left))) {
		struct cp_part *part = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &part);
		finish_part(loop, part, msg->data.result);
	}
}

static void *io_main(void *arg)
{
	struct io_loop *loop = arg;
	int running = 0, stop = 0;
	double next_sweep = 0;

	cp_block_termination_signals();
	pthread_setname_np(pthread_self(), "cpfs-io");
	while (!stop) {
		struct cp_part *queue, *part;

		pthread_mutex_lock(&loop->lock);
		queue = loop->queue;
		loop->queue = NULL;
		stop = loop->stop;
		pthread_mutex_unlock(&loop->lock);
		while ((part = queue)) {
			queue = part->next;
			if (stop) {
				part->err = ECANCELED;
				finish_part(loop, part, CURLE_OK);
			} else if (start_part(loop, part) < 0) {
				part->err = CP_FETCH_ERETRY;
				finish_part(loop, part, CURLE_OK);
			}
		}
		if (stop)
			break;
		curl_multi_perform(loop->multi, &running);
		collect_done(loop);
		curl_multi_poll(loop->multi, NULL, 0, 1000, NULL);
		/* The first loop closes the connections opened ahead that
		 * nobody took, though none is asked for again (it wakes at
		 * least once a second). */
		if (loop == loop->engine->loops && cp_now() >= next_sweep) {
			preconn_sweep(loop->engine);
			next_sweep = cp_now() + 1.0;
		}
	}
	/* Shutdown: fail whatever is still running. */
	while (loop->running) {
		loop->running->err = ECANCELED;
		finish_part(loop, loop->running, CURLE_OK);
	}
	return NULL;
}

/* How many I/O threads: one per online CPU, 1 to MAX_IO_THREADS. */
static unsigned io_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > MAX_IO_THREADS ? MAX_IO_THREADS : (unsigned)n;
}

static int loop_init(struct cp_fetch *engine, struct io_loop *loop)
{
	loop->engine = engine;
	loop->pre_handed = -1;
	loop->multi = curl_multi_init();
	if (!loop->multi)
		return -ENOMEM;
	pthread_mutex_init(&loop->lock, NULL);
	curl_multi_setopt(loop->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			  (long)MAX_HOST_CONNECTIONS);
	curl_multi_setopt(loop->multi, CURLMOPT_MAXCONNECTS,
			  (long)(4 * MAX_HOST_CONNECTIONS));
	return 0;
}

/* Undoes loop_init() once the loop's thread has ended (or never ran):
 * fails the parts submitted after it ended. */
static void loop_destroy(struct io_loop *loop)
{
	if (!loop->multi)
		return;
	while (loop->queue) {
		struct cp_part *part = loop->queue;

		loop->queue = part->next;
		part->err = ECANCELED;
		finish_part(loop, part, CURLE_OK);
	}
	while (loop->npool)
		curl_easy_cleanup(loop->pool[--loop->npool]);
	curl_multi_cleanup(loop->multi);
	pthread_mutex_destroy(&loop->lock);
}

static void loop_stop(struct io_loop *loop)
{
	if (!loop->multi)
		return;
	pthread_mutex_lock(&loop->lock);
	loop->stop = 1;
	pthread_mutex_unlock(&loop->lock);
	curl_multi_wakeup(loop->multi);
}

/* ---- transfers on the caller's thread ---- */

/* A share's locks: curl calls these around its own short critical
 * sections, from any thread using the share; @arg is the share's array
 * of locks, one per kind of data. */
static void share_lock(CURL *easy, curl_lock_data data,
		       curl_lock_access access, void *arg)
{
	pthread_mutex_t *locks = arg;

	pthread_mutex_lock(&locks[data]);
	(void)easy;
	(void)access;
}

static void share_unlock(CURL *easy, curl_lock_data data, void *arg)
{
	pthread_mutex_t *locks = arg;

	pthread_mutex_unlock(&locks[data]);
	(void)easy;
}

/* Makes @share lock with @locks and share DNS and TLS sessions, and
 * connections too when @connections. */
static void share_setup(CURLSH *share, pthread_mutex_t *locks,
			int connections)
{
	curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(share, CURLSHOPT_USERDATA, locks);
	curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	if (connections)
		curl_share_setopt(share, CURLSHOPT_SHARE,
				  CURL_LOCK_DATA_CONNECT);
}

/* Stalls end by the low-speed limit; this ends them at unmount. */
static int sync_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			 curl_off_t ultotal, curl_off_t ulnow)
{
	(void)arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return cp_shutting_down();
}

static CURL *sync_get(struct cp_fetch *engine)
{
	CURL *easy = NULL;

	pthread_mutex_lock(&engine->sync_lock);
	if (engine->nsync)
		easy = engine->sync_pool[--engine->nsync];
	pthread_mutex_unlock(&engine->sync_lock);
	if (easy)
		curl_easy_reset(easy);
	else
		easy = curl_easy_init();
	return easy;
}

static void sync_put(struct cp_fetch *engine, CURL *easy)
{
	pthread_mutex_lock(&engine->sync_lock);
	if (engine->nsync < CP_ARRAY_SIZE(engine->sync_pool)) {
		engine->sync_pool[engine->nsync++] = easy;
		easy = NULL;
	}
	pthread_mutex_unlock(&engine->sync_lock);
	if (easy)
		curl_easy_cleanup(easy);
}

static int conn_line(const char *line, size_t len, void *arg)
{
	return header_cb((char *)line, 1, len, arg) == len ? 0 : -1;
}

static size_t conn_body(const char *ptr, size_t len, void *arg)
{
	return write_cb((char *)ptr, 1, len, arg);
}

/*
 * Runs the direct @part over conn.c's connections (no curl transfer):
 * 0 with *@result as curl would have ended it, or 1 when conn.c
 * declined it and nothing of the part changed.
 */
static int run_conn(struct cp_fetch *engine, struct cp_part *part,
		    double deadline, CURLcode *result)
{
	struct cp_conn_get get = {
		.url = part->url,
		.start = part->start,
		.end = part->end,
		.if_match = part->if_match,
		.deadline = deadline,
		.on_line = conn_line,
		.on_body = conn_body,
		.arg = part,
	};
	int ret;

	if (!engine->conns)
		return 1;
	cp_stats_inc(engine->stats, transfers_in_flight);
	ret = cp_conns_get(engine->conns, &get);
	cp_stats_dec(engine->stats, transfers_in_flight);
	if (ret == CP_CONN_DECLINED)
		return 1;
	cp_stats_inc(engine->stats, data_requests);
	if (cp_log_enabled(CP_LOG_DEBUG)) {
		char u[256];

		cp_dbg("GET %s range %lld-%lld (kept connection)",
		       cp_log_url(part->url, u, sizeof(u)),
		       (long long)part->start, (long long)part->end);
	}
	switch (ret) {
	case 0:
		*result = CURLE_OK;
		break;
	case -ETIMEDOUT:
		*result = CURLE_OPERATION_TIMEDOUT;
		break;
	case -ECANCELED:
		*result = CURLE_ABORTED_BY_CALLBACK;
		break;
	case -EPROTO: /* a callback hung up, as with curl */
		*result = CURLE_WRITE_ERROR;
		break;
	case -EMSGSIZE: /* what header_cb says of such a head */
		part_error(part, CP_FETCH_EPROTO, "response headers too large");
		*result = CURLE_WRITE_ERROR;
		break;
	default:
		*result = CURLE_RECV_ERROR;
		break;
	}
	return 0;
}

int cp_fetch_run(struct cp_fetch *engine, struct cp_part *part,
		 double deadline, int64_t *pos, struct cp_object_info *info)
{
	double left = deadline - cp_now();
	CURLcode result;
	CURL *easy;
	int err;

	part->done = NULL;
	part->on_headers = NULL;
	if (cp_shutting_down() || left <= 0) {
		part->err = left <= 0 ? CP_FETCH_ERETRY : ECANCELED;
		result = CURLE_OK;
		easy = NULL;
	} else if (run_conn(engine, part, deadline, &result) == 0) {
		easy = NULL;
	} else if (!(easy = sync_get(engine))) {
		part->err = ENOMEM;
		result = CURLE_OK;
	} else {
		cp_stats_inc(engine->stats, transfers_in_flight);
		setup_easy(engine, part, easy, engine->sync_share);
		curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, sync_progress);
		curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
				 (long)(left * 1000) + 1);
		cp_loop_blocking();
		result = curl_easy_perform(easy);
		cp_stats_dec(engine->stats, transfers_in_flight);
	}
	err = settle_part(engine, part, result);
	if (easy)
		sync_put(engine, easy);
	if (pos)
		*pos = part->pos;
	if (info)
		*info = part->info;
	part_free(part);
	return err;
}

/* ---- public ---- */

/* Stops and joins the loops' threads, then frees what the engine holds
 * (the setup ladder's end, and cp_fetch_free()'s). */
static void engine_teardown(struct cp_fetch *engine)
{
	unsigned l;
	int i;

	for (l = 0; l < engine->nloops; l++)
		loop_stop(&engine->loops[l]);
	for (l = 0; l < engine->nloops; l++)
		if (engine->loops[l].started)
			pthread_join(engine->loops[l].thread, NULL);
	/* Parts submitted after the I/O threads ended. */
	for (l = 0; l < engine->nloops; l++)
		loop_destroy(&engine->loops[l]);
	/* No cp_fetch_run() is running: the FUSE workers are gone. */
	while (engine->nsync)
		curl_easy_cleanup(engine->sync_pool[--engine->nsync]);
	cp_conns_free(engine->conns);
	if (engine->share)
		curl_share_cleanup(engine->share);
	if (engine->sync_share)
		curl_share_cleanup(engine->sync_share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
		pthread_mutex_destroy(&engine->share_locks[i]);
		pthread_mutex_destroy(&engine->io_share_locks[i]);
	}
	while (engine->npre)
		close(engine->pre[--engine->npre].fd);
	pthread_mutex_destroy(&engine->pre_lock);
	pthread_mutex_destroy(&engine->sync_lock);
	free(engine);
}

struct cp_fetch *cp_fetch_new(const struct cp_config *cfg,
			      struct cp_cache *cache, struct cp_stats *stats)
{
	struct cp_fetch *engine = calloc(1, sizeof(*engine));
	unsigned l, nloops = io_threads();
	int i;

	if (!engine)
		return NULL;
	engine->cfg = cfg;
	engine->cache = cache;
	engine->stats = stats;
	atomic_init(&engine->next_loop, 0);
	pthread_mutex_init(&engine->sync_lock, NULL);
	pthread_mutex_init(&engine->pre_lock, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
		pthread_mutex_init(&engine->share_locks[i], NULL);
		pthread_mutex_init(&engine->io_share_locks[i], NULL);
	}
	engine->share = curl_share_init();
	engine->sync_share = curl_share_init();
	if (!engine->share || !engine->sync_share)
		goto err_out;
	for (l = 0; l < nloops; l++) {
		engine->nloops = l + 1;
		if (loop_init(engine, &engine->loops[l]) < 0)
			goto err_out;
	}
	engine->conns = cp_conns_new(cfg); /* NULL: curl does them all */
	engine->proxied = cp_proxy_configured();
	/* Shared by the threads that call cp_fetch_run(), connections too. */
	share_setup(engine->sync_share, engine->share_locks, 1);
	/* Shared by the I/O threads (not their connections: each multi
	 * keeps its own). */
	share_setup(engine->share, engine->io_share_locks, 0);
	for (l = 0; l < engine->nloops; l++) {
		struct io_loop *loop = &engine->loops[l];

		if (pthread_create(&loop->thread, NULL, io_main, loop) != 0)
			goto err_out;
		loop->started = 1;
	}
	return engine;

err_out:
	engine_teardown(engine);
	return NULL;
}

void cp_fetch_stop(struct cp_fetch *engine)
{
	unsigned l;

	for (l = 0; l < engine->nloops; l++)
		loop_stop(&engine->loops[l]);
}

void cp_fetch_free(struct cp_fetch *engine)
{
	if (engine)
		engine_teardown(engine);
}

/*
 * Parts go to the loops in turn, so the consecutive parts of one stream
 * (and the streams of several readers) are received and copied on
 * different cores at once.
 */
void cp_fetch_submit(struct cp_fetch *engine, struct cp_part *part)
{
	unsigned n = atomic_fetch_add_explicit(&engine->next_loop, 1,
					       memory_order_relaxed);
	struct io_loop *loop = &engine->loops[n % engine->nloops];
	struct cp_part **tail;

	part->next = NULL;
	pthread_mutex_lock(&loop->lock);
	if (loop->stop) {
		/* Shutting down: fail it here, the I/O thread may be gone. */
		pthread_mutex_unlock(&loop->lock);
		part->err = ECANCELED;
		finish_part(loop, part, CURLE_OK);
		return;
	}
	/* Keep submission order: earlier parts are needed sooner. */
	for (tail = &loop->queue; *tail; tail = &(*tail)->next)
		;
	*tail = part;
	pthread_mutex_unlock(&loop->lock);
	curl_multi_wakeup(loop->multi);
}

/* ---- connections opened ahead of need ---- */

/*
 * A connection costs a round trip before its first request can go out.
 * cp_fetch_preconnect() opens some while a first transfer is still
 * waiting for its answer; curl, when it wants a new connection to that
 * address, takes one of them (open_socket()) as already connected
 * (sock_opt()) instead of connecting, and from then on it is one of
 * curl's connections like any other.  No request is sent to open them.
 */

/* Whether the waiting connection @fd may still be handed to curl: not
 * refused, not closed or written to by the server (a connection nobody
 * has sent a request on has nothing to read).  Still connecting is
 * fine: curl's first send waits for it. */
static int preconn_usable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) == 0;
}

/* Takes the pool's connections older than PRECONN_TTL out into @old
 * (room for PRECONN_MAX); returns how many.  Called with pre_lock. */
static unsigned preconn_expire(struct cp_fetch *engine, double now, int *old)
{
	unsigned i = 0, n = 0;

	while (i < engine->npre) {
		if (now - engine->pre[i].born > PRECONN_TTL) {
			old[n++] = engine->pre[i].fd;
			engine->pre[i] = engine->pre[--engine->npre];
		} else {
			i++;
		}
	}
	return n;
}

static void close_all(const int *fds, unsigned n)
{
	while (n)
		close(fds[--n]);
}

/* Closes the pool's connections older than PRECONN_TTL; the first I/O
 * thread calls it about once a second, so that they do not wait for
 * the next preconn_take() or cp_fetch_preconnect() to go. */
static void preconn_sweep(struct cp_fetch *engine)
{
	int old[PRECONN_MAX];
	unsigned nold;

	pthread_mutex_lock(&engine->pre_lock);
	nold = preconn_expire(engine, cp_now(), old);
	pthread_mutex_unlock(&engine->pre_lock);
	close_all(old, nold);
}

/* A waiting connection to @addr, taken out of the pool; -1 if none.
 * I/O thread. */
static int preconn_take(struct cp_fetch *engine, const struct sockaddr *addr,
			socklen_t len)
{
	int old[PRECONN_MAX], fd = -1;
	unsigned nold, i;

	pthread_mutex_lock(&engine->pre_lock);
	nold = preconn_expire(engine, cp_now(), old);
	for (i = 0; i < engine->npre && fd < 0; i++) {
		if (engine->pre[i].len != len ||
		    memcmp(&engine->pre[i].addr, addr, len) != 0)
			continue;
		fd = engine->pre[i].fd;
		engine->pre[i] = engine->pre[--engine->npre];
		if (!preconn_usable(fd)) {
			old[nold++] = fd;
			fd = -1;
			i--;
		}
	}
	pthread_mutex_unlock(&engine->pre_lock);
	close_all(old, nold);
	return fd;
}

static curl_socket_t open_socket(void *arg, curlsocktype purpose,
				 struct curl_sockaddr *a)
{
	struct io_loop *loop = arg;
	struct cp_fetch *engine = loop->engine;
	int fd = -1;

	if (purpose == CURLSOCKTYPE_IPCXN && a->socktype == SOCK_STREAM)
		fd = preconn_take(engine, &a->addr, a->addrlen);
	loop->pre_handed = fd;
	if (fd < 0)
		fd = socket(a->family, a->socktype, a->protocol);
	if (fd >= 0)
		atomic_fetch_add(&engine->sockets, 1);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* Right after open_socket(), for the same socket. */
static int sock_opt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	struct io_loop *loop = arg;
	int handed = loop->pre_handed;

	loop->pre_handed = -1;
	(void)purpose;
	return fd == handed ? CURL_SOCKOPT_ALREADY_CONNECTED : CURL_SOCKOPT_OK;
}

static int close_socket(void *arg, curl_socket_t fd)
{
	struct cp_fetch *engine = arg;

	atomic_fetch_sub(&engine->sockets, 1);
	return close(fd);
}

static void preconn_setup(struct io_loop *loop, CURL *easy)
{
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, loop);
	curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, sock_opt);
	curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, loop);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, loop->engine);
}

/* The first address of @url's host; 0 or -1. */
static int resolve_url(const char *url, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_ADDRCONFIG };
	struct cp_url u;
	char host[256], port[12], why[128];

	if (cp_url_parse(url, &u, why, sizeof(why)) < 0 ||
	    u.host_len >= sizeof(host))
		return -1;
	memcpy(host, u.host, u.host_len);
	host[u.host_len] = '\0';
	snprintf(port, sizeof(port), "%u", u.port ? u.port
					       : (u.https ? 443u : 80u));
	return getaddrinfo(host, port, &hints, res) == 0 ? 0 : -1;
}

/* Starts connecting to @ai; the socket, or -1. */
static int preconn_open(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family,
			ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);

	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

void cp_fetch_preconnect(struct cp_fetch *engine, const char *url, int n)
{
	struct addrinfo *ai = NULL;
	int old[PRECONN_MAX], fds[PRECONN_MAX];
	unsigned nold, i;
	int want, got = 0, idle;

	/* Through a proxy curl never connects to the data host itself. */
	if (n > PRECONN_MAX)
		n = PRECONN_MAX;
	if (n <= 0 || engine->proxied)
		return;
	/* What curl holds idle (or soon will) and what waits already
	 * count; the connections are reserved before they are opened, so
	 * that readers opening files together do not each open them all. */
	idle = atomic_load(&engine->sockets) - atomic_load(&engine->busy);
	pthread_mutex_lock(&engine->pre_lock);
	nold = preconn_expire(engine, cp_now(), old);
	want = n - CP_MAX(idle, 0) - (int)(engine->npre + engine->pre_opening);
	want = CP_MIN(want, (int)(PRECONN_MAX - engine->npre -
				  engine->pre_opening));
	want = CP_MIN(want, MAX_HOST_CONNECTIONS -
				    atomic_load(&engine->sockets) -
				    (int)(engine->npre + engine->pre_opening));
	if (want > 0)
		engine->pre_opening += (unsigned)want;
	pthread_mutex_unlock(&engine->pre_lock);
	close_all(old, nold);
	if (want <= 0)
		return;
	/* Only now the name is looked up: nothing to open, no lookup. */
	if (resolve_url(url, &ai) == 0)
		for (i = 0; i < (unsigned)want; i++) {
			fds[got] = preconn_open(ai);
			if (fds[got] >= 0)
				got++;
		}
	pthread_mutex_lock(&engine->pre_lock);
	engine->pre_opening -= (unsigned)want;
	for (i = 0; i < (unsigned)got; i++) {
		struct preconn *p = &engine->pre[engine->npre++];

		p->fd = fds[i];
		p->born = cp_now();
		p->len = (socklen_t)ai->ai_addrlen;
		memcpy(&p->addr, ai->ai_addr, ai->ai_addrlen);
	}
	pthread_mutex_unlock(&engine->pre_lock);
	if (got)
		cp_dbg("opened %d connections ahead of need", got);
	if (ai)
		freeaddrinfo(ai);
}
