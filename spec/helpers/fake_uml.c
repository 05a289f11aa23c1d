/*
 * fake_uml.c - a stand-in for linux.uml that ends the way the real one
 * sometimes does: it says the system halted on its console (fd 4, as
 * con0=fd:3,fd:4 asks), then aborts.  The uml spec checks that vmlua
 * calls that a poweroff, as the guest did halt.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static const char halted[] = "reboot: System halted\r\n";
	(void)argc;
	(void)argv;
	if (write(4, halted, strlen(halted)) < 0)
		return 2;
	abort();
}
