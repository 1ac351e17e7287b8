/*
 * fuzz_chat.c - the chat on stdin: chat_parse() and what reads a parsed
 * chat (chat_text, chat_role, measure_report, request_model,
 * request_build for both APIs, request_dump).
 *
 * The input is exactly what a program reads on stdin, so a crashing
 * input reproduces with `llm-estimate < FILE` as well.
 *
 * Checks besides the sanitizers: a failure is LR_INPUT with a one-line
 * message; a success has an array of messages each with a string role;
 * a built request is an object with a string model, stream true and a
 * messages array, and it parses again as a chat (a request we send is
 * one we would accept); the bytes request_write() splices from the input
 * parse into the same value as the built request.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "config.h"
#include "estimate.h"
#include "measure.h"
#include "request.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, \
	"fuzz_chat: check failed: %s (%s:%d)\n", #cond, __FILE__, \
	__LINE__); abort(); } } while (0)

static void
check_err(int r, const struct lr_err *e)
{
	CHECK(r == LR_INPUT);
	CHECK(e->status == LR_INPUT);
	CHECK(e->msg[0] != '\0');
	CHECK(strchr(e->msg, '\n') == NULL);
}

static void
check_request(const struct chat *c, jv req, const char *model,
    enum api_kind api)
{
	jv v;
	struct buf out = BUF_INIT;
	struct chat c2;
	struct lr_err e;
	int r;

	CHECK(jv_get_kind(req) == JV_KIND_OBJECT);
	v = jv_object_get(jv_copy(req), jv_string("model"));
	CHECK(jv_get_kind(v) == JV_KIND_STRING);
	CHECK(strcmp(jv_string_value(v), model) == 0);
	jv_free(v);
	v = jv_object_get(jv_copy(req), jv_string("stream"));
	CHECK(jv_get_kind(v) == JV_KIND_TRUE);
	jv_free(v);
	v = jv_object_get(jv_copy(req), jv_string("messages"));
	CHECK(jv_get_kind(v) == JV_KIND_ARRAY);
	jv_free(v);
	if (api == API_OPENAI) {
		v = jv_object_get(jv_copy(req), jv_string("stream_options"));
		CHECK(jv_get_kind(v) == JV_KIND_OBJECT);
		jv_free(v);
	}
	request_write(c, jv_copy(req), api, &out);
	v = jv_parse_sized(out.p != NULL ? out.p : "", (int)out.len);
	if (!jv_equal(v, jv_copy(req))) {
		fprintf(stderr, "fuzz_chat: the spliced request differs from "
		    "the built one\n");
		abort();
	}
	buf_reset(&out);
	request_dump(req, &out);	/* consumes req */
	memset(&e, 0, sizeof(e));
	r = chat_parse(out.p != NULL ? out.p : "", out.len, 0, &c2, &e);
	if (r != 0 && strstr(e.msg, "nesting deeper") == NULL) {
		/* Deeper nesting can come from tool call arguments that
		 * were a JSON string; anything else is a real mismatch. */
		fprintf(stderr, "fuzz_chat: built request does not parse "
		    "back: %s\n", e.msg);
		abort();
	}
	chat_free(&c2);
	buf_free(&out);
}

static void
use_chat(const struct chat *c, size_t size)
{
	static const struct role role = { .name = "GPU0",
	    .model = "qwen2.5-coder:7b" };
	struct buf text = BUF_INIT;
	const char *model, *rname;
	jv rep, s;
	int i, n, m;

	CHECK(jv_get_kind(c->messages) == JV_KIND_ARRAY);
	n = chat_count(c);
	CHECK(n >= 0);
	(void)chat_shape_name(c->shape);
	for (i = 0; i < n; i++) {
		rname = chat_role(c, i);
		CHECK(rname != NULL);
		buf_reset(&text);
		chat_text(c, i, &text);
		(void)est_message_tokens(rname, text.p != NULL ? text.p : "",
		    text.len, EST_QWEN);
	}
	buf_free(&text);
	for (m = EST_QWEN; m <= EST_CHARS4; m++) {
		rep = measure_report(c, (enum est_method)m, 2000, 6000, size,
		    m == EST_QWEN);
		CHECK(jv_get_kind(rep) == JV_KIND_OBJECT);
		s = jv_dump_string(rep, 0);
		jv_free(s);
	}
	model = request_model(c, &role, NULL);
	CHECK(model != NULL);
	CHECK(strcmp(request_model(c, &role, "forced"), "forced") == 0);
	check_request(c, request_build(c, model, API_OLLAMA), model,
	    API_OLLAMA);
	check_request(c, request_build(c, model, API_OPENAI), model,
	    API_OPENAI);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct chat c;
	struct lr_err e;
	int r;

	if (p == NULL)
		p = "";
	memset(&e, 0, sizeof(e));
	r = chat_parse(p, size, 0, &c, &e);
	if (r == 0)
		use_chat(&c, size);
	else
		check_err(r, &e);
	chat_free(&c);

	/* --text: anything that is not blank is one user message. */
	memset(&e, 0, sizeof(e));
	r = chat_parse(p, size, 1, &c, &e);
	if (r == 0) {
		CHECK(c.shape == CHAT_TEXT);
		CHECK(chat_count(&c) == 1);
		use_chat(&c, size);
	} else
		check_err(r, &e);
	chat_free(&c);
	return 0;
}
