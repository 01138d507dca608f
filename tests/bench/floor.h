/*
 * floor.h - what the benchmark's floor daemons (floorfs.c, randfloor.c)
 * share: the attributes of their read-only root and files, and the
 * one-thread session they serve them in.  Included
 * after <fuse_lowlevel.h>; each floor is one file built with cc.
 */
#ifndef CPFS_BENCH_FLOOR_H
#define CPFS_BENCH_FLOOR_H

#include <stdio.h>
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

/* Mounts @ops on @mountpoint as @fsname and serves it in one thread until
 * unmounted or signalled (fuse_session_loop).  The exit status. */
static inline int floor_serve(const char *argv0, const char *fsname,
			      const struct fuse_lowlevel_ops *ops,
			      size_t ops_size, const char *mountpoint)
{
	char opt[64];
	char *fargv[] = { (char *)argv0, "-o", opt };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se;
	int ret = 1;

	snprintf(opt, sizeof(opt), "fsname=%s", fsname);
	se = fuse_session_new(&args, ops, ops_size, NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto err_out1;
	if (fuse_session_mount(se, mountpoint) != 0)
		goto err_out2;
	ret = fuse_session_loop(se) ? 1 : 0;
	fuse_session_unmount(se);
err_out2:
	fuse_remove_signal_handlers(se);
err_out1:
	fuse_session_destroy(se);
	return ret;
}

#endif
