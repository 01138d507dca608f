/*
 * fs.c - FUSE low-level operations (see fs.h).
 *
 * Owns nothing but the replies: every op fetches struct cp_fs from the
 * request, calls the table or the reader, and converts the result at one
 * place.  Read-only: every op that would change anything answers EROFS.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cache.h"
#include "cfg.h"
#include "files.h"
#include "ino.h"
#include "log.h"
#include "pages.h"
#include "reader.h"
#include "stats.h"
#include "util.h"
#include "valid.h"
#include "views.h"

/* Objects behind an id do not change (and when they do, we notice and
 * say EIO): let the kernel keep what it knows for long. */
#define ATTR_TIMEOUT 3600.0
#define ROOT_TIMEOUT 1.0
#define MAX_READ_BLOCKS 34
#define READ_AHEAD_KB 4096

static struct cp_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* One relaxed atomic add per request: what a listing cost, by kind. */
#define COUNT_REQ(req, kind) cp_stats_inc(fs_of(req)->stats, fuse_##kind)

/*
 * libfuse cancels its workers when the session ends.  Ops that wait on
 * the network hold locks and pins; they run with cancellation off and are
 * ended instead by the shutdown path (main.c), within moments.
 */
#define BLOCKING_OP_BEGIN                                                      \
	int cancel_state_;                                                     \
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state_)
#define BLOCKING_OP_END pthread_setcancelstate(cancel_state_, NULL)

static void dir_stat(const struct cp_fs *fs, fuse_ino_t ino,
		     struct stat *st)
{
	mode_t mode = 0555;

	memset(st, 0, sizeof(*st));
	if (fs->cfg->has_umask)
		mode &= ~fs->cfg->umask;
	st->st_ino = ino;
	st->st_mode = S_IFDIR | mode;
	st->st_nlink = 2;
	st->st_uid = fs->cfg->has_uid ? fs->cfg->uid : getuid();
	st->st_gid = fs->cfg->has_gid ? fs->cfg->gid : getgid();
	st->st_mtime = st->st_ctime = st->st_atime =
		cp_files_mount_time(fs->files);
}

/*
 * The kernel's readahead for a FUSE mount is 128 KiB, so a sequential
 * reader would send many small reads; raise it for this mount's backing
 * device.  Best effort.  Only after INIT (whose reply sets readahead
 * again), so from the first open; reads /proc/self/mountinfo, never
 * the mount itself.
 */
static void raise_readahead(const char *mountpoint)
{
	char line[4096], path[128];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	unsigned maj, min;
	int found = 0;

	if (!f)
		return;
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[2048];

		if (sscanf(line, "%*d %*d %u:%u %*s %2047s", &maj, &min,
			   mnt) == 3 &&
		    strcmp(mnt, mountpoint) == 0)
			found = 1;
	}
	fclose(f);
	if (!found)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 maj, min);
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%d\n", READ_AHEAD_KB);
	if (fclose(f) != 0)
		cp_dbg("could not raise read_ahead_kb");
}

static struct cp_fs *once_fs;

static void raise_readahead_once(void)
{
	raise_readahead(once_fs->mountpoint);
}

static void cp_ll_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Replies point into cache blocks: never gift them to a pipe. */
	conn->want |= FUSE_CAP_ASYNC_READ;
	/* A lookup waiting on the API must not hold up lookups of other
	 * names in the root (the kernel serialises them otherwise). */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
			FUSE_CAP_ATOMIC_O_TRUNC);
	/* Attributes come with the names, every time: `ls -l` of the root
	 * then costs no lookup per file (the kernel's "auto" mode would use
	 * readdirplus for the first batch only). */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* A link's target never changes under its number (files are never
	 * dropped from the table; pages.c retires a dropped link's number):
	 * the kernel may keep what it read, so a second `ls -l by-name/`
	 * asks nothing per link. */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	once_fs = userdata; /* before any open: INIT comes first */
}

/* Adds one entry to a readdir reply (with its attributes for
 * readdirplus); returns the bytes it takes, more than @left when it
 * did not fit. */
static size_t add_entry(fuse_req_t req, int plus, char *buf, size_t left,
			const char *name, const struct fuse_entry_param *e,
			off_t next)
{
	if (plus)
		return fuse_add_direntry_plus(req, buf, left, name, e, next);
	return fuse_add_direntry(req, buf, left, name, &e->attr, next);
}

