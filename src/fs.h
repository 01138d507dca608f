/*
 * fs.h - the FUSE low-level operations: the boundary where -errno becomes
 * a reply.
 *
 * Inodes: 1 is the root; CP_INO_BYNAME the by-name/ directory (-o names);
 * files are numbered by the file table; a file's by-name symlink is its
 * inode | CP_INO_LINK.  Every op answers exactly once.
 *
 * Thread safety: ops run in libfuse's worker threads, concurrently; the
 * state they share lives in the modules they call.
 */
#ifndef CP_FS_H
#define CP_FS_H

#include <fuse_lowlevel.h>

struct cp_config;
struct cp_files;
struct cp_reader;
struct cp_stats;

#define CP_INO_BYNAME 2
#define CP_INO_LINK (1ULL << 62)

struct cp_fs {
	const struct cp_config *cfg;
	struct cp_files *files;
	struct cp_reader *reader;
	struct cp_stats *stats;
	const char *mountpoint;
	struct fuse_session *se;  /* for notifications to the kernel */
};

extern const struct fuse_lowlevel_ops cp_fs_ops;

#endif
