/*
 * generate.c - stream a chat's answer to a file.
 */
#include <errno.h>
#include <string.h>

#include "backend.h"
#include "generate.h"
#include "log.h"
#include "request.h"

#define THINK_OPEN	"<think>"
#define THINK_CLOSE	"</think>"

enum think_state { T_START, T_INSIDE, T_AFTER, T_PASS };

struct gen {
	const struct gen_opts *o;
	FILE *out;
	const char *model;
	enum api_kind api;
	struct lr_err *err;
	struct buf hold;	/* all output, with --no-stream */
	struct buf pend;	/* content that may be a <think> tag */
	enum think_state ts;
	int in_field_thinking;	/* --show-thinking printed "<think>" */
	char last;		/* the last byte written, or 0 */
	int ended;		/* the text's end is written */
	int out_failed;		/* writing the output failed */
	struct buf think;	/* --no-stream --json: the thinking */
	jv calls;		/* --no-stream --json: the tool calls */
};

static int
put(struct gen *g, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	g->last = p[n - 1];
	if (g->o->no_stream) {
		buf_add(&g->hold, p, n);
		return 0;
	}
	if (fwrite(p, 1, n, g->out) != n || fflush(g->out) != 0) {
		g->out_failed = 1;
		if (errno == EPIPE)
			return lr_seterr(g->err, LR_CLOSED, "output closed");
		return lr_seterr(g->err, LR_FAIL, "writing output: %s",
		    strerror(errno));
	}
	return 0;
}

static int
puts_(struct gen *g, const char *s)
{
	return put(g, s, strlen(s));
}

/* Is s (n bytes) all white space? */
static size_t
skip_space(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' ||
	    s[i] == '\t'))
		i++;
	return i;
}

/*
 * Content with a leading <think>...</think> block left out.  Tags may be
 * split across deltas, so undecided bytes wait in g->pend.
 */
static int
content_filtered(struct gen *g, const char *p, size_t n)
{
	const char *s, *close;
	size_t i, k;
	int r;

	buf_add(&g->pend, p, n);
	for (;;) {
		s = g->pend.p;
		k = g->pend.len;
		switch (g->ts) {
		case T_START:
			i = skip_space(s, k);
			if (i == k)
				return 0;
			if (k - i < strlen(THINK_OPEN) &&
			    memcmp(s + i, THINK_OPEN, k - i) == 0)
				return 0;
			if (k - i >= strlen(THINK_OPEN) &&
			    memcmp(s + i, THINK_OPEN, strlen(THINK_OPEN)) == 0) {
				i += strlen(THINK_OPEN);
				memmove(g->pend.p, s + i, k - i);
				g->pend.len = k - i;
				g->ts = T_INSIDE;
				continue;
			}
			g->ts = T_PASS;
			continue;
		case T_INSIDE:
			buf_str(&g->pend);
			close = strstr(s, THINK_CLOSE);
			if (close == NULL) {
				/* Keep what may be the start of the tag. */
				if (k > strlen(THINK_CLOSE)) {
					i = k - strlen(THINK_CLOSE);
					memmove(g->pend.p, s + i, k - i);
					g->pend.len = k - i;
				}
				return 0;
			}
			i = (size_t)(close - s) + strlen(THINK_CLOSE);
			memmove(g->pend.p, s + i, k - i);
			g->pend.len = k - i;
			g->ts = T_AFTER;
			continue;
		case T_AFTER:
			i = skip_space(s, k);
			memmove(g->pend.p, s + i, k - i);
			g->pend.len = k - i;
			if (g->pend.len == 0)
				return 0;
			g->ts = T_PASS;
			continue;
		case T_PASS:
			r = put(g, s, k);
			g->pend.len = 0;
			return r;
		}
	}
}

