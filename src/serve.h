/*
 * serve.h - llm-serve, the Ollama- and OpenAI-compatible HTTP front
 * (SPEC section 8).
 *
 * Owns, in serve.c: the listening sockets (libmicrohttpd in external
 * epoll mode, on one thread), the one event loop, the request limits
 * (body size, bearer token, streams at once), the keep-alive chunks,
 * client disconnects, draining on SIGTERM, reloading on SIGHUP, the
 * request log, /metrics and the scheduling of background condensing.
 *
 * Owns, in serve_job.c: the work of one request, done in a child
 * process of its own so that every jv stays on one thread (libjq 1.6 is
 * not thread-safe) and a slow or stuck request holds up no other: the
 * llm-route pipeline for /api/chat and /v1/chat/completions, answered
 * as Ollama NDJSON or OpenAI SSE; the requests passed through to GPU0;
 * /healthz; and background condensing.  A job writes frames to a pipe
 * that the loop reads: a type byte, a 4-byte length, the payload.
 */
#ifndef LLM_SERVE_H
#define LLM_SERVE_H

#include <stddef.h>

#include "cache.h"
#include "config.h"
#include "route.h"

/* Frames from a job to the server. */
enum {
	FR_HEAD = 'H',	/* "STATUS\nCONTENT-TYPE\nKIND\nMODEL\n" */
	FR_DATA = 'D',	/* bytes of the body */
	FR_INFO = 'I'	/* "key=value key=value": for the log and /metrics */
};
#define FRAME_HDR	5
#define FRAME_MAX	(1U << 20)	/* payload bytes at most */

/* What a job's body is, for keep-alive chunks. */
#define KIND_NDJSON	"ndjson"
#define KIND_SSE	"sse"
#define KIND_BODY	"body"

enum job_kind {
	JOB_OLLAMA_CHAT,	/* POST /api/chat */
	JOB_OPENAI_CHAT,	/* POST /v1/chat/completions */
	JOB_PROXY,		/* passed to GPU0 as it is */
	JOB_HEALTH,		/* GET /healthz */
	JOB_PREFETCH		/* background condensing, no client */
};

struct job {
	enum job_kind kind;
	const char *method, *path;	/* JOB_PROXY */
	const char *body;
	size_t len;
	int fd;				/* frames go here */
	const struct config *cfg;
	const struct route_opts *ro;	/* the server's routing options */
	struct cache *cache;
	/* The num_ctx this server already sends each model. */
	const char *const *ctx_models;
	const long *ctx_values;
	int nctx;
	/* GPU1 failed in an earlier job, lately: not to be asked. */
	const struct lr_err *helper_down;
};

/* How long GPU1 is not asked after it failed (llm-serve's cool-down). */
#define SERVE_HELPER_COOLDOWN_MS	60000

/* Write one frame; 0, or -1 when the server is gone. */
int frame_write(int fd, int type, const char *p, size_t n);

/* Run a job, in the child; returns the child's exit status. */
int job_run(const struct job *j);

/* An endpoint of llm-serve. */
struct serve_route {
	const char *path;
	const char *methods;	/* as an Allow header lists them */
	const char *endpoint;
	int kind;		/* a job_kind, or -1 (served here) */
	int chat, open;		/* a stream; needs no token */
};

/*
 * A request's head: its path url, method, Authorization and
 * Content-Length headers (NULL when absent), against the bearer token
 * (NULL: none needed) and the body limit.  Returns 0, or the HTTP status
 * to answer: 404 (*route NULL), 405, 401 or 413 (*len the length said).
 * *route is the endpoint matched.
 */
int serve_match(const char *url, const char *method, const char *auth,
    const char *token, const char *content_length, size_t max_body,
    const struct serve_route **route, size_t *len);

/* What a chat request's body asks of the reply. */
struct serve_chat_req {
	int stream;		/* "stream", else the API's default */
	int include_usage;	/* stream_options.include_usage */
	char *model;		/* "model" when a string, or NULL; freed
				   by the caller */
};

/*
 * Parse a chat request's body (openai: /v1/chat/completions) into c and
 * q.  Returns 0, or LR_INPUT with e set (c is then freed, q empty).
 */
int serve_chat_parse(const char *body, size_t len, int openai,
    struct chat *c, struct serve_chat_req *q, struct lr_err *e);

/* llm-serve's settings beyond the configuration. */
struct serve_opts {
	struct route_opts ro;
	const char *cache_dir;		/* --cache-dir, or NULL */
	size_t cache_max;
	int no_cache;
	/* Re-read the configuration (SIGHUP): 0, or a status with e set. */
	int (*reload)(struct config *cfg, struct lr_err *e);
};

/*
 * Listen as cfg->serve says and serve until SIGTERM or SIGINT and the
 * drain.  Returns the exit status (0 after a clean stop), with e set
 * when it is not 0.
 */
int serve_run(struct config *cfg, struct serve_opts *o, struct lr_err *e);

#endif
