/*
 * apiutil.h - calling the JSON API from unit tests, without HTTP.
 *
 * Included after testutil.h by the tests of src/server/api.c's endpoints;
 * test_server.c covers the HTTP side.
 */
#ifndef EMBER_APIUTIL_H
#define EMBER_APIUTIL_H

#include "server/api.h"

/*
 * GET path?query through api into r; query is "k=v&k=v" (no escaping), up
 * to two parameters more than the API accepts (to test its limit).
 */
static inline void test_api_get(struct ember_api *api, const char *path, const char *query,
				struct ember_api_reply *r)
{
	struct ember_api_param params[EMBER_API_MAX_PARAMS + 2];
	char buf[2048];
	size_t n = 0;
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", query ? query : "");
	for (char *kv = strtok_r(buf, "&", &save); kv && n < EMBER_API_MAX_PARAMS + 2;
	     kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (eq)
			*eq = '\0';
		params[n].key = kv;
		params[n++].value = eq ? eq + 1 : "";
	}
	ember_api_handle(api, path, params, n, r);
}

#endif
