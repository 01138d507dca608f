/*
 * api.c - the Checkout Page API client: GET {api}/v1/files/{id}/download.
 *
 * Owns a curl share handle (DNS cache, TLS sessions and idle connections,
 * each kind behind its own mutex) and the rate limiter; both are shared
 * by every thread that calls the API.  Each call runs on the caller's
 * thread with its own easy handle and blocks until it has an answer, a
 * final error, or its deadline.  Redirects are followed by hand, and only
 * to the API's own scheme, host and port: the Authorization header must
 * never reach anyone else.  The call loop (api_call) only sequences; what
 * an answer means, whether a redirect is followed and how long to wait
 * are decided by the pure functions of api_policy.h.
 */
#include "api.h"
#include "api_policy.h"

#include "cfg.h"
#include "curlopt.h"
#include "config.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "ratelimit.h"
#include "retry.h"
#include "stats.h"
#include "util.h"
#include "valid.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RATE_WINDOW 60.5 /* seconds: a minute plus clock skew */
#define MAX_HEADERS 100
#define MAX_HEADER_LINE 8192
#define CHECK_KEY_ATTEMPTS 3
#define CHECK_KEY_ID "000000000000000000000000"

struct cp_api {
	const struct cp_config *cfg;
	struct cp_stats *stats;
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	struct cp_ratelimit rl;
};

/* One HTTP exchange's answer; lives on the calling thread's stack. */
struct response {
	char *body; /* max + 1 bytes */
	size_t len;
	size_t max; /* bodies longer than this are refused */
	int too_big;
	int bad_headers;
	unsigned nheaders;
	double retry_after; /* seconds, -1 when absent */
};

static void share_lock(CURL *handle, curl_lock_data data,
		       curl_lock_access access, void *userptr)
{
	struct cp_api *api = userptr;

	(void)handle;
	(void)access;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&api->locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userptr)
{
	struct cp_api *api = userptr;

	(void)handle;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&api->locks[data]);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct response *r = userdata;
	size_t n = size * nmemb;

	if (n > r->max - r->len) {
		r->too_big = 1;
		return 0; /* aborts the transfer */
	}
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct response *r = userdata;
	size_t n = size * nitems;
	char val[64];
	double secs;

	if (n > MAX_HEADER_LINE || ++r->nheaders > MAX_HEADERS) {
		r->bad_headers = 1;
		return 0;
	}
	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		r->retry_after = -1; /* a new (possibly final) response */
		return n;
	}
	if (cp_http_header_value(buf, n, "Retry-After", val, sizeof(val)) >=
		    0 &&
	    cp_http_parse_retry_after(val, time(NULL), &secs) == 0)
		r->retry_after = secs;
	return n;
}

struct cp_api *cp_api_new(const struct cp_config *cfg, struct cp_stats *stats)
{
	struct cp_api *api;
	int i;

