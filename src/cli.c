/*
 * cli.c - options shared by every binary.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cache.h"
#include "cli.h"
#include "condense.h"
#include "generate.h"
#include "log.h"
#include "mapreduce.h"
#include "route.h"

/*
 * libjq out of memory: the same one-line error and status as xmalloc()
 * (SPEC section 7).  Without a handler libjq 1.6 prints its own message
 * and aborts.
 */
static void
jq_nomem(void *data)
{
	(void)data;
	lr_die(LR_FAIL, "out of memory");
}

void
cli_init(struct cli *o, int role)
{
	jv_nomem_handler(jq_nomem, NULL);
	memset(o, 0, sizeof(*o));
	o->max_input = CHAT_MAX_INPUT;
	o->role = role;
	opterr = 0;	/* cli_bad_option() says it, with the program name */
}

_Noreturn void
cli_bad_option(int ch, char *const argv[], const struct option *longopts)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	const char *eq = strchr(arg, '=');
	const struct option *lo;

	if (strncmp(arg, "--", 2) == 0 && eq != NULL)
		for (lo = longopts; lo->name != NULL; lo++)
			if (strlen(lo->name) == (size_t)(eq - arg - 2) &&
			    strncmp(lo->name, arg + 2, (size_t)(eq - arg - 2)) == 0)
				lr_usage_error("option '--%s' takes no value",
				    lo->name);
	if (ch == ':')
		lr_usage_error("option '%s' needs a value", arg);
	if (optopt != 0 && optopt < 256 && strncmp(arg, "--", 2) != 0)
		lr_usage_error("unknown option '-%c'", optopt);
	lr_usage_error("unknown option '%s'", arg);
}

/* A per-role setting from a flag; given again, the last one counts. */
static void
role_flag(struct cli *o, const char *key, const char *val)
{
	int i;

	for (i = 0; i < o->nrole_flags; i++)
		if (strcmp(o->role_flag[i], key) == 0) {
			o->role_val[i] = val;
			return;
		}
	o->role_flag[o->nrole_flags] = key;	/* one per key: 7 at most */
	o->role_val[o->nrole_flags++] = val;
}

int
cli_option(struct cli *o, int ch, const char *arg, void (*usage)(void))
{
	const char *why;

	switch (ch) {
	case 'h':
		usage();
		if (fflush(stdout) != 0 || ferror(stdout))
			exit(LR_FAIL);
		exit(LR_OK);
	case 'V':
		printf("%s %s\n", lr_prog(), LR_VERSION);
		exit(LR_OK);
	case 'v':
		o->verbose = 1;
		return 1;
	case 'q':
		o->quiet = 1;
		return 1;
	case OPT_LOG_JSON:
		o->log_json = 1;
		return 1;
	case OPT_TEXT:
		o->force_text = 1;
		return 1;
	case OPT_MAX_INPUT:
		if (lr_parse_size(arg, &o->max_input, &why) != 0 ||
		    o->max_input == 0)
			lr_usage_error("--max-input: bad size '%s': %s", arg,
			    o->max_input == 0 ? "zero" : why);
		return 1;
	case OPT_GPU0:
		o->role = GPU0;
		return 1;
	case OPT_GPU1:
		o->role = GPU1;
		return 1;
	case OPT_URL:
		role_flag(o, "url", arg);
		return 1;
	case OPT_MODEL:
		if (*arg == '\0')
			lr_usage_error("--model: empty name");
		o->model = arg;
		return 1;
	case OPT_API:
		role_flag(o, "api", arg);
		return 1;
	case OPT_CONNECT_TIMEOUT:
		role_flag(o, "connect_timeout", arg);
		return 1;
	case OPT_FIRST_BYTE_TIMEOUT:
		role_flag(o, "first_byte_timeout", arg);
		return 1;
	case OPT_IDLE_TIMEOUT:
		role_flag(o, "idle_timeout", arg);
		return 1;
	case OPT_TIMEOUT:
		role_flag(o, "timeout", arg);
		return 1;
	case OPT_NUM_CTX:
		role_flag(o, "num_ctx", arg);
		return 1;
	}
	return 0;
}

void
cli_no_operands(int argc, char *argv[])
{
	if (optind < argc)
		lr_usage_error("unexpected argument '%s' (the chat is read "
		    "from stdin)", argv[optind]);
}

size_t
cli_number(const char *flag, const char *arg, long min)
{
	const char *why;
	long v;

	if (lr_parse_long(arg, min, 10000000L, &v, &why) != 0)
		lr_usage_error("%s: bad value '%s': %s", flag, arg, why);
	return (size_t)v;
}

int
cli_condense_option(int ch, const char *arg, struct condense_opts *o,
    struct cli_settings *s)
{
	int m;

