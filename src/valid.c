/*
 * valid.c - the shared checks: ObjectIds, sizes, calendar dates, URLs.
 *
 * The URL code is one parser in two layers: cp_url_split() finds the
 * parts of any "scheme://authority/path?query#fragment", and
 * cp_url_parse() reads an http(s) URL strictly on top of it.  Owns no
 * state; called from every thread.
 */
#include "valid.h"

#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URL_MAX 16384

int cp_objectid_valid(const char *name)
{
	int i;

	if (!name)
		return 0;
	for (i = 0; i < CP_ID_LEN; i++)
		if (!isxdigit((unsigned char)name[i]))
			return 0;
	return name[CP_ID_LEN] == '\0';
}

int cp_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	const char *unit;
	uint64_t ipart = 0, mult = 1, frac = 0, scale = 1, v;
	int ndigits = 0, nfrac = 0;

	if (!s)
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++, ndigits++) {
		unsigned d = (unsigned)(*s - '0');

		if (ipart > (UINT64_MAX - d) / 10)
			return -EINVAL;
		ipart = ipart * 10 + d;
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, nfrac++) {
			if (nfrac >= 9)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*s - '0');
			scale *= 10;
		}
		if (!nfrac)
			return -EINVAL;
	}
	if (!ndigits)
		return -EINVAL;
	/* K, M, G, T: 2^10 each step */
	unit = *s ? strchr(units, toupper((unsigned char)*s)) : NULL;
	if (unit) {
		mult = 1ULL << (10 * (unit - units + 1));
		s++;
		if (*s == 'i' || *s == 'I')
			s++;
	}
	if (*s == 'B' || *s == 'b')
		s++;
	if (*s)
		return -EINVAL;
	if (ipart > UINT64_MAX / mult)
		return -EINVAL;
	v = ipart * mult;
	if (frac) {
		/* frac < 1e9 and mult <= 2^40: split to stay in 64 bits */
		uint64_t add =
			(mult / scale) * frac + (mult % scale) * frac / scale;

		if (v > UINT64_MAX - add)
			return -EINVAL;
		v += add;
	}
	*out = v;
	return 0;
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (valid input). */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int cp_utc_time(int year, int month, int day, int hour, int min, int sec,
		int64_t *out)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30,
				       31, 31, 30, 31, 30, 31 };

	if (year < 1 || year > 9999 || month < 1 || month > 12)
		return -EINVAL;
	if (day < 1 || day > mdays[month - 1] + (month == 2 && is_leap(year)))
		return -EINVAL;
	if (hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 ||
	    sec > 60)
		return -EINVAL;
	*out = days_from_civil(year, month, day) * 86400 + hour * 3600 +
	       min * 60 + sec;
	return 0;
}

/* ---- URLs ---- */

static int url_fail(char *why, size_t whylen, const char *reason)
{
	snprintf(why, whylen, "%s", reason);
	return -EINVAL;
}

/* Length of the scheme ("https") at the start of @url, or 0 when @url
 * does not start with a scheme and "://". */
