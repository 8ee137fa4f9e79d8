// fp_chain.cpp - a known call chain for the end-to-end tests.
//
// main -> chain_a -> chain_b -> hot_leaf, each kept out of line, so a
// profile must show exactly that chain.  Built with -O2
// -fno-omit-frame-pointer (frame-pointer unwinding) and, for the DWARF
// unwinder, with -fomit-frame-pointer.  Usage: fp_chain SECONDS
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace work {

__attribute__((noinline)) double hot_leaf(double x)
{
	for (int i = 0; i < 200000; i++)
		x = x * 1.0000001 + 0.5 / (x + 1.0);
	return x;
}

__attribute__((noinline)) double chain_b(double x)
{
	double r = hot_leaf(x);
	asm volatile("" ::: "memory");
	return r + 1;
}

__attribute__((noinline)) double chain_a(double x)
{
	double r = chain_b(x);
	asm volatile("" ::: "memory");
	return r + 1;
}

} // namespace work

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	auto start = std::chrono::steady_clock::now();
	double acc = 1;

	while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
	       seconds)
		acc = work::chain_a(acc);
	printf("%f\n", acc);
	return 0;
}
