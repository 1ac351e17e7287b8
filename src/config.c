/*
 * config.c - the settings table: defaults, config file, environment, flags.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum cfg_type { T_URL, T_STR, T_API, T_TOKENS, T_MS, T_LISTEN, T_SIZE, T_BOOL,
    T_PATH, T_SLOTS, T_RATE, T_POLICY, T_PERCENT };

/* A role's parallel setting: requests its server serves at once. */
#define PARALLEL_MAX 1000

struct setting {
	const char *key;	/* config file key */
	const char *env;	/* environment variable, or NULL */
	enum cfg_type type;
	int role;		/* GPU0, GPU1, or -1 */
	const char *def;	/* built-in default */
};

static const struct setting settings[] = {
	{ "gpu0_url", "LLM_GPU0_URL", T_URL, GPU0, "http://127.0.0.1:11434" },
	{ "gpu0_model", "LLM_GPU0_MODEL", T_STR, GPU0, "qwen2.5-coder:7b" },
	{ "gpu0_api", "LLM_GPU0_API", T_API, GPU0, "ollama" },
	{ "gpu0_connect_timeout", NULL, T_MS, GPU0, "5" },
	{ "gpu0_first_byte_timeout", NULL, T_MS, GPU0, "300" },
	{ "gpu0_idle_timeout", NULL, T_MS, GPU0, "60" },
	{ "gpu0_timeout", NULL, T_MS, GPU0, "0" },
	{ "gpu0_num_ctx", NULL, T_TOKENS, GPU0, "0" },
	{ "gpu0_parallel", NULL, T_SLOTS, GPU0, "1" },
	{ "gpu0_prefill_tps", NULL, T_RATE, GPU0, "2000" },
	{ "gpu0_decode_tps", NULL, T_RATE, GPU0, "50" },
	{ "gpu1_url", "LLM_GPU1_URL", T_URL, GPU1, "http://127.0.0.1:11435" },
	{ "gpu1_model", "LLM_GPU1_MODEL", T_STR, GPU1, "qwen3:1.7b" },
	{ "gpu1_api", "LLM_GPU1_API", T_API, GPU1, "ollama" },
	{ "gpu1_connect_timeout", NULL, T_MS, GPU1, "5" },
	{ "gpu1_first_byte_timeout", NULL, T_MS, GPU1, "120" },
	{ "gpu1_idle_timeout", NULL, T_MS, GPU1, "60" },
	{ "gpu1_timeout", NULL, T_MS, GPU1, "0" },
	{ "gpu1_num_ctx", NULL, T_TOKENS, GPU1, "8192" },
	{ "gpu1_parallel", NULL, T_SLOTS, GPU1, "1" },
	{ "gpu1_prefill_tps", NULL, T_RATE, GPU1, "600" },
	{ "gpu1_decode_tps", NULL, T_RATE, GPU1, "30" },
	{ "a_max", "LLM_ROUTE_A_MAX", T_TOKENS, -1, "2000" },
	{ "b_max", "LLM_ROUTE_B_MAX", T_TOKENS, -1, "6000" },
	{ "policy", "LLM_ROUTE_POLICY", T_POLICY, -1, "thresholds" },
	{ "max_chunks", NULL, T_TOKENS, -1, "256" },
	{ "serve_listen", "LLM_SERVE_LISTEN", T_LISTEN, -1, "127.0.0.1:8512" },
	{ "serve_token_file", NULL, T_PATH, -1, "" },
	{ "serve_max_body", NULL, T_SIZE, -1, "64M" },
	{ "serve_max_streams", NULL, T_TOKENS, -1, "64" },
	{ "serve_keepalive", NULL, T_MS, -1, "10" },
	{ "serve_drain", NULL, T_MS, -1, "10" },
	{ "serve_prefetch", NULL, T_BOOL, -1, "on" },
	{ "serve_prepare", NULL, T_PERCENT, -1, "50" },
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

_Static_assert(NSETTINGS == CONFIG_NSETTINGS, "CONFIG_NSETTINGS");

static int
lookup(const char *key)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].key, key) == 0)
			return (int)i;
	return -1;
}

/*
 * OLLAMA_HOST as Ollama's tools read it: [scheme://]host[:port], with
 * http, 127.0.0.1 and 11434 filled in where left out.
 */
