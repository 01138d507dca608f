/*
 * fuzz_opts.c - libFuzzer target for the validators the command line
 * uses (valid.h): cp_parse_size, cp_objectid_valid, the URL parser
 * (cp_url_split, cp_url_parse, cp_url_is_loopback, cp_url_check,
 * cp_url_same_origin) and cp_log_url, its loggable form, on the whole
 * input and on each '\n'-separated piece; and cp_opts_parse (opts.h) on
 * an argv made of those pieces.
 *
 * cp_objectid_valid is checked against a one-line reference; a URL that
 * cp_url_check accepts must be https, or http to a loopback host, and
 * its loggable form is itself up to the query; a plain decimal size must
 * parse to its own value; a URL that parses is its own origin (but for
 * an IPv6 host that is no address), and the same-origin test is
 * symmetric.
 *
 * cp_opts_parse reads the environment and checks the mountpoint, so
 * LLVMFuzzerInitialize gives it a key, an empty directory to mount on
 * (the piece "@M" stands for it, and some inputs get it appended) and a
 * private XDG_CACHE_HOME, both under $TMPDIR.  It must return one of its
 * three values and, on error, one line; cp_config_free() must release
 * everything it took (LeakSanitizer).  Pieces that name files
 * (api_key_file=, ids=) only read them.  Run with stdin from /dev/null:
 * "api_key_file=/dev/stdin" is a valid input.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "log.h"
#include "opts.h"
#include "util.h"
#include "valid.h"

#define FUZZ_MAX_ARGS 24

static char mountpoint[4200];

/* Everything lives in a fresh directory under $TMPDIR (run.sh points it
 * into its scratch directory, which it wipes). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char path[4200];
	char *dir;

	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "%s/cpfs-fuzz-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	dir = mkdtemp(path);
	FUZZ_CHECK(dir != NULL);
	snprintf(mountpoint, sizeof(mountpoint), "%s/mnt", dir);
	FUZZ_CHECK(mkdir(mountpoint, 0700) == 0);
	strcat(dir, "/cache");
	FUZZ_CHECK(mkdir(dir, 0700) == 0);
	setenv("XDG_CACHE_HOME", dir, 1);
	setenv("CHECKOUTPAGE_API_KEY", "fuzz-key-0123456789", 1);
	return 0;
}

static int ref_objectid(const char *s)
{
	size_t i;

	for (i = 0; i < 24; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return s[24] == '\0';
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool ipv6_valid(const struct cp_url *u)
{
	unsigned char addr[16];
	char host[64];

	if (u->host_len >= sizeof(host))
		return false;
	memcpy(host, u->host, u->host_len);
	host[u->host_len] = '\0';
	return inet_pton(AF_INET6, host, addr) == 1;
}

/* The one URL parser: its layers agree, and what the log shows of an
 * accepted URL is that URL without its query and fragment. */
static void fuzz_url(const char *s)
{
	static const char base[] = "https://api.checkoutpage.com";
	char why[128], shown[256];
	struct cp_url u, split;
	size_t n, i;

	cp_log_url(s, shown, sizeof(shown));
	FUZZ_CHECK(memchr(shown, '\0', sizeof(shown)) != NULL);
	for (i = 0; shown[i]; i++)
		FUZZ_CHECK((unsigned char)shown[i] >= 0x20 &&
			   (unsigned char)shown[i] < 0x7f);
	FUZZ_CHECK(cp_url_same_origin(s, base) ==
		   cp_url_same_origin(base, s));
	if (cp_url_parse(s, &u, why, sizeof(why)) != 0) {
		FUZZ_CHECK(cp_url_same_origin(s, s) == 0);
		fuzz_check_line(why, sizeof(why));
		return;
	}
	/* its own origin, unless its IPv6 host is no address at all */
	FUZZ_CHECK(cp_url_same_origin(s, s) == (!u.ipv6 || ipv6_valid(&u)));
	FUZZ_CHECK(cp_url_split(s, &split) == 0);
	FUZZ_CHECK(split.authority == u.authority &&
		   split.authority_len == u.authority_len &&
		   split.path == u.path && split.path_len == u.path_len);
	FUZZ_CHECK(u.host >= u.authority &&
		   u.host + u.host_len <= u.authority + u.authority_len);
	n = strcspn(s, "?#");
	if (n < sizeof(shown))
		FUZZ_CHECK(strlen(shown) == n && memcmp(shown, s, n) == 0);
}

