/*
 * floor.h - what the benchmark's floor daemons (floorfs.c, randfloor.c)
 * share: the attributes of their read-only root and files.  Included
 * after <fuse_lowlevel.h>; each floor is one file built with cc.
 */
#ifndef CPFS_BENCH_FLOOR_H
#define CPFS_BENCH_FLOOR_H

#include <string.h>
#include <sys/stat.h>

/* Entry and attribute timeouts: the names and sizes never change. */
#define FLOOR_TIMEOUT 3600.0

/* The root (FUSE_ROOT_ID) or a regular file of @size bytes. */
static inline void floor_fill_stat(fuse_ino_t ino, off_t size,
				   struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = size;
}

static inline void floor_fill_entry(fuse_ino_t ino, off_t size,
				    struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr_timeout = FLOOR_TIMEOUT;
	e->entry_timeout = FLOOR_TIMEOUT;
	floor_fill_stat(ino, size, &e->attr);
}

#endif
