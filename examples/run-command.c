/*
 * run-command: boot a Linux guest with libkvmini, run one command in it, print its output and
 * exit status. Build: cc run-command.c $(pkg-config --cflags --libs kvmini)
 *
 *   run-command KERNEL INITRD COMMAND...
 *
 * The project's guest (guests/) runs what follows " -- " on its kernel command line, prints
 * "KVMINI_CMD_EXIT=<status>" and reboots; we capture the console through the API. Every
 * thread runs under kvmini's seccomp filters, this one too once the VM runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvmini.h>

struct console {
	char text[64 * 1024];
	size_t len;
};

/* Called on the VM's console thread with each chunk of guest output. */
static void on_console(void *opaque, const uint8_t *buf, size_t len)
{
	struct console *c = opaque;
	size_t room = sizeof(c->text) - 1 - c->len;
	if (len > room)
		len = room;
	memcpy(c->text + c->len, buf, len);
	c->len += len;
	c->text[c->len] = '\0';
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s KERNEL INITRD COMMAND...\n", argv[0]);
		return 2;
	}
	char cmdline[4096] = "--";
	for (int i = 3; i < argc; i++)
		snprintf(cmdline + strlen(cmdline), sizeof(cmdline) - strlen(cmdline), " %s",
			 argv[i]);

	static struct console con;
	struct kvmini_error err = {0};
	struct kvmini_config *cfg = NULL;
	struct kvmini_vm *vm = NULL;
	if (kvmini_config_new(&cfg) < 0 || kvmini_config_set_kernel(cfg, argv[1], &err) < 0 ||
	    kvmini_config_set_initrd(cfg, argv[2], &err) < 0 ||
	    kvmini_config_set_cmdline(cfg, cmdline, 0, &err) < 0 ||
	    kvmini_config_set_memory(cfg, 256ULL << 20, &err) < 0 ||
	    kvmini_config_set_console_callback(cfg, on_console, &con, &err) < 0 ||
	    kvmini_config_set_log(cfg, KVMINI_LOG_WARN, NULL, NULL, 2, &err) < 0 ||
	    kvmini_config_set_seccomp(cfg, KVMINI_SECCOMP_KILL, &err) < 0 ||
	    kvmini_vm_create(cfg, &vm, &err) < 0 || kvmini_vm_start(vm, &err) < 0 ||
	    kvmini_vm_confine_thread(vm, KVMINI_THREAD_CONTROL, "main", &err) < 0 ||
	    kvmini_vm_wait(vm, -1, &err) < 0) {
		fprintf(stderr, "run-command: %s\n", err.msg);
		kvmini_vm_destroy(&vm);
		kvmini_config_free(&cfg);
		return err.status ? err.status : 1;
	}
	printf("%s", con.text);
	const char *mark = strstr(con.text, "KVMINI_CMD_EXIT=");
	int status = mark ? atoi(mark + strlen("KVMINI_CMD_EXIT=")) : -1;
	printf("run-command: VM stopped (%s: %s); command exit status %d\n",
	       kvmini_state_name(kvmini_vm_state(vm)), kvmini_vm_stop_reason(vm), status);
	int vm_status = kvmini_vm_exit_status(vm);
	kvmini_vm_destroy(&vm);
	kvmini_config_free(&cfg);
	return vm_status != KVMINI_EXIT_OK ? vm_status : (status < 0 ? 1 : status);
}
