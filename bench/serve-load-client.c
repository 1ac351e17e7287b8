/*
 * serve-load-client.c - concurrent streaming clients for bench/serve-load.sh.
 *
 *   serve-load-client [options] NAME=PORT...
 *     -n N          streams at once in a round (default 1)
 *     -r R          measured rounds per target (default 1)
 *     -w W          warm-up rounds per target, not counted (default 1)
 *     -k K          content lines each answer must have (default 40)
 *     --ramp-ms MS  spread a round's stream starts evenly over MS
 *                   (default 20)
 *     --timeout-s S give a round S seconds at most (default 60); after a
 *                   round that ran out of time, the target's further rounds
 *                   are skipped and their streams counted as errors
 *     --watch NAME=PID
 *                   while NAME's rounds run, sample the memory of PID and
 *                   of its child processes, and count PID's CPU time and
 *                   its reaped children's (/proc/PID/stat)
 *     --sample-ms MS sampling period (default 100)
 *     --pss         also read smaps_rollup (Pss, Private_*): slow, and
 *                   it perturbs the latencies
 *
 * Rounds go target after target (the first target of round r is target
 * r mod T), so that every target sees the same machine.  Each stream is
 * one connection to 127.0.0.1:PORT posting a streaming Ollama /api/chat
 * with options.num_ctx 8192.  The answer's lines whose content is
 * "t=NS i=I " (bench/serve-load-fake.c) give one-way latencies: arrival
 * (CLOCK_MONOTONIC right after the recv(2) that completed the line) - NS.
 *
 * Prints one JSON object per target on stdout; errors (each stream that
 * failed, why) on stderr.  All times in microseconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXT	8

struct vec {
	int64_t *v;
	size_t n, cap;
};

struct target {
	char name[32];
	int port;
	struct vec ttfb, ttfc, chunk, steady, total;
	struct vec rsent, rlat;	/* this round's lines: sent at, latency */
	long ok, errors, empty_lines, streams, unchunked;
	int timed_out;		/* a round ran out of time: no more rounds */
	/* --watch */
	int watched;
	long pid;
	long parent_rss_peak, parent_hwm, children_peak, children_rss_peak,
	    total_rss_peak, parent_pss_peak, children_pss_peak,
	    children_priv_peak, total_pss_peak, samples;
	long long ticks_self, ticks_children;
};

enum st { S_IDLE, S_CONNECTING, S_HEAD, S_SIZE, S_DATA, S_CRLF, S_TRAILER,
	S_LENGTH, S_TOEOF, S_DONE, S_FAILED };

struct stream {
	int fd;
	enum st st;
	int64_t t_start, t_first, t_first_content, t_end;
	char *in;		/* raw bytes not yet parsed */
	size_t inlen, incap;
	char *line;		/* the body's incomplete line */
	size_t linelen, linecap;
	size_t left;		/* bytes left in the current chunk */
	int status, next_i, content, done, empty, unchunked;
	const char *why;
};

static struct target targets[MAXT];
static int ntargets;
static int nstreams = 1, rounds = 1, warmup = 1, kexp = 40, pss;
static int64_t ramp_ns = 20000000, timeout_ns = 60000000000LL,
    sample_ns = 100000000;
static int ep;
static char request[1024];
static size_t reqlen;
static long pagekb;

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
	fprintf(stderr, "serve-load-client: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
vpush(struct vec *v, int64_t x)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 1024;
		v->v = realloc(v->v, v->cap * sizeof(*v->v));
		if (v->v == NULL)
			die("realloc");
	}
	v->v[v->n++] = x;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank, in us with 1 decimal. */
static double
pct(struct vec *v, double p)
{
	size_t k;

	if (v->n == 0)
		return -1;
	k = (size_t)(p * (double)v->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > v->n)
		k = v->n;
	return (double)v->v[k - 1] / 1000.0;
}

static void
add(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*p = realloc(*p, *cap);
		if (*p == NULL)
			die("realloc");
	}
	memcpy(*p + *len, s, n);
	*len += n;
	(*p)[*len] = '\0';
}

/* Fail or finish the stream, and return from the (void) caller. */
#define FAIL(s, why)	do { fail(s, why); return; } while (0)
#define FINISH(s, t)	do { finish(s, t); return; } while (0)

