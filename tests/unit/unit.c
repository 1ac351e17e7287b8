/*
 * unit.c - C unit tests of the library in src/, as TAP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "config.h"
#include "estimate.h"
#include "extract.h"
#include "measure.h"
#include "policy.h"
#include "request.h"
#include "splice.h"
#include "stream.h"
#include "util.h"

static int ntest, nfail;

static void
ok(int cond, const char *name)
{
	ntest++;
	if (!cond)
		nfail++;
	printf("%sok %d - %s\n", cond ? "" : "not ", ntest, name);
}

/* Collects what a stream delivers. */
struct sink {
	struct buf content, thinking;
	int lines;
};

static int
sink_delta(void *ctx, const char *c, size_t cn, const char *t, size_t tn)
{
	struct sink *s = ctx;

	buf_add(&s->content, c, cn);
	buf_add(&s->thinking, t, tn);
	return 0;
}

static int
sink_line(void *ctx, const char *line, size_t len)
{
	(void)line;
	(void)len;
	((struct sink *)ctx)->lines++;
	return 0;
}

/* Feed text in pieces of step bytes; returns the final status. */
static int
feed(enum api_kind api, const char *text, size_t step, struct sink *s,
    struct lr_err *e)
{
	struct stream st;
	struct stream_cb cb = { sink_delta, sink_line, NULL, NULL };
	size_t i, n = strlen(text);
	int r = 0;

	memset(s, 0, sizeof(*s));
	cb.ctx = s;
	stream_init(&st, api, &cb, e);
	for (i = 0; i < n && r == 0; i += step)
		r = stream_feed(&st, text + i, i + step > n ? n - i : step);
	if (r == 0)
		r = stream_finish(&st);
	stream_free(&st);
	return r;
}

static void
test_stream(void)
{
	static const char ollama[] =
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},"
	    "\"done\":false}\n"
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"lo \\u00e9\","
	    "\"thinking\":\"hm\"},\"done\":false}\r\n"
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
	    "\"done\":true,\"eval_count\":2}";
	static const char sse[] =
	    ": comment\n\n"
	    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
	    "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"},"
	    "\"finish_reason\":\"stop\"}]}\n\n"
	    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":2}}\n\n"
	    "data: [DONE]\n\n";
	struct sink s;
	struct lr_err e;
	size_t step;
	int good = 1;

	for (step = 1; step <= sizeof(ollama); step++) {
		if (feed(API_OLLAMA, ollama, step, &s, &e) != 0 ||
		    strcmp(buf_str(&s.content), "Hello \xc3\xa9") != 0 ||
		    strcmp(buf_str(&s.thinking), "hm") != 0 || s.lines != 3)
			good = 0;
		buf_free(&s.content);
		buf_free(&s.thinking);
	}
	ok(good, "ollama: lines split at every byte, CRLF, no final newline");
	good = 1;
	for (step = 1; step <= sizeof(sse); step += 7) {
		if (feed(API_OPENAI, sse, step, &s, &e) != 0 ||
		    strcmp(buf_str(&s.content), "Hello") != 0)
			good = 0;
		buf_free(&s.content);
		buf_free(&s.thinking);
	}
	ok(good, "openai: SSE split anywhere");

	ok(feed(API_OLLAMA, "{\"message\":{\"content\":\"a\"},\"done\":false}"
	    "\n{\"error\":\"boom\"}\n", 5, &s, &e) == LR_BACKEND &&
	    strstr(e.msg, "boom") != NULL &&
	    strcmp(buf_str(&s.content), "a") == 0,
	    "ollama: error line mid-stream is LR_BACKEND, text kept");
	buf_free(&s.content);
	ok(feed(API_OLLAMA, "{\"done\":false}\nnot json\n", 64, &s, &e) ==
	    LR_MALFORMED, "ollama: a line that is not JSON is LR_MALFORMED");
	ok(feed(API_OLLAMA, "{\"done\":false}\n", 64, &s, &e) ==
	    LR_MALFORMED && strstr(e.msg, "done") != NULL,
	    "ollama: the end before done:true is LR_MALFORMED");
	ok(feed(API_OLLAMA, "[1]\n", 64, &s, &e) == LR_MALFORMED,
	    "ollama: a line that is not an object");
	ok(feed(API_OLLAMA, "{\"message\":{\"content\":7},\"done\":true}\n",
	    64, &s, &e) == 0 && s.content.len == 0,
	    "ollama: wrong types are ignored, never asserted");
	ok(feed(API_OPENAI, "data: {\"choices\":[{\"delta\":{}}]}\n\n", 64, &s,
	    &e) == LR_MALFORMED, "openai: the end before [DONE]");
	ok(feed(API_OPENAI, "data: {\"error\":{\"message\":\"bad\"}}\n\n", 64,
	    &s, &e) == LR_BACKEND && strstr(e.msg, "bad") != NULL,
	    "openai: an error event");
	ok(feed(API_OPENAI, "garbage\n", 64, &s, &e) == LR_MALFORMED,
	    "openai: not an SSE line");
	ok(feed(API_OPENAI, "data: {\"choices\":[1]}\n\ndata: [DONE]\n", 64, &s,
	    &e) == 0, "openai: a choice that is not an object is ignored");
	ok(feed(API_OPENAI, "id:1\nevent\ndata\ndata:\nretry: 5\n"
	    "data: [DONE]\n", 64, &s, &e) == 0,
	    "openai: id, event, retry and empty data fields");
}

