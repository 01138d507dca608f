/*
 * test_manifest.c - manifest lines: bare ids, upload JSON (wrapped or
 * not), comments, and every way a line can be wrong; loading a file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ID "507f1f77bcf86cd799439011"

static int parse(const char *line, struct cp_manifest_entry *e, char *why)
{
	return cp_manifest_parse_line(line, strlen(line), e, why, 128);
}

static void test_skip(void **state)
{
	struct cp_manifest_entry e;
	char why[128];

	(void)state;
	assert_int_equal(parse("", &e, why), CP_MANIFEST_SKIP);
	assert_int_equal(parse("   \t\r\n", &e, why), CP_MANIFEST_SKIP);
	assert_int_equal(parse("# comment", &e, why), CP_MANIFEST_SKIP);
	assert_int_equal(parse("   # " ID, &e, why), CP_MANIFEST_SKIP);
}

static void test_bare_id(void **state)
{
	struct cp_manifest_entry e;
	char why[128];

	(void)state;
	assert_int_equal(parse(ID, &e, why), CP_MANIFEST_ENTRY);
	assert_string_equal(e.id, ID);
	assert_int_equal(e.size, -1);
	assert_int_equal(e.created_at, -1);
	assert_null(e.name);
	assert_null(e.content_type);
	cp_manifest_entry_clear(&e);

	assert_int_equal(parse("  " ID " \r\n", &e, why), CP_MANIFEST_ENTRY);
	assert_string_equal(e.id, ID);
	cp_manifest_entry_clear(&e);

	/* not NUL-terminated: the length decides */
	assert_int_equal(
		cp_manifest_parse_line(ID "ffff", 24, &e, why, sizeof(why)),
		CP_MANIFEST_ENTRY);
	assert_string_equal(e.id, ID);
	cp_manifest_entry_clear(&e);
}

static void test_json(void **state)
{
	struct cp_manifest_entry e;
	char why[128];

	(void)state;
	assert_int_equal(parse("{\"data\":{\"id\":\"" ID
			       "\",\"location\":\"https://x/y\","
			       "\"name\":\"report.pdf\",\"purpose\":\"file\","
			       "\"type\":\"application/pdf\",\"size\":12345,"
			       "\"width\":null,\"height\":null,"
			       "\"createdAt\":\"2024-05-01T12:34:56.000Z\"}}",
			       &e, why),
			 CP_MANIFEST_ENTRY);
	assert_string_equal(e.id, ID);
	assert_int_equal(e.size, 12345);
	assert_int_equal(e.created_at, 1714566896);
	assert_string_equal(e.name, "report.pdf");
	assert_string_equal(e.content_type, "application/pdf");
	cp_manifest_entry_clear(&e);
	assert_null(e.name);

	/* the inner object alone, extra fields, no optional ones */
	assert_int_equal(
		parse(" {\"id\":\"" ID "\",\"extra\":[1,2]} ", &e, why),
		CP_MANIFEST_ENTRY);
	assert_int_equal(e.size, -1);
	assert_int_equal(e.created_at, -1);
	assert_null(e.name);
	cp_manifest_entry_clear(&e);

	/* nulls mean unknown; zero size is a size */
	assert_int_equal(parse("{\"id\":\"" ID "\",\"size\":0,\"name\":null,"
			       "\"createdAt\":null}",
			       &e, why),
			 CP_MANIFEST_ENTRY);
	assert_int_equal(e.size, 0);
	assert_null(e.name);
	cp_manifest_entry_clear(&e);

	/* names are kept raw: the fs layer sanitises them */
	assert_int_equal(
		parse("{\"id\":\"" ID "\",\"name\":\"../a/b\\n\"}", &e, why),
		CP_MANIFEST_ENTRY);
	assert_string_equal(e.name, "../a/b\n");
	cp_manifest_entry_clear(&e);

	/* other ISO-8601 spellings */
	assert_int_equal(parse("{\"id\":\"" ID "\",\"createdAt\":"
			       "\"2024-05-01T14:34:56+02:00\"}",
			       &e, why),
			 CP_MANIFEST_ENTRY);
	assert_int_equal(e.created_at, 1714566896);
	cp_manifest_entry_clear(&e);
	assert_int_equal(parse("{\"id\":\"" ID "\",\"createdAt\":"
			       "\"2024-05-01T12:34:56Z\"}",
			       &e, why),
			 CP_MANIFEST_ENTRY);
	assert_int_equal(e.created_at, 1714566896);
	cp_manifest_entry_clear(&e);

	/* large sizes */
	assert_int_equal(
		parse("{\"id\":\"" ID "\",\"size\":1099511627776}", &e, why),
		CP_MANIFEST_ENTRY);
	assert_int_equal(e.size, 1099511627776LL);
	cp_manifest_entry_clear(&e);
}

