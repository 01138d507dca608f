/*
 * discover.c - discovery: the whole account, beside the mount (see
 * discover.h).
 *
 * Owns: the discovery thread and, while a walk runs, its state (struct
 * walk: a FIFO of API calls still to make, and what was found so far),
 * which only that thread touches.  d->lock guards d->stop alone.
 *
 * A walk is a queue of tasks, not a recursion: list pages of checkout
 * pages and events (each answer may queue the next page, products and
 * ticket groups), products, ticket groups, ticket types.  A task that
 * fails for a reason that may pass (429, 5xx, network) stays at the head
 * of the queue and the walk resumes from it after a backoff.
 */
#include "discover.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cfg.h"
#include "durable.h"
#include "files.h"
#include "idindex.h"
#include "listing.h"
#include "log.h"
#include "pages.h"
#include "stats.h"
#include "util.h"
#include "valid.h"
#include "walk.h"

#define LIST_LIMIT 100
#define MAX_LIST_CALLS 2000       /* per list and walk: 200 000 items */
#define MAX_TASKS 200000          /* calls queued per walk */
#define MAX_FOUND 1000000         /* files kept per walk */
#define CALL_ATTEMPTS 2
#define RESUME_FIRST 2.0          /* seconds before resuming a walk */
#define RESUME_MAX 300.0
#define STATE_FILE "discovery"       /* cache_dir/discovery-<account> */

enum task_kind { T_LIST, T_PRODUCT, T_GROUPS, T_TYPES };

static const char *const list_paths[] = { "/v1/checkout-pages/",
					  "/v1/events/" };
static const char *const list_names[] = { "checkout-pages", "events" };

struct task {
	enum task_kind kind;
	int list;         /* T_LIST: 0 pages, 1 events */
	char id[CP_ID_BUF];      /* T_LIST cursor ("" first), product or event id */
	char id2[CP_ID_BUF];     /* T_TYPES: ticket group id */
	unsigned calls;   /* T_LIST: calls made for this list so far */
	long seen;        /* T_LIST: items seen so far */
};

struct found {
	char id[CP_ID_BUF];
	char *url, *name;
	int64_t size;
	int32_t width, height;
};

struct owner {
	char id[CP_ID_BUF];
	char *name;
	char (*files)[CP_ID_BUF];
	size_t n, cap;
};

struct walk {
	unsigned number;
	struct task *tasks;
	size_t head, ntasks, tcap;
	char (*queued)[CP_ID_BUF]; /* products and groups already queued */
	size_t nqueued, qcap;
	struct cp_idindex queued_ix;
	struct found *files;
	size_t nfiles, fcap;
	struct cp_idindex file_ix;
	struct owner *owners;
	size_t nowners, ocap;
	struct cp_idindex owner_ix;
	unsigned skipped;
};

struct cp_discover {
	const struct cp_config *cfg;
	struct cp_api *api;
	struct cp_files *files;
	struct cp_pages *pages;
	struct cp_stats *stats;
	char path[4096];          /* persisted walk; "" when none */
	double loaded_at;         /* Epoch of the loaded walk; 0: none */
	unsigned walks;           /* walk numbers handed out */
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stop;                 /* protected by lock */
};

/* ---- the walk's state ---- */

static void walk_free(struct walk *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; i < w->nfiles; i++) {
		free(w->files[i].url);
		free(w->files[i].name);
	}
	for (i = 0; i < w->nowners; i++) {
		free(w->owners[i].name);
		free(w->owners[i].files);
	}
	free(w->files);
	free(w->owners);
	free(w->tasks);
	free(w->queued);
	cp_idindex_free(&w->queued_ix);
	cp_idindex_free(&w->file_ix);
	cp_idindex_free(&w->owner_ix);
	free(w);
}

