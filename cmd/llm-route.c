/*
 * llm-route - answer a chat on GPU0 after condensing it on GPU1 as its
 * size calls for: direct, summarize or map-reduce.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "log.h"
#include "route.h"

enum {
	OPT_DRY_RUN = OPT_CMD_BASE, OPT_JSON, OPT_NO_STREAM, OPT_SHOW_THINKING
};

static const struct option longopts[] = {
	CLI_COMMON_OPTIONS,
	CLI_CONDENSE_OPTIONS,
	CLI_MAPREDUCE_OPTIONS,
	CLI_ROUTE_OPTIONS,
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "explain", no_argument, NULL, OPT_DRY_RUN },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "no-stream", no_argument, NULL, OPT_NO_STREAM },
	{ "show-thinking", no_argument, NULL, OPT_SHOW_THINKING },
	{ NULL, 0, NULL, 0 }
};

static void
usage(void)
{
	printf("usage: %s [options] < chat\n"
"Answer a chat on GPU0, first condensing it on GPU1 as its size calls for:\n"
"below A_MAX tokens direct, below B_MAX summarized, else map-reduced.\n\n"
"  -n, --dry-run, --explain\n"
"                          print the decision and its numbers, ask nothing\n"
CLI_ROUTE_HELP
"      --json              write Ollama NDJSON lines instead of text\n"
"      --no-stream         write the answer only when it is complete\n"
"      --show-thinking     also print the model's thinking\n"
CLI_ROUTE_TARGET_HELP
CLI_CONDENSE_HELP
CLI_MAPREDUCE_HELP
CLI_COMMON_HELP, lr_prog());
}

int
main(int argc, char *argv[])
{
	struct cli o;
	struct config cfg;
	struct route_opts ro;
	struct cli_settings fs;
	struct cli_cache cc = { 0, NULL, CACHE_MAX };
	struct cache cache;
	struct buf in = BUF_INIT;
	struct chat c;
	struct lr_err e;
	int ch, st;

	lr_setprog(argv[0]);
	cli_init(&o, GPU0);
	route_opts_init(&ro);
	memset(&fs, 0, sizeof(fs));
	while ((ch = getopt_long(argc, argv, ":hVvqn", longopts, NULL)) != -1) {
		if (cli_route_option(ch, optarg, &fs, &ro, &cc) ||
		    cli_option(&o, ch, optarg, usage))
			continue;
		switch (ch) {
		case 'n':
		case OPT_DRY_RUN:
			ro.dry_run = 1;
			break;
		case OPT_JSON:
			ro.gen.json = 1;
			break;
		case OPT_NO_STREAM:
			ro.gen.no_stream = 1;
			break;
		case OPT_SHOW_THINKING:
			ro.gen.show_thinking = 1;
			break;
		default:
			cli_bad_option(ch, argv, longopts);
		}
	}
	cli_no_operands(argc, argv);
	cli_setup(&o, &cfg);
	cli_route_finish(&fs, &ro, &cfg);
	ro.gen.model = o.model;
	ro.mr.progress = isatty(STDERR_FILENO) && !o.quiet && !log_enabled();
	cli_cache_open(&cc, &cache);
	cli_read_chat(&o, &in, &c);
	backend_signals();	/* from now on, a signal cancels requests */
	backend_global_init();
	st = route(&c, in.p, in.len, &cfg, &ro, &cache, stdout, &e);
	cache_close(&cache);
	chat_free(&c);
	buf_free(&in);
	config_free(&cfg);
	backend_global_cleanup();
	cli_exit(st, st != 0 ? &e : NULL);
}