static void
fail(struct stream *s, const char *why)
{
	if (s->st == S_DONE || s->st == S_FAILED)
		return;
	s->st = S_FAILED;
	s->why = why;
	if (s->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
		s->fd = -1;
	}
}

static void
finish(struct stream *s, int64_t t)
{
	s->t_end = t;
	if (s->status != 200)
		FAIL(s, "HTTP status not 200");
	if (s->content != kexp)
		FAIL(s, "wrong number of content lines");
	if (!s->done)
		FAIL(s, "no done:true line");
	s->st = S_DONE;
	epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
}

/* One line of the NDJSON body, arrived at t. */
static void
on_line(struct target *tg, struct stream *s, const char *l, size_t n,
    int64_t t)
{
	const char *c;
	long long ns;
	int i;

	if (n == 0)
		return;
	if (memmem(l, n, "\"error\"", 7) != NULL)
		FAIL(s, "an error line");
	if (memmem(l, n, "\"done\":true", 11) != NULL) {
		s->done = 1;
		return;
	}
	c = memmem(l, n, "\"content\":\"", 11);
	if (c == NULL)
		FAIL(s, "a line without content");
	c += 11;
	if (*c == '"') {
		s->empty++;
		return;
	}
	if (sscanf(c, "t=%lld i=%d ", &ns, &i) != 2)
		FAIL(s, "unexpected content");
	if (i != s->next_i)
		FAIL(s, "content lines out of order");
	s->next_i++;
	s->content++;
	if (s->t_first_content == 0)
		s->t_first_content = t;
	vpush(&tg->rsent, (int64_t)ns);
	vpush(&tg->rlat, t - (int64_t)ns);
}

static void
on_body(struct target *tg, struct stream *s, const char *p, size_t n,
    int64_t t)
{
	const char *nl;
	size_t k;

	while (n > 0 && s->st != S_FAILED) {
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) : n;
		if (nl == NULL) {
			add(&s->line, &s->linelen, &s->linecap, p, n);
			return;
		}
		if (s->linelen > 0) {
			add(&s->line, &s->linelen, &s->linecap, p, k);
			on_line(tg, s, s->line, s->linelen, t);
			s->linelen = 0;
		} else
			on_line(tg, s, p, k, t);
		p += k + 1;
		n -= k + 1;
	}
}

/* Parse what is in s->in. */
static void
parse(struct target *tg, struct stream *s, int64_t t)
{
	size_t off = 0;
	char *e;

	for (;;) {
		char *p = s->in + off;
		size_t n = s->inlen - off;

		if (s->st == S_HEAD) {
			char *h = memmem(p, n, "\r\n\r\n", 4);
			char *te, *cl;

			if (h == NULL)
				break;
			*h = '\0';
			if (sscanf(p, "HTTP/1.%*d %d", &s->status) != 1)
				FAIL(s, "bad status line");
			off += (size_t)(h + 4 - p);
			te = strcasestr(p, "\r\ntransfer-encoding:");
			cl = strcasestr(p, "\r\ncontent-length:");
			if (te != NULL && strcasestr(te, "chunked") != NULL)
				s->st = S_SIZE;
			else if (cl != NULL) {
				/* The whole answer was in before the head. */
				s->unchunked = 1;
				s->left = strtoul(cl + 17, NULL, 10);
				s->st = S_LENGTH;
				if (s->left == 0)
					FINISH(s, t);
			} else {
				s->unchunked = 1;
				s->st = S_TOEOF;
			}
		} else if (s->st == S_SIZE) {
			char *crlf = memmem(p, n, "\r\n", 2);

			if (crlf == NULL)
				break;
			s->left = strtoul(p, &e, 16);
			if (e == p)
				FAIL(s, "bad chunk size");
			off += (size_t)(crlf + 2 - p);
			s->st = s->left == 0 ? S_TRAILER : S_DATA;
		} else if (s->st == S_DATA) {
			size_t k = n < s->left ? n : s->left;

			if (k == 0)
				break;
			on_body(tg, s, p, k, t);
			if (s->st == S_FAILED)
				return;
			s->left -= k;
			off += k;
			if (s->left == 0)
				s->st = S_CRLF;
		} else if (s->st == S_CRLF) {
			if (n < 2)
				break;
			if (p[0] != '\r' || p[1] != '\n')
				FAIL(s, "bad chunk end");
			off += 2;
			s->st = S_SIZE;
		} else if (s->st == S_LENGTH || s->st == S_TOEOF) {
			size_t k = s->st == S_TOEOF || n < s->left ? n : s->left;

			if (k == 0)
				break;
			on_body(tg, s, p, k, t);
			if (s->st == S_FAILED)
				return;
			off += k;
			if (s->st == S_LENGTH && (s->left -= k) == 0) {
				if (s->linelen > 0) {	/* no final newline */
					on_line(tg, s, s->line, s->linelen, t);
					s->linelen = 0;
					if (s->st == S_FAILED)
						return;
				}
				finish(s, t);
				break;
			}
		} else if (s->st == S_TRAILER) {
			if (n < 2)
				break;
			if (p[0] == '\r' && p[1] == '\n') {
				off += 2;
				FINISH(s, t);
			}
			FAIL(s, "trailers");
		} else
			break;
	}
	if (off > 0) {
		memmove(s->in, s->in + off, s->inlen - off);
		s->inlen -= off;
	}
}

