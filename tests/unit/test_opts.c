/*
 * test_opts.c - the command line: positionals in any order, options that
 * are ours, libfuse's, or fstab noise, every kind of bad input, the key,
 * the mountpoint.  (The validators it uses are tested in test_valid.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "opts.h"

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];
static char mp[128];	/* empty directory */
static char full[128];	/* non-empty directory */
static char afile[128]; /* a regular file */
static char keyfile[128];

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
	char path[192];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cpfs-test-opts-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(mp, sizeof(mp), "%s/mnt", tmpdir);
	snprintf(full, sizeof(full), "%s/full", tmpdir);
	snprintf(afile, sizeof(afile), "%s/file", tmpdir);
	snprintf(keyfile, sizeof(keyfile), "%s/key", tmpdir);
	mkdir(mp, 0755);
	mkdir(full, 0755);
	snprintf(path, sizeof(path), "%s/x", full);
	write_file(path, "x", 0644);
	write_file(afile, "x", 0644);
	write_file(keyfile, "file-key\n", 0600);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int before(void **state)
{
	(void)state;
	setenv("CHECKOUTPAGE_API_KEY", "env-key", 1);
	return 0;
}

struct run {
	struct cp_config cfg;
	char err[256];
	int res;
};

static int do_parse(struct run *r, int argc, char **argv)
{
	memset(r->err, 'Z', sizeof(r->err));
	r->res = cp_opts_parse(argc, argv, &r->cfg, r->err, sizeof(r->err));
	if (r->res == CP_OPTS_ERROR) {
		/* one line, no trailing newline */
		assert_non_null(memchr(r->err, '\0', sizeof(r->err)));
		assert_null(strchr(r->err, '\n'));
		assert_true(r->err[0] != '\0');
	}
	return r->res;
}

#define PARSE(r, ...)                                                          \
	do {                                                                   \
		const char *v_[] = { "cpfs", __VA_ARGS__, NULL };              \
		do_parse(r, (int)CP_ARRAY_SIZE_T(v_) - 1, (char **)v_);        \
	} while (0)
#define CP_ARRAY_SIZE_T(a) (sizeof(a) / sizeof((a)[0]))

/* The FUSE arguments joined with spaces. */
static void fuse_line(const struct cp_config *cfg, char *buf, size_t len)
{
	size_t o = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < cfg->fuse_args.argc; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? " " : "",
				      cfg->fuse_args.argv[i]);
}

static void expect_error(const char *contains, int argc, char **argv)
{
	struct run r;

	do_parse(&r, argc, argv);
	if (r.res != CP_OPTS_ERROR || !strstr(r.err, contains))
		fail_msg("expected error containing '%s', got %d '%s'",
			 contains, r.res, r.res == CP_OPTS_ERROR ? r.err : "");
	cp_config_free(&r.cfg);
}

#define EXPECT_ERROR(contains, ...)                                            \
	do {                                                                   \
		const char *v_[] = { "cpfs", __VA_ARGS__, NULL };              \
		expect_error(contains, (int)CP_ARRAY_SIZE_T(v_) - 1,           \
			     (char **)v_);                                     \
	} while (0)

static void test_defaults(void **state)
{
	struct run r;
	char line[512];
	char *real = realpath(mp, NULL);

	(void)state;
	PARSE(&r, mp);
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_string_equal(r.cfg.api_url, CP_DEFAULT_API_URL);
	assert_string_equal(r.cfg.mountpoint, real);
	assert_string_equal(r.cfg.api_key, "env-key");
	assert_int_equal(r.cfg.cache_size, CP_DEFAULT_CACHE_SIZE);
	assert_int_equal(r.cfg.timeout, CP_DEFAULT_TIMEOUT);
	assert_int_equal(r.cfg.api_rate, CP_DEFAULT_API_RATE);
	assert_int_equal(r.cfg.retries, CP_DEFAULT_RETRIES);
	assert_int_equal(r.cfg.deadline, CP_DEFAULT_DEADLINE);
	assert_int_equal(r.cfg.neg_ttl, CP_DEFAULT_NEG_TTL);
	assert_null(r.cfg.ids_path);
	assert_null(r.cfg.disk_cache);
	assert_false(r.cfg.foreground || r.cfg.debug || r.cfg.singlethread);
	assert_false(r.cfg.names || r.cfg.no_check);
	assert_false(r.cfg.has_uid || r.cfg.has_gid || r.cfg.has_umask);
	fuse_line(&r.cfg, line, sizeof(line));
	assert_string_equal(line, "cpfs -o ro,fsname=cpfs,subtype=cpfs");
	cp_config_free(&r.cfg);
	assert_null(r.cfg.api_key);
	free(real);
}

