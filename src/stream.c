/*
 * stream.c - Ollama NDJSON and OpenAI SSE reply parsing.
 */
#include <string.h>

#include "stream.h"

void
stream_init(struct stream *s, enum api_kind api, const struct stream_cb *cb,
    struct lr_err *err)
{
	memset(s, 0, sizeof(*s));
	s->api = api;
	if (cb != NULL)
		s->cb = *cb;
	s->final = jv_null();
	s->err = err;
	s->what = "backend";
}

void
stream_free(struct stream *s)
{
	buf_free(&s->pending);
	buf_free(&s->content);
	jv_free(s->final);
	s->final = jv_null();
}

void
stream_error_message(const char *body, size_t len, char *out, size_t outsz)
{
	jv v, m;

	v = len > 0 && len < 0x7fffffff ? jv_parse_sized(body, (int)len) :
	    jv_invalid();
	if (jv_get_kind(v) == JV_KIND_OBJECT) {
		m = jv_object_get(jv_copy(v), jv_string("error"));
		if (jv_get_kind(m) == JV_KIND_OBJECT)
			m = jv_object_get(m, jv_string("message"));
		if (jv_get_kind(m) == JV_KIND_STRING) {
			lr_excerpt(out, outsz, jv_string_value(m),
			    (size_t)jv_string_length_bytes(jv_copy(m)), 300);
			jv_free(m);
			jv_free(v);
			return;
		}
		jv_free(m);
	}
	jv_free(v);
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'))
		len--;
	lr_excerpt(out, outsz, body, len, 200);
}

/* The string at obj.k1.k2 (k2 may be NULL), or NULL; *n its length. */
static const char *
get_str(jv obj, const char *k1, const char *k2, size_t *n, jv *hold)
{
	jv v;

	*n = 0;
	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return NULL;
	v = jv_object_get(jv_copy(obj), jv_string(k1));
	if (k2 != NULL) {
		if (jv_get_kind(v) != JV_KIND_OBJECT) {
			jv_free(v);
			return NULL;
		}
		v = jv_object_get(v, jv_string(k2));
	}
	if (jv_get_kind(v) != JV_KIND_STRING) {
		jv_free(v);
		return NULL;
	}
	*n = (size_t)jv_string_length_bytes(jv_copy(v));
	*hold = v;
	return jv_string_value(v);
}

static int
bad_line(struct stream *s, const char *line, size_t len, const char *why)
{
	char ex[80];

	lr_excerpt(ex, sizeof(ex), line, len, 60);
	return lr_seterr(s->err, LR_MALFORMED, "%s: malformed reply: %s: '%s'",
	    s->what, why, ex);
}

static int
error_line(struct stream *s, jv obj)
{
	jv m = jv_object_get(jv_copy(obj), jv_string("error"));
	char msg[400];

	if (jv_get_kind(m) == JV_KIND_OBJECT)
		m = jv_object_get(m, jv_string("message"));
	if (jv_get_kind(m) == JV_KIND_STRING)
		lr_excerpt(msg, sizeof(msg), jv_string_value(m),
		    (size_t)jv_string_length_bytes(jv_copy(m)), 300);
	else
		snprintf(msg, sizeof(msg), "error without a message");
	jv_free(m);
	return lr_seterr(s->err, LR_BACKEND, "%s: error in stream: %s",
	    s->what, msg);
}

static int
deliver(struct stream *s, const char *c, size_t cn, const char *t, size_t tn)
{
	if (s->keep && cn > 0)
		buf_add(&s->content, c, cn);
	if (s->cb.delta != NULL && (cn > 0 || tn > 0))
		return s->cb.delta(s->cb.ctx, c, cn, t, tn);
	return 0;
}

static int
ollama_line(struct stream *s, const char *line, size_t len)
{
	jv obj, hc = jv_null(), ht = jv_null(), d;
	const char *c, *t;
	size_t cn, tn;
	int r;

	obj = jv_parse_sized(line, (int)len);
	if (jv_get_kind(obj) != JV_KIND_OBJECT) {
		jv_free(obj);
		return bad_line(s, line, len, "not a JSON object");
	}
	if (jv_object_has(jv_copy(obj), jv_string("error"))) {
		r = error_line(s, obj);
		jv_free(obj);
		return r;
	}
	if (s->done) {
		jv_free(obj);
		return bad_line(s, line, len, "line after done");
	}
	if (s->cb.line != NULL && (r = s->cb.line(s->cb.ctx, line, len))) {
		jv_free(obj);
		return r;
	}
	c = get_str(obj, "message", "content", &cn, &hc);
	t = get_str(obj, "message", "thinking", &tn, &ht);
	r = deliver(s, c, cn, t, tn);
	jv_free(hc);
	jv_free(ht);
	if (r != 0) {
		jv_free(obj);
		return r;
	}
	d = jv_object_get(jv_copy(obj), jv_string("done"));
	if (jv_get_kind(d) == JV_KIND_TRUE) {
		s->done = 1;
		jv_free(s->final);
		s->final = obj;
	} else
		jv_free(obj);
	jv_free(d);
	return s->done && s->cb.done != NULL ? s->cb.done(s->cb.ctx) : 0;
}

/* Copy a number from OpenAI's usage into the final object. */
static jv
copy_num(jv final, jv usage, const char *from, const char *to)
{
	jv v = jv_object_get(jv_copy(usage), jv_string(from));

	if (jv_get_kind(v) == JV_KIND_NUMBER)
		return jv_object_set(final, jv_string(to), v);
	jv_free(v);
	return final;
}

