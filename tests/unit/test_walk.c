/*
 * test_walk.c - the generic walker: the SPEC §6.1 shapes (pages with
 * images, products with media/fileIds/variant images, ticket types),
 * refs in members nobody documented, dedup and fill-in, every malformed
 * case counted and survived, the URL policy, depth, body, node, file and
 * product limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "walk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID1 "507f1f77bcf86cd799439011"
#define ID2 "507f1f77bcf86cd799439012"
#define ID3 "507f1f77bcf86cd799439013"
#define ID4 "507f1f77bcf86cd799439014"
#define ID5 "507f1f77bcf86cd799439015"
#define P1 "65a000000000000000000001"
#define P2 "65a000000000000000000002"

#define IMAGE(id, n)                                                           \
	"{\"fileId\":\"" id "\",\"url\":\"https://cdn.example.com/" n "\","    \
	"\"name\":\"" n "\",\"size\":245678,\"width\":1920,\"height\":1080}"

/* Parses @json (which must parse) and walks it into @w. */
static void walk_text(const char *json, struct cp_walk *w)
{
	char why[128];
	cJSON *root = cp_walk_parse(json, strlen(json), why, sizeof(why));

	if (!root)
		fail_msg("did not parse (%s): %s", why, json);
	assert_int_equal(cp_walk_node(root, w), 0);
	cJSON_Delete(root);
}

/* A fresh walk of @json alone: the skipped count. */
static unsigned skipped_by(const char *json)
{
	struct cp_walk w;
	unsigned n;

	cp_walk_init(&w);
	walk_text(json, &w);
	n = w.skipped;
	cp_walk_clear(&w);
	return n;
}

static const struct cp_walk_file *get(const struct cp_walk *w, const char *id)
{
	const struct cp_walk_file *f = cp_walk_find(w, id);

	if (!f)
		fail_msg("file %s not found", id);
	return f;
}

static void assert_unknown(const struct cp_walk_file *f)
{
	assert_null(f->url);
	assert_null(f->name);
	assert_false(f->has_url);
	assert_int_equal(f->size, -1);
	assert_int_equal(f->width, -1);
	assert_int_equal(f->height, -1);
}

static void id_of(char out[25], unsigned prefix, unsigned i)
{
	snprintf(out, 25, "%08x%016x", prefix, i);
}

static void test_page_images(void **state)
{
	const struct cp_walk_file *f;
	struct cp_walk w;

	(void)state;
	cp_walk_init(&w);
	walk_text("{\"has_more\":true,\"total\":42,\"data\":["
		  "{\"id\":\"64b000000000000000000001\",\"sellerId\":\"x\","
		  "\"name\":\"Summer sale\",\"slug\":\"summer\","
		  "\"status\":\"live\",\"images\":[" IMAGE(ID1, "a.jpg") ","
		  IMAGE(ID2, "b.png") "],\"fields\":[{\"type\":\"text\"}]},"
		  "{\"id\":\"64b000000000000000000002\",\"images\":[]}]}",
		  &w);
	assert_int_equal(w.nfiles, 2);
	assert_int_equal(w.skipped, 0);
	assert_false(w.truncated);
	assert_int_equal(w.nproducts, 0);
	/* in the order first seen */
	assert_string_equal(w.files[0].id, ID1);
	assert_string_equal(w.files[1].id, ID2);
	f = get(&w, ID1);
	assert_string_equal(f->url, "https://cdn.example.com/a.jpg");
	assert_true(f->has_url);
	assert_string_equal(f->name, "a.jpg");
	assert_int_equal(f->size, 245678);
	assert_int_equal(f->width, 1920);
	assert_int_equal(f->height, 1080);
	assert_string_equal(get(&w, ID2)->name, "b.png");
	cp_walk_clear(&w);
	assert_int_equal(w.nfiles, 0);
	assert_null(w.files);
	cp_walk_clear(&w); /* twice is fine */
}

