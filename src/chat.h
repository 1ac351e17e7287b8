/*
 * chat.h - the chat request read on stdin (SPEC section 2).
 *
 * Owns: reading the input within its limits, recognising the four shapes
 * (Ollama request, OpenAI request, bare array of messages, plain text),
 * validating them so that no wrong type ever reaches a libjq accessor,
 * the text of a message, and writing a chat back in the shape it came in.
 */
#ifndef LLM_CHAT_H
#define LLM_CHAT_H

#include <stdio.h>
#include <jv.h>

#include "util.h"

#define CHAT_MAX_INPUT	(64UL * 1024 * 1024)	/* --max-input default */
#define CHAT_MAX_DEPTH	64			/* nesting limit */

enum chat_shape {
	CHAT_OLLAMA,	/* {"model", "messages", ...} as /api/chat takes it */
	CHAT_OPENAI,	/* {"model", "messages", ...} as /v1/chat/completions */
	CHAT_ARRAY,	/* [ {"role", "content"}, ... ] */
	CHAT_TEXT	/* plain text: one user message */
};

struct chat {
	enum chat_shape shape;
	jv doc;		/* the request object, the array, or null for text */
	jv messages;	/* the array of message objects (a reference) */
	char *raw;	/* a copy of the JSON input's bytes, which the writers
			   keep where the document did not change (SPEC
			   section 2); NULL for text */
	size_t rawlen;
};

/* Read all of fd into in, failing with LR_INPUT past max bytes. */
int chat_read(int fd, size_t max, struct buf *in, struct lr_err *e);

/*
 * Parse n bytes of input.  force_text reads it as plain text whatever
 * it looks like.  JSON must be valid per RFC 8259: a raw control byte
 * in a string, which libjq 1.6 would take, is refused too.  On failure:
 * LR_INPUT and a message saying where and why.  c is to be freed with
 * chat_free() either way.
 */
int chat_parse(const char *p, size_t n, int force_text, struct chat *c,
    struct lr_err *e);

void chat_free(struct chat *c);

const char *chat_shape_name(enum chat_shape s);

/* Number of messages. */
int chat_count(const struct chat *c);

/*
 * The text of message i: its content string, or its text parts joined by
 * newlines.  Appended to out.  Non-text parts are left out.
 */
void chat_text(const struct chat *c, int i, struct buf *out);

/* The role of message i (valid while c is). */
const char *chat_role(const struct chat *c, int i);

/*
 * A message's content text, as chat_text(), for a message value that has
 * been validated by chat_parse().
 */
void chat_msg_text(jv msg, struct buf *out);

/* Object obj's number at key, or -1 when it has none (obj is kept). */
double chat_number(jv obj, const char *key);

#endif
