/*
 * condense.h - condensing a chat's older context (SPEC section 3).
 *
 * Owns: splitting a chat into leading system messages (kept), the middle
 * (condensed) and the tail (kept: the last user message, or tool result,
 * and all after it, and at least the last keep_last messages, never
 * starting at a tool result); the helper's summary
 * request and the cleaning of its answer (thinking out, trimmed to the
 * target); the extractive fallback; the summary block and its fixed
 * place (appended to the leading system message, or a new one); and the
 * rule that the result is never larger than the input.
 */
#ifndef LLM_CONDENSE_H
#define LLM_CONDENSE_H

#include <jv.h>

#include "backend.h"
#include "chat.h"
#include "config.h"
#include "estimate.h"
#include "extract.h"

#define CONDENSE_KEEP_LAST	4
#define CONDENSE_TARGET		500	/* summary tokens */
#define CONDENSE_PRESERVE	500	/* verbatim tokens */
#define PROMPT_VERSION		1	/* change when the prompt changes */

enum on_failure { FAIL_EXTRACTIVE, FAIL_DIRECT, FAIL_FAIL };

struct condense_opts {
	int keep_last;
	size_t target;		/* tokens of the summary */
	size_t preserve;	/* tokens of verbatim code, paths, errors */
	int summarize_system;	/* condense system messages too */
	int extractive;		/* no helper: the model-free compressor */
	enum on_failure on_failure;
	const char *model;	/* the helper's model; NULL: the role's */
	enum est_method method;
};

void condense_opts_init(struct condense_opts *o);

/* Parse "extractive", "direct" or "fail"; -1 when none. */
int condense_on_failure_parse(const char *s);

/*
 * The split: messages [0, sys_end) are the leading system messages,
 * [sys_end, tail) the middle (system messages in it stay, unless
 * summarize_system), [tail, n) the tail.  The middle may be empty.
 */
struct split {
	int sys_end, tail, n;
	int summarize_system;	/* system messages in the middle go too */
};

void condense_split(const struct chat *c, const struct condense_opts *o,
    struct split *s);

/* The text of messages [from, to) as the helper reads it. */
void condense_transcript(const struct chat *c, int from, int to,
    int summarize_system, struct buf *out);

/* The helper's request body for a transcript. */
void condense_request(const struct role *r, const char *model,
    const char *transcript, size_t len, size_t target, struct buf *body);

/*
 * The summary in a helper's answer: thinking removed, trimmed to target
 * tokens.  Returns 0, or -1 when nothing is left.
 */
int condense_clean(const char *answer, size_t len, size_t target,
    enum est_method m, struct buf *out);

/* The items and the extractive summary of messages [from, to). */
void condense_extract(const struct chat *c, int from, int to,
    const struct condense_opts *o, struct items *it);
void condense_extractive(const struct chat *c, int from, int to,
    const struct condense_opts *o, struct buf *out);

/*
 * The block that stands for messages [from, to): its header, the
 * summary, the chosen verbatim items, and its end line.
 */
void condense_block(int from, int to, const char *summary, size_t slen,
    const struct items *it, struct buf *out);

/*
 * The chat with the middle replaced by block: appended to the last
 * leading system message, or a new leading system message.
 */
jv condense_place(const struct chat *c, const struct split *s,
    const char *block, size_t blen);

struct condense_result {
	const char *how;	/* "helper", "extractive", "unchanged" */
	size_t tokens_in, tokens_out;
	int chunks, cache_hits;	/* map-reduce: closed chunks, and how
				   many of their summaries were cached */
};

/*
 * Strategy B on chat c whose input bytes are raw: write the condensed
 * chat (same shape; plain text for text input) to out, or raw unchanged
 * when condensing does not make it smaller.  Helper failures follow
 * o->on_failure.  Returns 0 or a status with e set.
 */
int condense_summarize(const struct chat *c, const char *raw, size_t rawlen,
    const struct role *helper, const struct condense_opts *o,
    struct buf *out, struct condense_result *res, struct lr_err *e);

/*
 * Write chat c's document with messages replaced (consumed) to out, in
 * c's shape; text chats are written as their single message's text.
 */
void condense_write(const struct chat *c, jv messages, struct buf *out);

/*
 * The end of both strategies: the block for the split's middle, placed,
 * written to out when the result is smaller (returns 1), else raw
 * (returns 0); logged either way.  res->tokens_in and res->how are set
 * by the caller.
 */
int condense_output(const struct chat *c, const char *raw, size_t rawlen,
    const struct split *s, const char *summary, size_t slen,
    const struct items *it, size_t preserved, const struct condense_opts *o,
    struct buf *out, struct condense_result *res);

/* Write raw unchanged and log why. */
void condense_unchanged(const char *raw, size_t rawlen, const char *why,
    struct buf *out, struct condense_result *res);

/* Is message i condensed (not a system message that stays)? */
int condense_takes(const struct chat *c, int i, int summarize_system);

/* A message's text as the helper reads it: content, then tool calls. */
void condense_message_text(const struct chat *c, int i, struct buf *out);

#endif
