/*
 * opts.h - the command line: `cpfs [options] [API_URL] MOUNTPOINT`.
 *
 * cp_opts_parse() turns argv into a struct cp_config, validating
 * everything that can be validated before mounting (sizes, URL, key,
 * mountpoint), and builds the argument list handed to libfuse
 * (fuse_args) from the options that are libfuse's own.
 *
 * Also holds the small validators other modules and the tests share:
 * sizes, ObjectIds, API URLs.
 *
 * Thread safety: called once from main() before any thread starts; the
 * resulting struct cp_config is read-only afterwards.
 */
#ifndef CP_OPTS_H
#define CP_OPTS_H

#include <fuse_lowlevel.h>
#include <stdint.h>
#include <sys/types.h>

#define CP_DEFAULT_API_URL "https://api.checkoutpage.com"
#define CP_DEFAULT_CACHE_SIZE (64ULL << 20)
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

enum {
	CP_OPTS_MOUNT = 0, /* go on and mount */
	CP_OPTS_EXIT = 1,  /* -h or -V was printed: exit 0 */
	CP_OPTS_ERROR = -1 /* one line in @err: exit 1 */
};

/*
 * Parses @argv.  Reads the key from CHECKOUTPAGE_API_KEY or
 * api_key_file= (warns when the file is readable by group or others),
 * checks that the mountpoint is an existing empty directory.  On
 * CP_OPTS_ERROR, @err holds one line without a trailing newline.
 * The caller frees @cfg with cp_config_free() whatever the result.
 */
int cp_opts_parse(int argc, char **argv, struct cp_config *cfg, char *err,
		  size_t errlen);

void cp_config_free(struct cp_config *cfg);

/* "123", "64K", "64M", "1G", "1.5G" (K = 1024).  0 or -EINVAL. */
int cp_parse_size(const char *s, uint64_t *out);

/* 1 if @name is a 24-character hex ObjectId, else 0. */
int cp_objectid_valid(const char *name);

/* 1 if the host of the http(s) @url is loopback (127.0.0.0/8,
 * localhost, [::1]), else 0. */
int cp_url_is_loopback(const char *url);

/*
 * 0 if @url may be fetched: https://, or http:// to a loopback host.
 * Else -EINVAL with a reason in @why ("scheme ftp is not allowed", ...).
 * Used for API_URL and for every URL the API hands out.
 */
int cp_url_check(const char *url, char *why, size_t whylen);

#endif
