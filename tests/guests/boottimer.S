/* boottimer: what the guest init does first: write 123 to the boot timer at 0xd1000000,
 * then (a second, ignored write of 123 later) reset through the i8042. */
#include "pvh.inc"
	.globl _start
_start:
	movl $0xd1000000, %ebx
	movb $124, (%ebx)		/* not the magic value: ignored */
	movb $123, 4(%ebx)		/* not offset 0: ignored */
	movb $123, (%ebx)		/* recorded */
	movl $123, (%ebx)		/* a second write: ignored */
	i8042_reset