/*
 * What a lookup of a file answers: attributes to keep for long when its
 * size is known.  Else answer at once and let getattr/open ask the API:
 * the kernel runs lookups in one directory one at a time (libfuse 3.14
 * cannot negotiate parallel dirops), so a lookup waiting on a slow API
 * would hold up every other name.  attr_timeout 0 makes the kernel fetch
 * the real attributes before using them; a short entry timeout lets an
 * id that turns out not to exist go away soon.
 */
static void file_entry(struct cp_fs *fs, struct cp_file *file,
		       struct fuse_entry_param *e)
{
	int known = cp_files_known(fs->files, file);

	e->ino = file->ino;
	e->entry_timeout = known == 1 ? ATTR_TIMEOUT : ROOT_TIMEOUT;
	e->attr_timeout = known == 1 ? ATTR_TIMEOUT : 0;
	cp_files_stat(fs->files, file, &e->attr);
}

/* ---- the views: by-name/ and by-page/ ---- */

/* A symlink's attributes: those of its file, @depth levels below the
 * root ("../<id>" or "../../<id>"). */
static void link_stat(struct cp_fs *fs, struct cp_file *file, uint64_t ino,
		      int depth, struct stat *st)
{
	cp_files_stat(fs->files, file, st);
	st->st_ino = ino;
	st->st_mode = S_IFLNK | 0777;
	st->st_size = 3 * depth + strlen(file->id);
	st->st_blocks = 0;
}

static int is_view_dir(struct cp_fs *fs, fuse_ino_t ino)
{
	if (!fs->cfg->names)
		return 0;
	if (ino == CP_INO_BYNAME || ino == CP_INO_BYPAGE)
		return 1;
	return cp_ino_kind(ino) == CP_INO_PAGE_DIR &&
	       cp_pages_has_dir(fs->pages, ino);
}

/* Attributes of entry @e of view directory @dir. */
static void view_entry_stat(struct cp_fs *fs, fuse_ino_t dir,
			    const struct cp_view_entry *e, struct stat *st)
{
	if (dir == CP_INO_BYPAGE)
		dir_stat(fs, e->ino, st);
	else
		link_stat(fs, e->file, e->ino, dir == CP_INO_BYNAME ? 1 : 2,
			  st);
}

static void lookup_view(fuse_req_t req, struct cp_fs *fs, fuse_ino_t dir,
			const char *name)
{
	const struct cp_view_entry *found;
	struct fuse_entry_param e;
	struct cp_view *view;
	int err;

	memset(&e, 0, sizeof(e));
	view = cp_views_get(fs->views, dir, &err);
	if (!view) {
		fuse_reply_err(req, -err);
		return;
	}
	found = cp_view_find(view, name);
	if (found) {
		view_entry_stat(fs, dir, found, &e.attr);
		e.ino = e.attr.st_ino;
	}
	cp_view_unref(view);
	/* Names appear as files become known: no negative caching. */
	e.attr_timeout = e.entry_timeout = ROOT_TIMEOUT;
	if (!e.ino)
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_entry(req, &e);
}

/*
 * What an open view directory lists: the snapshot current when its
 * listing starts (offset 0), held by the handle (fi->fh) until the next
 * start or the release, so offsets stay valid through a listing.  The
 * kernel sends one readdir of a handle at a time.
 */
struct view_snap {
	struct cp_view *view;    /* NULL until the first readdir */
};

/* The snapshot of @snap, taken afresh when a listing starts at @off 0. */
static int snap_take(struct cp_fs *fs, fuse_ino_t dir, struct view_snap *snap,
		     off_t off)
{
	int err = 0;

	if (off <= 0 || !snap->view) {
		cp_view_unref(snap->view);
		snap->view = cp_views_get(fs->views, dir, &err);
	}
	return err;
}

static void readdir_view(fuse_req_t req, struct cp_fs *fs, fuse_ino_t dir,
			 size_t size, off_t off, int plus,
			 struct view_snap *snap)
{
	fuse_ino_t parent = dir == CP_INO_BYNAME || dir == CP_INO_BYPAGE
				    ? FUSE_ROOT_ID
				    : CP_INO_BYPAGE;
	char *buf = malloc(size);
	size_t left = size;
	uint64_t entries = 0;
	off_t n;
	int err;

