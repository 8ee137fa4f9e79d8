/*
 * endpoint.c - HTTP path templates, SQL normalization, Redis command names.
 *
 * All three read untrusted bytes (whatever a traced connection carried) and
 * write into a caller's fixed buffer: every read is bounded by the input
 * length, every write by the output size (struct out drops what does not
 * fit).  The rules are described in endpoint.h.
 */
#include "spans/endpoint.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define SQL_MAX_INPUT 4096 /* bytes of a statement looked at */

struct out {
	char *buf;
	size_t size, len; /* len < size always: room for the NUL */
};

static void out_init(struct out *o, char *buf, size_t size)
{
	o->buf = buf;
	o->size = size;
	o->len = 0;
	if (size)
		buf[0] = '\0';
}

static void out_putc(struct out *o, char c)
{
	if (o->len + 1 < o->size) {
		o->buf[o->len++] = c;
		o->buf[o->len] = '\0';
	}
}

static void out_put(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out_putc(o, s[i]);
}

/* ---- text ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

size_t ember_text_sanitize(const char *in, size_t len, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0;

	if (!size)
		return 0;
	while (i < len) {
		size_t n = utf8_len(p + i, len - i);
		if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f)) {
			if (o + 1 >= size)
				break;
			out[o++] = p[i] == '\t' || p[i] == '\n' || p[i] == '\r' ? ' ' : '?';
			i++;
		} else if (n == 0) {
			if (o + 1 >= size)
				break;
			out[o++] = '?';
			i++;
		} else {
			if (o + n >= size)
				break;
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	return o;
}

char *ember_endpoint_label(const char *name, char *out, size_t size)
{
	size_t i = 0, k = sizeof(EMBER_ENDPOINT_LABEL) - 1;

	if (!size)
		return out;
	if (k >= size)
		k = size - 1;
	memcpy(out, EMBER_ENDPOINT_LABEL, k);
	for (; name[i] && k + 1 < size; i++)
		out[k++] = name[i] == ',' ? ';' : name[i];
	out[k] = '\0';
	return out;
}

/* ---- HTTP ---------------------------------------------------------------- */

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !is_hex(s[i]))
			return false;
	}
	return true;
}

/* Whether a path segment is an identifier of something rather than a name. */
static bool is_id_segment(const char *s, size_t n)
{
	size_t digits = 0, hex = 0, token = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		digits += is_digit(s[i]);
		hex += is_hex(s[i]);
		token += is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-' || s[i] == '_';
	}
	if (digits == n || is_uuid(s, n))
		return true;
	if (n >= 8 && hex == n && digits > 0)
		return true;
	return n >= 16 && token == n && digits > 0;
}

size_t ember_http_path_template(const char *target, size_t len, char *out, size_t size)
{
	struct out o;
	size_t i = 0;
	char seg[EMBER_ENDPOINT_MAX];

	out_init(&o, out, size);
	/* absolute form: scheme://authority/path */
	if ((len >= 7 && strncasecmp(target, "http://", 7) == 0) ||
	    (len >= 8 && strncasecmp(target, "https://", 8) == 0)) {
		i = target[4] == ':' ? 7 : 8;
		while (i < len && target[i] != '/' && target[i] != '?' && target[i] != '#')
			i++;
		if (i >= len || target[i] != '/') {
			out_putc(&o, '/');
			return o.len;
		}
	}
	size_t end = i;
	while (end < len && target[end] != '?' && target[end] != '#')
		end++;
	while (i < end) {
		size_t start = i;
		while (i < end && target[i] != '/')
			i++;
		if (is_id_segment(target + start, i - start)) {
			out_put(&o, "{id}", 4);
		} else {
			size_t n = ember_text_sanitize(target + start, i - start, seg, sizeof(seg));
			out_put(&o, seg, n);
		}
		if (i < end) {
			out_putc(&o, '/');
			i++;
		}
	}
	if (o.len == 0)
		out_putc(&o, '/');
	return o.len;
}

size_t ember_endpoint_http(const char *method, size_t mlen, const char *target, size_t tlen,
			   char *out, size_t size)
{
	struct out o;
	char path[EMBER_ENDPOINT_MAX];
	char m[32];
	size_t n = ember_text_sanitize(method, mlen, m, sizeof(m));

	out_init(&o, out, size);
	out_put(&o, m, n);
	out_putc(&o, ' ');
	n = ember_http_path_template(target, tlen, path, sizeof(path));
	out_put(&o, path, n);
	return o.len;
}