static void test_product(void **state)
{
	struct cp_walk w;

	(void)state;
	cp_walk_init(&w);
	walk_text("{\"data\":{\"id\":\"" P1 "\",\"name\":\"Mug\",\"price\":12,"
		  "\"media\":[" IMAGE(ID1, "mug.jpg") "],"
		  "\"fileIds\":[\"" ID2 "\",\"" ID3 "\"],"
		  "\"variants\":[{\"id\":\"v1\",\"options\":["
		  "{\"name\":\"red\",\"image\":" IMAGE(ID4, "red.jpg") "},"
		  "{\"name\":\"blue\",\"image\":null}]}]}}",
		  &w);
	assert_int_equal(w.nfiles, 4);
	assert_int_equal(w.skipped, 0);
	assert_string_equal(get(&w, ID1)->url,
			    "https://cdn.example.com/mug.jpg");
	assert_unknown(get(&w, ID2)); /* private files: nothing known */
	assert_unknown(get(&w, ID3));
	assert_string_equal(get(&w, ID4)->name, "red.jpg");
	/* a product's own id is not a product ref */
	assert_int_equal(w.nproducts, 0);
	cp_walk_clear(&w);
}

static void test_ticket_types(void **state)
{
	struct cp_walk w;

	(void)state;
	cp_walk_init(&w);
	walk_text("{\"data\":[{\"id\":\"t1\",\"name\":\"VIP\",\"price\":50,"
		  "\"image\":" IMAGE(ID1, "vip.jpg") "},"
		  "{\"id\":\"t2\",\"name\":\"Standard\"}]}",
		  &w);
	assert_int_equal(w.nfiles, 1);
	assert_int_equal(get(&w, ID1)->width, 1920);
	cp_walk_clear(&w);

	/* ticket groups carry no files */
	cp_walk_init(&w);
	walk_text("{\"data\":[{\"id\":\"g1\",\"name\":\"Day 1\"}]}", &w);
	assert_int_equal(w.nfiles, 0);
	assert_int_equal(w.skipped, 0);
	cp_walk_clear(&w);
}

static void test_unknown_nested(void **state)
{
	struct cp_walk w;

	(void)state;
	cp_walk_init(&w);
	walk_text("{\"data\":{\"undocumented\":{\"deep\":[[{\"x\":{"
		  "\"fileId\":\"" ID1 "\",\"extra\":[1,2,{}],"
		  /* refs nested inside a file object count too */
		  "\"thumbnail\":{\"fileId\":\"" ID2 "\",\"size\":10},"
		  "\"attachments\":{\"fileIds\":[\"" ID3 "\"]}}}]]},"
		  /* names compare case-sensitively */
		  "\"seo\":{\"FileId\":\"" ID4 "\",\"fileid\":\"" ID4 "\","
		  "\"FILEIDS\":[\"" ID5 "\"],\"ProductId\":\"" P1 "\"},"
		  "\"fileIdx\":\"" ID5 "\",\"fields\":[true,null,1.5,\"s\"]}}",
		  &w);
	assert_int_equal(w.nfiles, 3);
	assert_int_equal(w.skipped, 0);
	assert_unknown(get(&w, ID1));
	assert_int_equal(get(&w, ID2)->size, 10);
	assert_unknown(get(&w, ID3));
	assert_null(cp_walk_find(&w, ID4));
	assert_null(cp_walk_find(&w, ID5));
	assert_int_equal(w.nproducts, 0);
	cp_walk_clear(&w);

	/* any node may be the top: a bare file object, an array, a scalar */
	cp_walk_init(&w);
	walk_text(IMAGE(ID1, "a"), &w);
	walk_text("[\"" ID2 "\"]", &w);
	walk_text("\"" ID3 "\"", &w);
	walk_text("null", &w);
	assert_int_equal(cp_walk_node(NULL, &w), 0);
	assert_int_equal(w.nfiles, 1);
	cp_walk_clear(&w);
}

