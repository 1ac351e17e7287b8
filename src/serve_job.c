/*
 * serve_job.c - the work of one llm-serve request, in a child process:
 * the route pipeline answered as Ollama NDJSON or OpenAI SSE, requests
 * passed through to GPU0, /healthz, and background condensing.
 */
#define _GNU_SOURCE	/* fopencookie */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backend.h"
#include "generate.h"
#include "log.h"
#include "measure.h"
#include "request.h"
#include "serve.h"

int
frame_write(int fd, int type, const char *p, size_t n)
{
	unsigned char h[FRAME_HDR];
	struct iovec iov[2];
	size_t k, done;
	ssize_t w;
	uint32_t len;

	do {
		k = n > FRAME_MAX ? FRAME_MAX : n;
		len = (uint32_t)k;
		h[0] = (unsigned char)type;
		memcpy(h + 1, &len, 4);
		done = 0;
		while (done < FRAME_HDR + k) {
			int c = 0;

			if (done < FRAME_HDR) {
				iov[c].iov_base = h + done;
				iov[c++].iov_len = FRAME_HDR - done;
				iov[c].iov_base = (void *)(uintptr_t)p;
				iov[c++].iov_len = k;
			} else {
				iov[c].iov_base = (void *)(uintptr_t)(p +
				    (done - FRAME_HDR));
				iov[c++].iov_len = FRAME_HDR + k - done;
			}
			if ((w = writev(fd, iov, c)) < 0) {
				if (errno == EINTR && !backend_interrupted)
					continue;
				return -1;
			}
			done += (size_t)w;
		}
		p += k;
		n -= k;
	} while (n > 0);
	return 0;
}

/* The answer's way to the client: lines from route() become frames. */
struct sink {
	const struct job *j;
	int openai;		/* /v1/chat/completions */
	int stream;		/* the client asked for a stream */
	int include_usage;	/* stream_options.include_usage */
	int headed;		/* the head frame is out */
	int answering;		/* GPU0's first line is out */
	int gone;		/* the server closed the pipe */
	int calls;		/* tool calls so far (OpenAI indexes) */
	long created;
	char id[48];
	char *model;		/* GPU0's model, for the chunks we make */
	struct buf line;	/* an incomplete line */
	struct buf f;		/* a frame being made */
};

static int
put(struct sink *k, int type, const char *p, size_t n)
{
	if (k->gone)
		return -1;
	if (frame_write(k->j->fd, type, p, n) != 0) {
		k->gone = 1;
		return -1;
	}
	return 0;
}

