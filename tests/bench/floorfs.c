/*
 * floorfs.c - the floor for tests/bench/meta.py: the least a FUSE daemon
 * can do for a listing of N files, so the benchmark shows what the
 * kernel's side of FUSE costs on this machine with no daemon work in it.
 *
 *     floorfs LIST MOUNTPOINT
 *
 * LIST has one "name size" per line.  The root holds those names as
 * read-only regular files of those sizes, inode i + 2 for line i.  It
 * answers READDIRPLUS (always, as cpfs does) straight from the table with
 * an hour's entry and attribute timeouts, plus LOOKUP and GETATTR; no
 * open, no read, no xattr.  One thread (fuse_session_loop): nothing in it
 * ever waits.  Built by meta.py with cc at set-up; not part of cpfs.
 */
#define FUSE_USE_VERSION 34

#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "floor.h"


struct floor_table {
	char **names;
	off_t *sizes;
	size_t n;
};

static struct floor_table table;

static off_t size_of(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? 0 : table.sizes[ino - 2];
}

static int known(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID || (ino >= 2 && ino - 2 < table.n);
}

static void floor_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	size_t i;

	if (parent == FUSE_ROOT_ID)
		for (i = 0; i < table.n; i++)
			if (!strcmp(table.names[i], name)) {
				floor_fill_entry(i + 2, size_of(i + 2), &e);
				fuse_reply_entry(req, &e);
				return;
			}
	fuse_reply_err(req, ENOENT);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (!known(ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	floor_fill_stat(ino, size_of(ino), &st);
	fuse_reply_attr(req, &st, FLOOR_TIMEOUT);
}

static void floor_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	char *buf;
	size_t used = 0;
	off_t i;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = off; i >= 0 && (size_t)i < table.n; i++) {
		struct fuse_entry_param e;
		size_t len;

		floor_fill_entry((fuse_ino_t)i + 2,
				 size_of((fuse_ino_t)i + 2), &e);
		len = fuse_add_direntry_plus(req, buf + used, size - used,
					     table.names[i], &e, i + 1);
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static const struct fuse_lowlevel_ops floor_ops = {
	.init = floor_init,
	.lookup = floor_lookup,
	.getattr = floor_getattr,
	.readdirplus = floor_readdirplus,
};

static int load(const char *path)
{
	char name[256];
	long long size;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %lld", name, &size) == 2) {
		if (table.n == cap) {
			cap = cap ? cap * 2 : 1024;
			table.names = realloc(table.names,
					      cap * sizeof(*table.names));
			table.sizes = realloc(table.sizes,
					      cap * sizeof(*table.sizes));
			if (!table.names || !table.sizes) {
				fclose(f);
				return -ENOMEM;
			}
		}
		table.names[table.n] = strdup(name);
		if (!table.names[table.n]) {
			fclose(f);
			return -ENOMEM;
		}
		table.sizes[table.n++] = (off_t)size;
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: floorfs LIST MOUNTPOINT\n");
		return 2;
	}
	if (load(argv[1]) < 0) {
		fprintf(stderr, "floorfs: cannot load %s\n", argv[1]);
		return 1;
	}
	return floor_serve(argv[0], "floorfs", &floor_ops, sizeof(floor_ops),
			   argv[2]);
}
