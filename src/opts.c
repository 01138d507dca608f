/*
 * opts.c - the command line and the API key.
 *
 * cp_opts_parse() runs once in main() before any thread starts.  It owns
 * nothing after it returns: everything it learns goes into the caller's
 * struct cp_config, which is read-only from then on.  Options that are
 * libfuse's own are passed on in cfg->fuse_args; mount(8) and fstab
 * options that mean nothing to a FUSE daemon are dropped; anything else
 * is an error.  Nothing here prints on error: the one-line reason goes to
 * @err for main() to print.
 */
#include "opts.h"

#include "config.h"
#include "log.h"
#include "util.h"
#include "valid.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <fuse_opt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX 4096

enum {
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_SINGLE,
	KEY_HELP,
	KEY_VERSION,
	KEY_API_KEY_FILE,
	KEY_IDS,
	KEY_CACHE_SIZE,
	KEY_TIMEOUT,
	KEY_API_RATE,
	KEY_RETRIES,
	KEY_DEADLINE,
	KEY_NEG_TTL,
	KEY_CAFILE,
	KEY_CACHE_DIR,
	KEY_DISK_CACHE,
	KEY_DISK_CACHE_SIZE,
	KEY_NAMES,
	KEY_NO_CHECK,
	KEY_DISCOVER,
	KEY_NO_DISCOVER,
	KEY_REFRESH,
	KEY_UID,
	KEY_GID,
	KEY_UMASK,
	KEY_FSNAME,
	KEY_SUBTYPE,
	KEY_PASS, /* libfuse's own: keep */
	KEY_DROP, /* mount(8)/fstab noise: accept and forget */
};

/* clang-format off: one option a line */
static const struct fuse_opt opt_spec[] = {
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-s", KEY_SINGLE),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),

	FUSE_OPT_KEY("api_key_file=", KEY_API_KEY_FILE),
	FUSE_OPT_KEY("ids=", KEY_IDS),
	FUSE_OPT_KEY("cache_size=", KEY_CACHE_SIZE),
	FUSE_OPT_KEY("timeout=", KEY_TIMEOUT),
	FUSE_OPT_KEY("api_rate=", KEY_API_RATE),
	FUSE_OPT_KEY("retries=", KEY_RETRIES),
	FUSE_OPT_KEY("deadline=", KEY_DEADLINE),
	FUSE_OPT_KEY("neg_ttl=", KEY_NEG_TTL),
	FUSE_OPT_KEY("cafile=", KEY_CAFILE),
	FUSE_OPT_KEY("cache_dir=", KEY_CACHE_DIR),
	FUSE_OPT_KEY("disk_cache=", KEY_DISK_CACHE),
	FUSE_OPT_KEY("disk_cache_size=", KEY_DISK_CACHE_SIZE),
	FUSE_OPT_KEY("names", KEY_NAMES),
	FUSE_OPT_KEY("no_check", KEY_NO_CHECK),
	FUSE_OPT_KEY("discover", KEY_DISCOVER),
	FUSE_OPT_KEY("no_discover", KEY_NO_DISCOVER),
	FUSE_OPT_KEY("refresh=", KEY_REFRESH),
	FUSE_OPT_KEY("uid=", KEY_UID),
	FUSE_OPT_KEY("gid=", KEY_GID),
	FUSE_OPT_KEY("umask=", KEY_UMASK),

	/* What fuse_session_new() itself understands. */
	FUSE_OPT_KEY("fsname=", KEY_FSNAME),
	FUSE_OPT_KEY("subtype=", KEY_SUBTYPE),
	FUSE_OPT_KEY("allow_other", KEY_PASS),
	FUSE_OPT_KEY("allow_root", KEY_PASS),
	FUSE_OPT_KEY("auto_unmount", KEY_PASS),
	FUSE_OPT_KEY("default_permissions", KEY_PASS),
	FUSE_OPT_KEY("max_read=", KEY_PASS),
	FUSE_OPT_KEY("blksize=", KEY_PASS),
	FUSE_OPT_KEY("context=", KEY_PASS),
	FUSE_OPT_KEY("fscontext=", KEY_PASS),
	FUSE_OPT_KEY("defcontext=", KEY_PASS),
	FUSE_OPT_KEY("rootcontext=", KEY_PASS),
	FUSE_OPT_KEY("suid", KEY_PASS),
	FUSE_OPT_KEY("nosuid", KEY_PASS),
	FUSE_OPT_KEY("dev", KEY_PASS),
	FUSE_OPT_KEY("nodev", KEY_PASS),
	FUSE_OPT_KEY("exec", KEY_PASS),
	FUSE_OPT_KEY("noexec", KEY_PASS),
	FUSE_OPT_KEY("async", KEY_PASS),
	FUSE_OPT_KEY("sync", KEY_PASS),
	FUSE_OPT_KEY("dirsync", KEY_PASS),
	FUSE_OPT_KEY("noatime", KEY_PASS),
	FUSE_OPT_KEY("blkdev", KEY_PASS),
	FUSE_OPT_KEY("user=", KEY_PASS),

	/* mount(8), fstab and systemd options.  "ro" is added anyway and
	 * "rw" must not undo it.  libfuse 3.14's fuse_session_new() refuses
	 * every atime flag but atime/noatime; they are meaningless on a
	 * filesystem that is never written, so they are dropped. */
	FUSE_OPT_KEY("ro", KEY_DROP),
	FUSE_OPT_KEY("rw", KEY_DROP),
	FUSE_OPT_KEY("defaults", KEY_DROP),
	FUSE_OPT_KEY("_netdev", KEY_DROP),
	FUSE_OPT_KEY("auto", KEY_DROP),
	FUSE_OPT_KEY("noauto", KEY_DROP),
	FUSE_OPT_KEY("nofail", KEY_DROP),
	FUSE_OPT_KEY("user", KEY_DROP),
	FUSE_OPT_KEY("nouser", KEY_DROP),
	FUSE_OPT_KEY("users", KEY_DROP),
	FUSE_OPT_KEY("owner", KEY_DROP),
	FUSE_OPT_KEY("group", KEY_DROP),
	FUSE_OPT_KEY("comment=", KEY_DROP),
	FUSE_OPT_KEY("atime", KEY_DROP),
	FUSE_OPT_KEY("nodiratime", KEY_DROP),
	FUSE_OPT_KEY("nostrictatime", KEY_DROP),
	FUSE_OPT_KEY("relatime", KEY_DROP),
	FUSE_OPT_KEY("norelatime", KEY_DROP),
	FUSE_OPT_KEY("strictatime", KEY_DROP),
	FUSE_OPT_KEY("lazytime", KEY_DROP),
	FUSE_OPT_KEY("nolazytime", KEY_DROP), FUSE_OPT_END
};
/* clang-format on */

