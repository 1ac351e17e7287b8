/*
 * serve.c - llm-serve's event loop: libmicrohttpd's sockets, the jobs'
 * pipes, their exits and the signals, all on one epoll set.
 */
#define _GNU_SOURCE	/* close_range, pipe2, accept flags */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "policy.h"
#include "serve.h"

#define PIPE_HIGH	(256 * 1024)	/* stop reading a job's pipe */
#define PIPE_LOW	(64 * 1024)	/* read it again */
#define TICK_MS		250		/* keep-alive and drain checks */
#define FORKS_PER_LOOP	4		/* jobs started between two rounds of
					   relaying: a burst of new requests
					   delays the streams in flight by a
					   few forks, not by all of them */
#define RESPONSE_BLOCK	8192		/* MHD's buffer for a streamed reply;
					   chunks are small, and 64K a
					   stream made the server 15 MB
					   bigger at 256 streams */
#define PREFETCH_QUEUE	8
#define PREFETCH_KEYS	4096		/* keys remembered for hit counts */
#define NBUCKETS	15
#define NCOUNTERS	256

enum { OUT_NONE, OUT_DONE, OUT_FAILED, OUT_CUT };	/* sreq.outcome */

static const double buckets[NBUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };

enum watch_type { W_DAEMON, W_SIGNAL, W_PIPE, W_SOCK };

struct watch {
	enum watch_type type;
	void *p;
};

struct hist {
	unsigned long n[NBUCKETS + 1];
	double sum;
	unsigned long count;
};

struct sreq {
	struct server *sv;
	struct sreq *prev, *next;
	struct MHD_Connection *conn;	/* NULL: a background job */
	const char *endpoint;		/* for the log and /metrics */
	enum job_kind kind;
	int is_job, is_chat;
	char method[16];
	char *path;
	char client[80];
	struct buf body;
	int over;			/* the body passed --max-body */
	/* The job. */
	pid_t pid;
	int fd;				/* the job's pipe, or -1 */
	int pipe_paused;
	struct watch wpipe, wsock;
	int sock;			/* the client's, watched, or -1 */
	struct buf in;			/* frames not yet whole */
	struct buf out;			/* body bytes for the client */
	size_t out_off;
	int status;
	char ctype[128], kind_s[8], model[128];
	int headed, queued, eof, exited, suspended, gone, done;
	int outcome;			/* what the job said at its end */
	int waiting;			/* in the queue of jobs to start */
	struct sreq *wnext;
	int cut;			/* the body ends with an error */
	const char *allow;		/* 405: the methods allowed */
	int exit_status;
	char last2[2];			/* the last two bytes relayed */
	/* What the job said. */
	char strategy[16];
	int condensing;			/* started condensing, not answering */
	long tokens, tokens_sent;
	/* Times, ms. */
	double t0, t_first, t_token, t_last;
	size_t bytes;
};

struct counter {
	char endpoint[24], strategy[16];
	int status;
	unsigned long n;
};

struct server {
	struct config *cfg;
	struct serve_opts *o;
	struct cache cache;
	int ep, sigfd;
	struct watch wsig;
	struct MHD_Daemon *d[SERVE_MAX_LISTEN];
	struct watch wd[SERVE_MAX_LISTEN];
	int nd;
	char *token;
	struct sreq *reqs;		/* every request and job alive */
	struct sreq *whead, **wtail;	/* requests whose job is to start */
	int streams;			/* chat requests in flight */
	int draining, stopping, stopped;
	double drain_at;
	/* Models and the num_ctx this server sends them. */
	char *ctx_model[64];
	long ctx_value[64];
	int nctx;
	/* GPU1's cool-down: not asked until then, failing as it did. */
	double helper_down_until;
	struct lr_err helper_err;
	/* Background condensing. */
	char *pq[PREFETCH_QUEUE];
	size_t pqlen[PREFETCH_QUEUE];
	int npq;
	struct sreq *prefetching;
	char (*pkeys)[CACHE_KEY_LEN + 1];
	int npkeys;
	/* /metrics */
	struct counter counters[NCOUNTERS];
	int ncounters;
	struct hist h_first, h_token, h_total, h_helper;
	unsigned long helper_cooldowns;
	unsigned long disconnects, cache_hits, cache_misses, tokens_saved,
	    prefetch_jobs, prefetch_chunks, prefetch_hits, prefetch_cancelled;
};

/* -------------------------------------------------------------------- */

static void
hist_add(struct hist *h, double secs)
{
	int i;

	for (i = 0; i < NBUCKETS && secs > buckets[i]; i++)
		;
	h->n[i]++;
	h->sum += secs;
	h->count++;
}

static void
count(struct server *sv, const char *endpoint, const char *strategy,
    int status)
{
	struct counter *c;
	int i;

	for (i = 0; i < sv->ncounters; i++) {
		c = &sv->counters[i];
		if (c->status == status && strcmp(c->endpoint, endpoint) == 0 &&
		    strcmp(c->strategy, strategy) == 0) {
			c->n++;
			return;
		}
	}
	if (sv->ncounters == NCOUNTERS)
		return;
	c = &sv->counters[sv->ncounters++];
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
	snprintf(c->strategy, sizeof(c->strategy), "%s", strategy);
	c->status = status;
	c->n = 1;
}

static void
hist_print(struct buf *b, const char *name, const char *help,
    const struct hist *h)
{
	unsigned long cum = 0;
	int i;

	buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (i = 0; i < NBUCKETS; i++) {
		cum += h->n[i];
		buf_printf(b, "%s_bucket{le=\"%g\"} %lu\n", name, buckets[i],
		    cum);
	}
	buf_printf(b, "%s_bucket{le=\"+Inf\"} %lu\n%s_sum %.6f\n%s_count %lu\n",
	    name, h->count, name, h->sum, name, h->count);
}

static void
metric(struct buf *b, const char *name, const char *type, const char *help,
    unsigned long v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name, help, name,
	    type, name, v);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void
label(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\\' || *s == '"')
			buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			buf_adds(b, "\\n");
		else
			buf_addc(b, *s);
}

/*
 * Each role's speeds for its configured model, as the cost policy
 * knows them: measured by the jobs (in the cache), else configured.
 */