static int
info(struct sink *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
info(struct sink *k, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	int r;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	r = put(k, FR_INFO, b.p, b.len);
	buf_free(&b);
	return r;
}

/*
 * A model name the server may paste into a JSON string and a frame as
 * it is: short, printable, no quote or backslash.
 */
static int
plain(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	for (; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || s[n] == '"' ||
		    s[n] == '\\' || s[n] == ' ' || n >= 120)
			return 0;
	return 1;
}

static int
head(struct sink *k, int status, const char *ctype, const char *kind)
{
	struct buf b = BUF_INIT;
	int r;

	buf_printf(&b, "%d\n%s\n%s\n%s\n", status, ctype, kind,
	    plain(k->model) ? k->model : "");
	k->headed = 1;
	r = put(k, FR_HEAD, b.p, b.len);
	buf_free(&b);
	return r;
}

/* Serialize v (consumed) into the frame buffer after what is there. */
static void
dump(struct sink *k, jv v)
{
	request_dump(v, &k->f);
}

/* An OpenAI chunk or completion object's common head. */
static jv
oai_object(const struct sink *k, const char *object)
{
	jv o = jv_object_set(jv_object(), jv_string("id"), jv_string(k->id));

	o = jv_object_set(o, jv_string("object"), jv_string(object));
	o = jv_object_set(o, jv_string("created"),
	    jv_number((double)k->created));
	o = jv_object_set(o, jv_string("model"),
	    jv_string(k->model != NULL ? k->model : ""));
	return jv_object_set(o, jv_string("system_fingerprint"),
	    jv_string("fp_llm_serve"));
}

static int
sse(struct sink *k, jv v)
{
	buf_reset(&k->f);
	buf_adds(&k->f, "data: ");
	dump(k, v);
	buf_adds(&k->f, "\n\n");
	return put(k, FR_DATA, k->f.p, k->f.len);
}

static int
sse_chunk(struct sink *k, jv delta, jv finish)
{
	jv ch = jv_object_set(jv_object(), jv_string("index"), jv_number(0));

	ch = jv_object_set(ch, jv_string("delta"), delta);
	ch = jv_object_set(ch, jv_string("finish_reason"), finish);
	return sse(k, jv_object_set(oai_object(k, "chat.completion.chunk"),
	    jv_string("choices"), jv_array_append(jv_array(), ch)));
}

/* Ollama tool calls (object arguments) as OpenAI's (string arguments). */
static jv
oai_calls(struct sink *k, jv tc, int stream)
{
	jv out = jv_array(), c, f, a;
	int i, n = jv_array_length(jv_copy(tc));

	for (i = 0; i < n; i++) {
		c = jv_array_get(jv_copy(tc), i);
		f = jv_get_kind(c) == JV_KIND_OBJECT ?
		    jv_object_get(jv_copy(c), jv_string("function")) :
		    jv_invalid();
		if (jv_get_kind(f) != JV_KIND_OBJECT) {
			jv_free(f);
			jv_free(c);
			continue;
		}
		a = jv_object_get(jv_copy(f), jv_string("arguments"));
		if (jv_get_kind(a) != JV_KIND_STRING)
			a = jv_dump_string(jv_get_kind(a) == JV_KIND_INVALID ?
			    jv_object() : a, 0);
		f = jv_object_set(f, jv_string("arguments"), a);
		{
			jv o = jv_object();

			if (stream)
				o = jv_object_set(o, jv_string("index"),
				    jv_number(k->calls));
			o = jv_object_set(o, jv_string("id"),
			    jv_string_fmt("call_%s_%d", k->id + 9, k->calls));
			o = jv_object_set(o, jv_string("type"),
			    jv_string("function"));
			o = jv_object_set(o, jv_string("function"), f);
			out = jv_array_append(out, o);
		}
		k->calls++;
		jv_free(c);
	}
	jv_free(tc);
	return out;
}

static jv
get2(jv o, const char *a, const char *b)
{
	jv v = jv_get_kind(o) == JV_KIND_OBJECT ?
	    jv_object_get(jv_copy(o), jv_string(a)) : jv_invalid();

	if (b == NULL)
		return v;
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		jv_free(v);
		return jv_invalid();
	}
	return jv_object_get(v, jv_string(b));
}

static double
numv(jv o, const char *key)
{
	jv v = get2(o, key, NULL);
	double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : 0;

	jv_free(v);
	return d;
}

static jv
oai_usage(jv line)
{
	double p = numv(line, "prompt_eval_count"), c = numv(line,
	    "eval_count");
	jv u = jv_object_set(jv_object(), jv_string("prompt_tokens"),
	    jv_number(p));

	u = jv_object_set(u, jv_string("completion_tokens"), jv_number(c));
	return jv_object_set(u, jv_string("total_tokens"), jv_number(p + c));
}

static jv
oai_finish(const struct sink *k, jv line)
{
	jv r = get2(line, "done_reason", NULL);
	int length = jv_get_kind(r) == JV_KIND_STRING &&
	    strcmp(jv_string_value(r), "length") == 0;

	jv_free(r);
	return jv_string(k->calls > 0 ? "tool_calls" : length ? "length" :
	    "stop");
}

