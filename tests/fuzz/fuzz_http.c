/*
 * fuzz_http.c - libFuzzer target for the HTTP header parsers (http.h).
 *
 * Input layout: byte 0 picks buffer sizes and the clock; the rest is
 * split at '\n' into fields that go, in turn, to
 *   cp_http_header_value, cp_http_parse_content_range,
 *   cp_http_parse_retry_after, cp_http_parse_etag, cp_http_parse_date,
 *   cp_http_parse_content_length, cp_http_parse_filename,
 * and then around again.  The whole rest is also given to every parser
 * once, so values with embedded newlines and NULs are tried too, and
 * as a whole response head to cp_http_head_length,
 * cp_http_parse_status and cp_http_has_token.
 *
 * Raw header lines are passed unterminated and exactly sized (as curl
 * delivers them); values are passed as exactly sized C strings.  Output
 * buffers are exactly the size claimed, so ASan sees any overflow.  The
 * checks are the promises of http.h.
 */
#include <errno.h>
#include <math.h>
#include <strings.h>

#include "fuzz.h"
#include "http.h"
#include "util.h"

#define FUZZ_NOW 1700000000 /* Tue, 14 Nov 2023 22:13:20 GMT */

struct knobs {
	size_t vallen;  /* cp_http_header_value's and
			 * cp_http_parse_filename's buffer */
	size_t etaglen; /* cp_http_parse_etag's buffer */
	time_t now;     /* wall clock for Retry-After dates */
};

/* HTTP's optional white space, and the line end curl leaves on. */
static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int is_eol(char c)
{
	return c == '\r' || c == '\n';
}

static void fuzz_header(const char *line, size_t len, const struct knobs *k)
{
	static const char *const names[] = {
		"Content-Range", "ETag", "Retry-After", "Last-Modified",
		"Content-Length", "Content-Type", "Content-Disposition",
		"Location",
	};
	size_t i;

	for (i = 0; i < CP_ARRAY_SIZE(names); i++) {
		char *val = fuzz_alloc(k->vallen);
		int ret;

		ret = cp_http_header_value(line, len, names[i], val,
					   k->vallen);
		FUZZ_CHECK(ret >= 0 || ret == -1 || ret == -E2BIG);
		if (ret >= 0) {
			FUZZ_CHECK((size_t)ret < k->vallen);
			FUZZ_CHECK(val[ret] == '\0');
			FUZZ_CHECK((size_t)ret <= len);
			/* Trimmed of surrounding white space (a CR or LF
			 * inside a line is not curl's doing; only its end
			 * has to go). */
			if (ret > 0) {
				FUZZ_CHECK(!is_ows(val[0]));
				FUZZ_CHECK(!is_ows(val[ret - 1]) &&
					   !is_eol(val[ret - 1]));
			}
			/* Only a line that starts with the name matches. */
			FUZZ_CHECK(len > strlen(names[i]));
			FUZZ_CHECK(strncasecmp(line, names[i],
					       strlen(names[i])) == 0);
		}
		free(val);
	}
}

static void fuzz_content_range(const char *v)
{
	int64_t start = -7, end = -7, total = -7;

	if (cp_http_parse_content_range(v, &start, &end, &total) != 0)
		return;
	FUZZ_CHECK(total >= -1);
	if (start == -1) {
		/* "bytes * /TOTAL" */
		FUZZ_CHECK(end == -1);
	} else {
		FUZZ_CHECK(start >= 0 && start <= end);
		FUZZ_CHECK(total == -1 || end < total);
	}
}

static void fuzz_retry_after(const char *v, time_t now)
{
	double seconds = -1;

	if (cp_http_parse_retry_after(v, now, &seconds) != 0)
		return;
	FUZZ_CHECK(!isnan(seconds));
	FUZZ_CHECK(seconds >= 0 && seconds <= 3600);
}

static void fuzz_etag(const char *v, size_t len)
{
	char *out = fuzz_alloc(len);
	size_t n;
	int ret;

	ret = cp_http_parse_etag(v, out, len);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -E2BIG);
	if (ret == 0) {
		n = strnlen(out, len);
		FUZZ_CHECK(n < len);
		/* "..." or W/"...", quotes kept. */
		FUZZ_CHECK(n >= 2 && out[n - 1] == '"');
		FUZZ_CHECK(out[0] == '"' ||
			   (n >= 4 && out[0] == 'W' && out[1] == '/' &&
			    out[2] == '"'));
		/* Printable ASCII only: it goes back out in If-Match. */
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(out[i] >= 0x20 && out[i] < 0x7f);
	}
	free(out);
}

