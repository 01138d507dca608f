/*
 * pages.c - the by-page/ index (see pages.h).
 *
 * Owns: every owner (struct owner) and an inode index over owners'
 * directories and links (chained hash, nodes embedded in the owners),
 * and the numbers of links since removed (the retired set, below).
 * One mutex guards it all.
 *
 * A link's number never comes back with another target in one mount:
 * the kernel keeps a symlink's target once read (FUSE_CAP_CACHE_SYMLINKS)
 * for as long as it keeps the inode, so a number whose link was dropped
 * stays reserved for that same (owner, file) pair.  Only a hash collision
 * could otherwise hand it to another pair; the set costs 16 bytes per
 * distinct pair ever dropped.
 */
#include "pages.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ino.h"

#define NBUCKETS 4096

struct node {
	uint64_t ino;
	struct owner *owner;
	int link;              /* index in owner->links, -1: the directory */
	struct node *next;     /* bucket chain */
};

struct link {
	char file_id[CP_ID_BUF];
	struct node node;
};

struct owner {
	char id[CP_ID_BUF];
	char name[256];
	unsigned walk;         /* last walk that set it */
	struct node dir;
	struct link *links;
	size_t nlinks;
};

/* A dropped link's number and the fingerprint of its (owner, file). */
struct retired {
	uint64_t ino;          /* 0: a free slot */
	uint64_t pair;
};

struct cp_pages {
	pthread_mutex_t lock;
	struct owner **owners; /* first-set order; protected by lock */
	size_t n, cap;
	struct node *buckets[NBUCKETS];
	struct retired *retired; /* open addressing, power-of-two size */
	size_t nretired, retired_cap;
	uint64_t mask;           /* hash bits of a number (ino.h) */
	_Atomic uint64_t gen;    /* bumped by every change; read without lock */
};

struct cp_pages *cp_pages_new(uint64_t mask)
{
	struct cp_pages *p = calloc(1, sizeof(*p));

	if (p) {
		pthread_mutex_init(&p->lock, NULL);
		p->mask = mask;
	}
	return p;
}

static void owner_free(struct owner *o)
{
	if (o) {
		free(o->links);
		free(o);
	}
}

void cp_pages_free(struct cp_pages *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++)
		owner_free(p->owners[i]);
	free(p->owners);
	free(p->retired);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static unsigned bucket(uint64_t ino)
{
	return (unsigned)((ino ^ (ino >> 29)) % NBUCKETS);
}

static struct node *find_node(struct cp_pages *p, uint64_t ino)
{
	struct node *n = p->buckets[bucket(ino)];

	while (n && n->ino != ino)
		n = n->next;
	return n;
}

static void index_add(struct cp_pages *p, struct node *n)
{
	unsigned b = bucket(n->ino);

	n->next = p->buckets[b];
	p->buckets[b] = n;
}

static void index_del(struct cp_pages *p, struct node *n)
{
	struct node **pp = &p->buckets[bucket(n->ino)];

	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (*pp)
		*pp = n->next;
}

/* What tells the pair (@owner, @file) from others with a number. */
static uint64_t pair_print(const char *owner, const char *file)
{
	return cp_ino_make(CP_INO_PAGE_LINK, owner, file, ~0u, CP_INO_MASK);
}

static struct retired *retired_slot(struct retired *v, size_t cap,
				    uint64_t ino)
{
	size_t i = (size_t)(ino ^ (ino >> 31)) & (cap - 1);

	while (v[i].ino && v[i].ino != ino)
		i = (i + 1) & (cap - 1);
	return &v[i];
}

/* The pair that once held link number @ino, or 0 if none. */
static uint64_t retired_pair(struct cp_pages *p, uint64_t ino)
{
	return p->retired_cap ? retired_slot(p->retired, p->retired_cap,
					     ino)->pair
			      : 0;
}

/* Remembers that @ino was @pair's.  Without memory to grow the set the
 * number is not remembered: then only a hash collision could reuse it. */
static void retire(struct cp_pages *p, uint64_t ino, uint64_t pair)
{
	struct retired *s;

	if (2 * (p->nretired + 1) > p->retired_cap) {
		size_t cap = p->retired_cap ? 2 * p->retired_cap : 256, i;
		struct retired *v = calloc(cap, sizeof(*v));

		if (!v)
			return;
		for (i = 0; i < p->retired_cap; i++)
			if (p->retired[i].ino)
				*retired_slot(v, cap, p->retired[i].ino) =
					p->retired[i];
		free(p->retired);
		p->retired = v;
		p->retired_cap = cap;
	}
	s = retired_slot(p->retired, p->retired_cap, ino);
	if (!s->ino)
		p->nretired++;
	s->ino = ino;
	s->pair = pair;
}

static void unindex_link(struct cp_pages *p, struct owner *o, size_t i)
{
	index_del(p, &o->links[i].node);
	retire(p, o->links[i].node.ino, pair_print(o->id, o->links[i].file_id));
}

static void unindex_owner(struct cp_pages *p, struct owner *o)
{
	size_t i;

	index_del(p, &o->dir);
	for (i = 0; i < o->nlinks; i++)
		unindex_link(p, o, i);
}

/* The first number of @kind for (@a, @b) not in use, and for a link not
 * retired from another pair. */
static uint64_t free_ino(struct cp_pages *p, enum cp_ino_kind kind,
			 const char *a, const char *b)
{
	uint64_t pair = kind == CP_INO_PAGE_LINK ? pair_print(a, b) : 0;
	unsigned attempt = 0;
	uint64_t ino, was;

	for (;;) {
		ino = cp_ino_make(kind, a, b, attempt++, p->mask);
		if (find_node(p, ino))
			continue;
		was = pair ? retired_pair(p, ino) : 0;
		if (!was || was == pair)
			return ino;
	}
}

