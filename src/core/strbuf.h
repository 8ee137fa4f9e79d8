/*
 * strbuf.h - a growable byte buffer, with helpers for writing JSON.
 *
 * Used to build HTTP responses, SQL blobs and file contents.  On allocation
 * failure the buffer remembers it (sb->oom) and further appends do nothing,
 * so callers check once at the end instead of after every append.
 */
#ifndef EMBER_CORE_STRBUF_H
#define EMBER_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *buf;
	size_t len, cap;
	bool oom;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
bool sb_reserve(struct strbuf *sb, size_t extra);
void sb_append(struct strbuf *sb, const void *data, size_t len);
void sb_puts(struct strbuf *sb, const char *s);
void sb_putc(struct strbuf *sb, char c);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Take ownership of the NUL-terminated contents; the strbuf is reset. */
char *sb_detach(struct strbuf *sb, size_t *len);

/* Append s as a JSON string literal (quotes included); NULL writes null. */
void sb_json_str(struct strbuf *sb, const char *s);

#endif
