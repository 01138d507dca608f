/*
 * loop.h - the FUSE worker loop: one hot worker while nothing blocks,
 * more as soon as something does.
 *
 * libfuse's multi-threaded loop keeps a spare worker waiting in
 * read(2) on /dev/fuse, and the kernel wakes the reader that has waited
 * longest, so a synchronous reader's requests alternate between two
 * threads and each one costs a hand-off.  Here at most one worker, the
 * one holding the *reader role*, reads /dev/fuse; it processes what it
 * read itself and goes back to read(2), as a single-threaded loop would.
 *
 * A request that may wait (the network, another thread's result, a
 * sleep, room in the cache) calls cp_loop_blocking() first: the role
 * passes to a spare worker, which reads the next request while this
 * one waits.  A spare is started when none is idle, up to the maximum.
 * One idle spare, the *watcher*, also takes the role from a holder that
 * has been busy on one request for 50 to 100 ms (WATCH_TICK), so a
 * wait that forgot to call cp_loop_blocking() slows the mount but never
 * holds it.  The watcher sleeps without a timeout while the mount is
 * idle.
 *
 * Threads: the caller of cp_loop_run() only waits for the end; the
 * workers are named cpfs-fuse-N and block SIGINT, SIGTERM and SIGHUP,
 * so those reach the caller's thread.  Shutdown (a signal, fusermount3
 * -u, fuse_session_exit()) ends the loop: idle workers leave, the one in
 * read(2) is interrupted there by SIGUSR2 (cp_loop_run() installs a
 * handler that does nothing), busy ones finish their request first.
 * Nothing is cancelled.
 */
#ifndef CP_LOOP_H
#define CP_LOOP_H

#include <fuse_lowlevel.h>

/* Runs the session's loop with at most @max_threads workers until the
 * session ends.  0, or -errno when reading /dev/fuse failed. */
int cp_loop_run(struct fuse_session *se, unsigned max_threads);

/*
 * The calling thread is about to wait for something that may take
 * long: if it holds the reader role, the role passes to another worker.
 * Any thread may call it, with or without other locks held (it takes
 * none); from any other thread than a role-holding worker it is a
 * thread-local load.
 */
void cp_loop_blocking(void);

/*
 * The same before a wait for @fd to become ready for @events, with a
 * grace: a role holder first waits up to CP_LOOP_GRACE_US for it and
 * keeps the role when it is ready by then, so a loopback answer costs
 * no hand-off while a slow one does.  (conn.c's TLS waits; its plain
 * sockets get the same grace as their first receive timeout, which
 * costs no extra system call, and call cp_loop_blocking() when it
 * expires.)
 */
#define CP_LOOP_GRACE_US 1000
void cp_loop_blocking_fd(int fd, short events);

#endif