static void test_products(void **state)
{
	struct cp_walk w;

	(void)state;
	cp_walk_init(&w);
	walk_text("{\"data\":[{\"id\":\"pg\",\"productId\":\"" P1 "\","
		  "\"blocks\":[{\"productId\":\"65A000000000000000000001\"},"
		  "{\"productId\":null},{\"productId\":\"nope\"},"
		  "{\"productId\":7}],"
		  "\"products\":[{\"id\":\"" P2 "\",\"name\":\"Mug\","
		  "\"media\":[" IMAGE(ID1, "m.jpg") "]},"
		  "{\"id\":\"short\"},{\"name\":\"no id\"},\"" P1 "\",null]},"
		  /* "products" not an array: its objects do not count */
		  "{\"products\":{\"id\":\"65a000000000000000000009\"}}]}",
		  &w);
	assert_int_equal(w.nproducts, 2);
	assert_string_equal(w.products[0], P1);
	assert_string_equal(w.products[1], P2);
	/* walked inside the product objects too */
	assert_int_equal(w.nfiles, 1);
	/* bad product refs are ignored, not counted */
	assert_int_equal(w.skipped, 0);
	cp_walk_clear(&w);
}

static void test_dedup_fill_in(void **state)
{
	const struct cp_walk_file *f;
	struct cp_walk w;

	(void)state;
	cp_walk_init(&w);
	/* first seen bare, upper case */
	walk_text("{\"fileIds\":[\"507F1F77BCF86CD799439011\",\"" ID1 "\"]}",
		  &w);
	assert_int_equal(w.nfiles, 1);
	assert_string_equal(w.files[0].id, ID1);
	assert_unknown(&w.files[0]);

	/* a later answer knows the name and size */
	walk_text("{\"fileId\":\"" ID1 "\",\"name\":\"first\",\"size\":5}",
		  &w);
	/* ... and another the URL, a different name and size */
	walk_text("[{\"fileId\":\"" ID1 "\",\"url\":\"https://h/x\","
		  "\"name\":\"second\",\"size\":6,\"width\":3},"
		  "{\"fileId\":\"507f1f77bcf86cd79943901A\",\"height\":4}]",
		  &w);
	assert_int_equal(w.nfiles, 2);
	f = get(&w, "507F1F77BCF86CD799439011");
	assert_string_equal(f->url, "https://h/x");
	assert_true(f->has_url);
	assert_string_equal(f->name, "first"); /* known: not overwritten */
	assert_int_equal(f->size, 5);
	assert_int_equal(f->width, 3);
	assert_int_equal(f->height, -1);
	f = get(&w, "507f1f77bcf86cd79943901a");
	assert_string_equal(f->id, "507f1f77bcf86cd79943901a");
	assert_int_equal(f->height, 4);
	assert_int_equal(w.skipped, 0);
	assert_null(cp_walk_find(&w, ID2));
	assert_null(cp_walk_find(&w, "nope"));
	assert_null(cp_walk_find(&w, NULL));
	cp_walk_clear(&w);
}

/* One file object with a name of @n bytes: is the name kept? */
static int name_kept(size_t n)
{
	struct cp_walk w;
	cJSON *obj = cJSON_CreateObject();
	char *name = malloc(n + 1);
	int kept;

	assert_non_null(name);
	memset(name, 'n', n);
	name[n] = '\0';
	assert_non_null(cJSON_AddStringToObject(obj, "fileId", ID1));
	assert_non_null(cJSON_AddStringToObject(obj, "name", name));
	cp_walk_init(&w);
	assert_int_equal(cp_walk_node(obj, &w), 0);
	assert_int_equal(w.nfiles, 1);
	kept = w.files[0].name != NULL;
	assert_int_equal(w.skipped, kept ? 0 : 1);
	if (kept)
		assert_string_equal(w.files[0].name, name);
	cp_walk_clear(&w);
	cJSON_Delete(obj);
	free(name);
	return kept;
}

