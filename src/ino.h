/*
 * ino.h - inode numbers derived from ids, so a file (and each view of it)
 * has the same number in every mount, whatever the order in which ids
 * were met, on every machine: backup tools (restic, borg) take a moved
 * inode number for a changed file.
 *
 * A number is a 3-bit kind above a 61-bit hash:
 *
 *   kind 0  the fixed directories: root (1), by-name/ (2), by-page/ (3)
 *   kind 1  a file: hash(fileId)
 *   kind 2  by-name/<name>: the file's hash, so it follows the file
 *   kind 3  by-page/<page>/: hash(owner id)
 *   kind 4  by-page/<page>/<name>: hash(owner id, fileId)
 *
 * The hash is FNV-1a (64 bits, fixed basis) over the lower-cased ids and
 * an attempt number, finished with a splitmix64 mix, masked to @mask
 * (CP_INO_MASK in a mount; tests pass a tiny mask to force collisions).
 * A hash of 0 is never used.  Collisions are resolved by the table that
 * hands the numbers out: it tries attempt 0, 1, 2 ... and takes the first
 * number not already given to another id in this mount, so within a
 * mount no number is ever reused; across mounts a number moves only for
 * ids whose 61-bit hashes collide, and then only between ids that met in
 * a different order.
 *
 * Thread safety: pure functions.
 */
#ifndef CP_INO_H
#define CP_INO_H

#include <stdint.h>

#define CP_INO_ROOT 1
#define CP_INO_BYNAME 2
#define CP_INO_BYPAGE 3

#define CP_INO_KIND_SHIFT 61
#define CP_INO_MASK ((1ULL << CP_INO_KIND_SHIFT) - 1)

enum cp_ino_kind {
	CP_INO_SPECIAL = 0,
	CP_INO_FILE = 1,
	CP_INO_NAME_LINK = 2,
	CP_INO_PAGE_DIR = 3,
	CP_INO_PAGE_LINK = 4,
};

/* The number of kind @kind for ids @a and @b (@b may be NULL), try
 * @attempt, hash bits @mask (at most CP_INO_MASK).  Never 0 and never a
 * kind-0 number for kinds above 0. */
uint64_t cp_ino_make(enum cp_ino_kind kind, const char *a, const char *b,
		     unsigned attempt, uint64_t mask);

static inline enum cp_ino_kind cp_ino_kind(uint64_t ino)
{
	return (enum cp_ino_kind)(ino >> CP_INO_KIND_SHIFT);
}

/* The same hash under another kind (a by-name link from its file). */
static inline uint64_t cp_ino_rekind(uint64_t ino, enum cp_ino_kind kind)
{
	return (ino & CP_INO_MASK) | ((uint64_t)kind << CP_INO_KIND_SHIFT);
}

#endif
