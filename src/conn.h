/*
 * conn.h - small range GETs over kept-alive connections, without curl's
 * per-transfer machinery.
 *
 * A random read costs one range GET of a few KiB.  Run through
 * curl_easy_perform() it costs more CPU in curl (option and URL
 * handling, the request built anew, several poll(2)s for one answer)
 * than in the kernel; this module sends such a GET itself: curl opens
 * the connection (CURLOPT_CONNECT_ONLY: DNS, TCP, TLS with its
 * certificate checks) and, over TLS, carries the bytes
 * (curl_easy_send/recv); over plain HTTP the socket is made blocking
 * and used directly, so a worker sleeps in recv(2) until the answer
 * comes instead of a recv that finds nothing and a poll.  The request
 * and the framing of the answer (status line, head, Content-Length)
 * are done here, with the pure parsers of http.h.  Each connection
 * keeps the request line and Host it built for the last URL it was
 * asked for (a copy, keyed by the URL's whole text), so a random
 * reader's next GET of the same URL only formats its range.
 *
 * It reads what it can frame safely and declines the rest before it
 * hands a single byte to the caller, who then runs the transfer through
 * curl as before: a proxy in the environment, a URL with userinfo or a
 * fragment, a 1xx, a body without a Content-Length, or a chunked one.
 * A head larger than CP_CONN_HEAD_MAX is refused (-EMSGSIZE), as
 * fetch.c's header callback refuses one from curl, so both paths take
 * the same answers and a refused one costs one request.  A connection
 * that was idle and turns out to be closed is replaced once.
 *
 * Thread safety: cp_conns_get() may be called from any thread; each
 * call uses a connection of its own, taken from (and given back to) a
 * pool of idle ones under a leaf lock never held across I/O.
 */
#ifndef CP_CONN_H
#define CP_CONN_H

#include <stddef.h>
#include <stdint.h>

struct cp_config;
struct cp_conns;

/* Whether the environment names a proxy for curl (then this module
 * declines every GET, and nothing may connect to a data host directly). */
int cp_proxy_configured(void);

/* @cfg must outlive the pool.  NULL on ENOMEM. */
struct cp_conns *cp_conns_new(const struct cp_config *cfg);

/* Closes the idle connections.  No call may be running. */
void cp_conns_free(struct cp_conns *pool);

struct cp_conn_get {
	const char *url;      /* http(s) */
	int64_t start, end;   /* bytes asked, inclusive */
	const char *if_match; /* sent as If-Match unless NULL or "" */
	double deadline;      /* cp_now() scale */
	/* Each line of the response head, the status line first and the
	 * empty line last, line end included (as curl's
	 * CURLOPT_HEADERFUNCTION gets them).  Returns 0 to go on, -1 to
	 * hang up. */
	int (*on_line)(const char *line, size_t len, void *arg);
	/* Body bytes; returns how many it took (fewer: hang up). */
	size_t (*on_body)(const char *ptr, size_t len, void *arg);
	void *arg;
};

/* Bytes of response head (status line and header lines) any data
 * transfer accepts; more is a refused answer. */
#define CP_CONN_HEAD_MAX (32 * 1024)

/* cp_conns_get(): nothing was handed over; run the transfer with curl. */
#define CP_CONN_DECLINED 1

/*
 * Runs @get.  0 when the head was handed over and the body (for a 2xx)
 * read whole or until on_body stopped; the callbacks' own state says
 * whether the answer is good.  CP_CONN_DECLINED (see above).  At any
 * point: -ETIMEDOUT (no byte for the configured timeout, or the
 * deadline passed) or -ECANCELED (shutdown), -EMSGSIZE (the head is
 * larger than CP_CONN_HEAD_MAX; nothing handed over).  Once lines were handed
 * over: -ECONNRESET (the connection broke or closed early), -EPROTO
 * (on_line hung up).
 */
int cp_conns_get(struct cp_conns *pool, const struct cp_conn_get *get);

#endif