static void test_malformed(void **state)
{
	struct cp_walk w;

	(void)state;
	/* "fileId" that is not an ObjectId string: not a file */
	assert_int_equal(skipped_by("{\"fileId\":12}"), 1);
	assert_int_equal(skipped_by("{\"fileId\":\"507f1f77\"}"), 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "0\"}"), 1);
	assert_int_equal(
		skipped_by("{\"fileId\":\"507f1f77bcf86cd79943901g\"}"), 1);
	assert_int_equal(skipped_by("{\"fileId\":[\"" ID1 "\"]}"), 1);
	assert_int_equal(skipped_by("{\"fileId\":{}}"), 1);
	assert_int_equal(skipped_by("{\"fileId\":\"\"}"), 1);
	/* "fileIds" that is not an array */
	assert_int_equal(skipped_by("{\"fileIds\":\"" ID1 "\"}"), 1);
	assert_int_equal(skipped_by("{\"fileIds\":{\"a\":\"" ID1 "\"}}"), 1);
	assert_int_equal(skipped_by("{\"fileIds\":3}"), 1);
	/* each item of "fileIds" that is not an ObjectId string */
	assert_int_equal(skipped_by("{\"fileIds\":[\"bad\",5,null,{},[],"
				    "\"" ID1 "\",true]}"),
			 6);
	/* a wrongly typed or insane field: ignored, counted once per object */
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"url\":5}"), 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"name\":[]}"),
			 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"name\":\"\"}"),
			 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"size\":\"5\"}"),
			 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"size\":-1}"), 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"size\":1.5}"),
			 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\","
				    "\"size\":1125899906842625}"),
			 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"size\":1e999}"),
			 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"width\":0}"), 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\","
				    "\"height\":1000001}"),
			 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\","
				    "\"height\":true}"),
			 1);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"url\":{},"
				    "\"name\":1,\"size\":-2,\"width\":\"w\","
				    "\"height\":0.5}"),
			 1);
	/* null is absent, not malformed */
	assert_int_equal(skipped_by("{\"fileId\":null,\"fileIds\":null}"), 0);
	assert_int_equal(skipped_by("{\"fileId\":\"" ID1 "\",\"url\":null,"
				    "\"name\":null,\"size\":null,"
				    "\"width\":null,\"height\":null}"),
			 0);

	/* none of it is fatal: the good refs around bad ones are kept */
	cp_walk_init(&w);
	walk_text("[{\"fileId\":12},{\"fileIds\":\"x\"},"
		  "{\"fileIds\":[1,\"" ID2 "\"]},"
		  "{\"fileId\":\"" ID1 "\",\"url\":5,\"name\":\"ok.txt\","
		  "\"size\":0,\"width\":-3,\"height\":1000000},"
		  IMAGE(ID3, "c") "]",
		  &w);
	assert_int_equal(w.skipped, 4);
	assert_int_equal(w.nfiles, 3);
	assert_string_equal(w.files[0].id, ID2);
	assert_null(get(&w, ID1)->url);
	assert_string_equal(get(&w, ID1)->name, "ok.txt");
	assert_int_equal(get(&w, ID1)->size, 0);
	assert_int_equal(get(&w, ID1)->width, -1);
	assert_int_equal(get(&w, ID1)->height, 1000000);
	assert_true(get(&w, ID3)->has_url);
	cp_walk_clear(&w);

	/* the edges that are still sane */
	cp_walk_init(&w);
	walk_text("{\"fileId\":\"" ID1 "\",\"size\":1125899906842624,"
		  "\"width\":1,\"height\":1e6}",
		  &w);
	assert_int_equal(w.skipped, 0);
	assert_int_equal(w.files[0].size, 1LL << 50);
	assert_int_equal(w.files[0].width, 1);
	assert_int_equal(w.files[0].height, 1000000);
	cp_walk_clear(&w);
	assert_true(name_kept(1));
	assert_true(name_kept(255));
	assert_false(name_kept(256));
}

/* One file object with @url: is the URL kept?  The file always is. */
static int url_kept(const char *url)
{
	struct cp_walk w;
	cJSON *obj = cJSON_CreateObject();
	int kept;

	assert_non_null(cJSON_AddStringToObject(obj, "fileId", ID1));
	assert_non_null(cJSON_AddStringToObject(obj, "url", url));
	cp_walk_init(&w);
	assert_int_equal(cp_walk_node(obj, &w), 0);
	assert_int_equal(w.nfiles, 1);
	kept = w.files[0].url != NULL;
	assert_int_equal(kept, w.files[0].has_url);
	assert_int_equal(w.skipped, kept ? 0 : 1);
	if (kept)
		assert_string_equal(w.files[0].url, url);
	cp_walk_clear(&w);
	cJSON_Delete(obj);
	return kept;
}

