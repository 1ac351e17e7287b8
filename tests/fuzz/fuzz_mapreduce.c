/*
 * fuzz_mapreduce.c - the cutter and the chunker of map-reduce
 * (src/mapreduce.c: make_chunks, pack_cut, cut, first_cut), and what
 * follows them without a backend: the extractive summaries of the
 * chunks, the spans and their merges, the condensed chat written out,
 * and the dry-run chunk table.
 *
 * Input: two bytes of settings, then the chat (JSON or, with bit 0 of
 * the second byte, plain text, as --text reads it).  The first byte
 * picks chunk_tokens (from 100, the least --chunk-tokens takes, to
 * 1120: small, so that long lines and big messages are cut) and the
 * targets, the second --keep-last, --summary-only,
 * --summarize-system, close_last and a helper context window that
 * lowers chunk_tokens.  mapreduce() runs twice on the same chat: with
 * --dry-run and with --extractive, both with no cache, so no helper is
 * asked.
 *
 * Checks besides the sanitizers: both runs succeed (nothing in them can
 * fail without a helper); the table has a head and one line per chunk;
 * a condensed JSON chat parses again as a chat of the same shape, and a
 * text chat gives text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "config.h"
#include "log.h"
#include "mapreduce.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, \
	"fuzz_mapreduce: check failed: %s (%s:%d)\n", #cond, __FILE__, \
	__LINE__); abort(); } } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct role helper = { .name = "GPU1", .model = "helper:1b",
	    .api = API_OLLAMA };
	struct mr_opts o;
	struct cache cache;
	struct condense_result res;
	struct chat c, c2;
	struct buf out = BUF_INIT;
	struct lr_err e;
	const char *p;
	uint8_t a, b;
	size_t n, i, lines;
	int r;

	lr_setquiet(1);
	if (size < 2)
		return 0;
	a = data[0];
	b = data[1];
	p = (const char *)data + 2;
	n = size - 2;
	memset(&e, 0, sizeof(e));
	if (chat_parse(p, n, b & 1, &c, &e) != 0) {
		CHECK(e.status == LR_INPUT && e.msg[0] != '\0');
		chat_free(&c);
		return 0;
	}
	memset(&cache, 0, sizeof(cache));
	mr_opts_init(&o);
	o.chunk_tokens = 100 + (size_t)a * 4;
	o.chunk_target = 1 + (size_t)(a & 0x3f);
	o.c.target = 40 + (size_t)a * 2;
	o.c.preserve = (size_t)(a & 0x3f);
	o.c.keep_last = (b >> 1) & 3;
	o.c.summary_only = (b >> 3) & 1;
	o.c.summarize_system = (b >> 4) & 1;
	o.close_last = (b >> 5) & 1;
	helper.num_ctx = (b & 0x40) ? 300 + (long)a * 8 : 0;
	o.c.method = (b & 0x80) ? EST_CHARS4 : EST_QWEN;

	/* The chunk table. */
	o.dry_run = 1;
	memset(&e, 0, sizeof(e));
	r = mapreduce(&c, p, n, &helper, &o, &cache, &out, &res, &e);
	CHECK(r == 0);
	CHECK(out.len > 0 && out.p[out.len - 1] == '\n');
	CHECK(strncmp(out.p, "chunk\t", 6) == 0);
	for (i = 0, lines = 0; i < out.len; i++)
		lines += out.p[i] == '\n';
	CHECK(lines >= 1);
	buf_free(&out);

	/* The condensed chat, model-free. */
	o.dry_run = 0;
	o.c.extractive = 1;
	memset(&e, 0, sizeof(e));
	r = mapreduce(&c, p, n, &helper, &o, &cache, &out, &res, &e);
	CHECK(r == 0);
	CHECK(res.how != NULL);
	if (c.shape != CHAT_TEXT && !o.c.summary_only) {
		memset(&e, 0, sizeof(e));
		r = chat_parse(out.p != NULL ? out.p : "", out.len, 0, &c2, &e);
		if (r != 0 && strstr(e.msg, "nesting deeper") == NULL) {
			fprintf(stderr, "fuzz_mapreduce: the condensed chat "
			    "does not parse: %s\n", e.msg);
			abort();
		}
		if (r == 0)
			CHECK(c2.shape == c.shape);
		chat_free(&c2);
	}
	buf_free(&out);
	chat_free(&c);
	return 0;
}