static void
test_error_message(void)
{
	char m[128];

	stream_error_message("{\"error\":\"model \\\"x\\\" not found\"}", 33,
	    m, sizeof(m));
	ok(strcmp(m, "model \"x\" not found") == 0, "ollama error body");
	stream_error_message("{\"error\":{\"message\":\"nope\"}}", 28, m,
	    sizeof(m));
	ok(strcmp(m, "nope") == 0, "openai error body");
	stream_error_message("Bad Gateway\n", 12, m, sizeof(m));
	ok(strcmp(m, "Bad Gateway") == 0, "plain error body");
}

static void
test_numbers(void)
{
	size_t z;
	long l;
	const char *why;

	ok(lr_parse_size("64M", &z, &why) == 0 && z == 64UL << 20, "size 64M");
	ok(lr_parse_size("10KiB", &z, &why) == 0 && z == 10240, "size 10KiB");
	ok(lr_parse_size("12", &z, &why) == 0 && z == 12, "size 12");
	ok(lr_parse_size("-1", &z, &why) != 0, "size -1 refused");
	ok(lr_parse_size("1X", &z, &why) != 0, "size 1X refused");
	ok(lr_parse_size("99999999999999999999G", &z, &why) != 0,
	    "size overflow refused");
	ok(lr_parse_ms("1.5", &l, &why) == 0 && l == 1500, "duration 1.5");
	ok(lr_parse_ms("250ms", &l, &why) == 0 && l == 250, "duration 250ms");
	ok(lr_parse_ms("2m", &l, &why) == 0 && l == 120000, "duration 2m");
	ok(lr_parse_ms("0.0001", &l, &why) == 0 && l == 1 &&
	    lr_parse_ms("0.4ms", &l, &why) == 0 && l == 1,
	    "a duration under 1 ms is 1 ms, not 0 (no limit)");
	ok(lr_parse_ms("0", &l, &why) == 0 && l == 0, "duration 0");
	ok(lr_parse_ms("x", &l, &why) != 0 && lr_parse_ms("1h", &l, &why) != 0,
	    "bad durations refused");
	ok(lr_parse_long("2000", 0, 10, &l, &why) != 0, "long out of range");
	ok(lr_parse_long("12a", 0, 100, &l, &why) != 0 &&
	    lr_parse_long("", 0, 100, &l, &why) != 0, "long not a number");
}

