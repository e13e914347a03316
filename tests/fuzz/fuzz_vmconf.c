/*
 * fuzz_vmconf: the JSON config schema (run --config, define) on any text. Oracles: a refused
 * text says why in one line with status 3 or 4; an accepted one dumps to JSON that parses
 * again to the same dump (what dumpconfig prints is a config kvmini takes back unchanged).
 */
#include <stdlib.h>
#include <string.h>

#include "kvmini/cli.h"
#include "kvmini/vmconf.h"

static struct cli first, second; /* large: not on the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cli_defaults(&first);
	struct kvmini_error e = {0};
	int ret = vmconf_parse(&first, (const char *)data, size, "fuzz.json", "/base", &e);
	if (ret < 0) {
		if (e.status != KVMINI_EXIT_INPUT && e.status != KVMINI_EXIT_RESOURCE)
			abort();
		if (!e.msg[0] || strchr(e.msg, '\n'))
			abort();
		cli_free(&first);
		return 0;
	}
	char *dump = vmconf_dump(&first, 0);
	if (!dump)
		abort();
	cli_defaults(&second);
	struct kvmini_error e2 = {0};
	if (vmconf_parse(&second, dump, strlen(dump), "dump.json", NULL, &e2) < 0)
		abort(); /* a dump kvmini itself refuses */
	char *again = vmconf_dump(&second, 0);
	if (!again || strcmp(dump, again) != 0)
		abort();
	free(again);
	free(dump);
	cli_free(&second);
	cli_free(&first);
	return 0;
}