/* Grows the array *@v of *@cap elements of @size to hold @need. */
static int grow(void **v, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 16;
	void *nv;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	nv = realloc(*v, n * size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = n;
	return 0;
}

static int push_task(struct walk *w, const struct task *t)
{
	if (w->ntasks - w->head >= MAX_TASKS)
		return -E2BIG;
	/* Reclaim the consumed front before growing. */
	if (w->head && w->ntasks == w->tcap) {
		memmove(w->tasks, w->tasks + w->head,
			(w->ntasks - w->head) * sizeof(*w->tasks));
		w->ntasks -= w->head;
		w->head = 0;
	}
	if (grow((void **)&w->tasks, &w->tcap, w->ntasks + 1,
		 sizeof(*w->tasks)) < 0)
		return -ENOMEM;
	w->tasks[w->ntasks++] = *t;
	return 0;
}

static struct walk *walk_new(unsigned number)
{
	struct walk *w = calloc(1, sizeof(*w));
	struct task t;
	int i;

	if (!w)
		return NULL;
	w->number = number;
	for (i = 0; i < 2; i++) {
		memset(&t, 0, sizeof(t));
		t.kind = T_LIST;
		t.list = i;
		if (push_task(w, &t) < 0) {
			walk_free(w);
			return NULL;
		}
	}
	return w;
}

/* Remembers that @key was queued in this walk.  0 or -ENOMEM. */
static int queue_note(struct walk *w, const char *key)
{
	if (grow((void **)&w->queued, &w->qcap, w->nqueued + 1,
		 sizeof(*w->queued)) < 0)
		return -ENOMEM;
	snprintf(w->queued[w->nqueued], CP_ID_BUF, "%s", key);
	if (cp_idindex_add(&w->queued_ix, w->queued, sizeof(*w->queued)) < 0)
		return -ENOMEM;
	w->nqueued++;
	return 0;
}

/* Queues a call for product or event @id once per walk. */
static void queue_once(struct cp_discover *d, struct walk *w,
		       enum task_kind kind, const char *id, const char *id2)
{
	/* Products and ticket groups live in one set: their ids differ. */
	const char *key = kind == T_TYPES ? id2 : id;
	struct task t;

	if (cp_idindex_find(&w->queued_ix, w->queued, sizeof(*w->queued),
			    key) >= 0)
		return;
	memset(&t, 0, sizeof(t));
	t.kind = kind;
	snprintf(t.id, sizeof(t.id), "%s", id);
	if (id2)
		snprintf(t.id2, sizeof(t.id2), "%s", id2);
	if (queue_note(w, key) < 0 || push_task(w, &t) < 0) {
		w->skipped++;
		cp_stats_inc(d->stats, discovery_skipped);
	}
}

/* Lists file @f in the file table (a public URL makes it an image).
 * 0, or -1 when it cannot be kept. */
static int table_add(struct cp_discover *d, const struct cp_listing_file *f)
{
	struct cp_file_facts facts;

	cp_file_facts_init(&facts, f->id);
	facts.purpose = f->url ? CP_PURPOSE_IMAGE : CP_PURPOSE_FILE;
	facts.public_url = f->url;
	facts.name = f->name;
	facts.size = f->size;
	facts.width = f->width;
	facts.height = f->height;
	return cp_files_add_facts(d->files, &facts) ? 0 : -1;
}

/* Records file @f for this walk and in the file table; returns 0, or
 * -1 when it could not be kept. */
static int found_file(struct cp_discover *d, struct walk *w,
		      const struct cp_walk_file *f)
{
	struct cp_listing_file lf;
	struct found *x;
	long at = cp_idindex_find(&w->file_ix, w->files, sizeof(*w->files),
				  f->id);

	if (at < 0) {
		if (w->nfiles >= MAX_FOUND ||
		    grow((void **)&w->files, &w->fcap, w->nfiles + 1,
			 sizeof(*w->files)) < 0)
			return -1;
		x = &w->files[w->nfiles];
		memset(x, 0, sizeof(*x));
		snprintf(x->id, sizeof(x->id), "%s", f->id);
		x->size = -1;
		x->width = x->height = -1;
		if (cp_idindex_add(&w->file_ix, w->files, sizeof(*w->files)))
			return -1;
		w->nfiles++;
		atomic_store_explicit(&d->stats->discovery_files, w->nfiles,
				      memory_order_relaxed);
	} else {
		x = &w->files[at];
	}
	if (f->url && !x->url)
		x->url = strdup(f->url);
	if (f->name && !x->name)
		x->name = strdup(f->name);
	if (f->size >= 0)
		x->size = f->size;
	if (f->width > 0)
		x->width = f->width;
	if (f->height > 0)
		x->height = f->height;

	lf.id = x->id;
	lf.size = x->size;
	lf.width = x->width;
	lf.height = x->height;
	lf.url = x->url;
	lf.name = x->name;
	table_add(d, &lf);
	return 0;
}

static struct owner *owner_get(struct walk *w, const char *id,
			       const char *name)
{
	long at = cp_idindex_find(&w->owner_ix, w->owners,
				  sizeof(*w->owners), id);
	struct owner *o;

	if (at >= 0)
		return &w->owners[at];
	if (grow((void **)&w->owners, &w->ocap, w->nowners + 1,
		 sizeof(*w->owners)) < 0)
		return NULL;
	o = &w->owners[w->nowners];
	memset(o, 0, sizeof(*o));
	snprintf(o->id, sizeof(o->id), "%s", id);
	o->name = strdup(name && *name ? name : id);
	if (!o->name ||
	    cp_idindex_add(&w->owner_ix, w->owners, sizeof(*w->owners))) {
		free(o->name);
		return NULL;
	}
	w->nowners++;
	return o;
}

static void owner_add_file(struct owner *o, const char *id)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (strcasecmp(o->files[i], id) == 0)
			return;
	if (grow((void **)&o->files, &o->cap, o->n + 1, sizeof(*o->files)) <
	    0)
		return;
	snprintf(o->files[o->n++], CP_ID_BUF, "%s", id);
}