/* One Ollama line (parsed) as OpenAI SSE chunks. */
static int
oai_stream_line(struct sink *k, jv line)
{
	jv m = get2(line, "message", NULL), c, t, tc, d;
	int done = 0, r = 0;

	d = get2(line, "done", NULL);
	done = jv_get_kind(d) == JV_KIND_TRUE;
	jv_free(d);
	c = get2(m, "content", NULL);
	t = get2(m, "thinking", NULL);
	tc = get2(m, "tool_calls", NULL);
	if (!done || (jv_get_kind(c) == JV_KIND_STRING &&
	    jv_string_length_bytes(jv_copy(c)) > 0) ||
	    jv_get_kind(t) == JV_KIND_STRING ||
	    jv_get_kind(tc) == JV_KIND_ARRAY) {
		jv delta = jv_object_set(jv_object(), jv_string("role"),
		    jv_string("assistant"));

		delta = jv_object_set(delta, jv_string("content"),
		    jv_get_kind(c) == JV_KIND_STRING ? jv_copy(c) :
		    jv_string(""));
		if (jv_get_kind(t) == JV_KIND_STRING)
			delta = jv_object_set(delta, jv_string("reasoning"),
			    jv_copy(t));
		if (jv_get_kind(tc) == JV_KIND_ARRAY)
			delta = jv_object_set(delta, jv_string("tool_calls"),
			    oai_calls(k, jv_copy(tc), 1));
		r = sse_chunk(k, delta, jv_null());
	}
	if (r == 0 && done) {
		r = sse_chunk(k, jv_object(), oai_finish(k, line));
		if (r == 0 && k->include_usage)
			r = sse(k, jv_object_set(jv_object_set(oai_object(k,
			    "chat.completion.chunk"), jv_string("choices"),
			    jv_array()), jv_string("usage"), oai_usage(line)));
		if (r == 0)
			r = put(k, FR_DATA, "data: [DONE]\n\n", 14);
	}
	jv_free(c);
	jv_free(t);
	jv_free(tc);
	jv_free(m);
	return r;
}

/* The one Ollama object of a non-streamed answer as OpenAI's. */
static jv
oai_completion(struct sink *k, jv line)
{
	jv m = get2(line, "message", NULL), msg, tc, t, ch;

	msg = jv_object_set(jv_object(), jv_string("role"),
	    jv_string("assistant"));
	t = get2(m, "content", NULL);
	msg = jv_object_set(msg, jv_string("content"),
	    jv_get_kind(t) == JV_KIND_STRING ? t : jv_string(""));
	if (jv_get_kind(t) != JV_KIND_STRING)
		jv_free(t);
	t = get2(m, "thinking", NULL);
	if (jv_get_kind(t) == JV_KIND_STRING)
		msg = jv_object_set(msg, jv_string("reasoning"), t);
	else
		jv_free(t);
	tc = get2(m, "tool_calls", NULL);
	if (jv_get_kind(tc) == JV_KIND_ARRAY)
		msg = jv_object_set(msg, jv_string("tool_calls"),
		    oai_calls(k, tc, 0));
	else
		jv_free(tc);
	jv_free(m);
	ch = jv_object_set(jv_object(), jv_string("index"), jv_number(0));
	ch = jv_object_set(ch, jv_string("message"), msg);
	ch = jv_object_set(ch, jv_string("finish_reason"), oai_finish(k, line));
	ch = jv_object_set(jv_object_set(oai_object(k, "chat.completion"),
	    jv_string("choices"), jv_array_append(jv_array(), ch)),
	    jv_string("usage"), oai_usage(line));
	jv_free(line);
	return ch;
}

