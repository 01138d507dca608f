/*
 * test_http.c - header parsers on good, hostile and truncated input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_header_value(void **state)
{
	static const char line[] = "Content-Range:  bytes 0-9/10 \r\n";
	char val[32];

	(void)state;
	assert_int_equal(cp_http_header_value(line, strlen(line),
					      "content-range", val,
					      sizeof(val)),
			 (int)strlen("bytes 0-9/10"));
	assert_string_equal(val, "bytes 0-9/10");
	assert_int_equal(cp_http_header_value(line, strlen(line), "ETag", val,
					      sizeof(val)),
			 -1);
	/* a prefix of the name is not the name */
	assert_int_equal(cp_http_header_value(line, strlen(line), "Content",
					      val, sizeof(val)),
			 -1);
	assert_int_equal(cp_http_header_value(line, strlen(line),
					      "Content-Range", val, 5),
			 -E2BIG);
	assert_int_equal(cp_http_header_value(line, strlen(line),
					      "Content-Range", val, 0),
			 -E2BIG);
	/* not NUL-terminated: only @len bytes are looked at */
	assert_int_equal(cp_http_header_value("ETag: \"ab\"XYZ", 10, "etag",
					      val, sizeof(val)),
			 4);
	assert_string_equal(val, "\"ab\"");
	assert_int_equal(
		cp_http_header_value("ETag:", 5, "ETag", val, sizeof(val)), 0);
	assert_string_equal(val, "");
	assert_int_equal(
		cp_http_header_value("ETag", 4, "ETag", val, sizeof(val)), -1);
	assert_int_equal(cp_http_header_value("", 0, "ETag", val, sizeof(val)),
			 -1);
	assert_int_equal(cp_http_header_value("HTTP/1.1 200 OK\r\n", 17, "ETag",
					      val, sizeof(val)),
			 -1);
}

static void test_content_range_good(void **state)
{
	int64_t s, e, t;

	(void)state;
	assert_int_equal(
		cp_http_parse_content_range("bytes 0-1023/4096", &s, &e, &t),
		0);
	assert_true(s == 0 && e == 1023 && t == 4096);
	assert_int_equal(
		cp_http_parse_content_range("bytes 4095-4095/4096", &s, &e, &t),
		0);
	assert_true(s == 4095 && e == 4095 && t == 4096);
	assert_int_equal(
		cp_http_parse_content_range("bytes */4096", &s, &e, &t), 0);
	assert_true(s == -1 && e == -1 && t == 4096);
	assert_int_equal(cp_http_parse_content_range("bytes */0", &s, &e, &t),
			 0);
	assert_true(s == -1 && e == -1 && t == 0);
	assert_int_equal(
		cp_http_parse_content_range("bytes 0-99/*", &s, &e, &t), 0);
	assert_true(s == 0 && e == 99 && t == -1);
	assert_int_equal(cp_http_parse_content_range("Bytes 1-2/3", &s, &e, &t),
			 0);
	assert_int_equal(
		cp_http_parse_content_range(
			"bytes 0-9223372036854775806/9223372036854775807", &s,
			&e, &t),
		0);
	assert_true(t == INT64_MAX && e == INT64_MAX - 1);
}

static void test_content_range_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"bytes",
		"bytes ",
		"bytes=0-1/2",
		"bits 0-1/2",
		"bytes 0-1",
		"bytes 0-1/",
		"bytes -1/2",
		"bytes 0-/2",
		"bytes 1-0/2",	 /* start > end */
		"bytes 0-10/10", /* end >= total */
		"bytes 5-5/5",
		"bytes 0-0/0",
		"bytes */*",
		"bytes */",
		"bytes * /10",
		"bytes 0-1/2 x",
		"bytes 0-1/2/3",
		"bytes +0-1/2",
		"bytes 0x0-1/2",
		"bytes 0-1/-2",
		"bytes 0-9223372036854775808/9223372036854775809", /* overflow
								    */
		"bytes 0-1/99999999999999999999999999",
		"bytes 0 - 1/2",
		"bytes\t",
	};
	int64_t s = 7, e = 7, t = 7;
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++)
		if (cp_http_parse_content_range(bad[i], &s, &e, &t) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(cp_http_parse_content_range(NULL, &s, &e, &t),
			 -EINVAL);
}

