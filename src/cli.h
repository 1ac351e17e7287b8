/*
 * cli.h - the options every binary shares.
 *
 * Owns: the common long options (CLI_COMMON_OPTIONS, and
 * CLI_BACKEND_OPTIONS for the stages that call a backend), their
 * parsing into struct cli, applying them to the configuration after all
 * flags are read, reading the chat on stdin, and ending the program with
 * the right status.
 */
#ifndef LLM_CLI_H
#define LLM_CLI_H

#include <getopt.h>

#include "chat.h"
#include "config.h"
#include "util.h"

enum {
	OPT_LOG_JSON = 256, OPT_MAX_INPUT, OPT_TEXT, OPT_GPU0, OPT_GPU1,
	OPT_URL, OPT_MODEL, OPT_API, OPT_CONNECT_TIMEOUT,
	OPT_FIRST_BYTE_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_TIMEOUT, OPT_NUM_CTX,
	OPT_TARGET, OPT_PRESERVE, OPT_KEEP_LAST, OPT_SUMMARIZE_SYSTEM,
	OPT_EXTRACTIVE, OPT_ON_HELPER_FAILURE, OPT_JOBS, OPT_CHUNK_TOKENS,
	OPT_CHUNK_TARGET, OPT_NO_CACHE, OPT_CACHE_DIR, OPT_CACHE_MAX,
	OPT_GPU0_URL, OPT_GPU1_URL, OPT_HELPER_MODEL, OPT_SET, OPT_A_MAX,
	OPT_B_MAX, OPT_PRINT_CONFIG, OPT_SUMMARY_ONLY, OPT_ON_OVERFLOW,
	OPT_BANDS, OPT_POLICY, OPT_MAX_CHUNKS,
	OPT_CMD_BASE = 300	/* a binary's own long-only options */
};

#define CLI_COMMON_OPTIONS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, 'V' }, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "log-json", no_argument, NULL, OPT_LOG_JSON }, \
	{ "max-input", required_argument, NULL, OPT_MAX_INPUT }, \
	{ "text", no_argument, NULL, OPT_TEXT }

#define CLI_BACKEND_OPTIONS \
	{ "gpu0", no_argument, NULL, OPT_GPU0 }, \
	{ "gpu1", no_argument, NULL, OPT_GPU1 }, \
	{ "url", required_argument, NULL, OPT_URL }, \
	{ "model", required_argument, NULL, OPT_MODEL }, \
	{ "api", required_argument, NULL, OPT_API }, \
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT }, \
	{ "first-byte-timeout", required_argument, NULL, \
	    OPT_FIRST_BYTE_TIMEOUT }, \
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT }, \
	{ "timeout", required_argument, NULL, OPT_TIMEOUT }, \
	{ "num-ctx", required_argument, NULL, OPT_NUM_CTX }

/* Condensing (llm-summarize, llm-mapreduce, llm-route). */
#define CLI_CONDENSE_OPTIONS \
	{ "target", required_argument, NULL, OPT_TARGET }, \
	{ "preserve", required_argument, NULL, OPT_PRESERVE }, \
	{ "keep-last", required_argument, NULL, OPT_KEEP_LAST }, \
	{ "summarize-system", no_argument, NULL, OPT_SUMMARIZE_SYSTEM }, \
	{ "extractive", no_argument, NULL, OPT_EXTRACTIVE }, \
	{ "on-helper-failure", required_argument, NULL, \
	    OPT_ON_HELPER_FAILURE }

/* Map-reduce and its cache (llm-mapreduce, llm-route). */
#define CLI_MAPREDUCE_OPTIONS \
	{ "jobs", required_argument, NULL, OPT_JOBS }, \
	{ "chunk-tokens", required_argument, NULL, OPT_CHUNK_TOKENS }, \
	{ "chunk-target", required_argument, NULL, OPT_CHUNK_TARGET }, \
	{ "max-chunks", required_argument, NULL, OPT_MAX_CHUNKS }, \
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE }, \
	{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR }, \
	{ "cache-max", required_argument, NULL, OPT_CACHE_MAX }

/* Routing (llm-route, llm-serve): both roles and the thresholds. */
#define CLI_ROUTE_OPTIONS \
	{ "gpu0-url", required_argument, NULL, OPT_GPU0_URL }, \
	{ "gpu1-url", required_argument, NULL, OPT_GPU1_URL }, \
	{ "model", required_argument, NULL, OPT_MODEL }, \
	{ "helper-model", required_argument, NULL, OPT_HELPER_MODEL }, \
	{ "num-ctx", required_argument, NULL, OPT_NUM_CTX }, \
	{ "set", required_argument, NULL, OPT_SET }, \
	{ "a-max", required_argument, NULL, OPT_A_MAX }, \
	{ "on-overflow", required_argument, NULL, OPT_ON_OVERFLOW }, \
	{ "bands", required_argument, NULL, OPT_BANDS }, \
	{ "policy", required_argument, NULL, OPT_POLICY }, \
	{ "b-max", required_argument, NULL, OPT_B_MAX }, \
	{ "print-config", no_argument, NULL, OPT_PRINT_CONFIG }

