/*
 * request.c - backend request bodies.
 */
#include <stdio.h>
#include <string.h>

#include "request.h"
#include "splice.h"

/* Sampling options: OpenAI top-level key, Ollama options key. */
static const char *const option_map[][2] = {
	{ "temperature", "temperature" },
	{ "top_p", "top_p" },
	{ "seed", "seed" },
	{ "stop", "stop" },
	{ "max_tokens", "num_predict" },
	{ "max_completion_tokens", "num_predict" },
	{ "frequency_penalty", "frequency_penalty" },
	{ "presence_penalty", "presence_penalty" },
};

#define NOPTIONS (sizeof(option_map) / sizeof(option_map[0]))

const char *
request_model(const struct chat *c, const struct role *r, const char *force)
{
	jv m;
	const char *s = r->model;

	if (force != NULL)
		return force;
	if (jv_get_kind(c->doc) != JV_KIND_OBJECT)
		return s;
	m = jv_object_get(jv_copy(c->doc), jv_string("model"));
	if (jv_get_kind(m) == JV_KIND_STRING &&
	    jv_string_length_bytes(jv_copy(m)) > 0)
		s = jv_string_value(m);	/* held by c->doc */
	jv_free(m);
	return s;
}

static jv
get(jv obj, const char *k)
{
	return jv_object_get(jv_copy(obj), jv_string(k));
}

/*
 * A message's tool calls with their arguments as the API wants them:
 * for OpenAI (to_openai) a JSON string, with "type":"function"; for
 * Ollama an object.  Calls of other shapes are left as they are.
 */
static jv
map_tool_calls(jv m, int to_openai)
{
	jv tc = get(m, "tool_calls");
	int i, n;

	if (jv_get_kind(tc) != JV_KIND_ARRAY) {
		jv_free(tc);
		return m;
	}
	n = jv_array_length(jv_copy(tc));
	for (i = 0; i < n; i++) {
		jv call = jv_array_get(jv_copy(tc), i), f, a, v = jv_invalid();

		if (jv_get_kind(call) != JV_KIND_OBJECT) {
			jv_free(call);
			continue;
		}
		f = get(call, "function");
		a = jv_get_kind(f) == JV_KIND_OBJECT ? get(f, "arguments") :
		    jv_invalid();
		if (to_openai && jv_get_kind(a) == JV_KIND_OBJECT)
			v = jv_dump_string(jv_copy(a), 0);
		else if (!to_openai && jv_get_kind(a) == JV_KIND_STRING) {
			v = jv_parse(jv_string_value(a));
			if (jv_get_kind(v) != JV_KIND_OBJECT) {
				jv_free(v);
				v = jv_invalid();
			}
		}
		if (jv_is_valid(v)) {
			f = jv_object_set(f, jv_string("arguments"), v);
			call = jv_object_set(call, jv_string("function"), f);
		} else
			jv_free(f);
		jv_free(a);
		if (to_openai && !jv_object_has(jv_copy(call),
		    jv_string("type")))
			call = jv_object_set(call, jv_string("type"),
			    jv_string("function"));
		tc = jv_array_set(tc, i, call);
	}
	return jv_object_set(m, jv_string("tool_calls"), tc);
}

/* An OpenAI message (content parts) as an Ollama message. */
static jv
message_to_ollama(jv m)
{
	jv content = get(m, "content"), images = jv_array();
	struct buf text = BUF_INIT;
	int i, n;

	if (jv_get_kind(content) == JV_KIND_ARRAY) {
		chat_msg_text(m, &text);
		n = jv_array_length(jv_copy(content));
		for (i = 0; i < n; i++) {
			jv part = jv_array_get(jv_copy(content), i), u;
			const char *s, *comma;

			if (jv_get_kind(part) != JV_KIND_OBJECT) {
				jv_free(part);
				continue;
			}
			u = get(part, "image_url");
			if (jv_get_kind(u) == JV_KIND_OBJECT)
				u = jv_object_get(u, jv_string("url"));
			if (jv_get_kind(u) == JV_KIND_STRING) {
				s = jv_string_value(u);
				comma = strchr(s, ',');
				if (strncmp(s, "data:", 5) == 0 && comma)
					images = jv_array_append(images,
					    jv_string(comma + 1));
			}
			jv_free(u);
			jv_free(part);
		}
		m = jv_object_set(m, jv_string("content"),
		    jv_string_sized(text.p != NULL ? text.p : "",
		    (int)text.len));
		buf_free(&text);
	} else if (jv_get_kind(content) == JV_KIND_NULL)
		m = jv_object_set(m, jv_string("content"), jv_string(""));
	jv_free(content);
	if (jv_array_length(jv_copy(images)) > 0)
		m = jv_object_set(m, jv_string("images"), images);
	else
		jv_free(images);
	/* OpenAI tool call arguments are a JSON string; Ollama's an object. */
	return map_tool_calls(m, 0);
}

