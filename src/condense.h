/*
 * condense.h - condensing a chat's older context (SPEC section 3).
 *
 * Owns: splitting a chat into leading system messages (kept), the task
 * (the first user message, kept unless it alone takes more than half the
 * budget), the middle (condensed) and the tail (kept: the last user
 * message, or tool result, and all after it, and at least the last
 * keep_last messages, never starting at a tool result); the helper's
 * summary request and the cleaning of its answer (thinking out, trimmed
 * to the target); the extractive fallback; a span's summary with its own
 * extract; the summary block, which grows by appending spans, and its
 * fixed place (a user message of its own after the system messages and
 * the task); and the rule that the result is never larger than the input.
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
#define CONDENSE_TASK_SHARE	2	/* the task is condensed when it
					   alone takes more than 1/2 of the
					   budget */
/* Change when the prompt, a transcript's form or the layout changes: the
 * cache keys hold it, so older entries are not read. */
#define PROMPT_VERSION		2

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
	size_t budget;		/* tokens the condensed chat must fit; 0:
				   the chat's own (for the task's share) */
	int summary_only;	/* all of the chat, the summary as text */
};

void condense_opts_init(struct condense_opts *o);

/* Parse "extractive", "direct" or "fail"; -1 when none. */
int condense_on_failure_parse(const char *s);

/*
 * The split: messages [0, sys_end) are the leading system messages,
 * [sys_end, tail) the middle (system messages in it stay, unless
 * summarize_system; the task stays when task >= 0), [tail, n) the tail.
 * The middle may be empty.
 */
struct split {
	int sys_end, tail, n;
	int task;		/* the pinned first user message, or -1 */
	int task_msg;		/* or the first user message, too large to
				   pin (-1: none) */
	size_t task_tokens, task_budget;	/* its size, and the budget */
	int summarize_system;	/* system messages in the middle go too */
};

void condense_split(const struct chat *c, const struct condense_opts *o,
    struct split *s);

/* Log the task condensed with the rest, when it was (-v). */
void condense_log_task(const struct split *s);

/* The text of messages [from, to) as the helper reads it. */
void condense_transcript(const struct chat *c, const struct split *s,
    int from, int to, struct buf *out);

/* The helper's request body for a transcript. */
void condense_request(const struct role *r, const char *model,
    const char *transcript, size_t len, size_t target, struct buf *body);

/*
 * The summary in a helper's answer: thinking removed, trimmed to target
 * tokens.  Returns 0, or -1 when nothing is left.
 */
int condense_clean(const char *answer, size_t len, size_t target,
    enum est_method m, struct buf *out);

/*
 * The items of messages [from, to), and the extractive summary, which
 * leaves out what the chosen items already hold.
 */
void condense_extract(const struct chat *c, const struct split *s,
    int from, int to, enum est_method m, struct items *it);
void condense_extractive(const struct chat *c, const struct split *s,
    int from, int to, const struct items *it,
    const struct condense_opts *o, struct buf *out);

/*
 * One span of the summary: "--- Summary ---", the summary, and the
 * chosen items.  Nothing in it depends on what comes after the span, so
 * on later turns it is written again byte for byte.
 */
void condense_span(const char *summary, size_t slen, const struct items *it,
    struct buf *out);

/* The block's first line; the spans follow it, oldest first. */
#define CONDENSE_HEAD "--- Earlier conversation, condensed by llm-route: " \
			"summaries, oldest first ---\n"

/*
 * The chat with the middle replaced by block: the leading system
 * messages, the task, the block as a user message, the system messages
 * of the middle, the tail.
 */
jv condense_place(const struct chat *c, const struct split *s,
    const char *block, size_t blen);

struct condense_result {
	const char *how;	/* "helper", "extractive", "unchanged" */
	size_t tokens_in, tokens_out;
	int chunks, cache_hits;	/* map-reduce: closed chunks, and how
				   many of their summaries were cached */
	int spans, compactions;	/* map-reduce: spans in the block, and
				   merges made to keep it in its budget */
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
 * The end of both strategies: the spans (each from condense_span),
 * placed, written to out when the result is smaller (returns 1), else
 * raw (returns 0); logged either way.  A text, or a summary_only chat,
 * gets the spans as plain text.  res->tokens_in and res->how are set by
 * the caller.
 */
int condense_output(const struct chat *c, const char *raw, size_t rawlen,
    const struct split *s, const char *spans, size_t slen,
    const struct condense_opts *o, struct buf *out,
    struct condense_result *res);

/* Log each item not chosen and not inside a chosen one (-v). */
void condense_log_dropped(const struct items *it);

/* Write raw unchanged and log why. */
void condense_unchanged(const char *raw, size_t rawlen, const char *why,
    struct buf *out, struct condense_result *res);

/* Is message i of the middle condensed (not the task nor a system
 * message that stays)? */
int condense_takes(const struct chat *c, const struct split *s, int i);

/* A message's text as the helper reads it: content, then tool calls. */
void condense_message_text(const struct chat *c, int i, struct buf *out);

#endif
