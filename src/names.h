/*
 * names.h - the naming rule of the views (-o names): by-name/<name> ->
 * ../<fileId> for every file whose original name is known, and the names
 * of by-page/<page>/ directories and of the links in them.
 *
 * The rule, deterministic for a given set of names:
 * - '/' and control characters (bytes < 0x20 and 0x7f) become '_';
 *   "." and ".." become "_" too; names are cut to 200 bytes.  An empty
 *   name is no name: the file gets no link.
 * - When several entries share a name, the one with the smallest id
 *   keeps it; each of the others is named "<name>~<id>".
 *
 * Thread safety: pure functions over a snapshot taken from the file
 * table; the result belongs to the caller.
 */
#ifndef CP_NAMES_H
#define CP_NAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "valid.h"

struct cp_files;
struct cp_file;

#define CP_NAME_MAX 256

struct cp_name_entry {
	char name[CP_NAME_MAX];
	char id[CP_ID_BUF];            /* what the entry names (file or page id) */
	struct cp_file *file;   /* the file, for by-name/; else NULL */
	uint64_t ino;           /* the entry's inode number */
};

/* Writes the safe form of @in into @out (always terminated). */
void cp_names_sanitize(const char *in, char *out, size_t len);

/*
 * Applies the rule to @n entries whose name fields hold raw names:
 * sanitizes them, makes them unique and sorts them by name.
 */
void cp_names_unique(struct cp_name_entry *v, size_t n);

/*
 * The by-name listing of the files the root lists, sorted by name.
 * Returns the number of entries and a malloc'd array in *@out (caller
 * frees), or -ENOMEM.
 */
ssize_t cp_names_list(struct cp_files *files, struct cp_name_entry **out);

#endif