static void test_url_positional(void **state)
{
	struct run r;

	(void)state;
	PARSE(&r, "https://api.example.com/", mp);
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_string_equal(r.cfg.api_url, "https://api.example.com");
	cp_config_free(&r.cfg);

	PARSE(&r, "-f", "http://127.0.0.1:8080/base//", "-s", mp);
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_string_equal(r.cfg.api_url, "http://127.0.0.1:8080/base");
	assert_true(r.cfg.foreground);
	assert_true(r.cfg.singlethread);
	cp_config_free(&r.cfg);

	PARSE(&r, "http://localhost:9/", mp);
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	cp_config_free(&r.cfg);

	PARSE(&r, "http://[::1]:9", mp);
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	cp_config_free(&r.cfg);

	/* fstab habit: a placeholder source */
	PARSE(&r, "none", mp);
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_string_equal(r.cfg.api_url, CP_DEFAULT_API_URL);
	cp_config_free(&r.cfg);

	EXPECT_ERROR("API_URL", "http://api.example.com", mp);
	EXPECT_ERROR("scheme ftp", "ftp://api.example.com", mp);
	EXPECT_ERROR("API_URL", "https://user:pw@api.example.com", mp);
	EXPECT_ERROR("API_URL", "https://api.example.com/?x=1", mp);
	EXPECT_ERROR("API_URL", "https://", mp);
	EXPECT_ERROR("API_URL", "not-a-url", mp);
	EXPECT_ERROR("too many arguments", "https://a.b", mp, mp);
	EXPECT_ERROR("no mountpoint", "-f");
}

static void test_mount_fuse3_style(void **state)
{
	struct run r;
	char opts[512], line[1024];

	(void)state;
	snprintf(opts, sizeof(opts),
		 "rw,api_key_file=%s,allow_other,_netdev,nofail,noauto,"
		 "x-systemd.automount,x-systemd.idle-timeout=60,defaults,"
		 "users,nosuid,nodev,noatime,relatime,atime,strictatime,"
		 "default_permissions,cache_size=128M,timeout=5,api_rate=50,"
		 "retries=3,deadline=60,neg_ttl=0,names,no_check,uid=1000,"
		 "gid=100,umask=022,max_read=131072,comment=x-gvfs-show",
		 keyfile);
	PARSE(&r, "https://api.checkoutpage.com", mp, "-o", opts);
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_string_equal(r.cfg.api_key, "file-key"); /* file wins */
	assert_int_equal(r.cfg.cache_size, 128ULL << 20);
	assert_int_equal(r.cfg.timeout, 5);
	assert_int_equal(r.cfg.api_rate, 50);
	assert_int_equal(r.cfg.retries, 3);
	assert_int_equal(r.cfg.deadline, 60);
	assert_int_equal(r.cfg.neg_ttl, 0);
	assert_true(r.cfg.names && r.cfg.no_check);
	assert_true(r.cfg.has_uid && r.cfg.uid == 1000);
	assert_true(r.cfg.has_gid && r.cfg.gid == 100);
	assert_true(r.cfg.has_umask && r.cfg.umask == 022);
	fuse_line(&r.cfg, line, sizeof(line));
	assert_non_null(strstr(line, "allow_other"));
	assert_non_null(strstr(line, "default_permissions"));
	assert_non_null(strstr(line, "nosuid"));
	assert_non_null(strstr(line, "max_read=131072"));
	assert_non_null(strstr(line, "ro,fsname=cpfs,subtype=cpfs"));
	assert_null(strstr(line, "_netdev"));
	assert_null(strstr(line, "x-systemd"));
	assert_null(strstr(line, "rw"));
	assert_null(strstr(line, "uid="));
	assert_null(strstr(line, "umask"));
	assert_null(strstr(line, "relatime"));
	assert_null(strstr(line, "api_key_file"));
	assert_null(strstr(line, "file-key"));
	cp_config_free(&r.cfg);
}

static const struct fuse_lowlevel_ops no_ops;

/* What we hand libfuse must be what libfuse accepts. */
static void test_libfuse_accepts(void **state)
{
	struct fuse_session *se;
	struct run r;

	(void)state;
	PARSE(&r, "-o",
	      "allow_other,default_permissions,auto_unmount,fsname=myfs,"
	      "subtype=x,max_read=65536,suid,nosuid,dev,nodev,exec,noexec,"
	      "async,sync,dirsync,noatime,nodiratime,nostrictatime,"
	      "blksize=4096,ro,rw,_netdev,atime,lazytime,relatime,"
	      "norelatime,strictatime,user=nobody,x-systemd.device-timeout=9",
	      "-d", mp);
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_true(r.cfg.debug && r.cfg.foreground);
	se = fuse_session_new(&r.cfg.fuse_args, &no_ops, sizeof(no_ops), NULL);
	assert_non_null(se);
	fuse_session_destroy(se);
	cp_config_free(&r.cfg);

	PARSE(&r, mp, "-o", "allow_root");
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	se = fuse_session_new(&r.cfg.fuse_args, &no_ops, sizeof(no_ops), NULL);
	assert_non_null(se);
	fuse_session_destroy(se);
	cp_config_free(&r.cfg);
}

