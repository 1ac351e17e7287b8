/*
 * chat.c - reading and validating the chat on stdin.
 */
#include "chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Keys that only an OpenAI chat-completions request has. */
static const char *const openai_keys[] = {
	"max_tokens", "max_completion_tokens", "temperature", "top_p",
	"frequency_penalty", "presence_penalty", "stream_options", "n",
	"response_format", "tool_choice", "parallel_tool_calls", "logprobs",
	"top_logprobs", "seed", "stop", "user", "logit_bias", NULL
};

int
chat_read(int fd, size_t max, struct buf *in, struct lr_err *e)
{
	ssize_t r;
	size_t n;

	for (;;) {
		buf_grow(in, 65536);
		/* Never past max + 1 bytes: enough to know the input is too
		 * large, so memory stays near the limit whatever comes. */
		n = in->cap - in->len - 1;
		if (max - in->len < n - 1)
			n = max - in->len + 1;
		r = read(fd, in->p + in->len, n);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return lr_seterr(e, LR_FAIL, "reading input: %s",
			    strerror(errno));
		}
		in->len += (size_t)r;
		if (in->len > max)
			return lr_seterr(e, LR_INPUT,
			    "input larger than %zu bytes (see --max-input)",
			    max);
	}
	return 0;
}

static const char *
kind_name(jv_kind k)
{
	switch (k) {
	case JV_KIND_NULL: return "null";
	case JV_KIND_FALSE:
	case JV_KIND_TRUE: return "a boolean";
	case JV_KIND_NUMBER: return "a number";
	case JV_KIND_STRING: return "a string";
	case JV_KIND_ARRAY: return "an array";
	case JV_KIND_OBJECT: return "an object";
	default: return "invalid";
	}
}

/*
 * The pre-scan, one pass before the parser: nesting depth, so that the
 * limit is ours and its message says where, and raw control bytes,
 * which RFC 8259 forbids in a string and libjq 1.6 lets through when
 * the byte is a NUL (and outside strings where they are no white space).
 * Strings are skipped with their escapes.
 */
static int
prescan(const char *p, size_t n, struct lr_err *e)
{
	/* Bytes that end a run: in a string ('"', '\\', controls), and
	 * outside one (the same, and brackets). */
	static unsigned char stop[2][256];
	const unsigned char *u = (const unsigned char *)p;
	size_t i, line = 1, bol = 0;	/* bol: where the line begins */
	int depth = 0, instr = 0, c;

	if (!stop[0]['"']) {
		for (c = 0; c < 0x20; c++)
			stop[0][c] = stop[1][c] = 1;
		stop[0]['"'] = stop[1]['"'] = stop[1]['\\'] = 1;
		stop[0]['['] = stop[0]['{'] = stop[0][']'] = stop[0]['}'] = 1;
	}
	for (i = 0; i < n; i++) {
		unsigned char ch;

		while (i < n && !stop[instr][u[i]])
			i++;
		if (i == n)
			break;
		ch = u[i];
		if (ch < 0x20) {
			if (ch == '\n' && !instr) {
				line++;
				bol = i + 1;
				continue;
			}
			if (instr || (ch != '\t' && ch != '\r'))
				return lr_seterr(e, LR_INPUT, "bad input: "
				    "invalid JSON: raw control byte 0x%02x %s "
				    "at byte %zu (line %zu, column %zu)", ch,
				    instr ? "in a string" : "outside a string",
				    i + 1, line, i - bol + 1);
			continue;
		}
		if (instr) {
			if (ch == '\\') {
				if (i + 1 < n && u[i + 1] < 0x20)
					continue;	/* reported next */
				i++;
			} else	/* '"' */
				instr = 0;
			continue;
		}
		if (ch == '"')
			instr = 1;
		else if (ch == '[' || ch == '{') {
			if (++depth > CHAT_MAX_DEPTH)
				return lr_seterr(e, LR_INPUT,
				    "bad input: nesting deeper than %d levels "
				    "at line %zu, column %zu", CHAT_MAX_DEPTH,
				    line, i - bol + 1);
		} else	/* ']' or '}' */
			depth--;
	}
	return 0;
}

