/*
 * http_reply.c - building, compressing and queueing HTTP responses (see
 * http_reply.h).
 *
 * Large textual replies are gzip'd when the client accepts it: flame-graph
 * JSON shrinks about tenfold.  Level 1 (Z_BEST_SPEED): the size gained by
 * higher levels is small next to the time they cost per request.
 */
#include "server/http_reply.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define GZIP_MIN_SIZE 1024
#define GZIP_MAX_SIZE (256u << 20)

/* Served with every response: no external resources, no framing, no sniffing. */
#define CSP "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"

void http_reply_text(struct http_reply *r, unsigned int status, const char *text)
{
	*r = (struct http_reply){.status = status, .content_type = "text/plain; charset=utf-8",
				 .cache = "no-store", .body = text, .len = strlen(text)};
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		r->allow = "GET, HEAD";
}

bool http_accepts_gzip(struct MHD_Connection *c)
{
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_ACCEPT_ENCODING);
	const char *g = ae ? strstr(ae, "gzip") : NULL;

	return g && strncmp(g + 4, ";q=0", 4) != 0;
}

static bool compressible(const char *ctype)
{
	return strncmp(ctype, "text/", 5) == 0 || strncmp(ctype, "application/json", 16) == 0 ||
	       strncmp(ctype, "image/svg", 9) == 0;
}

/* gzip len bytes into a new malloc'd buffer.  Returns 0 or -1. */
static int gzip_bytes(const void *in, size_t len, char **out, size_t *out_len)
{
	z_stream zs;
	char *buf;
	size_t cap;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	cap = deflateBound(&zs, (uLong)len);
	buf = malloc(cap);
	if (!buf) {
		deflateEnd(&zs);
		return -1;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)buf;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&zs);
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return 0;
}

void http_reply_compress(struct http_reply *r, bool client_accepts_gzip)
{
	char *zbuf = NULL;
	size_t zlen = 0;

	if (r->gzip || !client_accepts_gzip || !r->body || r->len < GZIP_MIN_SIZE ||
	    r->len > GZIP_MAX_SIZE || !compressible(r->content_type) ||
	    gzip_bytes(r->body, r->len, &zbuf, &zlen) != 0)
		return;
	http_reply_free(r);
	r->body = zbuf;
	r->len = zlen;
	r->owned = true;
	r->gzip = true;
}

void http_reply_free(struct http_reply *r)
{
	if (r->owned)
		free((void *)r->body);
	r->body = NULL;
	r->len = 0;
	r->owned = false;
}

enum MHD_Result http_reply_queue(struct MHD_Connection *c, struct http_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!r->body) {
		r->body = "";
		r->len = 0;
		r->owned = false;
	}
	resp = MHD_create_response_from_buffer(r->len, (void *)r->body,
					       r->owned ? MHD_RESPMEM_MUST_FREE
							: MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		http_reply_free(r);
		return MHD_NO;
	}
	r->owned = false; /* the response owns it now */
	r->body = NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, r->cache);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy", CSP);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	if (r->gzip)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	if (r->disposition)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, r->disposition);
	if (r->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->retry_after)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
	ret = MHD_queue_response(c, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}