	err = buf ? snap_take(fs, dir, snap, off) : -ENOMEM;
	if (err < 0) {
		free(buf);
		fuse_reply_err(req, -err);
		return;
	}
	n = (off_t)cp_view_count(snap->view);
	for (off = off < 0 ? 0 : off; off < n + 2; off++) {
		struct fuse_entry_param e;
		const char *name = off == 0 ? "." : off == 1 ? ".." : NULL;
		size_t len;

		memset(&e, 0, sizeof(e));
		if (name) {
			dir_stat(fs, off == 0 ? dir : parent, &e.attr);
		} else {
			const struct cp_view_entry *ve =
				cp_view_at(snap->view, (size_t)off - 2);

			name = ve->name;
			view_entry_stat(fs, dir, ve, &e.attr);
			e.ino = e.attr.st_ino;
			e.attr_timeout = e.entry_timeout = ROOT_TIMEOUT;
		}
		len = add_entry(req, plus, buf + (size - left), left, name, &e,
				off + 1);
		if (len > left)
			break;
		left -= len;
		entries++;
	}
	cp_stats_add(fs->stats, fuse_readdir_entries, entries);
	fuse_reply_buf(req, buf, size - left);
	free(buf);
}

/* The file a link inode points at (by-name or by-page), or NULL;
 * *@depth gets the link's depth below the root. */
static struct cp_file *link_file(struct cp_fs *fs, fuse_ino_t ino,
				 int *depth)
{
	char id[CP_ID_BUF];

	if (!fs->cfg->names)
		return NULL;
	if (cp_ino_kind(ino) == CP_INO_NAME_LINK) {
		*depth = 1;
		return cp_files_by_ino(fs->files,
				       cp_ino_rekind(ino, CP_INO_FILE));
	}
	if (cp_ino_kind(ino) == CP_INO_PAGE_LINK &&
	    cp_pages_link_target(fs->pages, ino, id) == 0) {
		*depth = 2;
		return cp_files_get(fs->files, id);
	}
	return NULL;
}

static void cp_ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cp_fs *fs = fs_of(req);
	struct cp_file *file;
	char target[64];
	int depth = 0;

	COUNT_REQ(req, readlink);
	file = link_file(fs, ino, &depth);
	if (!file) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	snprintf(target, sizeof(target), "%s%s", depth == 2 ? "../../" : "../",
		 file->id);
	fuse_reply_readlink(req, target);
}

static void do_ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cp_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct cp_file *file;
	int err;

	memset(&e, 0, sizeof(e));
	if (fs->cfg->names && parent == FUSE_ROOT_ID &&
	    (strcmp(name, "by-name") == 0 || strcmp(name, "by-page") == 0)) {
		e.ino = name[3] == 'n' ? CP_INO_BYNAME : CP_INO_BYPAGE;
		e.attr_timeout = e.entry_timeout = ROOT_TIMEOUT;
		dir_stat(fs, e.ino, &e.attr);
		fuse_reply_entry(req, &e);
		return;
	}
	if (is_view_dir(fs, parent)) {
		lookup_view(req, fs, parent, name);
		return;
	}
	if (parent != FUSE_ROOT_ID || !cp_objectid_valid(name)) {
		/* Cached by the kernel as a negative entry: no request. */
		e.entry_timeout = ATTR_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	file = cp_files_get(fs->files, name);
	if (!file) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	err = cp_files_known(fs->files, file);
	if (err == -ENOENT) {
		e.entry_timeout = fs->cfg->neg_ttl;
		fuse_reply_entry(req, &e);
		return;
	}
	file_entry(fs, file, &e);
	fuse_reply_entry(req, &e);
}

static void cp_ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	COUNT_REQ(req, lookup);
	BLOCKING_OP_BEGIN;
	do_ll_lookup(req, parent, name);
	BLOCKING_OP_END;
}