/* One line of route()'s NDJSON output. */
static int
sink_line(struct sink *k, const char *p, size_t n)
{
	jv line;
	int r;

	if (!k->answering) {
		k->answering = 1;
		info(k, "phase=answering");
	}
	if (!k->openai) {
		if (k->stream) {
			buf_reset(&k->f);
			buf_add(&k->f, p, n);
			buf_addc(&k->f, '\n');
			return put(k, FR_DATA, k->f.p, k->f.len);
		}
		if (head(k, 200, "application/json; charset=utf-8",
		    KIND_BODY) != 0)
			return -1;
		return put(k, FR_DATA, p, n);
	}
	line = jv_parse_sized(p, (int)n);
	if (jv_get_kind(line) != JV_KIND_OBJECT) {
		jv_free(line);
		return 0;	/* route() writes only objects */
	}
	if (k->stream)
		r = oai_stream_line(k, line);
	else {
		jv o = oai_completion(k, jv_copy(line));

		r = head(k, 200, "application/json", KIND_BODY);
		if (r == 0) {
			buf_reset(&k->f);
			dump(k, o);
			r = put(k, FR_DATA, k->f.p, k->f.len);
		} else
			jv_free(o);
	}
	jv_free(line);
	return r;
}

static ssize_t
sink_write(void *cookie, const char *p, size_t n)
{
	struct sink *k = cookie;
	const char *nl;
	size_t i = 0;

	while (i < n && (nl = memchr(p + i, '\n', n - i)) != NULL) {
		size_t m = (size_t)(nl - (p + i));

		if (k->line.len > 0) {
			buf_add(&k->line, p + i, m);
			if (sink_line(k, k->line.p, k->line.len) != 0)
				goto gone;
			buf_reset(&k->line);
		} else if (m > 0 && sink_line(k, p + i, m) != 0)
			goto gone;
		i += m + 1;
	}
	buf_add(&k->line, p + i, n - i);
	return (ssize_t)n;
gone:
	errno = EPIPE;
	return -1;
}

/* The first chunk: empty content, out before any condensing. */
static int
first_chunk(struct sink *k)
{
	struct buf ts = BUF_INIT;
	jv o;
	int r;

	if (k->openai)
		return sse_chunk(k, jv_object_set(jv_object_set(jv_object(),
		    jv_string("role"), jv_string("assistant")),
		    jv_string("content"), jv_string("")), jv_null());
	lr_put_time(&ts);
	o = jv_object_set(jv_object(), jv_string("model"),
	    jv_string(k->model != NULL ? k->model : ""));
	o = jv_object_set(o, jv_string("created_at"), jv_string(buf_str(&ts)));
	o = jv_object_set(o, jv_string("message"), jv_object_set(
	    jv_object_set(jv_object(), jv_string("role"),
	    jv_string("assistant")), jv_string("content"), jv_string("")));
	o = jv_object_set(o, jv_string("done"), jv_false());
	buf_reset(&k->f);
	dump(k, o);
	buf_addc(&k->f, '\n');
	r = put(k, FR_DATA, k->f.p, k->f.len);
	buf_free(&ts);
	return r;
}

static int
on_start(void *ctx, const struct route_info *in)
{
	struct sink *k = ctx;

	free(k->model);
	k->model = xstrdup(in->model);
	info(k, "phase=start strategy=%s tokens=%zu helper=%s",
	    strategy_name(in->strategy), in->tokens, in->helper ? "yes" : "no");
	if (!k->stream)
		return 0;
	if (head(k, 200, k->openai ? "text/event-stream" :
	    "application/x-ndjson", k->openai ? KIND_SSE : KIND_NDJSON) != 0 ||
	    first_chunk(k) != 0)
		return LR_CLOSED;
	return 0;
}

static void
on_answer(void *ctx, const struct route_info *in)
{
	struct sink *k = ctx;

	info(k, "phase=answer strategy=%s tokens_sent=%zu condense_ms=%.1f "
	    "chunks=%d cache_hits=%d", strategy_name(in->strategy),
	    in->tokens_sent, in->condense_ms, in->chunks, in->cache_hits);
}

