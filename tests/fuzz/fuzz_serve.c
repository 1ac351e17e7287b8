/*
 * fuzz_serve.c - what llm-serve reads of a request before any backend
 * is asked: serve_match() on the head (path, method, Authorization,
 * Content-Length) and serve_chat_parse() on the body of a chat request,
 * as both APIs take it.
 *
 * Input: four lines (method, path, Authorization, Content-Length; a
 * line "-" stands for a header that is absent), then the body.  The
 * server's token is "s3cret", its body limit 4096 bytes.
 *
 * Checks besides the sanitizers: serve_match() answers 0, 404, 405,
 * 401 or 413, with the endpoint matched for all but 404, 413 only for a
 * length over the limit and 0 only with the right token for the closed
 * endpoints; serve_chat_parse() gives 0 with a chat, or LR_INPUT with a
 * one-line message; a model it gives is a copy of the request's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "serve.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, \
	"fuzz_serve: check failed: %s (%s:%d)\n", #cond, __FILE__, \
	__LINE__); abort(); } } while (0)

#define TOKEN	"s3cret"
#define MAXBODY	4096

/* The next line of p[*off, n) as a NUL-terminated copy (NULL for "-"),
 * or "" past the end. */
static char *
line(const char *p, size_t n, size_t *off, int *absent)
{
	const char *nl = *off < n ? memchr(p + *off, '\n', n - *off) : NULL;
	size_t len = nl != NULL ? (size_t)(nl - (p + *off)) :
	    *off < n ? n - *off : 0;
	char *s = xstrndup(p + *off, len);

	*off += len + (nl != NULL);
	*absent = strcmp(s, "-") == 0;
	return s;
}

static void
head(const char *p, size_t n, size_t *off)
{
	const struct serve_route *rt;
	char *method, *url, *auth, *cl;
	int no_auth, no_cl, dummy, st;
	size_t len;

	method = line(p, n, off, &dummy);
	url = line(p, n, off, &dummy);
	auth = line(p, n, off, &no_auth);
	cl = line(p, n, off, &no_cl);
	st = serve_match(url, method, no_auth ? NULL : auth, TOKEN,
	    no_cl ? NULL : cl, MAXBODY, &rt, &len);
	CHECK(st == 0 || st == 404 || st == 405 || st == 401 || st == 413);
	CHECK((st == 404) == (rt == NULL));
	if (rt != NULL) {
		CHECK(strcmp(rt->path, url) == 0);
		CHECK(rt->endpoint != NULL && rt->methods != NULL);
	}
	if (st == 413)
		CHECK(len > MAXBODY);
	if (st == 0 && !rt->open)
		CHECK(!no_auth && strcmp(auth + 7, TOKEN) == 0);
	/* Without a token every endpoint is open. */
	st = serve_match(url, method, NULL, NULL, NULL, MAXBODY, &rt, &len);
	CHECK(st == 0 || st == 404 || st == 405);
	free(method);
	free(url);
	free(auth);
	free(cl);
}

static void
body(const char *p, size_t n, int openai)
{
	struct serve_chat_req q;
	struct chat c;
	struct lr_err e;
	int r;

	memset(&e, 0, sizeof(e));
	r = serve_chat_parse(p, n, openai, &c, &q, &e);
	if (r != 0) {
		CHECK(r == LR_INPUT && e.status == LR_INPUT);
		CHECK(e.msg[0] != '\0' && strchr(e.msg, '\n') == NULL);
		CHECK(q.model == NULL);
		return;
	}
	CHECK(c.shape != CHAT_TEXT);
	CHECK(q.stream == 0 || q.stream == 1);
	CHECK(chat_count(&c) >= 0);
	free(q.model);
	chat_free(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = data != NULL ? (const char *)data : "";
	size_t off = 0;

	head(p, size, &off);
	body(p + off, size - off, 0);
	body(p + off, size - off, 1);
	return 0;
}
