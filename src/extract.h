/*
 * extract.h - what condensing carries over verbatim, and the model-free
 * compressor (SPEC section 3).
 *
 * Owns: finding fenced code blocks, file paths and error lines (Python
 * tracebacks, "error:" lines, compiler diagnostics, failing tests) in the
 * condensed messages; choosing them newest first within a token budget;
 * rendering them; and the extractive summary: the most informative
 * sentences of the condensed messages within a token budget.
 * Deterministic: the same text always gives the same result.
 */
#ifndef LLM_EXTRACT_H
#define LLM_EXTRACT_H

#include <stddef.h>

#include "estimate.h"
#include "util.h"

enum item_kind { ITEM_ERROR, ITEM_PATH, ITEM_CODE };

struct item {
	enum item_kind kind;
	int msg;		/* index of the message it came from */
	char *text;		/* verbatim */
	size_t len;
	size_t tokens;
	int kept;		/* chosen for the output */
	int covered;		/* not chosen, but inside a chosen item */
};

struct items {
	struct item *v;
	int n, cap;
};

/*
 * A code fence line (``` or ~~~, at most three spaces in): its length in
 * fence characters, else 0; *ch the character, *rest the offset after.
 * A closing fence is at least as long, of the same character, with only
 * blanks after it (extract_blank).
 */
size_t extract_fence(const char *s, size_t n, char *ch, size_t *rest);
int extract_blank(const char *s, size_t n);

/* Append the items of one message's text, in order of appearance. */
void extract_message(struct items *it, const char *text, size_t len,
    int msg, enum est_method m);

/*
 * Choose items newest first (later messages, and later in a message,
 * first), errors, then paths, then code, within budget tokens; an item already inside a chosen one is
 * marked covered.  Returns the tokens used.
 */
size_t extract_choose(struct items *it, size_t budget);

/* The chosen items as the "preserved" part of a summary block. */
void extract_render(const struct items *it, struct buf *out);

void extract_free(struct items *it);

const char *item_kind_name(enum item_kind k);

/* One message of the part to condense, for the extractive compressor. */
struct xmsg {
	const char *role;
	const char *text;
	size_t len;
};

/*
 * The extractive summary of n messages: the most informative sentences
 * and lines outside code blocks, up to target tokens, in their original
 * order, each group headed by its role ("user: ...").  A sentence or
 * line that a chosen item of skip (may be NULL) holds is left out: the
 * extract lists it already.
 */
void extract_summary(const struct xmsg *msgs, int n, size_t target,
    enum est_method m, const struct items *skip, struct buf *out);

/*
 * The length of text's longest prefix within target tokens, ending at a
 * line or sentence end in its second half, else at a space there, else
 * at a UTF-8 character boundary.
 */
size_t extract_trim(const char *text, size_t len, size_t target,
    enum est_method m);

#endif
