/*
 * main.c - start-up and shutdown: parse the command line, check the key,
 * build the modules in dependency order, mount, run the FUSE loop, and
 * take everything down again in reverse (the err_out ladder).
 *
 * Threads: main waits on the FUSE loop (loop.h: workers cpfs-fuse-N); the fetch
 * engine's I/O threads; a signal thread that dumps the counters on
 * SIGUSR1; the discovery thread (discover.h).  Threads start only after
 * fuse_daemonize(), which forks.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cache.h"
#include "diskcache.h"
#include "discover.h"
#include "fetch.h"
#include "files.h"
#include "fs.h"
#include "ino.h"
#include "log.h"
#include "loop.h"
#include "manifest.h"
#include "meta.h"
#include "opts.h"
#include "pages.h"
#include "reader.h"
#include "stats.h"
#include "util.h"
#include "views.h"

#define MAX_THREADS 128

static struct cp_stats stats;

static void add_entry(const struct cp_manifest_entry *entry, void *arg)
{
	struct cp_file_facts facts;

	cp_file_facts_init(&facts, entry->id);
	facts.size = entry->size;
	facts.created_at = entry->created_at;
	facts.name = entry->name;
	facts.content_type = entry->content_type;
	if (entry->purpose && strcmp(entry->purpose, "image") == 0)
		facts.purpose = CP_PURPOSE_IMAGE;
	else if (entry->purpose && strcmp(entry->purpose, "file") == 0)
		facts.purpose = CP_PURPOSE_FILE;
	facts.public_url = entry->location;
	cp_files_add_facts(arg, &facts);
}

static void dump_stats(const char *why)
{
	char buf[2048], *line, *save = NULL;

	cp_stats_format(&stats, buf, sizeof(buf));
	cp_info("counters (%s):", why);
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		cp_info("  %s", line);
}

struct watch {
	sigset_t sigs;
	struct fuse_session *se;
	struct cp_cache *cache;
	struct cp_fetch *fetch;
};

/*
 * The watch thread: dumps the counters on SIGUSR1, and notices within a
 * tenth of a second that the session is ending (signal, fusermount3 -u)
 * so that reads waiting on the network stop waiting: libfuse joins its
 * workers before the loop returns, and a stalled server must not hold
 * the unmount for a whole deadline.
 */
static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct timespec tick = { 0, 100 * 1000 * 1000 };

	cp_block_termination_signals();

	for (;;) {
		int sig = sigtimedwait(&w->sigs, NULL, &tick);

		if (sig == SIGUSR1)
			dump_stats("SIGUSR1");
		if (fuse_session_exited(w->se))
			break;
	}
	cp_shutdown_begin();
	cp_fetch_stop(w->fetch);
	cp_cache_stop(w->cache);
	return NULL;
}

static int run_loop(struct fuse_session *se, const struct cp_config *cfg)
{
	if (cfg->singlethread)
		return fuse_session_loop(se);
	/* Reads wait for the network in their worker thread: allow more
	 * workers than the kernel has reads in flight (max_background). */
	return cp_loop_run(se, MAX_THREADS);
}

