/*
 * valid.h - the checks every module shares on untrusted text: ObjectIds,
 * sizes, calendar dates, and URLs, with the only URL parser in cpfs.
 *
 * A URL is split once, here (cp_url_split), leniently: scheme, userinfo,
 * authority, path.  On top of it, cp_url_parse() is the strict reading
 * of an http(s) URL that decides where a request may go; the log's
 * secret-free form of a URL (cp_log_url in log.c) and the API client's
 * same-origin rule for redirects both use these two, so what is checked
 * is what is logged and what is compared.
 *
 * Pure functions over strings: no allocation, no I/O, no logging.  They
 * take input from the command line and the network and are fuzzed
 * (tests/fuzz/fuzz_opts.c, and through the manifest and API parsers).
 *
 * Thread safety: all functions are thread safe.
 */
#ifndef CP_VALID_H
#define CP_VALID_H

#include <stddef.h>
#include <stdint.h>

/* An ObjectId is 24 hex digits; a buffer for one holds its NUL too. */
#define CP_ID_LEN 24
#define CP_ID_BUF (CP_ID_LEN + 1)

/* 1 if @name is a 24-character hex ObjectId, else 0. */
int cp_objectid_valid(const char *name);

/* "123", "64K", "64M", "1G", "1.5G" (K = 1024).  0 or -EINVAL. */
int cp_parse_size(const char *s, uint64_t *out);

/*
 * A date and time of day in UTC, by fields (@month 1-12, @day 1-31,
 * @sec up to 60 for a leap second), as seconds since the Epoch in
 * *@out.  Checks each field's range and the day against the month's
 * length (leap years included), for years 1 to 9999; a format with a
 * narrower range of years checks that itself.  0 or -EINVAL.
 */
int cp_utc_time(int year, int month, int day, int hour, int min, int sec,
		int64_t *out);

/* Where the parts of a URL are; pointers into it, not NUL-terminated. */
struct cp_url {
	const char *scheme;    /* "https" in "https://h/p" */
	size_t scheme_len;
	const char *userinfo;  /* "u:pw" in "https://u:pw@h/", else NULL */
	size_t userinfo_len;
	const char *authority; /* "h:8443": host and port, no userinfo */
	size_t authority_len;
	const char *path;      /* "/p" ("" when none): no query, fragment */
	size_t path_len;
	/* Filled by cp_url_parse() only: */
	const char *host;      /* without the brackets of an IPv6 address */
	size_t host_len;
	int ipv6;
	int https;             /* 1 for https, 0 for http */
	unsigned port;         /* 0 when not given */
};

/*
 * The lenient split: a scheme (a letter, then letters, digits, '+', '-'
 * or '.') followed by "://" and a non-empty authority (userinfo
 * included).  Fills the first four parts of @u; nothing is checked
 * beyond that.  0 or -EINVAL.
 */
int cp_url_split(const char *url, struct cp_url *u);

/*
 * The strict reading of an http(s) URL: printable ASCII without spaces
 * or backslashes, at most 16 KiB, scheme http or https (any case), no
 * userinfo, a host of letters, digits, '.', '-' and '_' or a bracketed
 * IPv6 address, and a port from 1 to 65535 when one is given.  Fills
 * all of @u.  0, or -EINVAL with a reason in @why (one line, never the
 * URL's query).
 */
int cp_url_parse(const char *url, struct cp_url *u, char *why,
		 size_t whylen);

/* 1 if the host of the http(s) @url is loopback (127.0.0.0/8,
 * localhost, [::1]), else 0. */
int cp_url_is_loopback(const char *url);

/*
 * 0 if @url may be fetched: https://, or http:// to a loopback host.
 * Else -EINVAL with a reason in @why ("scheme ftp is not allowed", ...).
 * Used for API_URL and for every URL the API hands out.
 */
int cp_url_check(const char *url, char *why, size_t whylen);

/* 1 when the http(s) URLs @a and @b have the same scheme, host and
 * port (a port not given is the scheme's: 80 or 443), compared without
 * regard to case, IPv6 addresses by value; 0 otherwise, when either does
 * not parse, and for a bracketed host that is no IPv6 address. */
int cp_url_same_origin(const char *a, const char *b);

#endif
