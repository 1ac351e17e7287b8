/*
 * serve-load-fake.c - a fast fake GPU0 for bench/serve-load.sh.
 *
 *   serve-load-fake --port-file FILE [--chunks K] [--interval-ms MS]
 *                   [--first-ms MS]
 *
 * One thread, epoll, one timerfd per stream; binds 127.0.0.1 on an
 * ephemeral port and writes the port to FILE (a temporary file, then
 * rename) once listening.  Exits 0 on SIGTERM or SIGINT.
 *
 * POST /api/chat answers as Ollama does when streaming (NDJSON, chunked):
 * the head and the first line FIRST_MS after the request's body is in
 * (default 0), then one line every INTERVAL_MS (default 20), K content
 * lines in all (default 40), then the done:true line one interval later.
 * Line i's content is "t=NS i=I " where NS is CLOCK_MONOTONIC in ns read
 * just before the write(2) that sends it, so that a client on the same
 * machine can take arrival - NS as the line's one-way latency.
 * POST /api/show answers a context_length of 8192; GET /api/version and
 * GET /api/tags answer too; anything else is a 404.  One request per
 * connection ("Connection: close").
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define INMAX	(1 << 20)

struct conn {
	int fd, tfd;
	char *in;
	size_t inlen;
	size_t body_need;	/* header + body bytes, once the head is in */
	int streaming;
	int sent;		/* content lines sent */
	int64_t t_req;		/* the request's body complete, ns */
	char *out;		/* bytes not yet written */
	size_t outlen;
	int closing;		/* close once out is empty */
	int dead;		/* closed: freed after this batch of events */
	struct conn *next_dead;
};

/* epoll data: the pointer, tagged in bit 0 for the timerfd. */
static int ep;
static int chunks = 40;
static int64_t interval_ns = 20000000, first_ns = 0;
static long nconns, nstreams;
static struct conn *dead;

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "serve-load-fake: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
conn_close(struct conn *c)
{
	if (c->dead)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->tfd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->tfd, NULL);
		close(c->tfd);
	}
	c->dead = 1;
	c->next_dead = dead;
	dead = c;
	nconns--;
}

static void
free_dead(void)
{
	struct conn *c;

	while ((c = dead) != NULL) {
		dead = c->next_dead;
		free(c->in);
		free(c->out);
		free(c);
	}
}

/* Write p, keeping what the socket does not take; -1: the peer is gone. */
static int
conn_write(struct conn *c, const char *p, size_t n)
{
	ssize_t w;
	struct epoll_event ev;

	if (c->outlen == 0) {
		while ((w = write(c->fd, p, n)) < 0 && errno == EINTR)
			;
		if (w < 0 && errno != EAGAIN)
			return -1;
		if (w < 0)
			w = 0;
		p += w;
		n -= (size_t)w;
		if (n == 0)
			return 0;
	}
	c->out = realloc(c->out, c->outlen + n);
	if (c->out == NULL)
		die("realloc");
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

static int
flush_out(struct conn *c)
{
	ssize_t w;
	struct epoll_event ev;

	while (c->outlen > 0) {
		w = write(c->fd, c->out, c->outlen);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return 0;
		if (w < 0)
			return -1;
		memmove(c->out, c->out + w, c->outlen - (size_t)w);
		c->outlen -= (size_t)w;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return c->closing ? -1 : 0;
}

static int
reply_simple(struct conn *c, int status, const char *body)
{
	char b[1024];
	int n = snprintf(b, sizeof(b), "HTTP/1.1 %d %s\r\nContent-Type: "
	    "application/json; charset=utf-8\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", status, status == 200 ? "OK" :
	    "Not Found", strlen(body), body);

	c->closing = 1;
	if (conn_write(c, b, (size_t)n) != 0 || c->outlen == 0)
		return -1;	/* done: close now */
	return 0;
}

static void
arm(struct conn *c, int64_t at)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = at / 1000000000;
	its.it_value.tv_nsec = at % 1000000000;
	timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* The next line of c's stream; -1 when c is to be closed. */
static int
stream_next(struct conn *c)
{
	char line[512], b[768];
	int n, m, h = 0;

	if (c->sent < chunks) {
		int64_t t = now_ns();

		n = snprintf(line, sizeof(line), "{\"model\":\"bench\","
		    "\"created_at\":\"2026-01-01T00:00:00Z\",\"message\":"
		    "{\"role\":\"assistant\",\"content\":\"t=%lld i=%d \"},"
		    "\"done\":false}\n", (long long)t, c->sent);
	} else
		n = snprintf(line, sizeof(line), "{\"model\":\"bench\","
		    "\"created_at\":\"2026-01-01T00:00:01Z\",\"message\":"
		    "{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
		    "\"done_reason\":\"stop\",\"total_duration\":1,"
		    "\"load_duration\":0,\"prompt_eval_count\":10,"
		    "\"prompt_eval_duration\":1,\"eval_count\":%d,"
		    "\"eval_duration\":1}\n", chunks);
	if (c->sent == 0)
		h = snprintf(b, sizeof(b), "HTTP/1.1 200 OK\r\nContent-Type: "
		    "application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
		    "Connection: close\r\n\r\n");
	m = snprintf(b + h, sizeof(b) - (size_t)h, "%x\r\n%.*s\r\n%s", n, n,
	    line, c->sent == chunks ? "0\r\n\r\n" : "");
	if (conn_write(c, b, (size_t)(h + m)) != 0)
		return -1;
	if (c->sent == chunks) {
		c->closing = 1;
		return c->outlen == 0 ? -1 : 0;
	}
	c->sent++;
	arm(c, c->t_req + first_ns + (int64_t)c->sent * interval_ns);
	return 0;
}

/* A whole request is in c->in: answer it. */
static int
on_request(struct conn *c)
{
	char method[16] = "", path[256] = "";
	struct epoll_event ev;

	sscanf(c->in, "%15s %255s", method, path);
	if (strcmp(method, "POST") == 0 && strcmp(path, "/api/chat") == 0) {
		c->streaming = 1;
		nstreams++;
		c->t_req = now_ns();
		c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
		    TFD_CLOEXEC);
		if (c->tfd < 0)
			die("timerfd_create");
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = (void *)((uintptr_t)c | 1);
		epoll_ctl(ep, EPOLL_CTL_ADD, c->tfd, &ev);
		if (first_ns == 0)
			return stream_next(c);
		arm(c, c->t_req + first_ns);
		return 0;
	}
	if (strcmp(method, "POST") == 0 && strcmp(path, "/api/show") == 0)
		return reply_simple(c, 200, "{\"model_info\":{\"general."
		    "architecture\":\"bench\",\"bench.context_length\":8192}}");
	if (strcmp(method, "GET") == 0 && strcmp(path, "/api/version") == 0)
		return reply_simple(c, 200, "{\"version\":\"0.12.0\"}");
	if (strcmp(method, "GET") == 0 && strcmp(path, "/api/tags") == 0)
		return reply_simple(c, 200, "{\"models\":[{\"name\":\"bench\","
		    "\"model\":\"bench\"}]}");
	return reply_simple(c, 404, "{\"error\":\"not found\"}");
}

static int
on_readable(struct conn *c)
{
	ssize_t n;
	char *hend;

	for (;;) {
		if (c->inlen + 65536 + 1 > INMAX)
			return -1;
		c->in = realloc(c->in, c->inlen + 65536 + 1);
		if (c->in == NULL)
			die("realloc");
		n = read(c->fd, c->in + c->inlen, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;	/* the peer closed or failed */
		c->inlen += (size_t)n;
		c->in[c->inlen] = '\0';
	}
	if (c->streaming || c->closing)
		return 0;	/* nothing more is read */
	if (c->body_need == 0) {
		const char *cl;
		size_t len = 0;

		if ((hend = strstr(c->in, "\r\n\r\n")) == NULL)
			return 0;
		cl = strcasestr(c->in, "\r\ncontent-length:");
		if (cl != NULL && cl < hend)
			len = strtoul(cl + 17, NULL, 10);
		c->body_need = (size_t)(hend + 4 - c->in) + len;
	}
	if (c->inlen < c->body_need)
		return 0;
	return on_request(c);
}

static void
on_accept(int lfd)
{
	struct epoll_event ev;
	struct conn *c;
	int fd, one = 1;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
	    >= 0) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			die("calloc");
		c->fd = fd;
		c->tfd = -1;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		nconns++;
	}
}

