/*
 * http_clients.c - misbehaving and impatient HTTP clients for the server's
 * tests and benchmark: the oracle that counts what the server did from the
 * outside.
 *
 *   http_clients slow PORT N [--sources A-B] [--trickle-ms MS] [--seconds S] [--early-s E]
 *       N connections from 127.0.0.A..127.0.0.B in turn (default 127.0.0.1),
 *       each sending a request line and then one header byte every MS
 *       milliseconds (default 1000; 0 = nothing after connecting), never
 *       finishing.  Prints "ready open=.. closed=.." once every connection
 *       is established and 500 ms have passed, then runs until the server
 *       has closed them all or S seconds (default 60) are over, and prints
 *       a summary: how many the server closed, how many of those within E
 *       seconds (default 1) of connecting, answered, and after how long.
 *
 *   http_clients load PORT N PATH [--sources A-B] [--probe PATH --probe-source ADDR]
 *       N requests at once (HTTP/1.0, one connection each, accepting gzip),
 *       from 127.0.0.A..B in turn; prints the status counts, the 200s per
 *       second, and latency percentiles from connect to the end of the
 *       response: of the 200s (ok_*) and of every request until its answer,
 *       whatever it was, or the close (all_*).  With --probe,
 *       another client (default 127.0.0.2) fetches that path 5 times in a
 *       row once the load is running, and its latencies are printed too (the
 *       first one is asked while every load request is in flight).
 *
 *   http_clients raw PORT [--source ADDR] [--timeout-ms MS]
 *       Send stdin's bytes as they are, print the response's status code as
 *       soon as its status line arrives ("closed" if the server closed the
 *       connection without answering, "timeout" if neither happened).
 *
 * Output lines are "key=value ..." for the shell scripts to pick apart.
 * Single-threaded with poll(2), except the probe thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *msg)
{
	fprintf(stderr, "http_clients: %s\n", msg);
	exit(2);
}

/* "A-B" or "A": the last octets of 127.0.0.x source addresses. */
static void parse_sources(const char *s, int *lo, int *hi)
{
	char *end;

	*lo = (int)strtol(s, &end, 10);
	*hi = *end == '-' ? (int)strtol(end + 1, &end, 10) : *lo;
	if (*end || *lo < 1 || *hi > 254 || *lo > *hi)
		die("--sources wants A-B with 1 <= A <= B <= 254");
}