static size_t scheme_len(const char *url)
{
	size_t i = 0;

	if (!isalpha((unsigned char)url[0]))
		return 0;
	while (isalnum((unsigned char)url[i]) || url[i] == '+' ||
	       url[i] == '-' || url[i] == '.')
		i++;
	return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

int cp_url_split(const char *url, struct cp_url *u)
{
	const char *auth, *end, *at;

	memset(u, 0, sizeof(*u));
	if (!url || !(u->scheme_len = scheme_len(url)))
		return -EINVAL;
	u->scheme = url;
	auth = url + u->scheme_len + 3;
	end = auth + strcspn(auth, "/?#");
	if (end == auth)
		return -EINVAL;
	/* Userinfo: everything up to the last '@' of the authority. */
	for (at = auth; at < end; at++) {
		if (*at == '@') {
			u->userinfo = auth;
			u->userinfo_len = (size_t)(at - auth);
		}
	}
	if (u->userinfo)
		auth = u->userinfo + u->userinfo_len + 1;
	u->authority = auth;
	u->authority_len = (size_t)(end - auth);
	u->path = end;
	u->path_len = strcspn(end, "?#");
	return 0;
}

/* The host and port of an authority without userinfo. */
static int parse_host_port(struct cp_url *u, char *why, size_t whylen)
{
	const char *auth = u->authority, *end = auth + u->authority_len, *q;
	size_t i;

	if (auth < end && *auth == '[') {
		q = memchr(auth, ']', (size_t)(end - auth));
		if (!q)
			return url_fail(why, whylen, "bad IPv6 address in URL");
		u->host = auth + 1;
		u->host_len = (size_t)(q - auth - 1);
		u->ipv6 = 1;
		q++;
	} else {
		q = auth;
		while (q < end && *q != ':')
			q++;
		u->host = auth;
		u->host_len = (size_t)(q - auth);
		for (i = 0; i < u->host_len; i++) {
			char c = u->host[i];

			if (!isalnum((unsigned char)c) && c != '.' &&
			    c != '-' && c != '_')
				return url_fail(why, whylen,
						"bad character in URL host");
		}
	}
	if (u->host_len == 0)
		return url_fail(why, whylen, "URL has no host");
	if (q < end) {
		unsigned long port = 0;

		if (*q != ':' || q + 1 == end)
			return url_fail(why, whylen, "bad port in URL");
		for (q++; q < end; q++) {
			if (!isdigit((unsigned char)*q) || port > 65535)
				return url_fail(why, whylen,
						"bad port in URL");
			port = port * 10 + (unsigned long)(*q - '0');
		}
		if (port == 0 || port > 65535)
			return url_fail(why, whylen, "bad port in URL");
		u->port = (unsigned)port;
	}
	return 0;
}

int cp_url_parse(const char *url, struct cp_url *u, char *why, size_t whylen)
{
	size_t n, i, slen;
	int https;

	memset(u, 0, sizeof(*u));
	if (!url)
		return url_fail(why, whylen, "no URL");
	n = strnlen(url, URL_MAX + 1);
	if (n > URL_MAX)
		return url_fail(why, whylen, "URL is too long");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c <= 0x20 || c >= 0x7f || c == '\\')
			return url_fail(why, whylen,
					"URL contains a space, control or "
					"non-ASCII character");
	}
	slen = scheme_len(url);
	if (!slen)
		return url_fail(why, whylen, "not an absolute URL");
	https = slen == 5 && strncasecmp(url, "https", 5) == 0;
	if (!https && !(slen == 4 && strncasecmp(url, "http", 4) == 0)) {
		snprintf(why, whylen, "scheme %.*s is not allowed",
			 (int)CP_MIN(slen, 16), url);
		return -EINVAL;
	}
	/* With a scheme, the split fails only on an empty authority. */
	if (cp_url_split(url, u) < 0)
		return url_fail(why, whylen, "URL has no host");
	u->https = https;
	if (u->userinfo)
		return url_fail(why, whylen,
				"URL must not contain a user name");
	return parse_host_port(u, why, whylen);
}

static int host_is_loopback(const struct cp_url *u)
{
	char host[64];
	unsigned char addr[16];

	if (u->host_len >= sizeof(host))
		return 0;
	memcpy(host, u->host, u->host_len);
	host[u->host_len] = '\0';
	if (u->ipv6)
		return inet_pton(AF_INET6, host, addr) == 1 &&
		       memcmp(addr, &in6addr_loopback, 16) == 0;
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, addr) == 1 && addr[0] == 127;
}

int cp_url_is_loopback(const char *url)
{
	struct cp_url u;
	char why[8];

	if (cp_url_parse(url, &u, why, sizeof(why)))
		return 0;
	return host_is_loopback(&u);
}

int cp_url_check(const char *url, char *why, size_t whylen)
{
	struct cp_url u;
	char dummy[1];

	if (!why || !whylen) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	if (cp_url_parse(url, &u, why, whylen))
		return -EINVAL;
	if (!u.https && !host_is_loopback(&u)) {
		snprintf(why, whylen,
			 "http:// is allowed only to a loopback host; use "
			 "https://");
		return -EINVAL;
	}
	why[0] = '\0';
	return 0;
}

/* Two hosts of parsed URLs are the same: names without regard to case,
 * IPv6 addresses by value ("[::1]" is "[0:0::1]"). */
static int same_host(const struct cp_url *a, const struct cp_url *b)
{
	char ha[64], hb[64];
	unsigned char aa[16], ab[16];

	if (a->ipv6 != b->ipv6)
		return 0;
	if (!a->ipv6)
		return a->host_len == b->host_len &&
		       strncasecmp(a->host, b->host, a->host_len) == 0;
	if (a->host_len >= sizeof(ha) || b->host_len >= sizeof(hb))
		return 0;
	memcpy(ha, a->host, a->host_len);
	ha[a->host_len] = '\0';
	memcpy(hb, b->host, b->host_len);
	hb[b->host_len] = '\0';
	return inet_pton(AF_INET6, ha, aa) == 1 &&
	       inet_pton(AF_INET6, hb, ab) == 1 && memcmp(aa, ab, 16) == 0;
}

int cp_url_same_origin(const char *a, const char *b)
{
	struct cp_url ua, ub;
	char why[8];
	unsigned pa, pb;

	if (cp_url_parse(a, &ua, why, sizeof(why)) ||
	    cp_url_parse(b, &ub, why, sizeof(why)))
		return 0;
	pa = ua.port ? ua.port : ua.https ? 443 : 80;
	pb = ub.port ? ub.port : ub.https ? 443 : 80;
	return ua.https == ub.https && pa == pb && same_host(&ua, &ub);
}
