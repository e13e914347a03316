/* echo: read bytes from COM1 and write each back until it reads 'q', then reset. Exercises
 * the receive path (LSR data-ready polling) end to end. */
#include "pvh.inc"
	.globl _start
_start:
	puts msg
1:	movw $0x3fd, %dx		/* LSR */
	inb %dx, %al
	testb $0x01, %al		/* data ready? */
	jz 1b
	movw $0x3f8, %dx
	inb %dx, %al			/* RBR */
	cmpb $'q', %al
	je 2f
	outb %al, %dx
	jmp 1b
2:	i8042_reset
msg:	.asciz "echo ready\n"