static char *
ollama_host_url(const char *s)
{
	struct buf b = BUF_INIT;
	const char *rest = s;

	if (strstr(s, "://") != NULL) {
		buf_adds(&b, s);
		return buf_detach(&b);
	}
	buf_adds(&b, "http://");
	if (*rest == ':' || *rest == '\0')
		buf_adds(&b, "127.0.0.1");
	buf_adds(&b, rest);
	if (strrchr(rest, ':') == NULL || strrchr(rest, ']') >
	    strrchr(rest, ':'))
		buf_adds(&b, ":11434");
	return buf_detach(&b);
}

/* on/off, yes/no, true/false, 1/0: 1 or 0, else -1. */
static int
parse_bool(const char *v)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcmp(v, yes[i]) == 0)
			return 1;
		if (strcmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

/*
 * A listen address: ADDR:PORT or [ADDR6]:PORT, several separated by
 * commas; NULL when good, else why.
 */
static const char *
check_listen(const char *val)
{
	const char *p, *q, *colon;
	long port;
	const char *why;
	char num[16];
	int n = 0;

	for (p = val;; p = q + 1) {
		q = strchr(p, ',');
		if (q == NULL)
			q = p + strlen(p);
		if (++n > SERVE_MAX_LISTEN)
			return "too many addresses";
		colon = NULL;
		if (*p == '[') {
			const char *rb = memchr(p, ']', (size_t)(q - p));

			if (rb == NULL || rb[1] != ':')
				return "expected [ADDR]:PORT";
			colon = rb + 1;
		} else {
			const char *c;

			for (c = p; c < q; c++)
				if (*c == ':')
					colon = c;
		}
		if (colon == NULL || colon == p)
			return "expected ADDR:PORT";
		if ((size_t)(q - colon - 1) >= sizeof(num) || q == colon + 1)
			return "expected a port number after ':'";
		memcpy(num, colon + 1, (size_t)(q - colon - 1));
		num[q - colon - 1] = '\0';
		if (lr_parse_long(num, 0, 65535, &port, &why) != 0)
			return "the port is not a number from 0 to 65535";
		if (*q == '\0')
			break;
	}
	return NULL;
}

/*
 * One URL of a role, from p to q: http:// or https://, a host, and a
 * port number when a ':' says one follows (libcurl would take
 * "http://host:" for port 80); NULL when good, else why.
 */
static const char *
check_url(const char *p, const char *q)
{
	const char *h, *end, *at, *colon = NULL, *c;
	char num[8];
	long port;
	const char *why;

	if (strncmp(p, "http://", 7) == 0)
		h = p + 7;
	else if (strncmp(p, "https://", 8) == 0)
		h = p + 8;
	else
		return "not an http:// or https:// URL";
	for (end = h; end < q && *end != '/' && *end != '?' && *end != '#';
	    end++)
		;
	for (at = end; at > h && at[-1] != '@'; at--)
		;
	h = at == h ? h : at;	/* after the user info, if any */
	if (h == end)
		return "no host name";
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (rb == NULL)
			return "no ']' after an IPv6 address";
		if (rb == h + 1)
			return "no host name";
		if (rb + 1 < end && rb[1] != ':')
			return "expected ':' after an IPv6 address";
		colon = rb + 1 < end ? rb + 1 : NULL;
	} else
		for (c = h; c < end; c++)
			if (*c == ':')
				colon = c;
	if (colon == NULL)
		return NULL;
	if (colon == h)
		return "no host name";
	if (colon + 1 == end)
		return "expected a port number after ':'";
	if ((size_t)(end - colon - 1) >= sizeof(num))
		return "the port is not a number from 1 to 65535";
	memcpy(num, colon + 1, (size_t)(end - colon - 1));
	num[end - colon - 1] = '\0';
	if (lr_parse_long(num, 1, 65535, &port, &why) != 0)
		return "the port is not a number from 1 to 65535";
	return NULL;
}

/* A speed in tokens per second: 0 when good. */
static int
parse_rate(const char *val, double *d)
{
	char *end;

	errno = 0;
	*d = strtod(val, &end);
	return end == val || *end != '\0' || errno != 0 || !(*d >= 0.1) ||
	    *d > 1e7 ? -1 : 0;
}