static void fuzz_validators(const char *s)
{
	char why[128];
	uint64_t size = 0;
	int ret;

	ret = cp_parse_size(s, &size);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	if (ret == 0 && all_digits(s) && strlen(s) < 19)
		FUZZ_CHECK(size == strtoull(s, NULL, 10));

	FUZZ_CHECK(cp_objectid_valid(s) == ref_objectid(s));

	ret = cp_url_is_loopback(s);
	FUZZ_CHECK(ret == 0 || ret == 1);

	why[0] = '\0';
	ret = cp_url_check(s, why, sizeof(why));
	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	if (ret == 0)
		FUZZ_CHECK(strncasecmp(s, "https://", 8) == 0 ||
			   (strncasecmp(s, "http://", 7) == 0 &&
			    cp_url_is_loopback(s) == 1));
	else
		fuzz_check_line(why, sizeof(why));

	fuzz_url(s);

	/* Tiny reason buffers must still be terminated. */
	why[0] = 'x';
	why[1] = 'x';
	if (cp_url_check(s, why, 1) != 0)
		FUZZ_CHECK(why[0] == '\0');
}

static void fuzz_cmdline(char **pieces, int n, bool append_mountpoint)
{
	struct cp_config cfg;
	char *argv[FUZZ_MAX_ARGS + 3];
	char err[256];
	int argc = 0, i, ret;

	argv[argc++] = (char *)"cpfs";
	for (i = 0; i < n && i < FUZZ_MAX_ARGS; i++) {
		if (strcmp(pieces[i], "@M") == 0)
			argv[argc++] = mountpoint;
		else
			argv[argc++] = pieces[i];
	}
	if (append_mountpoint)
		argv[argc++] = mountpoint;
	argv[argc] = NULL;

	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
	ret = cp_opts_parse(argc, argv, &cfg, err, sizeof(err));
	FUZZ_CHECK(ret == CP_OPTS_MOUNT || ret == CP_OPTS_EXIT ||
		   ret == CP_OPTS_ERROR);
	if (ret == CP_OPTS_ERROR) {
		/* One line.  The pieces hold no LF; a CR the user typed
		 * may be quoted back, that is not ours to judge. */
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		FUZZ_CHECK(strchr(err, '\n') == NULL);
	} else if (ret == CP_OPTS_MOUNT) {
		FUZZ_CHECK(cfg.api_url != NULL && cfg.mountpoint != NULL);
		FUZZ_CHECK(cfg.api_key != NULL);
		FUZZ_CHECK(cfg.retries >= 1);
		FUZZ_CHECK(cfg.cache_size >= CP_MIN_CACHE_SIZE);
		FUZZ_CHECK(cp_url_check(cfg.api_url, err, sizeof(err)) == 0);
	}
	cp_config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *pieces[FUZZ_MAX_ARGS];
	char *whole = fuzz_strndup(data, size);
	const char *field;
	size_t pos = 0, len;
	int n = 0, i;

	fuzz_validators(whole);
	while ((field = fuzz_next_field(data, size, &pos, '\n', &len))) {
		char *s = fuzz_strndup(field, len);

		fuzz_validators(s);
		if (n < FUZZ_MAX_ARGS)
			pieces[n++] = s;
		else
			free(s);
	}
	/* Only inputs that look like a command line are worth a parse:
	 * they start with "-" or "@" (most seeds do). */
	if (size > 0 && (data[0] == '-' || data[0] == '@'))
		fuzz_cmdline(pieces, n, data[size - 1] != '\n');
	for (i = 0; i < n; i++)
		free(pieces[i]);
	free(whole);
	return 0;
}