static void
on_cache_hit(void *ctx, const char *key)
{
	info(ctx, "hit=%s", key);
}

/* The HTTP status for a failure before the answer started. */
static int
http_status(int st, long upstream)
{
	switch (st) {
	case LR_INPUT:
		return 400;
	case LR_UNREACHABLE:
	case LR_MALFORMED:
		return 502;
	case LR_TIMEOUT:
		return 504;
	case LR_BACKEND:
		return upstream >= 400 && upstream <= 599 ? (int)upstream : 502;
	default:
		return st > 128 ? 503 : 500;
	}
}

/* An error as the client's API shows it: before the start, with its
 * status; after, as the stream's last line or event. */
static void
fail(struct sink *k, int st, long upstream, const char *msg)
{
	const char *ctx_msg = strstr(msg, "GPU0's context");
	struct buf m = BUF_INIT;
	jv o;

	if (st == LR_INPUT && ctx_msg != NULL)
		buf_adds(&m, "context length exceeded: ");
	buf_adds(&m, msg);
	if (k->openai) {
		o = jv_object_set(jv_object(), jv_string("message"),
		    jv_string(buf_str(&m)));
		o = jv_object_set(o, jv_string("type"), jv_string(
		    st == LR_INPUT ? "invalid_request_error" : "server_error"));
		o = jv_object_set(o, jv_string("param"), jv_null());
		o = jv_object_set(o, jv_string("code"), st == LR_INPUT &&
		    ctx_msg != NULL ? jv_string("context_length_exceeded") :
		    jv_null());
		o = jv_object_set(jv_object(), jv_string("error"), o);
	} else
		o = jv_object_set(jv_object(), jv_string("error"),
		    jv_string(buf_str(&m)));
	buf_free(&m);
	buf_reset(&k->f);
	if (k->headed && k->openai)
		buf_adds(&k->f, "data: ");
	dump(k, o);
	if (k->headed)
		buf_adds(&k->f, k->openai ? "\n\n" : "\n");
	if (!k->headed && head(k, http_status(st, upstream), k->openai ?
	    "application/json" : "application/json; charset=utf-8",
	    KIND_BODY) != 0)
		return;
	if (put(k, FR_DATA, k->f.p, k->f.len) == 0)
		info(k, "phase=failed status=%d", st);	/* ended, not cut */
}

/* The num_ctx this server already sends model, or 0. */
static long
fixed_num_ctx(const struct job *j, const char *model)
{
	int i;

	for (i = 0; i < j->nctx; i++)
		if (strcmp(j->ctx_models[i], model) == 0)
			return j->ctx_values[i];
	return 0;
}

/* "stream" as the request says; absent, the API's default. */
static int
wants_stream(const struct chat *c, int dflt)
{
	jv v = jv_get_kind(c->doc) == JV_KIND_OBJECT ?
	    jv_object_get(jv_copy(c->doc), jv_string("stream")) : jv_invalid();
	int r = jv_get_kind(v) == JV_KIND_TRUE ? 1 :
	    jv_get_kind(v) == JV_KIND_FALSE ? 0 : dflt;

	jv_free(v);
	return r;
}

int
serve_chat_parse(const char *body, size_t len, int openai, struct chat *c,
    struct serve_chat_req *q, struct lr_err *e)
{
	jv v;

	memset(q, 0, sizeof(*q));
	if (chat_parse(body, len, 0, c, e) != 0 ||
	    (c->shape == CHAT_TEXT && lr_seterr(e, LR_INPUT, "bad input: "
	    "not a JSON chat request") != 0)) {
		chat_free(c);
		return LR_INPUT;
	}
	q->stream = wants_stream(c, !openai);
	v = get2(c->doc, "stream_options", "include_usage");
	q->include_usage = jv_get_kind(v) == JV_KIND_TRUE;
	jv_free(v);
	v = get2(c->doc, "model", NULL);
	if (jv_get_kind(v) == JV_KIND_STRING)
		q->model = xstrdup(jv_string_value(v));
	jv_free(v);
	return 0;
}