/* Check a value of the setting's type; NULL when good, else why. */
static const char *
check_value(const struct setting *s, const char *val)
{
	const char *why = NULL, *p, *q;
	double d;
	long l;
	size_t z;

	switch (s->type) {
	case T_URL:
		/*
		 * libcurl refuses these only at request time, without the
		 * file and line: a tab pasted into the config file.
		 */
		for (p = val; *p != '\0'; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				return "a URL has no spaces or control "
				    "characters";
		for (p = val;; p = q + 1) {
			q = strchr(p, ',');
			if (q == NULL)
				q = p + strlen(p);
			if ((why = check_url(p, q)) != NULL)
				return why;
			if (*q == '\0')
				break;
		}
		return NULL;
	case T_STR:
		return *val == '\0' ? "empty" : NULL;
	case T_API:
		if (strcmp(val, "ollama") == 0 || strcmp(val, "openai") == 0)
			return NULL;
		return "not 'ollama' or 'openai'";
	case T_TOKENS:
		if (lr_parse_long(val, 0, 100000000L, &l, &why) != 0)
			return why;
		return NULL;
	case T_MS:
		if (lr_parse_ms(val, &l, &why) != 0)
			return why;
		return NULL;
	case T_LISTEN:
		return check_listen(val);
	case T_SIZE:
		if (lr_parse_size(val, &z, &why) != 0)
			return why;
		return z == 0 ? "must be more than 0" : NULL;
	case T_BOOL:
		return parse_bool(val) < 0 ? "not 'on' or 'off'" : NULL;
	case T_PATH:
		return NULL;
	case T_SLOTS:
		if (lr_parse_long(val, 1, PARALLEL_MAX, &l, &why) != 0)
			return "not a number from 1 to 1000";
		return NULL;
	case T_RATE:
		return parse_rate(val, &d) != 0 ?
		    "not a number of tokens per second from 0.1 to 10000000" :
		    NULL;
	case T_POLICY:
		if (strcmp(val, "thresholds") == 0 || strcmp(val, "cost") == 0)
			return NULL;
		return "not 'thresholds' or 'cost'";
	case T_PERCENT:
		if (lr_parse_long(val, 0, 100, &l, &why) != 0)
			return "not a number from 0 to 100";
		return NULL;
	}
	return NULL;
}

static int
set_index(struct config *c, int i, const char *val, enum cfg_src src, const char *origin,
    struct lr_err *e)
{
	const char *why;
	int count = 0;
	const char *p;

	if ((why = check_value(&settings[i], val)) != NULL)
		return lr_seterr(e, LR_USAGE, "%s: bad value '%s' for %s: %s",
		    origin, val, settings[i].key, why);
	if (settings[i].type == T_URL) {
		for (p = val; p != NULL; p = strchr(p + 1, ','))
			count++;
		if (count > ROLE_MAX_URLS)
			return lr_seterr(e, LR_USAGE, "%s: more than %d URLs "
			    "for %s", origin, ROLE_MAX_URLS, settings[i].key);
	}
	free(c->values[i]);
	free(c->origins[i]);
	c->values[i] = xstrdup(val);
	c->origins[i] = xstrdup(origin);
	c->sources[i] = src;
	return 0;
}

static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static int
load_file(const char *path, int must_exist, struct config *c,
    struct lr_err *e)
{
	FILE *fp;
	char *line = NULL, *key, *val, *eq, *q, origin[300];
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	int i, r = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return lr_seterr(e, LR_USAGE, "config file %s: %s", path,
		    strerror(errno));
	}
	c->path = xstrdup(path);
	while ((len = getline(&line, &cap, fp)) != -1) {
		lineno++;
		snprintf(origin, sizeof(origin), "%s:%ld", path, lineno);
		if ((size_t)len != strlen(line)) {
			r = lr_seterr(e, LR_USAGE, "%s: NUL byte in line",
			    origin);
			break;
		}
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			r = lr_seterr(e, LR_USAGE, "%s: expected 'key = value'",
			    origin);
			break;
		}
		*eq = '\0';
		key = trim(key);
		val = trim(eq + 1);
		/*
		 * A value may be quoted to keep a " #"; unquoted, " #" starts
		 * a comment.
		 */
		if (val[0] == '"' && (q = strchr(val + 1, '"')) != NULL &&
		    (*trim(q + 1) == '\0' || *trim(q + 1) == '#')) {
			*q = '\0';
			val++;
		} else {
			for (q = val; (q = strchr(q, '#')) != NULL; q++)
				if (q > val && (q[-1] == ' ' || q[-1] == '\t')) {
					*q = '\0';
					val = trim(val);
					break;
				}
		}
		if ((i = lookup(key)) < 0) {
			r = lr_seterr(e, LR_USAGE, "%s: unknown key '%s'",
			    origin, key);
			break;
		}
		if ((r = set_index(c, i, val, SRC_FILE, origin, e)) != 0)
			break;
	}
	/* getline() fails with ENOMEM as it does at the end of the file
	 * (-1), but without the end-of-file flag: not a shorter file. */
	if (r == 0 && !feof(fp) && errno == ENOMEM)
		lr_die(LR_FAIL, "out of memory");
	if (r == 0 && (ferror(fp) || !feof(fp)))
		r = lr_seterr(e, LR_USAGE, "config file %s: %s", path,
		    strerror(errno));
	free(line);
	fclose(fp);
	return r;
}

