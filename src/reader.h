/*
 * reader.h - getting an object's bytes into the cache: size probes, reads
 * with retries, and per-handle prefetch.
 *
 * A read pins the cache blocks it covers, all at once (it never holds one
 * while waiting for memory for another), starts transfers for those that
 * are missing (plus, for a sequential reader, a window of blocks ahead),
 * and waits for them with a deadline, applying the retry policy to
 * failures: a data-host 403 renews the URL once without spending the
 * retry budget, the rest of a shorter 206 is asked for at once,
 * transient faults back off and resume after the bytes already
 * received, a data-host 404/410 asks the API once for a fresh URL (its
 * 404 means ENOENT, another refusal EIO), a changed object fails with
 * EIO.
 *
 * Prefetch, per open handle (after mountpoint-s3 and sshfs): a read that
 * continues where the previous ones ended is sequential; the window of
 * blocks kept in flight ahead of it starts at CP_WINDOW_START blocks
 * (CP_WINDOW_MIN after a seek), and doubles each time the reader had to
 * wait for as long as that still raises the throughput (it tracks the
 * bandwidth-delay product; see reader_prefetch.h).  It is capped by the
 * handle's fair share of the in-flight budget (3/4 of the cache, divided
 * among the handles with a window open), by the blocks being fetched in
 * total and by the cache's free room (it shrinks instead of failing).
 * The first transfer of an object carries the start of the window too,
 * so that one connection streams it while the connections for the rest
 * are opened (with no request on them, cp_fetch_preconnect()), ready
 * when its answer tells the ETag the rest must name.  Several
 * seeks with little reading between them switch the handle to random
 * mode: only the blocks a read needs are fetched.
 *
 * Thread safety: the reader is shared by all FUSE workers.  A handle may
 * be used by several threads at once (the kernel sends concurrent reads
 * on one file); its prefetch state has its own lock.  Both locks (the
 * handle's, and the reader's over its list of handles) are leaves, never
 * held while waiting for the network, the API or cache memory.
 */
#ifndef CP_READER_H
#define CP_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cp_config;
struct cp_files;
struct cp_file;
struct cp_cache;
struct cp_block;
struct cp_fetch;
struct cp_diskcache;
struct cp_stats;
struct cp_reader;
struct cp_handle;

#define CP_WINDOW_MIN 4     /* blocks, after a seek */
#define CP_WINDOW_START 8   /* blocks, from the start of a file */
#define CP_WINDOW_MAX 128   /* blocks, per handle */
#define CP_PART_BLOCKS 8    /* blocks per transfer, aligned */

struct cp_reader *cp_reader_new(const struct cp_config *cfg,
				struct cp_files *files,
				struct cp_cache *cache,
				struct cp_fetch *fetch,
				struct cp_diskcache *dc,
				struct cp_stats *stats);
void cp_reader_free(struct cp_reader *reader);

/*
 * Makes sure @file's size is known: from the table (manifest, persisted
 * metadata, earlier probe), else by asking the API for a URL and asking
 * the data host for the first 4 KiB (one small range GET on an I/O
 * thread's connections, which later reads dealt to that thread reuse:
 * its Content-Range gives the size, its headers the ETag; an object
 * that small is kept whole in the cache).
 * @need_probe (an open) also wants the object's ETag: known from this
 * mount's probe or the persisted metadata; else, when the size is known,
 * only a URL is asked for (so an id the API refuses fails here), and the
 * first read's own range GET carries the probe: it is sent without
 * If-Match, its size checked against the known one, and its ETag,
 * Last-Modified and type recorded before any other transfer of the
 * object starts.  Single flight per file.  0 or -errno (ENOENT, EACCES,
 * EIO).
 */
int cp_reader_resolve(struct cp_reader *reader, struct cp_file *file,
		      int need_probe);

/* A handle for reading @file (resolved).  NULL on ENOMEM. */
struct cp_handle *cp_handle_new(struct cp_reader *reader,
				struct cp_file *file);
void cp_handle_free(struct cp_handle *handle);

/*
 * Reads [@off, @off + @size) of the object.  Returns the number of bytes
 * available (short only at the end of the object; 0 past it), or -errno:
 * -ESTALE when the object changed since the handle was opened (the
 * caller answers EIO and drops what the kernel caches).  A handle that
 * has not served a byte yet, of a file none of whose old bytes went to
 * the kernel, probes the new object then (the file table persists it)
 * and, unless it is smaller than the kernel was told, reads on from it
 * instead of failing (see cp_reader_grown()).
 * The bytes are either in cache blocks, pinned into @blocks (room for
 * @max; at most @size / CP_BLOCK_SIZE + 2 are needed; *@nblocks set),
 * starting at offset @off % CP_BLOCK_SIZE of blocks[0] -- the caller
 * replies from them, then calls cp_reader_unpin() -- or, for a random
 * reader (or a read larger than the whole cache), in a malloc'd buffer
 * *@direct that the caller frees.
 */
ssize_t cp_reader_read(struct cp_handle *handle, off_t off, size_t size,
		       struct cp_block **blocks, int max, int *nblocks,
		       char **direct);

/*
 * 1 once after a read of @handle switched to a new object larger than
 * the one the kernel was told of: the kernel would stop at the old size,
 * so the caller drops its attributes (a read past the old end then asks
 * for them again).
 */
int cp_reader_grown(struct cp_handle *handle);

/* Drops the pins of a read.  Takes the reader, not the handle: once the
 * reply is sent the kernel may release the handle at any moment. */
void cp_reader_unpin(struct cp_reader *reader, struct cp_block **blocks,
		     int nblocks);

#endif