	api = calloc(1, sizeof(*api));
	if (!api)
		return NULL;
	api->cfg = cfg;
	api->stats = stats;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto err_out1;
	if (cp_ratelimit_init(&api->rl, cfg->api_rate ? cfg->api_rate : 1,
			      RATE_WINDOW))
		goto err_out2;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&api->locks[i], NULL);
	api->share = curl_share_init();
	if (!api->share)
		goto err_out3;
	if (curl_share_setopt(api->share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(api->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(api->share, CURLSHOPT_USERDATA, api) ||
	    curl_share_setopt(api->share, CURLSHOPT_SHARE,
			      CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(api->share, CURLSHOPT_SHARE,
			      CURL_LOCK_DATA_SSL_SESSION))
		goto err_out4;
	/* Connection sharing is an optimisation; older curls lack it. */
	curl_share_setopt(api->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	return api;

err_out4:
	curl_share_cleanup(api->share);
err_out3:
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&api->locks[i]);
	cp_ratelimit_destroy(&api->rl);
err_out2:
	curl_global_cleanup();
err_out1:
	free(api);
	return NULL;
}

void cp_api_free(struct cp_api *api)
{
	int i;

	if (!api)
		return;
	curl_share_cleanup(api->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&api->locks[i]);
	cp_ratelimit_destroy(&api->rl);
	curl_global_cleanup();
	free(api);
}


/* Copies @s into @out as one printable line. */
static void printable(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	if (!outlen)
		return;
	for (; s && *s && o + 1 < outlen; s++) {
		unsigned char c = (unsigned char)*s;

		out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	out[o] = '\0';
}

int cp_api_parse_download(const char *body, size_t len, char **url,
			  int64_t *expires_in, char *why, size_t whylen)
{
	const cJSON *data, *u, *e;
	char reason[128];
	cJSON *root;
	double v;
	int res = -EPROTO;

	*url = NULL;
	if (!body || !len) {
		snprintf(why, whylen, "empty answer");
		return -EPROTO;
	}
	root = cp_json_parse_exact(body, len);
	if (!root) {
		snprintf(why, whylen, "answer is not valid JSON");
		return -EPROTO;
	}
	data = cJSON_IsObject(root)
		       ? cJSON_GetObjectItemCaseSensitive(root, "data")
		       : NULL;
	if (!cJSON_IsObject(data)) {
		snprintf(why, whylen, "answer has no \"data\" object");
		goto out;
	}
	u = cJSON_GetObjectItemCaseSensitive(data, "url");
	if (!cJSON_IsString(u) || !u->valuestring) {
		snprintf(why, whylen, "data.url is missing or not a string");
		goto out;
	}
	if (cp_url_check(u->valuestring, reason, sizeof(reason))) {
		snprintf(why, whylen, "data.url refused: %s", reason);
		goto out;
	}
	e = cJSON_GetObjectItemCaseSensitive(data, "expiresIn");
	if (!cJSON_IsNumber(e)) {
		snprintf(why, whylen,
			 "data.expiresIn is missing or not a number");
		goto out;
	}
	v = e->valuedouble;
	if (!(v >= 1 && v <= CP_API_MAX_EXPIRES) || v != floor(v)) {
		snprintf(why, whylen,
			 "data.expiresIn is not a whole number of seconds "
			 "from 1 to %d",
			 CP_API_MAX_EXPIRES);
		goto out;
	}
	*url = strdup(u->valuestring);
	if (!*url) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	*expires_in = (int64_t)v;
	if (whylen)
		why[0] = '\0';
	res = 0;
out:
	cJSON_Delete(root);
	return res;
}

void cp_api_parse_error(const char *body, size_t len, char *msg, size_t msglen)
{
	const cJSON *m, *errs, *first, *fm, *fp;
	char text[512];
	cJSON *root;

	if (!msglen)
		return;
	msg[0] = '\0';
	if (!body || !len)
		return;
	root = cp_json_parse_exact(body, len);
	if (!root)
		return;
	if (!cJSON_IsObject(root))
		goto out;
	text[0] = '\0';
	m = cJSON_GetObjectItemCaseSensitive(root, "message");
	if (cJSON_IsString(m) && m->valuestring)
		snprintf(text, sizeof(text), "%s", m->valuestring);
	errs = cJSON_GetObjectItemCaseSensitive(root, "errors");
	first = cJSON_IsArray(errs) ? cJSON_GetArrayItem(errs, 0) : NULL;
	if (cJSON_IsObject(first)) {
		size_t n = strlen(text);

		fm = cJSON_GetObjectItemCaseSensitive(first, "message");
		fp = cJSON_GetObjectItemCaseSensitive(first, "param");
		if (cJSON_IsString(fm) && fm->valuestring) {
			if (cJSON_IsString(fp) && fp->valuestring)
				snprintf(text + n, sizeof(text) - n,
					 "%s(%s: %s)", n ? " " : "",
					 fp->valuestring, fm->valuestring);
			else
				snprintf(text + n, sizeof(text) - n, "%s(%s)",
					 n ? " " : "", fm->valuestring);
		}
	}
	printable(text, msg, msglen);
out:
	cJSON_Delete(root);
}

int cp_api_status_errno(long status)
{
	switch (status) {
	case 400:
	case 404:
		return ENOENT;
	case 401:
	case 403:
		return EACCES;
	default:
		return EIO;
	}
}

/* Network faults worth another attempt. */
static int curl_transient(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

static int abort_on_shutdown(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			     curl_off_t ultotal, curl_off_t ulnow)
{
	return cp_shutting_down();
}

/*
 * Sends one GET to @url.  Fills @resp, *@status (0 without an answer)
 * and *@location (malloc'd absolute redirect target, or NULL).
 */
static CURLcode one_request(struct cp_api *api, const char *url,
			    struct curl_slist *headers, double deadline,
			    struct response *resp, long *status,
			    char **location, char *errbuf)
{
	const struct cp_config *cfg = api->cfg;
	double left = deadline - cp_now();
	long timeout = cfg->timeout ? cfg->timeout : CP_DEFAULT_TIMEOUT;
	long left_ms;
	char *loc = NULL;
	CURLcode cc;
	CURL *curl;

	*status = 0;
	*location = NULL;
	errbuf[0] = '\0';
	curl = curl_easy_init();
	if (!curl)
		return CURLE_OUT_OF_MEMORY;
	left_ms = left > 0.001 ? (long)(left * 1000) : 1;

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_SHARE, api->share);
	cp_curl_safe_defaults(curl, cfg);
	/* Unmounting must not wait for a stalled API server. */
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_on_shutdown);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
			 CP_MIN(timeout * 1000, left_ms));
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, left_ms);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, timeout);
	curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "cpfs/" CP_VERSION);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);

	cp_loop_blocking();
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
		if (*status >= 300 && *status < 400 &&
		    curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &loc) ==
			    CURLE_OK &&
		    loc)
			*location = strdup(loc);
	}
	curl_easy_cleanup(curl);
	return cc;
}

