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
#include "route.h"

static const struct option longopts[] = {
	CLI_COMMON_OPTIONS,
	CLI_BACKEND_OPTIONS,
	CLI_CONDENSE_OPTIONS,
	CLI_SUMMARY_ONLY_OPTION,
	CLI_MAPREDUCE_OPTIONS,
	{ "dry-run", no_argument, NULL, OPT_CMD_BASE },
	{ NULL, 0, NULL, 0 }
};

static void
usage(void)
{
	printf("usage: %s [options] < chat\n"
"Condense the older part of a chat chunk by chunk on the helper model\n"
"(default --gpu1); chunk summaries are cached by content.\n\n"
"      --dry-run           list the chunks, their sizes and whether they are\n"
"                          cached, without asking the helper\n"
"      --target N          tokens of the whole summary block (default %d)\n"
CLI_CONDENSE_HELP
CLI_SUMMARY_ONLY_HELP
CLI_MAPREDUCE_HELP
CLI_BACKEND_HELP
CLI_COMMON_HELP, lr_prog(), MR_TARGET);
}

int
main(int argc, char *argv[])
{
	struct cli o;
	struct config cfg;
	struct mr_opts mo;
	struct condense_result res;
	struct cli_cache cc = { 0, NULL, CACHE_MAX };
	struct cache cache;
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct chat c;
	struct lr_err e;
	int ch, st;

	lr_setprog(argv[0]);
	cli_init(&o, GPU1);
	mr_opts_init(&mo);
	while ((ch = getopt_long(argc, argv, ":hVvq", longopts, NULL)) != -1) {
		if (cli_option(&o, ch, optarg, usage) ||
		    cli_condense_option(ch, optarg, &mo.c, NULL) ||
		    cli_mapreduce_option(ch, optarg, &mo, &cc))
			continue;
		if (ch == OPT_CMD_BASE)
			mo.dry_run = 1;
		else
			cli_bad_option(ch, argv, longopts);
	}
	cli_no_operands(argc, argv);
	cli_mapreduce_check(&mo);
	cli_summary_only_check(&mo.c);
	cli_setup(&o, &cfg);
	cli_config_check(&cfg);
	if (!mo.max_chunks_given)	/* the flag, else the config's */
		mo.max_chunks = (size_t)cfg.max_chunks;
	mo.c.model = o.model;
	mo.progress = isatty(STDERR_FILENO) && !o.quiet && !log_enabled();
	cli_cache_open(&cc, &cache);
	cli_read_chat(&o, &in, &c);
	backend_signals();	/* from now on, a signal cancels requests */
	backend_global_init();
	if (!mo.c.extractive && !mo.dry_run)
		route_helper_window(&cfg.role[o.role], mo.c.model != NULL ?
		    mo.c.model : cfg.role[o.role].model, &cache);
	st = mapreduce(&c, in.p, in.len, &cfg.role[o.role], &mo, &cache, &out,
	    &res, &e);
	st = cli_interrupted(st);
	if (mo.c.summary_only && !mo.dry_run)
		st = cli_summary_only_done(st, &res, &out, &e);
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