static void
speeds(struct server *sv, struct buf *b)
{
	static const char *const name[] = {
	    "llm_serve_prefill_tokens_per_second",
	    "llm_serve_decode_tokens_per_second", "llm_serve_load_seconds",
	    "llm_serve_overhead_seconds", "llm_serve_speed_answers" };
	static const char *const help[] = { "Prefill speed",
	    "Decode speed", "Mean model load time",
	    "Mean time to the first byte beyond prefill and load",
	    "Answers the speeds were measured from (0: configured)" };
	struct speed sp[NROLES];
	int i, k;

	for (i = 0; i < NROLES; i++)
		speed_get(&sv->cfg->role[i], sv->cfg->role[i].model,
		    &sv->cache, &sp[i]);
	for (k = 0; k < 5; k++) {
		buf_printf(b, "# HELP %s %s, by role and model.\n"
		    "# TYPE %s gauge\n", name[k], help[k], name[k]);
		for (i = 0; i < NROLES; i++) {
			double v = k == 0 ? sp[i].prefill : k == 1 ?
			    sp[i].decode : k == 2 ? sp[i].load_ms / 1000 :
			    k == 3 ? sp[i].overhead_ms / 1000 :
			    sp[i].nprefill > sp[i].ndecode ? sp[i].nprefill :
			    sp[i].ndecode;

			buf_printf(b, "%s{role=\"%s\",model=\"",
			    name[k], sv->cfg->role[i].name);
			label(b, sv->cfg->role[i].model);
			buf_printf(b, "\"} %g\n", v);
		}
	}
}

static void
metrics(struct server *sv, struct buf *b)
{
	int i;

	buf_adds(b, "# HELP llm_serve_requests_total Requests answered, by "
	    "endpoint, strategy and HTTP status.\n"
	    "# TYPE llm_serve_requests_total counter\n");
	for (i = 0; i < sv->ncounters; i++)
		buf_printf(b, "llm_serve_requests_total{endpoint=\"%s\","
		    "strategy=\"%s\",status=\"%d\"} %lu\n",
		    sv->counters[i].endpoint, sv->counters[i].strategy,
		    sv->counters[i].status, sv->counters[i].n);
	hist_print(b, "llm_serve_first_byte_seconds", "Time to the first "
	    "byte sent to the client.", &sv->h_first);
	hist_print(b, "llm_serve_first_token_seconds", "Time to GPU0's "
	    "first answer line.", &sv->h_token);
	hist_print(b, "llm_serve_answer_seconds", "Time to the end of a "
	    "chat answer.", &sv->h_total);
	hist_print(b, "llm_serve_helper_seconds", "Time spent condensing "
	    "on GPU1 before the answer.", &sv->h_helper);
	metric(b, "llm_serve_cache_hits_total", "counter", "Chunk summaries "
	    "found in the cache.", sv->cache_hits);
	metric(b, "llm_serve_cache_misses_total", "counter", "Chunk summaries "
	    "not in the cache.", sv->cache_misses);
	metric(b, "llm_serve_prompt_tokens_saved_total", "counter", "Prompt "
	    "tokens (estimated) that condensing kept from GPU0.",
	    sv->tokens_saved);
	metric(b, "llm_serve_streams_in_flight", "gauge", "Chat requests in "
	    "flight.", (unsigned long)sv->streams);
	metric(b, "llm_serve_client_disconnects_total", "counter", "Clients "
	    "gone before their answer ended.", sv->disconnects);
	metric(b, "llm_serve_helper_cooldowns_total", "counter", "Times GPU1 "
	    "failed and was then left alone for a while.",
	    sv->helper_cooldowns);
	metric(b, "llm_serve_prefetch_jobs_total", "counter", "Background "
	    "condensing runs.", sv->prefetch_jobs);
	metric(b, "llm_serve_prefetch_chunks_total", "counter", "Chunk "
	    "summaries written by background condensing.",
	    sv->prefetch_chunks);
	metric(b, "llm_serve_prefetch_hits_total", "counter", "Cache hits on "
	    "summaries that background condensing wrote.", sv->prefetch_hits);
	metric(b, "llm_serve_prefetch_cancelled_total", "counter", "Background "
	    "runs cancelled for a request in the foreground.",
	    sv->prefetch_cancelled);
	speeds(sv, b);
}

/* -------------------------------------------------------------------- */

static void
ep_ctl(struct server *sv, int op, int fd, uint32_t events, struct watch *w)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = w;
	if (epoll_ctl(sv->ep, op, fd, &ev) != 0)
		lr_warn("epoll: %s", strerror(errno));
}

static void
ep_del(struct server *sv, int fd)
{
	epoll_ctl(sv->ep, EPOLL_CTL_DEL, fd, NULL);
}

static struct sreq *
req_new(struct server *sv)
{
	struct sreq *r = xmalloc(sizeof(*r));

	memset(r, 0, sizeof(*r));
	r->sv = sv;
	r->fd = r->sock = -1;
	r->pid = -1;
	r->endpoint = "other";
	r->t0 = lr_now_ms();
	snprintf(r->strategy, sizeof(r->strategy), "none");
	r->next = sv->reqs;
	if (sv->reqs != NULL)
		sv->reqs->prev = r;
	sv->reqs = r;
	return r;
}

/* Free r when neither the connection nor the job holds it. */
static void
req_release(struct sreq *r)
{
	struct server *sv = r->sv;

	if (r->conn != NULL || r->fd >= 0 || (r->pid > 0 && !r->exited))
		return;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		sv->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	if (sv->prefetching == r)
		sv->prefetching = NULL;
	buf_free(&r->body);
	buf_free(&r->in);
	buf_free(&r->out);
	free(r->path);
	free(r);
}

static void
resume(struct sreq *r)
{
	if (r->suspended && r->conn != NULL) {
		r->suspended = 0;
		MHD_resume_connection(r->conn);
	}
}

static void
unwatch_sock(struct sreq *r)
{
	if (r->sock >= 0) {
		ep_del(r->sv, r->sock);
		r->sock = -1;
	}
}

static void
close_pipe(struct sreq *r)
{
	if (r->fd >= 0) {
		ep_del(r->sv, r->fd);
		close(r->fd);
		r->fd = -1;
	}
}

/* The client left before the end: cancel the job, everything it asked. */
static void
client_gone(struct sreq *r)
{
	if (r->gone || r->done)
		return;
	r->gone = 1;
	r->sv->disconnects++;
	unwatch_sock(r);
	close_pipe(r);
	if (r->pid > 0 && !r->exited)
		kill(r->pid, SIGTERM);
	resume(r);
}

/* -------------------------------------------------------------------- */

