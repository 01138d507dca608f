/*
 * ino.c - inode numbers from ids (see ino.h).
 */
#include "ino.h"

#include <ctype.h>

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) *
		    0x100000001b3ULL;
	return h;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t cp_ino_make(enum cp_ino_kind kind, const char *a, const char *b,
		     unsigned attempt, uint64_t mask)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	if (!mask || mask > CP_INO_MASK)
		mask = CP_INO_MASK;
	h = fnv1a(h, a);
	h = (h ^ '/') * 0x100000001b3ULL;
	h = fnv1a(h, b);
	for (;;) {
		uint64_t v = mix(h ^ ((uint64_t)attempt * 0x9e3779b97f4a7c15ULL)) &
			     mask;

		/* 0 is no number; below 16 are the fixed directories. */
		if (v != 0 && (kind != CP_INO_SPECIAL || v >= 16))
			return v | ((uint64_t)kind << CP_INO_KIND_SHIFT);
		attempt += 0x10000; /* stays apart from the caller's tries */
	}
}
