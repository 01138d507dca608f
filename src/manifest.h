/*
 * manifest.h - the ids= file: which files the root directory lists.
 *
 * One entry a line: a bare ObjectId, or the JSON object the upload
 * endpoint returns ({"data":{...}} or the inner object itself) with
 * "id" and optionally "size", "name", "type", "createdAt", "purpose" and
 * "location".  A record with "purpose":"image" and a "location" is a
 * public file: its location must pass cp_url_check() (https, or http to
 * a loopback host), else the line is bad.
 * Blank lines and lines whose first non-blank character is '#' are
 * skipped.  Surrounding white space is ignored.
 *
 * Thread safety: pure functions; cp_manifest_load() runs once at start.
 */
#ifndef CP_MANIFEST_H
#define CP_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "valid.h"

struct cp_manifest_entry {
	char id[CP_ID_BUF];    /* NUL-terminated ObjectId */
	int64_t size;          /* -1 when unknown */
	int64_t created_at;    /* seconds since the Epoch, -1 when unknown */
	char *name;            /* malloc'd, or NULL */
	char *content_type;    /* malloc'd, or NULL */
	char *purpose;         /* malloc'd, or NULL ("image", "file", ...) */
	char *location;        /* malloc'd public URL of an image, or NULL */
};

enum {
	CP_MANIFEST_ENTRY = 1, /* @entry filled */
	CP_MANIFEST_SKIP = 0,  /* blank or comment */
};

/*
 * Parses one line (@len bytes, no newline needed, not NUL-terminated).
 * Returns CP_MANIFEST_ENTRY, CP_MANIFEST_SKIP, or -EINVAL with a reason
 * in @why.  On CP_MANIFEST_ENTRY the caller frees the entry's strings
 * with cp_manifest_entry_clear().
 */
int cp_manifest_parse_line(const char *line, size_t len,
			   struct cp_manifest_entry *entry, char *why,
			   size_t whylen);

void cp_manifest_entry_clear(struct cp_manifest_entry *entry);

/*
 * Reads the file at @path and calls @fn for every entry, in order.  Bad
 * lines are reported (cp_warn "PATH:LINE: reason") and skipped.  Returns
 * the number of entries, or -errno when the file cannot be read (message
 * in @why).  @fn must not keep @entry's strings (copy them).
 */
int cp_manifest_load(const char *path,
		     void (*fn)(const struct cp_manifest_entry *entry,
				void *arg),
		     void *arg, char *why, size_t whylen);

#endif
