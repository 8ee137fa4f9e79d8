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
 * fd number, as it must) and "close_range 0|1", then waits for a signal:
 * the agent names a process's spans at its next flush, while it lives.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "loopback.h"

#define REQUESTS 5

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

static int port;
static long answered; /* by the server, under lock */
static int closed;    /* connections the server closed, under lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

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
	pthread_mutex_lock(&lock);
	close(fd);
	closed++;
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* Wait until the server closed n connections: no fd number of its frees up later. */
static void wait_closed(int n)
{
	for (;;) {
		pthread_mutex_lock(&lock);
		int c = closed;
		pthread_mutex_unlock(&lock);
		if (c >= n)
			return;
		usleep(1000);
	}
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
	int ok = 0, same = 0;
	bool have_close_range = true;

	if (argc != 4) {
		fprintf(stderr, "usage: spans_fdreuse PORT SCRATCH_FILE ROUNDS\n");
		return 2;
	}
	port = atoi(argv[1]);
	int rounds = atoi(argv[3]);
	loopback_server(port, serve);

	for (int r = 0; r < rounds; r++) {
		wait_closed(r); /* so the lowest free fd after close_range is the socket's */
		int fd = loopback_dial(port), file;
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
	fflush(stdout);
	pause();
	return 0;
}
