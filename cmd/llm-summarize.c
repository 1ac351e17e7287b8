/*
 * llm-summarize - condense a chat's older context on the helper model
 * (strategy B).
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "cli.h"
#include "condense.h"

enum {
	OPT_EXTRACTIVE = OPT_CMD_BASE, OPT_TARGET, OPT_PRESERVE, OPT_KEEP_LAST,
	OPT_SUMMARIZE_SYSTEM, OPT_ON_HELPER_FAILURE
};

static const struct option longopts[] = {
	CLI_COMMON_OPTIONS,
	CLI_BACKEND_OPTIONS,
	{ "extractive", no_argument, NULL, OPT_EXTRACTIVE },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "preserve", required_argument, NULL, OPT_PRESERVE },
	{ "keep-last", required_argument, NULL, OPT_KEEP_LAST },
	{ "summarize-system", no_argument, NULL, OPT_SUMMARIZE_SYSTEM },
	{ "on-helper-failure", required_argument, NULL,
	    OPT_ON_HELPER_FAILURE },
	{ NULL, 0, NULL, 0 }
};

static void
usage(void)
{
	printf("usage: %s [options] < chat\n"
"Condense the older part of a chat on the helper model (default --gpu1):\n"
"system messages and the tail stay, the middle becomes one summary block.\n\n"
"      --extractive        no model: code, paths, errors and the most\n"
"                          informative sentences\n"
"      --target N          summary size in tokens (default %d)\n"
"      --preserve N        tokens of code, paths and errors kept verbatim\n"
"                          (default %d)\n"
"      --keep-last N       keep at least the last N messages (default %d)\n"
"      --summarize-system  condense system messages too\n"
"      --on-helper-failure MODE\n"
"                          extractive (default), direct (unchanged) or fail\n"
CLI_BACKEND_HELP
CLI_COMMON_HELP, lr_prog(), CONDENSE_TARGET, CONDENSE_PRESERVE,
	    CONDENSE_KEEP_LAST);
}

static size_t
tokens_arg(const char *flag, const char *arg, long min)
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
	struct condense_opts co;
	struct condense_result res;
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct chat c;
	struct lr_err e;
	int ch, st, m;

	lr_setprog(argv[0]);
	cli_init(&o, GPU1);
	condense_opts_init(&co);
	while ((ch = getopt_long(argc, argv, ":hVvq", longopts, NULL)) != -1) {
		if (cli_option(&o, ch, optarg, usage))
			continue;
		switch (ch) {
		case OPT_EXTRACTIVE:
			co.extractive = 1;
			break;
		case OPT_TARGET:
			co.target = tokens_arg("--target", optarg, 1);
			break;
		case OPT_PRESERVE:
			co.preserve = tokens_arg("--preserve", optarg, 0);
			break;
		case OPT_KEEP_LAST:
			co.keep_last = (int)tokens_arg("--keep-last", optarg,
			    0);
			break;
		case OPT_SUMMARIZE_SYSTEM:
			co.summarize_system = 1;
			break;
		case OPT_ON_HELPER_FAILURE:
			if ((m = condense_on_failure_parse(optarg)) < 0)
				lr_usage_error("--on-helper-failure: unknown "
				    "mode '%s' (extractive, direct or fail)",
				    optarg);
			co.on_failure = (enum on_failure)m;
			break;
		default:
			cli_bad_option(ch, argv, longopts);
		}
	}
	if (optind < argc)
		lr_usage_error("unexpected argument '%s' (the chat is read "
		    "from stdin)", argv[optind]);
	cli_setup(&o, &cfg);
	co.model = o.model;
	backend_signals();
	cli_read_chat(&o, &in, &c);
	backend_global_init();
	st = condense_summarize(&c, in.p, in.len, &cfg.role[o.role], &co,
	    &out, &res, &e);
	if (st == 0 && fwrite(out.p, 1, out.len, stdout) != out.len)
		st = 0;		/* cli_exit() reports the write error */
	chat_free(&c);
	buf_free(&in);
	buf_free(&out);
	config_free(&cfg);
	backend_global_cleanup();
	cli_exit(st, st != 0 ? &e : NULL);
}
