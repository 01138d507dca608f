/*
 * durable.c - files that hold persisted state: checksums, whole reads and
 * writes, temp-file-and-rename, a cross-process lock, one warning.
 *
 * Owns nothing: every function works on the paths and descriptors it is
 * given.  The only state is in the callers' struct cp_durable_health
 * (atomics).  Called from any thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "log.h"
#include "util.h"

uint64_t cp_fnv1a64_update(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t cp_fnv1a64(const void *data, size_t len)
{
	return cp_fnv1a64_update(CP_FNV1A64_INIT, data, len);
}

bool cp_durable_id_ok(const char *id)
{
	size_t n;

	if (!id)
		return false;
	for (n = 0; id[n]; n++) {
		char c = id[n];

		if (n >= CP_DURABLE_ID_MAX)
			return false;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z')))
			return false;
	}
	return n > 0;
}

/* Moves exactly @len bytes between @fd and @buf, one way or the other. */
static int transfer_all(int fd, char *p, size_t len, bool writing)
{
	while (len) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file is shorter than it claims */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int cp_durable_read_all(int fd, void *buf, size_t len)
{
	return transfer_all(fd, buf, len, false);
}

int cp_durable_write_all(int fd, const void *buf, size_t len)
{
	return transfer_all(fd, (char *)buf, len, true); /* not written to */
}

void cp_durable_put_le(unsigned char *p, uint64_t v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t cp_durable_get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	int i;

	for (i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int cp_durable_remove(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return errno ? -errno : -EIO;
	return 0;
}

/* Removes a regular file standing where one of the last @owned components
 * of @dir should be a directory (a foreign or damaged store). */
static void clear_non_dirs(const char *dir, int owned)
{
	char path[PATH_MAX];
	struct stat st;
	int level;

	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
		return;
	for (level = 0; level < owned; level++) {
		char *slash;

		if (!lstat(path, &st) && S_ISREG(st.st_mode)) {
			cp_warn("%s is a file where a directory belongs; "
				"removed",
				path);
			unlink(path);
		}
		slash = strrchr(path, '/');
		if (!slash || slash == path)
			return;
		*slash = '\0';
	}
}

int cp_durable_temp(const char *dir, int owned, const char *tag, char *tmp,
		    size_t len)
{
	int attempt, fd, err;

	/* Another thread or mount may rmdir an emptied directory between our
	 * mkdir and mkostemp: try again a few times. */
	for (attempt = 0; attempt < 3; attempt++) {
		if (snprintf(tmp, len, "%s/.%s.XXXXXX", dir, tag) >= (int)len)
			return -ENAMETOOLONG;
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd >= 0)
			return fd;
		err = -errno;
		if (err == -ENOTDIR)
			clear_non_dirs(dir, owned);
		else if (err != -ENOENT)
			return err;
		err = cp_mkdir_p(dir);
		if (err)
			return err;
	}
	return -ENOENT;
}

int cp_durable_commit(int fd, const char *tmp, const char *path)
{
	int err = 0;

	if (close(fd) < 0)
		err = -errno;
	if (!err && rename(tmp, path) < 0) {
		err = -errno;
		/* Something not ours sits there: clear it, then retry. */
		if ((err == -EISDIR || err == -ENOTEMPTY || err == -EEXIST) &&
		    !cp_durable_remove(path))
			err = rename(tmp, path) < 0 ? -errno : 0;
	}
	if (err)
		unlink(tmp);
	return err;
}

int cp_durable_replace(const char *dir, int owned, const char *tag,
		       const char *path, const void *buf, size_t len)
{
	char tmp[PATH_MAX];
	int fd, err;

	fd = cp_durable_temp(dir, owned, tag, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	err = cp_durable_write_all(fd, buf, len);
	if (err) {
		close(fd);
		unlink(tmp);
		return err;
	}
	return cp_durable_commit(fd, tmp, path);
}

int cp_durable_lock(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0) {
		int err = errno;

		if (err != EINTR) {
			close(fd);
			return -err;
		}
	}
	return fd;
}

void cp_durable_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* closing the last fd of the file drops the flock */
}

void cp_durable_health_init(struct cp_durable_health *h)
{
	atomic_init(&h->disabled, false);
	atomic_init(&h->no_writes, false);
	atomic_init(&h->warned, false);
}

bool cp_durable_err_permanent(int err)
{
	return err == EROFS || err == EACCES || err == EPERM || err == ENOSPC ||
	       err == EDQUOT || err == ENOTDIR;
}

static void warn_once(struct cp_durable_health *h, const char *store,
		      const char *dir, const char *what, int err)
{
	if (!atomic_exchange(&h->warned, true))
		cp_warn("%s %s: %s: %s; continuing without it", store, dir,
			what, strerror(err));
}

void cp_durable_failed(struct cp_durable_health *h, const char *store,
		       const char *dir, const char *what, int err)
{
	warn_once(h, store, dir, what, err);
	if (cp_durable_err_permanent(err))
		atomic_store(&h->no_writes, true);
}

void cp_durable_disable(struct cp_durable_health *h, const char *store,
			const char *dir, const char *what, int err)
{
	warn_once(h, store, dir, what, err);
	atomic_store(&h->disabled, true);
}
