/*
 * fp_test - does a process keep its FP/vector registers across context
 * switches?  Built static by spec/uml_spec.lua and run inside a UML
 * guest, where every switch between guest processes saves and restores
 * the FP/XSAVE state through ptrace (the path guest/uml/patches sizes
 * from the host).
 *
 *   fp_test hold ROUNDS     load distinct values into xmm0-15 (ymm0-15
 *                           with AVX, zmm0-31 and k1-7 with AVX-512),
 *                           let other processes run (spin + sched_yield),
 *                           check the registers still hold them; ROUNDS
 *                           times, and on until it was switched out
 *                           ROUNDS/4 times.  Prints one "fp_test:" line
 *                           (rounds, context switches), exits 0 when
 *                           every round held, 1 otherwise.
 *   fp_test clobber         load other values into the same registers
 *                           and yield, forever (killed by the caller).
 *   fp_test pingpong SWITCHES
 *                           as hold, but with a child of its own that
 *                           clobbers the registers each round: the holder
 *                           loads its values, wakes the child through a
 *                           pipe and blocks on the child's answer (so
 *                           each round switches to the child and back),
 *                           then checks them; until the holder has been
 *                           switched out SWITCHES times.
 *   fp_test features        print what the CPU and the kernel enable.
 *
 * The values are loaded, kept and stored inside one asm statement per
 * round, so the compiler never holds anything of its own in them.
 */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SSE = 1, AVX = 2, AVX512 = 4 };

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

/* SSE always (x86-64); AVX and AVX-512 when the CPU has them and the
 * kernel enabled their state in XCR0. */
static int features(void)
{
	unsigned a, b, c, d;
	int f = SSE;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
		return f;
	uint64_t xcr0 = xgetbv0();
	if ((c & bit_AVX) && (xcr0 & 6) == 6)
		f |= AVX;
	if ((f & AVX) && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX512F) &&
	    (xcr0 & 0xe0) == 0xe0)
		f |= AVX512;
	return f;
}

/* The spin between load and store: long enough that the guest's timer
 * preempts some rounds, then a sched_yield (the syscall instruction
 * itself preserves every vector register). */
#define SPIN_AND_YIELD \
	"mov %[spin], %%rcx\n1: dec %%rcx\n jnz 1b\n" \
	"mov %[nr], %%eax\n syscall\n"

#define X16(m) m(0) m(1) m(2) m(3) m(4) m(5) m(6) m(7) m(8) m(9) m(10) m(11) m(12) m(13) m(14) m(15)
#define X32(m) X16(m) m(16) m(17) m(18) m(19) m(20) m(21) m(22) m(23) m(24) m(25) m(26) m(27) \
	m(28) m(29) m(30) m(31)
#define S(x) #x
#define LD_X(i) "movdqu " S(i) "*16(%[in]), %%xmm" S(i) "\n"
#define ST_X(i) "movdqu %%xmm" S(i) ", " S(i) "*16(%[out])\n"
#define LD_Y(i) "vmovdqu " S(i) "*32(%[in]), %%ymm" S(i) "\n"
#define ST_Y(i) "vmovdqu %%ymm" S(i) ", " S(i) "*32(%[out])\n"
#define LD_Z(i) "vmovdqu64 " S(i) "*64(%[in]), %%zmm" S(i) "\n"
#define ST_Z(i) "vmovdqu64 %%zmm" S(i) ", " S(i) "*64(%[out])\n"
#define LD_K(i) "kmovq " S(i) "*8+2048(%[in]), %%k" S(i) "\n"
#define ST_K(i) "kmovq %%k" S(i) ", " S(i) "*8+2048(%[out])\n"
#define K7(m) m(1) m(2) m(3) m(4) m(5) m(6) m(7)

#define CLOBBERS "rax", "rcx", "r11", "memory"
#define XMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* One round of AVX-512: its register names need the target attribute
 * (only this function; the rest must run on any x86-64). */
