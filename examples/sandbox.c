/*
 * sandbox: run one command in a throw-away microVM with libkvmini and its guest agent, with its
 * stdout and stderr kept apart and its exit status returned, as `kvmini exec` does.
 * Build: cc sandbox.c $(pkg-config --cflags --libs kvmini)
 *
 *   sandbox KERNEL INITRD ROOT-IMAGE COMMAND [ARG...]
 *
 * KERNEL and INITRD are kvmini's sandbox guest (bzImage and sandbox.cpio.gz, from `make guests`
 * or $PREFIX/share/kvmini); ROOT-IMAGE is a read-only root filesystem image for /dev/vda
 * (`mkfs.erofs -x-1 root.img DIR`, or what `kvmini exec --rootfs DIR` keeps in its cache).
 * The guest's init mounts it under an overlay in guest memory and starts the agent, which
 * kvmini_vm_exec() talks to over virtio-vsock. Exits with the command's status, or 125 with the
 * reason when the sandbox could not run it.
 */
#include <stdio.h>
#include <unistd.h>

#include <kvmini.h>

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s KERNEL INITRD ROOT-IMAGE COMMAND [ARG...]\n", argv[0]);
		return 2;
	}
	struct kvmini_config *cfg = NULL;
	struct kvmini_vm *vm = NULL;
	struct kvmini_error err = {0};
	int status = KVMINI_EXEC_FAILED;
	if (kvmini_config_new(&cfg) < 0 || kvmini_config_set_kernel(cfg, argv[1], &err) < 0 ||
	    kvmini_config_set_initrd(cfg, argv[2], &err) < 0 ||
	    kvmini_config_add_disk(cfg, argv[3], KVMINI_DISK_READONLY, NULL, &err) < 0 ||
	    kvmini_config_set_cmdline(cfg, "kvmini.agent=1", 0, &err) < 0 ||
	    kvmini_config_set_vsock(cfg, 0, NULL, &err) < 0 || /* a CID of its own, no socket */
	    kvmini_config_set_memory(cfg, 128ULL << 20, &err) < 0 ||
	    kvmini_config_set_seccomp(cfg, KVMINI_SECCOMP_KILL, &err) < 0 ||
	    kvmini_vm_create(cfg, &vm, &err) < 0 || kvmini_vm_start(vm, &err) < 0 ||
	    kvmini_vm_confine_thread(vm, KVMINI_THREAD_EXEC, "main", &err) < 0) {
		fprintf(stderr, "sandbox: %s\n", err.msg);
		goto out;
	}
	/* The command's whole environment, as with execve(). */
	const char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root",
			     NULL};
	struct kvmini_exec x = {
		.argv = (const char *const *)(argv + 4),
		.env = env,
		.stdin_fd = -1, /* /dev/null in the guest */
		.stdout_fd = STDOUT_FILENO,
		.stderr_fd = STDERR_FILENO,
		.signal_fd = -1,
	};
	status = kvmini_vm_exec(vm, &x, &err);
	if (status < 0) {
		fprintf(stderr, "sandbox: %s\n", err.msg);
		status = KVMINI_EXEC_FAILED;
	} else if (status == KVMINI_EXEC_NOT_FOUND || status == KVMINI_EXEC_CANNOT_EXEC) {
		fprintf(stderr, "sandbox: %s\n", err.msg);
	}
	kvmini_vm_stop(vm, KVMINI_EXIT_OK, "the command ended");
	kvmini_vm_wait(vm, -1, NULL);
out:
	kvmini_vm_destroy(&vm);
	kvmini_config_free(&cfg);
	return status;
}
