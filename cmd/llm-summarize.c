/*
 * llm-summarize - condense a chat's older context on the helper model
 * (strategy B).
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "cli.h"
#include "condense.h"
#include "route.h"

static const struct option longopts[] = {
	CLI_COMMON_OPTIONS,
	CLI_BACKEND_OPTIONS,
	CLI_CONDENSE_OPTIONS,
	CLI_SUMMARY_ONLY_OPTION,
	{ NULL, 0, NULL, 0 }
};

static void
usage(void)
{
	printf("usage: %s [options] < chat\n"
"Condense the older part of a chat on the helper model (default --gpu1):\n"
"system messages, the task and the tail stay, the middle becomes a summary.\n\n"
"      --target N          summary size in tokens (default %d)\n"
CLI_CONDENSE_HELP
CLI_SUMMARY_ONLY_HELP
CLI_BACKEND_HELP
CLI_COMMON_HELP, lr_prog(), CONDENSE_TARGET);
}

int
main(int argc, char *argv[])
{
	struct cli o;
	struct config cfg;
	struct condense_opts co;
	struct condense_result res;
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct chat c;
	struct lr_err e;
	int ch, st;

	lr_setprog(argv[0]);
	cli_init(&o, GPU1);
	condense_opts_init(&co);
	while ((ch = getopt_long(argc, argv, ":hVvq", longopts, NULL)) != -1)
		if (!cli_option(&o, ch, optarg, usage) &&
		    !cli_condense_option(ch, optarg, &co, NULL))
			cli_bad_option(ch, argv, longopts);
	cli_no_operands(argc, argv);
	cli_summary_only_check(&co);
	cli_setup(&o, &cfg);
	cli_config_check(&cfg);
	co.model = o.model;
	cli_read_chat(&o, &in, &c);
	backend_signals();	/* from now on, a signal cancels requests */
	backend_global_init();
	if (!co.extractive)	/* asked each time: no cache here */
		route_helper_window(&cfg.role[o.role], co.model != NULL ?
		    co.model : cfg.role[o.role].model, NULL);
	st = condense_summarize(&c, in.p, in.len, &cfg.role[o.role], &co,
	    &out, &res, &e);
	st = cli_interrupted(st);
	if (co.summary_only)
		st = cli_summary_only_done(st, &res, &out, &e);
	if (st == 0)	/* cli_exit() reports a write error */
		fwrite(out.p, 1, out.len, stdout);
	chat_free(&c);
	buf_free(&in);
	buf_free(&out);
	config_free(&cfg);
	backend_global_cleanup();
	cli_exit(st, st != 0 ? &e : NULL);
}