/*
 * Is p valid UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
 * U+10FFFF)?  ASCII runs are skipped a byte at a time, fast enough.
 */
static int
utf8_valid(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p, *end = u + n;

	while (u < end) {
		unsigned char c = *u;
		size_t k;
		unsigned long cp;

		if (c < 0x80) {
			u++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return 0;
		if ((size_t)(end - u) <= k)
			return 0;
		for (size_t i = 1; i <= k; i++) {
			if ((u[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (u[i] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		u += k + 1;
	}
	return 1;
}

/* libjq's message without its echo of the whole input, with an excerpt. */
static int
parse_error(const char *p, size_t n, jv err, struct lr_err *e)
{
	jv msg = jv_invalid_get_msg(err);
	char why[256], near[64];
	const char *s, *cut;
	size_t len, off = 0, line = 0, col = 0, l;

	if (jv_get_kind(msg) == JV_KIND_STRING) {
		s = jv_string_value(msg);
		cut = strstr(s, " (while parsing");
		len = cut != NULL ? (size_t)(cut - s) : strlen(s);
	} else {
		s = "unknown error";
		len = strlen(s);
	}
	lr_excerpt(why, sizeof(why), s, len, 200);
	if ((cut = strstr(why, " at line ")) != NULL &&
	    sscanf(cut, " at line %zu, column %zu", &line, &col) == 2) {
		/* Find the byte offset of line:col for an excerpt. */
		for (l = 1; off < n && l < line; off++)
			if (p[off] == '\n')
				l++;
		off += col;
		if (off > n)
			off = n;
	} else
		off = n;
	jv_free(msg);
	l = off > 24 ? off - 24 : 0;
	lr_excerpt(near, sizeof(near), p + l, off - l, 40);
	return lr_seterr(e, LR_INPUT, "bad input: invalid JSON: %s%s%s%s",
	    why, *near ? ", after '" : "", near, *near ? "'" : "");
}

/* Validate one message; i is its index for messages. */
static int
check_message(jv m, int i, int *parts, struct lr_err *e)
{
	jv v;
	jv_kind k;
	int j, n;

	if (jv_get_kind(m) != JV_KIND_OBJECT)
		return lr_seterr(e, LR_INPUT, "bad input: messages[%d]: "
		    "expected an object, got %s", i, kind_name(jv_get_kind(m)));
	v = jv_object_get(jv_copy(m), jv_string("role"));
	k = jv_get_kind(v);
	jv_free(v);
	if (k == JV_KIND_INVALID)
		return lr_seterr(e, LR_INPUT,
		    "bad input: messages[%d]: no \"role\"", i);
	if (k != JV_KIND_STRING)
		return lr_seterr(e, LR_INPUT, "bad input: messages[%d].role: "
		    "expected a string, got %s", i, kind_name(k));
	v = jv_object_get(jv_copy(m), jv_string("content"));
	k = jv_get_kind(v);
	if (k == JV_KIND_ARRAY) {
		*parts = 1;
		n = jv_array_length(jv_copy(v));
		for (j = 0; j < n; j++) {
			jv part = jv_array_get(jv_copy(v), j);
			jv t;
			jv_kind pk = jv_get_kind(part);

			if (pk == JV_KIND_STRING) {
				jv_free(part);
				continue;
			}
			if (pk != JV_KIND_OBJECT) {
				jv_free(part);
				jv_free(v);
				return lr_seterr(e, LR_INPUT, "bad input: "
				    "messages[%d].content[%d]: expected an "
				    "object, got %s", i, j, kind_name(pk));
			}
			t = jv_object_get(jv_copy(part), jv_string("type"));
			if (jv_get_kind(t) == JV_KIND_STRING &&
			    strcmp(jv_string_value(t), "text") == 0) {
				jv tx = jv_object_get(part,
				    jv_string("text"));
				pk = jv_get_kind(tx);
				jv_free(tx);
				if (pk != JV_KIND_STRING) {
					jv_free(t);
					jv_free(v);
					return lr_seterr(e, LR_INPUT,
					    "bad input: messages[%d].content"
					    "[%d].text: expected a string, got "
					    "%s", i, j, kind_name(pk));
				}
			} else
				jv_free(part);
			jv_free(t);
		}
	} else if (k != JV_KIND_STRING && k != JV_KIND_NULL &&
	    k != JV_KIND_INVALID) {
		jv_free(v);
		return lr_seterr(e, LR_INPUT, "bad input: messages[%d].content:"
		    " expected a string or an array of parts, got %s", i,
		    kind_name(k));
	}
	jv_free(v);
	return 0;
}

/* Check that a top-level key, when present, has the kind given. */
static int
check_key(jv doc, const char *key, jv_kind want, const char *wantname,
    struct lr_err *e)
{
	jv v = jv_object_get(jv_copy(doc), jv_string(key));
	jv_kind k = jv_get_kind(v);

	jv_free(v);
	if (k == JV_KIND_INVALID || k == want ||
	    (want == JV_KIND_TRUE && k == JV_KIND_FALSE))
		return 0;
	return lr_seterr(e, LR_INPUT, "bad input: \"%s\": expected %s, got %s",
	    key, wantname, kind_name(k));
}

static int
check_messages(struct chat *c, struct lr_err *e)
{
	int i, n, parts = 0;

	n = jv_array_length(jv_copy(c->messages));
	for (i = 0; i < n; i++) {
		jv m = jv_array_get(jv_copy(c->messages), i);
		int r = check_message(m, i, &parts, e);

		jv_free(m);
		if (r != 0)
			return r;
	}
	if (parts && c->shape == CHAT_OLLAMA)
		c->shape = CHAT_OPENAI;
	return 0;
}

int
chat_parse(const char *p, size_t n, int force_text, struct chat *c,
    struct lr_err *e)
{
	size_t i = 0;
	jv v;
	int j;

	c->doc = jv_null();
	c->messages = jv_array();
	c->raw = NULL;
	c->rawlen = 0;
	/* A UTF-8 byte order mark is not content. */
	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
	    p[i] == '\r'))
		i++;
	if (i == n)
		return lr_seterr(e, LR_INPUT, "bad input: empty input");
	if (n > (size_t)0x7fffffff)
		return lr_seterr(e, LR_INPUT, "bad input: larger than 2 GiB");
	if (force_text || (p[i] != '{' && p[i] != '[')) {
		c->shape = CHAT_TEXT;
		v = jv_object_set(jv_object(), jv_string("role"),
		    jv_string("user"));
		v = jv_object_set(v, jv_string("content"),
		    jv_string_sized(p, (int)n));
		c->messages = jv_array_append(c->messages, v);
		return 0;
	}
	if (prescan(p, n, e) != 0)
		return LR_INPUT;
	v = jv_parse_sized(p, (int)n);
	if (!jv_is_valid(v))
		return parse_error(p, n, v, e);
	/* Input that is not UTF-8 is written anew, as libjq read it
	 * (U+FFFD for each bad sequence): its bytes would make the
	 * output, and what GPU0 is sent, invalid JSON. */
	if (utf8_valid(p, n)) {
		c->raw = xmalloc(n);
		memcpy(c->raw, p, n);
		c->rawlen = n;
	}
	if (jv_get_kind(v) == JV_KIND_ARRAY) {
		c->shape = CHAT_ARRAY;
		jv_free(c->messages);
		c->doc = v;
		c->messages = jv_copy(v);
		return check_messages(c, e);
	}
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		jv_free(v);
		return lr_seterr(e, LR_INPUT, "bad input: expected a chat "
		    "request object or an array of messages");
	}
	c->doc = v;
	jv_free(c->messages);
	c->messages = jv_object_get(jv_copy(v), jv_string("messages"));
	if (jv_get_kind(c->messages) == JV_KIND_INVALID) {
		c->messages = jv_array();
		return lr_seterr(e, LR_INPUT, "bad input: not a chat: "
		    "no \"messages\"");
	}
	if (jv_get_kind(c->messages) != JV_KIND_ARRAY) {
		jv_kind k = jv_get_kind(c->messages);

		jv_free(c->messages);
		c->messages = jv_array();
		return lr_seterr(e, LR_INPUT, "bad input: \"messages\": "
		    "expected an array, got %s", kind_name(k));
	}
	if (check_key(v, "model", JV_KIND_STRING, "a string", e) ||
	    check_key(v, "stream", JV_KIND_TRUE, "a boolean", e) ||
	    check_key(v, "options", JV_KIND_OBJECT, "an object", e))
		return LR_INPUT;
	c->shape = CHAT_OLLAMA;
	for (j = 0; openai_keys[j] != NULL; j++)
		if (jv_object_has(jv_copy(v), jv_string(openai_keys[j]))) {
			c->shape = CHAT_OPENAI;
			break;
		}
	return check_messages(c, e);
}

void
chat_free(struct chat *c)
{
	jv_free(c->doc);
	jv_free(c->messages);
	c->doc = jv_null();
	c->messages = jv_null();
	free(c->raw);
	c->raw = NULL;
	c->rawlen = 0;
}

const char *
chat_shape_name(enum chat_shape s)
{
	switch (s) {
	case CHAT_OLLAMA: return "ollama";
	case CHAT_OPENAI: return "openai";
	case CHAT_ARRAY: return "array";
	case CHAT_TEXT: return "text";
	}
	return "?";
}

int
chat_count(const struct chat *c)
{
	return jv_array_length(jv_copy(c->messages));
}

void
chat_msg_text(jv msg, struct buf *out)
{
	jv v = jv_object_get(jv_copy(msg), jv_string("content"));
	int i, n, first = 1;

	if (jv_get_kind(v) == JV_KIND_STRING) {
		buf_add(out, jv_string_value(v),
		    (size_t)jv_string_length_bytes(jv_copy(v)));
	} else if (jv_get_kind(v) == JV_KIND_ARRAY) {
		n = jv_array_length(jv_copy(v));
		for (i = 0; i < n; i++) {
			jv part = jv_array_get(jv_copy(v), i);
			jv t = jv_invalid();

			if (jv_get_kind(part) == JV_KIND_STRING)
				t = jv_copy(part);
			else if (jv_get_kind(part) == JV_KIND_OBJECT) {
				jv ty = jv_object_get(jv_copy(part),
				    jv_string("type"));
				if (jv_get_kind(ty) == JV_KIND_STRING &&
				    strcmp(jv_string_value(ty), "text") == 0)
					t = jv_object_get(jv_copy(part),
					    jv_string("text"));
				jv_free(ty);
			}
			if (jv_get_kind(t) == JV_KIND_STRING) {
				if (!first)
					buf_addc(out, '\n');
				buf_add(out, jv_string_value(t),
				    (size_t)jv_string_length_bytes(jv_copy(t)));
				first = 0;
			}
			jv_free(t);
			jv_free(part);
		}
	}
	jv_free(v);
}

void
chat_text(const struct chat *c, int i, struct buf *out)
{
	jv m = jv_array_get(jv_copy(c->messages), i);

	chat_msg_text(m, out);
	jv_free(m);
}

const char *
chat_role(const struct chat *c, int i)
{
	jv m = jv_array_get(jv_copy(c->messages), i);
	jv r = jv_object_get(m, jv_string("role"));
	const char *s = jv_string_value(r);

	/* The string lives as long as c->messages holds it. */
	jv_free(r);
	return s;
}

double
chat_number(jv obj, const char *key)
{
	jv v;
	double d;

	if (jv_get_kind(obj) != JV_KIND_OBJECT)
		return -1;
	v = jv_object_get(jv_copy(obj), jv_string(key));
	d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : -1;
	jv_free(v);
	return d;
}