/* Is the line the SSE field name, alone or followed by ':'? */
static int
sse_field(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len >= n && memcmp(line, name, n) == 0 &&
	    (len == n || line[n] == ':');
}

static int
openai_line(struct stream *s, const char *line, size_t len)
{
	jv obj, ch, hc = jv_null(), ht = jv_null(), u;
	const char *c, *t;
	size_t cn, tn;
	int r;

	/*
	 * SSE: blank lines end events; ':' starts a comment; event, id and
	 * retry fields mean nothing here.  A field is its name up to ':'.
	 */
	if (len == 0 || line[0] == ':')
		return 0;
	if (sse_field(line, len, "event") || sse_field(line, len, "id") ||
	    sse_field(line, len, "retry"))
		return 0;
	if (!sse_field(line, len, "data"))
		return bad_line(s, line, len, "not an SSE data line");
	if (len == 4)		/* "data" alone: an empty data field */
		return 0;
	line += 5;
	len -= 5;
	if (len > 0 && line[0] == ' ')
		line++, len--;
	if (len == 0)
		return 0;
	if (len == 6 && memcmp(line, "[DONE]", 6) == 0) {
		if (jv_get_kind(s->final) != JV_KIND_OBJECT)
			s->final = jv_object();
		s->final = jv_object_set(s->final, jv_string("done"),
		    jv_true());
		s->done = 1;
		return s->cb.done != NULL ? s->cb.done(s->cb.ctx) : 0;
	}
	obj = jv_parse_sized(line, (int)len);
	if (jv_get_kind(obj) != JV_KIND_OBJECT) {
		jv_free(obj);
		return bad_line(s, line, len, "not a JSON object");
	}
	if (jv_object_has(jv_copy(obj), jv_string("error"))) {
		r = error_line(s, obj);
		jv_free(obj);
		return r;
	}
	if (s->done) {
		jv_free(obj);
		return bad_line(s, line, len, "data after [DONE]");
	}
	ch = jv_object_get(jv_copy(obj), jv_string("choices"));
	if (jv_get_kind(ch) == JV_KIND_ARRAY &&
	    jv_array_length(jv_copy(ch)) > 0) {
		jv c0 = jv_array_get(jv_copy(ch), 0);
		jv fr;

		c = get_str(c0, "delta", "content", &cn, &hc);
		t = get_str(c0, "delta", "reasoning_content", &tn, &ht);
		if (c == NULL) {	/* a non-streamed completion */
			jv_free(hc);
			c = get_str(c0, "message", "content", &cn, &hc);
		}
		r = deliver(s, c, cn, t, tn);
		jv_free(hc);
		jv_free(ht);
		fr = jv_get_kind(c0) == JV_KIND_OBJECT ?
		    jv_object_get(c0, jv_string("finish_reason")) :
		    (jv_free(c0), jv_invalid());
		if (jv_get_kind(fr) == JV_KIND_STRING) {
			if (jv_get_kind(s->final) != JV_KIND_OBJECT)
				s->final = jv_object();
			s->final = jv_object_set(s->final,
			    jv_string("done_reason"), fr);
		} else
			jv_free(fr);
		if (r != 0) {
			jv_free(ch);
			jv_free(obj);
			return r;
		}
	}
	jv_free(ch);
	u = jv_object_get(jv_copy(obj), jv_string("usage"));
	if (jv_get_kind(u) == JV_KIND_OBJECT) {
		if (jv_get_kind(s->final) != JV_KIND_OBJECT)
			s->final = jv_object();
		s->final = copy_num(s->final, u, "prompt_tokens",
		    "prompt_eval_count");
		s->final = copy_num(s->final, u, "completion_tokens",
		    "eval_count");
	}
	jv_free(u);
	jv_free(obj);
	return 0;
}

static int
one_line(struct stream *s, const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	s->nlines++;
	if (s->api == API_OPENAI)
		return openai_line(s, line, len);
	if (len == 0)
		return 0;
	return ollama_line(s, line, len);
}

int
stream_feed(struct stream *s, const char *p, size_t n)
{
	const char *nl;
	size_t k;
	int r;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) : n;
		if (s->pending.len + k > STREAM_MAX_LINE)
			return lr_seterr(s->err, LR_MALFORMED, "%s: malformed "
			    "reply: a line longer than %lu bytes", s->what,
			    STREAM_MAX_LINE);
		if (nl == NULL) {
			buf_add(&s->pending, p, n);
			return 0;
		}
		if (s->pending.len > 0) {
			buf_add(&s->pending, p, k);
			r = one_line(s, s->pending.p, s->pending.len);
			s->pending.len = 0;
		} else
			r = one_line(s, p, k);
		if (r != 0)
			return r;
		p += k + 1;
		n -= k + 1;
	}
	return 0;
}

int
stream_finish(struct stream *s)
{
	int r;

	if (s->pending.len > 0) {
		r = one_line(s, s->pending.p, s->pending.len);
		s->pending.len = 0;
		if (r != 0)
			return r;
	}
	if (!s->done)
		return lr_seterr(s->err, LR_MALFORMED, "%s: the reply ended "
		    "before %s", s->what, s->api == API_OPENAI ?
		    "[DONE]" : "done:true");
	return 0;
}