/* A page's, event's or product's display name: name, else slug, else
 * its id (NULL here). */
static const char *display_name(const cJSON *obj)
{
	static const char *const keys[] = { "name", "slug" };
	size_t i;

	for (i = 0; i < CP_ARRAY_SIZE(keys); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, keys[i]);

		if (cJSON_IsString(v) && v->valuestring && v->valuestring[0])
			return v->valuestring;
	}
	return NULL;
}

/* The ObjectId in member "id" of @obj, or NULL. */
static const char *object_id(const cJSON *obj)
{
	const cJSON *v = cJSON_IsObject(obj)
				 ? cJSON_GetObjectItemCaseSensitive(obj, "id")
				 : NULL;

	return cJSON_IsString(v) && cp_objectid_valid(v->valuestring)
		       ? v->valuestring
		       : NULL;
}

/*
 * Every file under @node belongs to owner @id (named @name when first
 * seen); every product it refers to is queued.  The by-page index gets
 * the owner's files at once.
 */
static void take_node(struct cp_discover *d, struct walk *w, const char *id,
		      const char *name, const cJSON *node)
{
	struct cp_walk found;
	struct owner *o = owner_get(w, id, name);
	size_t i;

	cp_walk_init(&found);
	if (cp_walk_node(node, &found) < 0)
		found.skipped++;
	for (i = 0; i < found.nfiles; i++) {
		if (found_file(d, w, &found.files[i]) == 0 && o)
			owner_add_file(o, found.files[i].id);
	}
	for (i = 0; i < found.nproducts; i++)
		queue_once(d, w, T_PRODUCT, found.products[i], NULL);
	if (found.skipped || found.truncated) {
		w->skipped += found.skipped + (found.truncated ? 1 : 0);
		cp_stats_add(d->stats, discovery_skipped,
			     found.skipped + (found.truncated ? 1 : 0));
	}
	cp_walk_clear(&found);
	if (o && o->n)
		cp_pages_set(d->pages, o->id, o->name,
			     (const char(*)[CP_ID_BUF])o->files, o->n, w->number);
}

static void skip(struct cp_discover *d, struct walk *w)
{
	w->skipped++;
	cp_stats_inc(d->stats, discovery_skipped);
}

/* ---- one answer of each kind ---- */

