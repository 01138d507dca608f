/*
 * randfloor.c - the floor for run.py's random-read workload: the least a
 * FUSE daemon can do to serve one HTTP object, one range request per
 * FUSE read, so the benchmark shows what a one-request-per-read daemon
 * costs on this machine with no work of its own in it.
 *
 *     randfloor [-d] http://127.0.0.1:PORT/PATH SIZE MOUNTPOINT
 *
 * The root holds one read-only file, named by PATH's last segment, of
 * SIZE bytes (inode 2).  A read sends a GET built from a request prefix
 * formatted once at start plus the range, on one kept connection
 * (TCP_NODELAY, blocking), receives the answer into one buffer with room
 * for the header and the body, checks the status line and Content-Length,
 * and replies with fuse_reply_buf from inside that buffer: no copy.  If
 * the kept connection was closed, the read reconnects and asks once more.
 * -d opens the file with direct_io (no page cache) instead of keep_cache.
 * One thread (fuse_session_loop); no cache, no retries beyond the one.
 * Plain HTTP on an IPv4 literal only.  Built by run.py with cc at set-up;
 * not part of cpfs.
 */
#define FUSE_USE_VERSION 34
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floor.h"

#define HEAD_ROOM 4096 /* an nginx 206 header is ~250 bytes */
#define MAX_READ (1 << 20)

struct floor_obj {
	struct sockaddr_in addr;
	char name[256];
	off_t size;
	int direct;
	char prefix[1024]; /* "GET /path HTTP/1.1\r\nHost: h\r\nRange: bytes=" */
	size_t prefix_len;
	int fd; /* the kept connection, -1 when none */
	char *buf; /* HEAD_ROOM + MAX_READ */
};

static struct floor_obj obj = { .fd = -1 };

static int conn_open(void)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&obj.addr, sizeof(obj.addr)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	obj.fd = fd;
	return 0;
}

static void conn_close(void)
{
	if (obj.fd >= 0)
		close(obj.fd);
	obj.fd = -1;
}

static int send_all(const char *p, size_t n)
{
	while (n) {
		ssize_t k = send(obj.fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Length of the header ending in "\r\n\r\n" at the start of @p, or 0. */
static size_t header_end(const char *p, size_t n)
{
	const char *e = memmem(p, n, "\r\n\r\n", 4);

	return e ? (size_t)(e - p) + 4 : 0;
}

/* Content-Length of the header @p[0..n), or -1; *close set on
 * "Connection: close". */
static long long parse_header(const char *p, size_t n, int *close_after)
{
	long long len = -1;
	const char *line = memchr(p, '\n', n);

	if (n < 12 || memcmp(p, "HTTP/1.1 20", 11) != 0 ||
	    (p[11] != '6' && p[11] != '0'))
		return -1;
	*close_after = 0;
	while (line && line < p + n) {
		line++;
		if (!strncasecmp(line, "Content-Length:", 15))
			len = strtoll(line + 15, NULL, 10);
		else if (!strncasecmp(line, "Connection: close", 17))
			*close_after = 1;
		line = memchr(line, '\n', (size_t)(p + n - line));
	}
	return len;
}

/* One GET of [off, off + len) on the kept connection.  Returns the body's
 * length with *body pointing into obj.buf, -EAGAIN when the connection had
 * been closed before any byte of the answer came, or -EIO. */
static ssize_t one_get(off_t off, size_t len, char **body)
{
	char req[1100];
	size_t n = obj.prefix_len, got = 0, head = 0, cap = HEAD_ROOM + len;
	long long want = -1;
	int close_after = 0;

	memcpy(req, obj.prefix, n);
	n += (size_t)snprintf(req + n, sizeof(req) - n, "%lld-%lld\r\n\r\n",
			      (long long)off, (long long)(off + len - 1));
	if (send_all(req, n) < 0)
		return -EAGAIN;
	for (;;) {
		ssize_t k = recv(obj.fd, obj.buf + got, cap - got, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return got ? -EIO : -EAGAIN;
		got += (size_t)k;
		if (!head) {
			head = header_end(obj.buf, got);
			if (!head) {
				if (got == cap)
					return -EIO;
				continue;
			}
			want = parse_header(obj.buf, head, &close_after);
			if (want < 0 || (size_t)want > len)
				return -EIO;
			cap = head + (size_t)want;
		}
		if (got >= cap)
			break;
	}
	if (got != cap)
		return -EIO;
	if (close_after)
		conn_close();
	*body = obj.buf + head;
	return (ssize_t)want;
}

static ssize_t fetch(off_t off, size_t len, char **body)
{
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		ssize_t n;

		if (obj.fd < 0 && conn_open() < 0)
			return -EIO;
		n = one_get(off, len, body);
		if (n >= 0)
			return n;
		conn_close();
		if (n != -EAGAIN)
			return n;
	}
	return -EIO;
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, obj.name) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	floor_fill_entry(2, obj.size, &e);
	fuse_reply_entry(req, &e);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID && ino != 2) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	floor_fill_stat(ino, obj.size, &st);
	fuse_reply_attr(req, &st, FLOOR_TIMEOUT);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	if (ino != 2) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	fi->direct_io = obj.direct;
	fi->keep_cache = !obj.direct;
	fuse_reply_open(req, fi);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char *body = NULL;
	ssize_t n;

	(void)ino;
	(void)fi;
	if (off >= obj.size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > MAX_READ)
		size = MAX_READ;
	if ((off_t)size > obj.size - off)
		size = (size_t)(obj.size - off);
	n = fetch(off, size, &body);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, body, (size_t)n);
}

