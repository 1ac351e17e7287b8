/*
 * est-harness - calibration driver for the token estimator.
 *
 * usage: est-harness [-cv] [-m qwen|chars4] [-p name=value ...] < dump
 *
 * Reads messages in a flat form that jq makes from a chat request
 * (bench/estimate-accuracy.sh shows how):
 *
 *	F<TAB>name<NL>				(optional: starts a file)
 *	M<TAB>role<TAB>nbytes<NL>content<NL>	(one message)
 *
 * and prints the estimated tokens of all messages.  With -v it prints
 * one line per message instead: "FILE<TAB>INDEX<TAB>ROLE<TAB>TOKENS".
 * -p overrides one of the estimator's rates (milli-tokens), for fitting;
 * -c prints each message's content cost in milli-tokens, unrounded.
 *
 * It includes src/estimate.c to reach its static rates; it is a bench
 * tool, not part of the toolkit.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/estimate.c"

static const struct {
	const char	*name;
	size_t		 off;
} knobs[] = {
#define K(f)	{ #f, offsetof(struct est_params, f) }
	K(sp_free), K(sp_rate), K(no_free), K(no_rate), K(up_free),
	K(up_rate), K(rare), K(sym_free), K(sym_rate), K(cap_sym), K(latin_extra), K(latin_words), K(esc), K(pu_rate),
	K(pu_base), K(pu_space), K(rule_rate), K(caret_rate), K(ws_base),
	K(foreign_base), K(tmpl),
#undef K
};

static void
usage(void)
{
	fprintf(stderr, "usage: est-harness [-cv] [-m qwen|chars4] "
	    "[-p name=value ...] < dump\n");
	exit(2);
}

static int
set_knob(struct est_params *p, const char *arg)
{
	const char *eq;
	char *end;
	long v;
	size_t i;

	if ((eq = strchr(arg, '=')) == NULL)
		return -1;
	errno = 0;
	v = strtol(eq + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == eq + 1 ||
	    v < -1000000 || v > 1000000)
		return -1;
	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
		if (strlen(knobs[i].name) == (size_t)(eq - arg) &&
		    strncmp(knobs[i].name, arg, (size_t)(eq - arg)) == 0) {
			*(int *)(void *)((char *)p + knobs[i].off) = (int)v;
			return 0;
		}
	return -1;
}

int
main(int argc, char *argv[])
{
	struct est_params p = est_defaults;
	enum est_method m = EST_QWEN;
	char line[4096], file[1024] = "-", role[256], *buf = NULL, *t1, *t2;
	char *end;
	size_t cap = 0, n, idx = 0, total = 0, tok;
	int i, verbose = 0, raw = 0, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0)
			verbose = 1;
		else if (strcmp(argv[i], "-c") == 0)
			raw = verbose = 1;
		else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) {
			if ((r = est_method_parse(argv[++i])) < 0)
				usage();
			m = (enum est_method)r;
		} else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
			if (set_knob(&p, argv[++i]) != 0)
				usage();
		} else
			usage();
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'F' && line[1] == '\t') {
			snprintf(file, sizeof(file), "%.1023s", line + 2);
			idx = 0;
			continue;
		}
		if (line[0] != 'M' || line[1] != '\t' ||
		    (t1 = strchr(line + 2, '\t')) == NULL)
			goto bad;
		*t1 = '\0';
		snprintf(role, sizeof(role), "%.255s", line + 2);
		errno = 0;
		n = strtoul(t1 + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == t1 + 1)
			goto bad;
		if (n + 1 > cap) {
			cap = n + 1;
			if ((t2 = realloc(buf, cap)) == NULL) {
				perror("est-harness");
				return 1;
			}
			buf = t2;
		}
		if (fread(buf, 1, n + 1, stdin) != n + 1 || buf[n] != '\n')
			goto bad;
		if (raw)
			tok = (size_t)qwen_cost(&p, (unsigned char *)buf, n);
		else
			tok = message_tokens(&p, role, buf, n, m);
		total += tok;
		if (verbose)
			printf("%s\t%zu\t%s\t%zu\n", file, idx, role, tok);
		idx++;
	}
	if (!verbose)
		printf("%zu\n", total);
	free(buf);
	if (ferror(stdin) || fflush(stdout) == EOF) {
		perror("est-harness");
		return 1;
	}
	return 0;
bad:
	fprintf(stderr, "est-harness: malformed input\n");
	free(buf);
	return 1;
}