static void take_list(struct cp_discover *d, struct walk *w, struct task *t,
		      const cJSON *root)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
	const cJSON *more = cJSON_GetObjectItemCaseSensitive(root, "has_more");
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(root, "total");
	const char *last = NULL, *what = list_names[t->list];
	const cJSON *item;
	struct task next;
	long count = 0;

	if (!cJSON_IsArray(data)) {
		cp_warn("discovery: the %s list answer has no data array; "
			"ending that list",
			what);
		skip(d, w);
		return;
	}
	cJSON_ArrayForEach(item, data) {
		const char *id = object_id(item);

		count++;
		if (!id) {
			skip(d, w);
			continue;
		}
		take_node(d, w, id, display_name(item), item);
		if (t->list == 1)
			queue_once(d, w, T_GROUPS, id, NULL);
		last = id;
	}
	if (!cJSON_IsTrue(more))
		return;
	next = *t;
	next.calls++;
	next.seen += count;
	if (!last || strcasecmp(last, t->id) == 0) {
		cp_warn("discovery: the %s list does not advance (has_more "
			"with the same cursor); ending that list",
			what);
	} else if (next.calls >= MAX_LIST_CALLS ||
		   (cJSON_IsNumber(total) && total->valuedouble >= 0 &&
		    next.seen > total->valuedouble + LIST_LIMIT)) {
		cp_warn("discovery: the %s list does not end (%ld items "
			"so far); ending that list",
			what, next.seen);
	} else {
		snprintf(next.id, sizeof(next.id), "%s", last);
		if (push_task(w, &next) < 0)
			skip(d, w);
	}
}

static void take_answer(struct cp_discover *d, struct walk *w,
			struct task *t, const cJSON *root)
{
	const cJSON *data = cJSON_IsObject(root)
				    ? cJSON_GetObjectItemCaseSensitive(root,
								       "data")
				    : NULL;
	const cJSON *item;

	switch (t->kind) {
	case T_LIST:
		if (cJSON_IsObject(root))
			take_list(d, w, t, root);
		else
			skip(d, w);
		break;
	case T_PRODUCT:
		if (!cJSON_IsObject(data)) {
			skip(d, w);
			break;
		}
		take_node(d, w, t->id, display_name(data), data);
		break;
	case T_GROUPS:
		if (!cJSON_IsArray(data)) {
			skip(d, w);
			break;
		}
		cJSON_ArrayForEach(item, data) {
			const char *gid = object_id(item);

			if (gid)
				queue_once(d, w, T_TYPES, t->id, gid);
			else
				skip(d, w);
		}
		take_node(d, w, t->id, NULL, data);
		break;
	case T_TYPES:
		if (!data) {
			skip(d, w);
			break;
		}
		take_node(d, w, t->id, NULL, data);
		break;
	}
}

static void task_path(const struct task *t, char *path, size_t len)
{
	switch (t->kind) {
	case T_LIST:
		snprintf(path, len, "%s?limit=%d%s%s", list_paths[t->list],
			 LIST_LIMIT, t->id[0] ? "&starting_after=" : "",
			 t->id);
		break;
	case T_PRODUCT:
		snprintf(path, len, "/v1/products/%s", t->id);
		break;
	case T_GROUPS:
		snprintf(path, len, "/v1/events/%s/ticket-groups", t->id);
		break;
	case T_TYPES:
		snprintf(path, len,
			 "/v1/events/%s/ticket-groups/%s/ticket-types", t->id,
			 t->id2);
		break;
	}
}

/*
 * Makes the call of the task at the head of the queue.  0 (done, the
 * answer taken or skipped), -EAGAIN (try again later: it stays at the
 * head), -EACCES (the key was refused: the walk ends).
 */