int main(int argc, char **argv)
{
	struct cp_config cfg;
	char err[512], why[512];
	struct cp_api *api;
	struct cp_meta *meta;
	struct cp_diskcache *dc = NULL;
	struct cp_cache *cache;
	struct cp_fetch *fetch;
	struct cp_files *files;
	struct cp_pages *pages = NULL;
	struct cp_views *views = NULL;
	struct cp_discover *disc = NULL;
	struct cp_reader *reader;
	struct fuse_session *se;
	struct cp_fs fs;
	pthread_t watch_thread;
	struct watch watch;
	int ret = 1, r;

	memset(&cfg, 0, sizeof(cfg));
	r = cp_opts_parse(argc, argv, &cfg, err, sizeof(err));
	if (r != CP_OPTS_MOUNT) {
		if (r == CP_OPTS_ERROR)
			fprintf(stderr, "cpfs: %s\n", err);
		cp_config_free(&cfg);
		return r == CP_OPTS_EXIT ? 0 : 1;
	}
	cp_log_init(cfg.debug);
	/* Buffers of a read's size come and go in many threads: keep glibc
	 * from growing an arena per thread that never shrinks, and from
	 * raising the mmap threshold, so freed memory goes back at once. */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	/* SIGUSR1 goes to the watch thread only: block it everywhere. */
	memset(&watch, 0, sizeof(watch));
	sigemptyset(&watch.sigs);
	sigaddset(&watch.sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &watch.sigs, NULL);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "cpfs: cannot initialise libcurl\n");
		goto err_out1;
	}
	api = cp_api_new(&cfg, &stats);
	if (!api) {
		fprintf(stderr, "cpfs: cannot create the API client\n");
		goto err_out2;
	}
	if (!cfg.no_check) {
		r = cp_api_check_key(api, why, sizeof(why));
		if (r == -EACCES) {
			fprintf(stderr, "cpfs: %s\n", why);
			goto err_out3;
		} else if (r < 0) {
			fprintf(stderr, "cpfs: cannot use the API: %s\n", why);
			goto err_out3;
		}
	}
	meta = cp_meta_open(cfg.cache_dir, &stats);
	if (cfg.disk_cache) {
		dc = cp_diskcache_open(cfg.disk_cache, cfg.disk_cache_size,
				       &stats);
		if (!dc) {
			fprintf(stderr, "cpfs: cannot open the disk cache\n");
			goto err_out4;
		}
	}
	cache = cp_cache_new(cfg.cache_size, &stats);
	files = cache ? cp_files_new(&cfg, api, meta, &stats) : NULL;
	if (!files) {
		fprintf(stderr, "cpfs: out of memory\n");
		goto err_out5;
	}
	/* Until the session starts, this thread alone uses the store. */
	cp_meta_bulk_begin(meta);
	if (cfg.ids_path &&
	    cp_manifest_load(cfg.ids_path, add_entry, files, why,
			     sizeof(why)) < 0) {
		fprintf(stderr, "cpfs: %s\n", why);
		goto err_out6;
	}
	pages = cp_pages_new(CP_INO_MASK);
	views = pages ? cp_views_new(files, pages, &stats) : NULL;
	disc = views && cfg.discover
		       ? cp_discover_new(&cfg, api, files, pages, &stats)
		       : NULL;
	if (!views || (cfg.discover && !disc)) {
		fprintf(stderr, "cpfs: out of memory\n");
		goto err_out6;
	}
	/* The last complete walk is listed before the first readdir. */
	if (disc)
		cp_discover_load(disc);
	cp_meta_bulk_end(meta);

	memset(&fs, 0, sizeof(fs));
	fs.cfg = &cfg;
	fs.files = files;
	fs.pages = pages;
	fs.views = views;
	fs.stats = &stats;
	fs.mountpoint = cfg.mountpoint;
	se = fuse_session_new(&cfg.fuse_args, &cp_fs_ops, sizeof(cp_fs_ops),
			      &fs);
	if (!se)
		goto err_out6;
	fs.se = se;
	/* A daemon started in the background of a script inherits SIGINT
	 * ignored, and libfuse only handles signals left at their default:
	 * ours must unmount on SIGINT, SIGTERM and SIGHUP wherever we run. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (fuse_set_signal_handlers(se) != 0)
		goto err_out7;
	if (fuse_session_mount(se, cfg.mountpoint) != 0) {
		fprintf(stderr, "cpfs: cannot mount on %s\n", cfg.mountpoint);
		goto err_out8;
	}
	if (fuse_daemonize(cfg.foreground) != 0)
		goto err_out9;
	if (!cfg.foreground)
		cp_log_use_syslog();

	/* From here on threads may run. */
	fetch = cp_fetch_new(&cfg, cache, &stats);
	reader = fetch ? cp_reader_new(&cfg, files, cache, fetch, dc,
				       &stats)
		       : NULL;
	if (!reader) {
		cp_err("cannot start the fetch engine");
		goto err_out10;
	}
	fs.reader = reader;
	watch.se = se;
	watch.cache = cache;
	watch.fetch = fetch;
	if (pthread_create(&watch_thread, NULL, watch_main, &watch) != 0) {
		cp_err("cannot start the watch thread");
		goto err_out11;
	}
	if (disc && cp_discover_start(disc) < 0)
		cp_warn("cannot start discovery; only known ids are listed");
	cp_info("mounted %s on %s", cfg.api_url, cfg.mountpoint);

	/* A positive value is the signal that ended the loop: a clean exit. */
	ret = run_loop(se, &cfg) < 0;

	fuse_session_exit(se);
	pthread_join(watch_thread, NULL);
	cp_discover_stop(disc); /* its API call ends with the shutdown */
	if (cfg.debug)
		dump_stats("exit");
err_out11:
	cp_reader_free(reader);
err_out10:
	cp_fetch_free(fetch);
err_out9:
	fuse_session_unmount(se);
err_out8:
	fuse_remove_signal_handlers(se);
err_out7:
	fuse_session_destroy(se);
err_out6:
	cp_discover_free(disc);
	cp_views_free(views);
	cp_pages_free(pages);
	cp_files_free(files);
err_out5:
	cp_cache_free(cache);
	cp_diskcache_close(dc);
err_out4:
	cp_meta_close(meta);
err_out3:
	cp_api_free(api);
err_out2:
	curl_global_cleanup();
err_out1:
	cp_config_free(&cfg);
	return ret;
}
