/*
 * serve_db.c - serve an existing Ember database over HTTP, nothing else.
 *
 *   serve_db DB [LISTEN] [--threads N] [--max-connections N] [--max-per-client N]
 *            [--request-deadline S] [--send-deadline S] [--queue-wait S]
 *                              (LISTEN defaults to 127.0.0.1:0; limits to the
 *                              server's defaults, see server.h)
 *
 * `ember run` also loads BPF and profiles the host; the browser tests only
 * need the web UI and the JSON API over a database they filled themselves
 * (tests/tools/fill_db.c), so this starts ember_server on it, prints
 * "serving http://ADDR:PORT/" on stdout and runs until SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

static unsigned limit_arg(const char *name, const char *v)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (*end || !*v || n == 0 || n > 1000000) {
		fprintf(stderr, "serve_db: %s wants a positive integer, not '%s'\n", name, v);
		exit(2);
	}
	return (unsigned)n;
}

int main(int argc, char **argv)
{
	struct ember_server_limits lim = {0};
	const char *listen = "127.0.0.1:0";
	int i = 2;

	if (argc < 2) {
		fprintf(stderr, "usage: serve_db DB [LISTEN] [--threads N] [--max-connections N] "
				"[--max-per-client N] [--request-deadline S] [--send-deadline S] "
				"[--queue-wait S]\n");
		return 2;
	}
	if (argc > 2 && strncmp(argv[2], "--", 2) != 0)
		listen = argv[i++];
	for (; i < argc; i += 2) {
		const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(opt, "--threads"))
			lim.threads = limit_arg(opt, v);
		else if (!strcmp(opt, "--max-connections"))
			lim.max_connections = limit_arg(opt, v);
		else if (!strcmp(opt, "--max-per-client"))
			lim.max_per_client = limit_arg(opt, v);
		else if (!strcmp(opt, "--request-deadline"))
			lim.request_deadline_s = limit_arg(opt, v);
		else if (!strcmp(opt, "--send-deadline"))
			lim.send_deadline_s = limit_arg(opt, v);
		else if (!strcmp(opt, "--queue-wait"))
			lim.queue_wait_s = limit_arg(opt, v);
		else {
			fprintf(stderr, "serve_db: unknown option '%s'\n", opt);
			return 2;
		}
	}
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL); /* before the server thread starts */

	struct ember_server_config cfg = {.listen = listen, .db_path = argv[1], .limits = lim};
	struct ember_server *srv;
	char err[256];
	if (ember_server_start(&cfg, &srv, err, sizeof(err))) {
		fprintf(stderr, "serve_db: %s\n", err);
		return 1;
	}
	const char *colon = strrchr(listen, ':');
	int hostlen = colon ? (int)(colon - listen) : (int)strlen(listen);
	printf("serving http://%.*s:%d/\n", hostlen, listen, ember_server_port(srv));
	fflush(stdout);
	ember_server_get_limits(srv, &lim);
	fprintf(stderr,
		"serve_db: threads=%u max_connections=%u max_per_client=%u request_deadline_s=%u "
		"send_deadline_s=%u queue_wait_s=%u\n",
		lim.threads, lim.max_connections, lim.max_per_client, lim.request_deadline_s,
		lim.send_deadline_s, lim.queue_wait_s);
	int sig;
	sigwait(&stop, &sig);
	ember_server_stop(srv);
	return 0;
}