#define CLI_ROUTE_HELP \
"      --print-config      print every setting and where it came from\n" \
"      --a-max N           direct below N tokens (default 2000)\n" \
"      --b-max N           summarize below N tokens (default 6000)\n" \
"      --gpu0-url URL      the answering server(s), comma-separated\n" \
"      --gpu1-url URL      the helper server(s), comma-separated\n" \
"      --model NAME        the answering model, instead of the request's\n" \
"      --helper-model NAME the helper's model\n" \
"      --num-ctx N         GPU0's context window (default: the request's\n" \
"                          num_ctx, else the model's from /api/show)\n" \
"      --set KEY=VALUE     any configuration key (see llm-route(1))\n" \
"      --on-overflow MODE  a chat that cannot fit GPU0's window even\n" \
"                          condensed: refuse (default, status 3) or direct\n" \
"                          (sent unchanged, with a warning)\n" \
"      --bands UNITS       the thresholds judge the estimate (default) or\n" \
"                          server: the tokens GPU0 counts, once learned\n" \
"      --policy POLICY     thresholds (default) or cost: condense when the\n" \
"                          chat does not fit or the answer comes sooner\n"

/* Help lines for the shared options, for each binary's --help. */
#define CLI_COMMON_HELP \
"  -v, --verbose           log each stage on stderr\n" \
"      --log-json          log as JSON lines on stderr\n" \
"  -q, --quiet             no warnings\n" \
"      --max-input SIZE    refuse input over SIZE bytes (default 64M)\n" \
"      --text              read the input as plain text\n" \
"  -h, --help              show this help and exit\n" \
"  -V, --version           show the version and exit\n"

#define CLI_BACKEND_HELP \
"      --gpu0, --gpu1      the backend role to use\n" \
"      --url URL           the role's base URL; several, comma-separated,\n" \
"                          are tried in order\n" \
"      --model NAME        the model to ask for\n" \
"      --api KIND          the backend's API: ollama or openai\n" \
"      --connect-timeout T\n" \
"                          give up connecting after T (default 5s)\n" \
"      --first-byte-timeout T\n" \
"                          give up when no reply starts within T\n" \
"      --idle-timeout T    give up when the reply stalls for T\n" \
"      --timeout T         give up when the reply is not done within T\n" \
"      --num-ctx N         the context window to ask the server for\n"

/* The condensing help, after the binary's own --target line. */
#define CLI_CONDENSE_HELP \
"      --preserve N        tokens of code, paths and errors kept verbatim\n" \
"                          per summary (default 500; llm-mapreduce 150)\n" \
"      --keep-last N       keep at least the last N messages (default 4)\n" \
"      --summarize-system  condense system messages too\n" \
"      --extractive        no model: code, paths, errors and the most\n" \
"                          informative sentences\n" \
"      --on-helper-failure MODE\n" \
"                          extractive (default), direct (unchanged) or fail\n"

/* llm-route and llm-serve: --target for both strategies. */
#define CLI_ROUTE_TARGET_HELP \
"      --target N          tokens of the summary (default 500), or of the\n" \
"                          whole block when map-reduced (default 4000)\n"

/* llm-summarize and llm-mapreduce: the summary alone, for archiving. */
#define CLI_SUMMARY_ONLY_OPTION \
	{ "summary-only", no_argument, NULL, OPT_SUMMARY_ONLY }
#define CLI_SUMMARY_ONLY_HELP \
"      --summary-only      summarize all of the chat but its system messages\n" \
"                          and print the summary alone, as text\n"

#define CLI_MAPREDUCE_HELP \
"      --jobs N            helper requests in flight (default 2), at most\n" \
"                          the helper's parallel setting (gpu1_parallel)\n" \
"      --chunk-tokens N    tokens per chunk at most (default 3000)\n" \
"      --chunk-target N    tokens of a chunk's summary (default 300)\n" \
"      --max-chunks N      helper requests one chat may cost (default 256);\n" \
"                          older chunks are condensed without the helper\n" \
"      --no-cache          neither read nor write the summary cache\n" \
"      --cache-dir DIR     the cache (default $XDG_CACHE_HOME/llm-route)\n" \
"      --cache-max SIZE    evict the oldest entries past SIZE (default 64M)\n"

