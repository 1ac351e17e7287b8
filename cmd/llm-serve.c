/*
 * llm-serve - an Ollama- and OpenAI-compatible HTTP front that answers
 * every chat through llm-route's pipeline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "log.h"
#include "serve.h"

enum {
	OPT_LISTEN = OPT_CMD_BASE, OPT_TOKEN_FILE, OPT_MAX_BODY,
	OPT_MAX_STREAMS, OPT_KEEPALIVE, OPT_DRAIN, OPT_PREFETCH,
	OPT_NO_PREFETCH
};

static const struct option longopts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "log-json", no_argument, NULL, OPT_LOG_JSON },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "max-body", required_argument, NULL, OPT_MAX_BODY },
	{ "max-streams", required_argument, NULL, OPT_MAX_STREAMS },
	{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
	{ "drain", required_argument, NULL, OPT_DRAIN },
	{ "prefetch", no_argument, NULL, OPT_PREFETCH },
	{ "no-prefetch", no_argument, NULL, OPT_NO_PREFETCH },
	CLI_ROUTE_OPTIONS,
	CLI_CONDENSE_OPTIONS,
	CLI_MAPREDUCE_OPTIONS,
	{ NULL, 0, NULL, 0 }
};

static void
usage(void)
{
	printf("usage: %s [options]\n"
"Serve the Ollama API (and OpenAI's /v1) over HTTP, answering every chat\n"
"through llm-route's pipeline: GPU0 answers, GPU1 condenses.\n\n"
"      --listen ADDR:PORT  listen there (default 127.0.0.1:8512); may be\n"
"                          given again for more addresses\n"
"      --token-file FILE   require the bearer token in FILE (or set\n"
"                          LLM_SERVE_TOKEN)\n"
"      --max-body SIZE     refuse request bodies over SIZE (default 64M)\n"
"      --max-streams N     chat requests at once at most (default 64)\n"
"      --keepalive T       an empty chunk this often until the answer\n"
"                          (default 10s; 0: none)\n"
"      --drain T           on SIGTERM, let answers finish for T (default 10s)\n"
"      --prefetch, --no-prefetch\n"
"                          condense in the background while GPU0 answers\n"
"                          (default on)\n"
CLI_ROUTE_HELP
CLI_ROUTE_TARGET_HELP
CLI_CONDENSE_HELP
CLI_MAPREDUCE_HELP
"  -v, --verbose           log each request and stage on stderr\n"
"      --log-json          log as JSON lines on stderr\n"
"  -q, --quiet             no warnings\n"
"  -h, --help              show this help and exit\n"
"  -V, --version           show the version and exit\n", lr_prog());
}

/* The flags, kept for SIGHUP: the file is read again, then these. */
static struct cli_settings fs;

static int
reload(struct config *cfg, struct lr_err *e)
{
	if (config_load(cfg, e) != 0 || cli_settings_apply(&fs, cfg, e) != 0 ||
	    config_check(cfg, e) != 0) {
		config_free(cfg);
		return e->status;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct cli o;
	struct config cfg;
	struct serve_opts so;
	struct cli_cache cc = { 0, NULL, CACHE_MAX };
	struct buf listen = BUF_INIT;
	struct lr_err e;
	int ch, st;

	lr_setprog(argv[0]);
	cli_init(&o, GPU0);
	memset(&so, 0, sizeof(so));
	route_opts_init(&so.ro);
	while ((ch = getopt_long(argc, argv, ":hVvq", longopts, NULL)) != -1) {
		if (cli_route_option(ch, optarg, &fs, &so.ro, &cc) ||
		    cli_option(&o, ch, optarg, usage))
			continue;
		switch (ch) {
		case OPT_LISTEN:
			if (listen.len > 0)
				buf_addc(&listen, ',');
			buf_adds(&listen, optarg);
			break;
		case OPT_TOKEN_FILE:
			cli_setting(&fs, "serve_token_file", optarg,
			    "--token-file");
			break;
		case OPT_MAX_BODY:
			cli_setting(&fs, "serve_max_body", optarg, "--max-body");
			break;
		case OPT_MAX_STREAMS:
			cli_setting(&fs, "serve_max_streams", optarg,
			    "--max-streams");
			break;
		case OPT_KEEPALIVE:
			cli_setting(&fs, "serve_keepalive", optarg,
			    "--keepalive");
			break;
		case OPT_DRAIN:
			cli_setting(&fs, "serve_drain", optarg, "--drain");
			break;
		case OPT_PREFETCH:
			cli_setting(&fs, "serve_prefetch", "on", "--prefetch");
			break;
		case OPT_NO_PREFETCH:
			cli_setting(&fs, "serve_prefetch", "off",
			    "--no-prefetch");
			break;
		default:
			cli_bad_option(ch, argv, longopts);
		}
	}
	if (optind < argc)
		lr_usage_error("unexpected argument '%s'", argv[optind]);
	if (listen.len > 0)
		cli_setting(&fs, "serve_listen", buf_str(&listen), "--listen");
	cli_setup(&o, &cfg);
	cli_route_finish(&fs, &so.ro, &cfg);
	so.ro.gen.model = o.model;
	so.cache_dir = cc.dir;
	so.cache_max = cc.max;
	so.no_cache = cc.off;
	so.reload = reload;
	backend_global_init();
	st = serve_run(&cfg, &so, &e);
	config_free(&cfg);
	buf_free(&listen);
	backend_global_cleanup();
	cli_exit(st, st != 0 ? &e : NULL);
}