static int
on_delta(void *ctx, const char *c, size_t cn, const char *t, size_t tn)
{
	struct gen *g = ctx;
	int r = 0;

	if (g->o->json)
		return 0;
	if (g->o->show_thinking) {
		if (tn > 0 && !g->in_field_thinking) {
			g->in_field_thinking = 1;
			r = puts_(g, THINK_OPEN);
		}
		if (r == 0)
			r = put(g, t, tn);
		if (r == 0 && cn > 0 && g->in_field_thinking) {
			g->in_field_thinking = 0;
			r = puts_(g, THINK_CLOSE "\n");
		}
		return r != 0 ? r : put(g, c, cn);
	}
	return content_filtered(g, c, cn);
}

/* An Ollama chunk line for an answer that came from an OpenAI server. */
static jv
ollama_chunk(const struct gen *g, jv content, int done)
{
	struct buf ts = BUF_INIT;
	jv o;

	lr_put_time(&ts);
	o = jv_object_set(jv_object(), jv_string("model"),
	    jv_string(g->model));
	o = jv_object_set(o, jv_string("created_at"), jv_string(buf_str(&ts)));
	o = jv_object_set(o, jv_string("message"), jv_object_set(
	    jv_object_set(jv_object(), jv_string("role"),
	    jv_string("assistant")), jv_string("content"), content));
	o = jv_object_set(o, jv_string("done"), done ? jv_true() : jv_false());
	buf_free(&ts);
	return o;
}

static int
put_json(struct gen *g, jv o)
{
	struct buf b = BUF_INIT;
	int r;

	request_dump(o, &b);
	buf_addc(&b, '\n');
	r = put(g, b.p, b.len);
	buf_free(&b);
	return r;
}

static int
on_delta_json(void *ctx, const char *c, size_t cn, const char *t, size_t tn)
{
	struct gen *g = ctx;
	jv o, m;

	if (g->o->no_stream) {
		buf_add(&g->think, t, tn);
		return 0;
	}
	if (g->api == API_OLLAMA)
		return 0;
	o = ollama_chunk(g, jv_string_sized(c != NULL ? c : "", (int)cn), 0);
	if (tn > 0) {
		m = jv_object_get(jv_copy(o), jv_string("message"));
		m = jv_object_set(m, jv_string("thinking"),
		    jv_string_sized(t, (int)tn));
		o = jv_object_set(o, jv_string("message"), m);
	}
	return put_json(g, o);
}

static int
on_line(void *ctx, const char *line, size_t len)
{
	struct gen *g = ctx;
	int r;

	if ((r = put(g, line, len)) == 0)
		r = put(g, "\n", 1);
	return r;
}

/* --no-stream --json: keep the tool calls of each Ollama line. */
static int
on_line_calls(void *ctx, const char *line, size_t len)
{
	struct gen *g = ctx;
	jv o, tc;
	int i, n;

	if (len < 12 || lr_memfind(line, len, "\"tool_calls\"", 12) == NULL)
		return 0;
	o = jv_parse_sized(line, (int)len);
	tc = jv_get_kind(o) == JV_KIND_OBJECT ? jv_object_get(jv_copy(o),
	    jv_string("message")) : jv_invalid();
	if (jv_get_kind(tc) == JV_KIND_OBJECT)
		tc = jv_object_get(tc, jv_string("tool_calls"));
	if (jv_get_kind(tc) == JV_KIND_ARRAY) {
		n = jv_array_length(jv_copy(tc));
		for (i = 0; i < n; i++)
			g->calls = jv_array_append(g->calls,
			    jv_array_get(jv_copy(tc), i));
	}
	jv_free(tc);
	jv_free(o);
	return 0;
}

/*
 * The final line in Ollama's shape: stats from the reply's final object,
 * and its created_at when the server sent one (Ollama's done line; an
 * OpenAI server has none, and the time is this one's).
 */
