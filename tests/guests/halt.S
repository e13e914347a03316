/* halt: print "halted" and stop with interrupts off; only the VMM can end this VM. */
#include "pvh.inc"
	.globl _start
_start:
	puts msg
	cli
1:	hlt
	jmp 1b
msg:	.asciz "halted\n"
