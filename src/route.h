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
#include "measure.h"

#define ROUTE_ANSWER_RESERVE	1024	/* tokens kept for the answer */
#define ROUTE_TRIES		4	/* condensing harder, at most */
#define ROUTE_FULL_SLACK	64	/* a prompt this close to the window
					   (or 1/32 of it) filled it */
#define ROUTE_MARGIN		10	/* percent added to the estimate for
					   a server not measured yet */
#define ROUTE_RATIO_ANSWERS	10	/* the ratio is a mean of this many */
#define ROUTE_RATIO_SMALL	200	/* prompts smaller teach nothing */
#define ROUTE_RATIO_MIN		0.8	/* counts outside [MIN, MAX] times */
#define ROUTE_RATIO_MAX		3.0	/* the estimate teach nothing */

/* What routing decided and measured, for llm-serve. */
struct route_info {
	enum strategy strategy;
	size_t tokens;		/* the chat's estimate */
	size_t tokens_sent;	/* after condensing: what GPU0 is sent */
	long num_ctx;		/* the window sent upstream; 0: unknown */
	const char *num_ctx_from;
	const char *model;	/* GPU0's model */
	double condense_ms;	/* time spent condensing */
	int helper;		/* condensing may ask the helper (not:
				   direct, model-free, or all cached) */
	int chunks, cache_hits;	/* map-reduce's closed chunks, cached */
};

enum on_overflow { OVERFLOW_REFUSE, OVERFLOW_DIRECT };

struct route_opts {
	struct condense_opts b;	/* strategy B */
	struct mr_opts mr;	/* strategy C */
	struct gen_opts gen;	/* the answer */
	int dry_run;		/* the decision and its numbers only */
	enum on_overflow on_overflow;	/* a chat that cannot fit */
	int bands_server;	/* --bands server: the thresholds judge the
				   tokens GPU0 counts, not the estimate */
	enum est_method method;
	/*
	 * llm-serve: the num_ctx this server already sends for the model
	 * (0: none yet).  With serve set, the upstream window is the
	 * configured one, else this, else the first client's
	 * options.num_ctx, else the model's; a client's smaller num_ctx
	 * only narrows what the chat is fitted into.
	 */
	int serve;
	long fixed_num_ctx;
	/*
	 * llm-serve with background condensing and the cost policy: C may
	 * also answer at once with the model-free summary standing in for
	 * the chunk summaries not cached yet (the "interim" candidate),
	 * which the background writes for the next turn.
	 */
	int interim;
	/*
	 * Called once the chat is known to fit (before any condensing);
	 * a non-zero return ends routing with that status.  Then
	 * on_answer before GPU0 is asked.
	 */
	int (*on_start)(void *ctx, const struct route_info *info);
	void (*on_answer)(void *ctx, const struct route_info *info);
	void *hook_ctx;
	struct route_info info;	/* out */
};

void route_opts_init(struct route_opts *o);

/* An /api/show that timed out is not asked again for this long (s). */
#define ROUTE_SHOW_RETRY	300

/*
 * A model's context window as role r's server says (/api/show,
 * remembered in cache, which may be NULL; asked only with ask): the
 * window, or 0 with *from "unknown" and, when asking failed, e set.
 * A lookup that timed out is remembered too, for ROUTE_SHOW_RETRY
 * seconds: meanwhile the window is unknown, with a warning, and e is
 * not set.
 */
long route_model_window(const struct role *r, const char *model,
    struct cache *cache, int ask, const char **from, struct lr_err *e);

/*
 * The helper's window: r->num_ctx lowered to what its server says the
 * model holds, so that its input is never cut silently; a server not
 * there marks the role down, so that condensing falls back at once.
 */
void route_helper_window(struct role *r, const char *model,
    struct cache *cache);

/*
 * Route chat c (input bytes raw) and write GPU0's answer to out, or with
 * dry_run the decision as JSON.  Returns 0 or a status with e set.
 */
int route(const struct chat *c, const char *raw, size_t rawlen,
    const struct config *cfg, struct route_opts *o, struct cache *cache,
    FILE *out, struct lr_err *e);

#endif
