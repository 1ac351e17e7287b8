/*
 * policy.h - the cost policy's knowledge and its prediction (SPEC
 * section 4).
 *
 * Owns: each server's speeds (prefill and decode tokens per second, and
 * its load time) per model, learned from every answer and remembered in
 * the cache, with the configured speeds until the first measurement; the
 * prompt-cache model (a hash and a size per message of the last prompt
 * sent to a server and model, so that the tokens it will really prefill
 * can be told in advance: the common prefix is free); and the predicted
 * time to the first answer token of a candidate, and the choice among
 * candidates.
 */
#ifndef LLM_POLICY_H
#define LLM_POLICY_H

#include <stddef.h>

#include "cache.h"
#include "chat.h"
#include "config.h"
#include "estimate.h"

#define SPEED_ANSWERS	10	/* a speed is a mean of this many */
#define SPEED_SMALL	64	/* fewer tokens teach no speed */
#define POLICY_TIE	0.05	/* predictions this close are a tie ... */
#define POLICY_TIE_MS	50	/* ... or this many ms apart */

/* A server's speeds for a model. */
struct speed {
	double prefill, decode;	/* tokens per second */
	double load_ms;		/* mean load_duration; 0: not measured */
	int nprefill, ndecode;	/* answers each is learned from */
	double overhead_ms;	/* to the first byte beyond prefill and
				   load (the request, the template, the
				   network); 0: not measured */
};

/*
 * Role r's speeds for model, as measured (from the cache, which may be
 * NULL), else as configured.
 */
void speed_get(const struct role *r, const char *model, struct cache *cache,
    struct speed *s);

/*
 * Learn the speeds from every transfer that ends well, into cache, from
 * now on in this process (backend_observer).
 */
void speed_watch(struct cache *cache);

/* The last prompt a server and model were sent: a hash and the
 * estimated tokens per message. */
struct prompt_memo {
	char (*hash)[17];
	size_t *tokens;
	int n;
};

/* The memo of role r's server and model (empty when none). */
void prompt_memo_get(const struct role *r, const char *model,
    struct cache *cache, struct prompt_memo *m);

/* Remember chat c as the last prompt of r's server and model. */
void prompt_memo_put(const struct role *r, const char *model,
    struct cache *cache, const struct chat *c, enum est_method method);

void prompt_memo_free(struct prompt_memo *m);

/*
 * Chat c against the memo: *kept gets the tokens of the messages it
 * shares from the start with the last prompt (free to the server's
 * prompt cache); returns the estimated tokens past them.
 */
size_t prompt_memo_new(const struct prompt_memo *m, const struct chat *c,
    enum est_method method, size_t *kept);

/* One way to answer a request, and what it costs. */
struct candidate {
	const char *name;	/* "direct", "summarize", "mapreduce" */
	int fits;		/* in GPU0's window with the answer's room */
	size_t tokens;		/* GPU0's prompt (GPU0's tokens) */
	size_t prefill;		/* of them, past GPU0's prompt cache */
	size_t kept;		/* of them, in GPU0's prompt cache */
	int helper_calls;	/* GPU1 requests before GPU0 may start */
	size_t helper_in;	/* their prompt tokens */
	size_t helper_out;	/* their answers' tokens */
	int skipped;		/* not worked out: it could not win */
	double ms;		/* out: predicted time to the first token */
};

/*
 * The time to the first answer token of k: the helper's requests, at
 * most jobs at once (prefill one after the other, decoding side by
 * side, each round its overhead), then GPU0's overhead and its prefill
 * of what its prompt cache lacks.
 */
double policy_predict(const struct candidate *k, const struct speed *g0,
    const struct speed *g1, int jobs);

/*
 * Predict each of the n candidates and return the index of the fastest
 * that fits (-1: none fits).  Predictions within POLICY_TIE (or
 * POLICY_TIE_MS) of each other are a tie, which goes to the one that
 * keeps the most of GPU0's prompt cache.
 */
int policy_pick(struct candidate *v, int n, const struct speed *g0,
    const struct speed *g1, int jobs);

#endif