/*
 * An Ollama message as an OpenAI one: tool call arguments become JSON
 * strings, images become image_url parts.
 */
static jv
message_to_openai(jv m)
{
	jv images, parts, content;
	int i, n;

	m = map_tool_calls(m, 1);
	images = get(m, "images");
	if (jv_get_kind(images) != JV_KIND_ARRAY ||
	    (n = jv_array_length(jv_copy(images))) == 0) {
		jv_free(images);
		return m;
	}
	content = get(m, "content");
	parts = jv_array();
	if (jv_get_kind(content) == JV_KIND_STRING)
		parts = jv_array_append(parts, jv_object_set(jv_object_set(
		    jv_object(), jv_string("type"), jv_string("text")),
		    jv_string("text"), content));
	else
		jv_free(content);
	for (i = 0; i < n; i++) {
		jv img = jv_array_get(jv_copy(images), i);

		if (jv_get_kind(img) == JV_KIND_STRING) {
			jv url = jv_string_fmt("data:image/png;base64,%s",
			    jv_string_value(img));
			parts = jv_array_append(parts, jv_object_set(
			    jv_object_set(jv_object(), jv_string("type"),
			    jv_string("image_url")), jv_string("image_url"),
			    jv_object_set(jv_object(), jv_string("url"),
			    url)));
		}
		jv_free(img);
	}
	jv_free(images);
	m = jv_object_delete(m, jv_string("images"));
	return jv_object_set(m, jv_string("content"), parts);
}

static jv
map_messages(jv msgs, jv (*f)(jv))
{
	int i, n = jv_array_length(jv_copy(msgs));

	for (i = 0; i < n; i++)
		msgs = jv_array_set(msgs, i, f(jv_array_get(jv_copy(msgs),
		    i)));
	return msgs;
}

/* An OpenAI request as an Ollama one. */
static jv
openai_to_ollama(jv doc)
{
	jv options = get(doc, "options"), rf;
	size_t i;

	if (jv_get_kind(options) != JV_KIND_OBJECT) {
		jv_free(options);
		options = jv_object();
	}
	for (i = 0; i < NOPTIONS; i++) {
		jv v = get(doc, option_map[i][0]);

		if (jv_get_kind(v) != JV_KIND_INVALID &&
		    jv_get_kind(v) != JV_KIND_NULL)
			options = jv_object_set(options,
			    jv_string(option_map[i][1]), v);
		else
			jv_free(v);
		doc = jv_object_delete(doc, jv_string(option_map[i][0]));
	}
	rf = get(doc, "response_format");
	if (jv_get_kind(rf) == JV_KIND_OBJECT) {
		jv t = get(rf, "type"), s = jv_invalid();

		if (jv_get_kind(t) == JV_KIND_STRING &&
		    strcmp(jv_string_value(t), "json_object") == 0)
			doc = jv_object_set(doc, jv_string("format"),
			    jv_string("json"));
		else if (jv_get_kind(t) == JV_KIND_STRING &&
		    strcmp(jv_string_value(t), "json_schema") == 0) {
			s = get(rf, "json_schema");
			if (jv_get_kind(s) == JV_KIND_OBJECT)
				s = jv_object_get(s, jv_string("schema"));
			if (jv_get_kind(s) == JV_KIND_OBJECT)
				doc = jv_object_set(doc, jv_string("format"),
				    jv_copy(s));
		}
		jv_free(s);
		jv_free(t);
	}
	jv_free(rf);
	doc = jv_object_delete(doc, jv_string("response_format"));
	doc = jv_object_delete(doc, jv_string("stream_options"));
	doc = jv_object_delete(doc, jv_string("n"));
	doc = jv_object_delete(doc, jv_string("tool_choice"));
	doc = jv_object_delete(doc, jv_string("parallel_tool_calls"));
	doc = jv_object_delete(doc, jv_string("user"));
	doc = jv_object_delete(doc, jv_string("logit_bias"));
	doc = jv_object_delete(doc, jv_string("logprobs"));
	doc = jv_object_delete(doc, jv_string("top_logprobs"));
	if (jv_object_length(jv_copy(options)) > 0)
		doc = jv_object_set(doc, jv_string("options"), options);
	else
		jv_free(options);
	return doc;
}

