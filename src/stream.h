/*
 * stream.h - parsing a backend's streamed reply (SPEC section 5).
 *
 * Owns: splitting the bytes libcurl hands over (any size, lines split
 * anywhere) into lines within a cap, and reading each line as Ollama
 * NDJSON or OpenAI SSE.  Either way the caller sees the same events:
 * text deltas (content and thinking), the raw line, and the end with its
 * statistics in Ollama's shape.
 */
#ifndef LLM_STREAM_H
#define LLM_STREAM_H

#include <jv.h>

#include "config.h"
#include "util.h"

#define STREAM_MAX_LINE (16UL * 1024 * 1024)

struct stream_cb {
	/* A piece of the answer; either may be empty. */
	int (*delta)(void *ctx, const char *content, size_t clen,
	    const char *thinking, size_t tlen);
	/* Each Ollama line as received (without its newline), or NULL. */
	int (*line)(void *ctx, const char *line, size_t len);
	/* The final line (done:true, [DONE]) was seen, or NULL. */
	int (*done)(void *ctx);
	void *ctx;
};

struct stream {
	enum api_kind api;
	struct stream_cb cb;
	struct buf pending;	/* an incomplete line */
	int done;		/* the final line was seen */
	int nlines;
	jv final;		/* Ollama-shaped final object (done:true) */
	struct buf content;	/* the whole answer, when keep is set */
	int keep;
	struct lr_err *err;
	const char *what;	/* "GPU0 http://..." for messages */
};

void stream_init(struct stream *s, enum api_kind api,
    const struct stream_cb *cb, struct lr_err *err);

/*
 * Feed n bytes.  Returns 0, or a status (LR_BACKEND for an error line,
 * LR_MALFORMED for a bad line, or what a callback returned) with err set.
 */
int stream_feed(struct stream *s, const char *p, size_t n);

/* The reply ended: parse a last line without newline, check for done. */
int stream_finish(struct stream *s);

void stream_free(struct stream *s);

/*
 * The message of an error body ({"error":"..."} or
 * {"error":{"message":"..."}}), else an excerpt of the body.
 */
void stream_error_message(const char *body, size_t len, char *out,
    size_t outsz);

#endif