static void test_retry_after(void **state)
{
	const time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
	double secs;

	(void)state;
	assert_int_equal(cp_http_parse_retry_after("120", now, &secs), 0);
	assert_true(secs == 120);
	assert_int_equal(cp_http_parse_retry_after("0", now, &secs), 0);
	assert_true(secs == 0);
	assert_int_equal(cp_http_parse_retry_after(" 5 ", now, &secs), 0);
	assert_true(secs == 5);
	/* capped at one hour, also when absurd */
	assert_int_equal(cp_http_parse_retry_after("86400", now, &secs), 0);
	assert_true(secs == 3600);
	assert_int_equal(cp_http_parse_retry_after(
				 "999999999999999999999999999999", now, &secs),
			 0);
	assert_true(secs == 3600);
	/* a date: 30 s in the future, in the past, far away */
	assert_int_equal(cp_http_parse_retry_after(
				 "Sun, 06 Nov 1994 08:50:07 GMT", now, &secs),
			 0);
	assert_true(secs == 30);
	assert_int_equal(cp_http_parse_retry_after(
				 "Sun, 06 Nov 1994 08:00:00 GMT", now, &secs),
			 0);
	assert_true(secs == 0);
	assert_int_equal(cp_http_parse_retry_after(
				 "Fri, 31 Dec 1999 23:59:59 GMT", now, &secs),
			 0);
	assert_true(secs == 3600);
	assert_int_equal(cp_http_parse_retry_after("", now, &secs), -EINVAL);
	assert_int_equal(cp_http_parse_retry_after("-5", now, &secs), -EINVAL);
	assert_int_equal(cp_http_parse_retry_after("5s", now, &secs), -EINVAL);
	assert_int_equal(cp_http_parse_retry_after("1.5", now, &secs), -EINVAL);
	assert_int_equal(cp_http_parse_retry_after("soon", now, &secs),
			 -EINVAL);
	assert_int_equal(cp_http_parse_retry_after(NULL, now, &secs), -EINVAL);
}

