/*
 * fuzz_api_json.c - libFuzzer target for the API's JSON bodies.
 *
 * Drives cp_api_parse_download() and cp_api_parse_error() with the raw
 * input as a body.  The buffer libFuzzer hands us is exactly @size bytes
 * and not NUL-terminated, so ASan catches any read past the length the
 * parsers were given.  Beyond memory safety it checks the contract of
 * api.h: a successful parse yields a URL that cp_url_check() accepts and
 * an expiresIn in [1, CP_API_MAX_EXPIRES]; a refusal is -EPROTO with one
 * terminated line that never quotes a presigned query; an error message
 * is one printable line that fits its buffer.  Leaks are LeakSanitizer's.
 */
#include <errno.h>

#include "api.h"
#include "fuzz.h"
#include "util.h"
#include "valid.h"

static void fuzz_download(const char *body, size_t len, size_t whylen)
{
	char *why = fuzz_alloc(whylen);
	char *url = NULL;
	int64_t expires = -12345;
	char urlwhy[256];
	int ret;

	why[0] = '\0';
	ret = cp_api_parse_download(body, len, &url, &expires, why, whylen);
	if (ret == 0) {
		FUZZ_CHECK(url != NULL);
		FUZZ_CHECK(expires >= 1 && expires <= CP_API_MAX_EXPIRES);
		FUZZ_CHECK(cp_url_check(url, urlwhy, sizeof(urlwhy)) == 0);
	} else {
		FUZZ_CHECK(ret == -EPROTO);
		fuzz_check_line(why, whylen);
		/* The query of a presigned URL is a secret. */
		fuzz_check_no_query(why);
	}
	free(url);
	free(why);
}

static void fuzz_error(const char *body, size_t len, size_t msglen)
{
	char *msg = fuzz_alloc(msglen);

	memset(msg, 'x', msglen);
	cp_api_parse_error(body, len, msg, msglen);
	fuzz_check_printable(msg, msglen);
	free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The callers' buffer size first, then tiny ones to hit truncation;
	 * picked by the last byte, which is usually JSON white space or a
	 * closing brace, so the seed bodies keep parsing. */
	static const size_t lens[] = {256, 1, 2, 7, 16, 64, 512, 4096};
	unsigned pick = size ? data[size - 1] : 0;
	char *copy;

	/* Exactly @size bytes, unterminated: overreads are ASan errors. */
	fuzz_download((const char *)data, size,
		      lens[pick % CP_ARRAY_SIZE(lens)]);
	fuzz_error((const char *)data, size,
		   lens[(pick >> 3) % CP_ARRAY_SIZE(lens)]);

	/* A terminated copy, as the API client (which keeps a NUL after
	 * the body it collected) passes it. */
	copy = fuzz_strndup(data, size);
	fuzz_download(copy, size, 256);
	fuzz_error(copy, size, 256);
	free(copy);
	return 0;
}
