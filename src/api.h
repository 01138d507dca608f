/*
 * api.h - the Checkout Page API client: the only code that knows the
 * API's URLs, its JSON (through cJSON) and its error conventions.
 *
 * The download call: GET {api_url}/v1/files/{id}/download with
 * "Authorization: Bearer <key>", answering
 * {"data":{"url":"...","expiresIn":300}}; and plain GETs of other paths
 * for discovery (cp_api_get), whose JSON this module does not read.
 *
 * Every call passes the rate limiter (api_rate calls per minute, shared
 * by all threads; discovery's GETs in its low-priority lane, see
 * ratelimit.h) and the retry policy (429 waits Retry-After; 5xx and
 * network faults back off with full jitter).  Redirects are followed only
 * to the same scheme, host and port, so the key never leaves the API host.
 * Bodies over CP_API_MAX_BODY are refused.
 *
 * Single flight per id is the file table's job, not this module's.
 *
 * Thread safety: cp_api_download_url() and cp_api_check_key() are called
 * from any thread, concurrently; each call uses its own curl easy handle
 * (connections are shared through a lock-protected CURLSH).
 */
#ifndef CP_API_H
#define CP_API_H

#include <stddef.h>
#include <stdint.h>

struct cp_config;
struct cp_stats;
struct cp_api;

#define CP_API_MAX_BODY (64 * 1024)
/* expiresIn outside [1, CP_API_MAX_EXPIRES] is refused as absurd. */
#define CP_API_MAX_EXPIRES (7 * 24 * 3600)

/*
 * Parses a 200 body.  On success stores a malloc'd copy of data.url in
 * @url (caller frees) and data.expiresIn in @expires_in, and returns 0.
 * Returns -EPROTO for malformed JSON, missing or wrong-typed fields, an
 * expiresIn out of range, or a URL that cp_url_check() refuses; @why then
 * says which (one line, never containing the URL's query).
 */
int cp_api_parse_download(const char *body, size_t len, char **url,
			  int64_t *expires_in, char *why, size_t whylen);

/*
 * Extracts "message" (and the first errors[].message, if any) of an
 * error body into @msg as one printable line.  Never fails: a body that
 * is not the documented shape gives "" .
 */
void cp_api_parse_error(const char *body, size_t len, char *msg,
			size_t msglen);

/* Maps an API HTTP status to the errno programs see: 400/404 -> ENOENT,
 * 401/403 -> EACCES, anything else -> EIO.  Returns the positive errno. */
int cp_api_status_errno(long status);

/* @cfg and @stats must outlive the client.  NULL on failure. */
struct cp_api *cp_api_new(const struct cp_config *cfg,
			  struct cp_stats *stats);
void cp_api_free(struct cp_api *api);

/*
 * Asks for a download URL for @id (a valid ObjectId).  Blocks, with
 * rate limiting and retries, until success, a final error, or
 * @deadline (cp_now() scale).  On success: 0, *@url malloc'd (caller
 * frees), *@expires_in seconds.  Errors: -ENOENT (400/404), -EACCES
 * (401/403), -EIO (retries spent, deadline, malformed answer).
 */
int cp_api_download_url(struct cp_api *api, const char *id, char **url,
			int64_t *expires_in, double deadline);

/*
 * GET {api_url}@path (an absolute path with its query, e.g.
 * "/v1/checkout-pages/?limit=100") in discovery's lane of the rate limit,
 * at most @attempts tries until @deadline.  0 with the body in *@body
 * (malloc'd, NUL-terminated, caller frees) and its length in *@len; or
 * -ENOENT (400/404), -EACCES (401/403), -EAGAIN (429, 5xx, network
 * faults: worth trying later), -EIO (a body over @max_body, anything
 * else), with one line in @why.
 */
int cp_api_get(struct cp_api *api, const char *path, size_t max_body,
	       unsigned attempts, double deadline, char **body, size_t *len,
	       char *why, size_t whylen);

/*
 * Start-up check that the key is accepted: one API call for an id that
 * does not exist.  0 when the API answers anything but 401/403,
 * -EACCES on 401/403 ("invalid API key"), -EIO when the API cannot be
 * reached (message in @why).
 */
int cp_api_check_key(struct cp_api *api, char *why, size_t whylen);

#endif
