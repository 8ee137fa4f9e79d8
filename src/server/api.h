/*
 * api.h - the JSON API behind /api/, independent of the HTTP library.
 *
 * server.c hands over the path and the decoded query parameters and sends
 * back whatever reply the API fills in.  Keeping libmicrohttpd out of this
 * layer lets the parameter parsing be tested on its own.
 */
#ifndef EMBER_SERVER_API_H
#define EMBER_SERVER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/server.h"
#include "store/store.h"

#define EMBER_API_MAX_PARAMS 32     /* more parameters than this: 400 */
#define EMBER_API_MAX_VALUE_LEN 256 /* longer values: 400 */
#define EMBER_API_MAX_VERSIONS 32   /* versions in one comma-separated list */
#define EMBER_API_MAX_ENDPOINT_LEN 1024 /* endpoint= values (SQL statements are long) */

struct ember_api_param {
	const char *key;
	const char *value; /* "" for "?key" without '=' */
};

struct ember_api_reply {
	unsigned int status;
	const char *content_type;
	const char *disposition; /* Content-Disposition header or NULL */
	char *body;              /* malloc'd, the caller frees */
	size_t len;
};

/* Decimal digits only (no sign, no spaces), value in [min, max]. */
bool ember_api_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

struct strbuf;
/* Reply with sb's contents (freed; a 500 if it ran out of memory). */
void ember_api_reply_sb(struct ember_api_reply *r, unsigned int status, const char *ctype,
			struct strbuf *sb);
/* Reply {"error": msg} with the given status. */
void ember_api_reply_error(struct ember_api_reply *r, unsigned int status, const char *msg);

/*
 * A parsed selection (target, service, version, pid, from, to, endpoint).  version
 * is a comma-separated list ("v1,v2" = either); its items end up in
 * versions[] / sel.versions.  The struct points into itself: do not copy it.
 */
struct ember_api_query {
	struct ember_selection sel;
	bool given; /* some selection parameter was present (even empty) */
	bool has_from, has_to;
	int64_t from_ms, to_ms;
	char service[EMBER_API_MAX_VALUE_LEN + 1];
	char version[EMBER_API_MAX_VALUE_LEN + 1]; /* the list, split in place */
	char endpoint[EMBER_API_MAX_ENDPOINT_LEN + 1];
	const char *versions[EMBER_API_MAX_VERSIONS];
};

/*
 * An API instance: the database path, the stats callbacks, and its own
 * read-only store connection (opened on first use, retried until it
 * opens).  One thread at a time may use an instance; the server makes one
 * per query thread.
 */
struct ember_api;

struct ember_api *ember_api_new(const struct ember_server_config *cfg);
void ember_api_free(struct ember_api *api);
/* The "server" object of /api/stats (the server's limits and counters). */
void ember_api_set_server_stats(struct ember_api *api,
				void (*fn)(struct strbuf *sb, void *arg), void *arg);

/*
 * Parse selection parameters; every parameter must be one.  Returns 0, or
 * -EINVAL with a message naming the parameter at fault.  Empty values mean
 * "any".
 */
int ember_api_parse_query(const struct ember_api_param *params, size_t n,
			  struct ember_api_query *q, char *err, size_t errlen);

/*
 * Parse the selection parameters spelled PREFIX + name ("a.from" for
 * prefix "a."); parameters without the prefix, or whose rest is not a
 * selection name, are ignored (the caller rejects unknown ones).  Same
 * errors as ember_api_parse_query, naming the full parameter.
 */
int ember_api_parse_selection(const struct ember_api_param *params, size_t n,
			      const char *prefix, struct ember_api_query *q, char *err,
			      size_t errlen);

/*
 * Reject parameters that are neither a selection parameter under one of
 * prefixes (NULL-terminated) nor one of extras (NULL-terminated, each at
 * most once, at most EMBER_API_MAX_VALUE_LEN bytes).  -EINVAL with a
 * message naming the parameter.
 */
int ember_api_check_params(const struct ember_api_param *params, size_t n,
			   const char *const *prefixes, const char *const *extras, char *err,
			   size_t errlen);
/* The value of an extra parameter, NULL when absent. */
const char *ember_api_param_value(const struct ember_api_param *params, size_t n,
				  const char *key);

/* Answer a GET of path (which starts with "/api/").  Always fills reply. */
void ember_api_handle(struct ember_api *api, const char *path,
		      const struct ember_api_param *params, size_t n,
		      struct ember_api_reply *reply);

#endif