static int
resolve(struct config *c, struct lr_err *e)
{
	size_t i;
	long l;
	const char *why;

	for (i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		struct role *r = s->role >= 0 ? &c->role[s->role] : NULL;
		const char *v = c->values[i];
		/* The key without its role's prefix ("url" of
		 * "gpu0_url"); keys without a '_' ("policy") have none. */
		const char *k = strchr(s->key, '_') != NULL ?
		    strchr(s->key, '_') + 1 : s->key;

		switch (s->type) {
		case T_URL: {
			char *copy = xstrdup(v), *tok, *save = NULL;

			while (r->nurls > 0)
				free(r->urls[--r->nurls]);
			for (tok = strtok_r(copy, ",", &save); tok != NULL;
			    tok = strtok_r(NULL, ",", &save)) {
				size_t n = strlen(tok);

				while (n > 0 && tok[n - 1] == '/')
					tok[--n] = '\0';
				r->urls[r->nurls++] = xstrdup(tok);
			}
			free(copy);
			break;
		}
		case T_STR:
			r->model = v;
			break;
		case T_API:
			r->api = strcmp(v, "openai") == 0 ? API_OPENAI :
			    API_OLLAMA;
			break;
		case T_TOKENS:
			(void)lr_parse_long(v, 0, 100000000L, &l, &why);
			if (r != NULL)
				r->num_ctx = l;
			else if (strcmp(s->key, "a_max") == 0)
				c->a_max = l;
			else if (strcmp(s->key, "b_max") == 0)
				c->b_max = l;
			else if (strcmp(s->key, "max_chunks") == 0)
				c->max_chunks = l;
			else
				c->serve.max_streams = l;
			break;
		case T_LISTEN: {
			char *copy = xstrdup(v), *tok, *save = NULL;

			while (c->serve.nlisten > 0)
				free(c->serve.listen[--c->serve.nlisten]);
			for (tok = strtok_r(copy, ",", &save); tok != NULL;
			    tok = strtok_r(NULL, ",", &save))
				c->serve.listen[c->serve.nlisten++] =
				    xstrdup(tok);
			free(copy);
			break;
		}
		case T_SIZE:
			(void)lr_parse_size(v, &c->serve.max_body, &why);
			break;
		case T_BOOL:
			c->serve.prefetch = parse_bool(v) == 1;
			break;
		case T_PATH:
			c->serve.token_file = v;
			break;
		case T_SLOTS:
			(void)lr_parse_long(v, 1, PARALLEL_MAX, &r->parallel,
			    &why);
			break;
		case T_RATE:
			(void)parse_rate(v, strcmp(k, "prefill_tps") == 0 ?
			    &r->prefill_tps : &r->decode_tps);
			break;
		case T_POLICY:
			c->policy = strcmp(v, "cost") == 0 ? POLICY_COST :
			    POLICY_THRESHOLDS;
			break;
		case T_PERCENT:
			(void)lr_parse_long(v, 0, 100, &l, &why);
			c->serve.prepare_pct = (int)l;
			break;
		case T_MS:
			(void)lr_parse_ms(v, &l, &why);
			if (r == NULL) {
				if (strcmp(s->key, "serve_keepalive") == 0)
					c->serve.keepalive_ms = l;
				else
					c->serve.drain_ms = l;
			} else if (strcmp(k, "connect_timeout") == 0)
				r->connect_ms = l;
			else if (strcmp(k, "first_byte_timeout") == 0)
				r->first_byte_ms = l;
			else if (strcmp(k, "idle_timeout") == 0)
				r->idle_ms = l;
			else
				r->total_ms = l;
			break;
		}
	}
	(void)e;
	return 0;
}

