/*
 * tmpdir.h - a scratch directory for unit tests that touch the disk
 * (meta, diskcache): made under /tmp, removed with everything in it, and
 * unmounted first in case a test mounted a file system over it.
 */
#ifndef CP_TEST_TMPDIR_H
#define CP_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>

static int tmpdir_rm_one(const char *path, const struct stat *st, int flag,
			 struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Fills @dir (room for PATH_MAX) with a new directory's path; 0 or -1. */
static inline int tmpdir_make(char *dir, size_t len, const char *tag)
{
	snprintf(dir, len, "/tmp/cpfs-test-%s.XXXXXX", tag);
	return mkdtemp(dir) ? 0 : -1;
}

static inline void tmpdir_remove(const char *dir)
{
	umount2(dir, MNT_DETACH);
	nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
