// zoo_lib.cpp - a shared library built without frame pointers, for unwind_zoo.
#include <cstdint>

extern "C" __attribute__((noinline, visibility("default"))) uint64_t zoo_lib_work(uint64_t x,
										 uint64_t (*cb)(uint64_t))
{
	// calls back into the program, so stacks cross the library both ways
	for (int i = 0; i < 1000; i++)
		x = cb(x) ^ (x >> 3);
	asm volatile("" ::: "memory");
	return x + 1;
}
