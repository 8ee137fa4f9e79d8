/*
 * spans_junk.c - hostile traffic for the span tracker (a test tool).
 *
 *   spans_junk PORT
 *
 * Starts a loopback TCP server on PORT that answers every HTTP request it
 * can frame ("\r\n\r\n" ends one) with a 200, and swallows anything else;
 * then, as a client, sends:
 *   garbage     200 connections of random bytes (no protocol: the kernel
 *               must drop them and count them as unknown);
 *   dribble     50 HTTP requests whose request line goes in one write and
 *               the rest one byte per write (the first write must carry
 *               enough to recognize the protocol);
 *   pipelined   one write of 20 requests (they and their answers fit in the 1 KiB payload head),
 *               answered in one write;
 *   poisoned    an HTTP request followed by 256 KiB of random bytes;
 *   oversized   a request with a 1 MiB header, a Redis bulk string and a
 *               MySQL packet announcing 16 MiB, a PostgreSQL message
 *               announcing 1 GiB, each then cut off;
 *   idle        500 connections that send half a request and stay open
 *               until the end.
 * Prints "http_ok N" (requests answered with 200 as the client counted
 * them) and "garbage_conns N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loopback.h"

static int port;

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[65536];
	char pending[8] = "";
	ssize_t n;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		/* count request ends, also across reads */
		int ends = 0;
		for (ssize_t i = 0; i < n; i++) {
			memmove(pending, pending + 1, 3);
			pending[3] = buf[i];
			if (memcmp(pending, "\r\n\r\n", 4) == 0)
				ends++;
		}
		if (ends) {
			char *out = malloc(sizeof(ok) * (size_t)ends);
			size_t len = 0;
			for (int i = 0; i < ends; i++) {
				memcpy(out + len, ok, sizeof(ok) - 1);
				len += sizeof(ok) - 1;
			}
			if (write(fd, out, len) < 0) {
				free(out);
				break;
			}
			free(out);
		}
	}
	close(fd);
	return NULL;
}

/* Read until `want` 200 answers have come (or the peer closed); returns them. */
static int read_oks(int fd, int want)
{
	char buf[65536], tail[16] = "";
	int got = 0;

	while (got < want) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			memmove(tail, tail + 1, 1);
			tail[1] = buf[i];
			if (tail[0] == 'o' && tail[1] == 'k')
				got++;
		}
	}
	return got;
}

static void random_bytes(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(rand() & 0xff);
}

int main(int argc, char **argv)
{
	int ok = 0;
	static char big[1 << 20];

	if (argc != 2) {
		fprintf(stderr, "usage: spans_junk PORT\n");
		return 2;
	}
	port = atoi(argv[1]);
	loopback_server(port, serve);
	srand(42);

	/* garbage */
	for (int i = 0; i < 200; i++) {
		int fd = loopback_dial(port);
		char g[512];
		random_bytes(g, sizeof(g));
		g[0] = (char)0x80 | g[0]; /* never a protocol's first byte */
		for (int k = 0; k < 4; k++)
			put(fd, g, sizeof(g));
		close(fd);
	}
	/* dribble */
	for (int i = 0; i < 50; i++) {
		int fd = loopback_dial(port);
		static const char req[] = "GET /dribble/1 HTTP/1.1\r\nHost: x\r\n\r\n";
		put(fd, req, 25);
		for (size_t k = 25; k < sizeof(req) - 1; k++)
			put(fd, req + k, 1);
		ok += read_oks(fd, 1);
		close(fd);
	}
	/* pipelined */
	{
		int fd = loopback_dial(port);
		static const char req[] = "GET /pipelined HTTP/1.1\r\n\r\n";
		size_t len = 0;
		for (int i = 0; i < 20; i++) {
			memcpy(big + len, req, sizeof(req) - 1);
			len += sizeof(req) - 1;
		}
		put(fd, big, len);
		ok += read_oks(fd, 20);
		close(fd);
	}
	/* poisoned */
	{
		int fd = loopback_dial(port);
		put(fd, "GET /poisoned HTTP/1.1\r\n\r\n", 26);
		ok += read_oks(fd, 1);
		random_bytes(big, 256 * 1024);
		put(fd, big, 256 * 1024);
		close(fd);
	}
	/* oversized */
	{
		int fd = loopback_dial(port);
		memset(big, 'h', sizeof(big));
		memcpy(big, "GET /oversized HTTP/1.1\r\nX-Big: ", 32);
		memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
		put(fd, big, sizeof(big));
		ok += read_oks(fd, 1);
		close(fd);
		static const char *const heads[] = {
			"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10000000\r\nvvvv",
			"\xff\xff\xff\x00\x03SELECT 'xxxxxxxx",
			"Q\x40\x00\x00\x00SELECT 1",
		};
		for (int i = 0; i < 3; i++) {
			fd = loopback_dial(port);
			put(fd, heads[i], strlen(heads[i]));
			put(fd, big, 65536);
			close(fd);
		}
	}
	/* idle */
	static int idle[500];
	for (int i = 0; i < 500; i++) {
		idle[i] = loopback_dial(port);
		put(idle[i], "GET /idle HTTP/1.1\r\n", 20);
	}
	sleep(2);
	for (int i = 0; i < 500; i++)
		close(idle[i]);
	printf("http_ok %d\ngarbage_conns 200\n", ok);
	return 0;
}
