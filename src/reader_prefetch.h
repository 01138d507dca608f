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
 * reads, topped up a whole transfer at a time, and capped by the
 * handle's share of the in-flight budget.
 *
 * The window follows the bandwidth-delay product of the path: it doubles
 * when the reader had to wait, for as long as that still raises the
 * throughput.  The planner counts rounds (the reader consumed a window's
 * worth since the last one) and their delivery rate; after two rounds in
 * a row that did not raise the best rate by a quarter the link is taken
 * as full and waits no longer grow the window (TCP's slow start, BBR's
 * "full pipe").  Every few full rounds it probes again (another reader
 * may have left), measuring from the rate it gets then.  The window
 * halves when memory is short.
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
	int small_first;   /* ...was a small first read (no window) */
	/* delivery rate, per round (see above): */
	double round_t;    /* when the current round began; 0 = none yet */
	int64_t round_off; /* next_off then */
	double best_rate;  /* best bytes/s of a round since the last probe */
	unsigned flat;     /* rounds in a row without a rise */
	int full;          /* throughput stopped rising: waits do not grow */
};

void cp_prefetch_init(struct cp_prefetch *pf);

/* Blocks per transfer for a window: about a quarter of it, a power of
 * two from 1 up to CP_PART_BLOCKS. */
int cp_prefetch_part_blocks(unsigned window);

/*
 * Takes a read of [@off, @end) of an object of @size bytes into the
 * pattern and returns the blocks to ask for ahead of it, [*from, *to)
 * (empty for a seek or a small first read, in random mode, or while
 * less than a whole transfer is missing from the window).  The window
 * is first cut to @max blocks (the handle's share of the budget; not
 * below CP_WINDOW_MIN).  Those blocks count as asked for from now on.
 */
void cp_prefetch_plan(struct cp_prefetch *pf, int64_t size, int64_t off,
		      int64_t end, unsigned max, uint64_t *from,
		      uint64_t *to);

/* The blocks from @index on were not asked for after all (out of
 * budget); with @memory_short the window also halves (not below
 * CP_WINDOW_MIN). */
void cp_prefetch_cut(struct cp_prefetch *pf, uint64_t index,
		     int memory_short);

/* A read planned by cp_prefetch_plan() was served at time @now (seconds,
 * any monotonic scale), after waiting for the network when @waited: the
 * round's rate is taken when a round ends, and a wait doubles the window,
 * up to @max blocks, while the throughput still rises (not in random
 * mode, nor after a seek). */
void cp_prefetch_served(struct cp_prefetch *pf, double now, int waited,
			unsigned max);

#endif