static void fuzz_date(const char *v)
{
	time_t t = 0;

	(void)cp_http_parse_date(v, &t);
}

static void fuzz_content_length(const char *v)
{
	int64_t n = -7;

	if (cp_http_parse_content_length(v, &n) != 0) {
		FUZZ_CHECK(n == -7);
		return;
	}
	FUZZ_CHECK(n >= 0);
}

static void fuzz_filename(const char *v, size_t len)
{
	char *out = fuzz_alloc(len);
	size_t n, i;
	int ret;

	ret = cp_http_parse_filename(v, out, len);
	FUZZ_CHECK(ret == 0 || ret == -ENOENT || ret == -EINVAL ||
		   ret == -E2BIG);
	if (ret == 0) {
		n = strnlen(out, len);
		FUZZ_CHECK(n > 0 && n < len);
		/* No control character reaches a file name. */
		for (i = 0; i < n; i++)
			FUZZ_CHECK((unsigned char)out[i] >= 0x20 &&
				   out[i] != 0x7f);
	}
	free(out);
}

static void fuzz_value(unsigned which, const char *v, size_t len,
		       const struct knobs *k)
{
	char *s = fuzz_strndup(v, len);
	char *line;

	switch (which % 7) {
	case 0:
		/* Unterminated, exactly @len bytes, as curl hands it over. */
		line = fuzz_alloc(len);
		memcpy(line, v, len);
		fuzz_header(line, len, k);
		free(line);
		break;
	case 1:
		fuzz_content_range(s);
		break;
	case 2:
		fuzz_retry_after(s, k->now);
		break;
	case 3:
		fuzz_etag(s, k->etaglen);
		break;
	case 4:
		fuzz_date(s);
		break;
	case 5:
		fuzz_content_length(s);
		break;
	case 6:
		fuzz_filename(s, k->vallen);
		break;
	}
	free(s);
}

/* A response head as it comes off a connection (conn.c): its length,
 * then its status line, and the Connection token check on each value. */
static void fuzz_head(const char *v, size_t len)
{
	char *buf = fuzz_alloc(len);
	size_t head, i;
	long status = -7;
	int minor = -7;

	memcpy(buf, v, len);
	head = cp_http_head_length(buf, len);
	FUZZ_CHECK(head <= len);
	if (head) {
		/* It ends in an empty line: LF, or CR LF. */
		FUZZ_CHECK(buf[head - 1] == '\n');
		FUZZ_CHECK(head == 1 || buf[head - 2] == '\n' ||
			   (buf[head - 2] == '\r' &&
			    (head == 2 || buf[head - 3] == '\n')));
		/* No earlier empty line. */
		for (i = 0; i + 1 < head - 1; i++)
			FUZZ_CHECK(!(buf[i] == '\n' && buf[i + 1] == '\n'));
	}
	if (cp_http_parse_status(buf, len, &minor, &status) == 0) {
		FUZZ_CHECK(minor == 0 || minor == 1);
		FUZZ_CHECK(status >= 100 && status <= 999);
	} else {
		FUZZ_CHECK(minor == -7 && status == -7);
	}
	free(buf);
	buf = fuzz_strndup(v, len);
	(void)cp_http_has_token(buf, "close");
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t vallens[] = {256, 1, 2, 8, 32, 1024, 64, 16};
	static const size_t etaglens[] = {128, 1, 2, 3, 4, 16, 64, 256};
	static const time_t nows[] = {
		FUZZ_NOW, 784111777, /* 1994, the RFC's example */
		2147483647, 4102444800, /* 2038, 2100 */
	};
	struct knobs k;
	const char *field;
	size_t pos = 1, len, i;
	unsigned which = 0;
	unsigned ctl;

	if (size == 0)
		return 0;
	ctl = data[0];
	k.vallen = vallens[ctl & 7];
	k.etaglen = etaglens[(ctl >> 3) & 7];
	k.now = nows[(ctl >> 6) & 3];

	while ((field = fuzz_next_field(data, size, &pos, '\n', &len)))
		fuzz_value(which++, field, len, &k);

	for (i = 0; i < 7; i++)
		fuzz_value(i, (const char *)data + 1, size - 1, &k);
	fuzz_head((const char *)data + 1, size - 1);
	return 0;
}
