/*
 * conn.c - small range GETs over kept-alive connections (see conn.h).
 *
 * Owns: the pool of idle connections (pool->lock) and each connection
 * while one call uses it (no lock: one thread at a time).
 */
#include "conn.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "cfg.h"
#include "curlopt.h"
#include "http.h"
#include "loop.h"
#include "util.h"
#include "valid.h"

#define POOL_MAX 16
#define CONN_BUF CP_CONN_HEAD_MAX /* the head must fit; body passes */
#define REQUEST_MAX 8192
#define ORIGIN_MAX 512
#define URL_CACHE_MAX 2048
#define PREFIX_MAX (REQUEST_MAX - 512) /* room for range and If-Match */
#define WAIT_SLICE 0.25       /* seconds between looks at shutdown */
/* A connection idle for longer is checked before it is used again (a
 * server that times it out may have closed it, or sent a 408). */
#define IDLE_CHECK 1.0

struct conn {
	CURL *easy;                /* CONNECT_ONLY: holds the connection */
	curl_socket_t fd;
	int plain;                 /* http: blocking socket, own send/recv */
	int slow;                  /* plain: recv times out after WAIT_SLICE */
	double idle_since;         /* cp_now() when last put back */
	char origin[ORIGIN_MAX];   /* "scheme://authority" */
	/* The request line and Host of the last URL this connection was
	 * asked for (url[0] == '\0': none), up to "Range: bytes=": a
	 * random reader asks the same URL again and again. */
	char url[URL_CACHE_MAX];
	size_t prefix_len;
	char prefix[PREFIX_MAX];
	size_t have;               /* bytes in buf */
	char buf[CONN_BUF];
};

struct cp_conns {
	const struct cp_config *cfg;
	int disabled;              /* a proxy is configured: curl only */
	pthread_mutex_t lock;
	struct conn *idle[POOL_MAX]; /* protected by lock */
	unsigned nidle;              /* protected by lock */
};

/* curl reads these (http_proxy only in lower case); a proxy would need
 * a request of another form, so transfers then go through curl. */
int cp_proxy_configured(void)
{
	static const char *const names[] = {
		"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
		"ALL_PROXY",
	};
	size_t i;

	for (i = 0; i < CP_ARRAY_SIZE(names); i++) {
		const char *v = getenv(names[i]);

		if (v && *v)
			return 1;
	}
	return 0;
}

struct cp_conns *cp_conns_new(const struct cp_config *cfg)
{
	struct cp_conns *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return NULL;
	pool->cfg = cfg;
	pool->disabled = cp_proxy_configured();
	pthread_mutex_init(&pool->lock, NULL);
	return pool;
}

static void conn_close(struct conn *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->easy);
	free(c);
}

