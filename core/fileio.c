/*
 * fileio.c - whole-buffer pread and pwrite: retry short transfers and
 * EINTR, and say where the file ended.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "fileio.h"

int64_t io_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (int64_t)done;
}

int io_pread_zero(int fd, void *buf, size_t len, uint64_t off)
{
	int64_t n = io_pread_all(fd, buf, len, off);

	if (n < 0)
		return (int)n;
	memset((char *)buf + n, 0, len - (size_t)n);
	return 0;
}

int io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf = (const char *)buf + n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}
