/*
 * measure.h - the size of a chat and the strategy it calls for
 * (SPEC sections 1 and 4).
 *
 * Owns: counting a chat's tokens, characters and bytes per message and
 * per role, the routing decision by A_MAX/B_MAX, and llm-estimate's
 * JSON report.
 */
#ifndef LLM_MEASURE_H
#define LLM_MEASURE_H

#include <jv.h>

#include "chat.h"
#include "estimate.h"

enum strategy { STRAT_DIRECT, STRAT_SUMMARIZE, STRAT_MAPREDUCE };

struct msg_size {
	size_t tokens, chars, bytes;
};

/*
 * The size of one message: its content text, plus the JSON of its tool
 * calls, as the chat template renders them.
 */
void measure_message(jv msg, enum est_method m, struct msg_size *out);

/* The whole chat's estimated tokens. */
size_t measure_tokens(const struct chat *c, enum est_method m);

/* Direct below a_max, summarize below b_max, else map-reduce. */
enum strategy strategy_pick(size_t tokens, long a_max, long b_max);
const char *strategy_name(enum strategy s);

/* llm-estimate's report (see llm-estimate(1)). */
jv measure_report(const struct chat *c, enum est_method m, long a_max,
    long b_max, size_t input_bytes, int per_message);

#endif