/* An Ollama request as an OpenAI one. */
static jv
ollama_to_openai(jv doc)
{
	jv options = get(doc, "options"), fmt;
	size_t i;

	if (jv_get_kind(options) == JV_KIND_OBJECT) {
		for (i = 0; i < NOPTIONS; i++) {
			jv v = get(options, option_map[i][1]);

			if (jv_get_kind(v) != JV_KIND_INVALID &&
			    strcmp(option_map[i][0], "max_completion_tokens"))
				doc = jv_object_set(doc,
				    jv_string(option_map[i][0]), v);
			else
				jv_free(v);
		}
	}
	jv_free(options);
	fmt = get(doc, "format");
	if (jv_get_kind(fmt) == JV_KIND_STRING)
		doc = jv_object_set(doc, jv_string("response_format"),
		    jv_object_set(jv_object(), jv_string("type"),
		    jv_string("json_object")));
	else if (jv_get_kind(fmt) == JV_KIND_OBJECT)
		doc = jv_object_set(doc, jv_string("response_format"),
		    jv_object_set(jv_object_set(jv_object(),
		    jv_string("type"), jv_string("json_schema")),
		    jv_string("json_schema"), jv_object_set(jv_object_set(
		    jv_object(), jv_string("name"), jv_string("format")),
		    jv_string("schema"), jv_copy(fmt))));
	jv_free(fmt);
	doc = jv_object_delete(doc, jv_string("options"));
	doc = jv_object_delete(doc, jv_string("format"));
	doc = jv_object_delete(doc, jv_string("keep_alive"));
	doc = jv_object_delete(doc, jv_string("think"));
	return doc;
}

jv
request_build(const struct chat *c, const char *model, enum api_kind api)
{
	jv doc;
	int from_openai = c->shape == CHAT_OPENAI;

	if (c->shape == CHAT_OLLAMA || c->shape == CHAT_OPENAI)
		doc = jv_copy(c->doc);
	else
		doc = jv_object_set(jv_object(), jv_string("messages"),
		    jv_copy(c->messages));
	doc = jv_object_set(doc, jv_string("model"), jv_string(model));
	if (api == API_OLLAMA) {
		if (from_openai)
			doc = openai_to_ollama(doc);
		doc = jv_object_set(doc, jv_string("messages"),
		    map_messages(get(doc, "messages"), message_to_ollama));
		doc = jv_object_set(doc, jv_string("stream"), jv_true());
	} else {
		if (c->shape == CHAT_OLLAMA)
			doc = ollama_to_openai(doc);
		doc = jv_object_set(doc, jv_string("messages"),
		    map_messages(get(doc, "messages"), message_to_openai));
		doc = jv_object_set(doc, jv_string("stream"), jv_true());
		doc = jv_object_set(doc, jv_string("stream_options"),
		    jv_object_set(jv_object(), jv_string("include_usage"),
		    jv_true()));
	}
	return doc;
}

void
request_dump(jv v, struct buf *out)
{
	jv s = jv_dump_string(v, 0);

	buf_add(out, jv_string_value(s),
	    (size_t)jv_string_length_bytes(jv_copy(s)));
	jv_free(s);
}

/* The sampling options moved by request_build(), to and from. */
static struct splice_move to_ollama[NOPTIONS + 1], to_openai[NOPTIONS + 1];
static char move_paths[NOPTIONS][32];

static void
moves_init(void)
{
	size_t i;

	if (to_ollama[0].to != NULL)
		return;
	for (i = 0; i < NOPTIONS; i++) {
		snprintf(move_paths[i], sizeof(move_paths[i]), "options.%s",
		    option_map[i][1]);
		to_ollama[i].to = to_openai[i].from = move_paths[i];
		to_ollama[i].from = to_openai[i].to = option_map[i][0];
	}
}

void
request_write(const struct chat *c, jv v, enum api_kind api,
    struct buf *out)
{
	const struct splice_move *m = NULL;

	moves_init();
	if (c->shape == CHAT_OPENAI && api == API_OLLAMA)
		m = to_ollama;
	else if (c->shape == CHAT_OLLAMA && api == API_OPENAI)
		m = to_openai;
	if (c->raw == NULL)
		request_dump(jv_copy(v), out);
	else if (c->shape == CHAT_ARRAY)
		splice_wrap(c->raw, c->rawlen, c->doc, v, "messages", out);
	else
		splice_write_moved(c->raw, c->rawlen, c->doc, v, m, out);
	jv_free(v);
}
