/*
 * endpoint.h - the name a request is counted under, with bounded cardinality.
 *
 * A raw request (a URL, an SQL statement with its literals) would make
 * one series per user id or per query value.  These functions reduce it to
 * the operation:
 *
 *   HTTP    "GET /users/42/orders/9f1c...e2?page=3" -> "GET /users/{id}/orders/{id}":
 *           the query string and fragment are dropped, the scheme and host
 *           of an absolute URL too; a path segment becomes {id} when it is a
 *           number, a UUID, a hex id (8+ hex digits, one of them a digit) or
 *           a long token (16+ letters, digits, '-', '_' with a digit).
 *   SQL     literals become '?' (strings, numbers, hex, MySQL's "..."
 *           strings; PostgreSQL's "..." are identifiers and stay), comments
 *           go, runs of blanks become one space, "IN (?, ?, ?)" becomes
 *           "IN (?)" and "VALUES (?, ?), (?, ?)" becomes "VALUES (?, ?)".
 *           Placeholders ('?', '$1') stay.
 *   Redis   the command, upper case, with the subcommand of container
 *           commands ("CONFIG GET", "CLIENT SETNAME").
 *
 * Every output is NUL-terminated, valid UTF-8 without control characters
 * (other bytes become '?'), and cut at EMBER_ENDPOINT_MAX - 1 bytes.
 */
#ifndef EMBER_SPANS_ENDPOINT_H
#define EMBER_SPANS_ENDPOINT_H

#include <stddef.h>

#define EMBER_ENDPOINT_MAX 512 /* bytes of an endpoint name, NUL included */

/* "METHOD /template"; returns the length written. */
size_t ember_endpoint_http(const char *method, size_t mlen, const char *target, size_t tlen,
			   char *out, size_t size);

/* The path template of an HTTP request target (see above). */
size_t ember_http_path_template(const char *target, size_t len, char *out, size_t size);

enum ember_sql_dialect { EMBER_SQL_MYSQL, EMBER_SQL_PGSQL };

size_t ember_sql_normalize(const char *sql, size_t len, enum ember_sql_dialect dialect, char *out,
			   size_t size);

/* Redis command name from its first two arguments (arg2 may be NULL). */
size_t ember_endpoint_redis(const char *cmd, size_t clen, const char *arg2, size_t alen,
			    char *out, size_t size);

/*
 * CPU samples of a thread serving an endpoint belong to a target with the
 * label "endpoint=VALUE" (agent/collector.c); labels are "k=v,k=v", so
 * VALUE is the name with its commas turned into ';'.  Returns out.
 */
#define EMBER_ENDPOINT_LABEL "endpoint="
char *ember_endpoint_label(const char *name, char *out, size_t size);

/*
 * Copy len bytes as printable text: valid UTF-8 is kept, control bytes
 * become ' ' (tab, newline) or '?', invalid sequences '?'.  Cut at size - 1
 * on a character boundary.  Returns the length written.
 */
size_t ember_text_sanitize(const char *in, size_t len, char *out, size_t size);

#endif