static void
test_redact(void)
{
	char out[64];
	struct lr_err e;

	lr_redact(out, sizeof(out), "http://alice:pw@h:1/x http://h:2");
	ok(strcmp(out, "http://alice:***@h:1/x http://h:2") == 0,
	    "redact: a URL's password");
	lr_redact(out, sizeof(out), "'https://tok@h','http://u:@h'");
	ok(strcmp(out, "'https://***@h','http://u:***@h'") == 0,
	    "redact: a user name alone, an empty password");
	lr_redact(out, sizeof(out), "http://h/a@b?c=d@e mail@x ://");
	ok(strcmp(out, "http://h/a@b?c=d@e mail@x ://") == 0,
	    "redact: an '@' after the host is left alone");
	lr_redact(out, 8, "http://a:b@h");
	ok(strcmp(out, "http://") == 0, "redact: cut to fit");
	lr_secret("sk-1234");
	lr_secret("abc");
	lr_seterr(&e, LR_BACKEND, "bad key sk-1234, abc");
	ok(strcmp(e.msg, "bad key ***, abc") == 0,
	    "redact: a secret in an error; one under 4 bytes is not one");
}

static int
parse(const char *s, struct chat *c, struct lr_err *e)
{
	return chat_parse(s, strlen(s), 0, c, e);
}

static void
test_chat(void)
{
	struct chat c;
	struct lr_err e;
	struct buf b = BUF_INIT;

	ok(parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}],\"options\":{}}", &c, &e) == 0 &&
	    c.shape == CHAT_OLLAMA && chat_count(&c) == 1, "ollama shape");
	chat_free(&c);
	ok(parse("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":"
	    "{\"url\":\"data:image/png;base64,QQ==\"}},{\"type\":\"text\","
	    "\"text\":\"b\"}]}]}", &c, &e) == 0 && c.shape == CHAT_OPENAI,
	    "openai shape by content parts");
	chat_text(&c, 0, &b);
	ok(strcmp(buf_str(&b), "a\nb") == 0, "text parts joined");
	{
		jv r = request_build(&c, "m", API_OLLAMA);
		jv m = jv_array_get(jv_object_get(r, jv_string("messages")), 0);
		jv im = jv_object_get(jv_copy(m), jv_string("images"));
		jv ct = jv_object_get(m, jv_string("content"));

		ok(jv_get_kind(ct) == JV_KIND_STRING &&
		    strcmp(jv_string_value(ct), "a\nb") == 0 &&
		    jv_get_kind(im) == JV_KIND_ARRAY &&
		    jv_array_length(jv_copy(im)) == 1,
		    "openai parts become ollama content and images");
		jv_free(im);
		jv_free(ct);
	}
	chat_free(&c);
	buf_reset(&b);
	ok(parse("{\"model\":\"m\",\"temperature\":0.2,\"messages\":[]}", &c,
	    &e) == 0 && c.shape == CHAT_OPENAI, "openai shape by key");
	{
		jv r = request_build(&c, "m", API_OLLAMA);
		jv t = jv_object_get(jv_object_get(jv_copy(r),
		    jv_string("options")), jv_string("temperature"));

		ok(jv_get_kind(t) == JV_KIND_NUMBER &&
		    jv_number_value(t) == 0.2 && !jv_object_has(r,
		    jv_string("temperature")), "temperature moves to options");
		jv_free(t);
	}
	chat_free(&c);
	ok(parse("[{\"role\":\"user\",\"content\":\"x\"}]", &c, &e) == 0 &&
	    c.shape == CHAT_ARRAY, "bare array");
	chat_free(&c);
	ok(parse("  just text", &c, &e) == 0 && c.shape == CHAT_TEXT,
	    "plain text");
	chat_free(&c);
	ok(parse("\xef\xbb\xbf[]", &c, &e) == 0 && c.shape == CHAT_ARRAY,
	    "byte order mark skipped");
	chat_free(&c);
	ok(parse(" \n\t ", &c, &e) == LR_INPUT, "blank input refused");
	chat_free(&c);
	ok(parse("{\"messages\":{}}", &c, &e) == LR_INPUT &&
	    strstr(e.msg, "\"messages\": expected an array") != NULL,
	    "messages not an array");
	chat_free(&c);
	ok(parse("{\"messages\":[{\"content\":\"x\"}]}", &c, &e) == LR_INPUT &&
	    strstr(e.msg, "messages[0]: no \"role\"") != NULL, "role missing");
	chat_free(&c);
	ok(parse("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"text\",\"text\":1}]}]}", &c, &e) == LR_INPUT &&
	    strstr(e.msg, "content[0].text") != NULL, "text part not a string");
	chat_free(&c);
	ok(parse("{\"model\":1,\"messages\":[]}", &c, &e) == LR_INPUT,
	    "model not a string");
	chat_free(&c);
	ok(parse("{\"stream\":\"yes\",\"messages\":[]}", &c, &e) == LR_INPUT,
	    "stream not a boolean");
	chat_free(&c);
	ok(parse("\"str\"", &c, &e) == 0 && c.shape == CHAT_TEXT,
	    "a JSON string is plain text (first byte neither { nor [)");
	chat_free(&c);
	ok(parse("{\"a\":\"\\u00\"}", &c, &e) == LR_INPUT &&
	    strchr(e.msg, '\n') == NULL, "bad escape: one line");
	chat_free(&c);
	buf_free(&b);
}

