/*
 * net_delayline.c - a two-namespace link with delay and loss, where netem is missing.
 *
 *   net_delayline NS_A NS_B DELAY_MS LOSS_PERCENT
 *
 * The network tests want what `tc qdisc add dev X root netem delay 20ms
 * loss 5%` gives on one side of a veth pair.  Kernels built without
 * sch_netem (like this project's CI machines) cannot, so this tool builds
 * the same link in user space: a TUN device "emdl0" in each of the two
 * named network namespaces (ip netns add), and a loop that carries every
 * IP packet from one device to the other.  Packets from A to B wait
 * DELAY_MS and are dropped with probability LOSS_PERCENT; packets from B to
 * A pass at once, as with netem on A's egress.  TCP runs end to end over
 * it, so the kernel's own counters (ss -ti, nstat) stay the oracles.
 *
 * Prints "ready" once both devices exist (the caller then gives them
 * addresses and brings them up) and runs until SIGTERM or SIGINT.  At most
 * MAX_QUEUED packets wait at once (more are dropped and counted).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_QUEUED 65536
#define MAX_PACKET 65536

struct packet {
	int64_t due_ns;
	uint16_t len;
	unsigned char *data;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A TUN device named emdl0 inside network namespace ns (/run/netns/NAME). */
static int tun_in(const char *ns, int home)
{
	char path[256];
	struct ifreq ifr;
	int nsfd, fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET)) {
		fprintf(stderr, "net_delayline: cannot enter %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(nsfd);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "emdl0");
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr)) {
		fprintf(stderr, "net_delayline: cannot create a TUN device in %s: %s\n", ns,
			strerror(errno));
		exit(1);
	}
	if (setns(home, CLONE_NEWNET)) {
		fprintf(stderr, "net_delayline: cannot return to the first namespace: %s\n",
			strerror(errno));
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	static unsigned char buf[MAX_PACKET];
	struct packet *q;
	size_t head = 0, n = 0;
	unsigned long long carried = 0, lost = 0, overflow = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: net_delayline NS_A NS_B DELAY_MS LOSS_PERCENT\n");
		return 2;
	}
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0) {
		fprintf(stderr, "net_delayline: /proc/self/ns/net: %s\n", strerror(errno));
		return 1;
	}
	int a = tun_in(argv[1], home), b = tun_in(argv[2], home);
	int64_t delay = (int64_t)(atof(argv[3]) * 1e6);
	double loss = atof(argv[4]) / 100.0;
	q = calloc(MAX_QUEUED, sizeof(*q));
	if (!q)
		return 1;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	srand48((long)now_ns());
	printf("ready\n");
	fflush(stdout);

	while (!stopping) {
		int64_t now = now_ns();
		/* deliver what is due (the queue is in due order: one delay for all) */
		while (n && q[head].due_ns <= now) {
			if (write(b, q[head].data, q[head].len) > 0)
				carried++;
			free(q[head].data);
			head = (head + 1) % MAX_QUEUED;
			n--;
		}
		int timeout = n ? (int)((q[head].due_ns - now) / 1000000) + 1 : 100;
		struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		for (;;) { /* A -> B: delayed, lossy */
			ssize_t len = read(a, buf, sizeof(buf));
			if (len <= 0)
				break;
			if (drand48() < loss) {
				lost++;
				continue;
			}
			if (n == MAX_QUEUED) {
				overflow++;
				continue;
			}
			struct packet *pk = &q[(head + n) % MAX_QUEUED];
			pk->data = malloc((size_t)len);
			if (!pk->data) {
				overflow++;
				continue;
			}
			memcpy(pk->data, buf, (size_t)len);
			pk->len = (uint16_t)len;
			pk->due_ns = now_ns() + delay;
			n++;
		}
		for (;;) { /* B -> A: at once */
			ssize_t len = read(b, buf, sizeof(buf));
			if (len <= 0)
				break;
			if (write(a, buf, (size_t)len) > 0)
				carried++;
		}
	}
	fprintf(stderr, "net_delayline: carried %llu packets, lost %llu on purpose, %llu over the "
			"queue bound\n",
		carried, lost, overflow);
	return 0;
}
