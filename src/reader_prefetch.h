/*
 * reader_prefetch.h - the prefetch planner of reader.c: pure arithmetic
 * over one handle's access pattern, here so that tests/unit/test_reader.c
 * can drive it without a mount.  Nothing else should need it.
 *
 * A read that continues near where the previous ones ended (or inside
 * what was already asked for) is sequential; a jump is a seek, which
 * fetches the blocks it needs and opens no window (a reader that goes on
 * in order from there gets one at its next read), as does a small first
 * read.  (Not direct: another reader of the file may be fetching those
 * blocks already, and a block is fetched once.)  Two seeks with little
 * read between them switch the handle to random mode (no prefetch); a
 * long enough run in order switches it back.  A
 * sequential handle keeps a window of blocks asked for ahead of its
 * reads, topped up a whole transfer at a time; the window doubles when
 * the reader had to wait and halves when memory is short.
 *
 * Thread safety: none; reader.c calls it under the handle's lock.
 */
#ifndef CP_READER_PREFETCH_H
#define CP_READER_PREFETCH_H

#include <stdint.h>

struct cp_prefetch {
	int64_t next_off;  /* where the last read ended */
	uint64_t ahead;    /* blocks below this were already asked for */
	unsigned window;   /* blocks to keep in flight ahead */
	unsigned seeks;    /* seeks since the last long run in order */
	int64_t run;       /* bytes read in order since the last seek */
	int random;        /* random mode: fetch only what a read needs */
	int seek;          /* the last read planned was a seek (no window) */
};

void cp_prefetch_init(struct cp_prefetch *pf);

/* Blocks per transfer for a window: about a quarter of it, a power of
 * two from 1 up to CP_PART_BLOCKS. */
int cp_prefetch_part_blocks(unsigned window);

/*
 * Takes a read of [@off, @end) of an object of @size bytes into the
 * pattern and returns the blocks to ask for ahead of it, [*from, *to)
 * (empty for a seek or a small first read, in random mode, or while
 * less than a whole
 * transfer is missing from the window).  Those blocks count as asked for from now
 * on.
 */
void cp_prefetch_plan(struct cp_prefetch *pf, int64_t size, int64_t off,
		      int64_t end, uint64_t *from, uint64_t *to);

/* The blocks from @index on were not asked for after all (out of
 * budget); with @memory_short the window also halves (not below
 * CP_WINDOW_MIN). */
void cp_prefetch_cut(struct cp_prefetch *pf, uint64_t index,
		     int memory_short);

/* The reader had to wait for data: the window doubles, up to @max
 * blocks (not in random mode). */
void cp_prefetch_waited(struct cp_prefetch *pf, unsigned max);

#endif
