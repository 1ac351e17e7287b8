/*
 * llm-mapreduce - condense a chat's older context chunk by chunk on the
 * helper model (strategy C), with summaries cached by content.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "log.h"
#include "mapreduce.h"

enum {
	OPT_EXTRACTIVE = OPT_CMD_BASE, OPT_TARGET, OPT_PRESERVE, OPT_KEEP_LAST,
	OPT_SUMMARIZE_SYSTEM, OPT_ON_HELPER_FAILURE, OPT_JOBS,
	OPT_CHUNK_TOKENS, OPT_CHUNK_TARGET, OPT_CACHE_DIR, OPT_NO_CACHE,
	OPT_CACHE_MAX, OPT_DRY_RUN
};

static const struct option longopts[] = {
	CLI_COMMON_OPTIONS,
	CLI_BACKEND_OPTIONS,
	{ "jobs", required_argument, NULL, OPT_JOBS },
	{ "chunk-tokens", required_argument, NULL, OPT_CHUNK_TOKENS },
	{ "chunk-target", required_argument, NULL, OPT_CHUNK_TARGET },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "preserve", required_argument, NULL, OPT_PRESERVE },
	{ "keep-last", required_argument, NULL, OPT_KEEP_LAST },
	{ "summarize-system", no_argument, NULL, OPT_SUMMARIZE_SYSTEM },
	{ "extractive", no_argument, NULL, OPT_EXTRACTIVE },
	{ "on-helper-failure", required_argument, NULL,
	    OPT_ON_HELPER_FAILURE },
	{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "cache-max", required_argument, NULL, OPT_CACHE_MAX },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ NULL, 0, NULL, 0 }
};

static void
usage(void)
{
	printf("usage: %s [options] < chat\n"
"Condense the older part of a chat chunk by chunk on the helper model\n"
"(default --gpu1); chunk summaries are cached by content.\n\n"
"      --jobs N            helper requests in flight (default %d)\n"
"      --chunk-tokens N    tokens per chunk at most (default %d)\n"
"      --chunk-target N    tokens of a chunk's summary (default %d)\n"
"      --target N          tokens of the whole summary (default %d)\n"
"      --preserve N        tokens of code, paths and errors kept verbatim\n"
"                          (default %d)\n"
"      --keep-last N       keep at least the last N messages (default %d)\n"
"      --summarize-system  condense system messages too\n"
"      --extractive        no model: the extractive summary of each chunk\n"
"      --on-helper-failure MODE\n"
"                          extractive (default), direct (unchanged) or fail\n"
"      --cache-dir DIR     the cache (default $XDG_CACHE_HOME/llm-route)\n"
"      --no-cache          neither read nor write the cache\n"
"      --cache-max SIZE    evict the oldest entries past SIZE (default 64M)\n"
"      --dry-run           list the chunks, their sizes and whether they are\n"
"                          cached, without asking the helper\n"
CLI_BACKEND_HELP
CLI_COMMON_HELP, lr_prog(), MR_JOBS, MR_CHUNK_TOKENS, MR_CHUNK_TARGET,
	    MR_TARGET, CONDENSE_PRESERVE, CONDENSE_KEEP_LAST);
}

static size_t
number_arg(const char *flag, const char *arg, long min)
{
	const char *why;
	long v;

	if (lr_parse_long(arg, min, 10000000L, &v, &why) != 0)
		lr_usage_error("%s: bad value '%s': %s", flag, arg, why);
	return (size_t)v;
}

int
main(int argc, char *argv[])
{
	struct cli o;
	struct config cfg;
	struct mr_opts mo;
	struct condense_result res;
	struct cache cache;
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct chat c;
	struct lr_err e;
	const char *cache_dir = NULL, *why;
	size_t cache_max = CACHE_MAX;
	int ch, st, m, no_cache = 0;

	lr_setprog(argv[0]);
	cli_init(&o, GPU1);
	mr_opts_init(&mo);
	while ((ch = getopt_long(argc, argv, ":hVvq", longopts, NULL)) != -1) {
		if (cli_option(&o, ch, optarg, usage))
			continue;
		switch (ch) {
		case OPT_JOBS:
			mo.jobs = (int)number_arg("--jobs", optarg, 1);
			if (mo.jobs > 64)
				lr_usage_error("--jobs: at most 64");
			break;
		case OPT_CHUNK_TOKENS:
			mo.chunk_tokens = number_arg("--chunk-tokens", optarg,
			    100);
			break;
		case OPT_CHUNK_TARGET:
			mo.chunk_target = number_arg("--chunk-target", optarg,
			    1);
			break;
		case OPT_TARGET:
			mo.c.target = number_arg("--target", optarg, 1);
			break;
		case OPT_PRESERVE:
			mo.c.preserve = number_arg("--preserve", optarg, 0);
			break;
		case OPT_KEEP_LAST:
			mo.c.keep_last = (int)number_arg("--keep-last", optarg,
			    0);
			break;
		case OPT_SUMMARIZE_SYSTEM:
			mo.c.summarize_system = 1;
			break;
		case OPT_EXTRACTIVE:
			mo.c.extractive = 1;
			break;
		case OPT_ON_HELPER_FAILURE:
			if ((m = condense_on_failure_parse(optarg)) < 0)
				lr_usage_error("--on-helper-failure: unknown "
				    "mode '%s' (extractive, direct or fail)",
				    optarg);
			mo.c.on_failure = (enum on_failure)m;
			break;
		case OPT_CACHE_DIR:
			if (*optarg == '\0')
				lr_usage_error("--cache-dir: empty name");
			cache_dir = optarg;
			break;
		case OPT_NO_CACHE:
			no_cache = 1;
			break;
		case OPT_CACHE_MAX:
			if (lr_parse_size(optarg, &cache_max, &why) != 0)
				lr_usage_error("--cache-max: bad size '%s': %s",
				    optarg, why);
			break;
		case OPT_DRY_RUN:
			mo.dry_run = 1;
			break;
		default:
			cli_bad_option(ch, argv, longopts);
		}
	}
	if (optind < argc)
		lr_usage_error("unexpected argument '%s' (the chat is read "
		    "from stdin)", argv[optind]);
	if (mo.chunk_target >= mo.chunk_tokens)
		lr_usage_error("--chunk-target (%zu) must be smaller than "
		    "--chunk-tokens (%zu)", mo.chunk_target, mo.chunk_tokens);
	cli_setup(&o, &cfg);
	mo.c.model = o.model;
	mo.progress = isatty(STDERR_FILENO) && !o.quiet && !log_enabled();
	backend_signals();
	memset(&cache, 0, sizeof(cache));
	if (!no_cache && cache_open(&cache, cache_dir, cache_max, &e) != 0)
		lr_die_err(&e);
	cli_read_chat(&o, &in, &c);
	backend_global_init();
	st = mapreduce(&c, in.p, in.len, &cfg.role[o.role], &mo, &cache, &out,
	    &res, &e);
	if (st == 0)
		fwrite(out.p, 1, out.len, stdout);
	cache_close(&cache);
	chat_free(&c);
	buf_free(&in);
	buf_free(&out);
	config_free(&cfg);
	backend_global_cleanup();
	cli_exit(st, st != 0 ? &e : NULL);
}
