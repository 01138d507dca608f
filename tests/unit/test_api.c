/*
 * test_api.c - the API client: parsing of answers and error bodies, the
 * call loop's decisions on their own (api_policy.h), and
 * whole calls against a scripted HTTP server on 127.0.0.1 that lies on
 * purpose (errors, 429s, redirects, huge bodies, header floods).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api.h"
#include "api_policy.h"
#include "cfg.h"
#include "retry.h"
#include "stats.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ID "507f1f77bcf86cd799439011"
#define KEY "test-key-0123456789"

/* ---- parsing ---------------------------------------------------------- */

static int pd(const char *body, char **url, int64_t *exp, char *why)
{
	return cp_api_parse_download(body, strlen(body), url, exp, why, 160);
}

static void test_parse_download_good(void **state)
{
	char why[160], *url;
	int64_t exp;

	(void)state;
	assert_int_equal(pd("{\"data\":{\"url\":\"https://b.s3.amazonaws.com/"
			    "k?X-Amz-Signature=abc\",\"expiresIn\":300}}",
			    &url, &exp, why),
			 0);
	assert_string_equal(url,
			    "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc");
	assert_int_equal(exp, 300);
	free(url);

	/* extra fields ignored, loopback http allowed, bounds inclusive */
	assert_int_equal(pd(" {\"status\":\"ok\",\"data\":{\"expiresIn\":1,"
			    "\"url\":\"http://127.0.0.1:8/x\",\"more\":[1]}}\n",
			    &url, &exp, why),
			 0);
	assert_int_equal(exp, 1);
	free(url);
	assert_int_equal(pd("{\"data\":{\"url\":\"https://h/\",\"expiresIn\":"
			    "604800}}",
			    &url, &exp, why),
			 0);
	assert_int_equal(exp, CP_API_MAX_EXPIRES);
	free(url);
	assert_int_equal(pd("{\"data\":{\"url\":\"https://h/\",\"expiresIn\":"
			    "3.0e2}}",
			    &url, &exp, why),
			 0);
	assert_int_equal(exp, 300);
	free(url);
}

static void test_parse_download_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"not json",
		"{",
		"{\"data\":{\"url\":\"https://h/\",\"expiresIn\":300}} junk",
		"[]",
		"null",
		"{}",
		"{\"data\":null}",
		"{\"data\":[]}",
		"{\"data\":\"https://h/\"}",
		"{\"data\":{\"expiresIn\":300}}",
		"{\"data\":{\"url\":null,\"expiresIn\":300}}",
		"{\"data\":{\"url\":42,\"expiresIn\":300}}",
		"{\"data\":{\"url\":\"https://h/\"}}",
		"{\"data\":{\"url\":\"https://h/\",\"expiresIn\":\"300\"}}",
		"{\"data\":{\"url\":\"https://h/\",\"expiresIn\":null}}",
		"{\"data\":{\"url\":\"https://h/\",\"expiresIn\":0}}",
		"{\"data\":{\"url\":\"https://h/\",\"expiresIn\":-300}}",
		"{\"data\":{\"url\":\"https://h/\",\"expiresIn\":1.5}}",
		"{\"data\":{\"url\":\"https://h/\",\"expiresIn\":604801}}",
		"{\"data\":{\"url\":\"https://h/\",\"expiresIn\":1e300}}",
		"{\"data\":{\"url\":\"https://h/\",\"expiresIn\":true}}",
		"{\"data\":{\"url\":\"file:///etc/passwd\",\"expiresIn\":300}}",
		"{\"data\":{\"url\":\"ftp://h/x\",\"expiresIn\":300}}",
		"{\"data\":{\"url\":\"gopher://h/x\",\"expiresIn\":300}}",
		"{\"data\":{\"url\":\"http://h.example/x\",\"expiresIn\":300}}",
		"{\"data\":{\"url\":\"https://u:p@h/x\",\"expiresIn\":300}}",
		"{\"data\":{\"url\":\"/relative\",\"expiresIn\":300}}",
		"{\"data\":{\"url\":\"https://h/a b\",\"expiresIn\":300}}",
		"{\"url\":\"https://h/\",\"expiresIn\":300}",
	};
	char why[160], *url;
	int64_t exp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		url = (char *)"untouched";
		if (pd(bad[i], &url, &exp, why) != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
		assert_null(url);
		assert_true(why[0] != '\0');
	}
	/* the reason never carries the URL's query */
	pd("{\"data\":{\"url\":\"ftp://h/x?X-Amz-Signature=SECRET\","
	   "\"expiresIn\":300}}",
	   &url, &exp, why);
	assert_null(strstr(why, "SECRET"));
	/* not NUL-terminated: only @len bytes are read */
	assert_int_equal(cp_api_parse_download("{\"data\":{}}XXXX", 11, &url,
					       &exp, why, sizeof(why)),
			 -EPROTO);
}