static int proxy(const struct job *j, const char *method, const char *path);

static int
job_chat(const struct job *j)
{
	cookie_io_functions_t fns = { NULL, sink_write, NULL, NULL };
	struct route_opts ro = *j->ro;
	struct sink k;
	struct serve_chat_req q;
	struct chat c;
	struct lr_err e;
	struct timeval tv;
	FILE *out;
	int st;

	memset(&k, 0, sizeof(k));
	k.j = j;
	k.openai = j->kind == JOB_OPENAI_CHAT;
	gettimeofday(&tv, NULL);
	k.created = (long)tv.tv_sec;
	snprintf(k.id, sizeof(k.id), "chatcmpl-%ld%06ld%d", (long)tv.tv_sec,
	    (long)tv.tv_usec, (int)getpid());
	if (serve_chat_parse(j->body, j->len, k.openai, &c, &q, &e) != 0) {
		fail(&k, LR_INPUT, 0, e.msg);
		buf_free(&k.f);
		return LR_INPUT;
	}
	if (chat_count(&c) == 0 && !k.openai) {	/* load or unload */
		free(q.model);
		chat_free(&c);
		return proxy(j, "POST", "/api/chat");
	}
	k.stream = q.stream;
	k.include_usage = q.include_usage;
	k.model = q.model;

	ro.gen.json = 1;
	ro.gen.no_stream = !k.stream;
	ro.gen.own_error_line = 1;	/* fail() writes it, in either API */
	ro.serve = 1;
	ro.fixed_num_ctx = fixed_num_ctx(j, request_model(&c,
	    &j->cfg->role[GPU0], ro.gen.model));
	/* The background writes what the interim answer stood in for. */
	ro.interim = j->cfg->policy == POLICY_COST && j->cfg->serve.prefetch &&
	    j->cache->dir != NULL;
	ro.on_start = on_start;
	ro.on_answer = on_answer;
	ro.hook_ctx = &k;
	j->cache->on_hit = on_cache_hit;
	j->cache->hook_ctx = &k;
	if ((out = fopencookie(&k, "w", fns)) == NULL)
		lr_die(LR_FAIL, "out of memory");
	st = route(&c, j->body, j->len, j->cfg, &ro, j->cache, out, &e);
	if (fflush(out) != 0 && st == 0)
		st = LR_CLOSED;
	if (st == 0 && k.line.len > 0 && sink_line(&k, k.line.p,
	    k.line.len) != 0)
		st = LR_CLOSED;
	if (st == 0)
		/* The model last: the server reads it to the end. */
		info(&k, "phase=done prompt_eval_count=%ld num_ctx=%ld model=%s",
		    ro.gen.prompt_eval_count, ro.info.num_ctx,
		    k.model != NULL ? k.model : "");
	else if (st != LR_CLOSED && !k.gone && !backend_interrupted)
		fail(&k, st, ro.gen.http_status, e.msg);
	else if (backend_interrupted && !k.gone)
		fail(&k, st, 0, "llm-serve is stopping: the answer was "
		    "cancelled");
	fclose(out);
	buf_free(&k.line);
	buf_free(&k.f);
	free(k.model);
	chat_free(&c);
	return st == LR_CLOSED ? 0 : st;
}

/* Passed through: the reply's head and body as they come. */
static int
proxy_head(void *ctx, long status, const char *ctype)
{
	return head(ctx, (int)status, ctype != NULL ? ctype :
	    "application/octet-stream", KIND_BODY) != 0 ? LR_CLOSED : 0;
}

static int
proxy_data(void *ctx, const char *p, size_t n)
{
	return put(ctx, FR_DATA, p, n) != 0 ? LR_CLOSED : 0;
}