static void
on_event(struct target *tg, struct stream *s, uint32_t events)
{
	char b[65536];
	ssize_t n;
	int64_t t;
	int err = 0;
	socklen_t el = sizeof(err);

	if (s->st == S_CONNECTING) {
		struct epoll_event ev;

		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
		    err != 0)
			FAIL(s, "connect failed");
		if (!(events & EPOLLOUT))
			return;
		if (write(s->fd, request, reqlen) != (ssize_t)reqlen)
			FAIL(s, "short request write");
		s->st = S_HEAD;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = s;
		epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
		return;
	}
	for (;;) {
		n = recv(s->fd, b, sizeof(b), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		t = now_ns();
		if (n == 0 && s->st == S_TOEOF) {
			if (s->linelen > 0) {
				on_line(tg, s, s->line, s->linelen, t);
				s->linelen = 0;
			}
			FINISH(s, t);
		}
		if (n <= 0)
			FAIL(s, n == 0 ? "closed before the end" :
			    "recv failed");
		if (s->t_first == 0)
			s->t_first = t;
		add(&s->in, &s->inlen, &s->incap, b, (size_t)n);
		parse(tg, s, t);
		if (s->st == S_DONE || s->st == S_FAILED)
			return;
	}
}

static void
start(struct stream *s, int port)
{
	struct sockaddr_in sa;
	struct epoll_event ev;
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->t_start = now_ns();
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		die("socket");
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	s->st = S_CONNECTING;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLOUT;
	ev.data.ptr = s;
	if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
	    errno != EINPROGRESS) {
		close(s->fd);
		s->fd = -1;
		fail(s, "connect failed");
		return;
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

/* ---- /proc ---- */

static long
status_kb(long pid, const char *key)
{
	char path[64], line[256];
	size_t k = strlen(key);
	long v = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, key, k) == 0 && line[k] == ':') {
			v = strtol(line + k + 1, NULL, 10);
			break;
		}
	fclose(fp);
	return v;
}

static long
statm_rss_kb(long pid)
{
	char path[64], b[256];
	long size, res;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	b[n] = '\0';
	if (sscanf(b, "%ld %ld", &size, &res) != 2)
		return -1;
	return res * pagekb;
}

/* Pss and Private_Clean + Private_Dirty of pid, kB. */
static int
rollup(long pid, long *pss_kb, long *priv_kb)
{
	char path[64], line[256];
	FILE *fp;
	long v;

	*pss_kb = *priv_kb = 0;
	snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "Pss: %ld", &v) == 1)
			*pss_kb = v;
		else if (sscanf(line, "Private_Clean: %ld", &v) == 1 ||
		    sscanf(line, "Private_Dirty: %ld", &v) == 1)
			*priv_kb += v;
	}
	fclose(fp);
	return 0;
}

