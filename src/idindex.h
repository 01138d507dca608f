/*
 * idindex.h - finding a record by its ObjectId in an array the caller owns.
 *
 * The caller keeps its records in one array, @stride bytes apart, each
 * starting with its id as a NUL-terminated string (a char[CP_ID_BUF]
 * first member).  The index maps an id, in any case, to the record's
 * position: open addressing with linear probing over slots that hold
 * position + 1 (0 = empty), at most half full, doubling as it grows.
 * The array may move (realloc) between calls: every call takes its
 * current base.  Records are only ever added, in array order.
 *
 * Used by the walker (walk.c: files and products of a walk) and by
 * discovery (discover.c: what one walk queued, found and owned).  The
 * long-lived tables (files.c, pages.c) key on inode numbers too and
 * keep their own chained hashes.
 *
 * Thread safety: none; the index belongs to whoever owns the array.
 */
#ifndef CP_IDINDEX_H
#define CP_IDINDEX_H

#include <stddef.h>
#include <stdint.h>

struct cp_idindex {
	uint32_t *slots; /* position + 1, 0 empty; NULL while cap is 0 */
	size_t cap;      /* a power of two, or 0 */
	size_t n;        /* records indexed: positions 0 .. n-1 */
};

#define CP_IDINDEX_INIT { NULL, 0, 0 }

/* Frees the slots and leaves @ix empty (the array is the caller's). */
void cp_idindex_free(struct cp_idindex *ix);

/* The position of the record whose id is @id (compared ignoring case)
 * in @base, or -1. */
long cp_idindex_find(const struct cp_idindex *ix, const void *base,
		     size_t stride, const char *id);

/* Indexes record number @ix->n of @base, whose id is already written
 * and not yet indexed (the caller checked with cp_idindex_find()).
 * 0, or -ENOMEM (the index is unchanged) or -E2BIG (2^31 records). */
int cp_idindex_add(struct cp_idindex *ix, const void *base, size_t stride);

#endif
