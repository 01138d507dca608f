/*
 * walk.h - file and product references in any Checkout Page API answer.
 *
 * One generic walk over a cJSON tree, no code per endpoint, so members
 * the API reference does not show still count (SPEC §6.2):
 *
 *  - an object with a member "fileId" whose value is an ObjectId string
 *    is a file; its "url", "name", "size", "width" and "height" are taken
 *    from the same object when present and sane;
 *  - each ObjectId string in an array member "fileIds" is a file with
 *    nothing else known;
 *  - a member "productId" whose value is an ObjectId string, and the "id"
 *    of every object in an array member "products", are product refs.
 *
 * Member names compare case-sensitively; unknown members are ignored;
 * the walk goes on inside file objects.  A member that is null counts as
 * absent.  Ids are stored lower-cased and deduplicated.  Strings are
 * taken as cJSON holds them: a "\u0000" escape ends one there.  Depth, nodes,
 * files and products are bounded (the CP_WALK_MAX_* below); the walk
 * uses an explicit stack, never recursion, so any tree cJSON can hold is
 * safe to walk.
 *
 * Ownership: a struct cp_walk and everything it points to belongs to
 * the caller, who releases it with cp_walk_clear().  The walk never
 * keeps a pointer into the cJSON tree.
 *
 * Thread safety: pure; any thread.  One struct cp_walk must not be used
 * by two threads at once.
 */
#ifndef CP_WALK_H
#define CP_WALK_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "idindex.h"
#include "valid.h"

/* API bodies larger than this are refused by cp_walk_parse(). */
#define CP_WALK_MAX_BODY (4 << 20)
/* Nesting deeper than this is not walked (counted as skipped): the node
 * passed to cp_walk_node() is at level 1, and a non-empty array or
 * object at a level beyond this is not looked into (scalars directly
 * inside a container at this level still are). */
#define CP_WALK_MAX_DEPTH 64
/* Nodes visited per cp_walk_node() call; beyond: truncated. */
#define CP_WALK_MAX_ITEMS 100000
/* File refs, and product refs, kept per struct cp_walk; beyond: truncated. */
#define CP_WALK_MAX_FILES 20000
#define CP_WALK_MAX_PRODUCTS 20000
/* What a file object's fields must be to be taken. */
#define CP_WALK_MAX_URL 2048         /* bytes */
#define CP_WALK_MAX_NAME 255         /* bytes */
#define CP_WALK_MAX_SIZE (1LL << 50) /* bytes */
#define CP_WALK_MAX_DIM 1000000      /* pixels, width or height */

struct cp_walk_file {
	char id[CP_ID_BUF]; /* ObjectId, lower-cased, NUL-terminated */
	/* malloc'd, or NULL: only if cp_url_check() accepts it (https, or
	 * http to a loopback host), no control characters, <= 2048 bytes */
	char *url;
	/* malloc'd, or NULL: a non-empty string <= 255 bytes without NUL */
	char *name;
	/* -1 unknown; taken when a JSON number, whole, 0 <= size <= 2^50 */
	int64_t size;
	/* -1 unknown; taken when whole numbers 1..1000000 */
	int32_t width, height;
	int has_url; /* convenience: url != NULL */
};

/* The result; caller-owned, cleared with cp_walk_clear(). */
struct cp_walk {
	/* Deduplicated by id, in the order first seen; later sightings
	 * fill in fields that were unknown (a known field is never
	 * overwritten). */
	struct cp_walk_file *files;
	size_t nfiles;
	/* Product refs, lower-cased, deduplicated, in the order first
	 * seen.  Product refs that are not ObjectIds are ignored, not
	 * counted in @skipped. */
	char (*products)[CP_ID_BUF];
	size_t nproducts;
	/* Malformed things skipped, not fatal, summed over the calls: a
	 * non-null "fileId" that is not an ObjectId string (the object is
	 * not a file); a non-null "fileIds" that is not an array; each
	 * item of a "fileIds" array that is not an ObjectId string; a file
	 * object whose url, name, size, width or height is of the wrong
	 * type or not sane (those fields are ignored, the file is kept;
	 * counted once per object); a non-empty container nested deeper
	 * than CP_WALK_MAX_DEPTH (it is not looked into; counted once per
	 * such container). */
	unsigned skipped;
	/* A limit was hit: CP_WALK_MAX_ITEMS nodes in one call (the rest of
	 * that tree is not walked), or CP_WALK_MAX_FILES / _PRODUCTS (new
	 * ids are dropped, known ones still filled in).  Sticky. */
	int truncated;

	/* Private: indexes by id of @files and @products. */
	struct cp_idindex file_ix;
	struct cp_idindex product_ix;
	size_t files_alloc, products_alloc;
};

/* Makes @w empty, ready for cp_walk_node(). */
void cp_walk_init(struct cp_walk *w);

/* Frees everything @w owns and leaves it empty (as cp_walk_init()). */
void cp_walk_clear(struct cp_walk *w);

/*
 * Parses @body (@len bytes, not NUL-terminated) with the project's exact
 * JSON parser (cp_json_parse_exact(): trailing bytes other than white
 * space are malformed) after checking len <= CP_WALK_MAX_BODY.  Returns
 * the tree, which the caller cJSON_Delete()s, or NULL with a one-line
 * reason in @why (which may be NULL).  cJSON refuses nesting deeper
 * than CJSON_NESTING_LIMIT (1000).
 */
cJSON *cp_walk_parse(const char *body, size_t len, char *why, size_t whylen);

/*
 * Adds every file ref and product ref found anywhere under @node (itself
 * included; NULL adds nothing) to @w, which may already hold results of
 * earlier calls.  Returns 0, or -ENOMEM: then @w holds what was added
 * before, stays valid, and still needs cp_walk_clear().  Visits at most
 * CP_WALK_MAX_ITEMS nodes and never nests deeper than CP_WALK_MAX_DEPTH,
 * with an explicit stack: no recursion at all.
 */
int cp_walk_node(const cJSON *node, struct cp_walk *w);

/* The file with @id (any case), or NULL.  O(1); the pointer is valid
 * until @w changes. */
const struct cp_walk_file *cp_walk_find(const struct cp_walk *w,
					const char *id);

#endif
