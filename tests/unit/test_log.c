/*
 * test_log.c - log lines: levels, one line each, no control characters,
 * and URLs without their secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Runs @fn with stderr captured into @out. */
static void capture(void (*fn)(void), char *out, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	assert_non_null(tmp);
	dup2(fileno(tmp), STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, len - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

static void log_some(void)
{
	cp_warn("disk %s", "full");
	cp_dbg("hidden %d", 1);
	cp_info("two\nlines\x1b[31m");
	cp_err("trailing newline\n");
}

static void test_levels(void **state)
{
	char out[1024];

	(void)state;
	cp_log_init(0);
	assert_true(cp_log_enabled(CP_LOG_INFO));
	assert_false(cp_log_enabled(CP_LOG_DEBUG));
	capture(log_some, out, sizeof(out));
	assert_string_equal(out, "cpfs: warning: disk full\n"
				 "cpfs: two?lines?[31m\n"
				 "cpfs: error: trailing newline\n");
	cp_log_init(1);
	assert_true(cp_log_enabled(CP_LOG_DEBUG));
	capture(log_some, out, sizeof(out));
	assert_non_null(strstr(out, "cpfs: debug: hidden 1\n"));
	cp_log_init(0);
}

static void log_long(void)
{
	char big[5000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cp_warn("%s", big);
}

static void test_long_line(void **state)
{
	char out[8192];

	(void)state;
	capture(log_long, out, sizeof(out));
	assert_true(strlen(out) < 2100);
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_null(strchr(out, '\n') + 1 < out + strlen(out)
			    ? strchr(strchr(out, '\n') + 1, '\n')
			    : NULL);
}

static void test_log_url(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "https://bucket.s3.amazonaws.com/a/b.bin?X-Amz-Signature=s",
		  "https://bucket.s3.amazonaws.com/a/b.bin" },
		{ "https://user:pw@host:8443/p#frag", "https://host:8443/p" },
		{ "http://127.0.0.1:9/v1/files/x/download",
		  "http://127.0.0.1:9/v1/files/x/download" },
		{ "https://host?q=1", "https://host" },
		{ "https://host", "https://host" },
		{ "no-scheme/path", "(invalid url)" },
		{ "https://", "(invalid url)" },
		{ "https:///x", "(invalid url)" },
	};
	char buf[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(cp_log_url(cases[i].in, buf, sizeof(buf)),
				    cases[i].out);
	assert_string_equal(cp_log_url(NULL, buf, sizeof(buf)),
			    "(invalid url)");
	/* a small buffer truncates, never overflows */
	cp_log_url("https://example.com/long/path?secret", buf, 12);
	assert_string_equal(buf, "https://exa");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_log_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
