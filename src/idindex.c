/*
 * idindex.c - an index by ObjectId over a caller's array (see idindex.h).
 */
#include "idindex.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#define MIN_SLOTS 64

/* FNV-1a over the id folded to lower case, then a final mix so that the
 * low bits (the slot) depend on every character. */
static uint64_t id_hash(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *id; id++) {
		h ^= (unsigned char)tolower((unsigned char)*id);
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static const char *key_at(const void *base, size_t stride, uint32_t pos)
{
	return (const char *)base + (size_t)pos * stride;
}

/* The slot holding @id, or the empty slot where it would go.  @cap is a
 * power of two and the table is never full. */
static uint32_t *slot_for(uint32_t *slots, size_t cap, const void *base,
			  size_t stride, const char *id)
{
	size_t i = (size_t)id_hash(id) & (cap - 1);

	while (slots[i] &&
	       strcasecmp(key_at(base, stride, slots[i] - 1), id) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

void cp_idindex_free(struct cp_idindex *ix)
{
	free(ix->slots);
	ix->slots = NULL;
	ix->cap = ix->n = 0;
}

long cp_idindex_find(const struct cp_idindex *ix, const void *base,
		     size_t stride, const char *id)
{
	uint32_t *slot;

	if (!ix->cap)
		return -1;
	slot = slot_for(ix->slots, ix->cap, base, stride, id);
	return *slot ? (long)*slot - 1 : -1;
}

int cp_idindex_add(struct cp_idindex *ix, const void *base, size_t stride)
{
	if (ix->n >= INT32_MAX)
		return -E2BIG;
	if ((ix->n + 1) * 2 > ix->cap) {
		size_t ncap = ix->cap ? ix->cap * 2 : MIN_SLOTS;
		uint32_t *ns = calloc(ncap, sizeof(*ns));
		uint32_t i;

		if (!ns)
			return -ENOMEM;
		for (i = 0; i < ix->n; i++)
			*slot_for(ns, ncap, base, stride,
				  key_at(base, stride, i)) = i + 1;
		free(ix->slots);
		ix->slots = ns;
		ix->cap = ncap;
	}
	*slot_for(ix->slots, ix->cap, base, stride,
		  key_at(base, stride, (uint32_t)ix->n)) = (uint32_t)ix->n + 1;
	ix->n++;
	return 0;
}
