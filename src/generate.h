/*
 * generate.h - the answering stage (llm-generate, and the last step of
 * llm-route).
 *
 * Owns: sending a chat to the answering role and writing the answer as
 * it arrives: plain text (thinking left out unless asked for), or
 * Ollama NDJSON lines, streamed or all at the end.
 */
#ifndef LLM_GENERATE_H
#define LLM_GENERATE_H

#include <stdio.h>

#include "chat.h"
#include "config.h"
#include "util.h"

/* Status for "stdout was closed": the program ends as if by SIGPIPE. */
#define LR_CLOSED 141

struct gen_opts {
	int json;		/* Ollama NDJSON lines instead of text */
	int no_stream;		/* write everything at the end */
	int show_thinking;	/* print thinking, between <think> tags */
	const char *model;	/* --model: overrides the request's */
	long num_ctx;		/* options.num_ctx to send, if > 0; else the
				   role's, if > 0 */
	long prefill_hint;	/* tokens GPU0 is expected to prefill past
				   its prompt cache (its speed is learned
				   from them); 0: unknown */
	long prompt_eval_count;	/* out: from the final stats, or -1 */
	long http_status;	/* out: the server's HTTP status, or 0 */
	double ms_first;	/* out: to the server's first byte */
	int own_error_line;	/* --json cut by an error: the caller writes
				   the {"error"} line (llm-serve), not this */
};

/*
 * Answer chat c with role r, writing to out.  Returns 0 or a status with
 * e set (LR_CLOSED when out was closed).  -v logs the request and the
 * final statistics.
 */
int generate(const struct chat *c, const struct role *r,
    struct gen_opts *o, FILE *out, struct lr_err *e);

#endif
