// versioned.cpp - one service in two versions, for the diff end-to-end test.
//
// Built twice by build.sh, with -DVERSION=1 and -DVERSION=2, into
// v1/versioned and v2/versioned: the same executable name (so the same
// service), different code (so different build-ids, so different default
// versions).  Each request parses, computes and renders; version 2 renders
// four times as long, so render_page's share grows from 0.2 to 0.5 and the
// others' shrink.
//
// It starts with two short bursts of work 1.2 s apart, then a pause: the
// profiler loads the unwind tables of libraries mapped after exec (libc)
// when a sample asks for them, at most once a second per process, so the
// second burst gets them loaded before the measured work starts and the
// measured stacks are whole from their first sample.
//
//   versioned SECONDS
#include <chrono>
#include <cstdlib>
#include <thread>

#ifndef VERSION
#define VERSION 1
#endif

static volatile double sink;

// A macro, not a function: each function's time is its own self time (no
// shared callee, and no inline frame of one either).
#define SPIN(n, x)                                                                                 \
	for (long i = 0; i < (n); i++)                                                             \
		x = x * 1.0000001 + 0.5 / (x + 1.0);

__attribute__((noinline)) double parse_input(double x)
{
	SPIN(200000, x);
	return x;
}

__attribute__((noinline)) double compute_total(double x)
{
	SPIN(200000, x);
	return x;
}

__attribute__((noinline)) double render_page(double x)
{
	SPIN(VERSION == 2 ? 400000 : 100000, x);
	return x;
}

__attribute__((noinline)) double handle_request(double x)
{
	x = parse_input(x);
	x = compute_total(x);
	x = render_page(x);
	sink = x; // work after the last call: no tail call, handle_request stays on the stack
	return x;
}

__attribute__((noinline)) double warm_up(double x)
{
	for (int burst = 0; burst < 2; burst++) {
		auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
		while (std::chrono::steady_clock::now() < end)
			SPIN(10000, x);
		std::this_thread::sleep_for(std::chrono::milliseconds(burst ? 400 : 1200));
	}
	return x;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? std::atof(argv[1]) : 4.0;
	double x = warm_up(1.0);
	auto end = std::chrono::steady_clock::now() +
		   std::chrono::milliseconds((long)(seconds * 1000));

	while (std::chrono::steady_clock::now() < end)
		x = handle_request(x);
	sink = x;
	return 0;
}