static void test_parse_error(void **state)
{
	static const char body[] =
		"{\"status\":\"error\",\"type\":\"error\",\"message\":"
		"\"Not Found\",\"errors\":[{\"param\":\"fileId\",\"message\":"
		"\"no such file\",\"value\":null}],\"new\":1}";
	char msg[128], small[8];

	(void)state;
	cp_api_parse_error(body, strlen(body), msg, sizeof(msg));
	assert_string_equal(msg, "Not Found (fileId: no such file)");
	cp_api_parse_error("{\"message\":\"Unauthorized\"}", 26, msg,
			   sizeof(msg));
	assert_string_equal(msg, "Unauthorized");
	cp_api_parse_error("{\"message\":\"a\\nb\\u001b[0m\"}", 27, msg,
			   sizeof(msg));
	assert_null(strchr(msg, '\n'));
	assert_null(strchr(msg, '\x1b'));
	cp_api_parse_error("{\"errors\":[{\"message\":\"bad\"}]}", 30, msg,
			   sizeof(msg));
	assert_string_equal(msg, "(bad)");
	cp_api_parse_error("<Error>AccessDenied</Error>", 27, msg, sizeof(msg));
	assert_string_equal(msg, "");
	cp_api_parse_error("{\"message\":5,\"errors\":\"x\"}", 26, msg,
			   sizeof(msg));
	assert_string_equal(msg, "");
	cp_api_parse_error("", 0, msg, sizeof(msg));
	assert_string_equal(msg, "");
	cp_api_parse_error(NULL, 0, msg, sizeof(msg));
	assert_string_equal(msg, "");
	cp_api_parse_error(body, strlen(body), small, sizeof(small));
	assert_string_equal(small, "Not Fou");
}

static void test_status_errno(void **state)
{
	(void)state;
	assert_int_equal(cp_api_status_errno(400), ENOENT);
	assert_int_equal(cp_api_status_errno(404), ENOENT);
	assert_int_equal(cp_api_status_errno(401), EACCES);
	assert_int_equal(cp_api_status_errno(403), EACCES);
	assert_int_equal(cp_api_status_errno(429), EIO);
	assert_int_equal(cp_api_status_errno(500), EIO);
	assert_int_equal(cp_api_status_errno(418), EIO);
}

/* ---- the call loop's decisions, without a server ---------------------- */

