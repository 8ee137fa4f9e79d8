// unwind_zoo.cpp - a program whose stacks exercise every way of unwinding.
//
// Built with -O2 -fomit-frame-pointer: no frame pointers anywhere, so only
// DWARF CFI can unwind it.  Threads run side by side, each with a known chain:
//   main thread  deep recursion, zoo_recurse_a/b alternating, DEPTH frames
//   "sort"       std::sort with a comparator (templates, libstdc++ inlined code)
//   "qsort"      libc qsort calling zoo_qsort_cmp (frames inside libc)
//   "shlib"      libzoo_lib.so (no frame pointers) calling back zoo_lib_callback
//   signals      an ITIMER_PROF handler, zoo_signal_handler, spinning a while
// Usage: unwind_zoo SECONDS [DEPTH] [solo]   ("solo": the recursion alone)
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <sys/time.h>
#include <string>
#include <vector>

extern "C" uint64_t zoo_lib_work(uint64_t x, uint64_t (*cb)(uint64_t));

static double g_seconds;
static volatile uint64_t g_sink;

static bool time_left(std::chrono::steady_clock::time_point start)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
	       g_seconds;
}

__attribute__((noinline)) static uint64_t zoo_spin(uint64_t x, int n)
{
	for (int i = 0; i < n; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	return x;
}

/* ---- deep recursion ---- */
extern "C" __attribute__((noinline)) uint64_t zoo_recurse_b(int depth, uint64_t x);

extern "C" __attribute__((noinline)) uint64_t zoo_recurse_a(int depth, uint64_t x)
{
	if (depth <= 0)
		return zoo_spin(x, 200000);
	uint64_t r = zoo_recurse_b(depth - 1, x + 1);
	asm volatile("" ::: "memory"); /* not a tail call */
	return r ^ x;
}

extern "C" __attribute__((noinline)) uint64_t zoo_recurse_b(int depth, uint64_t x)
{
	char pad[24]; /* a different frame size than zoo_recurse_a */
	pad[depth & 7] = (char)x;
	asm volatile("" : : "r"(pad) : "memory");
	uint64_t r = zoo_recurse_a(depth - 1, x * 3);
	asm volatile("" ::: "memory");
	return r + pad[(depth + 1) & 7];
}

/* ---- std::sort ---- */
struct Item {
	uint64_t key, payload[3];
};

__attribute__((noinline)) static void zoo_sort_round(std::vector<Item> &v, uint64_t seed)
{
	for (auto &it : v)
		it.key = seed = zoo_spin(seed, 3);
	std::sort(v.begin(), v.end(), [](const Item &a, const Item &b) {
		return zoo_spin(a.key, 20) < zoo_spin(b.key, 20);
	});
}

static void *zoo_sort_thread(void *)
{
	std::vector<Item> v(4096);
	auto start = std::chrono::steady_clock::now();
	uint64_t seed = 1;
	while (time_left(start))
		zoo_sort_round(v, ++seed);
	return nullptr;
}

/* ---- qsort callback ---- */
extern "C" __attribute__((noinline)) int zoo_qsort_cmp(const void *a, const void *b)
{
	uint64_t x = zoo_spin(*(const uint64_t *)a, 30), y = zoo_spin(*(const uint64_t *)b, 30);
	return x < y ? -1 : x > y;
}

static void *zoo_qsort_thread(void *)
{
	std::vector<uint64_t> v(4096);
	auto start = std::chrono::steady_clock::now();
	uint64_t seed = 7;
	while (time_left(start)) {
		for (auto &x : v)
			x = seed = zoo_spin(seed, 2);
		qsort(v.data(), v.size(), sizeof(uint64_t), zoo_qsort_cmp);
	}
	return nullptr;
}

/* ---- shared library without frame pointers ---- */
extern "C" __attribute__((noinline)) uint64_t zoo_lib_callback(uint64_t x)
{
	uint64_t r = zoo_spin(x, 300);
	asm volatile("" ::: "memory"); /* not a tail call: keep this frame */
	return r + 1;
}

static void *zoo_shlib_thread(void *)
{
	auto start = std::chrono::steady_clock::now();
	uint64_t x = 3;
	while (time_left(start))
		x = zoo_lib_work(x, zoo_lib_callback);
	g_sink = x;
	return nullptr;
}

/* ---- signal handler ---- */
extern "C" __attribute__((noinline)) void zoo_signal_handler(int)
{
	g_sink = zoo_spin(g_sink, 300000);
}

int main(int argc, char **argv)
{
	g_seconds = argc > 1 ? atof(argv[1]) : 5;
	int depth = argc > 2 ? atoi(argv[2]) : 150;
	bool solo = argc > 3 && std::string(argv[3]) == "solo";
	pthread_t threads[3];
	int n_threads = 0;

	if (!solo) {
		pthread_create(&threads[n_threads++], nullptr, zoo_sort_thread, nullptr);
		pthread_create(&threads[n_threads++], nullptr, zoo_qsort_thread, nullptr);
		pthread_create(&threads[n_threads++], nullptr, zoo_shlib_thread, nullptr);
		struct sigaction sa = {};
		sa.sa_handler = zoo_signal_handler;
		sigaction(SIGPROF, &sa, nullptr);
		struct itimerval it = {{0, 50000}, {0, 50000}}; /* every 50 ms of CPU */
		setitimer(ITIMER_PROF, &it, nullptr);
	}

	auto start = std::chrono::steady_clock::now();
	uint64_t x = 0;
	while (time_left(start))
		x += zoo_recurse_a(depth, x);
	struct itimerval off = {};
	setitimer(ITIMER_PROF, &off, nullptr);
	for (int i = 0; i < n_threads; i++)
		pthread_join(threads[i], nullptr);
	printf("%llu\n", (unsigned long long)(x ^ g_sink));
	return 0;
}
