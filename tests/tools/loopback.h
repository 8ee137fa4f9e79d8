/*
 * loopback.h - the loopback TCP plumbing the span test tools share
 * (spans_junk.c, spans_fdreuse.c): a listening socket whose connections
 * are each served by a thread, a client connection, a write of everything.
 * A failure to listen or connect ends the tool (exit 1) with the reason.
 */
#ifndef EMBER_TESTS_LOOPBACK_H
#define EMBER_TESTS_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void *(*loopback_serve)(void *); /* gets the connection's fd as (void *)(intptr_t) */

static void *loopback_accept_loop(void *arg)
{
	int ls = (int)(intptr_t)arg;

	for (;;) {
		int fd = accept(ls, NULL, NULL);
		pthread_t t;
		if (fd < 0)
			continue;
		pthread_create(&t, NULL, loopback_serve, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
	return NULL;
}

/* Listen on 127.0.0.1:port; serve(fd) runs on a thread of its own for each connection. */
static void loopback_server(int port, void *(*serve)(void *))
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	pthread_t t;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1024)) {
		perror("bind");
		exit(1);
	}
	loopback_serve = serve;
	pthread_create(&t, NULL, loopback_accept_loop, (void *)(intptr_t)ls);
}

/* A connection to 127.0.0.1:port, Nagle off. */
static int loopback_dial(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Write all n bytes (stops early if the peer is gone). */
static void put(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);
		if (w <= 0)
			return;
		c += w;
		n -= (size_t)w;
	}
}

#endif