/* The owner @id, through its directory's number (O(1)). */
static struct owner *find_owner(struct cp_pages *p, const char *id)
{
	unsigned attempt;

	for (attempt = 0;; attempt++) {
		uint64_t ino = cp_ino_make(CP_INO_PAGE_DIR, id, NULL, attempt,
					   p->mask);
		struct node *n = find_node(p, ino);

		if (!n)
			return NULL;
		if (n->link < 0 && strcasecmp(n->owner->id, id) == 0)
			return n->owner;
	}
}

/* Links for @files without duplicates; NULL with *@n 0 when empty. */
static struct link *make_links(const char (*files)[CP_ID_BUF], size_t nfiles,
			       size_t *n, int *nomem)
{
	struct link *v = nfiles ? calloc(nfiles, sizeof(*v)) : NULL;
	size_t i, j;

	*n = 0;
	*nomem = nfiles && !v;
	if (!v)
		return NULL;
	for (i = 0; i < nfiles; i++) {
		for (j = 0; j < *n; j++)
			if (strcasecmp(v[j].file_id, files[i]) == 0)
				break;
		if (j == *n)
			snprintf(v[(*n)++].file_id, CP_ID_BUF, "%s", files[i]);
	}
	return v;
}

int cp_pages_set(struct cp_pages *p, const char *id, const char *name,
		 const char (*files)[CP_ID_BUF], size_t nfiles, unsigned walk)
{
	struct owner *o;
	struct link *links;
	size_t n, i;
	int nomem;

	links = make_links(files, nfiles, &n, &nomem);
	if (nomem)
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	o = find_owner(p, id);
	if (!o) {
		if (p->n == p->cap) {
			size_t cap = p->cap ? 2 * p->cap : 64;
			struct owner **v = realloc(p->owners, cap * sizeof(*v));

			if (!v)
				goto nomem;
			p->owners = v;
			p->cap = cap;
		}
		o = calloc(1, sizeof(*o));
		if (!o)
			goto nomem;
		snprintf(o->id, sizeof(o->id), "%s", id);
		o->dir.owner = o;
		o->dir.link = -1;
		o->dir.ino = free_ino(p, CP_INO_PAGE_DIR, id, NULL);
		index_add(p, &o->dir);
		p->owners[p->n++] = o;
	} else {
		for (i = 0; i < o->nlinks; i++)
			unindex_link(p, o, i);
		free(o->links);
	}
	snprintf(o->name, sizeof(o->name), "%s", name && *name ? name : id);
	o->walk = walk;
	o->links = links;
	o->nlinks = n;
	for (i = 0; i < n; i++) {
		links[i].node.owner = o;
		links[i].node.link = (int)i;
		links[i].node.ino = free_ino(p, CP_INO_PAGE_LINK, id,
					     links[i].file_id);
		index_add(p, &links[i].node);
	}
	p->gen++;
	pthread_mutex_unlock(&p->lock);
	return 0;
nomem:
	pthread_mutex_unlock(&p->lock);
	free(links);
	return -ENOMEM;
}

void cp_pages_retain(struct cp_pages *p, unsigned walk)
{
	size_t i, kept = 0;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->n; i++) {
		struct owner *o = p->owners[i];

		if (o->walk == walk) {
			p->owners[kept++] = o;
			continue;
		}
		unindex_owner(p, o);
		owner_free(o);
	}
	if (kept != p->n)
		p->gen++;
	p->n = kept;
	pthread_mutex_unlock(&p->lock);
}

uint64_t cp_pages_gen(struct cp_pages *p)
{
	return p->gen;
}

size_t cp_pages_count(struct cp_pages *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->n;
	pthread_mutex_unlock(&p->lock);
	return n;
}

int cp_pages_owner(struct cp_pages *p, size_t i, char id[CP_ID_BUF], char *name,
		   size_t namelen, uint64_t *dir_ino)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&p->lock);
	if (i < p->n) {
		snprintf(id, CP_ID_BUF, "%s", p->owners[i]->id);
		snprintf(name, namelen, "%s", p->owners[i]->name);
		*dir_ino = p->owners[i]->dir.ino;
		ret = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int cp_pages_has_dir(struct cp_pages *p, uint64_t dir_ino)
{
	struct node *n;

	pthread_mutex_lock(&p->lock);
	n = find_node(p, dir_ino);
	pthread_mutex_unlock(&p->lock);
	return n && n->link < 0;
}

ssize_t cp_pages_links(struct cp_pages *p, uint64_t dir_ino,
		       struct cp_page_link **out)
{
	struct cp_page_link *v = NULL;
	struct owner *o;
	struct node *n;
	ssize_t ret;
	size_t i;

	*out = NULL;
	pthread_mutex_lock(&p->lock);
	n = find_node(p, dir_ino);
	if (!n || n->link >= 0) {
		ret = -ENOENT;
		goto out;
	}
	o = n->owner;
	ret = (ssize_t)o->nlinks;
	if (o->nlinks) {
		v = calloc(o->nlinks, sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < o->nlinks; i++) {
		memcpy(v[i].file_id, o->links[i].file_id, CP_ID_BUF);
		v[i].ino = o->links[i].node.ino;
	}
	*out = v;
out:
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int cp_pages_link_target(struct cp_pages *p, uint64_t ino, char file_id[CP_ID_BUF])
{
	struct node *n;
	int ret = -ENOENT;

	pthread_mutex_lock(&p->lock);
	n = find_node(p, ino);
	if (n && n->link >= 0) {
		memcpy(file_id, n->owner->links[n->link].file_id, CP_ID_BUF);
		ret = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}