__attribute__((target("avx512f"), noinline))
static void round_avx512(const uint8_t *in, uint8_t *out, long spin)
{
	__asm__ volatile(X32(LD_Z) K7(LD_K) SPIN_AND_YIELD X32(ST_Z) K7(ST_K)
			 : : [in] "r"(in), [out] "r"(out), [spin] "r"(spin), [nr] "i"(SYS_sched_yield)
			 : CLOBBERS, XMM_CLOBBERS, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
			   "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28",
			   "xmm29", "xmm30", "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

/* One round: load in[], spin and yield, store into out[]. */
static void round_trip(int f, const uint8_t *in, uint8_t *out, long spin)
{
	if (f & AVX512)
		round_avx512(in, out, spin);
	else if (f & AVX)
		__asm__ volatile(X16(LD_Y) SPIN_AND_YIELD X16(ST_Y)
				 : : [in] "r"(in), [out] "r"(out), [spin] "r"(spin), [nr] "i"(SYS_sched_yield)
				 : CLOBBERS, XMM_CLOBBERS);
	else
		__asm__ volatile(X16(LD_X) SPIN_AND_YIELD X16(ST_X)
				 : : [in] "r"(in), [out] "r"(out), [spin] "r"(spin), [nr] "i"(SYS_sched_yield)
				 : CLOBBERS, XMM_CLOBBERS);
}

/* The pipe round of pingpong, between load and store: write a byte to
 * the child, block reading its answer (read and write preserve every
 * vector register; the switches in between must too). */
#define PING_PONG \
	"mov $1, %%eax\n mov %[wfd], %%edi\n mov %[buf], %%rsi\n mov $1, %%edx\n syscall\n" \
	"mov $0, %%eax\n mov %[rfd], %%edi\n mov %[buf], %%rsi\n mov $1, %%edx\n syscall\n"
#define PP_OPERANDS [in] "r"(in), [out] "r"(out), [wfd] "r"(wfd), [rfd] "r"(rfd), [buf] "r"(buf)
#define PP_CLOBBERS CLOBBERS, "rdx", "rsi", "rdi"

__attribute__((target("avx512f"), noinline))
static void pp_avx512(const uint8_t *in, uint8_t *out, int wfd, int rfd, char *buf)
{
	__asm__ volatile(X32(LD_Z) K7(LD_K) PING_PONG X32(ST_Z) K7(ST_K)
			 : : PP_OPERANDS
			 : PP_CLOBBERS, XMM_CLOBBERS, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
			   "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28",
			   "xmm29", "xmm30", "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

/* One pingpong round: load in[], ping the child and wait for its pong,
 * store into out[]. */
static void pp_round(int f, const uint8_t *in, uint8_t *out, int wfd, int rfd, char *buf)
{
	if (f & AVX512)
		pp_avx512(in, out, wfd, rfd, buf);
	else if (f & AVX)
		__asm__ volatile(X16(LD_Y) PING_PONG X16(ST_Y) : : PP_OPERANDS : PP_CLOBBERS, XMM_CLOBBERS);
	else
		__asm__ volatile(X16(LD_X) PING_PONG X16(ST_X) : : PP_OPERANDS : PP_CLOBBERS, XMM_CLOBBERS);
}

/* Bytes the registers hold for a feature set: 32 zmm + 7 k (at 2048), 16
 * ymm or 16 xmm. */
static size_t state_size(int f)
{
	return f & AVX512 ? 2048 + 8 * 8 : f & AVX ? 16 * 32 : 16 * 16;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
	if (n > 2048)
		memset(p + 2048, 0, 8);	/* k0 is not loaded */
}

/* How often this process was switched out so far. */
static long switches(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

static const char *names(int f)
{
	return f & AVX512 ? "sse avx avx512" : f & AVX ? "sse avx" : "sse";
}

/* The holder's side of pingpong; the child clobbers until the pipe
 * closes.  0 when every round held. */
static int pingpong(int f, long want)
{
	static uint8_t in[4096] __attribute__((aligned(64)));
	static uint8_t out[4096] __attribute__((aligned(64)));
	size_t n = state_size(f);
	int ping[2], pong[2];
	char buf[1] = { 0 };
	long r, start;

	if (pipe(ping) < 0 || pipe(pong) < 0) {
		perror("fp_test: pipe");
		return 2;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("fp_test: fork");
		return 2;
	}
	if (child == 0) {
		close(ping[1]);
		close(pong[0]);
		for (uint32_t k = 0; read(ping[0], buf, 1) == 1; k++) {
			fill(in, n, 0xdead0000u + k);
			round_trip(f, in, out, 1);       /* the clobber */
			if (write(pong[1], buf, 1) != 1)
				break;
		}
		_exit(0);
	}
	close(ping[0]);
	close(pong[1]);
	start = switches();
	for (r = 0; switches() - start < want; r++) {
		fill(in, n, 0x5eed0000u + (uint32_t)r);
		memset(out, 0, n);
		pp_round(f, in, out, ping[1], pong[0], buf);
		for (size_t i = 0; i < n; i++) {
			if (in[i] != out[i]) {
				printf("fp_test: FAILED %s: round %ld, state byte %zu is %02x, not %02x\n",
				       names(f), r, i, out[i], in[i]);
				return 1;
			}
		}
	}
	close(ping[1]);
	waitpid(child, NULL, 0);
	printf("fp_test: ok %s, %ld pingpong rounds, %ld context switches\n", names(f), r, switches() - start);
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t in[4096] __attribute__((aligned(64)));
	static uint8_t out[4096] __attribute__((aligned(64)));
	int f = features();
	size_t n = state_size(f);

	if (argc >= 2 && strcmp(argv[1], "features") == 0) {
		printf("fp_test: features %s\n", names(f));
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "clobber") == 0) {
		for (uint32_t r = 0;; r++) {
			fill(in, n, 0xdead0000u + r);
			round_trip(f, in, out, 20000);
		}
	}
	if (argc >= 3 && strcmp(argv[1], "pingpong") == 0)
		return pingpong(f, atol(argv[2]));
	if (argc < 3 || strcmp(argv[1], "hold") != 0) {
		fprintf(stderr, "usage: fp_test hold ROUNDS | pingpong SWITCHES | clobber | features\n");
		return 2;
	}
	/* ROUNDS rounds, and more until a quarter as many switches have
	 * happened (the scheduler may run a fresh process a long while
	 * first), within a generous bound. */
	long rounds = atol(argv[2]), r;
	for (r = 0; r < 1000 * rounds && (r < rounds || switches() < rounds / 4); r++) {
		fill(in, n, 0x5eed0000u + (uint32_t)r);
		memset(out, 0, n);
		round_trip(f, in, out, r % 8 == 0 ? 2000000 : 20000);
		for (size_t i = 0; i < n; i++) {
			if (in[i] != out[i]) {
				printf("fp_test: FAILED %s: round %ld, state byte %zu is %02x, not %02x\n",
				       names(f), r, i, out[i], in[i]);
				return 1;
			}
		}
	}
	printf("fp_test: ok %s, %ld rounds, %ld context switches\n", names(f), r, switches());
	return 0;
}