static void test_fsname_kept(void **state)
{
	struct run r;
	char line[512];

	(void)state;
	PARSE(&r, mp, "-ofsname=mine,subtype=sub");
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	fuse_line(&r.cfg, line, sizeof(line));
	assert_non_null(strstr(line, "fsname=mine"));
	assert_null(strstr(line, "fsname=cpfs"));
	assert_null(strstr(line, "subtype=cpfs"));
	assert_non_null(strstr(line, "-o ro"));
	cp_config_free(&r.cfg);
}

static void test_help_version(void **state)
{
	struct run r;

	(void)state;
	PARSE(&r, "-h");
	assert_int_equal(r.res, CP_OPTS_EXIT);
	cp_config_free(&r.cfg);
	PARSE(&r, "--help", mp);
	assert_int_equal(r.res, CP_OPTS_EXIT);
	cp_config_free(&r.cfg);
	PARSE(&r, "-V");
	assert_int_equal(r.res, CP_OPTS_EXIT);
	cp_config_free(&r.cfg);
	PARSE(&r, "--version");
	assert_int_equal(r.res, CP_OPTS_EXIT);
	cp_config_free(&r.cfg);
}

static void test_unknown_and_bad_values(void **state)
{
	(void)state;
	EXPECT_ERROR("unknown option 'bogus'", mp, "-o", "bogus");
	EXPECT_ERROR("unknown option 'bogus=1'", "-o", "ro,bogus=1", mp);
	EXPECT_ERROR("unknown option '-x'", "-x", mp);
	EXPECT_ERROR("unknown option '--frobnicate'", "--frobnicate", mp);
	EXPECT_ERROR("unknown option 'clone_fd'", "-oclone_fd", mp);
	EXPECT_ERROR("unknown option 'nonempty'", "-o", "nonempty", mp);
	EXPECT_ERROR("option -o needs an argument", mp, "-o");
	EXPECT_ERROR("needs a value", mp, "-o", "cache_size");
	EXPECT_ERROR("needs a value", mp, "-o", "ids=");
	EXPECT_ERROR("cache_size", mp, "-o", "cache_size=");
	EXPECT_ERROR("cache_size", mp, "-o", "cache_size=abc");
	EXPECT_ERROR("cache_size", mp, "-o", "cache_size=-64M");
	EXPECT_ERROR("too small", mp, "-o", "cache_size=1M");
	EXPECT_ERROR("cache_size", mp, "-o", "cache_size=99999999999999999999");
	EXPECT_ERROR("timeout", mp, "-o", "timeout=0");
	EXPECT_ERROR("timeout", mp, "-o", "timeout=-1");
	EXPECT_ERROR("timeout", mp, "-o", "timeout=1s");
	EXPECT_ERROR("timeout", mp, "-o", "timeout= 5");
	EXPECT_ERROR("api_rate", mp, "-o", "api_rate=0");
	EXPECT_ERROR("api_rate", mp, "-o", "api_rate=99999999999999999999999");
	EXPECT_ERROR("retries", mp, "-o", "retries=0");
	EXPECT_ERROR("deadline", mp, "-o", "deadline=0");
	EXPECT_ERROR("neg_ttl", mp, "-o", "neg_ttl=x");
	EXPECT_ERROR("uid", mp, "-o", "uid=abc");
	EXPECT_ERROR("uid", mp, "-o", "uid=-1");
	EXPECT_ERROR("gid", mp, "-o", "gid=");
	EXPECT_ERROR("umask", mp, "-o", "umask=999");
	EXPECT_ERROR("umask", mp, "-o", "umask=01777");
	EXPECT_ERROR("umask", mp, "-o", "umask=-22");
	EXPECT_ERROR("disk_cache_size", mp, "-o", "disk_cache_size=2G");
	EXPECT_ERROR("disk_cache_size", mp, "-o",
		     "disk_cache=/tmp,disk_cache_size=x");
	EXPECT_ERROR("ids", mp, "-o", "ids=/nonexistent/ids");
	EXPECT_ERROR("cafile", mp, "-o", "cafile=/nonexistent/ca.pem");
}

