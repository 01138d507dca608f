/*
 * listing.h - the persisted discovery listing: what the last complete
 * walk found, written as it is found and read back one line at a time.
 *
 * A text file, one record per line, so neither writing nor reading it
 * needs memory in proportion to the account (a cJSON tree of 100 000
 * files took 153 MiB of RSS to load, this 51 MiB):
 *
 *     cpfs-listing 2 <complete_at>
 *     f <id> <size> <width> <height> <url> <name>
 *     p <id> <name> <id>,<id>,...
 *     end <files> <pages>
 *
 * Fields are separated by one space.  An unknown number is -1; an absent
 * string is "-"; strings are percent-escaped as util.h says (no space or
 * ',' is left in them), and a string that is "-" is written %2D.  The trailer
 * counts the records, so a file cut short (or any other file) is refused
 * as a whole before anything of it is used; a line that is not sane is
 * skipped and counted.  Written to a temporary file renamed over the old
 * one (durable.h).
 *
 * Thread safety: none needed; discovery's thread (and the start-up load
 * before it) are the only users.
 */
#ifndef CP_LISTING_H
#define CP_LISTING_H

#include <stddef.h>
#include <stdint.h>

#include "valid.h"

#define CP_LISTING_VERSION 2
#define CP_LISTING_MAX_BYTES (512LL << 20)
#define CP_LISTING_MAX_STR 2048 /* bytes of a URL or name */

struct cp_listing_file {
	const char *id;      /* ObjectId */
	int64_t size;        /* -1 unknown */
	int32_t width, height; /* -1 unknown */
	const char *url;     /* public URL, or NULL */
	const char *name;    /* display name, or NULL */
};

struct cp_listing_writer;

/* Starts a listing that will replace @path (its directory is @dir,
 * made when missing).  NULL with *@err set (-errno) on failure. */
struct cp_listing_writer *cp_listing_begin(const char *dir,
					   const char *path,
					   double complete_at, int *err);
int cp_listing_file(struct cp_listing_writer *w,
		    const struct cp_listing_file *f);
int cp_listing_page(struct cp_listing_writer *w, const char *id,
		    const char *name, const char (*files)[CP_ID_BUF],
		    size_t nfiles);
/* Finishes: writes the trailer and renames over the path (@commit), or
 * drops the temporary (!@commit, or after any earlier error).  Frees
 * @w.  0 or the first -errno met. */
int cp_listing_end(struct cp_listing_writer *w, int commit);

/* What a read hands over, one record at a time.  A callback's -1 counts
 * the record as bad; the strings live only for the call. */
struct cp_listing_sink {
	void *arg;
	int (*file)(void *arg, const struct cp_listing_file *f);
	int (*page)(void *arg, const char *id, const char *name,
		    const char (*files)[CP_ID_BUF], size_t nfiles);
};

/*
 * Reads @path into @sink.  1 when read (*@complete_at set, *@files the
 * file records read, *@bad the records skipped), 0 when there is none,
 * -EINVAL when it is not a whole listing of this version (nothing was
 * handed over), another -errno when it cannot be read.
 */
int cp_listing_read(const char *path, const struct cp_listing_sink *sink,
		    double *complete_at, size_t *files, unsigned *bad);

#endif
