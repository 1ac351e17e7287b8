/*
 * measure.c - chat sizes and the routing decision.
 */
#include <string.h>

#include "measure.h"

/* Code points in n bytes of UTF-8 (continuation bytes not counted). */
static size_t
utf8_chars(const char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

void
measure_message(jv msg, enum est_method m, struct msg_size *out)
{
	struct buf text = BUF_INIT;
	jv role, tc;

	chat_msg_text(msg, &text);
	tc = jv_object_get(jv_copy(msg), jv_string("tool_calls"));
	if (jv_get_kind(tc) == JV_KIND_ARRAY &&
	    jv_array_length(jv_copy(tc)) > 0) {
		jv s = jv_dump_string(tc, 0);

		if (text.len > 0)
			buf_addc(&text, '\n');
		buf_add(&text, jv_string_value(s),
		    (size_t)jv_string_length_bytes(jv_copy(s)));
		jv_free(s);
	} else
		jv_free(tc);
	role = jv_object_get(jv_copy(msg), jv_string("role"));
	out->bytes = text.len;
	out->chars = utf8_chars(text.p, text.len);
	out->tokens = est_message_tokens(jv_get_kind(role) == JV_KIND_STRING ?
	    jv_string_value(role) : "user", text.p != NULL ? text.p : "",
	    text.len, m);
	jv_free(role);
	buf_free(&text);
}

/* measure_message() consumes nothing; this wrapper frees msg. */
static void
measure_at(const struct chat *c, int i, enum est_method m,
    struct msg_size *sz)
{
	jv msg = jv_array_get(jv_copy(c->messages), i);

	measure_message(msg, m, sz);
	jv_free(msg);
}

size_t
measure_tokens(const struct chat *c, enum est_method m)
{
	struct msg_size sz;
	size_t t = 0;
	int i, n = chat_count(c);

	for (i = 0; i < n; i++) {
		measure_at(c, i, m, &sz);
		t += sz.tokens;
	}
	return t;
}

enum strategy
strategy_pick(size_t tokens, long a_max, long b_max)
{
	if (tokens < (size_t)a_max)
		return STRAT_DIRECT;
	if (tokens < (size_t)b_max)
		return STRAT_SUMMARIZE;
	return STRAT_MAPREDUCE;
}

const char *
strategy_name(enum strategy s)
{
	switch (s) {
	case STRAT_DIRECT: return "direct";
	case STRAT_SUMMARIZE: return "summarize";
	case STRAT_MAPREDUCE: return "mapreduce";
	}
	return "?";
}

static jv
add_num(jv obj, const char *k, double v)
{
	return jv_object_set(obj, jv_string(k), jv_number(v));
}

jv
measure_report(const struct chat *c, enum est_method m, long a_max,
    long b_max, size_t input_bytes, int per_message)
{
	struct msg_size sz;
	size_t tokens = 0, chars = 0, bytes = 0;
	jv by_role = jv_object(), list = jv_array(), r, old, th;
	int i, n = chat_count(c);

	for (i = 0; i < n; i++) {
		const char *role = chat_role(c, i);

		measure_at(c, i, m, &sz);
		tokens += sz.tokens;
		chars += sz.chars;
		bytes += sz.bytes;
		old = jv_object_get(jv_copy(by_role), jv_string(role));
		by_role = add_num(by_role, role, sz.tokens +
		    (jv_get_kind(old) == JV_KIND_NUMBER ?
		    jv_number_value(old) : 0));
		jv_free(old);
		if (per_message) {
			jv e = jv_object_set(jv_object(), jv_string("index"),
			    jv_number(i));

			e = jv_object_set(e, jv_string("role"),
			    jv_string(role));
			e = add_num(e, "tokens", (double)sz.tokens);
			e = add_num(e, "chars", (double)sz.chars);
			e = add_num(e, "bytes", (double)sz.bytes);
			list = jv_array_append(list, e);
		}
	}
	r = add_num(jv_object(), "tokens", (double)tokens);
	r = add_num(r, "chars", (double)chars);
	r = add_num(r, "bytes", (double)bytes);
	r = add_num(r, "input_bytes", (double)input_bytes);
	r = add_num(r, "messages", n);
	r = jv_object_set(r, jv_string("by_role"), by_role);
	r = jv_object_set(r, jv_string("strategy"), jv_string(strategy_name(
	    strategy_pick(tokens, a_max, b_max))));
	th = add_num(jv_object(), "a_max", (double)a_max);
	th = add_num(th, "b_max", (double)b_max);
	r = jv_object_set(r, jv_string("thresholds"), th);
	r = jv_object_set(r, jv_string("method"),
	    jv_string(est_method_name(m)));
	r = jv_object_set(r, jv_string("shape"),
	    jv_string(chat_shape_name(c->shape)));
	if (per_message)
		r = jv_object_set(r, jv_string("per_message"), list);
	else
		jv_free(list);
	return r;
}