void cp_conns_free(struct cp_conns *pool)
{
	if (!pool)
		return;
	while (pool->nidle)
		conn_close(pool->idle[--pool->nidle]);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

/* An idle connection to @origin, or NULL. */
static struct conn *pool_take(struct cp_conns *pool, const char *origin)
{
	struct conn *c = NULL;
	unsigned i;

	pthread_mutex_lock(&pool->lock);
	for (i = pool->nidle; i-- > 0;) {
		if (strcmp(pool->idle[i]->origin, origin) == 0) {
			c = pool->idle[i];
			pool->idle[i] = pool->idle[--pool->nidle];
			break;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return c;
}

/* An idle connection last asked for @url (its prefix fits it), or NULL. */
static struct conn *pool_take_url(struct cp_conns *pool, const char *url)
{
	struct conn *c = NULL;
	unsigned i;

	pthread_mutex_lock(&pool->lock);
	for (i = pool->nidle; i-- > 0;) {
		if (pool->idle[i]->url[0] &&
		    strcmp(pool->idle[i]->url, url) == 0) {
			c = pool->idle[i];
			pool->idle[i] = pool->idle[--pool->nidle];
			break;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return c;
}

/*
 * Whether an idle connection may carry a request (as curl checks before
 * reusing one): not if the peer closed it, nor, over plain HTTP, if
 * bytes wait that no request asked for (a server's 408 before it
 * hangs up).  Over TLS, bytes may be a session ticket: alive.
 */
static int conn_alive(const struct conn *c)
{
	char b;
	ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK;
	return r > 0 && strncmp(c->origin, "https:", 6) == 0;
}

/* Keeps @c for the next call; the pool full, the oldest goes. */
static void pool_put(struct cp_conns *pool, struct conn *c)
{
	struct conn *old = NULL;

	c->have = 0;
	c->idle_since = cp_now();
	pthread_mutex_lock(&pool->lock);
	if (pool->nidle == POOL_MAX) {
		old = pool->idle[0];
		memmove(pool->idle, pool->idle + 1,
			(POOL_MAX - 1) * sizeof(*pool->idle));
		pool->nidle--;
	}
	pool->idle[pool->nidle++] = c;
	pthread_mutex_unlock(&pool->lock);
	conn_close(old);
}

/*
 * Over plain HTTP the socket is used directly, and blocking: a thread
 * that waits for an answer sleeps in recv(2) and wakes with the bytes,
 * where curl's non-blocking socket costs a recv that finds nothing, a
 * poll, and the recv again.  The timeouts wake it every WAIT_SLICE to
 * look at the deadline and at shutdown.  (CONNECT_ONLY hands the socket
 * to the application; curl only closes it.)  TLS stays with curl.
 *
 * Each request's first recv times out after CP_LOOP_GRACE_US instead:
 * an answer that late hands the FUSE reader role on (loop.h), and the
 * rest of the wait goes in WAIT_SLICE steps (c->slow) until the next
 * request.
 */
static int recv_timeout(curl_socket_t fd, double seconds)
{
	struct timeval tv = {
		.tv_sec = 0,
		.tv_usec = (suseconds_t)(seconds * 1e6),
	};

	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int make_blocking(curl_socket_t fd)
{
	struct timeval tv = {
		.tv_sec = 0,
		.tv_usec = (suseconds_t)(WAIT_SLICE * 1e6),
	};
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || recv_timeout(fd, CP_LOOP_GRACE_US / 1e6) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -1;
	return 0;
}

/* A new connection to @origin, opened by curl with the same checks as
 * every transfer (verified TLS, http/https only, HTTP/1.1 by ALPN).
 * NULL when it cannot be had. */
static struct conn *conn_open(struct cp_conns *pool, const char *origin,
			      double deadline)
{
	const struct cp_config *cfg = pool->cfg;
	struct conn *c = malloc(sizeof(*c));
	char url[ORIGIN_MAX + 2];
	double left = deadline - cp_now();
	curl_socket_t fd;

	if (!c || left <= 0)
		goto err_out;
	c->have = 0;
	c->url[0] = '\0';
	c->prefix_len = 0;
	snprintf(c->origin, sizeof(c->origin), "%s", origin);
	snprintf(url, sizeof(url), "%s/", origin);
	c->easy = curl_easy_init();
	if (!c->easy)
		goto err_out;
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_CONNECT_ONLY, 1L);
	cp_curl_safe_defaults(c->easy, cfg);
	curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION,
			 (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT, (long)cfg->timeout);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)(left * 1000) + 1);
	cp_loop_blocking();
	if (curl_easy_perform(c->easy) != CURLE_OK ||
	    curl_easy_getinfo(c->easy, CURLINFO_ACTIVESOCKET, &fd) !=
		    CURLE_OK ||
	    fd == CURL_SOCKET_BAD) {
		curl_easy_cleanup(c->easy);
		goto err_out;
	}
	c->fd = fd;
	c->slow = 0;
	c->plain = strncmp(origin, "https:", 6) != 0;
	if (c->plain && make_blocking(fd) < 0)
		c->plain = 0; /* curl's non-blocking way still works */
	return c;

err_out:
	free(c);
	return NULL;
}

/*
 * The parts of a GET of @url that do not change from read to read:
 * "scheme://authority" into @origin, and the request up to the range's
 * first byte into @prefix.  Returns its length, or 0 when the URL is
 * not one this module sends (then curl does).
 */
static size_t build_prefix(const char *url, char *origin, char *prefix)
{
	struct cp_url u;
	char why[128], host[ORIGIN_MAX];
	size_t hostlen;
	int n;

	if (cp_url_parse(url, &u, why, sizeof(why)) < 0)
		return 0;
	if (strchr(url, '#') || u.authority_len >= sizeof(host) ||
	    u.scheme_len + 3 + u.authority_len >= ORIGIN_MAX)
		return 0;
	/* Host as curl sends it: the port left out when it is the
	 * scheme's own. */
	hostlen = u.authority_len;
	if (u.port && u.port == (u.https ? 443u : 80u))
		hostlen = (size_t)(u.host + u.host_len + u.ipv6 - u.authority);
	memcpy(host, u.authority, hostlen);
	host[hostlen] = '\0';
	snprintf(origin, ORIGIN_MAX, "%s://%.*s", u.https ? "https" : "http",
		 (int)u.authority_len, u.authority);
	/* u.path: the path, then the query */
	n = snprintf(prefix, PREFIX_MAX,
		     "GET %s%s HTTP/1.1\r\nHost: %s\r\nRange: bytes=",
		     u.path_len ? "" : "/", u.path, host);
	if (n <= 0 || n >= PREFIX_MAX)
		return 0;
	return (size_t)n;
}

/* Appends the decimal @v (>= 0) at @p; returns the end. */
static char *put_offset(char *p, int64_t v)
{
	char d[24];
	size_t n = 0;

	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	while (n)
		*p++ = d[--n];
	return p;
}

/* The whole request of @get into @req: @prefix, the range, If-Match.
 * Its length, or 0 when it does not fit REQUEST_MAX. */
static size_t finish_request(const struct cp_conn_get *get,
			     const char *prefix, size_t prefix_len, char *req)
{
	static const char accept[] = "\r\nAccept: */*\r\n";
	size_t im = get->if_match ? strlen(get->if_match) : 0;
	char *p = req;

	/* prefix, two offsets, the fixed lines, If-Match, the end */
	if (get->start < 0 || get->end < get->start ||
	    prefix_len + 2 * 20 + sizeof(accept) + im + 16 > REQUEST_MAX)
		return 0;
	memcpy(p, prefix, prefix_len);
	p += prefix_len;
	p = put_offset(p, get->start);
	*p++ = '-';
	p = put_offset(p, get->end);
	memcpy(p, accept, sizeof(accept) - 1);
	p += sizeof(accept) - 1;
	if (im) {
		memcpy(p, "If-Match: ", 10);
		p += 10;
		memcpy(p, get->if_match, im);
		p += im;
		*p++ = '\r';
		*p++ = '\n';
	}
	*p++ = '\r';
	*p++ = '\n';
	return (size_t)(p - req);
}

/* Waits until @c's socket is ready for @events, at most until the
 * earlier of @deadline and @stall.  0, -ETIMEDOUT or -ECANCELED. */
static int wait_ready(struct conn *c, short events, double deadline,
		      double stall)
{
	cp_loop_blocking_fd(c->fd, events);
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = events };
		double now = cp_now(), until = CP_MIN(deadline, stall);
		double slice = CP_MIN(until - now, WAIT_SLICE);
		int r;

		if (cp_shutting_down())
			return -ECANCELED;
		if (slice <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(slice * 1000) + 1);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -ECONNRESET;
	}
}

/*
 * One send(2) or recv(2) (@out: send) on the blocking socket of a plain
 * connection, waking every WAIT_SLICE until it moves bytes or the
 * earlier of @deadline and @stall.  The count (0 from recv: the peer
 * closed), -ETIMEDOUT, -ECANCELED or -ECONNRESET.
 */
static ssize_t plain_io(struct conn *c, int out, char *buf, size_t len,
			double deadline, double stall)
{
	for (;;) {
		ssize_t r = out ? send(c->fd, buf, len, MSG_NOSIGNAL)
				: recv(c->fd, buf, len, 0);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -ECONNRESET;
		cp_loop_blocking();
		if (!out && !c->slow)
			c->slow = recv_timeout(c->fd, WAIT_SLICE) == 0;
		if (cp_shutting_down())
			return -ECANCELED;
		if (cp_now() >= CP_MIN(deadline, stall))
			return -ETIMEDOUT;
	}
}

static int send_all(struct conn *c, const char *req, size_t len,
		    double deadline, double timeout)
{
	size_t off = 0;

	if (c->slow)
		c->slow = recv_timeout(c->fd, CP_LOOP_GRACE_US / 1e6) < 0;
	while (off < len) {
		size_t n = 0;
		CURLcode rc;

		if (c->plain) {
			ssize_t r = plain_io(c, 1, (char *)req + off,
					     len - off, deadline,
					     cp_now() + timeout);

			if (r < 0)
				return (int)r;
			off += (size_t)r;
			continue;
		}
		rc = curl_easy_send(c->easy, req + off, len - off, &n);
		if (rc == CURLE_AGAIN) {
			int err = wait_ready(c, POLLOUT, deadline,
					     cp_now() + timeout);

			if (err < 0)
				return err;
			continue;
		}
		if (rc != CURLE_OK)
			return -ECONNRESET;
		off += n;
	}
	return 0;
}

/* Reads more into c->buf.  The count (0: the peer closed), or
 * -ETIMEDOUT, -ECANCELED, -ECONNRESET. */
static ssize_t recv_some(struct conn *c, double deadline, double timeout)
{
	double stall = cp_now() + timeout;
	size_t room = sizeof(c->buf) - c->have;

	if (c->plain) {
		/* Whatever came, as curl_easy_recv() gives it: bytes past
		 * the body are then seen (give_body()'s *extra). */
		ssize_t r = plain_io(c, 0, c->buf + c->have, room, deadline,
				     stall);

		if (r > 0)
			c->have += (size_t)r;
		return r;
	}
	for (;;) {
		size_t n = 0;
		CURLcode rc = curl_easy_recv(c->easy, c->buf + c->have, room,
					     &n);

		if (rc == CURLE_AGAIN) {
			int err = wait_ready(c, POLLIN, deadline, stall);

			if (err < 0)
				return err;
			continue;
		}
		if (rc != CURLE_OK)
			return -ECONNRESET;
		c->have += n;
		return (ssize_t)n;
	}
}

/*
 * How the answer in c->buf[0, @head) is framed: 0 with the body's
 * length in *@length (-1: no body is read, an error status) and
 * whether the connection must close after it, or CP_CONN_DECLINED.
 */
static int framing(const struct conn *c, size_t head, long status,
		   int minor, int64_t *length, int *close_after)
{
	const char *p = c->buf, *end = c->buf + head;
	char val[256];
	int has_length = 0;

	*length = -1;
	*close_after = minor == 0;
	if (status < 200)
		return CP_CONN_DECLINED; /* 1xx: another head follows */
	p = memchr(p, '\n', (size_t)(end - p)) + 1; /* the status line */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)(nl - p) + 1;
		int r;

		if (cp_http_header_value(p, len, "Transfer-Encoding", val,
					 sizeof(val)) != -1)
			return CP_CONN_DECLINED;
		r = cp_http_header_value(p, len, "Content-Length", val,
					 sizeof(val));
		if (r == -E2BIG ||
		    (r >= 0 && (has_length ||
				cp_http_parse_content_length(val, length) <
					0)))
			return CP_CONN_DECLINED;
		has_length |= r >= 0;
		r = cp_http_header_value(p, len, "Connection", val,
					 sizeof(val));
		if (r == -E2BIG || (r >= 0 && cp_http_has_token(val, "close")))
			*close_after = 1;
		p = nl + 1;
	}
	if (status >= 300) {
		/* Not read: the caller hangs up on an error answer. */
		*length = -1;
		*close_after = 1;
		return 0;
	}
	return has_length ? 0 : CP_CONN_DECLINED;
}

