/*
 * llm-generate - stream the answer to a chat from the answering model.
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "cli.h"
#include "generate.h"

enum { OPT_JSON = OPT_CMD_BASE, OPT_NO_STREAM, OPT_SHOW_THINKING };

static const struct option longopts[] = {
	CLI_COMMON_OPTIONS,
	CLI_BACKEND_OPTIONS,
	{ "json", no_argument, NULL, OPT_JSON },
	{ "no-stream", no_argument, NULL, OPT_NO_STREAM },
	{ "show-thinking", no_argument, NULL, OPT_SHOW_THINKING },
	{ NULL, 0, NULL, 0 }
};

static void
usage(void)
{
	printf("usage: %s [options] < chat\n"
"Send a chat to the answering model (default --gpu0) and write its answer\n"
"on stdout as it arrives.\n\n"
"      --json              write Ollama NDJSON lines instead of text\n"
"      --no-stream         write the answer only when it is complete\n"
"      --show-thinking     also print the model's thinking, in <think> tags\n"
CLI_BACKEND_HELP
CLI_COMMON_HELP, lr_prog());
}

int
main(int argc, char *argv[])
{
	struct cli o;
	struct config cfg;
	struct gen_opts g = { .prompt_eval_count = -1 };
	struct buf in = BUF_INIT;
	struct chat c;
	struct lr_err e;
	int ch, st;

	lr_setprog(argv[0]);
	cli_init(&o, GPU0);
	while ((ch = getopt_long(argc, argv, ":hVvq", longopts, NULL)) != -1) {
		if (cli_option(&o, ch, optarg, usage))
			continue;
		switch (ch) {
		case OPT_JSON:
			g.json = 1;
			break;
		case OPT_NO_STREAM:
			g.no_stream = 1;
			break;
		case OPT_SHOW_THINKING:
			g.show_thinking = 1;
			break;
		default:
			cli_bad_option(ch, argv, longopts);
		}
	}
	cli_no_operands(argc, argv);
	cli_setup(&o, &cfg);
	cli_config_check(&cfg);
	g.model = o.model;
	cli_read_chat(&o, &in, &c);
	/* The chat is parsed: its bytes are not needed again, and with a
	 * large input they are a whole copy more at the peak (the request
	 * serialized). */
	buf_free(&in);
	backend_signals();	/* from now on, a signal cancels requests */
	backend_global_init();
	st = generate(&c, &cfg.role[o.role], &g, stdout, &e);
	chat_free(&c);
	config_free(&cfg);
	backend_global_cleanup();
	cli_exit(st, st != 0 ? &e : NULL);
}
