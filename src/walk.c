/*
 * walk.c - the generic walker: file and product refs in any API answer.
 *
 * One pre-order walk over the cJSON tree with an explicit stack of at
 * most CP_WALK_MAX_DEPTH frames (one per open container), so neither a
 * deep tree nor a wide one can blow the C stack; every node is visited
 * at most once and an object's members are scanned once, so the work is
 * linear in the size of the tree.  Ids are deduplicated through two
 * idindex.h indexes over the files and products arrays, so 20 000 files
 * cost 20 000 lookups, not a scan each.
 *
 * What counts is decided where the walk stands: an object looks at its
 * own members (fileId and its siblings, productId), a node looks at the
 * name it has in its parent object ("fileIds" that is not an array) and
 * at its parent array's name ("fileIds" items, "products" objects).
 * cJSON keeps a member's name in the member node (->string), so no
 * lookahead is needed.
 *
 * Owns only what it puts into the caller's struct cp_walk; keeps no
 * pointer into the tree.  Thread safety: pure; any thread.
 */
#include "walk.h"

#include "json.h"
#include "valid.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The members of one object the walk cares about: the first of each. */
struct members {
	const cJSON *file_id, *url, *name, *size, *width, *height;
	const cJSON *product_id, *id;
};

/* One container being walked: its next child to visit. */
struct frame {
	const cJSON *node;
	const cJSON *next;
};

void cp_walk_init(struct cp_walk *w)
{
	memset(w, 0, sizeof(*w));
}

void cp_walk_clear(struct cp_walk *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; i < w->nfiles; i++) {
		free(w->files[i].url);
		free(w->files[i].name);
	}
	free(w->files);
	free(w->products);
	cp_idindex_free(&w->file_ix);
	cp_idindex_free(&w->product_ix);
	cp_walk_init(w);
}

cJSON *cp_walk_parse(const char *body, size_t len, char *why, size_t whylen)
{
	char dummy[1];
	cJSON *root;

	if (!why || !whylen) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	why[0] = '\0';
	if (len > CP_WALK_MAX_BODY) {
		snprintf(why, whylen,
			 "answer of %zu bytes is over the %d MiB limit", len,
			 CP_WALK_MAX_BODY >> 20);
		return NULL;
	}
	if (!body || !len) {
		snprintf(why, whylen, "empty answer");
		return NULL;
	}
	root = cp_json_parse_exact(body, len);
	if (!root)
		snprintf(why, whylen,
			 "answer is not JSON (or nested deeper than %d)",
			 CJSON_NESTING_LIMIT);
	return root;
}

/* ---- ids ---- */

static int is_objectid(const cJSON *item)
{
	return cJSON_IsString(item) && cp_objectid_valid(item->valuestring);
}

