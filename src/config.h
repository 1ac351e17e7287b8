/*
 * config.h - settings and where each came from (SPEC section 6).
 *
 * Owns: the one table of settings, filled by built-in defaults, then the
 * config file ($LLM_ROUTE_CONFIG, else $XDG_CONFIG_HOME/llm-route/config,
 * else ~/.config/llm-route/config), then the environment, then flags.
 * Every value is checked where it is set, so an error names the file and
 * line, the variable or the flag.
 */
#ifndef LLM_CONFIG_H
#define LLM_CONFIG_H

#include <stdio.h>

#include "util.h"

enum cfg_src { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

enum api_kind { API_OLLAMA, API_OPENAI };

enum { GPU0, GPU1, NROLES };

#define ROLE_MAX_URLS 8

/* One backend role, resolved. */
struct role {
	const char *name;		/* "GPU0", "GPU1" */
	char *urls[ROLE_MAX_URLS];	/* base URLs, tried in order */
	int nurls;
	const char *model;
	enum api_kind api;
	const char *api_key;		/* from the environment only */
	long connect_ms, first_byte_ms, idle_ms, total_ms;	/* 0: none */
	long num_ctx;			/* options.num_ctx to send; 0: none */
	long parallel;			/* requests the server serves at once
					   (its OLLAMA_NUM_PARALLEL): at most
					   this many are sent it at once */
	double prefill_tps, decode_tps;	/* speeds assumed until measured */
};

/* How llm-route and llm-serve choose a strategy (SPEC section 4). */
enum policy { POLICY_THRESHOLDS, POLICY_COST };

#define CONFIG_NSETTINGS 34	/* rows of the table in config.c */

#define SERVE_MAX_LISTEN 8

/* llm-serve's own settings (the serve_* keys). */
struct serve_cfg {
	char *listen[SERVE_MAX_LISTEN];	/* "ADDR:PORT", "[ADDR6]:PORT" */
	int nlisten;
	size_t max_body;		/* bytes of a request body */
	long max_streams;		/* chat requests at once */
	long keepalive_ms;		/* an empty chunk this often */
	long drain_ms;			/* SIGTERM: streams may finish */
	int prefetch;			/* background condensing */
	int prepare_pct;		/* with the cost policy, condense in
					   the background from this share of
					   GPU0's window on */
	const char *token_file;		/* bearer token file, or "" */
};

struct config {
	struct role role[NROLES];
	long a_max, b_max;
	enum policy policy;
	long max_chunks;	/* helper requests one chat may cost */
	struct serve_cfg serve;
	char *path;		/* the config file read, or NULL */
	/* Each setting as text, and where it came from. */
	char *values[CONFIG_NSETTINGS];
	char *origins[CONFIG_NSETTINGS];	/* "file:line", variable, flag */
	enum cfg_src sources[CONFIG_NSETTINGS];
};

/*
 * Defaults, file and environment.  Returns 0, or LR_USAGE with a message
 * naming the file and line or the variable.
 */
int config_load(struct config *c, struct lr_err *e);

/*
 * Set one key ("gpu0_url", "a_max", ...) from a flag; what names the flag
 * in messages.  Returns 0 or LR_USAGE.
 */
int config_set(struct config *c, const char *key, const char *val,
    const char *what, struct lr_err *e);

/* Check relations between settings (A_MAX <= B_MAX) after flags. */
int config_check(struct config *c, struct lr_err *e);

/* Write the config file read (a comment) and every setting, its value
 * and its source, one per line, in one write. */
void config_print(const struct config *c, FILE *fp);

void config_free(struct config *c);

#endif