int
config_load(struct config *c, struct lr_err *e)
{
	const char *p, *home;
	char *path = NULL, *u;
	size_t i;
	int r;

	memset(c, 0, sizeof(*c));
	c->role[GPU0].name = "GPU0";
	c->role[GPU1].name = "GPU1";
	for (i = 0; i < NSETTINGS; i++) {
		c->values[i] = xstrdup(settings[i].def);
		c->origins[i] = xstrdup("default");
		c->sources[i] = SRC_DEFAULT;
	}
	if ((p = getenv("LLM_ROUTE_CONFIG")) != NULL && *p != '\0')
		r = load_file(p, 1, c, e);
	else {
		struct buf b = BUF_INIT;

		if ((p = getenv("XDG_CONFIG_HOME")) != NULL && *p == '/')
			buf_printf(&b, "%s/llm-route/config", p);
		else if ((home = getenv("HOME")) != NULL && *home != '\0')
			buf_printf(&b, "%s/.config/llm-route/config", home);
		path = b.p != NULL ? buf_detach(&b) : NULL;
		r = path != NULL ? load_file(path, 0, c, e) : 0;
		free(path);
	}
	if (r != 0)
		return r;
	for (i = 0; i < NSETTINGS; i++) {
		if (settings[i].env == NULL)
			continue;
		p = getenv(settings[i].env);
		if (p != NULL && *p != '\0' &&
		    (r = set_index(c, (int)i, p, SRC_ENV, settings[i].env, e)))
			return r;
	}
	/* OLLAMA_HOST is GPU0's address when LLM_GPU0_URL is not set. */
	p = getenv("OLLAMA_HOST");
	i = (size_t)lookup("gpu0_url");
	if (p != NULL && *p != '\0' && c->sources[i] != SRC_ENV) {
		u = ollama_host_url(p);
		r = set_index(c, (int)i, u, SRC_ENV, "OLLAMA_HOST", e);
		free(u);
		if (r != 0)
			return r;
	}
	c->role[GPU0].api_key = getenv("LLM_GPU0_API_KEY");
	c->role[GPU1].api_key = getenv("LLM_GPU1_API_KEY");
	lr_secret(c->role[GPU0].api_key);
	lr_secret(c->role[GPU1].api_key);
	return resolve(c, e);
}

int
config_set(struct config *c, const char *key, const char *val,
    const char *what, struct lr_err *e)
{
	int i = lookup(key), r;

	if (i < 0)
		return lr_seterr(e, LR_USAGE, "unknown setting %s", key);
	if ((r = set_index(c, i, val, SRC_FLAG, what, e)) != 0)
		return r;
	return resolve(c, e);
}

int
config_check(struct config *c, struct lr_err *e)
{
	if (c->serve.max_streams < 1)
		return lr_seterr(e, LR_USAGE, "%s: serve_max_streams must be "
		    "at least 1", c->origins[lookup("serve_max_streams")]);
	if (c->max_chunks < 1)
		return lr_seterr(e, LR_USAGE, "%s: max_chunks must be at "
		    "least 1", c->origins[lookup("max_chunks")]);
	if (c->a_max > c->b_max)
		return lr_seterr(e, LR_USAGE, "A_MAX (%ld, from %s) is greater "
		    "than B_MAX (%ld, from %s)", c->a_max,
		    c->origins[lookup("a_max")], c->b_max,
		    c->origins[lookup("b_max")]);
	return 0;
}

void
config_print(const struct config *c, FILE *fp)
{
	struct buf b = BUF_INIT;
	size_t i;

	/* Made whole first, so that out of memory prints nothing. */
	if (c->path != NULL)
		buf_printf(&b, "# config file: %s\n", c->path);
	for (i = 0; i < NSETTINGS; i++) {
		buf_printf(&b, "%s = ", settings[i].key);
		buf_add_redacted(&b, c->values[i]);
		buf_printf(&b, "\t# %s\n", c->origins[i]);
	}
	fwrite(b.p, 1, b.len, fp);
	buf_free(&b);
}

void
config_free(struct config *c)
{
	size_t i;
	int j;

	for (j = 0; j < NROLES; j++)
		while (c->role[j].nurls > 0)
			free(c->role[j].urls[--c->role[j].nurls]);
	while (c->serve.nlisten > 0)
		free(c->serve.listen[--c->serve.nlisten]);
	free(c->path);
	c->path = NULL;
	for (i = 0; i < NSETTINGS; i++) {
		free(c->values[i]);
		free(c->origins[i]);
		c->values[i] = c->origins[i] = NULL;
	}
}