static void test_url_policy(void **state)
{
	char *longurl;
	size_t n;

	(void)state;
	assert_true(url_kept("https://cdn.example.com/a.jpg?v=1"));
	assert_true(url_kept("HTTPS://cdn.example.com/a.jpg"));
	assert_true(url_kept("http://127.0.0.1:8080/a.jpg"));
	assert_true(url_kept("http://localhost/a.jpg"));
	assert_true(url_kept("http://[::1]/a.jpg"));

	assert_false(url_kept("file:///etc/passwd"));
	assert_false(url_kept("http://cdn.example.com/a.jpg"));
	assert_false(url_kept("http://127.0.0.1.evil.example/a.jpg"));
	assert_false(url_kept("ftp://cdn.example.com/a.jpg"));
	assert_false(url_kept("javascript:alert(1)"));
	assert_false(url_kept("//cdn.example.com/a.jpg"));
	assert_false(url_kept("/relative/a.jpg"));
	assert_false(url_kept(""));
	assert_false(url_kept("https://cdn.example.com/a b.jpg"));
	assert_false(url_kept("https://cdn.example.com/a\x01.jpg"));
	assert_false(url_kept("https://cdn.example.com/a\x7f.jpg"));
	assert_false(url_kept("https://cdn.example.com/a\n.jpg"));

	/* 2048 bytes are kept, 2049 are not */
	longurl = malloc(2050);
	assert_non_null(longurl);
	n = strlen("https://h/");
	memcpy(longurl, "https://h/", n);
	memset(longurl + n, 'a', 2048 - n);
	longurl[2048] = '\0';
	assert_true(url_kept(longurl));
	longurl[2048] = 'a';
	longurl[2049] = '\0';
	assert_false(url_kept(longurl));
	free(longurl);
}

/* "[[...[X]...]]" with @n brackets each side. */
static char *nested(size_t n, const char *inner, size_t *len)
{
	size_t m = strlen(inner);
	char *s = malloc(2 * n + m + 1);

	assert_non_null(s);
	memset(s, '[', n);
	memcpy(s + n, inner, m);
	memset(s + n + m, ']', n);
	s[2 * n + m] = '\0';
	*len = 2 * n + m;
	return s;
}

static void test_depth(void **state)
{
	struct cp_walk w;
	cJSON *root, *cur, *next;
	char why[128];
	size_t len, i;
	char *s;

	(void)state;
	/* 10 000 nested arrays: cJSON refuses them (limit 1000) */
	s = nested(10000, "{\"fileId\":\"" ID1 "\"}", &len);
	assert_null(cp_walk_parse(s, len, why, sizeof(why)));
	assert_non_null(strstr(why, "not JSON"));
	free(s);

	/* 999 parse; the walk stops at its own depth, counted once */
	s = nested(999, "{\"fileId\":\"" ID1 "\"}", &len);
	root = cp_walk_parse(s, len, why, sizeof(why));
	assert_non_null(root);
	cp_walk_init(&w);
	assert_int_equal(cp_walk_node(root, &w), 0);
	assert_int_equal(w.nfiles, 0);
	assert_int_equal(w.skipped, 1);
	cp_walk_clear(&w);
	cJSON_Delete(root);
	free(s);

	/* a 10 000-deep tree built by hand: bounded, no crash */
	root = cJSON_CreateArray();
	assert_non_null(root);
	for (cur = root, i = 0; i < 10000; i++, cur = next) {
		next = cJSON_CreateArray();
		assert_non_null(next);
		cJSON_AddItemToArray(cur, next);
	}
	cp_walk_init(&w);
	assert_int_equal(cp_walk_node(root, &w), 0);
	assert_int_equal(w.skipped, 1);
	assert_false(w.truncated);
	cp_walk_clear(&w);
	cJSON_Delete(root);

	/* the top is level 1: an object at level 64 is walked, at 65 not */
	s = nested(CP_WALK_MAX_DEPTH - 1, "{\"fileId\":\"" ID1 "\"}", &len);
	cp_walk_init(&w);
	walk_text(s, &w);
	assert_int_equal(w.nfiles, 1);
	assert_int_equal(w.skipped, 0);
	cp_walk_clear(&w);
	free(s);
	s = nested(CP_WALK_MAX_DEPTH, "{\"fileId\":\"" ID1 "\"}", &len);
	cp_walk_init(&w);
	walk_text(s, &w);
	assert_int_equal(w.nfiles, 0);
	assert_int_equal(w.skipped, 1);
	cp_walk_clear(&w);
	free(s);
	/* "fileIds" at level 64: its ids count; at 65 it is not looked
	 * into; an empty container beyond the limit is not "too deep" */
	s = nested(CP_WALK_MAX_DEPTH - 2,
		   "{\"fileIds\":[\"" ID1 "\"],\"e\":{\"f\":[]}}", &len);
	cp_walk_init(&w);
	walk_text(s, &w);
	assert_int_equal(w.nfiles, 1);
	assert_int_equal(w.skipped, 0);
	cp_walk_clear(&w);
	free(s);
	s = nested(CP_WALK_MAX_DEPTH - 1,
		   "{\"fileIds\":[\"" ID1 "\"],\"e\":[]}", &len);
	cp_walk_init(&w);
	walk_text(s, &w);
	assert_int_equal(w.nfiles, 0);
	assert_int_equal(w.skipped, 1);
	cp_walk_clear(&w);
	free(s);
}