static void
sample(struct target *tg)
{
	char path[64], b[65536];
	long rss, n = 0, sum = 0, psum = 0, privsum = 0, ppss = 0, ppriv, v, w;
	ssize_t len;
	char *p, *e;
	int fd;

	tg->samples++;
	rss = status_kb(tg->pid, "VmRSS");
	if (rss > tg->parent_rss_peak)
		tg->parent_rss_peak = rss;
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", tg->pid,
	    tg->pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	len = read(fd, b, sizeof(b) - 1);
	close(fd);
	b[len > 0 ? len : 0] = '\0';
	for (p = b; *p != '\0'; p = e) {
		long c = strtol(p, &e, 10);

		if (e == p)
			break;
		if ((v = statm_rss_kb(c)) < 0)
			continue;
		n++;
		sum += v;
		if (pss && rollup(c, &v, &w) == 0) {
			psum += v;
			privsum += w;
		}
	}
	if (n > tg->children_peak)
		tg->children_peak = n;
	if (sum > tg->children_rss_peak)
		tg->children_rss_peak = sum;
	if (rss + sum > tg->total_rss_peak)
		tg->total_rss_peak = rss + sum;
	if (pss && rollup(tg->pid, &ppss, &ppriv) == 0) {
		if (ppss > tg->parent_pss_peak)
			tg->parent_pss_peak = ppss;
		if (psum > tg->children_pss_peak)
			tg->children_pss_peak = psum;
		if (privsum > tg->children_priv_peak)
			tg->children_priv_peak = privsum;
		if (ppss + psum > tg->total_pss_peak)
			tg->total_pss_peak = ppss + psum;
	}
}

/* utime + stime and cutime + cstime of pid, in clock ticks. */
static int
cpu_ticks(long pid, long long *self, long long *children)
{
	char path[64], b[4096], *p;
	unsigned long long ut, st;
	long long cut, cst;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	b[n] = '\0';
	if ((p = strrchr(b, ')')) == NULL)
		return -1;
	/* after ")": state(3) ... utime(14) stime(15) cutime(16) cstime(17) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%llu %llu %lld %lld", &ut, &st, &cut, &cst) != 4)
		return -1;
	*self = (long long)(ut + st);
	*children = cut + cst;
	return 0;
}

/* ---- rounds ---- */

static void
arm(int tfd, int64_t at)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = at / 1000000000;
	its.it_value.tv_nsec = at % 1000000000;
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void
round_run(struct target *tg, int counted, int tstart, int tsample)
{
	struct stream *ss = calloc((size_t)nstreams, sizeof(*ss));
	struct epoll_event evs[256];
	int64_t t0, deadline, next_sample;
	long long s0 = 0, c0 = 0, s1, c1;
	int started = 0, live = 0, i, n;
	static int tmark, smark;
	struct epoll_event ev;

	if (ss == NULL)
		die("calloc");
	tg->rsent.n = tg->rlat.n = 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &tmark;
	epoll_ctl(ep, EPOLL_CTL_ADD, tstart, &ev);
	ev.data.ptr = &smark;
	epoll_ctl(ep, EPOLL_CTL_ADD, tsample, &ev);
	if (counted && tg->watched)
		cpu_ticks(tg->pid, &s0, &c0);
	t0 = now_ns();
	deadline = t0 + timeout_ns;
	next_sample = t0 + sample_ns;
	if (counted && tg->watched)
		arm(tsample, next_sample);
	arm(tstart, t0);
	while (started < nstreams || live > 0) {
		n = epoll_wait(ep, evs, 256, 100);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			uint64_t x;

			if (p == &tmark) {
				int64_t t = now_ns();

				(void)!read(tstart, &x, sizeof(x));
				while (started < nstreams && t >= t0 +
				    ramp_ns * started / nstreams) {
					start(&ss[started], tg->port);
					if (ss[started].st != S_FAILED)
						live++;
					started++;
				}
				if (started < nstreams)
					arm(tstart, t0 + ramp_ns * started /
					    nstreams);
				continue;
			}
			if (p == &smark) {
				(void)!read(tsample, &x, sizeof(x));
				sample(tg);
				next_sample += sample_ns;
				arm(tsample, next_sample);
				continue;
			}
			{
				struct stream *s = p;

				if (s->fd < 0)
					continue;
				on_event(tg, s, evs[i].events);
				if (s->st == S_DONE || s->st == S_FAILED)
					live--;
			}
		}
		if (now_ns() > deadline) {
			for (i = 0; i < started; i++)
				if (ss[i].st != S_DONE && ss[i].st !=
				    S_FAILED) {
					fail(&ss[i], "timeout");
					live--;
				}
			tg->timed_out = 1;
			break;
		}
	}
	arm(tsample, 0);
	arm(tstart, 0);
	epoll_ctl(ep, EPOLL_CTL_DEL, tstart, NULL);
	epoll_ctl(ep, EPOLL_CTL_DEL, tsample, NULL);
	if (counted && tg->watched) {
		usleep(300000);	/* the children reaped: in cutime */
		if (cpu_ticks(tg->pid, &s1, &c1) == 0) {
			tg->ticks_self += s1 - s0;
			tg->ticks_children += c1 - c0;
		}
	}
	if (counted) {
		/* Steady state: every stream of the round answering. */
		int64_t from = 0, to = INT64_MAX;
		size_t j;

		for (i = 0; i < nstreams; i++) {
			if (ss[i].t_first_content > from)
				from = ss[i].t_first_content;
			if (ss[i].t_end > 0 && ss[i].t_end < to)
				to = ss[i].t_end;
			if (ss[i].t_first_content == 0 || ss[i].t_end == 0)
				to = 0;	/* a failed stream: no window */
		}
		for (j = 0; j < tg->rlat.n; j++) {
			vpush(&tg->chunk, tg->rlat.v[j]);
			if (tg->rsent.v[j] >= from && tg->rsent.v[j] < to)
				vpush(&tg->steady, tg->rlat.v[j]);
		}
	}
	for (i = 0; i < nstreams; i++) {
		struct stream *s = &ss[i];

		if (counted) {
			tg->streams++;
			tg->empty_lines += s->empty;
			tg->unchunked += s->unchunked;
			if (s->st == S_DONE) {
				tg->ok++;
				vpush(&tg->ttfb, s->t_first - s->t_start);
				vpush(&tg->ttfc, s->t_first_content -
				    s->t_start);
				vpush(&tg->total, s->t_end - s->t_start);
			} else {
				tg->errors++;
				fprintf(stderr, "serve-load-client: %s: stream "
				    "%d: %s (HTTP %d, %d content lines)\n",
				    tg->name, i, s->why ? s->why : "?",
				    s->status, s->content);
			}
		} else if (s->st != S_DONE)
			fprintf(stderr, "serve-load-client: %s: warm-up "
			    "stream %d: %s\n", tg->name, i, s->why ? s->why :
			    "?");
		if (s->fd >= 0)
			close(s->fd);
		free(s->in);
		free(s->line);
	}
	free(ss);
}