static void test_classify(void **state)
{
	static const long redirect[] = { 301, 302, 303, 307, 308 };
	static const long retry[] = { 408, 429, 500, 502, 503, 504 };
	static const long fail[] = { 201, 204, 206, 300, 304, 400, 401,
				     403, 404, 410, 418, 501, 505 };
	size_t i;

	(void)state;
	assert_int_equal(cp_api_classify(CURLE_OK, 200), CP_API_DONE);
	for (i = 0; i < sizeof(redirect) / sizeof(redirect[0]); i++)
		assert_int_equal(cp_api_classify(CURLE_OK, redirect[i]),
				 CP_API_REDIRECT);
	for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		assert_int_equal(cp_api_classify(CURLE_OK, retry[i]),
				 CP_API_RETRY);
	for (i = 0; i < sizeof(fail) / sizeof(fail[0]); i++)
		assert_int_equal(cp_api_classify(CURLE_OK, fail[i]),
				 CP_API_FAIL);
	/* network faults: the passing ones are retried, a refused
	 * certificate or an aborted write is final */
	assert_int_equal(cp_api_classify(CURLE_COULDNT_CONNECT, 0),
			 CP_API_RETRY);
	assert_int_equal(cp_api_classify(CURLE_OPERATION_TIMEDOUT, 0),
			 CP_API_RETRY);
	assert_int_equal(cp_api_classify(CURLE_RECV_ERROR, 0), CP_API_RETRY);
	assert_int_equal(cp_api_classify(CURLE_PEER_FAILED_VERIFICATION, 0),
			 CP_API_FAIL);
	assert_int_equal(cp_api_classify(CURLE_WRITE_ERROR, 200), CP_API_FAIL);
}

static void test_redirect_policy(void **state)
{
	static const char api[] = "http://127.0.0.1:8080";
	static const char prod[] = "https://api.checkoutpage.com";

	(void)state;
	/* the API's own origin: followed, up to CP_API_MAX_REDIRECTS */
	assert_int_equal(
		cp_api_redirect_check(api, "http://127.0.0.1:8080/v2", 1), 0);
	assert_int_equal(cp_api_redirect_check(api, "HTTP://127.0.0.1:8080",
					       CP_API_MAX_REDIRECTS),
			 0);
	assert_int_equal(cp_api_redirect_check(api, "http://127.0.0.1:8080/",
					       CP_API_MAX_REDIRECTS + 1),
			 -EINVAL);
	assert_int_equal(cp_api_redirect_check(prod,
					       "https://API.checkoutpage.com"
					       ":443/v1/x?y=1",
					       1),
			 0);
	/* no Location, or one cpfs would not fetch at all */
	assert_int_equal(cp_api_redirect_check(api, NULL, 1), -EINVAL);
	assert_int_equal(cp_api_redirect_check(api, "/relative", 1), -EINVAL);
	assert_int_equal(cp_api_redirect_check(api, "file:///etc/passwd", 1),
			 -EINVAL);
	assert_int_equal(cp_api_redirect_check(prod, "http://example.com/", 1),
			 -EINVAL);
	assert_int_equal(
		cp_api_redirect_check(api, "http://u:pw@127.0.0.1:8080/", 1),
		-EINVAL);
	/* fetchable, but not the API: the key must not go there */
	assert_int_equal(cp_api_redirect_check(api, "http://localhost:8080/",
					       1),
			 -EXDEV);
	assert_int_equal(cp_api_redirect_check(api, "http://127.0.0.1:8081/",
					       1),
			 -EXDEV);
	assert_int_equal(cp_api_redirect_check(api, "https://127.0.0.1:8080/",
					       1),
			 -EXDEV);
	assert_int_equal(cp_api_redirect_check(prod,
					       "https://api.checkoutpage.com."
					       "evil.example/",
					       1),
			 -EXDEV);
	assert_int_equal(cp_api_redirect_check(prod,
					       "https://api.checkoutpage.com"
					       ":8443/",
					       1),
			 -EXDEV);
}

