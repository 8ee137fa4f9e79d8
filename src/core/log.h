/*
 * log.h - messages to stderr with a level, and "warn once" per key.
 *
 * Ember runs for days as a daemon: a malformed binary or a vanished process
 * must be reported, but only once, or the log drowns.  ember_warn_once()
 * remembers the keys it has seen (e.g. a file path) in a small hash set.
 */
#ifndef EMBER_CORE_LOG_H
#define EMBER_CORE_LOG_H

#include <stdbool.h>

enum ember_log_level { EMBER_LOG_ERROR, EMBER_LOG_WARN, EMBER_LOG_INFO, EMBER_LOG_DEBUG };

void ember_log_set_level(enum ember_log_level level);
enum ember_log_level ember_log_get_level(void);
void ember_log(enum ember_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * libbpf's own debug log (`ember -v -v`, or EMBER_LIBBPF_DEBUG set in the
 * environment): the BPF loaders pass libbpf's LIBBPF_DEBUG lines through
 * when this says so.
 */
void ember_log_set_libbpf(bool on);
bool ember_log_libbpf(void);

/* Log a warning unless one with the same key was logged before.  Returns true if logged. */
bool ember_warn_once(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ember_err(...) ember_log(EMBER_LOG_ERROR, __VA_ARGS__)
#define ember_warn(...) ember_log(EMBER_LOG_WARN, __VA_ARGS__)
#define ember_info(...) ember_log(EMBER_LOG_INFO, __VA_ARGS__)
#define ember_debug(...) ember_log(EMBER_LOG_DEBUG, __VA_ARGS__)

#endif
