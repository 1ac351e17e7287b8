/*
 * stream_target.h - the body of the two stream fuzz targets
 * (fuzz_stream_ndjson.c, fuzz_stream_sse.c), which define STREAM_API
 * and STREAM_NAME and include this file.
 *
 * The input is the reply body exactly as a backend would send it.  It
 * is fed to stream_feed() three ways: in one piece, one byte at a time,
 * and in pieces whose sizes come from a generator seeded with a hash
 * of the input (so every input has its own split points, and the same
 * input always the same ones), then stream_finish().  Parsing must not
 * depend on where the network cut the bytes: the three runs must give
 * the same status and message, the same deltas, lines and final object.
 * A hash bit also makes the delta callback fail after a few deltas, to
 * cover the abort path.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, \
	"%s: check failed: %s (%s:%d)\n", STREAM_NAME, #cond, __FILE__, \
	__LINE__); abort(); } } while (0)

#define CB_FAIL 99	/* what the delta callback returns to stop */

struct sink {
	struct buf content, thinking, lines;
	int ndeltas, fail_after;	/* fail_after < 0: never */
};

struct result {
	int status;
	struct lr_err err;
	struct sink sink;
	struct buf kept;
	int done, nlines;
	jv final;
};

static int
sink_delta(void *ctx, const char *c, size_t cn, const char *t, size_t tn)
{
	struct sink *s = ctx;

	CHECK(cn > 0 || tn > 0);
	CHECK(cn == 0 || c != NULL);
	CHECK(tn == 0 || t != NULL);
	buf_add(&s->content, c, cn);
	buf_add(&s->thinking, t, tn);
	if (s->fail_after >= 0 && s->ndeltas++ >= s->fail_after)
		return CB_FAIL;
	return 0;
}

static int
sink_line(void *ctx, const char *line, size_t len)
{
	struct sink *s = ctx;

	CHECK(memchr(line, '\n', len) == NULL);
	buf_add(&s->lines, line, len);
	buf_addc(&s->lines, '\n');
	return 0;
}

/* FNV-1a, to seed the split points. */
static uint64_t
hash(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	while (n-- > 0)
		h = (h ^ *p++) * 1099511628211ULL;
	return h;
}

static uint64_t
next(uint64_t *x)	/* xorshift64 */
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* mode 0: one piece; 1: bytes; 2: pieces from the seed. */
static void
run(const char *p, size_t size, int mode, uint64_t seed, int fail_after,
    struct result *res)
{
	struct stream s;
	struct stream_cb cb = { sink_delta, sink_line, NULL, NULL };
	size_t off = 0, k;
	int r = 0;

	memset(res, 0, sizeof(*res));
	res->sink.fail_after = fail_after;
	cb.ctx = &res->sink;
	stream_init(&s, STREAM_API, &cb, &res->err);
	s.keep = 1;
	s.what = "fuzz http://127.0.0.1:1";
	while (off < size && r == 0) {
		if (mode == 0)
			k = size;
		else if (mode == 1)
			k = 1;
		else {
			uint64_t x = next(&seed);

			/* Mostly short pieces, sometimes long ones, and
			 * empty ones, as libcurl may hand over. */
			k = (x >> 8) % 4 == 0 ? (size_t)(x >> 16) % 4096 :
			    (size_t)(x >> 16) % 24;
		}
		if (k > size - off)
			k = size - off;
		r = stream_feed(&s, p + off, k);
		off += k;
	}
	if (r == 0)
		r = stream_finish(&s);
	res->status = r;
	res->done = s.done;
	res->nlines = s.nlines;
	res->final = jv_copy(s.final);
	buf_add(&res->kept, s.content.p, s.content.len);
	if (r == 0) {
		CHECK(s.done);
		CHECK(jv_get_kind(s.final) == JV_KIND_OBJECT);
	} else if (r != CB_FAIL) {
		CHECK(r == LR_BACKEND || r == LR_MALFORMED);
		CHECK(res->err.status == r);
		CHECK(res->err.msg[0] != '\0');
		CHECK(strchr(res->err.msg, '\n') == NULL);
	}
	stream_free(&s);
}

static int
same_buf(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 ||
	    memcmp(a->p, b->p, a->len) == 0);
}

static void
compare(const struct result *a, const struct result *b)
{
	CHECK(a->status == b->status);
	if (a->status != 0 && a->status != CB_FAIL)
		CHECK(strcmp(a->err.msg, b->err.msg) == 0);
	CHECK(a->done == b->done);
	CHECK(a->nlines == b->nlines);
	CHECK(same_buf(&a->sink.content, &b->sink.content));
	CHECK(same_buf(&a->sink.thinking, &b->sink.thinking));
	CHECK(same_buf(&a->sink.lines, &b->sink.lines));
	CHECK(same_buf(&a->kept, &b->kept));
	CHECK(jv_equal(jv_copy(a->final), jv_copy(b->final)));
}

static void
result_free(struct result *r)
{
	buf_free(&r->sink.content);
	buf_free(&r->sink.thinking);
	buf_free(&r->sink.lines);
	buf_free(&r->kept);
	jv_free(r->final);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = data != NULL ? (const char *)data : "";
	uint64_t h = hash(data, size);
	int fail_after = (h & 7) == 0 ? (int)((h >> 3) & 3) : -1;
	struct result whole, bytes, pieces;

	run(p, size, 0, 0, fail_after, &whole);
	run(p, size, 1, 0, fail_after, &bytes);
	run(p, size, 2, h | 1, fail_after, &pieces);
	compare(&whole, &bytes);
	compare(&whole, &pieces);
	/* What was kept is what the callback saw. */
	CHECK(same_buf(&whole.kept, &whole.sink.content));
	result_free(&whole);
	result_free(&bytes);
	result_free(&pieces);
	return 0;
}
