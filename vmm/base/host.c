/* host: detect a software-only /dev/kvm and the host's memory, for warnings and limits. */
#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cap-ng.h>

#include "kvmini/host.h"

const char *host_slow_kvm_reason(const char *sysfs, const char *cpuinfo)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/module/kvm_pvm", sysfs);
	if (stat(path, &st) == 0)
		return "/dev/kvm is PVM, a software KVM";
	FILE *f = fopen(cpuinfo, "r");
	if (!f)
		return NULL; /* cannot tell; assume the best */
	char line[4096];
	bool seen_flags = false, virt = false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		seen_flags = true;
		/* Whole words only: "svm_lock" is not "svm". */
		for (char *save, *w = strtok_r(line, " \t\n:", &save); w;
		     w = strtok_r(NULL, " \t\n:", &save))
			if (!strcmp(w, "vmx") || !strcmp(w, "svm"))
				virt = true;
		break;
	}
	fclose(f);
	if (seen_flags && !virt)
		return "the CPU has no hardware virtualization (neither vmx nor svm)";
	return NULL;
}

int host_check_memory(uint64_t mem_size, struct vmerr *e)
{
	struct sysinfo si;
	if (sysinfo(&si) < 0)
		return 0; /* cannot tell; KVM will refuse if it must */
	uint64_t total = (uint64_t)si.totalram * si.mem_unit;
	if (mem_size > total)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				 "--mem %llu MiB is more than this host's %llu MiB of RAM; use a "
				 "smaller --mem",
				 (unsigned long long)(mem_size >> 20),
				 (unsigned long long)(total >> 20));
	return 0;
}

/* What a new thread needs before it runs its function: it names itself and installs its
 * seccomp filter first, so both are in place before the function's first instruction. The
 * creator waits for `result` (the filter installed, or why not) and then frees this. */
struct host_thread_boot {
	void *(*fn)(void *);
	void *arg;
	char name[16]; /* Linux keeps 15 characters */
	const struct confine *confine;
	int kind;
	sem_t done;
	int result;
};

void host_thread_sigmask(sigset_t *set)
{
	sigfillset(set);
	const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigdelset(set, fatal[i]);
}

int host_drop_caps(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	capng_get_caps_process(); /* this thread's sets */
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE)
		return 0;
	capng_clear(CAPNG_SELECT_ALL);
	/* The bounding set needs CAP_SETPCAP to shrink; without it, the rest still goes. */
	if (capng_apply(CAPNG_SELECT_ALL) < 0 && capng_apply(CAPNG_SELECT_CAPS) < 0)
		return -EPERM;
	capng_get_caps_process();
	return capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE ? 0 : -EPERM;
}

static void *host_thread_main(void *p)
{
	struct host_thread_boot *b = p;
	void *(*fn)(void *) = b->fn;
	void *arg = b->arg;
	/* A label for ps and gdb: failing to set it is harmless. */
	pthread_setname_np(pthread_self(), b->name);
	/* A device or vCPU thread never needs a capability: it drops them (capabilities are
	 * per thread, so its creator's drop later would not reach it), before its filter. */
	int ret = host_drop_caps();
	if (ret == 0)
		ret = confine_enter(b->confine, b->kind, b->name);
	b->result = ret;
	sem_post(&b->done); /* b is the creator's from here on */
	if (ret < 0)
		return NULL; /* never run unconfined: the creator reports it */
	return fn(arg);
}

int host_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name,
		      const struct confine *confine, int kind)
{
	struct host_thread_boot *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fn = fn;
	b->arg = arg;
	b->confine = confine;
	b->kind = kind;
	b->result = 0;
	sem_init(&b->done, 0, 0);
	snprintf(b->name, sizeof(b->name), "%s", name);
	pthread_attr_t attr;
	int ret = pthread_attr_init(&attr);
	if (!ret) {
		ret = pthread_attr_setstacksize(&attr, HOST_THREAD_STACK);
		/* Every signal blocked in the new thread (the caller's signals are its own) but
		 * the fatal ones: blocked, a crash in this thread would kill the process without
		 * running the command's handler (which restores the terminal). */
		sigset_t all, old;
		host_thread_sigmask(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		if (!ret)
			ret = pthread_create(t, &attr, host_thread_main, b);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (ret) {
		sem_destroy(&b->done);
		free(b);
		return -ret;
	}
	while (sem_wait(&b->done) < 0 && errno == EINTR)
		;
	int result = b->result;
	sem_destroy(&b->done);
	free(b);
	if (result < 0) {
		pthread_join(*t, NULL);
		return result;
	}
	return 0;
}

int host_rss(uint64_t *bytes)
{
	FILE *f = fopen("/proc/self/statm", "re");
	if (!f)
		return -errno;
	unsigned long long size = 0, resident = 0;
	int n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	long page = sysconf(_SC_PAGESIZE);
	if (n != 2 || page <= 0)
		return -EIO;
	*bytes = (uint64_t)resident * (uint64_t)page;
	return 0;
}

void host_eventfd_drain(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
	}
}
