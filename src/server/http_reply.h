/*
 * http_reply.h - one HTTP response: built on any thread, sent by the
 * server's event thread.
 *
 * A query thread fills a reply and compresses it (the costly part: a 5 MiB
 * flame graph takes tens of milliseconds to gzip) so that the event thread
 * only hands the finished bytes to libmicrohttpd.  Every response carries
 * the same safety headers (no sniffing, a strict CSP, Vary on encoding).
 */
#ifndef EMBER_SERVER_HTTP_REPLY_H
#define EMBER_SERVER_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

struct http_reply {
	unsigned int status;
	const char *content_type;
	const char *disposition; /* Content-Disposition or NULL */
	const char *cache;       /* Cache-Control */
	const char *allow;       /* Allow (with 405) or NULL */
	const char *retry_after; /* Retry-After (with 503) or NULL */
	const void *body;        /* freed with the reply when `owned` */
	size_t len;
	bool owned;
	bool gzip; /* body is gzip'd: Content-Encoding: gzip */
};

/* A plain-text reply of a static string (405 replies get "Allow: GET, HEAD"). */
void http_reply_text(struct http_reply *r, unsigned int status, const char *text);

/*
 * Gzip the body in place when it is worth it: the client accepts gzip, the
 * type is textual and the body is 1 KiB..256 MiB.  Any thread; on failure
 * the body is left as it is.
 */
void http_reply_compress(struct http_reply *r, bool client_accepts_gzip);

/* Whether the request's Accept-Encoding allows gzip (event thread). */
bool http_accepts_gzip(struct MHD_Connection *c);

/*
 * Queue r on c (event thread).  The body passes to libmicrohttpd (or is
 * freed on failure); r no longer owns it.  MHD_NO makes MHD close the
 * connection.
 */
enum MHD_Result http_reply_queue(struct MHD_Connection *c, struct http_reply *r);

/* Free an owned body that was never queued. */
void http_reply_free(struct http_reply *r);

#endif