static void do_ll_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct cp_fs *fs = fs_of(req);
	struct cp_file *file;
	struct stat st;
	int err;

	if (ino == FUSE_ROOT_ID || is_view_dir(fs, ino)) {
		dir_stat(fs, ino, &st);
		fuse_reply_attr(req, &st, ROOT_TIMEOUT);
		return;
	}
	if (cp_ino_kind(ino) != CP_INO_FILE) {
		int depth = 0;

		file = link_file(fs, ino, &depth);
		if (!file) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		link_stat(fs, file, ino, depth, &st);
		fuse_reply_attr(req, &st, ROOT_TIMEOUT);
		return;
	}
	file = cp_files_by_ino(fs->files, ino);
	if (!file) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	err = cp_reader_resolve(fs->reader, file, 0);
	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	cp_files_stat(fs->files, file, &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
	(void)fi;
}

static void cp_ll_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	COUNT_REQ(req, getattr);
	BLOCKING_OP_BEGIN;
	do_ll_getattr(req, ino, fi);
	BLOCKING_OP_END;
}

/*
 * The root, for readdir and readdirplus.  Offsets: 0 ".", 1 "..",
 * [2 "by-name", 3 "by-page" with -o names,] then the listed files in
 * order: the listing only grows, so an offset always means the same
 * entry.  readdirplus answers each file's attributes with its name, so
 * `ls -l` costs no request per file.
 */
static void readdir_root(fuse_req_t req, struct cp_fs *fs, size_t size,
			 off_t off, int plus)
{
	off_t first_file = fs->cfg->names ? 4 : 2;
	char *buf = malloc(size), *p = buf;
	size_t left = size;
	uint64_t entries = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off < 0) /* offsets are ours; never index with another */
		off = 0;
	for (;; off++) {
		struct fuse_entry_param e;
		struct cp_file *file;
		const char *name;
		size_t len;

		memset(&e, 0, sizeof(e));
		if (off < first_file) {
			static const char *const dirs[] = { ".", "..",
							    "by-name",
							    "by-page" };
			static const fuse_ino_t inos[] = { FUSE_ROOT_ID,
							   FUSE_ROOT_ID,
							   CP_INO_BYNAME,
							   CP_INO_BYPAGE };

			name = dirs[off];
			dir_stat(fs, inos[off], &e.attr);
			/* "." and ".." carry no entry (the kernel skips
			 * them); the views are entries of their own. */
			if (off >= 2) {
				e.ino = inos[off];
				e.attr_timeout = e.entry_timeout =
					ROOT_TIMEOUT;
			}
		} else {
			file = cp_files_listed(fs->files,
					       (size_t)off - first_file);
			if (!file)
				break;
			name = file->id;
			if (plus) {
				file_entry(fs, file, &e);
			} else {
				e.attr.st_ino = file->ino;
				e.attr.st_mode = S_IFREG;
			}
		}
		len = add_entry(req, plus, p, left, name, &e, off + 1);
		if (len > left)
			break;
		p += len;
		left -= len;
		entries++;
	}
	cp_stats_add(fs->stats, fuse_readdir_entries, entries);
	fuse_reply_buf(req, buf, size - left);
	free(buf);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, int plus, struct fuse_file_info *fi)
{
	struct cp_fs *fs = fs_of(req);
	struct view_snap *snap = (struct view_snap *)(uintptr_t)fi->fh;

	if (snap)
		readdir_view(req, fs, ino, size, off, plus, snap);
	else if (ino == FUSE_ROOT_ID)
		readdir_root(req, fs, size, off, plus);
	else
		fuse_reply_err(req, ENOTDIR);
}

static void cp_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	COUNT_REQ(req, readdir);
	do_readdir(req, ino, size, off, 0, fi);
}

static void cp_ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	COUNT_REQ(req, readdirplus);
	do_readdir(req, ino, size, off, 1, fi);
}

/* The root lists from the table itself; a view gets a snapshot. */
static void cp_ll_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct cp_fs *fs = fs_of(req);
	struct view_snap *snap;

	fi->fh = 0;
	if (ino == FUSE_ROOT_ID) {
		fuse_reply_open(req, fi);
		return;
	}
	if (!is_view_dir(fs, ino)) {
		fuse_reply_err(req, cp_files_by_ino(fs->files, ino) ? ENOTDIR
								    : ENOENT);
		return;
	}
	snap = calloc(1, sizeof(*snap));
	if (!snap) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)snap;
	if (fuse_reply_open(req, fi) == -ENOENT)
		free(snap); /* interrupted: no releasedir will come */
}