static void
test_estimate(void)
{
	static const char code[] = "int main(void) { return 0; }\n";

	ok(est_text_tokens("", 0, EST_QWEN) == 0, "empty text: 0 tokens");
	ok(est_text_tokens(code, strlen(code), EST_CHARS4) ==
	    (strlen(code) + 3) / 4, "chars4 is characters / 4");
	ok(est_message_tokens("user", "", 0, EST_QWEN) > 0,
	    "a message has template overhead");
	ok(strategy_pick(1999, 2000, 6000) == STRAT_DIRECT &&
	    strategy_pick(2000, 2000, 6000) == STRAT_SUMMARIZE &&
	    strategy_pick(6000, 2000, 6000) == STRAT_MAPREDUCE,
	    "thresholds: below A_MAX, below B_MAX, else");
	ok(est_method_parse("qwen") == EST_QWEN &&
	    est_method_parse("chars4") == EST_CHARS4 &&
	    est_method_parse("bogus") == -1, "method names");
}

static void
test_trim(void)
{
	static const char s[] = "One sentence here. Another one there. And a "
	    "third\nline with words in it";
	size_t n = sizeof(s) - 1, k, t;
	char *p = xmalloc(n);	/* exactly n bytes: no NUL after them */
	int good = 1;

	memcpy(p, s, n);
	for (t = 0; t < 40; t++) {
		k = extract_trim(p, n, t, EST_QWEN);
		if (k > n || (k < n && est_text_tokens(p, k, EST_QWEN) > t))
			good = 0;
	}
	ok(good, "extract_trim: within the target, never past the end");
	ok(extract_trim(p, n, 1000, EST_QWEN) == n, "extract_trim: all fits");
	k = extract_trim(p, n, 6, EST_QWEN);
	ok(k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\n'),
	    "extract_trim: ends at a sentence, line or word end");
	free(p);
}

static void
test_memfind(void)
{
	static const char s[] = "ab\0\"tool_calls\"x";

	ok(lr_memfind(s, sizeof(s) - 1, "\"tool_calls\"", 12) == s + 3,
	    "lr_memfind: past a NUL");
	ok(lr_memfind(s, 5, "\"tool_calls\"", 12) == NULL,
	    "lr_memfind: not past the length");
	ok(lr_memfind(s, sizeof(s) - 1, "x", 1) == s + sizeof(s) - 2 &&
	    lr_memfind("aab", 3, "ab", 2) != NULL &&
	    lr_memfind("", 0, "a", 1) == NULL, "lr_memfind: edges");
}

