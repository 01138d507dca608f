/*
 * pages.h - the by-page/ index (-o names): which checkout pages, events
 * and products refer to which files.
 *
 * An owner is a page, an event or a product: its id, its display name
 * (name, else slug, else id: discovery decides) and the ids of the files
 * it refers to.  Its directory and each of its links get inode numbers
 * from the ids (ino.h), so they are the same in every mount.  A link's
 * number never points at another file later in the same mount (the
 * kernel may keep the target it read; pages.c says how).
 *
 * Owners are set by discovery as it finds them; after a complete walk,
 * those the walk did not see again are dropped (a page deleted on the
 * store leaves by-page/ at the next refresh).
 *
 * Thread safety: one mutex, a leaf lock never held across I/O.  Written
 * by the discovery thread, read by FUSE workers; readers get copies.
 */
#ifndef CP_PAGES_H
#define CP_PAGES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "valid.h"

struct cp_pages;

/* One link in a page directory, as a reader gets it. */
struct cp_page_link {
	char file_id[CP_ID_BUF];
	uint64_t ino;
};

/* An empty index; @mask: the hash bits of its numbers (CP_INO_MASK in a
 * mount; tests pass a tiny one to force collisions). */
struct cp_pages *cp_pages_new(uint64_t mask);
void cp_pages_free(struct cp_pages *pages);

/*
 * Sets owner @id's display name and files (replacing what it had) and
 * marks it seen by walk number @walk.  @files: @nfiles ObjectIds,
 * duplicates ignored.  0 or -ENOMEM.
 */
int cp_pages_set(struct cp_pages *pages, const char *id, const char *name,
		 const char (*files)[CP_ID_BUF], size_t nfiles, unsigned walk);

/* After walk @walk completed: drops the owners it did not set. */
void cp_pages_retain(struct cp_pages *pages, unsigned walk);

/* A number that changes with every change to the index. */
uint64_t cp_pages_gen(struct cp_pages *pages);

/* Number of owners. */
size_t cp_pages_count(struct cp_pages *pages);

/*
 * Owner @i (0-based, in the order owners were first set) as its id,
 * display name (@name, @namelen) and directory inode.  0, or -ENOENT
 * past the end.
 */
int cp_pages_owner(struct cp_pages *pages, size_t i, char id[CP_ID_BUF],
		   char *name, size_t namelen, uint64_t *dir_ino);

/* Whether @dir_ino is an owner's directory. */
int cp_pages_has_dir(struct cp_pages *pages, uint64_t dir_ino);

/*
 * The links of the directory @dir_ino: a malloc'd array (caller frees)
 * in *@out and its length, or -ENOENT (no such directory) / -ENOMEM.
 */
ssize_t cp_pages_links(struct cp_pages *pages, uint64_t dir_ino,
		       struct cp_page_link **out);

/* The file a link inode points at: 0 and @file_id, or -ENOENT. */
int cp_pages_link_target(struct cp_pages *pages, uint64_t ino,
			 char file_id[CP_ID_BUF]);

#endif