static void test_dates(void **state)
{
	time_t t;

	(void)state;
	assert_int_equal(
		cp_http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(
		cp_http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(cp_http_parse_date("Sun Nov  6 08:49:37 1994", &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(
		cp_http_parse_date("Thu, 01 Jan 1970 00:00:00 GMT", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(
		cp_http_parse_date("Tue, 29 Feb 2000 12:00:00 GMT", &t), 0);
	assert_int_equal(t, 951825600);
	assert_int_equal(
		cp_http_parse_date("Wed, 01 May 2024 12:34:56 GMT", &t), 0);
	assert_int_equal(t, 1714566896);

	static const char *const bad[] = {
		"",
		"Sun, 06 Nov 1994 08:49:37",
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 6 Nov 1994 08:49:37 GMT",
		"Sun, 06 Foo 1994 08:49:37 GMT",
		"Sun, 32 Jan 1994 08:49:37 GMT",
		"Sun, 29 Feb 1900 08:49:37 GMT",
		"Sun, 00 Jan 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 24:00:00 GMT",
		"Sun, 06 Nov 1994 08:60:00 GMT",
		"Sun, 06 Nov 1994 08:49:61 GMT",
		"Sun, 06 Nov 94 08:49:37 GMT",
		"Xyz, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT trailing",
		"Sun, 06 Nov 1994 8:49:37 GMT",
		"Sunday, 06-Nov-1994 08:49:37 GMT",
		"Sun Nov 6 08:49:37 1994",
		"Sun Nov  6 08:49:37",
		"1994-11-06T08:49:37Z",
		"Sun,",
		"Sun, 06 Nov 1994 08:49:3",
	};
	size_t i;

	for (i = 0; i < N(bad); i++)
		if (cp_http_parse_date(bad[i], &t) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(cp_http_parse_date(NULL, &t), -EINVAL);
}

static void test_etag(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(cp_http_parse_etag("\"abc\"", out, sizeof(out)), 0);
	assert_string_equal(out, "\"abc\"");
	assert_int_equal(cp_http_parse_etag("W/\"abc\"", out, sizeof(out)), 0);
	assert_string_equal(out, "W/\"abc\"");
	assert_int_equal(cp_http_parse_etag("\"\"", out, sizeof(out)), 0);
	assert_string_equal(out, "\"\"");
	/* exactly fits: 15 characters */
	assert_int_equal(
		cp_http_parse_etag("\"0123456789abc\"", out, sizeof(out)), 0);
	assert_int_equal(
		cp_http_parse_etag("\"0123456789abcd\"", out, sizeof(out)),
		-E2BIG);
	assert_int_equal(cp_http_parse_etag("abc", out, sizeof(out)), -EINVAL);
	assert_int_equal(cp_http_parse_etag("\"abc", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_etag("\"a\"b\"", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_etag("\"a b\"", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_etag("\"a\tb\"", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_etag("\"\xc3\xa9\"", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_etag("w/\"abc\"", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_etag("", out, sizeof(out)), -EINVAL);
	assert_int_equal(cp_http_parse_etag("\"", out, sizeof(out)), -EINVAL);
	assert_int_equal(cp_http_parse_etag("W/", out, sizeof(out)), -EINVAL);
	assert_int_equal(cp_http_parse_etag(NULL, out, sizeof(out)), -EINVAL);
}

static void test_content_length(void **state)
{
	int64_t v = -7;

	(void)state;
	assert_int_equal(cp_http_parse_content_length("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(cp_http_parse_content_length(" 1048576 ", &v), 0);
	assert_true(v == 1048576);
	assert_int_equal(
		cp_http_parse_content_length("9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	v = -7;
	assert_int_equal(
		cp_http_parse_content_length("9223372036854775808", &v),
		-EINVAL);
	assert_int_equal(cp_http_parse_content_length("-1", &v), -EINVAL);
	assert_int_equal(cp_http_parse_content_length("+1", &v), -EINVAL);
	assert_int_equal(cp_http_parse_content_length("1 2", &v), -EINVAL);
	assert_int_equal(cp_http_parse_content_length("12a", &v), -EINVAL);
	assert_int_equal(cp_http_parse_content_length("0x10", &v), -EINVAL);
	assert_int_equal(cp_http_parse_content_length("", &v), -EINVAL);
	assert_int_equal(cp_http_parse_content_length(NULL, &v), -EINVAL);
	assert_true(v == -7); /* untouched on failure */
}

static void test_filename(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(cp_http_parse_filename(
				 "attachment; filename=\"a b.txt\"", out,
				 sizeof(out)),
			 0);
	assert_string_equal(out, "a b.txt");
	assert_int_equal(cp_http_parse_filename("inline;filename=a.txt", out,
						sizeof(out)),
			 0);
	assert_string_equal(out, "a.txt");
	/* other parameters first, any case, escapes in quoted strings */
	assert_int_equal(cp_http_parse_filename(
				 "attachment; size=3; FileName=\"q\\\"x\"",
				 out, sizeof(out)),
			 0);
	assert_string_equal(out, "q\"x");
	/* UTF-8 bytes pass; filename* is not decoded, so not taken */
	assert_int_equal(cp_http_parse_filename(
				 "attachment; filename=\"\xc3\xa9.txt\"", out,
				 sizeof(out)),
			 0);
	assert_string_equal(out, "\xc3\xa9.txt");
	assert_int_equal(cp_http_parse_filename(
				 "attachment; filename*=UTF-8''a.txt", out,
				 sizeof(out)),
			 -ENOENT);
	assert_int_equal(cp_http_parse_filename("attachment", out,
						sizeof(out)),
			 -ENOENT);
	/* exactly fits: 15 bytes; one more does not */
	assert_int_equal(cp_http_parse_filename(
				 "a; filename=\"0123456789abcde\"", out,
				 sizeof(out)),
			 0);
	assert_int_equal(cp_http_parse_filename(
				 "a; filename=\"0123456789abcdef\"", out,
				 sizeof(out)),
			 -E2BIG);
	assert_int_equal(cp_http_parse_filename("a; filename=\"x", out,
						sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_filename("a; filename=\"\"", out,
						sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_filename("a; filename=\"a\nb\"", out,
						sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_filename("a; filename", out,
						sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_filename("a; =x", out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_filename("a; filename=x y", out,
						sizeof(out)),
			 0); /* the token ends at the space */
	assert_string_equal(out, "x");
	assert_int_equal(cp_http_parse_filename(NULL, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cp_http_parse_filename("a; filename=x", out, 0),
			 -EINVAL);
}

enum parser { P_RANGE, P_RETRY, P_DATE, P_ETAG, P_LENGTH, P_NAME, P_LINE };

/* Runs parser @which on @p (@n bytes, NUL-terminated); 1 if it
 * accepted the input, 0 if it refused it. */
static int parse_ok(enum parser which, const char *p, size_t n)
{
	int64_t s, e, t;
	double d;
	time_t tt;
	char out[64];

	switch (which) {
	case P_RANGE:
		return cp_http_parse_content_range(p, &s, &e, &t) == 0;
	case P_RETRY:
		return cp_http_parse_retry_after(p, 0, &d) == 0;
	case P_DATE:
		return cp_http_parse_date(p, &tt) == 0;
	case P_ETAG:
		return cp_http_parse_etag(p, out, sizeof(out)) == 0;
	case P_LENGTH:
		return cp_http_parse_content_length(p, &s) == 0;
	case P_NAME:
		return cp_http_parse_filename(p, out, sizeof(out)) == 0;
	case P_LINE:
		return cp_http_header_value(p, n, "ETag", out, sizeof(out)) >=
		       0;
	}
	return 0;
}

/* Every prefix of good input, copied to its own exact-size buffer so
 * ASan catches any read past the end: the whole input is accepted, a
 * prefix only when it is still valid on its own (from @valid_from
 * bytes; 0 = only the whole). */
static void test_truncations(void **state)
{
	static const struct {
		enum parser which;
		const char *text;
		size_t valid_from;
	} samples[] = {
		{ P_RANGE, "bytes 0-1023/4096", 0 },
		{ P_DATE, "Sun, 06 Nov 1994 08:49:37 GMT", 0 },
		{ P_DATE, "Sunday, 06-Nov-94 08:49:37 GMT", 0 },
		{ P_DATE, "Sun Nov  6 08:49:37 1994", 0 },
		{ P_RETRY, "Sun, 06 Nov 1994 08:49:37 GMT", 0 },
		{ P_ETAG, "W/\"abc\"", 0 },
		{ P_RETRY, "120", 1 },
		{ P_LENGTH, "4096", 1 },
		{ P_NAME, "attachment; filename=\"a b.txt\"", 0 },
		{ P_NAME, "attachment; filename=ab.txt", 22 },
		{ P_LINE, "ETag: \"abc\"\r\n", 5 },
	};
	size_t i, n;

	(void)state;
	for (i = 0; i < N(samples); i++) {
		size_t len = strlen(samples[i].text);

		for (n = 0; n <= len; n++) {
			char *p = malloc(n + 1);
			int want = n == len || (samples[i].valid_from &&
						n >= samples[i].valid_from);

			memcpy(p, samples[i].text, n);
			p[n] = '\0';
			if (parse_ok(samples[i].which, p, n) != want)
				fail_msg("\"%s\" cut to %zu bytes: %s",
					 samples[i].text, n,
					 want ? "refused" : "accepted");
			free(p);
		}
	}
}

static void test_head_length(void **state)
{
	static const char crlf[] = "HTTP/1.1 206 P\r\nA: b\r\n\r\nbody";
	static const char lf[] = "HTTP/1.1 206 P\nA: b\n\nbody";
	static const char mixed[] = "HTTP/1.1 206 P\r\nA: b\n\r\nxx";
	size_t i;

	(void)state;
	assert_int_equal(cp_http_head_length(crlf, strlen(crlf)),
			 strlen(crlf) - 4);
	assert_int_equal(cp_http_head_length(lf, strlen(lf)), strlen(lf) - 4);
	assert_int_equal(cp_http_head_length(mixed, strlen(mixed)),
			 strlen(mixed) - 2);
	/* Every cut before the empty line ends is incomplete. */
	for (i = 0; i < strlen(crlf) - 4; i++)
		assert_int_equal(cp_http_head_length(crlf, i), 0);
	/* A line that is only white space is not the end. */
	assert_int_equal(cp_http_head_length("A\r\n \r\n", 6), 0);
	assert_int_equal(cp_http_head_length("\r\n", 2), 2);
	assert_int_equal(cp_http_head_length("", 0), 0);
}

static void test_status(void **state)
{
	static const char *const bad[] = {
		"HTTP/2 206 \r\n", "HTTP/1.2 206 x", "HTTP/1.1 20 x",
		"HTTP/1.1 2066 x", "HTTP/1.1  206", "http/1.1 206 x",
		"HTTP/1.1 099 x", "HTTP/1.1 2x6 x", "HTTP/1.1 206x", "HTTP/1.1",
	};
	int minor = -1;
	long status = -1;
	size_t i;

	(void)state;
	assert_int_equal(cp_http_parse_status("HTTP/1.1 206 Partial\r\n", 22,
					      &minor, &status),
			 0);
	assert_int_equal(minor, 1);
	assert_int_equal(status, 206);
	assert_int_equal(cp_http_parse_status("HTTP/1.0 404", 12, &minor,
					      &status),
			 0);
	assert_int_equal(minor, 0);
	assert_int_equal(status, 404);
	assert_int_equal(cp_http_parse_status("HTTP/1.1 412\r\n", 14, &minor,
					      &status),
			 0);
	assert_int_equal(status, 412);
	for (i = 0; i < N(bad); i++) {
		minor = -1;
		if (cp_http_parse_status(bad[i], strlen(bad[i]), &minor,
					 &status) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(minor, -1);
	}
	/* Only the given length is read. */
	assert_int_equal(cp_http_parse_status("HTTP/1.1 206 x", 11, &minor,
					      &status),
			 -EINVAL);
}

static void test_has_token(void **state)
{
	(void)state;
	assert_int_equal(cp_http_has_token("close", "close"), 1);
	assert_int_equal(cp_http_has_token("Keep-Alive, CLOSE ", "close"), 1);
	assert_int_equal(cp_http_has_token(" ,close,", "close"), 1);
	assert_int_equal(cp_http_has_token("keep-alive", "close"), 0);
	assert_int_equal(cp_http_has_token("closed, xclose", "close"), 0);
	assert_int_equal(cp_http_has_token("", "close"), 0);
	assert_int_equal(cp_http_has_token(",,", "close"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_value),
		cmocka_unit_test(test_content_range_good),
		cmocka_unit_test(test_content_range_bad),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_etag),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_filename),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_head_length),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_has_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