static const struct fuse_lowlevel_ops floor_ops = {
	.lookup = floor_lookup,
	.getattr = floor_getattr,
	.open = floor_open,
	.read = floor_read,
};

/* Parses http://A.B.C.D:PORT/PATH into obj. */
static int parse_url(const char *url)
{
	char host[64];
	const char *p, *path, *colon, *last;
	unsigned long port;
	int n;

	if (strncmp(url, "http://", 7) != 0)
		return -EINVAL;
	p = url + 7;
	path = strchr(p, '/');
	colon = memchr(p, ':', path ? (size_t)(path - p) : strlen(p));
	if (!path || !colon || (size_t)(colon - p) >= sizeof(host))
		return -EINVAL;
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	port = strtoul(colon + 1, NULL, 10);
	memset(&obj.addr, 0, sizeof(obj.addr));
	obj.addr.sin_family = AF_INET;
	obj.addr.sin_port = htons((unsigned short)port);
	if (port == 0 || port > 65535 ||
	    inet_pton(AF_INET, host, &obj.addr.sin_addr) != 1)
		return -EINVAL;
	last = strrchr(path, '/') + 1;
	n = snprintf(obj.name, sizeof(obj.name), "%.*s",
		     (int)strcspn(last, "?"), last);
	if (n <= 0 || (size_t)n >= sizeof(obj.name))
		return -EINVAL;
	n = snprintf(obj.prefix, sizeof(obj.prefix),
		     "GET %s HTTP/1.1\r\nHost: %.*s\r\nRange: bytes=", path,
		     (int)(path - p), p);
	if (n <= 0 || (size_t)n >= sizeof(obj.prefix))
		return -EINVAL;
	obj.prefix_len = (size_t)n;
	return 0;
}

int main(int argc, char **argv)
{
	int ret = 1, a = 1;

	if (argc > 1 && !strcmp(argv[1], "-d")) {
		obj.direct = 1;
		a++;
	}
	if (argc - a != 3 || parse_url(argv[a]) < 0) {
		fprintf(stderr, "usage: randfloor [-d] "
				"http://A.B.C.D:PORT/PATH SIZE MOUNTPOINT\n");
		return 2;
	}
	obj.size = (off_t)strtoll(argv[a + 1], NULL, 10);
	obj.buf = malloc(HEAD_ROOM + MAX_READ);
	if (obj.buf && obj.size > 0)
		ret = floor_serve(argv[0], "randfloor", &floor_ops,
				  sizeof(floor_ops), argv[a + 2]);
	conn_close();
	free(obj.buf);
	return ret;
}
