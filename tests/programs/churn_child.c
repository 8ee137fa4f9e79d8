/*
 * churn_child.c - the cheapest process there is: static, no libc, exits 0 at once.
 * Built with -static -nostdlib; tests/programs/churn.c execs it by the thousand.
 */
void _start(void)
{
	__asm__ volatile("mov $60, %eax\n\t" /* SYS_exit */
			 "xor %edi, %edi\n\t"
			 "syscall");
}
