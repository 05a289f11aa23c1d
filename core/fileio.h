/*
 * fileio.h - whole-buffer file I/O at an offset, for the disk images
 * (image.c, cow.c) and the kernel loader.
 */
#ifndef VMLUA_FILEIO_H
#define VMLUA_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Read or write all of len bytes at off, retrying short transfers and
 * EINTR.  io_pread_all returns the bytes read, fewer only at the end of
 * the file, or -errno; io_pwrite_all returns 0 or -errno (-EIO when the
 * file takes nothing).
 */
int64_t io_pread_all(int fd, void *buf, size_t len, uint64_t off);
int io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* io_pread_all, with what lies past the end of the file read as zeros
 * (a sparse or shrunken image). */
int io_pread_zero(int fd, void *buf, size_t len, uint64_t off);

#endif
