/*
 * estimate.h - token estimation for chat text.
 *
 * Owns: the two estimators (the design note's chars/4 and the default
 * "qwen" estimator calibrated against the Qwen tokenizer), and the
 * per-message chat template overhead.  Knows nothing of JSON.
 */
#ifndef LLM_ESTIMATE_H
#define LLM_ESTIMATE_H

#include <stddef.h>

enum est_method {
	EST_QWEN,	/* default: by kind of text, calibrated on the corpus */
	EST_CHARS4	/* characters / 4, as in the design note */
};

/* Method by name ("qwen", "chars4"); returns -1 when unknown. */
int est_method_parse(const char *name);
const char *est_method_name(enum est_method m);

/* Tokens of len bytes of UTF-8 text s (the content of one message). */
size_t est_text_tokens(const char *s, size_t len, enum est_method m);

/*
 * Tokens of one rendered chat message,
 * "<|im_start|>ROLE\nCONTENT<|im_end|>\n": the template overhead and the
 * role plus est_text_tokens() of the content.  EST_CHARS4 counts the
 * content alone, ceil(code points / 4), as the design note did.
 */
size_t est_message_tokens(const char *role, const char *content,
    size_t content_len, enum est_method m);

#endif
