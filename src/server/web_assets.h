/*
 * web_assets.h - the UI's static files, compiled into the binary.
 *
 * build/gen/web_assets.c is generated from web/ by scripts/embed-web.sh.
 */
#ifndef EMBER_SERVER_WEB_ASSETS_H
#define EMBER_SERVER_WEB_ASSETS_H

#include <stddef.h>

struct ember_web_asset {
	const char *path; /* "/index.html" */
	const char *mime;
	const unsigned char *data;
	size_t size;
};

extern const struct ember_web_asset ember_web_assets[]; /* ends with path == NULL */

#endif