static void
print_dist(const char *name, struct vec *v, int more)
{
	qsort(v->v, v->n, sizeof(*v->v), cmp64);
	printf("\"%s\":{\"n\":%zu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f", name,
	    v->n, pct(v, 0.50), pct(v, 0.90), pct(v, 0.99));
	if (more)
		printf(",\"p999\":%.1f", pct(v, 0.999));
	printf(",\"max\":%.1f}", pct(v, 1.0));
}

int
main(int argc, char **argv)
{
	const char *body = "{\"model\":\"bench\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"Say something.\"}],\"stream\":true,"
	    "\"options\":{\"num_ctx\":8192}}";
	struct rlimit rl;
	int i, r, t, tstart, tsample;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "-n") == 0 && v)
			nstreams = atoi(v), i++;
		else if (strcmp(a, "-r") == 0 && v)
			rounds = atoi(v), i++;
		else if (strcmp(a, "-w") == 0 && v)
			warmup = atoi(v), i++;
		else if (strcmp(a, "-k") == 0 && v)
			kexp = atoi(v), i++;
		else if (strcmp(a, "--ramp-ms") == 0 && v)
			ramp_ns = (int64_t)(atof(v) * 1e6), i++;
		else if (strcmp(a, "--timeout-s") == 0 && v)
			timeout_ns = (int64_t)(atof(v) * 1e9), i++;
		else if (strcmp(a, "--sample-ms") == 0 && v)
			sample_ns = (int64_t)(atof(v) * 1e6), i++;
		else if (strcmp(a, "--pss") == 0)
			pss = 1;
		else if (strcmp(a, "--watch") == 0 && v) {
			const char *eq = strchr(v, '=');

			for (t = 0; eq && t < ntargets; t++)
				if (strlen(targets[t].name) == (size_t)(eq - v) &&
				    strncmp(targets[t].name, v, (size_t)(eq - v))
				    == 0) {
					targets[t].watched = 1;
					targets[t].pid = atol(eq + 1);
					break;
				}
			if (eq == NULL || t == ntargets) {
				fprintf(stderr, "serve-load-client: --watch "
				    "%s: give NAME=PID after the target\n", v);
				return 2;
			}
			i++;
		} else if (a[0] != '-' && strchr(a, '=') != NULL &&
		    ntargets < MAXT) {
			struct target *tg = &targets[ntargets++];
			const char *eq = strchr(a, '=');

			snprintf(tg->name, sizeof(tg->name), "%.*s",
			    (int)(eq - a), a);
			tg->port = atoi(eq + 1);
		} else {
			fprintf(stderr, "usage: serve-load-client [-n N] [-r R] "
			    "[-w W] [-k K] [--ramp-ms MS] [--timeout-s S] "
			    "NAME=PORT... [--watch NAME=PID] [--sample-ms MS] "
			    "[--pss]\n");
			return 2;
		}
	}
	if (ntargets == 0 || nstreams < 1 || rounds < 1 || warmup < 0) {
		fprintf(stderr, "serve-load-client: bad arguments\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	pagekb = sysconf(_SC_PAGESIZE) / 1024;
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_TIMERSLACK, 1UL);
	reqlen = (size_t)snprintf(request, sizeof(request), "POST /api/chat "
	    "HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", strlen(body),
	    body);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	tstart = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	tsample = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (tstart < 0 || tsample < 0)
		die("timerfd_create");
	for (r = 0; r < warmup + rounds; r++)
		for (t = 0; t < ntargets; t++) {
			struct target *tg = &targets[(r + t) % ntargets];

			if (tg->timed_out) {
				if (r >= warmup) {	/* counted as failed */
					tg->streams += nstreams;
					tg->errors += nstreams;
				}
				continue;
			}
			round_run(tg, r >= warmup, tstart, tsample);
			usleep(100000);
		}
	for (t = 0; t < ntargets; t++) {
		struct target *tg = &targets[t];

		printf("{\"target\":\"%s\",\"streams\":%d,\"rounds\":%d,"
		    "\"ok\":%ld,\"errors\":%ld,\"empty_lines\":%ld,"
		    "\"unchunked\":%ld,\"timed_out\":%d,", tg->name, nstreams,
		    rounds, tg->ok, tg->errors, tg->empty_lines, tg->unchunked,
		    tg->timed_out);
		print_dist("ttfb_us", &tg->ttfb, 0);
		putchar(',');
		print_dist("ttfc_us", &tg->ttfc, 0);
		putchar(',');
		print_dist("total_us", &tg->total, 0);
		putchar(',');
		print_dist("chunk_us", &tg->chunk, 1);
		putchar(',');
		print_dist("steady_us", &tg->steady, 1);
		if (tg->watched) {
			long hz = sysconf(_SC_CLK_TCK);

			tg->parent_hwm = status_kb(tg->pid, "VmHWM");
			printf(",\"mem_kb\":{\"samples\":%ld,\"parent_hwm\":%ld,"
			    "\"parent_rss_peak\":%ld,\"children_peak\":%ld,"
			    "\"children_rss_sum_peak\":%ld,"
			    "\"total_rss_sum_peak\":%ld", tg->samples,
			    tg->parent_hwm, tg->parent_rss_peak,
			    tg->children_peak, tg->children_rss_peak,
			    tg->total_rss_peak);
			if (pss)
				printf(",\"parent_pss_peak\":%ld,"
				    "\"children_pss_sum_peak\":%ld,"
				    "\"children_private_sum_peak\":%ld,"
				    "\"total_pss_sum_peak\":%ld",
				    tg->parent_pss_peak, tg->children_pss_peak,
				    tg->children_priv_peak, tg->total_pss_peak);
			printf("},\"cpu_ms\":{\"parent\":%.0f,\"children\":%.0f}",
			    (double)tg->ticks_self * 1000.0 / (double)hz,
			    (double)tg->ticks_children * 1000.0 / (double)hz);
		}
		printf("}\n");
	}
	{
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		printf("{\"client_cpu_ms\":%.0f}\n", (double)(ru.ru_utime.tv_sec +
		    ru.ru_stime.tv_sec) * 1e3 + (double)(ru.ru_utime.tv_usec +
		    ru.ru_stime.tv_usec) / 1e3);
	}
	return 0;
}