static int
proxy(const struct job *j, const char *method, const char *path)
{
	struct sink k;
	struct fwd_cb cb = { proxy_head, proxy_data, NULL };
	struct lr_err e;
	int st;

	memset(&k, 0, sizeof(k));
	k.j = j;
	k.openai = strncmp(path, "/v1/", 4) == 0;
	cb.ctx = &k;
	/* HEAD is asked as GET: not every server answers HEAD, and the
	 * HTTP server leaves the body out. */
	if (strcmp(method, "HEAD") == 0)
		method = "GET";
	st = backend_forward(&j->cfg->role[GPU0], method, path,
	    strcmp(method, "POST") == 0 ? j->body : NULL, j->len, 0, &cb, &e);
	if (st != 0 && st != LR_CLOSED && !k.headed)
		fail(&k, st, 0, e.msg);
	else	/* cut after the head: the server must not end it cleanly */
		info(&k, st == 0 ? "phase=done" : "phase=cut status=%d", st);
	buf_free(&k.f);
	return st == LR_CLOSED ? 0 : st;
}

/* /healthz: does GPU0 answer? */
struct health {
	long status;
	struct buf body;
};

static int
health_head(void *ctx, long status, const char *ctype)
{
	(void)ctype;
	((struct health *)ctx)->status = status;
	return 0;
}

static int
health_data(void *ctx, const char *p, size_t n)
{
	struct health *h = ctx;

	if (h->body.len < 4096)
		buf_add(&h->body, p, n);
	return 0;
}

static int
job_health(const struct job *j)
{
	const struct role *g0 = &j->cfg->role[GPU0];
	struct health h = { 0, BUF_INIT };
	struct fwd_cb cb = { health_head, health_data, &h };
	const char *path = g0->api == API_OLLAMA ? "/api/version" :
	    "/v1/models";
	struct sink k;
	struct lr_err e;
	char msg[300];
	int st;
	jv o;

	memset(&k, 0, sizeof(k));
	k.j = j;
	st = backend_forward(g0, "GET", path, NULL, 0, 5000, &cb, &e);
	if (st == 0 && (h.status < 200 || h.status > 299)) {
		stream_error_message(h.body.p, h.body.len, msg, sizeof(msg));
		st = lr_seterr(&e, LR_BACKEND, "%s %s%s: HTTP %ld%s%s",
		    g0->name, g0->urls[0], path, h.status, *msg ? ": " : "",
		    msg);
	}
	if (st == 0) {
		o = jv_object_set(jv_object(), jv_string("status"),
		    jv_string("ok"));
		struct buf u = BUF_INIT;

		buf_add_redacted(&u, g0->urls[0]);
		o = jv_object_set(o, jv_string("gpu0"), jv_string(
		    buf_str(&u)));
		buf_free(&u);
		head(&k, 200, "application/json", KIND_BODY);
	} else {
		o = jv_object_set(jv_object(), jv_string("error"),
		    jv_string(e.msg));
		head(&k, 503, "application/json", KIND_BODY);
	}
	dump(&k, o);
	put(&k, FR_DATA, k.f.p, k.f.len);
	info(&k, "phase=done");
	buf_free(&k.f);
	buf_free(&h.body);
	return 0;
}

static void
on_cache_put(void *ctx, const char *key)
{
	info(ctx, "prefetched=%s", key);
}

/*
 * Is the next turn worth condensing ahead?  By the thresholds, when it
 * will be map-reduced; by the cost policy, once it passes serve_prepare
 * percent of GPU0's window (as configured, as this server sends it, or
 * as the cache knows it), so that when the chat stops fitting its
 * summaries are there and switching costs GPU1 nothing.
 */