static void cp_ll_releasedir(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi)
{
	struct view_snap *snap = (struct view_snap *)(uintptr_t)fi->fh;

	(void)ino;
	if (snap) {
		cp_view_unref(snap->view);
		free(snap);
	}
	fuse_reply_err(req, 0);
}

static void do_ll_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct cp_fs *fs = fs_of(req);
	static pthread_once_t readahead_once = PTHREAD_ONCE_INIT;
	struct cp_handle *h;
	struct cp_file *file;
	int err;

	pthread_once(&readahead_once, raise_readahead_once);
	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_CREAT))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	file = cp_files_by_ino(fs->files, ino);
	if (!file) {
		fuse_reply_err(req, is_view_dir(fs, ino) ? EISDIR : ENOENT);
		return;
	}
	err = cp_reader_resolve(fs->reader, file, 1);
	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	h = cp_handle_new(fs->reader, file);
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->keep_cache = cp_files_keep_cache(fs->files, file);
	fi->direct_io = (fi->flags & O_DIRECT) ? 1 : 0;
	if (fuse_reply_open(req, fi) != 0)
		cp_handle_free(h);
}

static void cp_ll_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	COUNT_REQ(req, open);
	BLOCKING_OP_BEGIN;
	do_ll_open(req, ino, fi);
	BLOCKING_OP_END;
}

static void do_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct cp_handle *h = (struct cp_handle *)(uintptr_t)fi->fh;
	struct cp_fs *fs = fs_of(req);
	struct cp_block *blocks[MAX_READ_BLOCKS];
	struct iovec iov[MAX_READ_BLOCKS];
	size_t skip = (size_t)off & (CP_BLOCK_SIZE - 1), left;
	char *direct;
	ssize_t got;
	int n, i;

	if (size > (MAX_READ_BLOCKS - 2) * CP_BLOCK_SIZE)
		size = (MAX_READ_BLOCKS - 2) * CP_BLOCK_SIZE;
	got = cp_reader_read(h, off, size, blocks, MAX_READ_BLOCKS, &n,
			     &direct);
	if (got == -ESTALE) {
		/* Never old and new bytes: the kernel forgets the size now,
		 * and the next open drops its pages (keep_cache off). */
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
		got = -EIO;
	} else if (cp_reader_grown(h)) {
		/* Before the reply: a later read past the old end asks for
		 * the new size. */
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	}
	if (got < 0) {
		fuse_reply_err(req, (int)-got);
		return;
	}
	if (got == 0 || direct) {
		fuse_reply_buf(req, direct, (size_t)got);
		free(direct);
		return;
	}
	/* Reply straight from the cache blocks: the only copy is the
	 * kernel's. */
	left = (size_t)got;
	for (i = 0; i < n; i++) {
		size_t len = blocks[i]->want - skip;

		if (len > left)
			len = left;
		iov[i].iov_base = blocks[i]->data + skip;
		iov[i].iov_len = len;
		left -= len;
		skip = 0;
	}
	fuse_reply_iov(req, iov, n);
	/* @req and @h may be gone now: the reader stays. */
	cp_reader_unpin(fs->reader, blocks, n);
}

static void cp_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	BLOCKING_OP_BEGIN;
	do_ll_read(req, ino, size, off, fi);
	BLOCKING_OP_END;
}

/* Inodes live as long as the mount (files.h): nothing to drop, but the
 * count says what a listing cost the kernel afterwards. */
static void cp_ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	COUNT_REQ(req, forget);
	fuse_reply_none(req);
	(void)ino;
	(void)nlookup;
}

static void cp_ll_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	cp_handle_free((struct cp_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
	(void)ino;
}

static void cp_ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	COUNT_REQ(req, statfs);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = CP_BLOCK_SIZE;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &sv);
	(void)ino;
}

/* ---- extended attributes ---- */

