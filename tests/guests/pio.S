/* pio: port I/O of every width to a registered device (0x500..0x50f), string I/O, and a read
 * and a write of an unclaimed port (0x5f0), whose result it reports back to the device. */
#include "pvh.inc"
	.globl _start
_start:
	movw $0x500, %dx
	movb $0x11, %al
	outb %al, %dx			/* device: write, offset 0, 1 byte, 0x11 */
	movw $0x2233, %ax
	outw %ax, %dx			/* write, offset 0, 2 bytes, 0x2233 */
	movl $0x44556677, %eax
	outl %eax, %dx			/* write, offset 0, 4 bytes */
	movw $0x502, %dx
	inl %dx, %eax			/* read, offset 2, 4 bytes: the device answers */
	movw $0x504, %dx
	outl %eax, %dx			/* echo it: write, offset 4 */
	movw $0x5f0, %dx
	inl %dx, %eax			/* unclaimed read: all ones */
	movw $0x508, %dx
	outl %eax, %dx			/* report it: write, offset 8 */
	movw $0x5f0, %dx
	outb %al, %dx			/* unclaimed write: dropped and counted */
	movl $str, %esi
	movl $4, %ecx
	movw $0x50c, %dx
	rep outsb			/* string I/O: four 1-byte writes at offset 12 */
	i8042_reset
str:	.ascii "kvm!"
