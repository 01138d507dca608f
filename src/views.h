/*
 * views.h - the entries of the view directories (-o names): by-name/,
 * by-page/ and each by-page/<page>/, as sorted snapshots built from the
 * file table and the page index by the naming rule (names.h).
 *
 * A snapshot is immutable once built and reference-counted: a lookup
 * holds one for a binary search, an open directory for its listing.
 * Each directory's latest snapshot is kept with the generation of the
 * tables it was built from (cp_files_names_gen() + cp_pages_gen()); a
 * request that finds it out of date builds a new one (outside the lock)
 * and puts it in its place.  So a lookup by name costs a binary search,
 * not a build and sort of every name, and a listing of N names builds
 * them at most once.  Entries point at files (never freed in a mount):
 * attributes are read live from the table, not from the snapshot.
 *
 * Memory: one snapshot per recently used directory (a few slots), about
 * 24 bytes and the name per entry; a snapshot being listed or searched
 * lives until its last holder lets go.
 *
 * Thread safety: FUSE workers, concurrently.  One leaf mutex over the
 * slots (pointer swaps and reference counts only); builds run outside
 * it, taking the table's and the index's own locks.
 */
#ifndef CP_VIEWS_H
#define CP_VIEWS_H

#include <stddef.h>
#include <stdint.h>

struct cp_file;
struct cp_files;
struct cp_pages;
struct cp_stats;
struct cp_view;
struct cp_views;

/* One entry of a view directory, sorted by name. */
struct cp_view_entry {
	const char *name;      /* in the snapshot */
	struct cp_file *file;  /* what a link points at; NULL in by-page/ */
	uint64_t ino;          /* the link's (or page directory's) number */
};

struct cp_views *cp_views_new(struct cp_files *files, struct cp_pages *pages,
			      struct cp_stats *stats);
void cp_views_free(struct cp_views *views);

/*
 * The current snapshot of view directory @dir (CP_INO_BYNAME,
 * CP_INO_BYPAGE or a page directory's number), as a reference the caller
 * drops with cp_view_unref(); or NULL with -ENOENT (no such directory)
 * or -ENOMEM in *@err.
 */
struct cp_view *cp_views_get(struct cp_views *views, uint64_t dir, int *err);

void cp_view_unref(struct cp_view *view);

size_t cp_view_count(const struct cp_view *view);

/* Entry @i (< cp_view_count()). */
const struct cp_view_entry *cp_view_at(const struct cp_view *view, size_t i);

/* The entry named @name (the first of several), or NULL. */
const struct cp_view_entry *cp_view_find(const struct cp_view *view,
					 const char *name);

#endif