/* ---- SQL ----------------------------------------------------------------- */

static bool ident_start(unsigned char c)
{
	return is_alpha((char)c) || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c)
{
	return ident_start(c) || is_digit((char)c) || c == '$';
}

static bool space_char(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* End of a quoted run starting at s[i] == q; backslash escapes when bs. */
static size_t skip_quoted(const char *s, size_t n, size_t i, char q, bool bs)
{
	for (i++; i < n; i++) {
		if (bs && s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == q) {
			if (i + 1 < n && s[i + 1] == q) {
				i++;
				continue;
			}
			return i + 1;
		}
	}
	return n;
}

/* A PostgreSQL dollar-quote tag at s[i] ("$$" or "$tag$"): its length, or 0. */
static size_t dollar_tag(const char *s, size_t n, size_t i)
{
	size_t j = i + 1;

	if (j < n && !ident_start((unsigned char)s[j]) && s[j] != '$')
		return 0;
	while (j < n && s[j] != '$') {
		if (!ident_char((unsigned char)s[j]) || s[j] == '$')
			return 0;
		j++;
	}
	return j < n ? j - i + 1 : 0;
}

/* End of a number starting at s[i] (a digit, or '.' then a digit). */
static size_t skip_number(const char *s, size_t n, size_t i)
{
	if (s[i] == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
		i += 2;
		while (i < n && is_hex(s[i]))
			i++;
		return i;
	}
	while (i < n && is_digit(s[i]))
		i++;
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;
		if (j < n && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j < n && is_digit(s[j])) {
			while (j < n && is_digit(s[j]))
				j++;
			i = j;
		}
	}
	return i;
}

/* The first pass: literals -> '?', comments out, blanks collapsed. */
static void sql_literals(const char *s, size_t n, enum ember_sql_dialect d, struct out *o)
{
	bool mysql = d == EMBER_SQL_MYSQL, space = false;
	size_t i = 0;

	while (i < n) {
		char c = s[i];
		if (space_char(c)) {
			space = true;
			i++;
			continue;
		}
		if (c == '/' && i + 1 < n && s[i + 1] == '*') {
			const char *end = memmem(s + i + 2, n - i - 2, "*/", 2);
			i = end ? (size_t)(end - s) + 2 : n;
			space = true;
			continue;
		}
		if ((c == '-' && i + 1 < n && s[i + 1] == '-' &&
		     (!mysql || i + 2 >= n || space_char(s[i + 2]))) ||
		    (c == '#' && mysql)) {
			while (i < n && s[i] != '\n')
				i++;
			space = true;
			continue;
		}
		if (space && o->len > 0)
			out_putc(o, ' ');
		space = false;
		if (c == '\'' || (c == '"' && mysql)) {
			i = skip_quoted(s, n, i, c, mysql);
			out_putc(o, '?');
		} else if (c == '"' || c == '`') {
			size_t end = skip_quoted(s, n, i, c, false);
			out_put(o, s + i, end - i);
			i = end;
		} else if (c == '$' && !mysql && dollar_tag(s, n, i)) {
			size_t tag = dollar_tag(s, n, i);
			const char *end = memmem(s + i + tag, n - i - tag, s + i, tag);
			i = end ? (size_t)(end - s) + tag : n;
			out_putc(o, '?');
		} else if (is_digit(c) || (c == '.' && i + 1 < n && is_digit(s[i + 1]))) {
			i = skip_number(s, n, i);
			out_putc(o, '?');
		} else if (ident_start((unsigned char)c)) {
			size_t start = i;
			while (i < n && ident_char((unsigned char)s[i]))
				i++;
			/* E'..', N'..', X'..', B'..': a literal with a prefix */
			if (i - start == 1 && i < n && s[i] == '\'' && strchr("EeNnXxBb", c)) {
				i = skip_quoted(s, n, i, '\'', mysql || c == 'E' || c == 'e');
				out_putc(o, '?');
			} else {
				out_put(o, s + start, i - start);
			}
		} else if (c == '$' && !mysql && i + 1 < n && is_digit(s[i + 1])) {
			size_t start = i++;
			while (i < n && is_digit(s[i]))
				i++;
			out_put(o, s + start, i - start); /* $1: a placeholder */
		} else {
			out_putc(o, c);
			i++;
		}
	}
}