static void
out_add(struct sreq *r, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (r->out_off > 0 && r->out_off == r->out.len) {
		buf_reset(&r->out);
		r->out_off = 0;
	}
	buf_add(&r->out, p, n);
	if (n >= 2)
		memcpy(r->last2, p + n - 2, 2);
	else {
		r->last2[0] = r->last2[1];
		r->last2[1] = p[0];
	}
	r->t_last = lr_now_ms();
	resume(r);
}

static void
out_adds(struct sreq *r, const char *s)
{
	out_add(r, s, strlen(s));
}

/* At a line (NDJSON) or event (SSE) boundary? */
static int
at_boundary(const struct sreq *r)
{
	if (strcmp(r->kind_s, KIND_SSE) == 0)
		return r->last2[0] == '\n' && r->last2[1] == '\n';
	return r->last2[1] == '\n';
}

static void
keepalive(struct sreq *r)
{
	struct buf b = BUF_INIT;

	if (strcmp(r->kind_s, KIND_SSE) == 0) {
		out_adds(r, ": keep-alive\n\n");
		return;
	}
	buf_printf(&b, "{\"model\":\"%s\",\"created_at\":\"", r->model);
	lr_put_time(&b);
	buf_adds(&b, "\",\"message\":{\"role\":\"assistant\",\"content\":"
	    "\"\"},\"done\":false}\n");
	out_add(r, b.p, b.len);
	buf_free(&b);
}

static const char *
kv(const char *s, const char *key, char *val, size_t vsz)
{
	size_t k = strlen(key);
	const char *p = s, *e;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == s || p[-1] == ' ') && p[k] == '=') {
			p += k + 1;
			e = p + strcspn(p, " ");
			snprintf(val, vsz, "%.*s", (int)(e - p), p);
			return val;
		}
		p += k;
	}
	return NULL;
}

static long
kv_long(const char *s, const char *key)
{
	char v[32];

	return kv(s, key, v, sizeof(v)) != NULL ? strtol(v, NULL, 10) : -1;
}

static void prefetch_enqueue(struct server *sv, struct sreq *r);
static void prefetch_cancel(struct server *sv);

static void
remember_ctx(struct server *sv, const char *model, long n)
{
	int i;

	if (n <= 0)
		return;
	for (i = 0; i < sv->nctx; i++)
		if (strcmp(sv->ctx_model[i], model) == 0)
			return;
	if (sv->nctx == 64)
		return;
	sv->ctx_model[sv->nctx] = xstrdup(model);
	sv->ctx_value[sv->nctx++] = n;
}

static int
pkey_known(struct server *sv, const char *key)
{
	int i;

	for (i = 0; i < sv->npkeys && i < PREFETCH_KEYS; i++)
		if (strcmp(sv->pkeys[i], key) == 0)
			return 1;
	return 0;
}

/* An info frame: what the job decided and measured. */
static void
on_info(struct sreq *r, const char *s)
{
	struct server *sv = r->sv;
	char v[256];
	long a, b;

	if (strncmp(s, "helper_down=", 12) == 0) {
		if (lr_now_ms() < sv->helper_down_until)
			return;
		sv->helper_down_until = lr_now_ms() +
		    SERVE_HELPER_COOLDOWN_MS;
		lr_seterr(&sv->helper_err, LR_UNREACHABLE, "%s (GPU1 is not "
		    "asked for %d s after it failed)", s + 12,
		    SERVE_HELPER_COOLDOWN_MS / 1000);
		lr_warn("%s", sv->helper_err.msg);
		sv->helper_cooldowns++;
		return;
	}
	if (strncmp(s, "hit=", 4) == 0) {
		if (pkey_known(sv, s + 4))
			sv->prefetch_hits++;
		return;
	}
	if (strncmp(s, "prefetched=", 11) == 0) {
		snprintf(sv->pkeys[sv->npkeys++ % PREFETCH_KEYS],
		    CACHE_KEY_LEN + 1, "%s", s + 11);
		sv->prefetch_chunks++;
		return;
	}
	if (kv(s, "strategy", v, sizeof(v)) != NULL)
		snprintf(r->strategy, sizeof(r->strategy), "%.15s", v);
	if (kv(s, "phase", v, sizeof(v)) == NULL)
		return;
	if (strcmp(v, "done") == 0) {
		const char *m = strstr(s, " model=");

		r->outcome = OUT_DONE;
		/* The num_ctx this model is sent from now on: known to
		 * work.  The model comes last and runs to the end. */
		if (m != NULL && m[7] != '\0')
			remember_ctx(sv, m + 7, kv_long(s, "num_ctx"));
	} else if (strcmp(v, "failed") == 0)
		r->outcome = OUT_FAILED;
	else if (strcmp(v, "cut") == 0)
		r->outcome = OUT_CUT;
	else if (strcmp(v, "start") == 0) {
		r->tokens = kv_long(s, "tokens");
		/* Condensing that asks GPU1 comes first: the background
		 * job gives way.  Not for one that asks it nothing. */
		if (strcmp(r->strategy, "direct") != 0 &&
		    (kv(s, "helper", v, sizeof(v)) == NULL ||
		    strcmp(v, "no") != 0)) {
			r->condensing = 1;
			prefetch_cancel(sv);
		}
	} else if (strcmp(v, "answer") == 0) {
		r->condensing = 0;
		r->tokens_sent = kv_long(s, "tokens_sent");
		if (r->tokens > r->tokens_sent && r->tokens_sent >= 0)
			sv->tokens_saved += (unsigned long)(r->tokens -
			    r->tokens_sent);
		if (kv(s, "condense_ms", v, sizeof(v)) != NULL &&
		    strcmp(r->strategy, "direct") != 0)
			hist_add(&sv->h_helper, strtod(v, NULL) / 1000);
		a = kv_long(s, "chunks");
		b = kv_long(s, "cache_hits");
		if (a > 0 && b >= 0 && b <= a) {
			sv->cache_hits += (unsigned long)b;
			sv->cache_misses += (unsigned long)(a - b);
		}
	} else if (strcmp(v, "answering") == 0 && r->t_token == 0) {
		r->t_token = lr_now_ms();
		hist_add(&sv->h_token, (r->t_token - r->t0) / 1000);
		if (sv->o != NULL && sv->cfg->serve.prefetch && !sv->draining)
			prefetch_enqueue(sv, r);
	}
}