static int is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 ||
	       status == 307 || status == 308;
}

/* ---- the call loop's decisions (api_policy.h) ---- */

enum cp_api_verdict cp_api_classify(CURLcode cc, long status)
{
	if (cc != CURLE_OK)
		return curl_transient(cc) ? CP_API_RETRY : CP_API_FAIL;
	if (status == 200)
		return CP_API_DONE;
	if (is_redirect(status))
		return CP_API_REDIRECT;
	if (cp_retry_status_transient(status))
		return CP_API_RETRY;
	return CP_API_FAIL;
}

int cp_api_redirect_check(const char *api_url, const char *location,
			  unsigned hops)
{
	if (!location || hops > CP_API_MAX_REDIRECTS ||
	    cp_url_check(location, NULL, 0))
		return -EINVAL;
	if (!cp_url_same_origin(api_url, location))
		return -EXDEV;
	return 0;
}

double cp_api_429_wait(double retry_after, unsigned n429)
{
	if (retry_after >= 0)
		return retry_after;
	/* back off harder than for a fault */
	return CP_MIN(CP_RETRY_CAP, (double)(1u << CP_MIN(n429, 5u)));
}

double cp_api_next_wait(struct cp_retry *retry, long status,
			double retry_after, double deadline, double now)
{
	if (status != 429)
		return cp_retry_next(retry, retry_after, now);
	return now + retry_after >= deadline ? -1 : retry_after;
}

/* "Authorization: Bearer <key>" in a list of its own, to wipe later. */
static struct curl_slist *auth_headers(const char *key)
{
	struct curl_slist *list = NULL, *tmp;
	size_t n = strlen(key) + sizeof("Authorization: Bearer ");
	char *line = malloc(n);

	if (!line)
		return NULL;
	snprintf(line, n, "Authorization: Bearer %s", key);
	list = curl_slist_append(NULL, line);
	explicit_bzero(line, n);
	free(line);
	if (!list)
		return NULL;
	tmp = curl_slist_append(list, "Accept: application/json");
	if (!tmp) {
		explicit_bzero(list->data, strlen(list->data));
		curl_slist_free_all(list);
		return NULL;
	}
	return tmp;
}