static void
test_serve_settings(void)
{
	static const char *const bad[][2] = {
		{ "serve_listen", "nowhere" },
		{ "serve_listen", "127.0.0.1:65536" },
		{ "serve_listen", "127.0.0.1:" },
		{ "serve_listen", "[::1]8512" },
		{ "serve_listen", ":8512" },
		{ "serve_prefetch", "maybe" },
		{ "serve_max_body", "0" },
		{ "serve_keepalive", "soon" },
	};
	struct config c;
	struct lr_err e;
	size_t i;
	int good = 1;

	if (config_load(&c, &e) != 0) {
		ok(0, "config_load");
		return;
	}
	ok(c.serve.nlisten == 1 && strcmp(c.serve.listen[0],
	    "127.0.0.1:8512") == 0 && c.serve.max_body == 64UL << 20 &&
	    c.serve.max_streams == 64 && c.serve.keepalive_ms == 10000 &&
	    c.serve.drain_ms == 10000 && c.serve.prefetch == 1,
	    "serve settings: defaults");
	ok(config_set(&c, "serve_listen", "127.0.0.1:0,[::1]:8512,localhost:1",
	    "t", &e) == 0 && c.serve.nlisten == 3 &&
	    strcmp(c.serve.listen[1], "[::1]:8512") == 0,
	    "serve_listen: several, IPv6 in brackets");
	ok(config_set(&c, "serve_prefetch", "off", "t", &e) == 0 &&
	    c.serve.prefetch == 0 && config_set(&c, "serve_max_body", "1K",
	    "t", &e) == 0 && c.serve.max_body == 1024,
	    "serve_prefetch, serve_max_body");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_set(&c, bad[i][0], bad[i][1], "t", &e) != LR_USAGE)
			good = 0;
	ok(good && c.serve.nlisten == 3, "serve settings: bad values refused, "
	    "the last good ones kept");
	ok(config_set(&c, "serve_max_streams", "0", "t", &e) == 0 &&
	    config_check(&c, &e) == LR_USAGE &&
	    strstr(e.msg, "serve_max_streams") != NULL,
	    "serve_max_streams: at least 1");
	config_free(&c);
}

/*
 * The predictor on the figures of bench/README.md's modelled GPUs: GPU0
 * an RTX 2060 SUPER (prefill 2000 tokens/s), GPU1 a GTX 1050 (prefill
 * 600, decode 30), and token counts of django-12125's turns.
 */