static int run_task(struct cp_discover *d, struct walk *w)
{
	struct task *t = &w->tasks[w->head];
	char path[160], why[512], reason[160];
	size_t len = 0;
	char *body = NULL;
	cJSON *root;
	int ret;

	task_path(t, path, sizeof(path));
	cp_stats_inc(d->stats, discovery_calls);
	ret = cp_api_get(d->api, path, CP_WALK_MAX_BODY, CALL_ATTEMPTS,
			 cp_now() + d->cfg->deadline, &body, &len, why,
			 sizeof(why));
	if (ret == -EAGAIN || ret == -EACCES) {
		if (ret == -EACCES)
			cp_warn("discovery: %s; stopping this walk", why);
		return ret;
	}
	if (ret < 0) {
		/* 400/404 (a product or page gone meanwhile), or an answer
		 * refused: skip this one, keep the rest. */
		cp_info("discovery: skipped %s: %s", path, why);
		skip(d, w);
		w->head++;
		return 0;
	}
	root = cp_walk_parse(body, len, reason, sizeof(reason));
	free(body);
	if (!root) {
		cp_warn("discovery: skipped the answer to %s: %s", path,
			reason);
		skip(d, w);
	} else {
		/* take_answer() may grow the queue: copy the task first. */
		struct task copy = *t;

		w->head++;
		take_answer(d, w, &copy, root);
		cJSON_Delete(root);
		return 0;
	}
	w->head++;
	return 0;
}

/* ---- persisted walk ---- */

