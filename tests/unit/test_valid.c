/*
 * test_valid.c - the shared checks (valid.h): sizes, ObjectIds, dates,
 * and the one URL parser in its three uses: what may be fetched, what
 * is loopback, what is the same origin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "valid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CP_ARRAY_SIZE_T(a) (sizeof(a) / sizeof((a)[0]))

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "123", 123 },
		{ "64K", 64ULL << 10 },
		{ "64k", 64ULL << 10 },
		{ "64M", 64ULL << 20 },
		{ "64MB", 64ULL << 20 },
		{ "64MiB", 64ULL << 20 },
		{ "64mib", 64ULL << 20 },
		{ "1G", 1ULL << 30 },
		{ "1.5G", 3ULL << 29 },
		{ "0.5K", 512 },
		{ "2T", 2ULL << 40 },
		{ "100B", 100 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ULL << 40 },
	};
	static const char *const bad[] = {
		"",
		"-1",
		"+1",
		" 1",
		"1 ",
		"K",
		"1.5.5G",
		"1.",
		".5G",
		"1Q",
		"1KK",
		"1iB",
		"18446744073709551616",
		"16777216T",
		"1e3",
		"0x10",
		"1.0000000001G",
		"1,5G",
	};
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < CP_ARRAY_SIZE_T(good); i++) {
		v = 42;
		if (cp_parse_size(good[i].s, &v) != 0 || v != good[i].v)
			fail_msg("'%s' -> %llu", good[i].s,
				 (unsigned long long)v);
	}
	for (i = 0; i < CP_ARRAY_SIZE_T(bad); i++)
		if (cp_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(cp_parse_size(NULL, &v), -EINVAL);
}

static void test_objectid(void **state)
{
	(void)state;
	assert_true(cp_objectid_valid("507f1f77bcf86cd799439011"));
	assert_true(cp_objectid_valid("507F1F77BCF86CD799439011"));
	assert_true(cp_objectid_valid("000000000000000000000000"));
	assert_false(cp_objectid_valid("507f1f77bcf86cd79943901"));
	assert_false(cp_objectid_valid("507f1f77bcf86cd7994390111"));
	assert_false(cp_objectid_valid("507f1f77bcf86cd79943901g"));
	assert_false(cp_objectid_valid("507f1f77bcf86cd79943901 "));
	assert_false(cp_objectid_valid("../etc/passwd"));
	assert_false(cp_objectid_valid(""));
	assert_false(cp_objectid_valid(NULL));
}

static void test_url_check(void **state)
{
	static const char *const good[] = {
		"https://api.checkoutpage.com",
		"https://api.checkoutpage.com/",
		"HTTPS://API.example.com:8443/v1?x=1#f",
		"https://bucket.s3.amazonaws.com/a/b.bin?X-Amz-Signature=abc",
		"http://127.0.0.1/",
		"http://127.1.2.3:8080/x",
		"http://localhost:1/",
		"http://LOCALHOST/",
		"http://[::1]:8080/",
		"https://[2001:db8::1]/",
	};
	static const char *const bad[] = {
		"http://api.checkoutpage.com/",
		"http://10.0.0.1/",
		"http://127.0.0.1.evil.com/",
		"http://localhost.evil.com/",
		"http://[::2]/",
		"file:///etc/passwd",
		"ftp://example.com/x",
		"gopher://example.com/",
		"javascript:alert(1)",
		"https://user@example.com/",
		"https://user:pw@example.com/",
		"https:///path",
		"https://",
		"https://:443/",
		"https://example.com:0/",
		"https://example.com:65536/",
		"https://example.com:/",
		"https://example.com:12a/",
		"https://exa mple.com/",
		"https://example.com/a b",
		"https://example.com/\n",
		"https://exa%6dple.com/",
		"https://[::1/",
		"//example.com/",
		"example.com",
		"",
	};
	char why[128];
	size_t i;

	(void)state;
	for (i = 0; i < CP_ARRAY_SIZE_T(good); i++)
		if (cp_url_check(good[i], why, sizeof(why)))
			fail_msg("'%s' refused: %s", good[i], why);
	for (i = 0; i < CP_ARRAY_SIZE_T(bad); i++) {
		strcpy(why, "");
		if (cp_url_check(bad[i], why, sizeof(why)) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(why[0] != '\0');
	}
	assert_int_equal(cp_url_check(NULL, why, sizeof(why)), -EINVAL);
	assert_int_equal(cp_url_check("ftp://x/", why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "ftp"));
	/* the reason never repeats a query */
	assert_int_equal(cp_url_check("gopher://h/?secret=1", why, sizeof(why)),
			 -EINVAL);
	assert_null(strstr(why, "secret"));
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(cp_url_is_loopback("http://127.0.0.1:8080/"));
	assert_true(cp_url_is_loopback("https://127.255.255.254/"));
	assert_true(cp_url_is_loopback("http://localhost/"));
	assert_true(cp_url_is_loopback("http://[::1]/"));
	assert_false(cp_url_is_loopback("http://128.0.0.1/"));
	assert_false(cp_url_is_loopback("http://127.0.0.1.nip.io/"));
	assert_false(cp_url_is_loopback("http://example.com/"));
	assert_false(cp_url_is_loopback("ftp://127.0.0.1/"));
	assert_false(cp_url_is_loopback(NULL));
}