static void test_429_policy(void **state)
{
	struct cp_retry r;
	double w;
	int i;

	(void)state;
	/* Retry-After wins; without one: 1, 2, 4 ... s, at most 20 */
	assert_true(cp_api_429_wait(7, 3) == 7);
	assert_true(cp_api_429_wait(0, 0) == 0);
	assert_true(cp_api_429_wait(-1, 0) == 1);
	assert_true(cp_api_429_wait(-1, 1) == 2);
	assert_true(cp_api_429_wait(-1, 4) == 16);
	assert_true(cp_api_429_wait(-1, 5) == CP_MIN(32, CP_RETRY_CAP));
	assert_true(cp_api_429_wait(-1, 40) == CP_MIN(32, CP_RETRY_CAP));

	/* a 429 spends time, not attempts: two attempts allowed, ten 429s
	 * waited out */
	cp_retry_init(&r, 2, 100);
	for (i = 0; i < 10; i++)
		assert_true(cp_api_next_wait(&r, 429, 5, 100, 10 * i) == 5);
	assert_int_equal(r.attempts, 0);
	/* ... until the wait would reach the deadline */
	assert_true(cp_api_next_wait(&r, 429, 9.5, 100, 90) == 9.5);
	assert_true(cp_api_next_wait(&r, 429, 10, 100, 90) == -1);
	assert_true(cp_api_next_wait(&r, 429, 5, 100, 100) == -1);

	/* other transient failures spend attempts (a 503's Retry-After
	 * still sets the wait) */
	assert_true(cp_api_next_wait(&r, 503, 3, 100, 0) == 3);
	assert_int_equal(r.attempts, 1);
	assert_true(cp_api_next_wait(&r, 503, 3, 100, 0) == -1);
	cp_retry_init(&r, 3, 100);
	w = cp_api_next_wait(&r, 0, -1, 100, 0);
	assert_true(w >= 0 && w <= CP_RETRY_BASE);
}

/* ---- a scripted server ------------------------------------------------ */

#define MAX_SCRIPT 8

/*
 * The test thread writes the script and reads what was served; the
 * server thread does the opposite.  The socket orders them in fact, but
 * not in ThreadSanitizer's eyes: a mutex guards the script (copied, so
 * the test may reuse its buffers), and `served` is atomic, published
 * after the request it counts.
 */
struct server {
	int fd;
	unsigned short port;
	pthread_t thread;
	pthread_mutex_t lock;
	char *script[MAX_SCRIPT];      /* one answer per connection; owned */
	int nscript;                   /* protected by lock */
	_Atomic int served;
	char requests[MAX_SCRIPT][2048];
	_Atomic int stop;
	ssize_t wrote;
};

static struct server srv;

static void *serve(void *arg)
{
	struct server *s = arg;

	for (;;) {
		char buf[4096];
		size_t got = 0;
		char *answer;
		int c = accept(s->fd, NULL, NULL);
		int nth;

		if (c < 0 || s->stop) {
			if (c >= 0)
				close(c);
			return NULL;
		}
		while (got < sizeof(buf) - 1) {
			ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);

			if (n <= 0)
				break;
			got += (size_t)n;
			buf[got] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		buf[got] = '\0';
		nth = s->served;
		if (nth < MAX_SCRIPT)
			snprintf(s->requests[nth], sizeof(s->requests[0]),
				 "%.2047s", buf);
		pthread_mutex_lock(&s->lock);
		answer = strdup(nth < s->nscript
					? s->script[nth]
					: "HTTP/1.1 500 Out of script\r\n"
					  "Content-Length: 0\r\n\r\n");
		pthread_mutex_unlock(&s->lock);
		s->served = nth + 1;
		s->wrote = write(c, answer, strlen(answer));
		free(answer);
		shutdown(c, SHUT_WR);
		while (read(c, buf, sizeof(buf)) > 0)
			;
		close(c);
	}
}

static int server_start(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int one = 1;

	(void)state;
	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.lock, NULL);
	srv.fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(srv.fd, 16) ||
	    getsockname(srv.fd, (struct sockaddr *)&sa, &len))
		return -1;
	srv.port = ntohs(sa.sin_port);
	return pthread_create(&srv.thread, NULL, serve, &srv) ? -1 : 0;
}

static int server_stop(void **state)
{
	struct sockaddr_in sa;
	int c = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	srv.stop = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(srv.port);
	connect(c, (struct sockaddr *)&sa, sizeof(sa));
	close(c);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	return 0;
}

