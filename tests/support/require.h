/* require: a unit test that cannot run on this host skips, except under `make check`. */
#ifndef KVMINI_TEST_REQUIRE_H
#define KVMINI_TEST_REQUIRE_H

#include <stdlib.h>

/*
 * The host lacks what the test needs (`why`: /dev/net/tun, a capability, a mount namespace...).
 * cmocka counts a skip as a pass, so with KVMINI_REQUIRE_HOST set (`make check` sets it) this
 * fails the test instead; otherwise it says why and skips. Include after <cmocka.h>.
 */
#define REQUIRE_OR_SKIP(why)                                                                       \
	do {                                                                                       \
		if (getenv("KVMINI_REQUIRE_HOST"))                                                 \
			fail_msg(                                                                  \
				"this host lacks what the test needs: %s (KVMINI_REQUIRE_HOST is " \
				"set, as by make check)",                                          \
				(why));                                                            \
		print_message("skipped: %s\n", (why));                                             \
		skip();                                                                            \
	} while (0)

#endif