/* Writes the complete walk @w to the listing file (listing.h). */
static void save_walk(struct cp_discover *d, const struct walk *w)
{
	struct cp_listing_writer *out;
	char dir[4096], *slash;
	size_t i;
	int err = 0;

	if (!d->path[0])
		return;
	snprintf(dir, sizeof(dir), "%s", d->path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	out = cp_listing_begin(dir, d->path, cp_wallclock(), &err);
	for (i = 0; out && !err && i < w->nfiles; i++) {
		const struct found *f = &w->files[i];
		struct cp_listing_file lf = { f->id, f->size, f->width,
					      f->height, f->url, f->name };

		err = cp_listing_file(out, &lf);
	}
	for (i = 0; out && !err && i < w->nowners; i++)
		if (w->owners[i].n)
			err = cp_listing_page(
				out, w->owners[i].id, w->owners[i].name,
				(const char(*)[CP_ID_BUF])w->owners[i].files,
				w->owners[i].n);
	if (out)
		err = cp_listing_end(out, !err);
	if (err < 0)
		cp_warn("discovery: cannot save the listing in %s: %s", dir,
			strerror(-err));
}

/* Lists one persisted file; -1 when it cannot be kept. */
static int load_file(void *arg, const struct cp_listing_file *f)
{
	return table_add(arg, f);
}

/* Restores one persisted by-page entry. */
static int load_page(void *arg, const char *id, const char *name,
		     const char (*files)[CP_ID_BUF], size_t nfiles)
{
	struct cp_discover *d = arg;

	return cp_pages_set(d->pages, id, name, files, nfiles, 0);
}

int cp_discover_load(struct cp_discover *d)
{
	const struct cp_listing_sink sink = { d, load_file, load_page };
	unsigned bad = 0;
	size_t nfiles = 0;
	double at = 0;
	int ret;

	if (!d->path[0])
		return 0;
	ret = cp_listing_read(d->path, &sink, &at, &nfiles, &bad);
	if (ret == 0)
		return 0;
	if (ret < 0) {
		cp_warn("discovery: %s is damaged or of another version (%s); "
			"ignoring it (the next walk replaces it)",
			d->path, strerror(-ret));
		return 0;
	}
	if (bad)
		cp_warn("discovery: %u damaged entries in %s ignored", bad,
			d->path);
	atomic_store_explicit(&d->stats->discovery_files, (uint64_t)nfiles,
			      memory_order_relaxed);
	atomic_store_explicit(&d->stats->discovery_last_walk, (uint64_t)at,
			      memory_order_relaxed);
	d->loaded_at = at;
	cp_info("discovery: listed %zu files from the walk of %.0f s ago",
		nfiles, cp_wallclock() - at);
	return 1;
}

/* ---- the thread ---- */

/* Waits @seconds or until stopped; 1 when stopped. */
static int pause_for(struct cp_discover *d, double seconds)
{
	struct timespec ts;
	int stop;

	cp_deadline_timespec(cp_now() + (seconds > 0 ? seconds : 0), &ts);
	pthread_mutex_lock(&d->lock);
	while (!d->stop && !cp_shutting_down() &&
	       pthread_cond_timedwait(&d->wake, &d->lock, &ts) == 0)
		;
	stop = d->stop || cp_shutting_down();
	pthread_mutex_unlock(&d->lock);
	return stop;
}

/* One whole walk; 1 when it completed, 0 when it ended otherwise. */
static int walk_once(struct cp_discover *d)
{
	struct walk *w = walk_new(++d->walks);
	double backoff = RESUME_FIRST;
	int ret = 0;

	if (!w) {
		cp_warn("discovery: out of memory");
		return 0;
	}
	while (w->head < w->ntasks) {
		if (pause_for(d, 0))
			goto out;
		ret = run_task(d, w);
		if (ret == -EACCES)
			goto out;
		if (ret == -EAGAIN) {
			cp_info("discovery: paused after %zu files; resuming "
				"in %.0f s",
				w->nfiles, backoff);
			if (pause_for(d, backoff))
				goto out;
			backoff = CP_MIN(2 * backoff, RESUME_MAX);
			continue;
		}
		backoff = RESUME_FIRST;
	}
	cp_pages_retain(d->pages, w->number);
	save_walk(d, w);
	cp_stats_inc(d->stats, discovery_walks);
	atomic_store_explicit(&d->stats->discovery_last_walk,
			      (uint64_t)time(NULL), memory_order_relaxed);
	cp_info("discovery: found %zu files, %zu pages and products with "
		"files, %u objects skipped",
		w->nfiles, w->nowners, w->skipped);
	walk_free(w);
	return 1;
out:
	walk_free(w);
	return 0;
}

static void *discover_main(void *arg)
{
	struct cp_discover *d = arg;
	double wait = 0;

	cp_block_termination_signals();
	/* A persisted walk younger than refresh needs no walk now. */
	if (d->loaded_at > 0 && d->cfg->refresh > 0)
		wait = d->loaded_at + d->cfg->refresh - cp_wallclock();
	while (!pause_for(d, wait)) {
		walk_once(d);
		if (d->cfg->refresh == 0) {
			pause_for(d, 1e9); /* once a mount */
			break;
		}
		wait = d->cfg->refresh;
	}
	return NULL;
}

static uint64_t account_hash(const struct cp_config *cfg)
{
	const char *parts[] = { cfg->api_url, "\n", cfg->api_key };
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;
	const char *p;

	for (i = 0; i < CP_ARRAY_SIZE(parts); i++)
		for (p = parts[i]; p && *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	return h;
}

struct cp_discover *cp_discover_new(const struct cp_config *cfg,
				    struct cp_api *api,
				    struct cp_files *files,
				    struct cp_pages *pages,
				    struct cp_stats *stats)
{
	struct cp_discover *d = calloc(1, sizeof(*d));
	char leaf[64];

	if (!d)
		return NULL;
	d->cfg = cfg;
	d->api = api;
	d->files = files;
	d->pages = pages;
	d->stats = stats;
	/* One listing per account: the name holds a fingerprint of the
	 * API URL and key (a hash, never the key). */
	snprintf(leaf, sizeof(leaf), "%s-%016llx", STATE_FILE,
		 (unsigned long long)account_hash(cfg));
	if (cp_cache_path(d->path, sizeof(d->path), cfg->cache_dir, leaf) <
	    0)
		d->path[0] = '\0';
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	return d;
}

int cp_discover_start(struct cp_discover *d)
{
	int err = pthread_create(&d->thread, NULL, discover_main, d);

	if (err)
		return -err;
	d->started = 1;
	return 0;
}

void cp_discover_stop(struct cp_discover *d)
{
	if (!d || !d->started)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = 1;
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	d->started = 0;
}

void cp_discover_free(struct cp_discover *d)
{
	if (!d)
		return;
	cp_discover_stop(d);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->wake);
	free(d);
}
