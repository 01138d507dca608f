/*
 * http.c - parsers for the header values cpfs acts on (Content-Range,
 * Content-Length, Content-Disposition, Retry-After, dates, ETag) and the
 * splitting of raw header lines.
 *
 * Input comes straight from the network and is fuzzed: every function
 * reads only within the bounds it is given, never allocates, and checks
 * every number for overflow.  No state; any thread.
 */
#include "http.h"
#include "valid.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int cp_http_header_value(const char *line, size_t len, const char *name,
			 char *val, size_t vallen)
{
	size_t nlen = strlen(name);
	size_t start, end;

	if (len <= nlen || line[nlen] != ':' ||
	    strncasecmp(line, name, nlen) != 0)
		return -1;
	start = nlen + 1;
	end = len;
	while (start < end && is_space(line[start]))
		start++;
	while (end > start && (is_space(line[end - 1]) ||
			       line[end - 1] == '\r' || line[end - 1] == '\n'))
		end--;
	if (vallen == 0 || end - start > vallen - 1)
		return -E2BIG;
	memcpy(val, line + start, end - start);
	val[end - start] = '\0';
	return (int)(end - start);
}

/* Parses decimal digits at *p into a non-negative int64; advances *p. */
static int parse_int64(const char **p, int64_t *out)
{
	const char *s = *p;
	int64_t v = 0;

	if (!is_digit(*s))
		return -EINVAL;
	while (is_digit(*s)) {
		int d = *s - '0';

		if (v > (INT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

int cp_http_parse_content_range(const char *value, int64_t *start, int64_t *end,
				int64_t *total)
{
	const char *p = value;
	int64_t s = -1, e = -1, t = -1;

	if (!value || strncasecmp(p, "bytes", 5) != 0)
		return -EINVAL;
	p += 5;
	if (!is_space(*p))
		return -EINVAL;
	while (is_space(*p))
		p++;
	if (*p == '*') {
		p++;
	} else {
		if (parse_int64(&p, &s) || *p++ != '-' || parse_int64(&p, &e))
			return -EINVAL;
		if (s > e)
			return -EINVAL;
	}
	if (*p++ != '/')
		return -EINVAL;
	if (*p == '*') {
		if (s < 0)
			return -EINVAL; /* "bytes * / *" says nothing */
		p++;
	} else if (parse_int64(&p, &t)) {
		return -EINVAL;
	}
	while (is_space(*p))
		p++;
	if (*p)
		return -EINVAL;
	if (t >= 0 && s >= 0 && e >= t)
		return -EINVAL;
	*start = s;
	*end = e;
	*total = t;
	return 0;
}

int cp_http_parse_content_length(const char *value, int64_t *length)
{
	const char *p = value;
	int64_t v;

	if (!value)
		return -EINVAL;
	while (is_space(*p))
		p++;
	if (parse_int64(&p, &v))
		return -EINVAL;
	while (is_space(*p))
		p++;
	if (*p)
		return -EINVAL;
	*length = v;
	return 0;
}

/* RFC 9110 tchar: what a parameter name or a token value is made of. */
static int is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Appends @c to @out (room @len, @n used); -E2BIG when full, -EINVAL
 * for a control character (a file name must not carry one). */
static int put_char(char *out, size_t len, size_t *n, char c)
{
	if ((unsigned char)c < 0x20 || c == 0x7f)
		return -EINVAL;
	if (*n + 1 >= len)
		return -E2BIG;
	out[(*n)++] = c;
	return 0;
}

/* A parameter value at *p: a quoted string (backslash escapes the next
 * character) or a token.  Copied unquoted into @out when @out is set;
 * *p advanced past it.  Its length, or -EINVAL / -E2BIG. */
static int param_value(const char **p, char *out, size_t len)
{
	const char *s = *p;
	size_t n = 0;
	int ret;

	if (*s == '"') {
		for (s++; *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
			if (!*s)
				return -EINVAL; /* unterminated */
			if (out && (ret = put_char(out, len, &n, *s)) < 0)
				return ret;
		}
		s++;
	} else {
		for (; is_tchar(*s); s++)
			if (out && (ret = put_char(out, len, &n, *s)) < 0)
				return ret;
	}
	if (out)
		out[n] = '\0';
	*p = s;
	return (int)n;
}

int cp_http_parse_filename(const char *value, char *out, size_t len)
{
	const char *p = value;

	if (!value || len == 0)
		return -EINVAL;
	while (is_tchar(*p) || is_space(*p)) /* the disposition type */
		p++;
	while (*p == ';') {
		const char *name;
		size_t nlen;
		int want, ret;

		p++;
		while (is_space(*p))
			p++;
		for (name = p; is_tchar(*p); p++)
			;
		nlen = (size_t)(p - name);
		while (is_space(*p))
			p++;
		if (nlen == 0 || *p++ != '=')
			return -EINVAL;
		while (is_space(*p))
			p++;
		want = nlen == 8 && strncasecmp(name, "filename", 8) == 0;
		ret = param_value(&p, want ? out : NULL, len);
		if (ret < 0)
			return ret;
		if (want)
			return ret > 0 ? 0 : -EINVAL;
		while (is_space(*p))
			p++;
	}
	return *p ? -EINVAL : -ENOENT;
}

#define RETRY_AFTER_MAX 3600.0

int cp_http_parse_retry_after(const char *value, time_t now, double *seconds)
{
	const char *p = value;
	time_t when;
	double wait;

	if (!value)
		return -EINVAL;
	while (is_space(*p))
		p++;
	if (is_digit(*p)) {
		wait = 0;
		while (is_digit(*p)) {
			if (wait < RETRY_AFTER_MAX)
				wait = wait * 10 + (*p - '0');
			p++;
		}
		while (is_space(*p))
			p++;
		if (*p)
			return -EINVAL;
	} else {
		if (cp_http_parse_date(p, &when))
			return -EINVAL;
		wait = when > now ? (double)(when - now) : 0;
	}
	if (wait > RETRY_AFTER_MAX)
		wait = RETRY_AFTER_MAX;
	*seconds = wait;
	return 0;
}

static const char *const month_names[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static const char *const day_names[7] = {
	"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
};

static const char *const long_day_names[7] = {
	"Monday", "Tuesday",  "Wednesday", "Thursday",
	"Friday", "Saturday", "Sunday",
};

/* Matches one of @names at *p (exact case); advances *p.  Index or -1. */
static int match_name(const char **p, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		size_t l = strlen(names[i]);

		if (strncmp(*p, names[i], l) == 0) {
			*p += l;
			return i;
		}
	}
	return -1;
}

/* Exactly @n digits (n <= 4) at *p; advances *p. */
static int fixed_digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!is_digit((*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int expect(const char **p, const char *lit)
{
	size_t l = strlen(lit);

	if (strncmp(*p, lit, l) != 0)
		return -EINVAL;
	*p += l;
	return 0;
}

static int parse_hms(const char **p, int *h, int *m, int *s)
{
	if (fixed_digits(p, 2, h) || expect(p, ":") || fixed_digits(p, 2, m) ||
	    expect(p, ":") || fixed_digits(p, 2, s))
		return -EINVAL;
	return 0;
}

/* HTTP dates (RFC 9110) start in 1601; the rest is cp_utc_time's. */
static int make_time(int y, int mon, int d, int h, int mi, int s, time_t *out)
{
	int64_t t;

	if (y < 1601 || cp_utc_time(y, mon + 1, d, h, mi, s, &t) < 0)
		return -EINVAL;
	*out = (time_t)t;
	return 0;
}

int cp_http_parse_date(const char *value, time_t *out)
{
	const char *p = value;
	int wday, d, mon, y, h, mi, s;

	if (!value)
		return -EINVAL;
	while (is_space(*p))
		p++;
	if ((wday = match_name(&p, long_day_names, 7)) >= 0) {
		/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
		if (expect(&p, ", ") || fixed_digits(&p, 2, &d) ||
		    expect(&p, "-") ||
		    (mon = match_name(&p, month_names, 12)) < 0 ||
		    expect(&p, "-") || fixed_digits(&p, 2, &y) ||
		    expect(&p, " ") || parse_hms(&p, &h, &mi, &s) ||
		    expect(&p, " GMT"))
			return -EINVAL;
		y += y < 70 ? 2000 : 1900;
	} else if ((wday = match_name(&p, day_names, 7)) >= 0) {
		if (*p == ',') {
			/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
			if (expect(&p, ", ") || fixed_digits(&p, 2, &d) ||
			    expect(&p, " ") ||
			    (mon = match_name(&p, month_names, 12)) < 0 ||
			    expect(&p, " ") || fixed_digits(&p, 4, &y) ||
			    expect(&p, " ") || parse_hms(&p, &h, &mi, &s) ||
			    expect(&p, " GMT"))
				return -EINVAL;
		} else {
			/* asctime: "Sun Nov  6 08:49:37 1994" */
			if (expect(&p, " ") ||
			    (mon = match_name(&p, month_names, 12)) < 0 ||
			    expect(&p, " "))
				return -EINVAL;
			if (*p == ' ') {
				p++;
				if (fixed_digits(&p, 1, &d))
					return -EINVAL;
			} else if (fixed_digits(&p, 2, &d)) {
				return -EINVAL;
			}
			if (expect(&p, " ") || parse_hms(&p, &h, &mi, &s) ||
			    expect(&p, " ") || fixed_digits(&p, 4, &y))
				return -EINVAL;
		}
	} else {
		return -EINVAL;
	}
	while (is_space(*p))
		p++;
	if (*p)
		return -EINVAL;
	return make_time(y, mon, d, h, mi, s, out);
}

int cp_http_parse_etag(const char *value, char *out, size_t len)
{
	const char *p = value;
	size_t n;

	if (!value)
		return -EINVAL;
	if (strncmp(p, "W/", 2) == 0)
		p += 2;
	if (*p++ != '"')
		return -EINVAL;
	while (*p && *p != '"') {
		unsigned char c = (unsigned char)*p;

		if (c < 0x21 || c > 0x7e)
			return -EINVAL;
		p++;
	}
	if (*p++ != '"' || *p)
		return -EINVAL;
	n = (size_t)(p - value);
	if (len == 0 || n > len - 1)
		return -E2BIG;
	memcpy(out, value, n);
	out[n] = '\0';
	return 0;
}

size_t cp_http_head_length(const char *buf, size_t len)
{
	size_t i = 0;

	/* Each line: an empty one ("\r\n" or "\n") ends the head. */
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t line;

		if (!nl)
			return 0;
		line = (size_t)(nl - (buf + i));
		if (line == 0 || (line == 1 && buf[i] == '\r'))
			return (size_t)(nl - buf) + 1;
		i += line + 1;
	}
	return 0;
}

int cp_http_parse_status(const char *line, size_t len, int *minor,
			 long *status)
{
	size_t i;

	/* "HTTP/1.x SSS" then the end, or a space and a reason. */
	if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 ||
	    (line[7] != '0' && line[7] != '1') || line[8] != ' ')
		return -EINVAL;
	for (i = 9; i < 12; i++)
		if (!is_digit(line[i]))
			return -EINVAL;
	if (line[9] == '0')
		return -EINVAL;
	if (len > 12 && line[12] != ' ' && line[12] != '\r' &&
	    line[12] != '\n')
		return -EINVAL;
	*minor = line[7] - '0';
	*status = (line[9] - '0') * 100 + (line[10] - '0') * 10 +
		  (line[11] - '0');
	return 0;
}

int cp_http_has_token(const char *value, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = value;

	while (*p) {
		const char *end;
		size_t n;

		while (*p == ',' || is_space(*p))
			p++;
		end = p;
		while (*end && *end != ',')
			end++;
		n = (size_t)(end - p);
		while (n && is_space(p[n - 1]))
			n--;
		if (n == tlen && tlen && strncasecmp(p, token, tlen) == 0)
			return 1;
		p = end;
	}
	return 0;
}