struct cli {
	int verbose, quiet, log_json, force_text;
	size_t max_input;
	int role;			/* GPU0 or GPU1 */
	const char *role_flag[8];	/* per-role settings from flags */
	const char *role_val[8];
	int nrole_flags;
	const char *model;		/* --model */
};

struct condense_opts;
struct condense_result;
struct mr_opts;
struct cache;
struct route_opts;


/* The cache as the flags say. */
struct cli_cache {
	int off;		/* --no-cache */
	const char *dir;	/* --cache-dir, or NULL */
	size_t max;		/* --cache-max */
};

/* Settings from flags, applied after the config file and environment. */
struct cli_settings {
	const char *key[64];
	const char *val[64];
	const char *flag[64];
	int n;
	int print_config;	/* --print-config */
	int target_set;		/* --target was given */
	int preserve_set;	/* --preserve was given */
};

/* Add a setting (a config key) from flag. */
void cli_setting(struct cli_settings *s, const char *key, const char *val,
    const char *flag);

/*
 * Handle a routing option (CLI_ROUTE_OPTIONS, and the condensing and
 * map-reduce ones) into s, ro and cc; return 1 when ch was one.
 * --model is cli_option()'s.
 */
int cli_route_option(int ch, char *arg, struct cli_settings *s,
    struct route_opts *ro, struct cli_cache *cc);

/*
 * After every flag: the condensing flags hold for both strategies, the
 * settings are applied to cfg and checked, and --print-config prints
 * them and exits.
 */
void cli_route_finish(const struct cli_settings *s, struct route_opts *ro,
    struct config *cfg);

/* Apply the settings to cfg: 0, or LR_USAGE with e set (config_check()
 * comes after). */
int cli_settings_apply(const struct cli_settings *s, struct config *cfg,
    struct lr_err *e);

/* Defaults; role is the binary's default role.  Every binary calls it
 * first: it also sets libjq's out-of-memory handler. */
void cli_init(struct cli *o, int role);

/*
 * Handle a shared option; returns 1 when ch was one, 0 when not.
 * Exits on --help (calling usage) and --version, and on a bad value.
 */
int cli_option(struct cli *o, int ch, const char *arg,
    void (*usage)(void));

/* After the options: no operands, since the chat comes on stdin. */
void cli_no_operands(int argc, char *argv[]);

/*
 * A decimal option value in [min, 10000000]; a usage error otherwise.
 */
size_t cli_number(const char *flag, const char *arg, long min);

/*
 * Handle a condensing option (CLI_CONDENSE_OPTIONS) into o, or a
 * map-reduce one (CLI_MAPREDUCE_OPTIONS) into mo and cc; return 1 when
 * ch was one.  s (may be NULL) records an explicit --target and
 * --preserve.
 */
int cli_condense_option(int ch, const char *arg, struct condense_opts *o,
    struct cli_settings *s);
int cli_mapreduce_option(int ch, const char *arg, struct mr_opts *mo,
    struct cli_cache *cc);

/* --summary-only goes with --on-helper-failure extractive or fail only. */
void cli_summary_only_check(const struct condense_opts *o);

/*
 * After --summary-only: a chat left unchanged has no summary; its
 * output is dropped and st becomes an error (e set).
 */
int cli_summary_only_done(int st, const struct condense_result *res,
    struct buf *out, struct lr_err *e);

/* Check the map-reduce flags together (usage error). */
void cli_mapreduce_check(const struct mr_opts *mo);

/* Open the cache as cc says; exits on an unusable --cache-dir. */
void cli_cache_open(const struct cli_cache *cc, struct cache *c);

/*
 * The usage error for what getopt_long returned as ch ('?' or ':';
 * optstrings start with ':'), naming the option as typed.
 */
_Noreturn void cli_bad_option(int ch, char *const argv[],
    const struct option *longopts);

/*
 * Set up after parsing: logging, the config (defaults, file,
 * environment, then the role flags).  Exits with LR_USAGE on error.
 * cli_config_check() comes after the binary's own settings.
 */
void cli_setup(struct cli *o, struct config *cfg);

/* Check the settings together, after every flag (exits with LR_USAGE). */
void cli_config_check(struct config *cfg);

/* 128 + the signal when one came while status was still 0. */
int cli_interrupted(int status);

/* Read and parse the chat on stdin; exits with LR_INPUT on error. */
void cli_read_chat(const struct cli *o, struct buf *in, struct chat *c);

/*
 * Close stdout checking for errors, then exit with status: quietly by
 * the signal for 130, 143 and LR_CLOSED (SIGPIPE), else with a message
 * when e is set.  A failed write to stdout is reported only when nothing
 * else was: the first failure is the one to tell.
 */
_Noreturn void cli_exit(int status, const struct lr_err *e);

#endif