static void
test_policy(void)
{
	struct speed g0 = { 2000, 50, 0, 10, 10, 0 }, g1 = { 600, 30, 0, 10, 10, 0 };
	struct candidate v[3];
	struct config c;
	struct lr_err e;

	memset(v, 0, sizeof(v));
	v[0].helper_calls = 2;
	v[0].helper_in = 6000;
	v[0].helper_out = 600;
	v[0].prefill = 4000;
	ok(policy_predict(&v[0], &g0, &g1, 2) == 10000 + 10000 + 2000 &&
	    policy_predict(&v[0], &g0, &g1, 1) == 10000 + 20000 + 2000 &&
	    policy_predict(&v[0], &g0, &g1, 8) == 10000 + 10000 + 2000,
	    "predict: helper prefill in turn, decoding side by side, then "
	    "GPU0's prefill");
	g0.overhead_ms = 30;
	g1.overhead_ms = 20;
	v[0].helper_calls = 3;
	ok(policy_predict(&v[0], &g0, &g1, 2) == 10000 + 10000 + 2 * 20 +
	    30 + 2000, "predict: each server's overhead, a helper's per round");
	g0.overhead_ms = g1.overhead_ms = 0;

	/* Turn 40: direct fits and GPU0's cache holds all but 1500. */
	memset(v, 0, sizeof(v));
	v[0] = (struct candidate){ "direct", 1, 14000, 1500, 12500, 0, 0, 0,
	    0, 0 };
	v[1] = (struct candidate){ "summarize", 1, 2700, 2000, 700, 1, 8192,
	    500, 0, 0 };
	v[2] = (struct candidate){ "mapreduce", 1, 9000, 8000, 1000, 0, 0, 0,
	    0, 0 };
	ok(policy_pick(v, 3, &g0, &g1, 1) == 0 && v[0].ms == 750,
	    "pick: direct, when it fits and GPU0's cache holds it");
	/* The same turn after GPU0 answered another chat: its cache lost. */
	v[0].prefill = 14000;
	v[0].kept = 0;
	ok(policy_pick(v, 3, &g0, &g1, 1) == 2,
	    "pick: condensed from the cache, when GPU0 lost its cache");
	/* Turn 130: direct would be truncated; C needs three summaries. */
	v[0] = (struct candidate){ "direct", 0, 40000, 1500, 38500, 0, 0, 0,
	    0, 0 };
	v[2] = (struct candidate){ "mapreduce", 1, 9000, 3000, 6000, 3, 9000,
	    900, 0, 0 };
	ok(policy_pick(v, 3, &g0, &g1, 1) == 1 && policy_pick(v, 3, &g0, &g1,
	    3) == 2, "pick: the fastest that fits, by GPU1's parallel slots");
	v[1].fits = v[2].fits = 0;
	ok(policy_pick(v, 3, &g0, &g1, 1) == -1, "pick: none fits");
	/* A tie goes to the one that keeps GPU0's prefix. */
	v[0] = (struct candidate){ "direct", 1, 20000, 2000, 18000, 0, 0, 0,
	    0, 0 };
	v[2] = (struct candidate){ "mapreduce", 1, 9000, 1960, 7040, 0, 0, 0,
	    0, 0 };
	ok(policy_pick(v, 3, &g0, &g1, 1) == 0, "pick: a tie keeps the "
	    "longer prefix");
	v[2].prefill = 1700;
	ok(policy_pick(v, 3, &g0, &g1, 1) == 2, "pick: past the tie, the "
	    "faster");

	if (config_load(&c, &e) != 0) {
		ok(0, "config_load");
		return;
	}
	ok(c.policy == POLICY_THRESHOLDS && c.serve.prepare_pct == 50 &&
	    c.role[GPU0].prefill_tps == 2000 && c.role[GPU1].decode_tps == 30,
	    "policy settings: defaults");
	ok(config_set(&c, "policy", "cost", "t", &e) == 0 &&
	    c.policy == POLICY_COST && config_set(&c, "gpu1_prefill_tps",
	    "812.5", "t", &e) == 0 && c.role[GPU1].prefill_tps == 812.5 &&
	    config_set(&c, "serve_prepare", "0", "t", &e) == 0 &&
	    c.serve.prepare_pct == 0, "policy settings: set");
	ok(config_set(&c, "policy", "fastest", "t", &e) == LR_USAGE &&
	    config_set(&c, "gpu0_decode_tps", "0", "t", &e) == LR_USAGE &&
	    config_set(&c, "gpu0_decode_tps", "fast", "t", &e) == LR_USAGE &&
	    config_set(&c, "serve_prepare", "101", "t", &e) == LR_USAGE &&
	    c.policy == POLICY_COST, "policy settings: bad values refused");
	config_free(&c);
}

