/*
 * fuzz.h - what the libFuzzer targets share.
 *
 * FUZZ_CHECK is an assert that NDEBUG cannot remove: a broken contract
 * aborts, and libFuzzer saves the input that did it.
 */
#ifndef CP_FUZZ_H
#define CP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: contract broken: %s\n",        \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* malloc that cannot return NULL (the fuzzer has no use for ENOMEM). */
static inline void *fuzz_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	FUZZ_CHECK(p != NULL);
	return p;
}

/* A NUL-terminated, exactly sized copy of @len bytes of @data. */
static inline char *fuzz_strndup(const void *data, size_t len)
{
	char *s = fuzz_alloc(len + 1);

	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

/* A message that fits @len bytes: terminated inside the buffer, and one
 * line (no CR or LF: it goes into a log line or onto stderr). */
static inline void fuzz_check_line(const char *buf, size_t len)
{
	FUZZ_CHECK(memchr(buf, '\0', len) != NULL);
	FUZZ_CHECK(strpbrk(buf, "\r\n") == NULL);
}

/* The same, and printable: no control characters at all, as for text a
 * remote server chose (bytes >= 0x80, UTF-8, are allowed). */
static inline void fuzz_check_printable(const char *buf, size_t len)
{
	const unsigned char *p;

	fuzz_check_line(buf, len);
	for (p = (const unsigned char *)buf; *p; p++)
		FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
}

/* No URL quoted in @text carries a query: presigned queries are secrets.
 * Looks at what follows each "://" up to white space or a quote. */
static inline void fuzz_check_no_query(const char *text)
{
	const char *p = text;

	while ((p = strstr(p, "://"))) {
		size_t n = strcspn(p, " \t\"'");

		FUZZ_CHECK(memchr(p, '?', n) == NULL);
		p += 3;
	}
}

/* Splits the next field off [*pos, size) at @sep.  Returns its start and
 * stores its length, or NULL when the input is used up. */
static inline const char *fuzz_next_field(const uint8_t *data, size_t size,
					  size_t *pos, char sep, size_t *len)
{
	const uint8_t *start, *end;

	if (*pos > size)
		return NULL;
	start = data + *pos;
	end = memchr(start, sep, size - *pos);
	if (!end)
		end = data + size;
	*len = (size_t)(end - start);
	*pos += *len + 1;
	return (const char *)start;
}

#endif