static void test_bad_lines(void **state)
{
	static const char *const bad[] = {
		"507f1f77bcf86cd79943901",   /* 23 */
		"507f1f77bcf86cd7994390111", /* 25 */
		"507f1f77bcf86cd79943901z",
		ID " extra",
		"hello",
		"{",
		"{\"id\":\"" ID "\"",
		"{\"id\":\"" ID "\"} trailing",
		"[\"" ID "\"]",
		"\"" ID "\"",
		"{}",
		"{\"data\":{}}",
		"{\"data\":\"" ID "\"}",
		"{\"id\":12345}",
		"{\"id\":\"xyz\"}",
		"{\"_id\":\"" ID "\"}",
		"{\"id\":\"" ID "\",\"size\":-1}",
		"{\"id\":\"" ID "\",\"size\":1.5}",
		"{\"id\":\"" ID "\",\"size\":\"12\"}",
		"{\"id\":\"" ID "\",\"size\":1e300}",
		"{\"id\":\"" ID "\",\"size\":true}",
		"{\"id\":\"" ID "\",\"name\":42}",
		"{\"id\":\"" ID "\",\"type\":{}}",
		"{\"id\":\"" ID "\",\"createdAt\":12345}",
		"{\"id\":\"" ID "\",\"createdAt\":\"yesterday\"}",
		"{\"id\":\"" ID "\",\"createdAt\":\"2024-13-01T00:00:00Z\"}",
		"{\"id\":\"" ID "\",\"createdAt\":\"2024-02-30T00:00:00Z\"}",
		"{\"id\":\"" ID "\",\"createdAt\":\"2024-05-01T25:00:00Z\"}",
		"{\"id\":\"" ID "\",\"createdAt\":\"2024-05-01T12:34:56.Z\"}",
		"{\"id\":\"" ID
		"\",\"createdAt\":\"2024-05-01T12:34:56Zjunk\"}",
	};
	struct cp_manifest_entry e;
	char why[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (parse(bad[i], &e, why) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(why[0] != '\0');
		assert_null(e.name);
		assert_null(e.content_type);
	}
	/* an embedded NUL */
	{
		static const char nul[] = "{\"id\":\"" ID "\"}\0x";

		assert_int_equal(cp_manifest_parse_line(nul, sizeof(nul) - 1,
							&e, why, sizeof(why)),
				 -EINVAL);
	}
}

struct seen {
	int n;
	char ids[4][25];
	int64_t sizes[4];
};

static void collect(const struct cp_manifest_entry *e, void *arg)
{
	struct seen *s = arg;

	if (s->n < 4) {
		strcpy(s->ids[s->n], e->id);
		s->sizes[s->n] = e->size;
	}
	s->n++;
}

static void test_load(void **state)
{
	char path[] = "/tmp/cpfs-test-manifest-XXXXXX";
	char why[256], log[2048];
	struct seen s;
	FILE *f, *tmp;
	int fd, saved, res;
	size_t n;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f,
		"# my files\n"
		"\n" ID "\n"
		"not-an-id\n"
		"{\"data\":{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaa\",\"size\":7}}\n"
		"{\"id\":\"bbbbbbbbbbbbbbbbbbbbbbbb\"}"); /* no final \n */
	fclose(f);

	memset(&s, 0, sizeof(s));
	tmp = tmpfile();
	saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	res = cp_manifest_load(path, collect, &s, why, sizeof(why));
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(log, 1, sizeof(log) - 1, tmp);
	log[n] = '\0';
	fclose(tmp);

	assert_int_equal(res, 3);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.ids[0], ID);
	assert_string_equal(s.ids[1], "aaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(s.sizes[1], 7);
	assert_string_equal(s.ids[2], "bbbbbbbbbbbbbbbbbbbbbbbb");
	/* the bad line is reported with its number */
	assert_non_null(strstr(log, ":4: "));
	unlink(path);

	assert_int_equal(cp_manifest_load("/nonexistent/ids", collect, &s, why,
					  sizeof(why)),
			 -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/ids"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skip), cmocka_unit_test(test_bare_id),
		cmocka_unit_test(test_json), cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