/* Frames from a job's pipe; -1 for a bad one. */
static int
on_frames(struct sreq *r)
{
	const unsigned char *p;
	uint32_t len;
	size_t off = 0;
	char *s;

	while (r->in.len - off >= FRAME_HDR) {
		p = (const unsigned char *)r->in.p + off;
		memcpy(&len, p + 1, 4);
		if (len > FRAME_MAX || (p[0] != FR_HEAD && p[0] != FR_DATA &&
		    p[0] != FR_INFO)) {
			lr_warn("%s %s: a bad frame from its worker", r->method,
			    r->path);
			if (r->pid > 0 && !r->exited)
				kill(r->pid, SIGKILL);
			r->in.len = 0;
			return -1;
		}
		if (r->in.len - off - FRAME_HDR < len)
			break;
		s = (char *)(uintptr_t)(p + FRAME_HDR);
		switch (p[0]) {
		case FR_HEAD: {
			char *save = NULL, *tok, *copy = xstrndup(s, len);

			tok = strtok_r(copy, "\n", &save);
			r->status = tok != NULL ? atoi(tok) : 500;
			tok = strtok_r(NULL, "\n", &save);
			snprintf(r->ctype, sizeof(r->ctype), "%s",
			    tok != NULL ? tok : "application/json");
			tok = strtok_r(NULL, "\n", &save);
			snprintf(r->kind_s, sizeof(r->kind_s), "%s",
			    tok != NULL ? tok : KIND_BODY);
			tok = strtok_r(NULL, "\n", &save);
			if (tok != NULL && strpbrk(tok, "\"\\") == NULL)
				snprintf(r->model, sizeof(r->model), "%s", tok);
			free(copy);
			r->headed = 1;
			resume(r);
			break;
		}
		case FR_DATA:
			if (r->conn != NULL && !r->gone)
				out_add(r, s, len);
			break;
		case FR_INFO: {
			char *copy = xstrndup(s, len);

			on_info(r, copy);
			free(copy);
			break;
		}
		}
		off += FRAME_HDR + len;
	}
	if (off > 0) {
		memmove(r->in.p, r->in.p + off, r->in.len - off);
		r->in.len -= off;
	}
	return 0;
}

/*
 * The job's output ended.  A job that did not say how it ended died:
 * its stream gets an error line (never a silent cut), a body is cut.
 */
static void
job_ended(struct sreq *r)
{
	static const char died[] = "llm-serve: the request's worker ended "
	    "without finishing the answer";

	r->eof = 1;
	if (r->conn == NULL || r->gone)
		return;
	if (!r->headed) {
		r->status = 500;
		snprintf(r->ctype, sizeof(r->ctype), "application/json");
		snprintf(r->kind_s, sizeof(r->kind_s), KIND_BODY);
		r->headed = 1;
		out_adds(r, "{\"error\":\"");
		out_adds(r, died);
		out_adds(r, "\"}");
	} else if (r->outcome == OUT_NONE &&
	    strcmp(r->kind_s, KIND_BODY) != 0) {
		int sse = strcmp(r->kind_s, KIND_SSE) == 0;

		if (!at_boundary(r))
			out_add(r, sse ? "\n\n" : "\n", sse ? 2 : 1);
		out_adds(r, sse ? "data: {\"error\":{\"message\":\"" :
		    "{\"error\":\"");
		out_adds(r, died);
		out_adds(r, sse ? "\",\"type\":\"server_error\"}}\n\n" :
		    "\"}\n");
	} else if (r->outcome == OUT_NONE || r->outcome == OUT_CUT)
		r->cut = 1;
	resume(r);
}

static void
pipe_pause(struct sreq *r, int pause)
{
	if (r->fd < 0 || r->pipe_paused == pause)
		return;
	r->pipe_paused = pause;
	ep_ctl(r->sv, EPOLL_CTL_MOD, r->fd, pause ? 0 : EPOLLIN, &r->wpipe);
}

static void
on_pipe(struct sreq *r)
{
	char b[65536];
	ssize_t n;

	if (r->fd < 0)
		return;
	for (;;) {
		n = read(r->fd, b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			close_pipe(r);
			job_ended(r);
			break;
		}
		buf_add(&r->in, b, (size_t)n);
		if (on_frames(r) != 0) {
			close_pipe(r);
			job_ended(r);
			break;
		}
		if (r->out.len - r->out_off > PIPE_HIGH) {
			pipe_pause(r, 1);
			break;
		}
	}
	req_release(r);
}

/* -------------------------------------------------------------------- */

static void
child_setup(int fd)
{
	sigset_t all;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	lr_die_without_exit_handlers();
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	backend_signals();
	if (fd != 3) {
		dup2(fd, 3);
		close(fd);
	}
	close_range(4, ~0U, 0);
}

