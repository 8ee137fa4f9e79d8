/*
 * net_pump.c - TCP traffic with known shapes, for the network metrics tests.
 *
 *   net_pump sink ADDR PORT              accept and discard everything; prints
 *                                        "listening PORT" (PORT 0 picks one)
 *   net_pump send ADDR PORT SECONDS [RATE]
 *                                        one connection writing 64 KiB chunks
 *                                        (RATE bytes/s: 16 KiB every 1/(RATE/16K)
 *                                        s instead, so no queue builds up);
 *                                        prints "local PORT" once connected and
 *                                        "sent BYTES" at the end, once every
 *                                        byte is acknowledged (30 s at most)
 *   net_pump refused ADDR PORT           a connect that must be refused; prints
 *                                        "refused" when it was
 *   net_pump abort-server ADDR PORT      accept one connection, wait for data,
 *                                        close it unread (the kernel resets it)
 *   net_pump abort-client ADDR PORT      connect, send 100 bytes, read until the
 *                                        reset; prints "reset" when it came
 *   net_pump many ADDR PORT N HOLD_MS    open N connections, one byte each, hold
 *                                        them HOLD_MS, close; prints "opened N"
 *   net_pump fanout ADDR PORTS BYTES [HOLD_MS]
 *                                        one connection to each port of the
 *                                        comma-separated list, BYTES each, all
 *                                        closed after HOLD_MS
 *
 * The tests compare what Ember reports with what these programs observed
 * themselves (and with the kernel's counters), so every mode prints what
 * it saw.  Errors go to stderr with the address at fault; exit 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr_of(const char *host, const char *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "net_pump: bad IPv4 address %s\n", host);
		exit(2);
	}
	return a;
}

static int listen_on(const char *host, const char *port)
{
	struct sockaddr_in a = addr_of(host, port);
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4096)) {
		fprintf(stderr, "net_pump: cannot listen on %s:%s: %s\n", host, port, strerror(errno));
		exit(1);
	}
	getsockname(fd, (struct sockaddr *)&a, &len);
	printf("listening %u\n", ntohs(a.sin_port));
	fflush(stdout);
	return fd;
}

static int connect_to(const char *host, const char *port, int *err)
{
	struct sockaddr_in a = addr_of(host, port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	*err = 0;
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		*err = errno;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static __attribute__((noreturn)) void sink(const char *host, const char *port)
{
	int lfd = listen_on(host, port), ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[256];
	static char buf[1 << 16];

	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c = accept(lfd, NULL, NULL);
				if (c < 0)
					continue;
				ev = (struct epoll_event){.events = EPOLLIN, .data.fd = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r <= 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
}

static int send_for(const char *host, const char *port, double seconds, double rate)
{
	static char buf[1 << 16];
	struct sockaddr_in local;
	socklen_t len = sizeof(local);
	unsigned long long sent = 0;
	int err, fd = connect_to(host, port, &err);

	if (fd < 0) {
		fprintf(stderr, "net_pump: connect %s:%s: %s\n", host, port, strerror(err));
		return 1;
	}
	getsockname(fd, (struct sockaddr *)&local, &len);
	printf("local %u\n", ntohs(local.sin_port));
	fflush(stdout);
	memset(buf, 'x', sizeof(buf));
	size_t chunk = rate > 0 ? 16384 : sizeof(buf);
	double start = now_s();
	for (double end = start + seconds; now_s() < end;) {
		if (rate > 0) { /* paced: wait until this chunk is due */
			double due = start + (double)sent / rate;
			if (due > now_s())
				usleep((useconds_t)((due - now_s()) * 1e6));
		}
		ssize_t w = write(fd, buf, chunk);
		if (w < 0) {
			fprintf(stderr, "net_pump: write to %s:%s: %s\n", host, port, strerror(errno));
			return 1;
		}
		sent += (unsigned long long)w;
	}
	/* wait (30 s at most) until every byte is acknowledged: on a lossy link
	 * the retransmissions then happen while this process owns the socket,
	 * and the kernel's counters read after its exit hold them all */
	for (int i = 0, queued = 1; queued > 0 && i < 3000; i++) {
		if (ioctl(fd, SIOCOUTQ, &queued))
			break;
		if (queued > 0)
			usleep(10000);
	}
	printf("sent %llu\n", sent);
	fflush(stdout);
	close(fd);
	return 0;
}