/* A non-blocking socket bound to source and connecting to 127.0.0.1:port. */
static int open_conn(const char *source, int port)
{
	struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, source, &src.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
	dst.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A non-blocking connect has ended: did it fail? */
static bool connect_failed(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	return getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0 || e != 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of n sorted values, nearest rank. */
static double percentile(const double *v, size_t n, double p)
{
	size_t rank;

	if (!n)
		return 0;
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/* ---- slow ---- */

struct slow_conn {
	int fd;
	bool connected, closed, answered;
	double opened_at, closed_at;
	size_t sent;
};

static const char slow_head[] = "GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

static int cmd_slow(int argc, char **argv)
{
	int port, n, lo = 1, hi = 1, trickle_ms = 1000, seconds = 60;
	double early_s = 1.0;

	if (argc < 2)
		die("usage: slow PORT N [--sources A-B] [--trickle-ms MS] [--seconds S] [--early-s E]");
	port = atoi(argv[0]);
	n = atoi(argv[1]);
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--sources"))
			parse_sources(argv[i + 1], &lo, &hi);
		else if (!strcmp(argv[i], "--trickle-ms"))
			trickle_ms = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--early-s"))
			early_s = atof(argv[i + 1]);
		else
			die("slow: unknown option");
	}
	if (n < 1 || n > 100000 || port < 1)
		die("slow: bad PORT or N");

	struct slow_conn *c = calloc((size_t)n, sizeof(*c));
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	if (!c || !pfd)
		die("out of memory");
	double t0 = now_s(), next_tick = t0, ready_at = 0;
	int failed = 0;
	bool ready = false;

	for (int i = 0; i < n; i++) {
		char src[32];
		snprintf(src, sizeof(src), "127.0.0.%d", lo + i % (hi - lo + 1));
		c[i].fd = open_conn(src, port);
		c[i].opened_at = now_s();
		if (c[i].fd < 0) {
			c[i].closed = true;
			c[i].closed_at = c[i].opened_at;
			failed++;
		}
	}
	for (;;) {
		int open = 0, pending = 0;
		double now = now_s();

		for (int i = 0; i < n; i++) {
			pfd[i].fd = c[i].closed ? -1 : c[i].fd;
			pfd[i].events = c[i].connected ? POLLIN : POLLOUT;
			pfd[i].revents = 0;
			open += !c[i].closed;
			pending += !c[i].closed && !c[i].connected;
		}
		if (!ready && !pending) {
			if (!ready_at)
				ready_at = now + 0.5;
			if (now >= ready_at) {
				printf("ready open=%d closed=%d\n", open, n - open);
				fflush(stdout);
				ready = true;
			}
		}
		if (!open || now - t0 > seconds)
			break;
		int wait_ms = trickle_ms > 0 ? (int)((next_tick - now) * 1000) : 100;
		if (wait_ms < 0)
			wait_ms = 0;
		if (wait_ms > 100)
			wait_ms = 100;
		poll(pfd, (nfds_t)n, wait_ms);
		now = now_s();
		for (int i = 0; i < n; i++) {
			char buf[4096];
			if (c[i].closed || !pfd[i].revents)
				continue;
			if (!c[i].connected) {
				if (connect_failed(c[i].fd)) {
					c[i].closed = true;
					c[i].closed_at = now;
					continue;
				}
				c[i].connected = true;
				/* the request line and the start of a header that never ends */
				if (write(c[i].fd, slow_head, sizeof(slow_head) - 1) > 0)
					c[i].sent = sizeof(slow_head) - 1;
				continue;
			}
			ssize_t r = read(c[i].fd, buf, sizeof(buf));
			if (r > 0) {
				c[i].answered = true; /* keep reading until the close */
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				c[i].closed = true;
				c[i].closed_at = now;
				close(c[i].fd);
			}
		}
		if (trickle_ms > 0 && now >= next_tick) {
			for (int i = 0; i < n; i++) {
				if (c[i].closed || !c[i].connected)
					continue;
				if (write(c[i].fd, "a", 1) == 1) {
					c[i].sent++;
				} else if (errno != EAGAIN) {
					c[i].closed = true;
					c[i].closed_at = now;
					close(c[i].fd);
				}
			}
			next_tick = now + trickle_ms / 1000.0;
		}
	}
	/* the summary: how long the server let each connection live */
	double *life = calloc((size_t)n, sizeof(double));
	size_t m = 0;
	int still = 0, answered = 0, quick = 0;
	size_t sent = 0;
	for (int i = 0; i < n; i++) {
		answered += c[i].answered;
		sent += c[i].sent;
		if (!c[i].closed) {
			still++;
			close(c[i].fd);
			continue;
		}
		if (c[i].fd < 0)
			continue;
		life[m++] = c[i].closed_at - c[i].opened_at;
		quick += c[i].closed_at - c[i].opened_at < early_s;
	}
	qsort(life, m, sizeof(double), cmp_double);
	printf("connections=%d connect_failed=%d closed_by_server=%zu closed_early=%d "
	       "still_open=%d answered=%d bytes_sent=%zu min_life_s=%.2f median_life_s=%.2f "
	       "max_life_s=%.2f\n",
	       n, failed, m, quick, still, answered, sent, m ? life[0] : 0.0,
	       m ? life[m / 2] : 0.0, m ? life[m - 1] : 0.0);
	free(life);
	free(c);
	free(pfd);
	return 0;
}

/* ---- load ---- */

struct load_conn {
	int fd;
	bool connected, done;
	double start, end;
	int status;
	char head[16];
	size_t head_len, bytes;
};

static char request[2048];
static size_t request_len;

/* One blocking request; returns the status (0: none) and its latency in *ms. */
static int blocking_get(const char *source, int port, const char *path, double *ms)
{
	char req[2048], head[32], buf[65536];
	double t0 = now_s();
	int status = 0, fd = open_conn(source, port);
	struct pollfd p;
	size_t head_len = 0;

	*ms = 0;
	if (fd < 0)
		return 0;
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n", path);
	if (poll(&p, 1, 600000) != 1 || write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return 0;
	}
	p.events = POLLIN;
	while (poll(&p, 1, 600000) == 1) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r > 0) {
			size_t take = sizeof(head) - 1 - head_len;
			memcpy(head + head_len, buf, take < (size_t)r ? take : (size_t)r);
			head_len += take < (size_t)r ? take : (size_t)r;
		} else if (r == 0 || errno != EAGAIN) {
			break;
		}
	}
	head[head_len] = '\0';
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	*ms = (now_s() - t0) * 1000;
	close(fd);
	return status;
}