/* Start r's job in a child process. */
static int
job_start(struct server *sv, struct sreq *r)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0) {
		lr_warn("pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stderr);
	if ((pid = fork()) < 0) {
		lr_warn("fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		struct job j;
		struct route_opts ro = sv->o->ro;
		int st;

		close(fds[0]);
		child_setup(fds[1]);
		memset(&j, 0, sizeof(j));
		j.kind = r->kind;
		j.method = r->method;
		j.path = r->path;
		j.body = r->body.p != NULL ? r->body.p : "";
		j.len = r->body.len;
		j.fd = 3;
		j.cfg = sv->cfg;
		j.ro = &ro;
		j.cache = &sv->cache;
		j.ctx_models = (const char *const *)(void *)sv->ctx_model;
		j.ctx_values = sv->ctx_value;
		j.nctx = sv->nctx;
		if (lr_now_ms() < sv->helper_down_until)
			j.helper_down = &sv->helper_err;
		if (r->kind == JOB_PREFETCH)
			(void)!nice(10);
		st = job_run(&j);
		_exit(st > 255 ? 1 : st);
	}
	close(fds[1]);
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	r->pid = pid;
	r->fd = fds[0];
	r->wpipe.type = W_PIPE;
	r->wpipe.p = r;
	ep_ctl(sv, EPOLL_CTL_ADD, r->fd, EPOLLIN, &r->wpipe);
	return 0;
}

/* Watch r's client for a hang-up while its answer is pending. */
static void
watch_sock(struct server *sv, struct sreq *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);

	if (ci == NULL || r->sock >= 0)
		return;
	r->sock = ci->connect_fd;
	r->wsock.type = W_SOCK;
	r->wsock.p = r;
	ep_ctl(sv, EPOLL_CTL_ADD, r->sock, EPOLLRDHUP, &r->wsock);
}

static void
unqueue(struct server *sv, struct sreq *r)
{
	struct sreq **p;

	if (!r->waiting)
		return;
	for (p = &sv->whead; *p != NULL; p = &(*p)->wnext)
		if (*p == r) {
			*p = r->wnext;
			break;
		}
	sv->wtail = &sv->whead;
	while (*sv->wtail != NULL)
		sv->wtail = &(*sv->wtail)->wnext;
	r->waiting = 0;
}

/* Start the queued jobs, a few at a time. */
static void
start_jobs(struct server *sv)
{
	struct sreq *r;
	int n;

	for (n = 0; n < FORKS_PER_LOOP && (r = sv->whead) != NULL; n++) {
		unqueue(sv, r);
		if (r->gone)
			continue;
		if (job_start(sv, r) != 0)
			job_ended(r);	/* a 500: the worker did not start */
	}
}

static void
on_exit_status(struct server *sv)
{
	struct sreq *r, *next;
	int wst;
	pid_t pid;

	while ((pid = waitpid(-1, &wst, WNOHANG)) > 0)
		for (r = sv->reqs; r != NULL; r = next) {
			next = r->next;
			if (r->pid != pid)
				continue;
			r->exited = 1;
			r->exit_status = WIFEXITED(wst) ? WEXITSTATUS(wst) :
			    128 + WTERMSIG(wst);
			if (r->conn == NULL && r->fd < 0)
				req_release(r);
			break;
		}
}

/* -------------------------------------------------------------------- */

static void
prefetch_start(struct server *sv)
{
	struct sreq *r, *x;

	if (sv->prefetching != NULL || sv->npq == 0 || sv->draining ||
	    lr_now_ms() < sv->helper_down_until)
		return;
	for (x = sv->reqs; x != NULL; x = x->next)
		if (x->condensing && x->conn != NULL)
			return;	/* the foreground first */
	r = req_new(sv);
	r->kind = JOB_PREFETCH;
	r->is_job = 1;
	r->endpoint = "prefetch";
	snprintf(r->method, sizeof(r->method), "-");
	r->path = xstrdup("(prefetch)");
	r->body.p = sv->pq[0];
	r->body.len = r->body.cap = sv->pqlen[0];
	memmove(sv->pq, sv->pq + 1, sizeof(sv->pq[0]) * (size_t)(sv->npq - 1));
	memmove(sv->pqlen, sv->pqlen + 1, sizeof(sv->pqlen[0]) *
	    (size_t)(sv->npq - 1));
	sv->npq--;
	if (job_start(sv, r) != 0) {
		req_release(r);
		return;
	}
	sv->prefetching = r;
	sv->prefetch_jobs++;
}

static void
prefetch_enqueue(struct server *sv, struct sreq *r)
{
	if ((r->kind != JOB_OLLAMA_CHAT && r->kind != JOB_OPENAI_CHAT) ||
	    sv->cache.dir == NULL)
		return;	/* with no cache, nowhere to keep what it made */
	/* By the thresholds a chat answered direct is not condensed next
	 * turn either; the cost policy prepares while chats still fit. */
	if (sv->cfg->policy != POLICY_COST &&
	    strcmp(r->strategy, "mapreduce") != 0 &&
	    strcmp(r->strategy, "summarize") != 0)
		return;
	if (sv->npq == PREFETCH_QUEUE) {
		free(sv->pq[0]);
		memmove(sv->pq, sv->pq + 1, sizeof(sv->pq[0]) *
		    (PREFETCH_QUEUE - 1));
		memmove(sv->pqlen, sv->pqlen + 1, sizeof(sv->pqlen[0]) *
		    (PREFETCH_QUEUE - 1));
		sv->npq--;
	}
	/* The job has its own copy of the body: the queue takes ours. */
	sv->pqlen[sv->npq] = r->body.len;
	sv->pq[sv->npq++] = buf_detach(&r->body);
	prefetch_start(sv);
}

static void
prefetch_cancel(struct server *sv)
{
	struct sreq *r = sv->prefetching;

	if (r == NULL)
		return;
	if (r->pid > 0 && !r->exited)
		kill(r->pid, SIGTERM);
	sv->prefetch_cancelled++;
	sv->prefetching = NULL;
}

/* -------------------------------------------------------------------- */

static enum MHD_Result
reply(struct MHD_Connection *c, int status, const char *ctype,
    const char *body, size_t n, const char *hname, const char *hval)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(n, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	if (status == 503)
		MHD_add_response_header(resp, "Retry-After", "1");
	if (hname != NULL)
		MHD_add_response_header(resp, hname, hval);
	ret = MHD_queue_response(c, (unsigned int)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
reply_error(struct sreq *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result
reply_error(struct sreq *r, int status, const char *fmt, ...)
{
	struct buf m = BUF_INIT, b = BUF_INIT;
	enum MHD_Result ret;
	va_list ap;
	jv s;

	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	s = jv_dump_string(jv_string(buf_str(&m)), 0);
	if (strncmp(r->path, "/v1/", 4) == 0)
		buf_printf(&b, "{\"error\":{\"message\":%s,\"type\":\"%s\","
		    "\"param\":null,\"code\":null}}", jv_string_value(s),
		    status < 500 ? "invalid_request_error" : "server_error");
	else
		buf_printf(&b, "{\"error\":%s}", jv_string_value(s));
	jv_free(s);
	r->status = status;
	r->done = 1;
	r->bytes = b.len;
	r->t_first = lr_now_ms();
	ret = reply(r->conn, status, "application/json", b.p, b.len,
	    status == 405 ? "Allow" : status == 401 ? "WWW-Authenticate" : NULL,
	    status == 405 ? r->allow : "Bearer");
	buf_free(&m);
	buf_free(&b);
	return ret;
}

static ssize_t
read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sreq *r = cls;
	size_t n = r->out.len - r->out_off;

	(void)pos;
	if (r->gone)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (n > 0) {
		if (n > max)
			n = max;
		memcpy(buf, r->out.p + r->out_off, n);
		r->out_off += n;
		if (r->bytes == 0)
			r->t_first = lr_now_ms();
		r->bytes += n;
		if (r->out.len - r->out_off < PIPE_LOW)
			pipe_pause(r, 0);
		return (ssize_t)n;
	}
	if (r->eof)
		return r->cut ? MHD_CONTENT_READER_END_WITH_ERROR :
		    MHD_CONTENT_READER_END_OF_STREAM;
	r->suspended = 1;
	MHD_suspend_connection(r->conn);
	return 0;
}

/* The job's head is here: answer with its status and body. */
static enum MHD_Result
queue_job_reply(struct sreq *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t n = r->out.len - r->out_off;

	r->queued = 1;
	if (r->eof && !r->cut) {	/* all here: with its length */
		resp = MHD_create_response_from_buffer(n,
		    r->out.p != NULL ? r->out.p + r->out_off : (void *)(uintptr_t)"",
		    MHD_RESPMEM_MUST_COPY);
		r->out_off = r->out.len;
		if (r->bytes == 0)
			r->t_first = lr_now_ms();
		r->bytes += n;
	} else
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
		    RESPONSE_BLOCK, read_body, r, NULL);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", r->ctype);
	if (strcmp(r->kind_s, KIND_BODY) != 0) {
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	}
	ret = MHD_queue_response(r->conn, (unsigned int)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static const struct serve_route routes[] = {
	{ "/api/chat", "POST", "api_chat", JOB_OLLAMA_CHAT, 1, 0 },
	{ "/v1/chat/completions", "POST", "v1_chat", JOB_OPENAI_CHAT, 1, 0 },
	{ "/api/tags", "GET", "api_tags", JOB_PROXY, 0, 0 },
	{ "/api/show", "POST", "api_show", JOB_PROXY, 0, 0 },
	{ "/api/ps", "GET", "api_ps", JOB_PROXY, 0, 0 },
	{ "/api/version", "GET, HEAD", "api_version", JOB_PROXY, 0, 0 },
	{ "/v1/models", "GET", "v1_models", JOB_PROXY, 0, 0 },
	{ "/", "GET, HEAD", "root", JOB_PROXY, 0, 1 },
	{ "/healthz", "GET, HEAD", "healthz", JOB_HEALTH, 0, 1 },
	{ "/metrics", "GET", "metrics", -1, 0, 0 },
};

static int
method_in(const char *list, const char *m)
{
	size_t n = strlen(m);
	const char *p;

	if (n == 0)	/* strstr() would find "" everywhere, forever */
		return 0;
	for (p = list; (p = strstr(p, m)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ',' ||
		    p[n] == '\0'))
			return 1;
	return 0;
}

/* Does the Authorization header auth (or NULL) carry token (NULL: none
 * needed)?  Compared in constant time. */
static int
token_ok(const char *token, const char *h)
{
	size_t n, i;
	unsigned char d = 0;

	if (token == NULL)
		return 1;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	n = strlen(token);
	if (strlen(h) != n)
		return 0;
	for (i = 0; i < n; i++)
		d |= (unsigned char)(h[i] ^ token[i]);
	return d == 0;
}

int
serve_match(const char *url, const char *method, const char *auth,
    const char *token, const char *content_length, size_t max_body,
    const struct serve_route **route, size_t *len)
{
	const struct serve_route *e = NULL;
	const char *why;
	size_t i;

	*len = 0;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].path, url) == 0)
			e = &routes[i];
	*route = e;
	if (e == NULL)
		return 404;
	if (!method_in(e->methods, method))
		return 405;
	if (!e->open && !token_ok(token, auth))
		return 401;
	if (content_length != NULL &&
	    lr_parse_size(content_length, len, &why) == 0 && *len > max_body)
		return 413;
	return 0;
}

static void
client_addr(struct MHD_Connection *c, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	snprintf(out, n, "-");
	if (ci == NULL || ci->client_addr == NULL)
		return;
	if (getnameinfo(ci->client_addr, ci->client_addr->sa_family ==
	    AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in), host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(out, n, "%.46s:%.8s", host, port);
}

/* The first call for a request: its headers are in. */
static enum MHD_Result
on_headers(struct server *sv, struct sreq *r, const char *url,
    const char *method)
{
	const struct serve_route *e;
	size_t len;
	int st;

	snprintf(r->method, sizeof(r->method), "%s", method);
	r->path = xstrdup(url);
	client_addr(r->conn, r->client, sizeof(r->client));
	st = serve_match(url, method, MHD_lookup_connection_value(r->conn,
	    MHD_HEADER_KIND, "Authorization"), sv->token,
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "Content-Length"), sv->cfg->serve.max_body, &e, &len);
	if (st == 404)
		return reply_error(r, 404, "no such endpoint: %s", url);
	r->endpoint = e->endpoint;
	if (st == 405) {
		r->allow = e->methods;
		return reply_error(r, 405, "%s takes %s, not %s", url,
		    e->methods, method);
	}
	if (st == 401)
		return reply_error(r, 401, "unauthorized: a bearer token is "
		    "needed (Authorization: Bearer ...)");
	if (st == 413)
		return reply_error(r, 413, "request body of %zu bytes is over "
		    "the limit of %zu (--max-body)", len,
		    sv->cfg->serve.max_body);
	if (sv->draining)
		return reply_error(r, 503, "llm-serve is stopping");
	if (e->chat) {
		if (sv->streams >= sv->cfg->serve.max_streams)
			return reply_error(r, 503, "too many requests at once "
			    "(%ld, --max-streams); try again",
			    sv->cfg->serve.max_streams);
		sv->streams++;
		r->is_chat = 1;
	}
	r->kind = (enum job_kind)e->kind;
	r->is_job = e->kind >= 0;
	return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upsz, void **con_cls)
{
	struct server *sv = cls;
	struct sreq *r = *con_cls;

	(void)version;
	if (r == NULL) {
		r = req_new(sv);
		r->conn = c;
		*con_cls = r;
		return on_headers(sv, r, url, method);
	}
	if (*upsz > 0) {
		if (r->done)
			;	/* answered already: the body is dropped */
		else if (r->body.len + *upsz > sv->cfg->serve.max_body)
			r->over = 1;
		else
			buf_add(&r->body, upload, *upsz);
		*upsz = 0;
		return MHD_YES;
	}
	if (r->done && !r->is_job)
		return MHD_YES;
	if (r->gone)
		return MHD_NO;
	if (r->queued)
		return MHD_YES;
	if (r->headed)
		return queue_job_reply(r);
	if (r->pid > 0 || r->waiting) {	/* resumed without a head: not yet */
		r->suspended = 1;
		MHD_suspend_connection(c);
		return MHD_YES;
	}
	if (r->over) {
		buf_free(&r->body);
		return reply_error(r, 413, "request body over the limit of "
		    "%zu bytes (--max-body)", sv->cfg->serve.max_body);
	}
	if (!r->is_job) {	/* /metrics */
		struct buf b = BUF_INIT;
		enum MHD_Result ret;

		metrics(sv, &b);
		r->status = 200;
		r->done = 1;
		r->bytes = b.len;
		r->t_first = lr_now_ms();
		ret = reply(c, 200, "text/plain; version=0.0.4; charset=utf-8",
		    b.p, b.len, NULL, NULL);
		buf_free(&b);
		return ret;
	}
	r->waiting = 1;
	*sv->wtail = r;
	sv->wtail = &r->wnext;
	watch_sock(sv, r);
	r->suspended = 1;
	MHD_suspend_connection(c);
	return MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct server *sv = cls;
	struct sreq *r = *con_cls;
	double now = lr_now_ms();

	(void)c;
	if (r == NULL)
		return;
	*con_cls = NULL;
	unqueue(sv, r);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->done &&
	    !r->gone) {
		client_gone(r);
	}
	r->done = 1;
	unwatch_sock(r);
	if (r->is_chat) {
		sv->streams--;
		if (!r->gone && r->status == 200)
			hist_add(&sv->h_total, (now - r->t0) / 1000);
	}
	if (r->bytes > 0 && r->t_first > 0)
		hist_add(&sv->h_first, (r->t_first - r->t0) / 1000);
	count(sv, r->endpoint, r->strategy, r->gone ? 499 : r->status);
	log_event(LOG_INFO, "serve", "method", 's', r->method, "path", 's',
	    r->path, "strategy", 's', r->is_chat ? r->strategy : NULL,
	    "status", 'i', (long)(r->gone ? 499 : r->status),
	    "bytes", 'i', (long)r->bytes,
	    "ttfb_ms", 'f', r->t_first > 0 ? r->t_first - r->t0 : -1.0,
	    "total_ms", 'f', now - r->t0, "client", 's', r->client,
	    "disconnected", 's', r->gone ? "yes" : NULL, (const char *)NULL);
	r->conn = NULL;
	if (r->fd >= 0 && r->gone)
		close_pipe(r);
	if (r->fd >= 0 && r->eof)
		close_pipe(r);
	req_release(r);
	prefetch_start(sv);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* What a client leaving mid-answer looks like: counted, not said. */
	if (strstr(msg, "application error generating response") != NULL)
		return;
	lr_warn("http: %s", msg);
}