static void lower_id(char dst[CP_ID_BUF], const char *src)
{
	int i;

	for (i = 0; i < 24; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[24] = '\0';
}

/* Doubles @*arr (of @*alloc elements of @size bytes) when it holds @n. */
static int array_reserve(void **arr, size_t *alloc, size_t n, size_t size)
{
	size_t nalloc = *alloc ? *alloc * 2 : 16;
	void *na;

	if (n < *alloc)
		return 0;
	na = realloc(*arr, nalloc * size);
	if (!na)
		return -ENOMEM;
	*arr = na;
	*alloc = nalloc;
	return 0;
}

const struct cp_walk_file *cp_walk_find(const struct cp_walk *w,
					const char *id)
{
	long at;

	if (!w || !cp_objectid_valid(id))
		return NULL;
	at = cp_idindex_find(&w->file_ix, w->files, sizeof(*w->files), id);
	return at < 0 ? NULL : &w->files[at];
}

/* The file with the ObjectId @raw (any case), added with nothing known
 * if new.  NULL with *@err 0 when the file limit drops it, -ENOMEM. */
static struct cp_walk_file *file_get(struct cp_walk *w, const char *raw,
				     int *err)
{
	struct cp_walk_file *f;
	long at;

	*err = 0;
	at = cp_idindex_find(&w->file_ix, w->files, sizeof(*w->files), raw);
	if (at >= 0)
		return &w->files[at];
	if (w->nfiles >= CP_WALK_MAX_FILES) {
		w->truncated = 1;
		return NULL;
	}
	if (array_reserve((void **)&w->files, &w->files_alloc, w->nfiles,
			  sizeof(*w->files))) {
		*err = -ENOMEM;
		return NULL;
	}
	f = &w->files[w->nfiles];
	memset(f, 0, sizeof(*f));
	lower_id(f->id, raw);
	f->size = -1;
	f->width = -1;
	f->height = -1;
	if (cp_idindex_add(&w->file_ix, w->files, sizeof(*w->files))) {
		*err = -ENOMEM;
		return NULL;
	}
	w->nfiles++;
	return f;
}

/* Adds the product ObjectId @raw (any case) unless known.  0 or -ENOMEM;
 * the product limit drops it and marks @w truncated. */
static int product_add(struct cp_walk *w, const char *raw)
{
	if (cp_idindex_find(&w->product_ix, w->products,
			    sizeof(*w->products), raw) >= 0)
		return 0;
	if (w->nproducts >= CP_WALK_MAX_PRODUCTS) {
		w->truncated = 1;
		return 0;
	}
	if (array_reserve((void **)&w->products, &w->products_alloc,
			  w->nproducts, sizeof(*w->products)))
		return -ENOMEM;
	lower_id(w->products[w->nproducts], raw);
	if (cp_idindex_add(&w->product_ix, w->products, sizeof(*w->products)))
		return -ENOMEM;
	w->nproducts++;
	return 0;
}

/* ---- what a file object's fields may hold ---- */

/* Each returns 1 when the member is absent or null, 0 when it is sane
 * (value stored), -1 when it is not (nothing stored). */

static int sane_url(const cJSON *item, const char **out)
{
	const char *s;
	size_t n, i;

	if (!item || cJSON_IsNull(item))
		return 1;
	if (!cJSON_IsString(item) || !item->valuestring)
		return -1;
	s = item->valuestring;
	n = strnlen(s, CP_WALK_MAX_URL + 1);
	if (n > CP_WALK_MAX_URL)
		return -1;
	/* cp_url_check() refuses these too; the header promises it here. */
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
	if (cp_url_check(s, NULL, 0))
		return -1;
	*out = s;
	return 0;
}

static int sane_name(const cJSON *item, const char **out)
{
	size_t n;

	if (!item || cJSON_IsNull(item))
		return 1;
	if (!cJSON_IsString(item) || !item->valuestring)
		return -1;
	n = strnlen(item->valuestring, CP_WALK_MAX_NAME + 1);
	if (n == 0 || n > CP_WALK_MAX_NAME)
		return -1;
	*out = item->valuestring;
	return 0;
}

/* A JSON number that is whole and in [@min, @max]. */
static int sane_whole(const cJSON *item, double min, double max, int64_t *out)
{
	double v;

	if (!item || cJSON_IsNull(item))
		return 1;
	if (!cJSON_IsNumber(item))
		return -1;
	v = item->valuedouble;
	if (!isfinite(v) || v != floor(v) || v < min || v > max)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* Copies @s into *@dst when that is still unknown.  0 or -ENOMEM. */
static int fill_string(char **dst, const char *s)
{
	if (*dst || !s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

/* The object whose members are @m has a "fileId": a file, or skipped. */
static int take_file(const struct members *m, struct cp_walk *w)
{
	const char *url = NULL, *name = NULL;
	int64_t size = -1, width = -1, height = -1;
	struct cp_walk_file *f;
	int bad = 0, err;

	if (cJSON_IsNull(m->file_id))
		return 0;
	if (!is_objectid(m->file_id)) {
		w->skipped++;
		return 0;
	}
	bad |= sane_url(m->url, &url) < 0;
	bad |= sane_name(m->name, &name) < 0;
	bad |= sane_whole(m->size, 0, (double)CP_WALK_MAX_SIZE, &size) < 0;
	bad |= sane_whole(m->width, 1, CP_WALK_MAX_DIM, &width) < 0;
	bad |= sane_whole(m->height, 1, CP_WALK_MAX_DIM, &height) < 0;
	if (bad)
		w->skipped++;

	f = file_get(w, m->file_id->valuestring, &err);
	if (!f)
		return err;
	err = fill_string(&f->url, url);
	f->has_url = f->url != NULL;
	if (err || fill_string(&f->name, name))
		return -ENOMEM;
	if (f->size < 0)
		f->size = size;
	if (f->width < 0)
		f->width = (int32_t)width;
	if (f->height < 0)
		f->height = (int32_t)height;
	return 0;
}

/* ---- the walk ---- */

static int named(const cJSON *node, const char *name)
{
	return node && node->string && strcmp(node->string, name) == 0;
}

static void find_members(const cJSON *obj, struct members *m)
{
	static const struct {
		const char *name;
		size_t off;
	} wanted[] = {
		{ "fileId", offsetof(struct members, file_id) },
		{ "url", offsetof(struct members, url) },
		{ "name", offsetof(struct members, name) },
		{ "size", offsetof(struct members, size) },
		{ "width", offsetof(struct members, width) },
		{ "height", offsetof(struct members, height) },
		{ "productId", offsetof(struct members, product_id) },
		{ "id", offsetof(struct members, id) },
	};
	const cJSON *c;
	size_t i;

	memset(m, 0, sizeof(*m));
	for (c = obj->child; c; c = c->next) {
		if (!c->string)
			continue;
		for (i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
			const cJSON **slot = (const cJSON **)((char *)m +
							      wanted[i].off);

			if (!*slot && strcmp(c->string, wanted[i].name) == 0) {
				*slot = c;
				break;
			}
		}
	}
}

/* Everything that @node, a child of @parent (NULL for the top), adds. */
static int visit(const cJSON *node, const cJSON *parent, struct cp_walk *w)
{
	struct members m;
	int err;

	if (named(node, "fileIds") && !cJSON_IsArray(node) &&
	    !cJSON_IsNull(node))
		w->skipped++;

	if (parent && cJSON_IsArray(parent) && named(parent, "fileIds")) {
		if (!is_objectid(node)) {
			w->skipped++;
		} else if (!file_get(w, node->valuestring, &err) && err) {
			return err;
		}
	}

	if (!cJSON_IsObject(node))
		return 0;
	find_members(node, &m);
	if (m.file_id && (err = take_file(&m, w)))
		return err;
	if (is_objectid(m.product_id) &&
	    (err = product_add(w, m.product_id->valuestring)))
		return err;
	if (parent && cJSON_IsArray(parent) && named(parent, "products") &&
	    is_objectid(m.id) && (err = product_add(w, m.id->valuestring)))
		return err;
	return 0;
}

static int is_container(const cJSON *node)
{
	return cJSON_IsArray(node) || cJSON_IsObject(node);
}

int cp_walk_node(const cJSON *node, struct cp_walk *w)
{
	/* stack[d - 1] is the container at nesting level d, the top being
	 * level 1.  A container deeper than CP_WALK_MAX_DEPTH is neither
	 * visited nor pushed; scalars are visited at any level their
	 * parent reaches. */
	struct frame stack[CP_WALK_MAX_DEPTH];
	size_t depth = 0, items = 1;
	const cJSON *child;
	int err;

	if (!node)
		return 0;
	err = visit(node, NULL, w);
	if (err)
		return err;
	if (is_container(node) && node->child)
		stack[depth++] = (struct frame){ node, node->child };
	while (depth > 0) {
		struct frame *f = &stack[depth - 1];

		child = f->next;
		if (!child) {
			depth--;
			continue;
		}
		f->next = child->next;
		if (items >= CP_WALK_MAX_ITEMS) {
			w->truncated = 1;
			break;
		}
		items++;
		/* a container @child would be at level depth + 1 */
		if (is_container(child) && child->child &&
		    depth >= CP_WALK_MAX_DEPTH) {
			w->skipped++;
			continue;
		}
		err = visit(child, f->node, w);
		if (err)
			return err;
		if (is_container(child) && child->child)
			stack[depth++] = (struct frame){ child, child->child };
	}
	return 0;
}