int
main(int argc, char **argv)
{
	const char *port_file = NULL;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct epoll_event ev, evs[256];
	sigset_t mask;
	int lfd, sfd, one = 1, i, n;
	static int lmark, smark;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
			port_file = argv[++i];
		else if (strcmp(argv[i], "--chunks") == 0 && i + 1 < argc)
			chunks = atoi(argv[++i]);
		else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc)
			interval_ns = (int64_t)(atof(argv[++i]) * 1e6);
		else if (strcmp(argv[i], "--first-ms") == 0 && i + 1 < argc)
			first_ns = (int64_t)(atof(argv[++i]) * 1e6);
		else {
			fprintf(stderr, "usage: serve-load-fake --port-file FILE"
			    " [--chunks K] [--interval-ms MS] [--first-ms MS]\n");
			return 2;
		}
	}
	if (port_file == NULL || chunks < 1 || interval_ns < 1) {
		fprintf(stderr, "serve-load-fake: bad arguments\n");
		return 2;
	}
	prctl(PR_SET_TIMERSLACK, 1UL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		die("signalfd");
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0)
		die("listen");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &lmark;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.ptr = &smark;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	{
		char tmp[4096];
		FILE *fp;

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		if ((fp = fopen(tmp, "w")) == NULL)
			die(tmp);
		fprintf(fp, "%d\n", ntohs(sa.sin_port));
		if (fclose(fp) != 0 || rename(tmp, port_file) != 0)
			die(port_file);
	}
	for (;;) {
		n = epoll_wait(ep, evs, 256, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			struct conn *c;

			if (p == &lmark) {
				on_accept(lfd);
				continue;
			}
			if (p == &smark) {
				fprintf(stderr, "serve-load-fake: %ld streams "
				    "served\n", nstreams);
				return 0;
			}
			if ((uintptr_t)p & 1) {
				uint64_t x;

				c = (struct conn *)((uintptr_t)p & ~(uintptr_t)1);
				if (c->dead || read(c->tfd, &x, sizeof(x)) < 0)
					continue;
				if (stream_next(c) != 0)
					conn_close(c);
				continue;
			}
			c = p;
			if (c->dead)
				continue;
			if ((evs[i].events & EPOLLOUT) && flush_out(c) != 0) {
				conn_close(c);
				continue;
			}
			if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
			    on_readable(c) != 0)
				conn_close(c);
		}
		free_dead();
	}
}
