/*
 * spans_fdreuse.c - a traced socket's fd number turned into a file behind
 * the span hooks' back (a test tool).
 *
 *   spans_fdreuse PORT SCRATCH_FILE ROUNDS
 *
 * Starts a loopback HTTP server on PORT that answers every request it can
 * frame ("\r\n\r\n" ends one) with a 200 and counts them; then, as a
 * client, ROUNDS times: connects, sends REQUESTS keep-alive requests
 * (GET /real/N) one at a time and reads their answers, so the connection
 * is traced and its kernel state knows the socket's struct file; then
 * makes the same fd number name SCRATCH_FILE without a close(2) the hooks
 * see (close_range(2) and open(2) in even rounds, so the freed struct file
 * may well be reused at the same address; dup2(2) onto it in odd rounds),
 * writes an HTTP request (GET /fake/N) to the file and reads an HTTP 500
 * answer back from it.  Those file bytes must not become spans.
 *
 * Prints "client_ok N" (answers the client read), "server_answered N" (the
 * server's own count), "fd_same N" (rounds where the file got the socket's
 * fd number, as it must) and "close_range 0|1".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define REQUESTS 5

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

static int port;
static long answered; /* by the server, under lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

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

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096], tail[4] = "";
	ssize_t n;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			memmove(tail, tail + 1, 3);
			tail[3] = buf[i];
			if (memcmp(tail, "\r\n\r\n", 4) == 0) {
				put(fd, ok, sizeof(ok) - 1);
				pthread_mutex_lock(&lock);
				answered++;
				pthread_mutex_unlock(&lock);
			}
		}
	}
	close(fd);
	return NULL;
}

static void *accept_loop(void *arg)
{
	int ls = (int)(intptr_t)arg;

	for (;;) {
		int fd = accept(ls, NULL, NULL);
		pthread_t t;
		if (fd < 0)
			continue;
		pthread_create(&t, NULL, serve, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
	return NULL;
}

static int dial(void)
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

/* One answer ("ok" ends it); 1 if it came. */
static int read_ok(int fd)
{
	char buf[256], last = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return 0;
		for (ssize_t i = 0; i < n; i++) {
			if (last == 'o' && buf[i] == 'k')
				return 1;
			last = buf[i];
		}
	}
}

/* Request and answer through fd, now a file: what a traced socket would carry. */
static void file_traffic(int fd, int round)
{
	char req[128], buf[256];
	static const char answer[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
	int n = snprintf(req, sizeof(req), "GET /fake/%d HTTP/1.1\r\nHost: x\r\n\r\n", round);

	if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET) < 0)
		return;
	put(fd, req, (size_t)n);
	put(fd, answer, sizeof(answer) - 1);
	if (lseek(fd, n, SEEK_SET) < 0 || read(fd, buf, sizeof(buf)) < 0)
		perror("read");
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1, ok = 0, same = 0;
	bool have_close_range = true;
	pthread_t t;

	if (argc != 4) {
		fprintf(stderr, "usage: spans_fdreuse PORT SCRATCH_FILE ROUNDS\n");
		return 2;
	}
	port = atoi(argv[1]);
	int rounds = atoi(argv[3]);
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 128)) {
		perror("bind");
		return 1;
	}
	pthread_create(&t, NULL, accept_loop, (void *)(intptr_t)ls);

	for (int r = 0; r < rounds; r++) {
		int fd = dial(), file;
		for (int i = 0; i < REQUESTS; i++) {
			char req[96];
			int n = snprintf(req, sizeof(req), "GET /real/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
			put(fd, req, (size_t)n);
			ok += read_ok(fd);
		}
		if (r % 2 == 0 && have_close_range) {
			if (syscall(SYS_close_range, fd, fd, 0)) {
				if (errno != ENOSYS) {
					perror("close_range");
					return 1;
				}
				have_close_range = false;
				close(fd);
				continue;
			}
			file = open(argv[2], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
			if (file < 0) {
				perror(argv[2]);
				return 1;
			}
			same += file == fd;
			file_traffic(file, r);
			close(file);
		} else {
			file = open(argv[2], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
			if (file < 0 || dup2(file, fd) != fd) {
				perror("dup2");
				return 1;
			}
			same++;
			file_traffic(fd, r);
			close(file);
			close(fd);
		}
	}
	/* the server has answered every request the client read */
	pthread_mutex_lock(&lock);
	long served = answered;
	pthread_mutex_unlock(&lock);
	printf("client_ok %d\nserver_answered %ld\nfd_same %d\nclose_range %d\n", ok, served, same,
	       have_close_range ? 1 : 0);
	return 0;
}