static jv
final_object(const struct gen *g, jv final, const char *content)
{
	jv o = ollama_chunk(g, jv_string(content), 1);
	jv_kind k = jv_get_kind(final);

	if (g->think.len > 0 || jv_array_length(jv_copy(g->calls)) > 0) {
		jv m = jv_object_get(jv_copy(o), jv_string("message"));

		if (g->think.len > 0)
			m = jv_object_set(m, jv_string("thinking"),
			    jv_string_sized(g->think.p, (int)g->think.len));
		if (jv_array_length(jv_copy(g->calls)) > 0)
			m = jv_object_set(m, jv_string("tool_calls"),
			    jv_copy(g->calls));
		o = jv_object_set(o, jv_string("message"), m);
	}

	if (k == JV_KIND_OBJECT) {
		int it = jv_object_iter(final);

		while (jv_object_iter_valid(final, it)) {
			jv key = jv_object_iter_key(final, it);
			jv val = jv_object_iter_value(final, it);
			const char *ks = jv_string_value(key);

			if (strcmp(ks, "message") != 0 &&
			    strcmp(ks, "done") != 0 &&
			    strcmp(ks, "model") != 0 &&
			    (strcmp(ks, "created_at") != 0 ||
			    jv_get_kind(val) == JV_KIND_STRING))
				o = jv_object_set(o, key, val);
			else {
				jv_free(key);
				jv_free(val);
			}
			it = jv_object_iter_next(final, it);
		}
	}
	return o;
}

static void
log_stats(const struct chat_xfer *x)
{
	jv f = x->stream.final;
	double ev, ed;

	if (jv_get_kind(f) != JV_KIND_OBJECT)
		return;
	ev = chat_number(f, "eval_count");
	ed = chat_number(f, "eval_duration");
	log_event(LOG_INFO, "stats", "role", 's', x->role->name,
	    "prompt_eval_count", 'i', (long)chat_number(f, "prompt_eval_count"),
	    "eval_count", 'i', (long)ev,
	    "total_ms", 'f', chat_number(f, "total_duration") / 1e6,
	    "load_ms", 'f', chat_number(f, "load_duration") / 1e6,
	    "prompt_eval_ms", 'f', chat_number(f, "prompt_eval_duration") / 1e6,
	    "eval_ms", 'f', ed / 1e6,
	    "tokens_per_s", 'f', ev > 0 && ed > 0 ? ev / (ed / 1e9) : 0.0,
	    (const char *)NULL);
}

/*
 * The end of a text answer: a tag that never completed is text after
 * all, an open --show-thinking block is closed, and the text ends with
 * a newline, as a line of a filter does.
 */
static int
text_end(void *ctx)
{
	struct gen *g = ctx;
	int st = 0;

	if (g->ended || g->o->json)
		return 0;
	g->ended = 1;
	if (g->ts == T_START && g->pend.len > 0)
		st = put(g, g->pend.p, g->pend.len);
	if (st == 0 && g->in_field_thinking)
		st = puts_(g, THINK_CLOSE "\n");
	if (st == 0 && g->last != '\0' && g->last != '\n')
		st = put(g, "\n", 1);
	return st;
}

/*
 * A text answer cut off by an error: end the line written so far, so
 * that the error message does not run onto it.  The error stays the
 * one to report, whatever this write does.
 */
static void
cut_end(struct gen *g)
{
	if (g->o->json || g->o->no_stream || g->ended || g->out_failed ||
	    g->last == '\0' || g->last == '\n')
		return;
	g->ended = 1;
	if (fputc('\n', g->out) == EOF || fflush(g->out) != 0)
		g->out_failed = 1;
}

/*
 * NDJSON cut off by an error: end it with an {"error":"..."} line, as
 * Ollama ends such a stream, so that a reader of the lines sees why
 * there is no done:true.  Not after a signal or a closed or failed
 * output; the error stays the one to report, whatever this write does.
 */
static void
json_error_end(struct gen *g, int st, const char *msg)
{
	struct buf b = BUF_INIT;

	if (!g->o->json || g->o->no_stream || g->o->own_error_line ||
	    g->out_failed || g->last == '\0' || st == LR_CLOSED || st > 128)
		return;
	request_dump(jv_object_set(jv_object(), jv_string("error"),
	    jv_string(msg)), &b);
	buf_addc(&b, '\n');
	if (fwrite(b.p, 1, b.len, g->out) != b.len || fflush(g->out) != 0)
		g->out_failed = 1;
	buf_free(&b);
}