	switch (ch) {
	case OPT_TARGET:
		o->target = cli_number("--target", arg, 1);
		if (s != NULL)
			s->target_set = 1;
		return 1;
	case OPT_PRESERVE:
		o->preserve = cli_number("--preserve", arg, 0);
		if (s != NULL)
			s->preserve_set = 1;
		return 1;
	case OPT_SUMMARY_ONLY:
		o->summary_only = 1;
		return 1;
	case OPT_KEEP_LAST:
		o->keep_last = (int)cli_number("--keep-last", arg, 0);
		return 1;
	case OPT_SUMMARIZE_SYSTEM:
		o->summarize_system = 1;
		return 1;
	case OPT_EXTRACTIVE:
		o->extractive = 1;
		return 1;
	case OPT_ON_HELPER_FAILURE:
		if ((m = condense_on_failure_parse(arg)) < 0)
			lr_usage_error("--on-helper-failure: unknown mode '%s' "
			    "(extractive, direct or fail)", arg);
		o->on_failure = (enum on_failure)m;
		return 1;
	}
	return 0;
}

int
cli_mapreduce_option(int ch, const char *arg, struct mr_opts *mo,
    struct cli_cache *cc)
{
	const char *why;

	switch (ch) {
	case OPT_JOBS:
		mo->jobs = (int)cli_number("--jobs", arg, 1);
		mo->jobs_given = 1;
		if (mo->jobs > 64)
			lr_usage_error("--jobs: at most 64");
		return 1;
	case OPT_CHUNK_TOKENS:
		mo->chunk_tokens = cli_number("--chunk-tokens", arg, 100);
		return 1;
	case OPT_CHUNK_TARGET:
		mo->chunk_target = cli_number("--chunk-target", arg, 1);
		return 1;
	case OPT_MAX_CHUNKS:
		mo->max_chunks = cli_number("--max-chunks", arg, 1);
		mo->max_chunks_given = 1;
		return 1;
	case OPT_NO_CACHE:
		cc->off = 1;
		return 1;
	case OPT_CACHE_DIR:
		if (*arg == '\0')
			lr_usage_error("--cache-dir: empty name");
		cc->dir = arg;
		return 1;
	case OPT_CACHE_MAX:
		if (lr_parse_size(arg, &cc->max, &why) != 0)
			lr_usage_error("--cache-max: bad size '%s': %s", arg,
			    why);
		return 1;
	}
	return 0;
}

void
cli_summary_only_check(const struct condense_opts *o)
{
	if (o->summary_only && o->on_failure == FAIL_DIRECT)
		lr_usage_error("--summary-only: --on-helper-failure=direct "
		    "would print the chat, not a summary (extractive or fail)");
}

int
cli_summary_only_done(int st, const struct condense_result *res,
    struct buf *out, struct lr_err *e)
{
	if (st != 0 || strcmp(res->how, "unchanged") != 0)
		return st;
	buf_reset(out);
	return lr_seterr(e, LR_INPUT, "nothing to summarize: the chat has no "
	    "message but system ones");
}

void
cli_mapreduce_check(const struct mr_opts *mo)
{
	if (mo->chunk_target >= mo->chunk_tokens)
		lr_usage_error("--chunk-target (%zu) must be smaller than "
		    "--chunk-tokens (%zu)", mo->chunk_target,
		    mo->chunk_tokens);
}

void
cli_cache_open(const struct cli_cache *cc, struct cache *c)
{
	struct lr_err e;

	memset(c, 0, sizeof(*c));
	if (!cc->off && cache_open(c, cc->dir, cc->max ? cc->max : CACHE_MAX,
	    &e) != 0)
		lr_die_err(&e);
}

void
cli_setup(struct cli *o, struct config *cfg)
{
	struct lr_err e;
	char key[64], flag[64];
	int i;

	lr_setquiet(o->quiet);
	log_setup(o->verbose, o->log_json);
	if (config_load(cfg, &e) != 0)
		lr_die_err(&e);
	for (i = 0; i < o->nrole_flags; i++) {
		snprintf(key, sizeof(key), "gpu%d_%s", o->role,
		    o->role_flag[i]);
		snprintf(flag, sizeof(flag), "--%s", o->role_flag[i]);
		for (char *p = flag; *p != '\0'; p++)
			if (*p == '_')
				*p = '-';
		if (config_set(cfg, key, o->role_val[i], flag, &e) != 0)
			lr_usage_error("%s", e.msg);
	}
}

void
cli_config_check(struct config *cfg)
{
	struct lr_err e;

	if (config_check(cfg, &e) != 0)
		lr_die_err(&e);
}

int
cli_interrupted(int status)
{
	return status == 0 && backend_interrupted ?
	    128 + (int)backend_interrupted : status;
}

void
cli_read_chat(const struct cli *o, struct buf *in, struct chat *c)
{
	struct lr_err e;

	if (isatty(STDIN_FILENO))
		lr_warn("reading the chat from the terminal "
		    "(end with Ctrl-D)");
	if (chat_read(STDIN_FILENO, o->max_input, in, &e) != 0 ||
	    chat_parse(in->p != NULL ? in->p : "", in->len, o->force_text, c,
	    &e) != 0)
		lr_die_err(&e);
}