/* -------------------------------------------------------------------- */

static int
listen_on(const char *spec, struct lr_err *e)
{
	struct addrinfo hints, *ai = NULL;
	char host[256], *colon;
	const char *port;
	int fd, one = 1, rc;

	snprintf(host, sizeof(host), "%s", spec);
	colon = strrchr(host, ':');
	if (colon == NULL)
		return -lr_seterr(e, LR_USAGE, "--listen %s: expected "
		    "ADDR:PORT", spec);
	*colon = '\0';
	port = colon + 1;
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(*host != '\0' ? host : NULL, port, &hints,
	    &ai)) != 0)
		return -lr_seterr(e, LR_USAGE, "--listen %s: %s", spec,
		    gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || (ai->ai_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, 1024) != 0) {
		rc = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -lr_seterr(e, LR_FAIL, "listening on %s: %s", spec,
		    strerror(rc));
	}
	freeaddrinfo(ai);
	return fd;
}

static void
say_listening(int fd)
{
	struct sockaddr_storage ss;
	socklen_t n = sizeof(ss);
	char host[64], port[16];

	if (getsockname(fd, (struct sockaddr *)&ss, &n) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, n, host, sizeof(host), port,
	    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	fprintf(stderr, "%s: listening on http://%s%s%s:%s\n", lr_prog(),
	    ss.ss_family == AF_INET6 ? "[" : "", host,
	    ss.ss_family == AF_INET6 ? "]" : "", port);
	fflush(stderr);
}

/* The bearer token: LLM_SERVE_TOKEN, else the token file's first line. */
static int
load_token(struct server *sv, struct lr_err *e)
{
	const char *env = getenv("LLM_SERVE_TOKEN");
	const char *path = sv->cfg->serve.token_file;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *fp;

	free(sv->token);
	sv->token = NULL;
	if (env != NULL && *env != '\0') {
		sv->token = xstrdup(env);
		lr_secret(sv->token);
		return 0;
	}
	if (path == NULL || *path == '\0')
		return 0;
	if ((fp = fopen(path, "r")) == NULL)
		return lr_seterr(e, LR_USAGE, "token file %s: %s", path,
		    strerror(errno));
	n = getline(&line, &cap, fp);
	if (n < 0 && !feof(fp) && errno == ENOMEM)	/* not an empty file */
		lr_die(LR_FAIL, "out of memory");
	fclose(fp);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
	    line[n - 1] == ' '))
		line[--n] = '\0';
	if (n <= 0) {
		free(line);
		return lr_seterr(e, LR_USAGE, "token file %s: empty", path);
	}
	sv->token = line;
	lr_secret(sv->token);
	return 0;
}