static void test_sizes_and_paths(void **state)
{
	struct run r;

	(void)state;
	PARSE(&r, mp, "-o", "cache_size=1.5G,disk_cache=rel/dir");
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_int_equal(r.cfg.cache_size, 3ULL << 29);
	assert_int_equal(r.cfg.disk_cache_size, 1ULL << 30);
	assert_true(r.cfg.disk_cache[0] == '/');
	assert_non_null(strstr(r.cfg.disk_cache, "/rel/dir"));
	cp_config_free(&r.cfg);

	PARSE(&r, mp, "-o", "disk_cache=/var/cache/x,disk_cache_size=10g");
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_int_equal(r.cfg.disk_cache_size, 10ULL << 30);
	cp_config_free(&r.cfg);
}

static void test_no_key(void **state)
{
	(void)state;
	unsetenv("CHECKOUTPAGE_API_KEY");
	EXPECT_ERROR("CHECKOUTPAGE_API_KEY", mp);
	EXPECT_ERROR("api_key_file", mp);
	setenv("CHECKOUTPAGE_API_KEY", "", 1);
	EXPECT_ERROR("CHECKOUTPAGE_API_KEY", mp);
	setenv("CHECKOUTPAGE_API_KEY", "bad key", 1);
	EXPECT_ERROR("API key", mp);
}

/* Runs a parse with stderr captured into @out. */
static int parse_capturing(struct run *r, int argc, char **argv, char *out,
			   size_t outlen)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_non_null(tmp);
	dup2(fileno(tmp), STDERR_FILENO);
	do_parse(r, argc, argv);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = (ssize_t)fread(out, 1, outlen - 1, tmp);
	out[n > 0 ? n : 0] = '\0';
	fclose(tmp);
	return r->res;
}

static void test_key_file(void **state)
{
	char path[192], opt[256], log[512];
	struct run r;

	(void)state;
	snprintf(path, sizeof(path), "%s/key2", tmpdir);
	snprintf(opt, sizeof(opt), "api_key_file=%s", path);

	write_file(path, "  secret-123 \r\n\n", 0600);
	{
		const char *v[] = { "cpfs", mp, "-o", opt, NULL };

		parse_capturing(&r, 4, (char **)v, log, sizeof(log));
	}
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_string_equal(r.cfg.api_key, "secret-123");
	assert_null(strstr(log, "readable by group or others"));
	cp_config_free(&r.cfg);

	write_file(path, "secret-456\n", 0644);
	{
		const char *v[] = { "cpfs", mp, "-o", opt, NULL };

		parse_capturing(&r, 4, (char **)v, log, sizeof(log));
	}
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_string_equal(r.cfg.api_key, "secret-456");
	assert_non_null(strstr(log, "readable by group or others"));
	assert_null(strstr(log, "secret"));
	cp_config_free(&r.cfg);

	write_file(path, " \n", 0600);
	EXPECT_ERROR("empty", mp, "-o", opt);
	write_file(path, "two words\n", 0600);
	EXPECT_ERROR("API key", mp, "-o", opt);
	EXPECT_ERROR("key file", mp, "-o", "api_key_file=/nonexistent/key");
	EXPECT_ERROR("key file", mp, "-o", "api_key_file=/tmp");
	unlink(path);
}

static void test_mountpoint(void **state)
{
	char missing[192];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/missing", tmpdir);
	EXPECT_ERROR("is not an empty directory", full);
	EXPECT_ERROR("is not an empty directory", afile);
	EXPECT_ERROR("mountpoint", missing);
	EXPECT_ERROR("mountpoint", "https://a.example", missing);
}

static void test_debug_flags(void **state)
{
	struct run r;
	char line[512];

	(void)state;
	PARSE(&r, "-d", mp);
	assert_int_equal(r.res, CP_OPTS_MOUNT);
	assert_true(r.cfg.debug && r.cfg.foreground);
	fuse_line(&r.cfg, line, sizeof(line));
	assert_non_null(strstr(line, "-d"));
	cp_config_free(&r.cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, before),
		cmocka_unit_test_setup(test_url_positional, before),
		cmocka_unit_test_setup(test_mount_fuse3_style, before),
		cmocka_unit_test_setup(test_libfuse_accepts, before),
		cmocka_unit_test_setup(test_fsname_kept, before),
		cmocka_unit_test_setup(test_help_version, before),
		cmocka_unit_test_setup(test_unknown_and_bad_values, before),
		cmocka_unit_test_setup(test_sizes_and_paths, before),
		cmocka_unit_test_setup(test_no_key, before),
		cmocka_unit_test_setup(test_key_file, before),
		cmocka_unit_test_setup(test_mountpoint, before),
		cmocka_unit_test_setup(test_debug_flags, before),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