void
cli_exit(int status, const struct lr_err *e)
{
	int sig = 0;

	if (status == LR_CLOSED)
		sig = SIGPIPE;
	else if (status == 128 + SIGINT)
		sig = SIGINT;
	else if (status == 128 + SIGTERM)
		sig = SIGTERM;
	if (sig == 0 && status != LR_CLOSED && e != NULL && status != 0)
		lr_msg("%s", e->msg);
	if (sig == 0 && (fflush(stdout) != 0 || ferror(stdout) ||
	    fclose(stdout) != 0)) {
		if (errno == EPIPE)
			sig = SIGPIPE;
		else if (status == 0) {
			/*
			 * After a failure, stdout's error flag may be the one
			 * already reported ("writing output" from the
			 * answering stage): one message per failure.
			 */
			lr_msg("writing output: %s", strerror(errno));
			status = LR_FAIL;
		}
	}
	if (sig != 0) {
		/* End as a filter killed by the signal would. */
		fflush(stderr);
		signal(sig, SIG_DFL);
		raise(sig);
		exit(128 + sig);
	}
	exit(status);
}

void
cli_setting(struct cli_settings *s, const char *key, const char *val,
    const char *flag)
{
	if (s->n == 64)
		lr_usage_error("too many settings");
	s->key[s->n] = key;
	s->val[s->n] = val;
	s->flag[s->n++] = flag;
}

int
cli_route_option(int ch, char *arg, struct cli_settings *s,
    struct route_opts *ro, struct cli_cache *cc)
{
	char *eq;

	/* A configuration key too: --print-config tells where it came from. */
	if (ch == OPT_MAX_CHUNKS) {
		(void)cli_number("--max-chunks", arg, 1);
		cli_setting(s, "max_chunks", arg, "--max-chunks");
		return 1;
	}
	if (cli_condense_option(ch, arg, &ro->b, s) ||
	    cli_mapreduce_option(ch, arg, &ro->mr, cc))
		return 1;
	switch (ch) {
	case OPT_GPU0_URL:
		cli_setting(s, "gpu0_url", arg, "--gpu0-url");
		return 1;
	case OPT_GPU1_URL:
		cli_setting(s, "gpu1_url", arg, "--gpu1-url");
		return 1;
	case OPT_HELPER_MODEL:
		if (*arg == '\0')
			lr_usage_error("--helper-model: empty name");
		ro->b.model = arg;
		return 1;
	case OPT_NUM_CTX:
		cli_setting(s, "gpu0_num_ctx", arg, "--num-ctx");
		return 1;
	case OPT_SET:
		if ((eq = strchr(arg, '=')) == NULL)
			lr_usage_error("--set: expected KEY=VALUE, not '%s'",
			    arg);
		*eq = '\0';
		cli_setting(s, arg, eq + 1, "--set");
		return 1;
	case OPT_A_MAX:
		cli_setting(s, "a_max", arg, "--a-max");
		return 1;
	case OPT_POLICY:
		cli_setting(s, "policy", arg, "--policy");
		return 1;
	case OPT_BANDS:
		if (strcmp(arg, "estimate") == 0)
			ro->bands_server = 0;
		else if (strcmp(arg, "server") == 0)
			ro->bands_server = 1;
		else
			lr_usage_error("--bands: unknown units '%s' (estimate "
			    "or server)", arg);
		return 1;
	case OPT_ON_OVERFLOW:
		if (strcmp(arg, "refuse") == 0)
			ro->on_overflow = OVERFLOW_REFUSE;
		else if (strcmp(arg, "direct") == 0)
			ro->on_overflow = OVERFLOW_DIRECT;
		else
			lr_usage_error("--on-overflow: unknown mode '%s' "
			    "(refuse or direct)", arg);
		return 1;
	case OPT_B_MAX:
		cli_setting(s, "b_max", arg, "--b-max");
		return 1;
	case OPT_PRINT_CONFIG:
		s->print_config = 1;
		return 1;
	}
	return 0;
}

int
cli_settings_apply(const struct cli_settings *s, struct config *cfg,
    struct lr_err *e)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (config_set(cfg, s->key[i], s->val[i], s->flag[i], e))
			return LR_USAGE;
	return 0;
}

void
cli_route_finish(const struct cli_settings *s, struct route_opts *ro,
    struct config *cfg)
{
	struct lr_err e;
	size_t n, p;

	cli_mapreduce_check(&ro->mr);
	/* The condensing flags hold for both strategies; --target and
	 * --preserve only when given, since their defaults differ. */
	n = ro->mr.c.target;
	p = ro->mr.c.preserve;
	ro->mr.c = ro->b;
	if (!s->target_set)
		ro->mr.c.target = n;
	if (!s->preserve_set)
		ro->mr.c.preserve = p;
	if (cli_settings_apply(s, cfg, &e) != 0)
		lr_usage_error("%s", e.msg);
	cli_config_check(cfg);
	ro->mr.max_chunks = (size_t)cfg->max_chunks;
	if (s->print_config) {
		config_print(cfg, stdout);
		config_free(cfg);
		cli_exit(LR_OK, NULL);
	}
}
