// tests/nested/uart-ier-poke.c: make L2's console transmitter wait for an interrupt that never
// comes, as a lost UART or IOAPIC interrupt would (watchdog-test.sh, stuck-console-kicked).
//
//   uart-ier-poke [COUNT]
//
// Writes "receive interrupt only" into COM1's interrupt enable register COUNT times (default
// 2000), 100 us apart, behind the 8250 driver's back. One that lands while the driver waits
// for the THRE interrupt leaves it waiting: its cached IER still has THRI, the UART's has not.
// Run it while the console prints. Needs root (ioperm). Exit status 1 when ioperm fails.
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>
#include <unistd.h>

#define COM1_IER 0x3f9
#define IER_RDI	 0x01

int main(int argc, char **argv)
{
	long count = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;

	if (ioperm(COM1_IER, 1, 1) < 0) {
		perror("uart-ier-poke: ioperm");
		return 1;
	}
	for (long i = 0; i < count; i++) {
		outb(IER_RDI, COM1_IER);
		usleep(100);
	}
	return 0;
}