static int refused(const char *host, const char *port)
{
	int err, fd = connect_to(host, port, &err);

	if (fd >= 0 || err != ECONNREFUSED) {
		fprintf(stderr, "net_pump: connect %s:%s was not refused (%s)\n", host, port,
			fd >= 0 ? "connected" : strerror(err));
		return 1;
	}
	printf("refused\n");
	return 0;
}

static int abort_server(const char *host, const char *port)
{
	int lfd = listen_on(host, port), c = accept(lfd, NULL, NULL);
	struct pollfd p = {.fd = c, .events = POLLIN};

	if (c < 0 || poll(&p, 1, 10000) != 1) {
		fprintf(stderr, "net_pump: no connection or data on %s:%s\n", host, port);
		return 1;
	}
	close(c); /* data unread: the kernel answers with a reset */
	close(lfd);
	printf("aborted\n");
	return 0;
}

static int abort_client(const char *host, const char *port)
{
	char buf[100];
	int err, fd = connect_to(host, port, &err);

	if (fd < 0) {
		fprintf(stderr, "net_pump: connect %s:%s: %s\n", host, port, strerror(err));
		return 1;
	}
	memset(buf, 'y', sizeof(buf));
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
		fprintf(stderr, "net_pump: write to %s:%s: %s\n", host, port, strerror(errno));
		return 1;
	}
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == ECONNRESET) {
			printf("reset\n");
			return 0;
		}
		if (r <= 0) {
			fprintf(stderr, "net_pump: %s:%s closed without a reset (%s)\n", host, port,
				r ? strerror(errno) : "end of file");
			return 1;
		}
	}
}

static int many(const char *host, const char *port, int n, int hold_ms)
{
	struct rlimit rl = {(rlim_t)n + 64, (rlim_t)n + 64};
	int *fds = calloc((size_t)n, sizeof(*fds)), opened = 0;

	setrlimit(RLIMIT_NOFILE, &rl);
	for (int i = 0; fds && i < n; i++) {
		int err;
		fds[i] = connect_to(host, port, &err);
		if (fds[i] < 0) {
			fprintf(stderr, "net_pump: connection %d to %s:%s: %s\n", i, host, port,
				strerror(err));
			break;
		}
		if (write(fds[i], "z", 1) == 1)
			opened++;
	}
	printf("opened %d\n", opened);
	fflush(stdout);
	usleep((useconds_t)hold_ms * 1000);
	for (int i = 0; i < opened; i++)
		close(fds[i]);
	free(fds);
	return opened == n ? 0 : 1;
}

static int fanout(const char *host, char *ports, long bytes, int hold_ms)
{
	static char buf[1 << 16];
	int rc = 0, fds[256], n = 0;

	memset(buf, 'f', sizeof(buf));
	for (char *save = NULL, *p = strtok_r(ports, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		int err, fd = connect_to(host, p, &err);
		if (fd < 0) {
			fprintf(stderr, "net_pump: connect %s:%s: %s\n", host, p, strerror(err));
			rc = 1;
			continue;
		}
		for (long left = bytes; left > 0;) {
			ssize_t w = write(fd, buf, left < (long)sizeof(buf) ? (size_t)left : sizeof(buf));
			if (w <= 0)
				break;
			left -= w;
		}
		if (n < 256)
			fds[n++] = fd;
		else
			close(fd);
	}
	usleep((useconds_t)hold_ms * 1000);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return rc;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 4 && strcmp(argv[1], "sink") == 0)
		sink(argv[2], argv[3]);
	if (argc >= 5 && strcmp(argv[1], "send") == 0)
		return send_for(argv[2], argv[3], atof(argv[4]), argc >= 6 ? atof(argv[5]) : 0);
	if (argc >= 4 && strcmp(argv[1], "refused") == 0)
		return refused(argv[2], argv[3]);
	if (argc >= 4 && strcmp(argv[1], "abort-server") == 0)
		return abort_server(argv[2], argv[3]);
	if (argc >= 4 && strcmp(argv[1], "abort-client") == 0)
		return abort_client(argv[2], argv[3]);
	if (argc >= 6 && strcmp(argv[1], "many") == 0)
		return many(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	if (argc >= 5 && strcmp(argv[1], "fanout") == 0)
		return fanout(argv[2], argv[3], atol(argv[4]), argc >= 6 ? atoi(argv[5]) : 0);
	fprintf(stderr, "usage: net_pump sink|send|refused|abort-server|abort-client|many|fanout ...\n");
	return 2;
}