struct probe_args {
	int port;
	const char *source, *path;
	double ms[5];
	int status[5];
	volatile bool go;
};

static void *probe_main(void *arg)
{
	struct probe_args *a = arg;

	while (!a->go)
		usleep(1000);
	for (int i = 0; i < 5; i++)
		a->status[i] = blocking_get(a->source, a->port, a->path, &a->ms[i]);
	return NULL;
}

static int cmd_load(int argc, char **argv)
{
	int port, n, lo = 1, hi = 1;
	const char *path, *probe_path = NULL, *probe_source = "127.0.0.2";

	if (argc < 3)
		die("usage: load PORT N PATH [--sources A-B] [--probe PATH --probe-source ADDR]");
	port = atoi(argv[0]);
	n = atoi(argv[1]);
	path = argv[2];
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--sources"))
			parse_sources(argv[i + 1], &lo, &hi);
		else if (!strcmp(argv[i], "--probe"))
			probe_path = argv[i + 1];
		else if (!strcmp(argv[i], "--probe-source"))
			probe_source = argv[i + 1];
		else
			die("load: unknown option");
	}
	if (n < 1 || n > 100000 || port < 1 || strlen(path) > 1500)
		die("load: bad PORT, N or PATH");
	request_len = (size_t)snprintf(request, sizeof(request),
				       "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n",
				       path);

	struct probe_args probe = {.port = port, .source = probe_source, .path = probe_path};
	pthread_t probe_tid;
	if (probe_path && pthread_create(&probe_tid, NULL, probe_main, &probe))
		die("cannot start the probe thread");

	struct load_conn *c = calloc((size_t)n, sizeof(*c));
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	if (!c || !pfd)
		die("out of memory");
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		char src[32];
		snprintf(src, sizeof(src), "127.0.0.%d", lo + i % (hi - lo + 1));
		c[i].start = now_s();
		c[i].fd = open_conn(src, port);
		if (c[i].fd < 0) {
			c[i].done = true;
			c[i].end = c[i].start;
		}
	}
	probe.go = true; /* the load is on: every request is in flight */
	for (;;) {
		int left = 0;
		for (int i = 0; i < n; i++) {
			pfd[i].fd = c[i].done ? -1 : c[i].fd;
			pfd[i].events = c[i].connected ? POLLIN : POLLOUT;
			pfd[i].revents = 0;
			left += !c[i].done;
		}
		if (!left || now_s() - t0 > 600)
			break;
		poll(pfd, (nfds_t)n, 1000);
		for (int i = 0; i < n; i++) {
			char buf[65536];
			if (c[i].done || !pfd[i].revents)
				continue;
			if (!c[i].connected) {
				if (connect_failed(c[i].fd) ||
				    write(c[i].fd, request, request_len) != (ssize_t)request_len) {
					c[i].done = true;
					c[i].end = now_s();
					close(c[i].fd);
					continue;
				}
				c[i].connected = true;
				continue;
			}
			ssize_t r = read(c[i].fd, buf, sizeof(buf));
			if (r > 0) {
				size_t take = sizeof(c[i].head) - 1 - c[i].head_len;
				if (take > (size_t)r)
					take = (size_t)r;
				memcpy(c[i].head + c[i].head_len, buf, take);
				c[i].head_len += take;
				c[i].bytes += (size_t)r;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				c[i].done = true;
				c[i].end = now_s();
				close(c[i].fd);
				c[i].head[c[i].head_len] = '\0';
				if (sscanf(c[i].head, "HTTP/1.%*d %d", &c[i].status) != 1)
					c[i].status = 0;
			}
		}
	}
	double wall = now_s() - t0;
	/* lat: the 200s; any: every request, until its answer or the close */
	double *lat = calloc((size_t)n, sizeof(double)), *any = calloc((size_t)n, sizeof(double));
	size_t m = 0, k = 0, bytes = 0;
	int ok = 0, busy = 0, other = 0, failed = 0;
	double last_ok = 0;
	for (int i = 0; i < n; i++) {
		if (!c[i].done) {
			close(c[i].fd);
			failed++;
			any[k++] = wall * 1000;
			continue;
		}
		any[k++] = (c[i].end - c[i].start) * 1000;
		if (c[i].status == 200) {
			ok++;
			lat[m++] = (c[i].end - c[i].start) * 1000;
			bytes += c[i].bytes;
			if (c[i].end - t0 > last_ok)
				last_ok = c[i].end - t0;
		} else if (c[i].status == 503) {
			busy++;
		} else if (c[i].status) {
			other++;
		} else {
			failed++;
		}
	}
	qsort(lat, m, sizeof(double), cmp_double);
	qsort(any, k, sizeof(double), cmp_double);
	printf("requests=%d ok=%d busy_503=%d other_status=%d failed=%d wall_s=%.2f "
	       "ok_per_s=%.2f ok_p50_ms=%.0f ok_p99_ms=%.0f all_p50_ms=%.0f all_p90_ms=%.0f "
	       "all_p99_ms=%.0f all_max_ms=%.0f mean_bytes=%zu\n",
	       n, ok, busy, other, failed, wall, last_ok > 0 ? ok / last_ok : 0.0,
	       percentile(lat, m, 50), percentile(lat, m, 99), percentile(any, k, 50),
	       percentile(any, k, 90), percentile(any, k, 99), k ? any[k - 1] : 0.0,
	       m ? bytes / m : 0);
	if (probe_path) {
		double sorted[5];
		int probe_ok = 0;
		pthread_join(probe_tid, NULL);
		for (int i = 0; i < 5; i++) {
			sorted[i] = probe.ms[i];
			probe_ok += probe.status[i] == 200;
		}
		qsort(sorted, 5, sizeof(double), cmp_double);
		printf("probe_ok=%d probe_first_ms=%.0f probe_median_ms=%.0f probe_max_ms=%.0f\n",
		       probe_ok, probe.ms[0], sorted[2], sorted[4]);
	}
	free(lat);
	free(any);
	free(c);
	free(pfd);
	return 0;
}