/* Everything one call needs: config, stats, client. */
struct fixture {
	struct cp_config cfg;
	struct cp_stats stats;
	struct cp_api *api;
	char url[64];
};

static void fixture_init(struct fixture *f, unsigned retries)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", srv.port);
	f->cfg.api_url = f->url;
	f->cfg.api_key = (char *)KEY;
	f->cfg.timeout = 5;
	f->cfg.api_rate = 100;
	f->cfg.retries = retries;
	f->cfg.deadline = 20;
	f->api = cp_api_new(&f->cfg, &f->stats);
	assert_non_null(f->api);
}

static void script(int n, ...)
{
	va_list ap;
	int i;

	pthread_mutex_lock(&srv.lock);
	va_start(ap, n);
	for (i = 0; i < MAX_SCRIPT; i++) {
		free(srv.script[i]);
		srv.script[i] = i < n ? strdup(va_arg(ap, const char *))
				      : NULL;
	}
	va_end(ap);
	srv.nscript = n;
	pthread_mutex_unlock(&srv.lock);
	srv.served = 0;
	memset(srv.requests, 0, sizeof(srv.requests));
}

#define OK_BODY                                                                \
	"{\"data\":{\"url\":\"https://b.s3.amazonaws.com/k?sig=1\","           \
	"\"expiresIn\":300}}"
#define OK_ANSWER                                                              \
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"                \
	"Content-Length: 69\r\nConnection: close\r\n\r\n" OK_BODY
#define ANSWER(status)                                                         \
	"HTTP/1.1 " status "\r\nContent-Type: application/json\r\n"            \
	"Connection: close\r\nContent-Length: 40\r\n\r\n"                      \
	"{\"status\":\"error\",\"message\":\"Something\"}"

static int call(struct fixture *f, char **url, int64_t *exp, double secs)
{
	return cp_api_download_url(f->api, ID, url, exp, cp_now() + secs);
}

static void test_call_ok(void **state)
{
	struct fixture f;
	char *url = NULL;
	int64_t exp = 0;

	(void)state;
	assert_int_equal(strlen(OK_BODY), 69);
	fixture_init(&f, 3);
	script(1, OK_ANSWER);
	assert_int_equal(call(&f, &url, &exp, 10), 0);
	assert_string_equal(url, "https://b.s3.amazonaws.com/k?sig=1");
	assert_int_equal(exp, 300);
	free(url);
	assert_int_equal(srv.served, 1);
	assert_non_null(strstr(srv.requests[0],
			       "GET /v1/files/" ID "/download HTTP/1.1\r\n"));
	assert_non_null(
		strstr(srv.requests[0], "Authorization: Bearer " KEY "\r\n"));
	assert_int_equal(f.stats.api_calls, 1);
	assert_int_equal(f.stats.retries, 0);

	/* a name that is not an ObjectId never reaches the network */
	assert_int_equal(
		cp_api_download_url(f.api, "../x", &url, &exp, cp_now() + 5),
		-ENOENT);
	assert_int_equal(srv.served, 1);
	cp_api_free(f.api);
}

static void test_call_final_errors(void **state)
{
	static const struct {
		const char *answer;
		int res;
	} cases[] = {
		{ ANSWER("404 Not Found"), -ENOENT },
		{ ANSWER("400 Bad Request"), -ENOENT },
		{ ANSWER("401 Unauthorized"), -EACCES },
		{ ANSWER("403 Forbidden"), -EACCES },
		{ ANSWER("418 Teapot"), -EIO },
		{ ANSWER("204 No Content"), -EIO },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"data\":1",
		  -EIO },
	};
	struct fixture f;
	char *url = NULL;
	int64_t exp;
	size_t i;

	(void)state;
	fixture_init(&f, 3);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		script(1, cases[i].answer);
		if (call(&f, &url, &exp, 10) != cases[i].res)
			fail_msg("case %zu", i);
		assert_null(url);
		assert_int_equal(srv.served, 1); /* never retried */
	}
	assert_int_equal(f.stats.retries, 0);
	cp_api_free(f.api);
}

