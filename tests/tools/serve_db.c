/*
 * serve_db.c - serve an existing Ember database over HTTP, nothing else.
 *
 *   serve_db DB [LISTEN]        (LISTEN defaults to 127.0.0.1:0)
 *
 * `ember run` also loads BPF and profiles the host; the browser tests only
 * need the web UI and the JSON API over a database they filled themselves
 * (tests/tools/fill_db.c), so this starts ember_server on it, prints
 * "serving http://ADDR:PORT/" on stdout and runs until SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "server/server.h"

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: serve_db DB [LISTEN]\n");
		return 2;
	}
	const char *listen = argc == 3 ? argv[2] : "127.0.0.1:0";
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL); /* before the server thread starts */

	struct ember_server_config cfg = { .listen = listen, .db_path = argv[1] };
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
	int sig;
	sigwait(&stop, &sig);
	ember_server_stop(srv);
	return 0;
}