/* State of one parse, handed to opt_proc() by fuse_opt_parse(). */
struct parse_ctx {
	struct cp_config *cfg;
	char *err;
	size_t errlen;
	int failed;
	int help, version;
	int has_fsname, has_subtype, has_disk_cache_size;
	char *api_key_file;
	char *positional[2];
	int npositional;
};

static int fail(struct parse_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct parse_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->failed)
		return -1; /* keep the first reason */
	va_start(ap, fmt);
	vsnprintf(ctx->err, ctx->errlen, fmt, ap);
	va_end(ap);
	ctx->failed = 1;
	return -1;
}

/* "api_key_file=/x" -> "/x" */
static const char *opt_value(const char *arg)
{
	const char *eq = strchr(arg, '=');

	return eq ? eq + 1 : arg + strlen(arg);
}

/* Turns a relative path into one that survives the chdir("/") of
 * daemonizing.  The path need not exist.  NULL on allocation failure. */
static char *absolute_path(const char *path)
{
	char cwd[PATH_MAX];
	char *out;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&out, "%s/%s", strcmp(cwd, "/") ? cwd : "", path) < 0)
		return NULL;
	return out;
}

static int set_path(struct parse_ctx *ctx, char **slot, const char *arg)
{
	const char *v = opt_value(arg);
	char *abs;

	if (!*v)
		return fail(ctx, "option '%s' needs a value", arg);
	abs = absolute_path(v);
	if (!abs)
		return fail(ctx, "option '%s': %s", arg, strerror(errno));
	free(*slot);
	*slot = abs;
	return 0;
}