/* Hands the head's lines to on_line.  0 or -EPROTO. */
static int give_head(const struct cp_conn_get *get, const struct conn *c,
		     size_t head)
{
	const char *p = c->buf, *end = c->buf + head;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)(nl - p) + 1;

		if (get->on_line(p, len, get->arg) < 0)
			return -EPROTO;
		p = nl + 1;
	}
	return 0;
}

/* Hands @length body bytes to on_body: those after the head in c->buf,
 * then what comes.  0, -EPROTO (on_body stopped: hang up), -ECONNRESET
 * (closed early), -ETIMEDOUT or -ECANCELED; *@extra when more bytes
 * came than the body holds. */
static int give_body(const struct cp_conn_get *get, struct conn *c,
		     size_t head, int64_t length, double timeout, int *extra)
{
	size_t off = head;

	*extra = 0;
	while (length > 0) {
		size_t n = c->have - off;
		ssize_t got;

		if (n) {
			if ((int64_t)n > length)
				n = (size_t)length;
			if (get->on_body(c->buf + off, n, get->arg) != n)
				return -EPROTO;
			length -= (int64_t)n;
			off += n;
			continue;
		}
		c->have = off = 0;
		got = recv_some(c, get->deadline, timeout);
		if (got < 0)
			return (int)got;
		if (got == 0)
			return -ECONNRESET;
	}
	*extra = off < c->have;
	return 0;
}