static void test_parse(void **state)
{
	char why[128];
	char *body;
	cJSON *root;

	(void)state;
	/* over 4 MiB: refused before parsing */
	body = malloc(5 << 20);
	assert_non_null(body);
	memset(body, ' ', 5 << 20);
	body[0] = '[';
	body[1] = ']';
	assert_null(cp_walk_parse(body, 5 << 20, why, sizeof(why)));
	assert_non_null(strstr(why, "limit"));
	assert_null(strchr(why, '\n'));
	assert_null(cp_walk_parse(body, CP_WALK_MAX_BODY + 1, why,
				  sizeof(why)));
	/* exactly 4 MiB is fine */
	root = cp_walk_parse(body, CP_WALK_MAX_BODY, why, sizeof(why));
	assert_non_null(root);
	assert_string_equal(why, "");
	cJSON_Delete(root);
	free(body);

	/* exact: trailing bytes are malformed; the length decides */
	assert_null(cp_walk_parse("{} x", 4, why, sizeof(why)));
	assert_non_null(strstr(why, "not JSON"));
	root = cp_walk_parse("{}garbage", 2, why, sizeof(why));
	assert_non_null(root);
	cJSON_Delete(root);
	assert_null(cp_walk_parse("{\"a\":", 5, why, sizeof(why)));
	assert_null(cp_walk_parse("", 0, why, sizeof(why)));
	assert_non_null(strstr(why, "empty"));
	assert_null(cp_walk_parse(NULL, 0, NULL, 0));
	assert_null(cp_walk_parse("{\"a\":1}\0", 8, why, 1));
	assert_string_equal(why, "");
}

