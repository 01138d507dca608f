/*
 * cfg.h - struct cp_config, what one mount was asked to do, and the
 * defaults of its settings.
 *
 * opts.c fills it from the command line (cp_opts_parse) and frees it
 * (cp_config_free); every other module only reads it, so they include
 * this header and not the command line's.  (Not "config.h": meson
 * generates that one, with CP_VERSION.)
 *
 * Thread safety: filled once in main() before any thread starts, and
 * read-only from then on; any thread reads it without a lock.
 */
#ifndef CP_CFG_H
#define CP_CFG_H

#include <fuse_opt.h>
#include <stdint.h>
#include <sys/types.h>

#define CP_DEFAULT_API_URL "https://api.checkoutpage.com"
#define CP_DEFAULT_CACHE_SIZE (64ULL << 20)
#define CP_DEFAULT_DISK_CACHE_SIZE (1ULL << 30)
#define CP_DEFAULT_TIMEOUT 30      /* seconds without progress */
#define CP_DEFAULT_API_RATE 100    /* calls per minute */
#define CP_DEFAULT_RETRIES 6       /* attempts per request, first included */
#define CP_DEFAULT_DEADLINE 120    /* seconds per FUSE request, all tries */
#define CP_DEFAULT_NEG_TTL 10      /* seconds a 404 is remembered */
#define CP_MIN_CACHE_SIZE (4ULL << 20)
#define CP_DEFAULT_REFRESH 3600    /* seconds between discovery walks */

struct cp_config {
	char *api_url;         /* no trailing '/'; owned */
	char *mountpoint;      /* absolute path; owned */
	char *api_key;         /* owned; never logged, wiped on free */
	char *ids_path;        /* manifest, or NULL */
	char *cafile;          /* extra CA bundle, or NULL */
	char *cache_dir;       /* metadata directory; NULL = default */
	char *disk_cache;      /* data cache directory, or NULL (off) */
	uint64_t disk_cache_size;
	uint64_t cache_size;   /* bytes of memory for file data */
	unsigned timeout;      /* seconds a transfer may make no progress */
	unsigned api_rate;     /* API calls per minute */
	unsigned retries;      /* attempts per request (>= 1) */
	unsigned deadline;     /* seconds one FUSE request may take */
	unsigned neg_ttl;      /* seconds a 404 is remembered */
	int names;             /* -o names */
	int no_check;          /* -o no_check */
	int discover;          /* -o discover / no_discover; default: on
				* without ids= */
	unsigned refresh;      /* seconds between walks; 0 = once a mount */
	int foreground;        /* -f (or -d) */
	int debug;             /* -d */
	int singlethread;      /* -s */
	int has_uid, has_gid, has_umask;
	uid_t uid;
	gid_t gid;
	mode_t umask;
	/* Arguments for fuse_session_new(): argv[0] plus the FUSE options
	 * (allow_other, default_permissions, fsname=, ...).  Owned. */
	struct fuse_args fuse_args;
};

#endif