/*
 * lr_die() (out of memory) while the answer streams: end the stream as
 * cut_end() and json_error_end() end one cut by an error, without
 * allocating (the message is one line, control characters gone).
 */
static void
die_end(int status, const char *msg, void *ctx)
{
	struct gen *g = ctx;
	const char *p;

	(void)status;
	if (g->o->no_stream || g->out_failed || g->last == '\0')
		return;
	if (!g->o->json) {
		cut_end(g);
		return;
	}
	if (g->o->own_error_line)
		return;
	fputs("{\"error\":\"", g->out);
	for (p = msg; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', g->out);
		fputc(*p, g->out);
	}
	fputs("\"}\n", g->out);
	fflush(g->out);
}

int
generate(const struct chat *c, const struct role *r,
    struct gen_opts *o, FILE *out, struct lr_err *e)
{
	struct chat_xfer x, *xs[1] = { &x };
	struct gen g;
	struct buf body = BUF_INIT;
	long num_ctx;
	jv req;
	int st;

	memset(&g, 0, sizeof(g));
	g.calls = jv_array();
	g.o = o;
	g.out = out;
	lr_atdie(die_end, &g);
	g.api = r->api;
	g.err = &x.err;
	g.model = request_model(c, r, o->model);
	req = request_build(c, g.model, r->api);
	num_ctx = o->num_ctx > 0 ? o->num_ctx : r->num_ctx;
	if (num_ctx > 0 && r->api == API_OLLAMA) {
		/* One fixed num_ctx: a changing one makes Ollama reload. */
		jv opts = jv_object_get(jv_copy(req), jv_string("options"));

		if (jv_get_kind(opts) != JV_KIND_OBJECT) {
			jv_free(opts);
			opts = jv_object();
		}
		opts = jv_object_set(opts, jv_string("num_ctx"),
		    jv_number((double)num_ctx));
		req = jv_object_set(req, jv_string("options"), opts);
	}
	request_write(c, req, r->api, &body);	/* the input's bytes but ours */

	memset(&x, 0, sizeof(x));
	x.role = r;
	x.model = g.model;
	x.prefill_hint = o->prefill_hint;
	x.body = body.p;
	x.body_len = body.len;
	x.cb.ctx = &g;
	x.keep = o->json && (o->no_stream || r->api == API_OPENAI);
	if (o->json) {
		x.cb.delta = on_delta_json;
		if (r->api == API_OLLAMA)
			x.cb.line = o->no_stream ? on_line_calls : on_line;
	} else {
		x.cb.delta = on_delta;
		x.cb.done = text_end;
	}

	st = backend_run(xs, 1, 1);
	if (st == 0 && o->json && (o->no_stream || r->api == API_OPENAI)) {
		jv fin = final_object(&g, x.stream.final, o->no_stream ?
		    buf_str(&x.stream.content) : "");
		st = put_json(&g, fin);
	}
	if (st == 0)
		st = text_end(&g);
	o->prompt_eval_count = -1;
	if (st == 0) {
		log_stats(&x);
		o->prompt_eval_count = (long)chat_number(x.stream.final,
		    "prompt_eval_count");
	}
	if (o->no_stream && st == 0) {
		struct gen_opts now = *o;

		now.no_stream = 0;
		g.o = &now;
		st = put(&g, g.hold.p, g.hold.len);
		g.o = o;
	}
	if (st != 0) {
		cut_end(&g);
		json_error_end(&g, st, x.err.msg);
	}
	if (st != 0 && e != NULL)
		*e = x.err;
	o->http_status = x.http_status;
	o->ms_first = x.ms_first;
	backend_xfer_free(&x);
	buf_free(&g.hold);
	buf_free(&g.pend);
	buf_free(&g.think);
	jv_free(g.calls);
	buf_free(&body);
	lr_atdie(NULL, NULL);
	return st;
}
