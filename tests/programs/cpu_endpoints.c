/*
 * cpu_endpoints.c - an HTTP/1.1 server with a light and a CPU-heavy endpoint.
 *
 *   cpu_endpoints PORT
 *
 * One thread per connection, blocking reads, keep-alive (HTTP/1.1, or 1.0
 * asking for it): GET /heavy/N
 * spends ~20 ms of CPU in heavy_work() before answering, GET /light/N
 * answers at once.  The per-endpoint CPU test checks that heavy_work's
 * samples carry the heavy endpoint and never the light one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t sink;

__attribute__((noinline)) static uint64_t heavy_work(void)
{
	struct timespec t0, t;
	uint64_t x = 88172645463325252ull;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	do {
		for (int i = 0; i < 100000; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 20000000L);
	return x;
}

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192];
	size_t have = 0;

	for (;;) {
		char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
		if (!end) {
			if (have == sizeof(buf))
				break;
			ssize_t n = read(fd, buf + have, sizeof(buf) - have);
			if (n <= 0)
				break;
			have += (size_t)n;
			continue;
		}
		const char *body = "light\n";
		if (strncmp(buf, "GET /heavy/", 11) == 0) {
			sink += heavy_work();
			body = "heavy\n";
		}
		/* HTTP/1.0 closes unless asked to keep the connection */
		*end = '\0';
		bool close_after = strstr(buf, "HTTP/1.0") && !strcasestr(buf, "keep-alive");
		char resp[256];
		int len = snprintf(resp, sizeof(resp),
				   "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n%s",
				   strlen(body), close_after ? "close" : "keep-alive", body);
		if (write(fd, resp, (size_t)len) != len || close_after)
			break;
		size_t used = (size_t)(end + 4 - buf);
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (argc != 2)
		return 2;
	a.sin_port = htons((uint16_t)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 128)) {
		perror("cpu_endpoints: bind");
		return 1;
	}
	printf("listening %s\n", argv[1]);
	fflush(stdout);
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		pthread_t t;
		if (fd < 0)
			continue;
		pthread_create(&t, NULL, serve, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}
