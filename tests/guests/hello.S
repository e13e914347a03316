/* hello: print a line on COM1, then reset through the i8042 (kvmini exits 0). */
#include "pvh.inc"
	.globl _start
_start:
	puts msg
	i8042_reset
msg:	.asciz "hello from a tiny guest\n"
