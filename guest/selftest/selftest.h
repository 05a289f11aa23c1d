/*
 * selftest.h - what the selftest guest's files share: types, memory
 * access, the UART reporting functions (lib.c), the virtio check
 * (virtio.c).
 */
#ifndef SELFTEST_H
#define SELFTEST_H

#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

/* Loads that may be unaligned and may alias anything: the e820 entries
 * are 20 bytes apart and ACPI tables have no alignment at all. */
typedef u32 u32u __attribute__((aligned(1), may_alias));
typedef u64 u64u __attribute__((aligned(1), may_alias));

u8 rd8(u64 a);
u32 rd32(u64 a);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

size_t slen(const char *s);

/* Output on the UART; ok and fail write whole "selftest: ..." lines,
 * and fail counts a failed check, which failures() tells. */
void putch(char c);
unsigned failures(void);
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drive every virtio-mmio device the DSDT at `dsdt` declares. */
void check_virtio(u64 dsdt, u64 more);

#endif