/* ---- raw ---- */

static int cmd_raw(int argc, char **argv)
{
	static char req[1 << 20];
	const char *source = "127.0.0.1";
	int port, timeout_ms = 5000, fd, status;
	size_t len = 0, sent = 0;
	char head[64];
	size_t head_len = 0;
	double deadline;

	if (argc < 1)
		die("usage: raw PORT [--source ADDR] [--timeout-ms MS] < request");
	port = atoi(argv[0]);
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--source"))
			source = argv[i + 1];
		else if (!strcmp(argv[i], "--timeout-ms"))
			timeout_ms = atoi(argv[i + 1]);
		else
			die("raw: unknown option");
	}
	for (ssize_t r; len < sizeof(req) && (r = read(0, req + len, sizeof(req) - len)) > 0;)
		len += (size_t)r;
	fd = open_conn(source, port);
	if (fd < 0)
		die("raw: cannot connect");
	deadline = now_s() + timeout_ms / 1000.0;
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	for (;;) {
		int left = (int)((deadline - now_s()) * 1000);
		if (left <= 0 || poll(&p, 1, left) != 1) {
			printf("timeout\n");
			close(fd);
			return 0;
		}
		if (p.revents & POLLOUT) {
			ssize_t w = sent < len ? write(fd, req + sent, len - sent) : 0;
			if (w > 0)
				sent += (size_t)w;
			if (w < 0 && errno != EAGAIN)
				p.events = POLLIN; /* the server closed: read what it said */
			if (sent == len)
				p.events = POLLIN;
			continue;
		}
		char buf[65536];
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r > 0) {
			size_t take = sizeof(head) - 1 - head_len;
			if (take > (size_t)r)
				take = (size_t)r;
			memcpy(head + head_len, buf, take);
			head_len += take;
			head[head_len] = '\0';
			if (strchr(head, '\n'))
				break; /* the status line is in: enough (the server may keep the connection) */
			continue;
		}
		if (r < 0 && errno == EAGAIN)
			continue;
		break; /* EOF or reset */
	}
	close(fd);
	head[head_len] = '\0';
	if (sscanf(head, "HTTP/1.%*d %d", &status) == 1)
		printf("%d\n", status);
	else
		printf("closed\n");
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && !strcmp(argv[1], "slow"))
		return cmd_slow(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "load"))
		return cmd_load(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "raw"))
		return cmd_raw(argc - 2, argv + 2);
	fprintf(stderr, "usage: http_clients slow|load|raw PORT ... (see the top of http_clients.c)\n");
	return 2;
}
