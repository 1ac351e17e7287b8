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
	OPT_GPU0_URL = OPT_CMD_BASE, OPT_GPU1_URL, OPT_HELPER_MODEL,
	OPT_SET, OPT_A_MAX, OPT_B_MAX, OPT_DRY_RUN, OPT_PRINT_CONFIG,
	OPT_JSON, OPT_NO_STREAM, OPT_SHOW_THINKING
};

static const struct option longopts[] = {
	CLI_COMMON_OPTIONS,
	CLI_CONDENSE_OPTIONS,
	CLI_MAPREDUCE_OPTIONS,
	{ "gpu0-url", required_argument, NULL, OPT_GPU0_URL },
	{ "gpu1-url", required_argument, NULL, OPT_GPU1_URL },
	{ "model", required_argument, NULL, OPT_MODEL },
	{ "helper-model", required_argument, NULL, OPT_HELPER_MODEL },
	{ "num-ctx", required_argument, NULL, OPT_NUM_CTX },
	{ "set", required_argument, NULL, OPT_SET },
	{ "a-max", required_argument, NULL, OPT_A_MAX },
	{ "b-max", required_argument, NULL, OPT_B_MAX },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "explain", no_argument, NULL, OPT_DRY_RUN },
	{ "print-config", no_argument, NULL, OPT_PRINT_CONFIG },
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
"      --print-config      print every setting and where it came from\n"
"      --a-max N           direct below N tokens (default 2000)\n"
"      --b-max N           summarize below N tokens (default 6000)\n"
"      --gpu0-url URL      the answering server(s), comma-separated\n"
"      --gpu1-url URL      the helper server(s), comma-separated\n"
"      --model NAME        the answering model, instead of the request's\n"
"      --helper-model NAME the helper's model\n"
"      --num-ctx N         GPU0's context window (default: the request's\n"
"                          num_ctx, else the model's from /api/show)\n"
"      --set KEY=VALUE     any configuration key (see llm-route(1))\n"
"      --json              write Ollama NDJSON lines instead of text\n"
"      --no-stream         write the answer only when it is complete\n"
"      --show-thinking     also print the model's thinking\n"
"      --target N          tokens of the summary (default 500, or 1000\n"
"                          when map-reduced)\n"
CLI_CONDENSE_HELP
CLI_MAPREDUCE_HELP
CLI_COMMON_HELP, lr_prog());
}

/* Settings from flags, applied after the config file and environment. */
struct flagset {
	const char *key[64];
	const char *val[64];
	const char *flag[64];
	int n;
};

static void
flag_set(struct flagset *f, const char *key, const char *val,
    const char *flag)
{
	if (f->n == 64)
		lr_usage_error("too many settings");
	f->key[f->n] = key;
	f->val[f->n] = val;
	f->flag[f->n++] = flag;
}

int
main(int argc, char *argv[])
{
	struct cli o;
	struct config cfg;
	struct route_opts ro;
	struct flagset fs;
	struct cli_cache cc = { 0, NULL, CACHE_MAX };
	struct cache cache;
	struct buf in = BUF_INIT;
	struct chat c;
	struct lr_err e;
	char *eq;
	size_t n;
	int ch, st, m, print_config = 0, target_set = 0;

	lr_setprog(argv[0]);
	cli_init(&o, GPU0);
	route_opts_init(&ro);
	memset(&fs, 0, sizeof(fs));
	while ((ch = getopt_long(argc, argv, ":hVvqn", longopts, NULL)) != -1) {
		if ((ch != OPT_NUM_CTX && cli_option(&o, ch, optarg, usage)) ||
		    cli_condense_option(ch, optarg, &ro.b, &target_set) ||
		    cli_mapreduce_option(ch, optarg, &ro.mr, &cc))
			continue;
		switch (ch) {
		case OPT_GPU0_URL:
			flag_set(&fs, "gpu0_url", optarg, "--gpu0-url");
			break;
		case OPT_GPU1_URL:
			flag_set(&fs, "gpu1_url", optarg, "--gpu1-url");
			break;
		case OPT_HELPER_MODEL:
			if (*optarg == '\0')
				lr_usage_error("--helper-model: empty name");
			ro.b.model = optarg;
			break;
		case OPT_NUM_CTX:
			flag_set(&fs, "gpu0_num_ctx", optarg, "--num-ctx");
			break;
		case OPT_SET:
			if ((eq = strchr(optarg, '=')) == NULL)
				lr_usage_error("--set: expected KEY=VALUE, not "
				    "'%s'", optarg);
			*eq = '\0';
			flag_set(&fs, optarg, eq + 1, "--set");
			break;
		case OPT_A_MAX:
			flag_set(&fs, "a_max", optarg, "--a-max");
			break;
		case OPT_B_MAX:
			flag_set(&fs, "b_max", optarg, "--b-max");
			break;
		case 'n':
		case OPT_DRY_RUN:
			ro.dry_run = 1;
			break;
		case OPT_PRINT_CONFIG:
			print_config = 1;
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
	cli_mapreduce_check(&ro.mr);
	/* The condensing flags hold for both strategies; --target only when
	 * given, since their defaults differ. */
	n = ro.mr.c.target;
	ro.mr.c = ro.b;
	if (!target_set)
		ro.mr.c.target = n;
	cli_setup(&o, &cfg);
	for (m = 0; m < fs.n; m++)
		if (config_set(&cfg, fs.key[m], fs.val[m], fs.flag[m], &e))
			lr_usage_error("%s", e.msg);
	cli_config_check(&cfg);
	if (print_config) {
		if (cfg.path != NULL)
			printf("# config file: %s\n", cfg.path);
		config_print(&cfg, stdout);
		config_free(&cfg);
		cli_exit(LR_OK, NULL);
	}
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