static void test_call_retries(void **state)
{
	struct fixture f;
	char *url = NULL;
	int64_t exp;
	double t0;

	(void)state;
	fixture_init(&f, 3);
	script(2, ANSWER("500 Internal Server Error"), OK_ANSWER);
	assert_int_equal(call(&f, &url, &exp, 10), 0);
	free(url);
	assert_int_equal(srv.served, 2);
	assert_int_equal(f.stats.retries, 1);
	assert_int_equal(f.stats.api_calls, 2);
	assert_int_equal(f.stats.api_errors, 1);

	/* attempts are bounded */
	script(4, ANSWER("503 Slow Down"), ANSWER("502 Bad Gateway"),
	       ANSWER("504 Gateway Timeout"), OK_ANSWER);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	assert_int_equal(srv.served, 3);

	/* 429 with Retry-After: waits that long, then succeeds */
	script(2,
	       "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
	       "Content-Length: 0\r\n\r\n",
	       OK_ANSWER);
	t0 = cp_now();
	assert_int_equal(call(&f, &url, &exp, 10), 0);
	free(url);
	assert_true(cp_now() - t0 >= 0.95);
	assert_int_equal(f.stats.api_429, 1);

	/* Retry-After beyond the deadline: give up at once */
	script(2,
	       "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\n"
	       "Content-Length: 0\r\n\r\n",
	       OK_ANSWER);
	t0 = cp_now();
	assert_int_equal(call(&f, &url, &exp, 3), -EIO);
	assert_true(cp_now() - t0 < 1);
	assert_int_equal(srv.served, 1);
	cp_api_free(f.api);
}

static void test_call_redirects(void **state)
{
	struct fixture f;
	char *url = NULL, other[256];
	int64_t exp;

	(void)state;
	fixture_init(&f, 3);
	/* same origin, relative Location: followed, key sent again */
	script(2,
	       "HTTP/1.1 307 Temporary Redirect\r\nLocation: /v2/elsewhere\r\n"
	       "Content-Length: 0\r\n\r\n",
	       OK_ANSWER);
	assert_int_equal(call(&f, &url, &exp, 10), 0);
	free(url);
	assert_int_equal(srv.served, 2);
	assert_non_null(strstr(srv.requests[1], "GET /v2/elsewhere "));
	assert_non_null(strstr(srv.requests[1], "Authorization: Bearer"));

	/* another host (even the same machine): refused, nothing sent */
	snprintf(other, sizeof(other),
		 "HTTP/1.1 302 Found\r\nLocation: http://localhost:%u/x\r\n"
		 "Content-Length: 0\r\n\r\n",
		 srv.port);
	script(2, other, OK_ANSWER);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	assert_int_equal(srv.served, 1);
	snprintf(other, sizeof(other),
		 "HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:%u/x\r\n"
		 "Content-Length: 0\r\n\r\n",
		 srv.port == 65535 ? 1 : srv.port + 1);
	script(2, other, OK_ANSWER);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	assert_int_equal(srv.served, 1);
	script(2,
	       "HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1/x\r\n"
	       "Content-Length: 0\r\n\r\n",
	       OK_ANSWER);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	assert_int_equal(srv.served, 1);
	script(2,
	       "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\n"
	       "Content-Length: 0\r\n\r\n",
	       OK_ANSWER);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	assert_int_equal(srv.served, 1);

	/* at most 3 redirects */
#define LOOP                                                                   \
	"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"
	script(5, LOOP, LOOP, LOOP, LOOP, OK_ANSWER);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	assert_int_equal(srv.served, 4);
	cp_api_free(f.api);
}

