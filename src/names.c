/*
 * names.c - the by-name/ naming rule (see names.h).
 *
 * Owns nothing: each call snapshots the listed files' names and builds
 * the listing afresh (a few microseconds per hundred files; by-name/ is
 * not on any read path).
 */
#include "names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "files.h"

#define NAME_CUT 200

void cp_names_sanitize(const char *in, char *out, size_t len)
{
	size_t i;

	for (i = 0; in[i] && i < NAME_CUT && i + 1 < len; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (c < 0x20 || c == 0x7f || c == '/') ? '_' : (char)c;
	}
	out[i] = '\0';
	if (!strcmp(out, "") || !strcmp(out, ".") || !strcmp(out, ".."))
		snprintf(out, len, "_");
}

static int by_name_then_id(const void *pa, const void *pb)
{
	const struct cp_name_entry *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	return c ? c : strcasecmp(a->id, b->id);
}

void cp_names_unique(struct cp_name_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char raw[CP_NAME_MAX];

		snprintf(raw, sizeof(raw), "%s", v[i].name);
		cp_names_sanitize(raw, v[i].name, sizeof(v[i].name));
	}
	if (n)
		qsort(v, n, sizeof(*v), by_name_then_id);
	/* Within a run of equal names, all but the first get "~<id>". */
	for (i = 1; i < n; i++) {
		size_t j = i;

		while (j < n && !strcmp(v[j].name, v[i - 1].name)) {
			char base[CP_NAME_MAX];

			snprintf(base, sizeof(base), "%s", v[j].name);
			snprintf(v[j].name, sizeof(v[j].name), "%.200s~%s", base,
				 v[j].id);
			j++;
		}
		if (j > i)
			i = j - 1;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_name_then_id);
}

ssize_t cp_names_list(struct cp_files *files, struct cp_name_entry **out)
{
	struct cp_name_entry *v = NULL;
	size_t n = 0, cap = 0, i;
	struct cp_file *f;

	for (i = 0; (f = cp_files_listed(files, i)); i++) {
		char raw[CP_NAME_MAX];

		if (!cp_files_field(files, f, "name", raw, sizeof(raw)))
			continue;
		if (n == cap) {
			struct cp_name_entry *nv;

			cap = cap ? 2 * cap : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		memcpy(v[n].name, raw, sizeof(raw));
		memcpy(v[n].id, f->id, sizeof(v[n].id));
		v[n].file = f;
		v[n].ino = cp_ino_rekind(f->ino, CP_INO_NAME_LINK);
		n++;
	}
	cp_names_unique(v, n);
	*out = v;
	return (ssize_t)n;
}
