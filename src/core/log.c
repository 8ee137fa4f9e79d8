/*
 * log.c - leveled logging to stderr and a warn-once set.
 *
 * The warn-once set is a fixed open-addressing table of 64-bit key hashes:
 * when it fills up, warnings are simply printed again, which is harmless.
 */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/profile.h"

static enum ember_log_level current_level = EMBER_LOG_INFO;
static pthread_mutex_t once_lock = PTHREAD_MUTEX_INITIALIZER;
#define ONCE_SLOTS 4096
static uint64_t once_keys[ONCE_SLOTS];

void ember_log_set_level(enum ember_log_level level) { current_level = level; }
enum ember_log_level ember_log_get_level(void) { return current_level; }

static bool libbpf_log;
void ember_log_set_libbpf(bool on) { libbpf_log = on; }
bool ember_log_libbpf(void) { return libbpf_log || getenv("EMBER_LIBBPF_DEBUG"); }

static void vlog(enum ember_log_level level, const char *fmt, va_list ap)
{
	static const char *const prefix[] = {"error", "warning", "info", "debug"};

	if (level > current_level)
		return;
	flockfile(stderr);
	fprintf(stderr, "ember: %s: ", prefix[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

void ember_log(enum ember_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

/* Returns true if key was not in the set (and adds it). */
static bool once_insert(const char *key)
{
	uint64_t h = ember_hash64(key, strlen(key), 0x6f6e6365) | 1; /* 0 marks empty */
	bool fresh = true;

	pthread_mutex_lock(&once_lock);
	for (unsigned i = 0; i < ONCE_SLOTS; i++) {
		uint64_t *slot = &once_keys[(h + i) & (ONCE_SLOTS - 1)];
		if (*slot == h) {
			fresh = false;
			break;
		}
		if (*slot == 0) {
			*slot = h;
			break;
		}
	}
	pthread_mutex_unlock(&once_lock);
	return fresh;
}

bool ember_warn_once(const char *key, const char *fmt, ...)
{
	va_list ap;

	if (!once_insert(key))
		return false;
	va_start(ap, fmt);
	vlog(EMBER_LOG_WARN, fmt, ap);
	va_end(ap);
	return true;
}