static char *big_body_answer(size_t n)
{
	char *a = malloc(n + 128);
	int off;

	if (!a)
		abort();
	off = sprintf(a, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);

	memset(a + off, ' ', n);
	a[off + (int)n] = '\0';
	return a;
}

static char *header_flood_answer(int count, size_t linelen)
{
	char *a = malloc((size_t)count * (linelen + 16) + 128);
	int i, off;

	if (!a)
		abort();
	off = sprintf(a, "HTTP/1.1 200 OK\r\n");

	for (i = 0; i < count; i++) {
		off += sprintf(a + off, "X-%d: ", i);
		memset(a + off, 'a', linelen);
		off += (int)linelen;
		off += sprintf(a + off, "\r\n");
	}
	sprintf(a + off, "Content-Length: 69\r\n\r\n" OK_BODY);
	return a;
}

static void test_call_hostile(void **state)
{
	struct fixture f;
	char *url = NULL, *big, *flood, *longline;
	int64_t exp;

	(void)state;
	fixture_init(&f, 3);
	big = big_body_answer(CP_API_MAX_BODY + 1000);
	flood = header_flood_answer(150, 4);
	longline = header_flood_answer(1, 9000);
	script(1, big);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	assert_int_equal(srv.served, 1);
	script(1, flood);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	assert_int_equal(srv.served, 1);
	script(1, longline);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	assert_int_equal(srv.served, 1);
	assert_null(url);
	free(big);
	free(flood);
	free(longline);

	/* a body just under the cap is fine (then refused as non-JSON) */
	big = big_body_answer(CP_API_MAX_BODY - 1);
	script(1, big);
	assert_int_equal(call(&f, &url, &exp, 10), -EIO);
	free(big);
	cp_api_free(f.api);
}

static void test_check_key(void **state)
{
	struct fixture f;
	char why[256];
	FILE *tmp;
	char log[4096];
	int saved;
	size_t n;

	(void)state;
	fixture_init(&f, 3);
	script(1, ANSWER("404 Not Found"));
	assert_int_equal(cp_api_check_key(f.api, why, sizeof(why)), 0);
	assert_non_null(strstr(srv.requests[0],
			       "/v1/files/000000000000000000000000/download"));

	tmp = tmpfile();
	saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	script(1, ANSWER("401 Unauthorized"));
	assert_int_equal(cp_api_check_key(f.api, why, sizeof(why)), -EACCES);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(log, 1, sizeof(log) - 1, tmp);
	log[n] = '\0';
	fclose(tmp);
	assert_non_null(strstr(why, "invalid API key"));
	assert_non_null(strstr(why, "Something"));
	/* said once, by the caller, from @why: the log stays quiet */
	assert_non_null(strstr(why, "401"));
	assert_null(strstr(log, "401"));
	assert_null(strstr(log, KEY));
	assert_null(strstr(why, KEY));
	cp_api_free(f.api);

	/* nobody listening: -EIO */
	fixture_init(&f, 2);
	snprintf(f.url, sizeof(f.url), "http://127.0.0.1:1");
	f.cfg.deadline = 5;
	assert_int_equal(cp_api_check_key(f.api, why, sizeof(why)), -EIO);
	assert_true(why[0] != '\0');
	assert_int_equal(f.stats.api_calls, 2);
	assert_int_equal(f.stats.retries, 1);
	cp_api_free(f.api);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_download_good),
		cmocka_unit_test(test_parse_download_bad),
		cmocka_unit_test(test_parse_error),
		cmocka_unit_test(test_status_errno),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_redirect_policy),
		cmocka_unit_test(test_429_policy),
		cmocka_unit_test(test_call_ok),
		cmocka_unit_test(test_call_final_errors),
		cmocka_unit_test(test_call_retries),
		cmocka_unit_test(test_call_redirects),
		cmocka_unit_test(test_call_hostile),
		cmocka_unit_test(test_check_key),
	};

	return cmocka_run_group_tests(tests, server_start, server_stop);
}