static void
begin_drain(struct server *sv, int sig)
{
	int i;

	if (sv->draining) {
		sv->drain_at = 0;	/* a second signal: now */
		return;
	}
	sv->draining = 1;
	sv->drain_at = lr_now_ms() + (double)sv->cfg->serve.drain_ms;
	log_event(LOG_INFO, "drain", "signal", 's', strsignal(sig),
	    "streams", 'i', (long)sv->streams, "drain_ms", 'i',
	    sv->cfg->serve.drain_ms, (const char *)NULL);
	for (i = 0; i < sv->nd; i++) {
		int fd = MHD_quiesce_daemon(sv->d[i]);

		if (fd >= 0)
			close(fd);
	}
	while (sv->npq > 0)
		free(sv->pq[--sv->npq]);
	prefetch_cancel(sv);
}

static void
reload(struct server *sv)
{
	struct config *n = xmalloc(sizeof(*n));
	struct lr_err e;

	if (sv->o->reload == NULL || sv->o->reload(n, &e) != 0) {
		lr_warn("SIGHUP: the configuration was not reloaded: %s",
		    e.msg);
		free(n);
		return;
	}
	/* The listening addresses stay as they are. */
	config_free(sv->cfg);
	*sv->cfg = *n;
	free(n);
	if (load_token(sv, &e) != 0)
		lr_warn("SIGHUP: %s", e.msg);
	log_event(LOG_INFO, "reload", "config", 's', sv->cfg->path,
	    (const char *)NULL);
}

static void
on_signal(struct server *sv)
{
	struct signalfd_siginfo si;

	while (read(sv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			on_exit_status(sv);
			break;
		case SIGHUP:
			reload(sv);
			break;
		default:
			begin_drain(sv, (int)si.ssi_signo);
		}
	}
}

