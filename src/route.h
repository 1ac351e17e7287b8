/*
 * route.h - the strategy by thresholds (SPEC sections 1 and 4).
 *
 * Owns: estimate, then nothing (A), summarize (B) or map-reduce (C) by
 * A_MAX/B_MAX, then generate, all in one process and byte for byte what
 * the pipeline of the stages would do; the answering model's context
 * window (configured, else the client's num_ctx, else /api/show,
 * remembered in the cache), one fixed num_ctx per model, condensing
 * harder when the chat would not fit, and the truncation warning.
 */
#ifndef LLM_ROUTE_H
#define LLM_ROUTE_H

#include <stdio.h>

#include "cache.h"
#include "chat.h"
#include "config.h"
#include "generate.h"
#include "mapreduce.h"

#define ROUTE_ANSWER_RESERVE	1024	/* tokens kept for the answer */
#define ROUTE_TRIES		4	/* condensing harder, at most */

struct route_opts {
	struct condense_opts b;	/* strategy B */
	struct mr_opts mr;	/* strategy C */
	struct gen_opts gen;	/* the answer */
	int dry_run;		/* the decision and its numbers only */
	enum est_method method;
};

void route_opts_init(struct route_opts *o);

/*
 * Route chat c (input bytes raw) and write GPU0's answer to out, or with
 * dry_run the decision as JSON.  Returns 0 or a status with e set.
 */
int route(const struct chat *c, const char *raw, size_t rawlen,
    const struct config *cfg, struct route_opts *o, struct cache *cache,
    FILE *out, struct lr_err *e);

#endif
