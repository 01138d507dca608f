/*
 * fuzz_listing.c - libFuzzer target for the persisted discovery listing
 * (listing.h), the file a damaged disk or an older cpfs may leave.
 *
 * The input is written to a file and read with cp_listing_read().
 * Checked: the result is one of the documented values; nothing is handed
 * over unless it is 1; every file handed over has an ObjectId, a size,
 * width and height in range, a URL cp_url_check() accepts and a name of
 * 1..255 bytes; every page has an ObjectId and ObjectId files.  Then what
 * was handed over is written with the writer and read back: the same
 * records come back, none bad (the escape round-trips).
 */
#include <errno.h>
#include <unistd.h>

#include "fuzz.h"
#include "listing.h"
#include "valid.h"

#define KEEP 64

static char dir[64], in_path[128], out_path[128];

struct kept {
	size_t files, pages;
	char id[KEEP][CP_ID_BUF];
	int64_t size[KEEP];
	int32_t width[KEEP], height[KEEP];
	char *url[KEEP], *name[KEEP];
	char page_id[KEEP][CP_ID_BUF];
	char *page_name[KEEP];
	size_t page_n[KEEP];
	int replay; /* second read: compare instead of keep */
	size_t at_file, at_page;
	int mismatch;
};

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int on_file(void *arg, const struct cp_listing_file *f)
{
	struct kept *k = arg;
	size_t i;

	FUZZ_CHECK(cp_objectid_valid(f->id));
	FUZZ_CHECK(f->size >= -1 && f->size <= (1LL << 50));
	FUZZ_CHECK(f->width >= -1 && f->width <= 1000000);
	FUZZ_CHECK(f->height >= -1 && f->height <= 1000000);
	FUZZ_CHECK(!f->url || cp_url_check(f->url, NULL, 0) == 0);
	FUZZ_CHECK(!f->name || (strlen(f->name) >= 1 && strlen(f->name) <= 255));
	if (k->replay) {
		i = k->at_file++;
		if (i < KEEP && i < k->files &&
		    (strcmp(k->id[i], f->id) || k->size[i] != f->size ||
		     k->width[i] != f->width || k->height[i] != f->height ||
		     !same(k->url[i], f->url) || !same(k->name[i], f->name)))
			k->mismatch = 1;
		return 0;
	}
	i = k->files++;
	if (i < KEEP) {
		snprintf(k->id[i], CP_ID_BUF, "%s", f->id);
		k->size[i] = f->size;
		k->width[i] = f->width;
		k->height[i] = f->height;
		k->url[i] = f->url ? fuzz_strndup(f->url, strlen(f->url)) : NULL;
		k->name[i] = f->name ? fuzz_strndup(f->name, strlen(f->name))
				     : NULL;
	}
	return 0;
}

static int on_page(void *arg, const char *id, const char *name,
		   const char (*files)[CP_ID_BUF], size_t n)
{
	struct kept *k = arg;
	size_t i;

	FUZZ_CHECK(cp_objectid_valid(id));
	FUZZ_CHECK(!name || strlen(name) <= 255);
	for (i = 0; i < n; i++)
		FUZZ_CHECK(cp_objectid_valid(files[i]));
	if (k->replay) {
		i = k->at_page++;
		if (i < KEEP && i < k->pages &&
		    (strcmp(k->page_id[i], id) || !same(k->page_name[i], name) ||
		     k->page_n[i] != n))
			k->mismatch = 1;
		return 0;
	}
	i = k->pages++;
	if (i < KEEP) {
		snprintf(k->page_id[i], CP_ID_BUF, "%s", id);
		k->page_name[i] = name ? fuzz_strndup(name, strlen(name)) : NULL;
		k->page_n[i] = n;
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/fuzz_listing.XXXXXX");
	FUZZ_CHECK(mkdtemp(dir) != NULL);
	snprintf(in_path, sizeof(in_path), "%s/in", dir);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kept *k = calloc(1, sizeof(*k));
	struct cp_listing_sink sink = { k, on_file, on_page };
	struct cp_listing_writer *w;
	size_t files = 0, i;
	unsigned bad = 0;
	double at = 0;
	FILE *f = fopen(in_path, "wb");
	int ret, err = 0;

	FUZZ_CHECK(k && f);
	FUZZ_CHECK(fwrite(data, 1, size, f) == size);
	fclose(f);
	ret = cp_listing_read(in_path, &sink, &at, &files, &bad);
	FUZZ_CHECK(ret == 1 || ret == 0 || ret == -EINVAL);
	if (ret != 1)
		FUZZ_CHECK(k->files == 0 && k->pages == 0);
	else
		FUZZ_CHECK(files >= k->files && at >= 0);

	if (ret == 1 && k->files <= KEEP && k->pages <= KEEP) {
		/* what came in goes out and back unchanged (pages without
		 * their file lists: their count is compared) */
		w = cp_listing_begin(dir, out_path, at, &err);
		FUZZ_CHECK(w != NULL);
		for (i = 0; i < k->files; i++) {
			struct cp_listing_file lf = { k->id[i], k->size[i],
						      k->width[i], k->height[i],
						      k->url[i], k->name[i] };

			FUZZ_CHECK(cp_listing_file(w, &lf) == 0);
		}
		for (i = 0; i < k->pages; i++) {
			char(*ids)[CP_ID_BUF] = fuzz_alloc(
				(k->page_n[i] + 1) * CP_ID_BUF);
			size_t j;

			for (j = 0; j < k->page_n[i]; j++)
				snprintf(ids[j], CP_ID_BUF, "%s", k->page_id[i]);
			FUZZ_CHECK(cp_listing_page(w, k->page_id[i],
						   k->page_name[i],
						   (const char(*)[CP_ID_BUF])ids,
						   k->page_n[i]) == 0);
			free(ids);
		}
		FUZZ_CHECK(cp_listing_end(w, 1) == 0);
		k->replay = 1;
		FUZZ_CHECK(cp_listing_read(out_path, &sink, &at, &files,
					   &bad) == 1);
		FUZZ_CHECK(bad == 0 && !k->mismatch);
		FUZZ_CHECK(k->at_file == k->files && k->at_page == k->pages);
	}
	for (i = 0; i < KEEP; i++) {
		free(k->url[i]);
		free(k->name[i]);
		free(k->page_name[i]);
	}
	free(k);
	return 0;
}
