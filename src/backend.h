/*
 * backend.h - chat requests to the backends over HTTP (SPEC section 5).
 *
 * Owns: libcurl.  A chat transfer POSTs a request body to a role's
 * /api/chat or /v1/chat/completions, feeds the reply to a stream parser,
 * enforces the connect, first-byte, idle and total timeouts, cancels on
 * SIGINT/SIGTERM or when a callback says so, maps every failure to a
 * SPEC section 7 status, and tries the role's next URL when one is
 * unreachable or answers 5xx before anything was delivered.  Several
 * transfers run at once on one thread (curl_multi), so all jv work stays
 * on that thread (libjq 1.6 is not thread-safe).
 */
#ifndef LLM_BACKEND_H
#define LLM_BACKEND_H

#include <signal.h>

#include "config.h"
#include "stream.h"
#include "util.h"

/* Set by the signal handlers: the signal number, or 0. */
extern volatile sig_atomic_t backend_interrupted;

/* Install SIGINT/SIGTERM handlers that cancel transfers; ignore SIGPIPE. */
void backend_signals(void);

/* Once per process, before anything else of this file. */
void backend_global_init(void);
void backend_global_cleanup(void);

struct chat_xfer {
	/* Set by the caller. */
	const struct role *role;
	const char *body;		/* the request JSON */
	size_t body_len;
	struct stream_cb cb;		/* what to do with the reply */
	int keep;			/* keep the whole answer in .stream */
	const char *model;		/* the model asked, for the speeds */
	long prefill_hint;		/* tokens the server is expected to
					   prefill past its prompt cache;
					   0: unknown */
	/* Called once the transfer is over (after any failover). */
	void (*on_done)(struct chat_xfer *x, void *ctx);
	void *done_ctx;

	/* Results. */
	int status;			/* 0 or a SPEC section 7 status */
	struct lr_err err;
	long http_status;
	const char *url;		/* the URL that answered last */
	struct stream stream;		/* .final: Ollama-shaped stats */
	double ms_first, ms_total;	/* to first byte, whole */
	size_t bytes_out, bytes_in;

	/* Private. */
	void *priv;
};

/*
 * Called with every transfer that ended well, after its log line (the
 * cost policy learns each server's speeds from it); NULL: none.
 */
extern void (*backend_observer)(const struct chat_xfer *x);

/* The endpoint URL for a base URL and API kind. */
char *backend_chat_url(const char *base, enum api_kind api);

/*
 * Run n transfers, at most jobs at once (0: all), in the order given,
 * each with failover across its role's URLs.  Returns 0 when all
 * succeeded, else the status of the first that failed (in the order
 * given).  An interruption cancels all and returns 128 + signal.
 */
int backend_run(struct chat_xfer **x, int n, int jobs);

/*
 * Can a connection to one of the role's URLs be opened at all (nothing
 * is sent)?  0, or LR_UNREACHABLE / LR_TIMEOUT with e set, in the words
 * of a request's failure.
 */
int backend_probe(const struct role *r, struct lr_err *e);

/*
 * The context length of model on role r's first URL that answers, from
 * Ollama's /api/show (model_info["<arch>.context_length"]), asked as
 * backend_forward() asks: the role's key and timeouts, the next URL
 * when one is unreachable or answers 5xx; at most 30 s in all.  Returns
 * 0 and *ctx, or a status with e set.
 */
int backend_context_length(const struct role *r, const char *model,
    long *ctx, struct lr_err *e);

/* What backend_forward() hands over as the reply comes. */
struct fwd_cb {
	/* Once, before any data: the HTTP status and content type. */
	int (*head)(void *ctx, long status, const char *ctype);
	int (*data)(void *ctx, const char *p, size_t n);
	void *ctx;
};

/*
 * Send one request (method, path appended to the base URL, body of len
 * bytes or none) to role r's first URL that answers, with the role's
 * connect timeout and key, and at most total_ms in all (0: none), and
 * hand the reply to cb as it comes, whatever its HTTP status.  Returns
 * 0 or a status with e set; a callback's non-zero return stops it with
 * that status.
 */
int backend_forward(const struct role *r, const char *method,
    const char *path, const char *body, size_t len, long total_ms,
    const struct fwd_cb *cb, struct lr_err *e);

/*
 * A role whose transfer failed in this process as a dead server fails
 * (unreachable, timed out, HTTP 5xx, on every URL) is not asked again:
 * backend_run() fails its later transfers at once with that error.
 * backend_role_down() says whether r is so, and the error;
 * backend_mark_down() marks it (llm-serve's cool-down).
 */
int backend_role_down(const struct role *r, struct lr_err *e);
void backend_mark_down(const struct role *r, const struct lr_err *e);

/* Release what a transfer holds after backend_run(). */
void backend_xfer_free(struct chat_xfer *x);

#endif
