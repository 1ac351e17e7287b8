/*
 * request.h - the body sent to a backend for a chat (SPEC sections 2, 5).
 *
 * Owns: turning any of the input shapes into an Ollama /api/chat or an
 * OpenAI /v1/chat/completions request with stream on, carrying over the
 * fields the other API understands (sampling options, tools, format,
 * images), and the choice of model.
 */
#ifndef LLM_REQUEST_H
#define LLM_REQUEST_H

#include <jv.h>

#include "chat.h"
#include "config.h"

/*
 * The model to ask for: force if given (--model), else the one the
 * request names, else the role's.
 */
const char *request_model(const struct chat *c, const struct role *r,
    const char *force);

/* The request object for api.  Consumes nothing; returns a new jv. */
jv request_build(const struct chat *c, const char *model, enum api_kind api);

/* Serialize v (consumed) into out. */
void request_dump(jv v, struct buf *out);

/*
 * Write v (consumed), request_build()'s document for api, into out: chat
 * c's input bytes where v is the same as c's document (the sampling
 * options moved between the APIs too), so that what the tools do not
 * own leaves as it came in (SPEC section 2); serialized for text.
 */
void request_write(const struct chat *c, jv v, enum api_kind api,
    struct buf *out);

#endif
