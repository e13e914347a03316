/* vmconf: a VM's configuration as JSON (--config, define, dumpconfig) to and from struct cli. */
#ifndef KVMINI_VMCONF_H
#define KVMINI_VMCONF_H

#include <stddef.h>

#include "kvmini.h"
#include "kvmini/cli.h"

#define VMCONF_MAX_SIZE (1 << 20) /* a config file larger than this is refused */

/*
 * Parse the JSON text `text` (`len` bytes) over `c`: each key present replaces that setting
 * (disks and nets as whole lists, marked as from the file). `label` names the source in
 * messages ("web.json"); relative paths are taken from `base_dir` (NULL: as they are).
 * Unknown keys, wrong types and bad values are errors naming the key:
 *   web.json: "cpus": expected an integer 1..64, got "two"
 * 0, or -EINVAL/-ENOMEM with KVMINI_EXIT_INPUT (KVMINI_EXIT_RESOURCE for too much memory)
 * in `e`. Strings are copied into `c` (cli_own).
 */
int vmconf_parse(struct cli *c, const char *text, size_t len, const char *label,
		 const char *base_dir, struct kvmini_error *e);

/* Read the file `path` and vmconf_parse() it, relative paths from the file's folder. A
 * missing or unreadable file is KVMINI_EXIT_INPUT. */
int vmconf_load(struct cli *c, const char *path, struct kvmini_error *e);

/* Make the kernel, initrd and disk paths of `c` absolute (from the current directory). 0 or
 * -ENOMEM. */
int vmconf_absolute(struct cli *c);

/* The configuration `c` as a jansson object (every key, in schema order; the caller owns the
 * reference), or NULL when out of memory. */
struct json_t;
struct json_t *vmconf_json(const struct cli *c);

/* The configuration `c` as a JSON object text (every key, in schema order), malloc'd; NULL
 * when out of memory. `pretty`: indented, with a final newline. */
char *vmconf_dump(const struct cli *c, int pretty);

#endif