/* Whether s[i..] starts the whole word w (case-insensitive). */
static bool word_at(const char *s, size_t n, size_t i, const char *w)
{
	size_t wl = strlen(w);

	if (i + wl > n || strncasecmp(s + i, w, wl) != 0)
		return false;
	if (i > 0 && ident_char((unsigned char)s[i - 1]))
		return false;
	return i + wl == n || !ident_char((unsigned char)s[i + wl]);
}

/* End of the parenthesized group at s[i] == '(' (nesting and quotes respected), or 0. */
static size_t group_end(const char *s, size_t n, size_t i)
{
	int depth = 0;

	for (; i < n; i++) {
		if (s[i] == '\'' || s[i] == '"' || s[i] == '`') {
			i = skip_quoted(s, n, i, s[i], false) - 1;
		} else if (s[i] == '(') {
			depth++;
		} else if (s[i] == ')' && --depth == 0) {
			return i + 1;
		}
	}
	return 0;
}

/* Whether the group s[a..b) holds only '?', ',' and spaces, and one '?' at least. */
static bool only_placeholders(const char *s, size_t a, size_t b)
{
	bool any = false;

	for (size_t i = a + 1; i + 1 < b; i++) {
		if (s[i] == '?')
			any = true;
		else if (s[i] != ',' && s[i] != ' ')
			return false;
	}
	return any;
}

/* The second pass: IN lists and repeated VALUES groups collapsed. */
static void sql_collapse(const char *s, size_t n, struct out *o)
{
	size_t i = 0;

	while (i < n) {
		bool in = word_at(s, n, i, "IN"), values = !in && word_at(s, n, i, "VALUES");
		if (!in && !values) {
			out_putc(o, s[i++]);
			continue;
		}
		size_t kw = in ? 2 : 6, j = i + kw;
		out_put(o, s + i, kw);
		i = j;
		if (j < n && s[j] == ' ')
			j++;
		if (j >= n || s[j] != '(')
			continue;
		size_t end = group_end(s, n, j);
		if (!end)
			continue;
		out_put(o, s + i, j - i);
		if (in && only_placeholders(s, j, end)) {
			out_put(o, "(?)", 3);
			i = end;
			continue;
		}
		out_put(o, s + j, end - j);
		i = end;
		if (!values)
			continue;
		/* drop ", (same group)" repeats */
		for (;;) {
			size_t k = i;
			if (k < n && s[k] == ' ')
				k++;
			if (k >= n || s[k] != ',')
				break;
			k++;
			if (k < n && s[k] == ' ')
				k++;
			if (k + (end - j) > n || memcmp(s + k, s + j, end - j) != 0)
				break;
			i = k + (end - j);
		}
	}
}

size_t ember_sql_normalize(const char *sql, size_t len, enum ember_sql_dialect dialect, char *out,
			   size_t size)
{
	char first[SQL_MAX_INPUT + 1], second[SQL_MAX_INPUT + 1];
	struct out o1, o2;

	if (len > SQL_MAX_INPUT)
		len = SQL_MAX_INPUT;
	out_init(&o1, first, sizeof(first));
	sql_literals(sql, len, dialect, &o1);
	while (o1.len > 0 && (first[o1.len - 1] == ' ' || first[o1.len - 1] == ';'))
		first[--o1.len] = '\0';
	out_init(&o2, second, sizeof(second));
	sql_collapse(first, o1.len, &o2);
	return ember_text_sanitize(second, o2.len, out, size);
}

/* ---- Redis --------------------------------------------------------------- */

static const char *const container_commands[] = {
	"ACL",     "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG",  "FUNCTION", "LATENCY",
	"MEMORY",  "MODULE", "OBJECT",  "PUBSUB",  "SCRIPT", "SLOWLOG", "XGROUP",  "XINFO",
};

static void put_upper_word(struct out *o, const char *s, size_t n)
{
	if (n > 32)
		n = 32;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '-' && c != '.' && c != ':')
			c = '?';
		out_putc(o, c);
	}
}

size_t ember_endpoint_redis(const char *cmd, size_t clen, const char *arg2, size_t alen,
			    char *out, size_t size)
{
	struct out o;

	out_init(&o, out, size);
	put_upper_word(&o, cmd, clen);
	if (o.len == 0)
		out_putc(&o, '?');
	if (!arg2 || !alen)
		return o.len;
	for (size_t i = 0; i < sizeof(container_commands) / sizeof(container_commands[0]); i++) {
		if (strlen(container_commands[i]) == clen &&
		    strncasecmp(container_commands[i], cmd, clen) == 0) {
			out_putc(&o, ' ');
			put_upper_word(&o, arg2, alen);
			break;
		}
	}
	return o.len;
}