/* splice_write(raw, parsed raw, what jq program f makes of it) == want */
static void
splice_case(const char *raw, const char *prog, const char *want,
    const char *name)
{
	jv old = jv_parse(raw), new;
	struct buf out = BUF_INIT;
	int good;

	/* The changes, made with jv calls as the tools make them. */
	new = jv_copy(old);
	if (strcmp(prog, "del a") == 0)
		new = jv_object_delete(new, jv_string("a"));
	else if (strcmp(prog, "del b") == 0)
		new = jv_object_delete(new, jv_string("b"));
	else if (strcmp(prog, "set c") == 0)
		new = jv_object_set(new, jv_string("c"), jv_number(3));
	else if (strcmp(prog, "set a") == 0)
		new = jv_object_set(new, jv_string("a"), jv_string("x"));
	else if (strcmp(prog, "drop 1") == 0) {
		jv a = jv_array();

		a = jv_array_append(a, jv_array_get(jv_copy(old), 0));
		a = jv_array_append(a, jv_string("new"));
		a = jv_array_append(a, jv_array_get(jv_copy(old), 2));
		jv_free(new);
		new = a;
	} else if (strcmp(prog, "shrink") == 0) {
		jv a = jv_array();

		a = jv_array_append(a, jv_array_get(jv_copy(old), 0));
		a = jv_array_append(a, jv_string("new"));
		a = jv_array_append(a, jv_array_get(jv_copy(old), 3));
		jv_free(new);
		new = a;
	} else if (strcmp(prog, "empty") == 0) {
		jv_free(new);
		new = jv_array();
	}
	splice_write(raw, strlen(raw), old, new, &out);
	good = strcmp(buf_str(&out), want) == 0;
	if (!good)
		fprintf(stderr, "# %s: got %s, want %s\n", name, buf_str(&out),
		    want);
	ok(good, name);
	jv_free(old);
	jv_free(new);
	buf_free(&out);
}

static void
test_splice(void)
{
	splice_case(" {\"a\": 1.50 , \"b\":\"\\/\"} \n", "none",
	    "{\"a\": 1.50 , \"b\":\"\\/\"}", "splice: unchanged: the bytes");
	splice_case("{ \"a\":1, \"b\" : 2 }", "del a", "{ \"b\" : 2 }",
	    "splice: the first member gone, with its separator");
	splice_case("{ \"a\":1, \"b\" : 2 }", "del b", "{ \"a\":1 }",
	    "splice: the last member gone");
	splice_case("{ \"a\":1e400}", "set c", "{ \"a\":1e400,\"c\":3}",
	    "splice: a new member appended");
	splice_case("{ }", "set c", "{\"c\":3 }", "splice: into an empty object");
	splice_case("{\"\\u0061\":123456789012345678901234567890,\"b\":0}",
	    "del b", "{\"\\u0061\":123456789012345678901234567890}",
	    "splice: an escaped key, a long number");
	splice_case("{\"a\":1,\"b\":2,\"a\":[3]}", "set c",
	    "{\"a\":[3],\"b\":2,\"c\":3}", "splice: a key twice: written anew");
	splice_case("{\"a\": \"caf\\u00e9\"}", "set a", "{\"a\": \"x\"}",
	    "splice: a changed string");
	splice_case("[ 1.0,\n {\"x\" : \"\\\"\"}, 3.00 ]", "drop 1",
	    "[ 1.0,\n \"new\", 3.00 ]",
	    "splice: an element replaced in an array, separators kept");
	splice_case("[ {\"a\":\"\\/\"}, {\"k\":2}, 3 ,\t{\"z\" :1} ]", "shrink",
	    "[ {\"a\":\"\\/\"},\"new\",{\"z\" :1} ]",
	    "splice: a shorter array keeps the elements it keeps");
	splice_case("[ 1 ]", "empty", "[]", "splice: an emptied array");
	splice_case("{\"a\":[1, 2]}", "set c", "{\"a\":[1, 2],\"c\":3}",
	    "splice: nested values kept");
}

int
main(void)
{
	test_stream();
	test_error_message();
	test_numbers();
	test_redact();
	test_chat();
	test_estimate();
	test_trim();
	test_memfind();
	test_serve_settings();
	test_policy();
	test_splice();
	printf("1..%d\n", ntest);
	return nfail != 0;
}
