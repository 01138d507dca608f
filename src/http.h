/*
 * http.h - parsers for the HTTP header values cpfs acts on.
 *
 * Pure functions over strings: no curl, no I/O, no allocation.  They take
 * untrusted input from the network and are fuzzed (tests/fuzz).
 *
 * Thread safety: all functions are thread safe.
 */
#ifndef CP_HTTP_H
#define CP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Splits one raw header line as curl delivers it ("Name: value\r\n",
 * not NUL-terminated, length @len).  If the name equals @name
 * (case-insensitive), copies the value, trimmed of surrounding white
 * space, into @val (NUL-terminated) and returns its length.  Returns -1
 * when the name differs, -E2BIG when the value does not fit @vallen.
 */
int cp_http_header_value(const char *line, size_t len, const char *name,
			 char *val, size_t vallen);

/*
 * "bytes 0-1023/4096" -> start 0, end 1023, total 4096.
 * "bytes * /4096" (no space) -> start -1, end -1, total 4096.
 * "bytes 0-1023/ *" (no space) -> total -1 (unknown).
 * Checks start <= end < total when total is known.
 * 0 or -EINVAL.
 */
int cp_http_parse_content_range(const char *value, int64_t *start,
				int64_t *end, int64_t *total);

/* Content-Length: decimal digits (surrounding white space allowed), no
 * sign, no overflow.  0 or -EINVAL. */
int cp_http_parse_content_length(const char *value, int64_t *length);

/*
 * Content-Disposition ("attachment; filename=\"a b.txt\"" or
 * filename=a.txt): copies the filename parameter, unquoted (a backslash
 * escapes the next character of a quoted string), NUL-terminated, into
 * @out.  The extended filename* form is not decoded.  0; -ENOENT when
 * there is no filename parameter; -EINVAL when the value is malformed,
 * empty or holds a control character; -E2BIG when it does not fit @len.
 */
int cp_http_parse_filename(const char *value, char *out, size_t len);

/*
 * Retry-After: delta-seconds ("120") or an HTTP date.  Stores the wait
 * in seconds from @now (wall clock, seconds since the Epoch) into
 * @seconds, never negative and capped at one hour.  0 or -EINVAL.
 */
int cp_http_parse_retry_after(const char *value, time_t now, double *seconds);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), also the obsolete
 * RFC 850 and asctime forms.  0 or -EINVAL. */
int cp_http_parse_date(const char *value, time_t *out);

/*
 * ETag: accepts a strong ("...") or weak (W/"...") tag made of printable
 * ASCII, at most @len - 1 bytes; copies it verbatim (quotes included, as
 * If-Match wants it) into @out.  0, -EINVAL or -E2BIG.
 */
int cp_http_parse_etag(const char *value, char *out, size_t len);

/*
 * The head of an HTTP/1.x response at the start of @buf (@len bytes,
 * not NUL-terminated): the number of bytes up to and including the
 * empty line that ends it (lines end in CRLF or a bare LF), or 0 when
 * the empty line is not within @len bytes.
 */
size_t cp_http_head_length(const char *buf, size_t len);

/*
 * The status line of an HTTP/1.x response ("HTTP/1.1 206 Partial
 * Content", @len bytes, its line end included or not): the minor
 * version (0 or 1) and the three-digit status code.  0 or -EINVAL
 * (another version, a malformed line).
 */
int cp_http_parse_status(const char *line, size_t len, int *minor,
			 long *status);

/*
 * 1 when the comma-separated list in @value (a Connection header's
 * value) holds @token, compared without regard to case; else 0.
 */
int cp_http_has_token(const char *value, const char *token);

#endif