/* Each file's extended attributes and the file-table field behind each. */
static const struct {
	const char *xattr, *field;
} file_xattrs[] = {
	{ "user.checkoutpage.name", "name" },
	{ "user.checkoutpage.content_type", "content_type" },
	{ "user.checkoutpage.etag", "etag" },
	{ "user.checkoutpage.created_at", "created_at" },
	{ "user.checkoutpage.purpose", "purpose" },
	{ "user.checkoutpage.url", "url" },
	{ "user.checkoutpage.width", "width" },
	{ "user.checkoutpage.height", "height" },
};

/* Fills @buf with the value of @name on @ino; returns its length or
 * -errno. */
static ssize_t xattr_value(struct cp_fs *fs, fuse_ino_t ino,
			   const char *name, char *buf, size_t len)
{
	struct cp_file *file;
	size_t i;

	/* Only user.* attributes exist here.  For the other namespaces
	 * (security.selinux, system.posix_acl_*, trusted.*) "not supported"
	 * is the truth, and it lets `ls -l` and backup tools ask once per
	 * mount instead of once per file: ENODATA would mean "supported,
	 * none on this file", so they would ask the next file again. */
	if (strncmp(name, "user.", 5) != 0)
		return -EOPNOTSUPP;
	if (ino == FUSE_ROOT_ID) {
		if (strcmp(name, "user.cpfs.stats") != 0)
			return -ENODATA;
		return (ssize_t)cp_stats_format(fs->stats, buf, len);
	}
	/* Views and their links have none. */
	file = cp_ino_kind(ino) == CP_INO_FILE
		       ? cp_files_by_ino(fs->files, ino)
		       : NULL;
	if (!file)
		return -ENODATA;
	for (i = 0; i < CP_ARRAY_SIZE(file_xattrs); i++) {
		if (strcmp(name, file_xattrs[i].xattr) == 0) {
			size_t n = cp_files_field(fs->files, file,
						  file_xattrs[i].field, buf,
						  len);
			return n ? (ssize_t)n : -ENODATA;
		}
	}
	return -ENODATA;
}

static void cp_ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   size_t size)
{
	char buf[4096];
	ssize_t n;

	COUNT_REQ(req, getxattr);
	n = xattr_value(fs_of(req), ino, name, buf, sizeof(buf));
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void cp_ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct cp_fs *fs = fs_of(req);
	char list[512], val[4096];
	size_t len = 0, i;

	COUNT_REQ(req, listxattr);
	if (ino == FUSE_ROOT_ID) {
		memcpy(list, "user.cpfs.stats", 16);
		len = 16;
	} else {
		for (i = 0; i < CP_ARRAY_SIZE(file_xattrs); i++) {
			const char *x = file_xattrs[i].xattr;

			if (xattr_value(fs, ino, x, val, sizeof(val)) < 0)
				continue;
			memcpy(list + len, x, strlen(x) + 1);
			len += strlen(x) + 1;
		}
	}
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, list, len);
}

/* ---- everything that would write ---- */

static void cp_ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int to_set, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_symlink(fuse_req_t req, const char *link,
			  fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname,
			 unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
			size_t size, off_t off, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   const char *value, size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void cp_ll_removexattr(fuse_req_t req, fuse_ino_t ino,
			      const char *name)
{
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops cp_fs_ops = {
	.init = cp_ll_init,
	.lookup = cp_ll_lookup,
	.forget = cp_ll_forget,
	.getattr = cp_ll_getattr,
	.opendir = cp_ll_opendir,
	.readdir = cp_ll_readdir,
	.readdirplus = cp_ll_readdirplus,
	.releasedir = cp_ll_releasedir,
	.readlink = cp_ll_readlink,
	.open = cp_ll_open,
	.read = cp_ll_read,
	.release = cp_ll_release,
	.statfs = cp_ll_statfs,
	.getxattr = cp_ll_getxattr,
	.listxattr = cp_ll_listxattr,
	.setattr = cp_ll_setattr,
	.mknod = cp_ll_mknod,
	.mkdir = cp_ll_mkdir,
	.unlink = cp_ll_unlink,
	.rmdir = cp_ll_unlink,
	.symlink = cp_ll_symlink,
	.rename = cp_ll_rename,
	.link = cp_ll_link,
	.write = cp_ll_write,
	.create = cp_ll_create,
	.setxattr = cp_ll_setxattr,
	.removexattr = cp_ll_removexattr,
};
