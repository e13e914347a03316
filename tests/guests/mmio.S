/* mmio: loads and stores of every width to a registered MMIO device at 0xd0000000, and a load
 * and a store to unclaimed MMIO (0xe0000000); the unclaimed load's value is reported back. */
#include "pvh.inc"
	.globl _start
_start:
	movl $0xd0000000, %ebx
	movb $0x11, (%ebx)		/* write, offset 0, 1 byte */
	movw $0x2233, 2(%ebx)		/* write, offset 2, 2 bytes */
	movl $0x44556677, 4(%ebx)	/* write, offset 4, 4 bytes */
	movl 8(%ebx), %eax		/* read, offset 8, 4 bytes: the device answers */
	movl %eax, 12(%ebx)		/* echo it: write, offset 12 */
	movl $0xe0000000, %ecx
	movl (%ecx), %eax		/* unclaimed read: all ones */
	movl %eax, 16(%ebx)		/* report it: write, offset 16 */
	movl $0x12345678, (%ecx)	/* unclaimed write: dropped and counted */
	i8042_reset
