/*
 * fs.h - the FUSE low-level operations: the boundary where -errno becomes
 * a reply.
 *
 * Inodes (ino.h): 1 is the root; by-name/ and by-page/ (-o names) are
 * CP_INO_BYNAME and CP_INO_BYPAGE; files, links and page directories are
 * numbered from their ids, each kind in its own range.  Every op answers
 * exactly once.
 *
 * Thread safety: ops run in libfuse's worker threads, concurrently; the
 * state they share lives in the modules they call.
 */
#ifndef CP_FS_H
#define CP_FS_H

#include <fuse_lowlevel.h>

struct cp_config;
struct cp_files;
struct cp_pages;
struct cp_reader;
struct cp_stats;
struct cp_views;

struct cp_fs {
	const struct cp_config *cfg;
	struct cp_files *files;
	struct cp_pages *pages;   /* by-page/ index (filled by discovery) */
	struct cp_views *views;   /* by-name/ and by-page/ entries */
	struct cp_reader *reader;
	struct cp_stats *stats;
	const char *mountpoint;
	struct fuse_session *se;  /* for notifications to the kernel */
};

extern const struct fuse_lowlevel_ops cp_fs_ops;

#endif
