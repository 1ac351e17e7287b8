/*
 * mapreduce.h - strategy C: the middle condensed chunk by chunk
 * (SPEC section 3).
 *
 * Owns: cutting the middle into chunks of at most chunk_tokens on
 * message boundaries counted from the start (a single oversized message
 * on paragraph, then line boundaries, keeping code blocks whole where it
 * can), so that the same history always gives the same chunks; keeping
 * the last chunk verbatim while it is open; summarizing the closed
 * chunks, up to jobs at once, through the cache; each closed chunk a span
 * of the block with its own extract, written again byte for byte on
 * later turns; and the compactions that merge old spans, level by level,
 * when the block outgrows its budget.
 */
#ifndef LLM_MAPREDUCE_H
#define LLM_MAPREDUCE_H

#include <stdio.h>

#include "cache.h"
#include "condense.h"

#define MR_CHUNK_TOKENS	3000
#define MR_CHUNK_TARGET	300
#define MR_TARGET	4000	/* tokens of the whole block */
#define MR_PRESERVE	150	/* verbatim tokens per span */
#define MR_JOBS		2
#define MR_MAX_CHUNKS	256	/* helper requests one chat may cost */
#define MR_SWITCH	3	/* closed chunks go into the block this
				   many at a time */

/* What a run would ask the helper for (mr_opts.plan). */
struct mr_plan {
	int calls;		/* summaries not in the cache */
	size_t tokens_in;	/* the texts they summarize */
	size_t tokens_out;	/* the summaries, at their targets */
};

struct mr_opts {
	struct condense_opts c;	/* c.target: the whole block;
				   c.preserve: per span */
	size_t chunk_tokens;	/* at most, per chunk */
	size_t chunk_target;	/* tokens of a chunk's summary */
	size_t max_chunks;	/* helper requests in one run, at most:
				   summaries of the newest chunks first,
				   then merges; the rest extractive */
	int max_chunks_given;	/* --max-chunks was given */
	int jobs;		/* helper requests in flight; at most the
				   helper's parallel setting */
	int jobs_given;		/* --jobs was given (a cap is logged) */
	int dry_run;		/* list the chunks, ask nothing */
	int close_last;		/* summarize the last chunk too */
	int progress;		/* "map 3/12" on stderr */
	int map_only;		/* fill the cache with the closed chunks'
				   summaries and stop (llm-serve's
				   background condensing); out is left
				   empty */
	struct mr_plan *plan;	/* set: ask the helper nothing, count in
				   *plan what it would be asked, and put
				   the model-free summary where one is
				   missing (the cost policy's trial) */
};

void mr_opts_init(struct mr_opts *o);

/*
 * Strategy C on chat c (input bytes raw): the condensed chat to out (or
 * raw unchanged), or with dry_run the chunk table.  Returns 0 or a
 * status with e set.
 */
int mapreduce(const struct chat *c, const char *raw, size_t rawlen,
    const struct role *helper, const struct mr_opts *o, struct cache *cache,
    struct buf *out, struct condense_result *res, struct lr_err *e);

#endif