static void free_headers(struct curl_slist *list)
{
	struct curl_slist *p;

	for (p = list; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(list);
}

/* One API call as its callers describe it. */
struct call {
	const char *path;     /* "/v1/..." with its query */
	const char *what;     /* for messages: "file <id>", "GET /v1/..." */
	unsigned attempts;
	double deadline;
	size_t max_body;
	int quiet_missing;    /* 400/404 only in the debug log */
	int low;              /* discovery's lane of the rate limit */
};

/* Waits for a start slot in @c's lane: 0, or -1 past the deadline. */
static int wait_turn(struct cp_api *api, const struct call *c)
{
	unsigned keep_free = api->rl.limit / 4;

	for (;;) {
		double now = cp_now(), wait;

		if (c->low)
			wait = cp_ratelimit_try_low(&api->rl, now, keep_free);
		else
			wait = cp_ratelimit_reserve(&api->rl, now);
		if (now + wait >= c->deadline)
			return -1;
		if (!c->low || wait <= 0) {
			cp_sleep(wait);
			return 0;
		}
		cp_sleep(wait);
		if (cp_shutting_down())
			return 0;
	}
}

/* One try of @c: @resp emptied, the call counted, sent and logged. */
static CURLcode send_once(struct cp_api *api, const struct call *c,
			  const char *url, struct curl_slist *headers,
			  struct response *resp, long *status, char **loc,
			  char *errbuf)
{
	char logurl[256];
	CURLcode cc;

	resp->len = 0;
	resp->body[0] = '\0';
	resp->too_big = 0;
	resp->bad_headers = 0;
	resp->nheaders = 0;
	resp->retry_after = -1;
	cp_stats_inc(api->stats, api_calls);
	cc = one_request(api, url, headers, c->deadline, resp, status, loc,
			 errbuf);
	cp_dbg("API: GET %s -> %ld (%s)",
	       cp_log_url(url, logurl, sizeof(logurl)), *status,
	       curl_easy_strerror(cc));
	return cc;
}

/*
 * What the answer in @resp (the exchange ended with @cc and HTTP
 * @status) means for the call @c.  Says why in @why, and in the log
 * when it is final; counts API errors and 429s.  On CP_API_FAIL, *@err
 * is the call's result.
 */
static enum cp_api_verdict judge(struct cp_api *api, const struct call *c,
				 CURLcode cc, const char *errbuf, long status,
				 const struct response *resp, int *err,
				 char *why, size_t whylen)
{
	enum cp_api_verdict v = cp_api_classify(cc, status);
	char msg[200], reason[160];
	const char *what = c->what;
	int e;

	*err = -EIO;
	if (resp->too_big) {
		snprintf(why, whylen, "answer for %s is larger than %zu bytes",
			 what, c->max_body);
		cp_warn("API: %s", why);
		return CP_API_FAIL;
	}
	if (resp->bad_headers) {
		snprintf(why, whylen,
			 "answer for %s has too many or too long header lines",
			 what);
		cp_warn("API: %s", why);
		return CP_API_FAIL;
	}
	if (cc != CURLE_OK) {
		snprintf(reason, sizeof(reason), "%.*s",
			 (int)sizeof(reason) - 1,
			 errbuf[0] ? errbuf : curl_easy_strerror(cc));
		printable(reason, reason, sizeof(reason));
		snprintf(why, whylen, "cannot reach the API (%s): %s", what,
			 reason);
		if (v == CP_API_FAIL)
			cp_warn("API: %s", why);
		return v;
	}
	if (v == CP_API_DONE || v == CP_API_REDIRECT)
		return v;
	if (status == 429)
		cp_stats_inc(api->stats, api_429);
	else
		cp_stats_inc(api->stats, api_errors);
	cp_api_parse_error(resp->body, resp->len, msg, sizeof(msg));
	snprintf(why, whylen, "HTTP %ld for %s%s%s", status, what,
		 msg[0] ? ": " : "", msg);
	if (v == CP_API_RETRY)
		return v;
	e = status >= 200 && status < 300 ? EIO : cp_api_status_errno(status);
	if (c->quiet_missing) /* the key check says it once */
		cp_dbg("API: %s", why);
	else if (e == ENOENT)
		cp_info("API: %s", why);
	else
		cp_warn("API: %s", why);
	*err = -e;
	return v;
}

/* Whether to follow the redirect of a @status answer to @loc, the
 * @hops-th of call @c: 0, or -EIO with the reason in @why and the log. */
static int check_redirect(struct cp_api *api, const struct call *c,
			  long status, const char *loc, unsigned hops,
			  char *why, size_t whylen)
{
	char logurl[256];
	int res = cp_api_redirect_check(api->cfg->api_url, loc, hops);

	if (res == 0)
		return 0;
	cp_stats_inc(api->stats, api_errors);
	if (res == -EXDEV) {
		snprintf(why, whylen,
			 "API redirected to another host; not following");
		cp_warn("%s (%s)", why,
			cp_log_url(loc, logurl, sizeof(logurl)));
	} else {
		snprintf(why, whylen,
			 "HTTP %ld for %s: bad redirect or too many redirects",
			 status, c->what);
		cp_warn("API: %s", why);
	}
	return -EIO;
}

/*
 * The wait before trying call @c again after a transient failure with
 * HTTP @status, or -1 (said in the log, after @why) to give up.  A 429
 * holds back every caller: the rate limiter pauses as long.  @n429
 * counts this call's 429s.
 */
static double retry_wait(struct cp_api *api, const struct call *c,
			 struct cp_retry *retry, long status,
			 double retry_after, unsigned *n429, const char *why)
{
	double wait;

	if (status == 429) {
		retry_after = cp_api_429_wait(retry_after, (*n429)++);
		cp_ratelimit_pause(&api->rl, cp_now() + retry_after);
	}
	wait = cp_api_next_wait(retry, status, retry_after, c->deadline,
				cp_now());
	if (wait < 0 && status == 429)
		cp_warn("API: %s; rate limited past the deadline", why);
	else if (wait < 0)
		cp_warn("API: %s; giving up after %u attempt%s", why,
			retry->attempts, retry->attempts == 1 ? "" : "s");
	return wait;
}

/*
 * The whole call @c: rate limit, retries, redirects.  0 on a 200 with
 * its body in @resp, or -errno with a one-line reason in @why: -ENOENT
 * (400/404), -EACCES (401/403), -EAGAIN (429, 5xx or network faults
 * until the attempts or the deadline ran out), -EIO (anything else).
 * *@status is the last HTTP status seen (0: none).
 */
static int api_call(struct cp_api *api, const struct call *c,
		    struct response *resp_out, long *status, char *why,
		    size_t whylen)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers;
	struct response resp;
	struct cp_retry retry;
	char *req_url = NULL, *loc = NULL;
	unsigned hops = 0, n429 = 0;
	double wait;
	CURLcode cc;
	int res = -EIO;

	*status = 0;
	snprintf(why, whylen, "internal error");
	memset(&resp, 0, sizeof(resp));
	resp.max = c->max_body;
	resp.body = malloc(c->max_body + 1);
	headers = auth_headers(api->cfg->api_key ? api->cfg->api_key : "");
	if (!resp.body || !headers ||
	    asprintf(&req_url, "%s%s", api->cfg->api_url, c->path) < 0) {
		req_url = NULL;
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	cp_retry_init(&retry, c->attempts, c->deadline);
	for (;;) {
		if (wait_turn(api, c) < 0) {
			snprintf(why, whylen,
				 "deadline reached waiting for the rate limit "
				 "(%s)",
				 c->what);
			cp_warn("API: %s", why);
			res = -EAGAIN;
			goto out;
		}
		if (cp_shutting_down()) {
			snprintf(why, whylen, "shutting down");
			goto out;
		}
		res = -EIO;
		cc = send_once(api, c, req_url, headers, &resp, status, &loc,
			       errbuf);
		switch (judge(api, c, cc, errbuf, *status, &resp, &res, why,
			      whylen)) {
		case CP_API_DONE:
			*resp_out = resp;
			resp.body = NULL;
			res = 0;
			goto out;
		case CP_API_FAIL:
			goto out;
		case CP_API_REDIRECT:
			if (check_redirect(api, c, *status, loc, ++hops, why,
					   whylen) < 0)
				goto out;
			free(req_url);
			req_url = loc;
			loc = NULL;
			continue;
		case CP_API_RETRY:
			break;
		}

		/* A transient failure: wait and try again, if allowed. */
		free(loc);
		loc = NULL;
		res = -EAGAIN; /* if it ends here, it may work later */
		wait = retry_wait(api, c, &retry, *status, resp.retry_after,
				  &n429, why);
		if (wait < 0)
			goto out;
		cp_stats_inc(api->stats, retries);
		cp_dbg("API: %s; retrying in %.2f s", why, wait);
		cp_sleep(wait);
		if (cp_shutting_down())
			goto out;
	}
out:
	free(loc);
	free(req_url);
	free(resp.body);
	free_headers(headers);
	return res;
}

/* The download call for @id; @attempts tries until @deadline. */
static int download_call(struct cp_api *api, const char *id,
			 unsigned attempts, double deadline, int quiet_missing,
			 char **url, int64_t *expires_in, long *status,
			 char *why, size_t whylen)
{
	char path[64], what[40], reason[160];
	struct response resp = { 0 };
	struct call c = {
		.path = path,
		.what = what,
		.attempts = attempts,
		.deadline = deadline,
		.max_body = CP_API_MAX_BODY,
		.quiet_missing = quiet_missing,
	};
	int res;

	snprintf(path, sizeof(path), "/v1/files/%s/download", id);
	snprintf(what, sizeof(what), "file %s", id);
	res = api_call(api, &c, &resp, status, why, whylen);
	if (res == -EAGAIN)
		res = -EIO;
	if (res < 0)
		return res;
	res = cp_api_parse_download(resp.body, resp.len, url, expires_in,
				    reason, sizeof(reason));
	free(resp.body);
	if (res < 0) {
		snprintf(why, whylen, "malformed answer for file %s: %s", id,
			 reason);
		cp_warn("API: %s", why);
		return -EIO;
	}
	return 0;
}

int cp_api_download_url(struct cp_api *api, const char *id, char **url,
			int64_t *expires_in, double deadline)
{
	char why[512];
	long status;

	*url = NULL;
	if (!cp_objectid_valid(id))
		return -ENOENT;
	return download_call(api, id, api->cfg->retries, deadline, 0, url,
			     expires_in, &status, why, sizeof(why));
}

int cp_api_get(struct cp_api *api, const char *path, size_t max_body,
	       unsigned attempts, double deadline, char **body, size_t *len,
	       char *why, size_t whylen)
{
	struct response resp = { 0 };
	char what[160];
	struct call c = {
		.path = path,
		.what = what,
		.attempts = attempts ? attempts : 1,
		.deadline = deadline,
		.max_body = max_body,
		.low = 1,
	};
	long status;
	int res;

	*body = NULL;
	*len = 0;
	/* The path names only ids and cursors: no secret to hide. */
	snprintf(what, sizeof(what), "GET %.140s", path);
	res = api_call(api, &c, &resp, &status, why, whylen);
	if (res == 0) {
		*body = resp.body;
		*len = resp.len;
	}
	return res;
}

int cp_api_check_key(struct cp_api *api, char *why, size_t whylen)
{
	char reason[512];
	char *url = NULL;
	int64_t expires;
	long status;
	int res;

	res = download_call(api, CHECK_KEY_ID,
			    CP_MIN(api->cfg->retries, CHECK_KEY_ATTEMPTS),
			    cp_now() + api->cfg->deadline, 1, &url, &expires,
			    &status, reason, sizeof(reason));
	free(url);
	if (res == -EACCES) {
		snprintf(why, whylen, "invalid API key: %s", reason);
		return -EACCES;
	}
	/* Any other HTTP answer means the API is there and took the key. */
	if (res == 0 || status >= 400 || res == -ENOENT) {
		if (whylen)
			why[0] = '\0';
		return 0;
	}
	snprintf(why, whylen, "%s", reason);
	return -EIO;
}
