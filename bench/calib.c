// bench/calib.c: a fixed piece of kernel-heavy work, timed, for the benchmarks' hardware
// estimates.
//
//   calib
//
// Does, 3 times over, what a boot spends its time on besides plain computing: 16384 page
// faults on fresh anonymous memory (64 MiB, small pages), 100 fork/exit/wait round trips and
// 20000 system calls, and prints the fastest of the 3 in milliseconds: "CALIB MS". Run once on
// the host and once where the L2 half of a benchmark runs (inside the nested machine without
// hardware virtualization), the ratio of the two is how much slower that place runs such work:
// the factor by which bench/sandbox.sh scales its nested times to estimate hardware ones. (A
// loop of plain computing runs within 2x of native speed under TCG: it would say nothing.)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CALIB_BYTES    (64u << 20)
#define CALIB_FORKS    100
#define CALIB_SYSCALLS 20000
#define CALIB_RUNS     3

static double calib_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* One round of the work. 0, or -1 when the system refuses a part of it. */
static int calib_round(void)
{
	volatile char *m =
		mmap(NULL, CALIB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	madvise((void *)m, CALIB_BYTES, MADV_NOHUGEPAGE); /* a fault per 4 KiB page */
	for (size_t off = 0; off < CALIB_BYTES; off += 4096)
		m[off] = 1;
	munmap((void *)m, CALIB_BYTES);
	for (int i = 0; i < CALIB_FORKS; i++) {
		pid_t p = fork();
		if (p < 0)
			return -1;
		if (p == 0)
			_exit(0);
		if (waitpid(p, NULL, 0) != p)
			return -1;
	}
	for (int i = 0; i < CALIB_SYSCALLS; i++)
		syscall(SYS_getppid); /* not cached by libc */
	return 0;
}

int main(void)
{
	double best = 0;
	for (int run = 0; run < CALIB_RUNS; run++) {
		double t0 = calib_now_ms();
		if (calib_round() < 0) {
			perror("calib");
			return 1;
		}
		double ms = calib_now_ms() - t0;
		if (run == 0 || ms < best)
			best = ms;
	}
	printf("CALIB %.1f\n", best);
	return 0;
}