static void test_file_limit(void **state)
{
	struct cp_walk w;
	cJSON *root, *ids;
	char id[25];
	struct timespec t0, t1;
	double secs;
	unsigned i;

	(void)state;
	root = cJSON_CreateObject();
	ids = cJSON_AddArrayToObject(root, "fileIds");
	assert_non_null(ids);
	for (i = 0; i <= CP_WALK_MAX_FILES; i++) {
		id_of(id, 0x65000000, i * 7919u);
		cJSON_AddItemToArray(ids, cJSON_CreateString(id));
	}
	cp_walk_init(&w);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(cp_walk_node(root, &w), 0);
	/* the same again: all known, nothing added */
	assert_int_equal(cp_walk_node(root, &w), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* a hash table: milliseconds, not a quadratic scan */
	assert_true(secs < 2.0);
	assert_int_equal(w.nfiles, CP_WALK_MAX_FILES);
	assert_true(w.truncated);
	assert_int_equal(w.skipped, 0);
	id_of(id, 0x65000000, 0);
	assert_string_equal(w.files[0].id, id);
	id_of(id, 0x65000000, (CP_WALK_MAX_FILES - 1) * 7919u);
	assert_non_null(cp_walk_find(&w, id));
	id_of(id, 0x65000000, CP_WALK_MAX_FILES * 7919u);
	assert_null(cp_walk_find(&w, id));
	for (i = 0; i < CP_WALK_MAX_FILES; i += 997) {
		id_of(id, 0x65000000, i * 7919u);
		assert_ptr_equal(cp_walk_find(&w, id), &w.files[i]);
	}
	cJSON_Delete(root);

	/* full, yet known files are still filled in */
	id_of(id, 0x65000000, 5 * 7919u);
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "fileId", id);
	cJSON_AddNumberToObject(root, "size", 99);
	assert_int_equal(cp_walk_node(root, &w), 0);
	assert_int_equal(w.files[5].size, 99);
	assert_int_equal(w.nfiles, CP_WALK_MAX_FILES);
	cJSON_Delete(root);
	cp_walk_clear(&w);
	assert_false(w.truncated);
}

static void test_product_limit(void **state)
{
	struct cp_walk w;
	cJSON *root, *item;
	char id[25];
	unsigned i;

	(void)state;
	root = cJSON_CreateArray();
	for (i = 0; i <= CP_WALK_MAX_PRODUCTS; i++) {
		id_of(id, 0x66000000, i);
		item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "productId", id);
		cJSON_AddItemToArray(root, item);
	}
	cp_walk_init(&w);
	assert_int_equal(cp_walk_node(root, &w), 0);
	assert_int_equal(w.nproducts, CP_WALK_MAX_PRODUCTS);
	assert_true(w.truncated);
	id_of(id, 0x66000000, 1234);
	assert_string_equal(w.products[1234], id);
	cp_walk_clear(&w);
	cJSON_Delete(root);
}

static void test_item_limit(void **state)
{
	struct cp_walk w;
	cJSON *root;
	unsigned i;

	(void)state;
	/* the top plus MAX_ITEMS - 2 numbers plus one file object (its
	 * member nodes are beyond the limit, the object itself is not) */
	root = cJSON_CreateArray();
	for (i = 0; i < CP_WALK_MAX_ITEMS - 2; i++)
		cJSON_AddItemToArray(root, cJSON_CreateNumber(i));
	cJSON_AddItemToArray(root, cJSON_Parse("{\"fileId\":\"" ID1 "\"}"));
	cp_walk_init(&w);
	assert_int_equal(cp_walk_node(root, &w), 0);
	assert_int_equal(w.nfiles, 1);
	assert_true(w.truncated); /* its member was one node too many */
	cp_walk_clear(&w);

	/* exactly MAX_ITEMS nodes: not truncated */
	cJSON_DeleteItemFromArray(root, CP_WALK_MAX_ITEMS - 2);
	cJSON_AddItemToArray(root, cJSON_CreateString(ID1));
	cp_walk_init(&w);
	assert_int_equal(cp_walk_node(root, &w), 0);
	assert_false(w.truncated);
	cp_walk_clear(&w);

	/* one more: truncated, and what follows is not walked */
	cJSON_AddItemToArray(root, cJSON_Parse("{\"fileId\":\"" ID2 "\"}"));
	cp_walk_init(&w);
	assert_int_equal(cp_walk_node(root, &w), 0);
	assert_true(w.truncated);
	assert_int_equal(w.nfiles, 0);
	/* the limit is per call: a new call walks again */
	assert_int_equal(cp_walk_node(cJSON_GetArrayItem(root, (int)i + 1),
				      &w),
			 0);
	assert_int_equal(w.nfiles, 1);
	cp_walk_clear(&w);
	cJSON_Delete(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_images),
		cmocka_unit_test(test_product),
		cmocka_unit_test(test_ticket_types),
		cmocka_unit_test(test_unknown_nested),
		cmocka_unit_test(test_products),
		cmocka_unit_test(test_dedup_fill_in),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_url_policy),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_file_limit),
		cmocka_unit_test(test_product_limit),
		cmocka_unit_test(test_item_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
