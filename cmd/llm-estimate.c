/*
 * llm-estimate - measure a chat and name the strategy its size calls for.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "log.h"
#include "measure.h"
#include "request.h"

enum { OPT_PER_MESSAGE = OPT_CMD_BASE, OPT_METHOD };

static const struct option longopts[] = {
	CLI_COMMON_OPTIONS,
	{ "tokens", no_argument, NULL, 'n' },
	{ "compact", no_argument, NULL, 'c' },
	{ "per-message", no_argument, NULL, OPT_PER_MESSAGE },
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "a-max", required_argument, NULL, OPT_A_MAX },
	{ "b-max", required_argument, NULL, OPT_B_MAX },
	{ NULL, 0, NULL, 0 }
};

static double
num(jv obj, const char *key)
{
	jv v = jv_object_get(jv_copy(obj), jv_string(key));
	double d = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : 0;

	jv_free(v);
	return d;
}

static void
usage(void)
{
	printf("usage: %s [options] < chat\n"
"Estimate a chat's size in tokens and the strategy the thresholds pick:\n"
"direct below A_MAX, summarize below B_MAX, else mapreduce.\n\n"
"  -n, --tokens            print only the estimated token count\n"
"  -c, --compact           print the report on one line\n"
"      --per-message       add each message's size to the report\n"
"      --method NAME       qwen (default) or chars4 (characters / 4)\n"
"      --a-max N           direct below N tokens (default 2000)\n"
"      --b-max N           summarize below N tokens (default 6000)\n"
CLI_COMMON_HELP, lr_prog());
}

int
main(int argc, char *argv[])
{
	struct cli o;
	struct config cfg;
	struct buf in = BUF_INIT;
	struct chat c;
	struct lr_err e;
	const char *a_max = NULL, *b_max = NULL;
	int ch, tokens_only = 0, compact = 0, per_message = 0, m;
	enum est_method method = EST_QWEN;
	double t0;
	jv report;

	lr_setprog(argv[0]);
	cli_init(&o, GPU0);
	while ((ch = getopt_long(argc, argv, ":hVvqnc", longopts,
	    NULL)) != -1) {
		if (cli_option(&o, ch, optarg, usage))
			continue;
		switch (ch) {
		case 'n':
			tokens_only = 1;
			break;
		case 'c':
			compact = 1;
			break;
		case OPT_PER_MESSAGE:
			per_message = 1;
			break;
		case OPT_METHOD:
			if ((m = est_method_parse(optarg)) < 0)
				lr_usage_error("--method: unknown method '%s' "
				    "(qwen or chars4)", optarg);
			method = (enum est_method)m;
			break;
		case OPT_A_MAX:
			a_max = optarg;
			break;
		case OPT_B_MAX:
			b_max = optarg;
			break;
		default:
			cli_bad_option(ch, argv, longopts);
		}
	}
	cli_no_operands(argc, argv);
	cli_setup(&o, &cfg);
	if ((a_max != NULL &&
	    config_set(&cfg, "a_max", a_max, "--a-max", &e) != 0) ||
	    (b_max != NULL &&
	    config_set(&cfg, "b_max", b_max, "--b-max", &e) != 0))
		lr_usage_error("%s", e.msg);
	cli_config_check(&cfg);
	t0 = lr_now_ms();
	cli_read_chat(&o, &in, &c);
	report = measure_report(&c, method, cfg.a_max, cfg.b_max, in.len,
	    per_message);
	log_event(LOG_INFO, "estimate", "shape", 's', chat_shape_name(c.shape),
	    "messages", 'i', (long)chat_count(&c),
	    "bytes_in", 'i', (long)in.len,
	    "tokens", 'i', (long)num(report, "tokens"),
	    "method", 's', est_method_name(method),
	    "strategy", 's', strategy_name(strategy_pick((size_t)num(report,
	    "tokens"), cfg.a_max, cfg.b_max)),
	    "ms", 'f', lr_now_ms() - t0, (const char *)NULL);
	if (tokens_only) {
		printf("%.0f\n", num(report, "tokens"));
		jv_free(report);
	} else {
		jv s = jv_dump_string(report, compact ? 0 :
		    JV_PRINT_PRETTY | JV_PRINT_INDENT_FLAGS(2));

		fputs(jv_string_value(s), stdout);
		putchar('\n');
		jv_free(s);
	}
	chat_free(&c);
	buf_free(&in);
	config_free(&cfg);
	cli_exit(LR_OK, NULL);
}
