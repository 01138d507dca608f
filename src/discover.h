/*
 * discover.h - discovery: lists the whole account (SPEC section 6).
 *
 * The API has no "list files" call.  Discovery walks the checkout pages
 * and events (paginated lists), every product they refer to, and each
 * event's ticket groups and ticket types, and finds the files in those
 * answers with one generic walk over the JSON (walk.h).  Found files go
 * into the file table as they come (the root lists them at once, images
 * with their public URL); who refers to what goes into the by-page index
 * (pages.h).
 *
 * Beside the mount, never in front of it: one thread of its own makes
 * one API call at a time, in the rate limiter's low lane, so an open
 * waits behind at most the one discovery call on the wire.  A 429, a 5xx
 * or a network fault keeps what was found and resumes the same walk
 * later; a list whose cursor does not advance, or that never ends, is
 * cut short with one warning.  Bodies, item counts and nesting are
 * bounded; malformed pieces are skipped and counted.
 *
 * Persisted: the last complete walk is written to
 * <cache_dir>/discovery-<fingerprint> (listing.h's line format;
 * temporary file + rename; the
 * fingerprint is a hash of the API URL and key, so accounts sharing a
 * cache_dir keep apart).  cp_discover_load() lists it with no API
 * call, and the thread walks again only once it is older than
 * `refresh` (0: once a mount).  A damaged file is ignored with a warning
 * and replaced after the next complete walk.
 *
 * Thread safety: cp_discover_new/load/start/stop/free from the main
 * thread; the walk state belongs to the discovery thread alone; the file
 * table and the by-page index are thread safe.
 */
#ifndef CP_DISCOVER_H
#define CP_DISCOVER_H

struct cp_config;
struct cp_api;
struct cp_files;
struct cp_pages;
struct cp_stats;
struct cp_discover;

/* Everything must outlive the discoverer.  NULL on ENOMEM. */
struct cp_discover *cp_discover_new(const struct cp_config *cfg,
				    struct cp_api *api,
				    struct cp_files *files,
				    struct cp_pages *pages,
				    struct cp_stats *stats);

/* Lists the persisted walk, if any (no API call).  1 when one was
 * loaded, 0 when there was none or it was unusable. */
int cp_discover_load(struct cp_discover *d);

/* Starts the discovery thread.  0 or -errno. */
int cp_discover_start(struct cp_discover *d);

/* Stops the thread (an API call in flight ends with the shutdown) and
 * waits for it.  Safe when never started. */
void cp_discover_stop(struct cp_discover *d);

void cp_discover_free(struct cp_discover *d);

#endif