static int
worth_preparing(const struct job *j, const struct chat *next)
{
	const struct role *g0 = &j->cfg->role[GPU0];
	size_t t = measure_tokens(next, j->ro->method);
	const char *model = request_model(next, g0, j->ro->gen.model), *from;
	struct lr_err e;
	long w;

	if (j->cfg->policy != POLICY_COST)
		return strategy_pick(t, j->cfg->a_max, j->cfg->b_max) ==
		    STRAT_MAPREDUCE;
	if ((w = g0->num_ctx) <= 0 && (w = fixed_num_ctx(j, model)) <= 0)
		w = route_model_window(g0, model, j->cache, 0, &from, &e);
	if (w <= 0)	/* not known yet: as the thresholds would */
		return strategy_pick(t, j->cfg->a_max, j->cfg->b_max) ==
		    STRAT_MAPREDUCE;
	return (double)t * 100 >= (double)w * j->cfg->serve.prepare_pct;
}

/*
 * Background condensing: the chat as the next turn will send it (this
 * one, an answer and a new message), so that the chunks that turn
 * closes are summarized into the cache now.
 */
static int
job_prefetch(const struct job *j)
{
	struct role g1 = j->cfg->role[GPU1];
	struct mr_opts mo = j->ro->mr;
	struct condense_result res;
	struct buf raw = BUF_INIT, out = BUF_INIT;
	struct chat c, next;
	struct lr_err e;
	struct sink k;
	jv msgs;
	int st;

	memset(&k, 0, sizeof(k));
	k.j = j;
	if (chat_parse(j->body, j->len, 0, &c, &e) != 0) {
		chat_free(&c);
		return LR_INPUT;
	}
	msgs = jv_copy(c.messages);
	msgs = jv_array_append(msgs, jv_object_set(jv_object_set(jv_object(),
	    jv_string("role"), jv_string("assistant")), jv_string("content"),
	    jv_string("...")));
	msgs = jv_array_append(msgs, jv_object_set(jv_object_set(jv_object(),
	    jv_string("role"), jv_string("user")), jv_string("content"),
	    jv_string("...")));
	request_dump(msgs, &raw);
	chat_free(&c);
	if (chat_parse(raw.p, raw.len, 0, &next, &e) != 0) {
		chat_free(&next);
		buf_free(&raw);
		return LR_INPUT;
	}
	st = 0;
	if (!mo.c.extractive && worth_preparing(j, &next)) {
		/* Its chunks as the foreground will cut them. */
		route_helper_window(&g1, mo.c.model != NULL ? mo.c.model :
		    g1.model, j->cache);
		mo.map_only = 1;
		mo.progress = 0;
		mo.c.on_failure = FAIL_DIRECT;
		j->cache->on_put = on_cache_put;
		j->cache->hook_ctx = &k;
		st = mapreduce(&next, raw.p, raw.len, &g1, &mo, j->cache,
		    &out, &res, &e);
		info(&k, "phase=prefetched chunks=%d cache_hits=%d",
		    res.chunks, res.cache_hits);
	}
	chat_free(&next);
	buf_free(&raw);
	buf_free(&out);
	buf_free(&k.f);
	return st;
}

static int
job_kind_run(const struct job *j)
{
	switch (j->kind) {
	case JOB_OLLAMA_CHAT:
	case JOB_OPENAI_CHAT:
		return job_chat(j);
	case JOB_PROXY:
		return proxy(j, j->method, j->path);
	case JOB_HEALTH:
		return job_health(j);
	case JOB_PREFETCH:
		return job_prefetch(j);
	}
	return LR_FAIL;
}

int
job_run(const struct job *j)
{
	const struct role *g1 = &j->cfg->role[GPU1];
	struct lr_err e;
	struct sink k;
	int st;

	if (j->helper_down != NULL)
		backend_mark_down(g1, j->helper_down);
	st = job_kind_run(j);
	/* GPU1 failed here: the server stops asking it for a while. */
	if (j->helper_down == NULL && backend_role_down(g1, &e)) {
		memset(&k, 0, sizeof(k));
		k.j = j;
		info(&k, "helper_down=%s", e.msg);
	}
	return st;
}