/* Every tick: keep-alive chunks, and the drain's deadline. */
static void
tick(struct server *sv)
{
	double now = lr_now_ms();
	long ka = sv->cfg->serve.keepalive_ms;
	struct sreq *r;

	for (r = sv->reqs; r != NULL; r = r->next) {
		if (r->conn == NULL || !r->headed || r->eof || r->gone ||
		    strcmp(r->kind_s, KIND_BODY) == 0)
			continue;
		if (ka > 0 && now - r->t_last >= (double)ka && at_boundary(r))
			keepalive(r);
	}
	if (!sv->draining || now < sv->drain_at)
		return;
	/* The drain is over: the jobs are cancelled (each ends its answer
	 * with an error line); 2 s later the connections are cut (a client
	 * that reads nothing is dropped after 1 s more); 2 s later still,
	 * the loop ends whatever is left. */
	switch (sv->stopping++) {
	case 0:
		for (r = sv->reqs; r != NULL; r = r->next)
			if (r->pid > 0 && !r->exited)
				kill(r->pid, SIGTERM);
		break;
	case 1:
		for (r = sv->reqs; r != NULL; r = r->next)
			if (r->conn != NULL) {
				client_gone(r);
				MHD_set_connection_option(r->conn,
				    MHD_CONNECTION_OPTION_TIMEOUT, 1U);
			}
		break;
	default:
		sv->stopped = 1;
	}
	sv->drain_at = now + 2000;
}

static int
active(const struct server *sv)
{
	const struct sreq *r;

	for (r = sv->reqs; r != NULL; r = r->next)
		if (r->conn != NULL || (r->pid > 0 && !r->exited))
			return 1;
	return 0;
}

int
serve_run(struct config *cfg, struct serve_opts *o, struct lr_err *e)
{
	struct server *sv = xmalloc(sizeof(*sv));
	struct epoll_event evs[64];
	struct sreq *r;
	sigset_t mask;
	int i, n, fd, st = 0;
	MHD_UNSIGNED_LONG_LONG mt;
	long timeout;
	double next_tick = 0;

	memset(sv, 0, sizeof(*sv));
	sv->wtail = &sv->whead;
	sv->cfg = cfg;
	sv->o = o;
	sv->pkeys = xmalloc(sizeof(*sv->pkeys) * PREFETCH_KEYS);
	if ((st = load_token(sv, e)) != 0)
		goto out;
	if (o->no_cache)
		memset(&sv->cache, 0, sizeof(sv->cache));
	else if ((st = cache_open(&sv->cache, o->cache_dir, o->cache_max,
	    e)) != 0)
		goto out;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sv->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	sv->ep = epoll_create1(EPOLL_CLOEXEC);
	if (sv->sigfd < 0 || sv->ep < 0) {
		st = lr_seterr(e, LR_FAIL, "epoll: %s", strerror(errno));
		goto out;
	}
	sv->wsig.type = W_SIGNAL;
	ep_ctl(sv, EPOLL_CTL_ADD, sv->sigfd, EPOLLIN, &sv->wsig);
	for (i = 0; i < cfg->serve.nlisten; i++) {
		const union MHD_DaemonInfo *di;

		if ((fd = listen_on(cfg->serve.listen[i], e)) < 0) {
			st = -fd;
			goto out;
		}
		sv->d[i] = MHD_start_daemon(MHD_USE_EPOLL |
		    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		    on_request, sv,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		    MHD_OPTION_LISTEN_SOCKET, fd,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv,
		    MHD_OPTION_CONNECTION_LIMIT, 4096U,
		    MHD_OPTION_CONNECTION_TIMEOUT, 600U,
		    MHD_OPTION_END);
		if (sv->d[i] == NULL) {
			close(fd);
			st = lr_seterr(e, LR_FAIL, "listening on %s: the HTTP "
			    "server did not start", cfg->serve.listen[i]);
			goto out;
		}
		sv->nd++;
		di = MHD_get_daemon_info(sv->d[i], MHD_DAEMON_INFO_EPOLL_FD);
		sv->wd[i].type = W_DAEMON;
		sv->wd[i].p = sv->d[i];
		ep_ctl(sv, EPOLL_CTL_ADD, di->epoll_fd, EPOLLIN, &sv->wd[i]);
		say_listening(fd);
	}
	while (!sv->draining || (active(sv) && !sv->stopped)) {
		timeout = TICK_MS;
		for (i = 0; i < sv->nd; i++)
			if (MHD_get_timeout(sv->d[i], &mt) == MHD_YES &&
			    (long)mt < timeout)
				timeout = (long)mt;
		if (sv->whead != NULL)
			timeout = 0;	/* jobs to start */
		n = epoll_wait(sv->ep, evs, 64, (int)timeout);
		if (n < 0 && errno != EINTR) {
			st = lr_seterr(e, LR_FAIL, "epoll: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			struct watch *w = evs[i].data.ptr;

			r = w->p;
			switch (w->type) {
			case W_SIGNAL:
				on_signal(sv);
				break;
			case W_PIPE:
				on_pipe(r);
				break;
			case W_SOCK:
				/* A client that hangs up once its whole
				 * reply is out (curl, say) has not left
				 * early. */
				if (r->eof && r->out_off >= r->out.len)
					unwatch_sock(r);
				else
					client_gone(r);
				break;
			case W_DAEMON:
				break;
			}
		}
		start_jobs(sv);
		/* A scan of every request, but only every tick. */
		if (lr_now_ms() >= next_tick) {
			tick(sv);
			next_tick = lr_now_ms() + TICK_MS;
		}
		for (i = 0; i < sv->nd; i++)
			MHD_run(sv->d[i]);
	}
	log_event(LOG_INFO, "stop", (const char *)NULL);
out:
	for (r = sv->reqs; r != NULL; r = r->next)
		resume(r);	/* MHD stops no daemon with one suspended */
	for (i = 0; i < sv->nd; i++)
		MHD_stop_daemon(sv->d[i]);
	while (sv->npq > 0)
		free(sv->pq[--sv->npq]);
	for (i = 0; i < sv->nctx; i++)
		free(sv->ctx_model[i]);
	while (sv->reqs != NULL) {
		r = sv->reqs;

		r->conn = NULL;
		close_pipe(r);
		r->exited = 1;
		req_release(r);
	}
	if (sv->ep > 0)
		close(sv->ep);
	if (sv->sigfd > 0)
		close(sv->sigfd);
	free(sv->cache.dir);	/* the jobs used it: no counts to log here */
	free(sv->pkeys);
	free(sv->token);
	free(sv);
	return st;
}
