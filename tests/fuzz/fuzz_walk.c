/*
 * fuzz_walk.c - libFuzzer target for the generic walker (walk.h).
 *
 * The raw input is an API answer: cp_walk_parse() gets exactly @size
 * unterminated bytes (overreads are ASan errors), and a tree that parses
 * is walked twice into the same struct cp_walk, then cleared.  Checked,
 * beyond memory safety: a refusal gives one terminated line in @why; the
 * result keeps the contract of walk.h (ids 24 lower-case hex digits and
 * unique, found again by cp_walk_find(); url NULL or accepted by
 * cp_url_check() and at most 2048 bytes; name NULL or 1..255 bytes;
 * size, width and height -1 or in range; the limits); and the second
 * walk adds no file or product and skips exactly what the first did.
 * Leaks are LeakSanitizer's.
 */
#include <ctype.h>
#include <errno.h>

#include "fuzz.h"
#include "util.h"
#include "valid.h"
#include "walk.h"

static void check_id(const char *id)
{
	size_t i;

	for (i = 0; i < 24; i++)
		FUZZ_CHECK(isxdigit((unsigned char)id[i]) &&
			   !isupper((unsigned char)id[i]));
	FUZZ_CHECK(id[24] == '\0');
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, 25);
}

static void check_file(const struct cp_walk *w, size_t i)
{
	const struct cp_walk_file *f = &w->files[i];
	char why[256];
	size_t n;

	check_id(f->id);
	FUZZ_CHECK(cp_walk_find(w, f->id) == f);
	FUZZ_CHECK(f->has_url == (f->url != NULL));
	if (f->url) {
		n = strlen(f->url);
		FUZZ_CHECK(n <= CP_WALK_MAX_URL);
		FUZZ_CHECK(cp_url_check(f->url, why, sizeof(why)) == 0);
		fuzz_check_printable(f->url, n + 1);
	}
	if (f->name) {
		n = strlen(f->name);
		FUZZ_CHECK(n >= 1 && n <= CP_WALK_MAX_NAME);
	}
	FUZZ_CHECK(f->size == -1 ||
		   (f->size >= 0 && f->size <= CP_WALK_MAX_SIZE));
	FUZZ_CHECK(f->width == -1 ||
		   (f->width >= 1 && f->width <= CP_WALK_MAX_DIM));
	FUZZ_CHECK(f->height == -1 ||
		   (f->height >= 1 && f->height <= CP_WALK_MAX_DIM));
}

static void check_walk(const struct cp_walk *w)
{
	char(*ids)[25];
	size_t i;

	FUZZ_CHECK(w->nfiles <= CP_WALK_MAX_FILES);
	FUZZ_CHECK(w->nproducts <= CP_WALK_MAX_PRODUCTS);
	for (i = 0; i < w->nfiles; i++)
		check_file(w, i);

	/* products: well formed and unique */
	if (!w->nproducts)
		return;
	ids = fuzz_alloc(w->nproducts * sizeof(*ids));
	for (i = 0; i < w->nproducts; i++) {
		check_id(w->products[i]);
		memcpy(ids[i], w->products[i], 25);
	}
	qsort(ids, w->nproducts, sizeof(*ids), cmp_id);
	for (i = 1; i < w->nproducts; i++)
		FUZZ_CHECK(memcmp(ids[i - 1], ids[i], 25) != 0);
	free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The callers' buffer size, then tiny ones to hit truncation;
	 * picked by the last byte (usually '}' or white space, so the seed
	 * bodies keep parsing). */
	static const size_t whylens[] = {256, 1, 2, 16, 64};
	size_t whylen = whylens[(size ? data[size - 1] : 0) %
				CP_ARRAY_SIZE(whylens)];
	char *why = fuzz_alloc(whylen);
	struct cp_walk w;
	size_t nfiles, nproducts;
	unsigned skipped;
	cJSON *root;

	memset(why, 'x', whylen);
	root = cp_walk_parse((const char *)data, size, why, whylen);
	if (!root) {
		fuzz_check_line(why, whylen);
		free(why);
		return 0;
	}
	FUZZ_CHECK(size <= CP_WALK_MAX_BODY);
	free(why);

	cp_walk_init(&w);
	FUZZ_CHECK(cp_walk_node(root, &w) == 0);
	check_walk(&w);
	nfiles = w.nfiles;
	nproducts = w.nproducts;
	skipped = w.skipped;

	/* Again into the same result: everything is known already. */
	FUZZ_CHECK(cp_walk_node(root, &w) == 0);
	FUZZ_CHECK(w.nfiles == nfiles);
	FUZZ_CHECK(w.nproducts == nproducts);
	FUZZ_CHECK(w.skipped == 2 * skipped);
	check_walk(&w);

	cp_walk_clear(&w);
	FUZZ_CHECK(w.nfiles == 0 && w.files == NULL && !w.truncated);
	cJSON_Delete(root);
	return 0;
}
