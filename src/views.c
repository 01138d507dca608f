/*
 * views.c - snapshots of the view directories' entries (see views.h).
 *
 * Owns the snapshots and the slots that keep each directory's latest.
 * A build takes the names through the naming rule (names.c: full-size
 * entries, sorted) and packs them: an array of entries and one block of
 * names, then frees the full-size copy.
 */
#include "views.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "ino.h"
#include "names.h"
#include "pages.h"
#include "stats.h"

#define NSLOTS 8

struct cp_view {
	atomic_int refs;
	uint64_t dir;
	uint64_t gen;            /* of the tables it was built from */
	size_t n;
	struct cp_view_entry *v; /* sorted by name */
	char *names;
};

struct slot {
	struct cp_view *view;    /* NULL: free */
	uint64_t used;           /* last use, for replacement */
};

struct cp_views {
	struct cp_files *files;
	struct cp_pages *pages;
	struct cp_stats *stats;
	pthread_mutex_t lock;
	struct slot slots[NSLOTS]; /* protected by lock */
	uint64_t clock;            /* protected by lock */
};

struct cp_views *cp_views_new(struct cp_files *files, struct cp_pages *pages,
			      struct cp_stats *stats)
{
	struct cp_views *views = calloc(1, sizeof(*views));

	if (!views)
		return NULL;
	views->files = files;
	views->pages = pages;
	views->stats = stats;
	pthread_mutex_init(&views->lock, NULL);
	return views;
}

void cp_view_unref(struct cp_view *view)
{
	if (!view || atomic_fetch_sub(&view->refs, 1) != 1)
		return;
	free(view->v);
	free(view->names);
	free(view);
}

void cp_views_free(struct cp_views *views)
{
	size_t i;

	if (!views)
		return;
	for (i = 0; i < NSLOTS; i++)
		cp_view_unref(views->slots[i].view);
	pthread_mutex_destroy(&views->lock);
	free(views);
}

/* by-page/: one entry per owner, named by the rule. */
static ssize_t page_dirs(struct cp_views *views, struct cp_name_entry **out)
{
	size_t n = cp_pages_count(views->pages), i, got = 0;
	struct cp_name_entry *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct cp_name_entry *e = &v[got];

		if (cp_pages_owner(views->pages, i, e->id, e->name,
				   sizeof(e->name), &e->ino) == 0)
			got++;
	}
	cp_names_unique(v, got);
	*out = v;
	return (ssize_t)got;
}

/* by-page/<page>/: a link per file, named by the file's name (else its
 * id) and the rule. */
static ssize_t page_links(struct cp_views *views, uint64_t dir,
			  struct cp_name_entry **out)
{
	struct cp_page_link *links;
	struct cp_name_entry *v;
	ssize_t n, i, got = 0;

	n = cp_pages_links(views->pages, dir, &links);
	if (n < 0)
		return n;
	v = calloc(n ? (size_t)n : 1, sizeof(*v));
	if (!v) {
		free(links);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct cp_name_entry *e = &v[got];

		e->file = cp_files_get(views->files, links[i].file_id);
		if (!e->file)
			continue;
		memcpy(e->id, links[i].file_id, sizeof(e->id));
		e->ino = links[i].ino;
		if (!cp_files_field(views->files, e->file, "name", e->name,
				    sizeof(e->name)))
			snprintf(e->name, sizeof(e->name), "%s", e->id);
		got++;
	}
	free(links);
	cp_names_unique(v, (size_t)got);
	*out = v;
	return got;
}

/* A new snapshot of @dir from @full (@n entries, sorted), reference 1. */
static struct cp_view *pack(uint64_t dir, uint64_t gen,
			    const struct cp_name_entry *full, size_t n)
{
	struct cp_view *view = calloc(1, sizeof(*view));
	size_t i, bytes = 0;
	char *p;

	if (!view)
		return NULL;
	for (i = 0; i < n; i++)
		bytes += strlen(full[i].name) + 1;
	view->v = calloc(n ? n : 1, sizeof(*view->v));
	view->names = malloc(bytes ? bytes : 1);
	if (!view->v || !view->names) {
		free(view->v);
		free(view->names);
		free(view);
		return NULL;
	}
	for (p = view->names, i = 0; i < n; i++) {
		size_t len = strlen(full[i].name) + 1;

		memcpy(p, full[i].name, len);
		view->v[i].name = p;
		view->v[i].file = full[i].file;
		view->v[i].ino = full[i].ino;
		p += len;
	}
	atomic_init(&view->refs, 1);
	view->dir = dir;
	view->gen = gen;
	view->n = n;
	return view;
}

static struct cp_view *build(struct cp_views *views, uint64_t dir,
			     uint64_t gen, int *err)
{
	struct cp_name_entry *full = NULL;
	struct cp_view *view;
	ssize_t n;

	if (dir == CP_INO_BYNAME)
		n = cp_names_list(views->files, &full);
	else if (dir == CP_INO_BYPAGE)
		n = page_dirs(views, &full);
	else
		n = page_links(views, dir, &full);
	if (n < 0) {
		*err = (int)n;
		return NULL;
	}
	view = pack(dir, gen, full, (size_t)n);
	free(full);
	if (!view)
		*err = -ENOMEM;
	else
		cp_stats_inc(views->stats, view_builds);
	return view;
}

static uint64_t tables_gen(struct cp_views *views)
{
	return cp_files_names_gen(views->files) + cp_pages_gen(views->pages);
}

/* @dir's slot, or the one to replace (free, else least recently used). */
static struct slot *slot_for(struct cp_views *views, uint64_t dir)
{
	struct slot *pick = &views->slots[0];
	size_t i;

	for (i = 0; i < NSLOTS; i++) {
		struct slot *s = &views->slots[i];

		if (s->view && s->view->dir == dir)
			return s;
		if (pick->view && (!s->view || s->used < pick->used))
			pick = s;
	}
	return pick;
}

struct cp_view *cp_views_get(struct cp_views *views, uint64_t dir, int *err)
{
	uint64_t gen = tables_gen(views);
	struct cp_view *view, *old = NULL;
	struct slot *s;

	pthread_mutex_lock(&views->lock);
	s = slot_for(views, dir);
	view = s->view;
	if (view && view->dir == dir && view->gen == gen) {
		atomic_fetch_add(&view->refs, 1);
		s->used = ++views->clock;
		pthread_mutex_unlock(&views->lock);
		return view;
	}
	pthread_mutex_unlock(&views->lock);

	view = build(views, dir, gen, err);
	if (!view)
		return NULL;
	pthread_mutex_lock(&views->lock);
	s = slot_for(views, dir);
	old = s->view;
	s->view = view;
	s->used = ++views->clock;
	atomic_fetch_add(&view->refs, 1); /* one for the slot, one for us */
	pthread_mutex_unlock(&views->lock);
	cp_view_unref(old);
	return view;
}

size_t cp_view_count(const struct cp_view *view)
{
	return view->n;
}

const struct cp_view_entry *cp_view_at(const struct cp_view *view, size_t i)
{
	return &view->v[i];
}

const struct cp_view_entry *cp_view_find(const struct cp_view *view,
					 const char *name)
{
	size_t lo = 0, hi = view->n;

	/* the first entry not below @name */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(view->v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < view->n && strcmp(view->v[lo].name, name) == 0)
		return &view->v[lo];
	return NULL;
}
