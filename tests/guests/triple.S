/* triple: load an empty IDT and execute an undefined opcode: #UD, then #GP, then #DF cannot
 * be delivered, so the CPU shuts down (a triple fault); kvmini must report a guest crash.
 * (ud2 rather than int3: software interrupts are not emulated by every software KVM.) */
#include "pvh.inc"
	.globl _start
_start:
	puts msg
	lidt idt
	ud2
1:	hlt
	jmp 1b
	.balign 8
idt:	.word 0
	.long 0
msg:	.asciz "faulting\n"