/*
 * One try on @c: sends the request and reads the head.  0 with the head
 * complete in c->buf (its length in *@head, status and version parsed),
 * CP_CONN_DECLINED, -EAGAIN (the connection was closed before the
 * answer began: a stale one), -ETIMEDOUT or -ECANCELED.
 */
static int request_head(struct conn *c, const struct cp_conn_get *get,
			const char *req, size_t reqlen, double timeout,
			size_t *head, long *status, int *minor)
{
	int err = send_all(c, req, reqlen, get->deadline, timeout);

	if (err == -ECONNRESET)
		return -EAGAIN;
	if (err < 0)
		return err;
	c->have = 0;
	for (;;) {
		ssize_t got;

		*head = cp_http_head_length(c->buf, c->have);
		if (*head)
			break;
		if (c->have == sizeof(c->buf))
			return -EMSGSIZE;
		got = recv_some(c, get->deadline, timeout);
		if (got == -ECONNRESET || got == 0)
			return c->have ? CP_CONN_DECLINED : -EAGAIN;
		if (got < 0)
			return (int)got;
	}
	if (cp_http_parse_status(c->buf, *head, minor, status) < 0)
		return CP_CONN_DECLINED;
	return 0;
}

int cp_conns_get(struct cp_conns *pool, const struct cp_conn_get *get)
{
	double timeout = pool->cfg->timeout;
	char origin[ORIGIN_MAX], prefix[PREFIX_MAX], req[REQUEST_MAX];
	struct conn *c;
	size_t prefix_len, reqlen, head = 0;
	int64_t length;
	long status = 0;
	int minor = 1, err, close_after, extra = 0, fresh = 0;

	if (pool->disabled)
		return CP_CONN_DECLINED;
	c = pool_take_url(pool, get->url);
	if (c) {
		/* Asked for this URL before: its origin and prefix hold. */
		prefix_len = c->prefix_len;
		memcpy(prefix, c->prefix, prefix_len);
		memcpy(origin, c->origin, strlen(c->origin) + 1);
	} else {
		prefix_len = build_prefix(get->url, origin, prefix);
		if (!prefix_len)
			return CP_CONN_DECLINED;
		c = pool_take(pool, origin);
	}
	reqlen = finish_request(get, prefix, prefix_len, req);
	if (!reqlen) {
		conn_close(c); /* rare: an If-Match of kilobytes */
		return CP_CONN_DECLINED;
	}
	if (c && cp_now() - c->idle_since > IDLE_CHECK && !conn_alive(c)) {
		conn_close(c);
		c = NULL;
	}
	for (;;) {
		if (!c) {
			c = conn_open(pool, origin, get->deadline);
			fresh = 1;
		}
		if (!c)
			return cp_shutting_down() ? -ECANCELED
						  : CP_CONN_DECLINED;
		err = request_head(c, get, req, reqlen, timeout, &head,
				   &status, &minor);
		if (err != -EAGAIN)
			break;
		/* Closed while idle: one new connection, then curl. */
		conn_close(c);
		c = NULL;
		if (fresh)
			return CP_CONN_DECLINED;
	}
	if (strcmp(c->url, get->url) != 0) {
		size_t n = strlen(get->url);

		/* Too long to keep: no URL matches "". */
		c->url[0] = '\0';
		if (n < sizeof(c->url)) {
			memcpy(c->url, get->url, n + 1);
			memcpy(c->prefix, prefix, prefix_len);
			c->prefix_len = prefix_len;
		}
	}
	if (err == 0)
		err = framing(c, head, status, minor, &length, &close_after);
	if (err == 0)
		err = give_head(get, c, head);
	if (err == 0 && length >= 0)
		err = give_body(get, c, head, length, timeout, &extra);
	if (err == 0 && !close_after && !extra)
		pool_put(pool, c);
	else
		conn_close(c);
	return err;
}