static void test_url_split(void **state)
{
	struct cp_url u;

	(void)state;
	assert_int_equal(cp_url_split("https://u:pw@h.example:8443/a/b?q#f",
				      &u),
			 0);
	assert_int_equal(u.scheme_len, 5);
	assert_memory_equal(u.userinfo, "u:pw", 4);
	assert_int_equal(u.userinfo_len, 4);
	assert_int_equal(u.authority_len, 14);
	assert_memory_equal(u.authority, "h.example:8443", 14);
	assert_int_equal(u.path_len, 4);
	assert_memory_equal(u.path, "/a/b", 4);
	/* any scheme, no path */
	assert_int_equal(cp_url_split("svn+ssh://h?x", &u), 0);
	assert_int_equal(u.scheme_len, 7);
	assert_null(u.userinfo);
	assert_int_equal(u.authority_len, 1);
	assert_int_equal(u.path_len, 0);
	/* an empty userinfo is still userinfo */
	assert_int_equal(cp_url_split("https://@h/", &u), 0);
	assert_non_null(u.userinfo);
	assert_int_equal(u.userinfo_len, 0);
	assert_int_equal(cp_url_split("https://", &u), -EINVAL);
	assert_int_equal(cp_url_split("https:///x", &u), -EINVAL);
	assert_int_equal(cp_url_split("1http://h/", &u), -EINVAL);
	assert_int_equal(cp_url_split("//h/", &u), -EINVAL);
	assert_int_equal(cp_url_split(NULL, &u), -EINVAL);
}

static void test_url_parse(void **state)
{
	struct cp_url u;
	char why[128];

	(void)state;
	assert_int_equal(cp_url_parse("HTTPS://[::1]:8443/p?q", &u, why,
				      sizeof(why)),
			 0);
	assert_true(u.https);
	assert_true(u.ipv6);
	assert_int_equal(u.host_len, 3);
	assert_memory_equal(u.host, "::1", 3);
	assert_int_equal(u.port, 8443);
	assert_int_equal(cp_url_parse("http://h", &u, why, sizeof(why)), 0);
	assert_false(u.https);
	assert_int_equal(u.port, 0);
	assert_int_equal(cp_url_parse("https://", &u, why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "URL has no host");
	assert_int_equal(cp_url_parse("https://u@h/", &u, why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "URL must not contain a user name");
}

static void test_same_origin(void **state)
{
	static const char *const same[][2] = {
		{ "https://api.example.com", "https://API.example.com/x?y" },
		{ "https://api.example.com", "https://api.example.com:443/" },
		{ "HTTP://127.0.0.1:80/a", "http://127.0.0.1/b" },
		{ "http://[::1]:9/", "http://[0:0::1]:9/v1" },
	};
	static const char *const other[][2] = {
		{ "https://api.example.com", "http://api.example.com" },
		{ "https://api.example.com", "https://api.example.com:8443/" },
		{ "https://api.example.com", "https://api.example.com.evil/" },
		{ "http://127.0.0.1:9/", "http://localhost:9/" },
		{ "http://127.0.0.1:9/", "http://127.0.0.1:10/" },
		{ "http://[::1]:9/", "http://[::2]:9/" },
		{ "https://api.example.com", "https://u@api.example.com/" },
		{ "https://api.example.com", "/relative" },
		{ "https://api.example.com", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < CP_ARRAY_SIZE_T(same); i++)
		if (!cp_url_same_origin(same[i][0], same[i][1]) ||
		    !cp_url_same_origin(same[i][1], same[i][0]))
			fail_msg("'%s' ~ '%s' not the same", same[i][0],
				 same[i][1]);
	for (i = 0; i < CP_ARRAY_SIZE_T(other); i++)
		if (cp_url_same_origin(other[i][0], other[i][1]) ||
		    cp_url_same_origin(other[i][1], other[i][0]))
			fail_msg("'%s' ~ '%s' the same", other[i][0],
				 other[i][1] ? other[i][1] : "(null)");
}

static void test_utc_time(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(cp_utc_time(1970, 1, 1, 0, 0, 0, &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(cp_utc_time(1994, 11, 6, 8, 49, 37, &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(cp_utc_time(2000, 2, 29, 23, 59, 60, &t), 0);
	assert_int_equal(t, 951868800);
	assert_int_equal(cp_utc_time(1601, 1, 1, 0, 0, 0, &t), 0);
	assert_int_equal(t, -11644473600LL);
	assert_int_equal(cp_utc_time(2100, 2, 29, 0, 0, 0, &t), -EINVAL);
	assert_int_equal(cp_utc_time(2023, 4, 31, 0, 0, 0, &t), -EINVAL);
	assert_int_equal(cp_utc_time(2023, 0, 1, 0, 0, 0, &t), -EINVAL);
	assert_int_equal(cp_utc_time(2023, 13, 1, 0, 0, 0, &t), -EINVAL);
	assert_int_equal(cp_utc_time(2023, 1, 0, 0, 0, 0, &t), -EINVAL);
	assert_int_equal(cp_utc_time(2023, 1, 1, 24, 0, 0, &t), -EINVAL);
	assert_int_equal(cp_utc_time(2023, 1, 1, 0, 60, 0, &t), -EINVAL);
	assert_int_equal(cp_utc_time(2023, 1, 1, 0, 0, 61, &t), -EINVAL);
	assert_int_equal(cp_utc_time(2023, 1, 1, -1, 0, 0, &t), -EINVAL);
	assert_int_equal(cp_utc_time(0, 1, 1, 0, 0, 0, &t), -EINVAL);
	assert_int_equal(cp_utc_time(10000, 1, 1, 0, 0, 0, &t), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_objectid),
		cmocka_unit_test(test_url_check),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_url_split),
		cmocka_unit_test(test_url_parse),
		cmocka_unit_test(test_same_origin),
		cmocka_unit_test(test_utc_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
