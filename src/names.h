/*
 * names.h - the by-name/ directory (-o names): a symlink per file whose
 * original name is known, by-name/<name> -> ../<fileId>.
 *
 * The rule, deterministic for a given set of known files:
 * - '/' and control characters (bytes < 0x20 and 0x7f) become '_';
 *   "." and ".." become "_" too; names are cut to 200 bytes.  An empty
 *   name is no name: the file gets no link.
 * - When several files share a name, the one with the smallest id keeps
 *   it; each of the others is named "<name>~<fileId>".
 *
 * Thread safety: pure functions over a snapshot taken from the file
 * table; the result belongs to the caller.
 */
#ifndef CP_NAMES_H
#define CP_NAMES_H

#include <stddef.h>
#include <sys/types.h>

struct cp_files;
struct cp_file;

#define CP_NAME_MAX 256

struct cp_name_entry {
	char name[CP_NAME_MAX];
	struct cp_file *file;
};

/* Writes the safe form of @in into @out (always terminated). */
void cp_names_sanitize(const char *in, char *out, size_t len);

/*
 * The by-name listing of the files the root lists, sorted by name.
 * Returns the number of entries and a malloc'd array in *@out (caller
 * frees), or -ENOMEM.
 */
ssize_t cp_names_list(struct cp_files *files, struct cp_name_entry **out);

#endif