/* Strict decimal in [min, max]: no sign, no space, no garbage. */
static int parse_uint(const char *s, unsigned long min, unsigned long max,
		      unsigned long *out)
{
	unsigned long v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (ULONG_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (*s || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int set_uint(struct parse_ctx *ctx, unsigned *slot, const char *arg,
		    unsigned long min, unsigned long max)
{
	unsigned long v;

	if (parse_uint(opt_value(arg), min, max, &v))
		return fail(ctx,
			    "invalid value in '%s': expected a whole number "
			    "from %lu to %lu",
			    arg, min, max);
	*slot = (unsigned)v;
	return 0;
}

static int set_size(struct parse_ctx *ctx, uint64_t *slot, const char *arg,
		    uint64_t min)
{
	uint64_t v;

	if (cp_parse_size(opt_value(arg), &v))
		return fail(ctx, "invalid size in '%s' (examples: 64M, 1.5G)",
			    arg);
	if (v < min)
		return fail(ctx, "'%s' is too small: the minimum is %lluM", arg,
			    (unsigned long long)(min >> 20));
	*slot = v;
	return 0;
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct parse_ctx *ctx = data;
	struct cp_config *cfg = ctx->cfg;
	unsigned long v;

	(void)outargs;
	if (ctx->failed)
		return -1;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (ctx->npositional == 2)
			return fail(ctx, "too many arguments: '%s'", arg);
		ctx->positional[ctx->npositional] = strdup(arg);
		if (!ctx->positional[ctx->npositional])
			return fail(ctx, "out of memory");
		ctx->npositional++;
		return 0;
	case FUSE_OPT_KEY_OPT: {
		const char *eq = strchr(arg, '=');
		size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
		char probe[64];

		/* A known option written without its value? */
		if (!eq && n + 2 <= sizeof(probe)) {
			const struct fuse_opt *o;

			snprintf(probe, sizeof(probe), "%s=", arg);
			for (o = opt_spec; o->templ; o++)
				if (strcmp(o->templ, probe) == 0)
					return fail(ctx,
						    "option '%s' needs a value",
						    arg);
		}
		if (strncmp(arg, "x-", 2) == 0)
			return 0; /* x-systemd.*, x-gvfs-*, ... */
		return fail(ctx, "unknown option '%s'", arg);
	}
	case KEY_FOREGROUND:
		cfg->foreground = 1;
		return 0;
	case KEY_DEBUG:
		cfg->debug = 1;
		cfg->foreground = 1;
		return 1; /* libfuse logs its requests too */
	case KEY_SINGLE:
		cfg->singlethread = 1;
		return 0;
	case KEY_HELP:
		ctx->help = 1;
		return 0;
	case KEY_VERSION:
		ctx->version = 1;
		return 0;
	case KEY_API_KEY_FILE:
		return set_path(ctx, &ctx->api_key_file, arg);
	case KEY_IDS:
		return set_path(ctx, &cfg->ids_path, arg);
	case KEY_CAFILE:
		return set_path(ctx, &cfg->cafile, arg);
	case KEY_CACHE_DIR:
		return set_path(ctx, &cfg->cache_dir, arg);
	case KEY_DISK_CACHE:
		return set_path(ctx, &cfg->disk_cache, arg);
	case KEY_CACHE_SIZE:
		return set_size(ctx, &cfg->cache_size, arg, CP_MIN_CACHE_SIZE);
	case KEY_DISK_CACHE_SIZE:
		ctx->has_disk_cache_size = 1;
		return set_size(ctx, &cfg->disk_cache_size, arg,
				CP_MIN_CACHE_SIZE);
	case KEY_TIMEOUT:
		return set_uint(ctx, &cfg->timeout, arg, 1, 86400);
	case KEY_API_RATE:
		return set_uint(ctx, &cfg->api_rate, arg, 1, 100000);
	case KEY_RETRIES:
		return set_uint(ctx, &cfg->retries, arg, 1, 100);
	case KEY_DEADLINE:
		return set_uint(ctx, &cfg->deadline, arg, 1, 86400);
	case KEY_NEG_TTL:
		return set_uint(ctx, &cfg->neg_ttl, arg, 0, 86400);
	case KEY_NAMES:
		cfg->names = 1;
		return 0;
	case KEY_NO_CHECK:
		cfg->no_check = 1;
		return 0;
	case KEY_DISCOVER:
		cfg->discover = 1;
		return 0;
	case KEY_NO_DISCOVER:
		cfg->discover = 0;
		return 0;
	case KEY_REFRESH:
		return set_uint(ctx, &cfg->refresh, arg, 0, 30 * 86400);
	case KEY_UID:
		if (parse_uint(opt_value(arg), 0, (uid_t)-1 - 1, &v))
			return fail(ctx, "invalid user id in '%s'", arg);
		cfg->uid = (uid_t)v;
		cfg->has_uid = 1;
		return 0;
	case KEY_GID:
		if (parse_uint(opt_value(arg), 0, (gid_t)-1 - 1, &v))
			return fail(ctx, "invalid group id in '%s'", arg);
		cfg->gid = (gid_t)v;
		cfg->has_gid = 1;
		return 0;
	case KEY_UMASK: {
		const char *s = opt_value(arg);
		char *end = (char *)s;

		errno = 0;
		v = *s >= '0' && *s <= '7' ? strtoul(s, &end, 8) : 01000;
		if (v > 0777 || errno || *end)
			return fail(ctx,
				    "invalid umask in '%s' (octal, "
				    "e.g. 022)",
				    arg);
		cfg->umask = (mode_t)v;
		cfg->has_umask = 1;
		return 0;
	}
	case KEY_FSNAME:
		ctx->has_fsname = 1;
		return 1;
	case KEY_SUBTYPE:
		ctx->has_subtype = 1;
		return 1;
	case KEY_PASS:
		return 1;
	case KEY_DROP:
	default:
		return 0;
	}
}

static void print_usage(const char *prog)
{
	printf("usage: %s [options] [API_URL] MOUNTPOINT\n"
	       "\n"
	       "Mounts the files of a Checkout Page account read-only.\n"
	       "API_URL defaults to " CP_DEFAULT_API_URL ".\n"
	       "The API key comes from $CHECKOUTPAGE_API_KEY or "
	       "-o api_key_file=PATH.\n"
	       "\n"
	       "general options:\n"
	       "    -h, --help             print this help and exit\n"
	       "    -V, --version          print versions and exit\n"
	       "    -f                     stay in the foreground\n"
	       "    -d                     debug log (implies -f)\n"
	       "    -s                     single-threaded\n"
	       "    -o opt[,opt...]        mount options, below\n"
	       "\n"
	       "cpfs options:\n"
	       "    -o api_key_file=PATH   read the API key from PATH "
	       "(default: env)\n"
	       "    -o ids=PATH            manifest of files listed in the "
	       "root (default: none)\n"
	       "    -o cache_size=SIZE     memory for file data "
	       "(default: %lluM, min %lluM)\n"
	       "    -o timeout=SECONDS     abort a transfer without progress "
	       "(default: %d)\n"
	       "    -o api_rate=N          API calls per minute (default: "
	       "%d)\n"
	       "    -o retries=N           attempts per request (default: "
	       "%d)\n"
	       "    -o deadline=SECONDS    time one request may take "
	       "(default: %d)\n"
	       "    -o neg_ttl=SECONDS     how long a missing file is "
	       "remembered (default: %d)\n"
	       "    -o cafile=PATH         extra CA certificates (default: "
	       "system)\n"
	       "    -o cache_dir=DIR       persistent metadata (default: "
	       "$XDG_CACHE_HOME/cpfs)\n"
	       "    -o disk_cache=DIR      cache file data on disk "
	       "(default: off)\n"
	       "    -o disk_cache_size=SIZE  cap of the disk cache "
	       "(default: 1G)\n"
	       "    -o names               add by-name/ symlinks (default: "
	       "off)\n"
	       "    -o no_check            skip the start-up key check "
	       "(default: check)\n"
	       "    -o discover, no_discover  list the whole account by "
	       "walking pages,\n"
	       "                           events and products (default: "
	       "on without ids=)\n"
	       "    -o refresh=SECONDS     walk again this often, 0 = once "
	       "(default: %d)\n"
	       "    -o uid=N, -o gid=N     owner of the files (default: "
	       "the mounting user)\n"
	       "    -o umask=OCTAL         mask for file modes (default: "
	       "000, files are 0444)\n"
	       "\n"
	       "FUSE options (passed to libfuse):\n"
	       "    -o allow_other, allow_root, auto_unmount, "
	       "default_permissions,\n"
	       "       fsname=NAME (default: cpfs), subtype=NAME (default: "
	       "cpfs), max_read=N,\n"
	       "       nosuid, nodev, noexec, noatime, ...\n"
	       "fstab options such as _netdev, nofail, noauto, users and "
	       "x-systemd.* are\naccepted and ignored; the mount is always "
	       "read-only.\n",
	       prog, CP_DEFAULT_CACHE_SIZE >> 20, CP_MIN_CACHE_SIZE >> 20,
	       CP_DEFAULT_TIMEOUT, CP_DEFAULT_API_RATE, CP_DEFAULT_RETRIES,
	       CP_DEFAULT_DEADLINE, CP_DEFAULT_NEG_TTL, CP_DEFAULT_REFRESH);
}

/* The libraries' versions are the ones loaded at run time, for bug reports. */
static void print_version(void)
{
	const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);

	printf("cpfs %s\nlibfuse %s\nlibcurl %s (%s)\ncJSON %s\n", CP_VERSION,
	       fuse_pkgversion(), curl->version,
	       curl->ssl_version ? curl->ssl_version : "no TLS",
	       cJSON_Version());
}

/* Strips trailing (and leading) white space in place; returns @s. */
static char *trim(char *s)
{
	size_t n = strlen(s);
	char *p = s;

	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	while (isspace((unsigned char)*p))
		p++;
	if (p != s)
		memmove(s, p, strlen(p) + 1);
	return s;
}

static int read_key_file(struct parse_ctx *ctx, const char *path)
{
	char buf[KEY_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(ctx, "cannot read key file %s: %s", path,
			    strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(ctx, "key file %s is not a regular file", path);
	}
	if (st.st_mode & 077)
		cp_warn("key file %s is readable by group or others", path);
	while (got < sizeof(buf) - 1) {
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return fail(ctx, "cannot read key file %s: %s", path,
				    strerror(e));
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (got == sizeof(buf) - 1) {
		explicit_bzero(buf, sizeof(buf));
		return fail(ctx, "key file %s is too large", path);
	}
	if (memchr(buf, '\0', got)) {
		explicit_bzero(buf, sizeof(buf));
		return fail(ctx, "key file %s is not a text file", path);
	}
	trim(buf);
	if (!buf[0])
		return fail(ctx, "key file %s is empty", path);
	ctx->cfg->api_key = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (!ctx->cfg->api_key)
		return fail(ctx, "out of memory");
	return 0;
}

static int load_key(struct parse_ctx *ctx)
{
	const char *env = getenv("CHECKOUTPAGE_API_KEY");
	const char *p;

	if (ctx->api_key_file) {
		if (read_key_file(ctx, ctx->api_key_file))
			return -1;
	} else if (env && *env) {
		ctx->cfg->api_key = strdup(env);
		if (!ctx->cfg->api_key)
			return fail(ctx, "out of memory");
		trim(ctx->cfg->api_key);
	}
	if (!ctx->cfg->api_key || !ctx->cfg->api_key[0])
		return fail(ctx, "no API key: set CHECKOUTPAGE_API_KEY or use "
				 "-o api_key_file=PATH");
	/* It goes into an HTTP header: printable ASCII, no spaces. */
	for (p = ctx->cfg->api_key; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return fail(ctx, "the API key contains spaces or "
					 "control characters");
	return 0;
}

static int check_mountpoint(struct parse_ctx *ctx, const char *mp)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int empty = 1;
	char *real;

	real = realpath(mp, NULL);
	if (!real)
		return fail(ctx, "mountpoint %s: %s", mp, strerror(errno));
	ctx->cfg->mountpoint = real;
	if (stat(real, &st) < 0)
		return fail(ctx, "mountpoint %s: %s", mp, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(ctx, "mountpoint %s is not an empty directory", mp);
	dir = opendir(real);
	if (!dir)
		return fail(ctx, "mountpoint %s: %s", mp, strerror(errno));
	while ((de = readdir(dir))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	closedir(dir);
	if (!empty)
		return fail(ctx, "mountpoint %s is not an empty directory", mp);
	return 0;
}

static int set_api_url(struct parse_ctx *ctx, const char *url)
{
	char why[128];
	size_t n;

	if (cp_url_check(url, why, sizeof(why)))
		return fail(ctx, "bad API_URL: %s", why);
	if (strpbrk(url, "?#"))
		return fail(ctx, "bad API_URL: it must not have a query or "
				 "fragment");
	ctx->cfg->api_url = strdup(url);
	if (!ctx->cfg->api_url)
		return fail(ctx, "out of memory");
	n = strlen(ctx->cfg->api_url);
	while (n && ctx->cfg->api_url[n - 1] == '/')
		ctx->cfg->api_url[--n] = '\0';
	return 0;
}

static void set_defaults(struct cp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cache_size = CP_DEFAULT_CACHE_SIZE;
	cfg->timeout = CP_DEFAULT_TIMEOUT;
	cfg->api_rate = CP_DEFAULT_API_RATE;
	cfg->retries = CP_DEFAULT_RETRIES;
	cfg->deadline = CP_DEFAULT_DEADLINE;
	cfg->neg_ttl = CP_DEFAULT_NEG_TTL;
	cfg->discover = -1; /* decided in finish(): on without ids= */
	cfg->refresh = CP_DEFAULT_REFRESH;
}

static int finish(struct parse_ctx *ctx)
{
	struct cp_config *cfg = ctx->cfg;
	const char *url = NULL, *mp;
	char opts[64];

	if (ctx->npositional == 0)
		return fail(ctx, "no mountpoint given (try --help)");
	if (ctx->npositional == 2) {
		url = ctx->positional[0];
		/* fstab habit: "none" or "cpfs" in the source field */
		if (!strcmp(url, "none") || !strcmp(url, "cpfs"))
			url = NULL;
	}
	mp = ctx->positional[ctx->npositional - 1];
	if (set_api_url(ctx, url ? url : CP_DEFAULT_API_URL))
		return -1;
	if (cfg->disk_cache && !ctx->has_disk_cache_size)
		cfg->disk_cache_size = CP_DEFAULT_DISK_CACHE_SIZE;
	if (!cfg->disk_cache && ctx->has_disk_cache_size)
		return fail(ctx, "disk_cache_size= needs disk_cache=DIR");
	if (cfg->discover < 0)
		cfg->discover = cfg->ids_path == NULL;
	if (cfg->ids_path && access(cfg->ids_path, R_OK) < 0)
		return fail(ctx, "cannot read ids file %s: %s", cfg->ids_path,
			    strerror(errno));
	if (cfg->cafile && access(cfg->cafile, R_OK) < 0)
		return fail(ctx, "cannot read cafile %s: %s", cfg->cafile,
			    strerror(errno));
	if (load_key(ctx))
		return -1;
	if (check_mountpoint(ctx, mp))
		return -1;

	snprintf(opts, sizeof(opts), "ro%s%s",
		 ctx->has_fsname ? "" : ",fsname=cpfs",
		 ctx->has_subtype ? "" : ",subtype=cpfs");
	if (fuse_opt_add_arg(&cfg->fuse_args, "-o") ||
	    fuse_opt_add_arg(&cfg->fuse_args, opts))
		return fail(ctx, "out of memory");
	return 0;
}

int cp_opts_parse(int argc, char **argv, struct cp_config *cfg, char *err,
		  size_t errlen)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct parse_ctx ctx;
	char dummy[1];
	int i, res;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	set_defaults(cfg);
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = cfg;
	ctx.err = err;
	ctx.errlen = errlen;

	/* fuse_opt_parse() would print this one itself. */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-o") && i == argc - 1) {
			fail(&ctx, "option -o needs an argument");
			goto out;
		}
	}
	res = fuse_opt_parse(&args, &ctx, opt_spec, opt_proc);
	if (res < 0 || ctx.failed) {
		if (!ctx.failed)
			fail(&ctx, "cannot parse the command line");
		fuse_opt_free_args(&args);
		goto out;
	}
	cfg->fuse_args = args;
	if (ctx.help) {
		print_usage(argc > 0 ? argv[0] : "cpfs");
		res = CP_OPTS_EXIT;
		goto done;
	}
	if (ctx.version) {
		print_version();
		res = CP_OPTS_EXIT;
		goto done;
	}
	finish(&ctx);
out:
	res = ctx.failed ? CP_OPTS_ERROR : CP_OPTS_MOUNT;
done:
	free(ctx.api_key_file);
	for (i = 0; i < ctx.npositional; i++)
		free(ctx.positional[i]);
	return res;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void cp_config_free(struct cp_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->api_url);
	free(cfg->mountpoint);
	free_secret(cfg->api_key);
	free(cfg->ids_path);
	free(cfg->cafile);
	free(cfg->cache_dir);
	free(cfg->disk_cache);
	fuse_opt_free_args(&cfg->fuse_args);
	memset(cfg, 0, sizeof(*cfg));
}
