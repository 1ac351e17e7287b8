/*
 * route.c - estimate, condense by thresholds, fit the context, answer.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "measure.h"
#include "policy.h"
#include "request.h"
#include "route.h"

void
route_opts_init(struct route_opts *o)
{
	memset(o, 0, sizeof(*o));
	condense_opts_init(&o->b);
	mr_opts_init(&o->mr);
	o->gen.prompt_eval_count = -1;
	o->method = EST_QWEN;
}

static long
request_option(const struct chat *c, const char *key)
{
	jv opts, v;
	long n = 0;

	if (jv_get_kind(c->doc) != JV_KIND_OBJECT)
		return 0;
	opts = jv_object_get(jv_copy(c->doc), jv_string("options"));
	if (jv_get_kind(opts) == JV_KIND_OBJECT) {
		v = jv_object_get(opts, jv_string(key));
		if (jv_get_kind(v) == JV_KIND_NUMBER &&
		    jv_number_value(v) > 0 && jv_number_value(v) < 1e9)
			n = (long)jv_number_value(v);
		jv_free(v);
	} else
		jv_free(opts);
	return n;
}

/* Does this failure say GPU0 is not there (or the run was stopped)? */
static int
gpu0_gone(int st)
{
	return st == LR_UNREACHABLE || st == LR_TIMEOUT || st > 128;
}

long
route_model_window(const struct role *r, const char *model,
    struct cache *cache, int ask, const char **from, struct lr_err *e)
{
	char key[CACHE_KEY_LEN + 1], *end;
	struct buf b = BUF_INIT;
	long long t;
	long n;

	e->status = 0;
	*from = "unknown";
	if (r->api != API_OLLAMA || r->nurls == 0)
		return 0;
	cache_server_key("context_length", r->urls[0], model, key);
	if (cache != NULL && cache_get(cache, key, &b)) {
		n = strtol(buf_str(&b), &end, 10);
		if (n > 0) {
			buf_free(&b);
			*from = "cache";
			return n;
		}
		/* "0 TIME": the lookup timed out at TIME; not asked again
		 * for a while, so that a hung server costs one wait. */
		t = strtoll(end, NULL, 10);
		buf_free(&b);
		if (n == 0 && t > 0 && time(NULL) >= t &&
		    time(NULL) - t < ROUTE_SHOW_RETRY) {
			if (ask)
				lr_warn("%s's /api/show timed out %lld s ago: "
				    "the model's context window is unknown "
				    "(asked again after %d minutes)", r->name,
				    (long long)(time(NULL) - t),
				    ROUTE_SHOW_RETRY / 60);
			return 0;
		}
	}
	buf_free(&b);
	if (!ask)
		return 0;
	if (backend_context_length(r, model, &n, e) != 0) {
		if (e->status == LR_TIMEOUT && cache != NULL) {
			buf_printf(&b, "0 %lld", (long long)time(NULL));
			cache_put(cache, key, b.p, b.len);
			buf_free(&b);
		}
		return 0;
	}
	e->status = 0;	/* an earlier URL may have failed */
	buf_printf(&b, "%ld", n);
	if (cache != NULL)
		cache_put(cache, key, b.p, b.len);
	buf_free(&b);
	*from = "/api/show";
	return n;
}

void
route_helper_window(struct role *r, const char *model, struct cache *cache)
{
	const char *from;
	struct lr_err e;
	long n = route_model_window(r, model, cache, 1, &from, &e);

	if (e.status != 0) {
		/* Not there: the condensing falls back at once. */
		if (e.status == LR_UNREACHABLE || e.status == LR_TIMEOUT)
			backend_mark_down(r, &e);
		return;
	}
	if (n > 0 && (r->num_ctx <= 0 || n < r->num_ctx)) {
		log_event(LOG_INFO, "helper_window", "role", 's', r->name,
		    "num_ctx", 'i', n, "was", 'i', r->num_ctx, "from", 's',
		    from, (const char *)NULL);
		r->num_ctx = n;
	}
}

/*
 * GPU0's context window for model: configured, else the client's
 * options.num_ctx, else the model's from /api/show (remembered in the
 * cache), else 0 (unknown).  *from says which.
 */
static long
context_window(const struct chat *c, const struct role *r, const char *model,
    long fixed, struct cache *cache, int ask, const char **from,
    struct lr_err *e)
{
	long n;

	e->status = 0;
	*from = "configuration";
	if (r->num_ctx > 0)
		return r->num_ctx;
	*from = "this server";
	if (fixed > 0)
		return fixed;
	*from = "request";
	if ((n = request_option(c, "num_ctx")) > 0)
		return n;
	n = route_model_window(r, model, cache, ask, from, e);
	/* A server not there is the caller's error; else go on. */
	if (e->status != 0 && !gpu0_gone(e->status)) {
		lr_warn("%s; GPU0's context window is unknown", e->msg);
		e->status = 0;
	}
	return n;
}

/*
 * What GPU0's own tokenizer counts, learned from its answers: the mean
 * of prompt_eval_count over the estimate of what was sent, per server
 * and model, remembered in the cache (n: the answers it comes from, at
 * most ROUTE_RATIO_ANSWERS; 0: none yet).
 */
struct ratio {
	double r;
	int n;
	char key[CACHE_KEY_LEN + 1];
};

static void
ratio_load(const struct role *g0, const char *model, struct cache *cache,
    struct ratio *q)
{
	struct buf b = BUF_INIT;
	double r;
	int n;

	q->r = 1;
	q->n = 0;
	if (g0->nurls == 0)
		return;
	cache_server_key("token_ratio", g0->urls[0], model, q->key);
	if (cache_get(cache, q->key, &b) &&
	    sscanf(buf_str(&b), "%lf %d", &r, &n) == 2 &&
	    r >= ROUTE_RATIO_MIN && r <= ROUTE_RATIO_MAX && n > 0) {
		q->r = r;
		q->n = n;
	}
	buf_free(&b);
}

/*
 * Learn from an answer: pec tokens counted by GPU0 where sent were
 * estimated.  Not from a prompt its window cut, nor a small one, nor
 * one counted far lower (a server that leaves out what its prompt
 * cache held: only cold counts teach the ratio).
 */
static void
ratio_learn(struct ratio *q, struct cache *cache, long pec, size_t sent,
    long ctx)
{
	long slack = ctx / 32 > ROUTE_FULL_SLACK ? ctx / 32 : ROUTE_FULL_SLACK;
	struct buf b = BUF_INIT;
	double x;

	if (pec <= 0 || sent < ROUTE_RATIO_SMALL || q->key[0] == '\0' ||
	    (ctx > 0 && pec >= ctx - slack))
		return;
	x = (double)pec / (double)sent;
	if (x < ROUTE_RATIO_MIN || x > ROUTE_RATIO_MAX)
		return;
	if (q->n < ROUTE_RATIO_ANSWERS)
		q->n++;
	q->r = q->n == 1 ? x : q->r + (x - q->r) / q->n;
	buf_printf(&b, "%.4f %d", q->r, q->n);
	cache_put(cache, q->key, b.p, b.len);
	log_event(LOG_INFO, "token_ratio", "sample", 'r', x, "ratio", 'r',
	    q->r, "answers", 'i', (long)q->n, (const char *)NULL);
	buf_free(&b);
}

/*
 * Tokens t of the estimate as GPU0 will count them: by the learned
 * ratio, else with ROUTE_MARGIN percent more, to be safe.
 */
static size_t
server_tokens(const struct ratio *q, size_t t)
{
	if (q->n > 0)
		return (size_t)((double)t * q->r + 0.5);
	return t + t * ROUTE_MARGIN / 100;
}

/* The tokens the bands are judged by: the estimate's, or the server's. */
static size_t
band_tokens(const struct route_opts *o, const struct ratio *q, size_t t)
{
	return o->bands_server && q->n > 0 ? server_tokens(q, t) : t;
}

/*
 * What condensing with b (keep_last messages at the end) leaves
 * verbatim: the leading system messages, the task (when it is small
 * enough to stay) and the tail, in tokens; *head gets those of them
 * that open the chat (its system messages and the task after them).
 */
static size_t
verbatim_tokens(const struct chat *c, const struct condense_opts *o,
    int keep_last, size_t *head)
{
	struct condense_opts b = *o;
	struct msg_size sz;
	struct split sp;
	size_t t = 0;
	int i, opening = 1;

	b.keep_last = keep_last;
	condense_split(c, &b, &sp);
	*head = 0;
	for (i = 0; i < sp.n; i++) {
		jv m;

		if (i >= sp.sys_end && i < sp.tail && i != sp.task) {
			opening = 0;
			continue;
		}
		m = jv_array_get(jv_copy(c->messages), i);
		measure_message(m, o->method, &sz);
		jv_free(m);
		t += sz.tokens;
		if (opening && i < sp.tail)
			*head += sz.tokens;
	}
	return t;
}

/* What no condensing can take away, in tokens. */
static size_t
verbatim_floor(const struct chat *c, const struct route_opts *o)
{
	size_t head;

	return verbatim_tokens(c, &o->b, 1, &head);
}

/* Does a prompt of tokens, with the answer's reserve, fit window fit? */
static int
fits(size_t tokens, size_t reserve, long fit)
{
	return fit <= 0 || tokens + reserve <= (size_t)fit;
}

/*
 * The helper as condensing will use it: its window lowered to what its
 * server says its model holds, asked only with ask (else from the
 * cache).
 */
static void
helper_role(const struct config *cfg, const struct route_opts *o,
    struct cache *cache, int ask, struct role *g1)
{
	const char *model, *from;
	struct lr_err e;
	long n;

	*g1 = cfg->role[GPU1];
	if (o->b.extractive)
		return;
	model = o->b.model != NULL ? o->b.model : g1->model;
	if (ask) {
		route_helper_window(g1, model, cache);
		return;
	}
	n = route_model_window(g1, model, cache, 0, &from, &e);
	if (n > 0 && (g1->num_ctx <= 0 || n < g1->num_ctx))
		g1->num_ctx = n;
}

/*
 * Strategy C tried through the cache alone, nothing asked: what it
 * would ask the helper (*pl), and the chat it would send GPU0 (*c2,
 * the model-free summary standing in for what is not cached; *rp, if
 * not NULL, its chunks and cache hits).  Returns 1 with c2 to free, or
 * 0 when C would leave the chat as it is.
 */
static int
mapreduce_trial(const struct chat *c, const char *raw, size_t rawlen,
    const struct role *g1, const struct route_opts *o, struct cache *cache,
    struct mr_plan *pl, struct chat *c2, struct condense_result *rp)
{
	struct condense_result res;
	struct buf out = BUF_INIT;
	struct mr_opts mo = o->mr;
	struct lr_err e;
	int hits = cache->hits, misses = cache->misses, st, ok = 0;
	void (*on_hit)(void *, const char *) = cache->on_hit;

	memset(pl, 0, sizeof(*pl));
	cache->on_hit = NULL;	/* a trial is not a use */
	mo.plan = pl;
	mo.progress = 0;
	mo.dry_run = 0;
	mo.map_only = 0;
	log_mute(1);
	st = mapreduce(c, raw, rawlen, g1, &mo, cache, &out, &res, &e);
	log_mute(0);
	cache->hits = hits;
	cache->misses = misses;
	cache->on_hit = on_hit;
	if (rp != NULL)
		*rp = res;
	if (st == 0 && res.how != NULL && strcmp(res.how, "mapreduce") == 0) {
		if (chat_parse(out.p, out.len, c->shape == CHAT_TEXT, c2,
		    &e) == 0)
			ok = 1;
		else
			chat_free(c2);
	}
	buf_free(&out);
	return ok;
}

/* The cost policy's candidates for one request, and its pick. */
#define CANDIDATES	4
#define INTERIM		3	/* the index of C with stand-ins */
struct choice {
	struct candidate v[CANDIDATES];
	enum strategy strat[CANDIDATES];
	int n, pick;		/* pick -1: none fits */
	struct speed g0, g1;
	int jobs;
	struct chat trial;	/* C through the cache, when have_trial */
	struct condense_result trial_res;
	int have_trial;
};

static void
choice_free(struct choice *ch)
{
	if (ch->have_trial)
		chat_free(&ch->trial);
	ch->have_trial = 0;
}

/*
 * The time to GPU0's first answer token of each way to answer chat c:
 * direct; B, the helper reading the whole middle; and C with what the
 * cache holds.  GPU0 prefills what its prompt cache lacks (the memo of
 * its last prompt); a helper that is down costs nothing with the
 * model-free fallback, and rules B and C out with the others.
 */
static void
choose(const struct chat *c, const char *raw, size_t rawlen,
    const struct config *cfg, const struct route_opts *o,
    const struct role *g1, struct cache *cache, const struct ratio *q,
    const char *model, long fit, size_t reserve, struct choice *ch)
{
	const struct role *g0 = &cfg->role[GPU0];
	int helper = !o->b.extractive && !backend_role_down(g1, NULL);
	int lost = !o->b.extractive && !helper &&
	    o->b.on_failure != FAIL_EXTRACTIVE;
	size_t tokens = measure_tokens(c, o->method), kept, head, verb;
	struct prompt_memo m;
	struct candidate *k;
	struct mr_plan pl;

	memset(ch, 0, sizeof(*ch));
	ch->n = 3;
	speed_get(g0, model, cache, &ch->g0);
	speed_get(g1, o->b.model != NULL ? o->b.model : g1->model, cache,
	    &ch->g1);
	ch->jobs = o->mr.jobs;
	if (g1->parallel > 0 && ch->jobs > g1->parallel)
		ch->jobs = (int)g1->parallel;
	prompt_memo_get(g0, model, cache, &m);

	k = &ch->v[0];
	ch->strat[0] = STRAT_DIRECT;
	k->name = "direct";
	(void)prompt_memo_new(&m, c, o->method, &kept);
	k->tokens = server_tokens(q, tokens);
	k->kept = server_tokens(q, kept);
	k->fits = fits(k->tokens, reserve, fit);

	k = &ch->v[1];
	ch->strat[1] = STRAT_SUMMARIZE;
	k->name = "summarize";
	verb = verbatim_tokens(c, &o->b, o->b.keep_last, &head);
	k->tokens = server_tokens(q, verb + o->b.target);
	k->kept = server_tokens(q, kept < head ? kept : head);
	if (helper) {
		k->helper_calls = 1;
		k->helper_in = tokens > verb ? tokens - verb : 0;
		k->helper_out = o->b.target;
	}
	/* B is no candidate when the helper could read only the newest
	 * part of the middle: the rest would be lost, not condensed. */
	k->fits = tokens > verb + o->b.target && !lost &&
	    (g1->num_ctx <= 0 || tokens - verb + o->b.target + 400 <=
	    (size_t)g1->num_ctx) && fits(k->tokens, reserve, fit);

	k = &ch->v[2];
	ch->strat[2] = STRAT_MAPREDUCE;
	k->name = "mapreduce";
	/* GPU0 costs C its overhead at least: when direct fits and costs
	 * no more than a tie beyond it, C cannot win, and its trial (a
	 * map-reduction through the cache, on the critical path) is
	 * spared. */
	ch->v[0].prefill = ch->v[0].tokens > ch->v[0].kept ?
	    ch->v[0].tokens - ch->v[0].kept : 0;
	if (ch->v[0].fits && policy_predict(&ch->v[0], &ch->g0, &ch->g1,
	    ch->jobs) - ch->g0.overhead_ms <= POLICY_TIE_MS)
		k->skipped = 1;
	else if (mapreduce_trial(c, raw, rawlen, g1, o, cache, &pl,
	    &ch->trial, &ch->trial_res)) {
		ch->have_trial = 1;
		(void)prompt_memo_new(&m, &ch->trial, o->method, &kept);
		k->tokens = server_tokens(q, measure_tokens(&ch->trial,
		    o->method));
		k->kept = server_tokens(q, kept);
		if (helper) {
			k->helper_calls = pl.calls;
			k->helper_in = pl.tokens_in;
			k->helper_out = pl.tokens_out;
		}
		k->fits = !(lost && pl.calls > 0) &&
		    fits(k->tokens, reserve, fit);
		/*
		 * The trial's own chat, stand-ins and all, at once: only
		 * when direct does not fit, so that the chat must be
		 * condensed anyway, not to trade a chat that fits for
		 * model-free summaries.
		 */
		if (o->interim && helper && pl.calls > 0 && !ch->v[0].fits) {
			ch->v[INTERIM] = *k;
			ch->v[INTERIM].name = "interim";
			ch->v[INTERIM].helper_calls = 0;
			ch->v[INTERIM].helper_in = ch->v[INTERIM].helper_out = 0;
			ch->v[INTERIM].fits = fits(k->tokens, reserve, fit);
			ch->strat[INTERIM] = STRAT_MAPREDUCE;
			ch->n = CANDIDATES;
		}
	}
	for (k = ch->v; k < ch->v + ch->n; k++)
		k->prefill = k->tokens > k->kept ? k->tokens - k->kept : 0;
	ch->pick = policy_pick(ch->v, ch->n, &ch->g0, &ch->g1, ch->jobs);
	prompt_memo_free(&m);
}

/* The candidates, for --explain. */
static jv
choice_json(const struct choice *ch)
{
	jv a = jv_array(), v;
	int i;

	for (i = 0; i < ch->n; i++) {
		const struct candidate *k = &ch->v[i];

		v = jv_object_set(jv_object(), jv_string("strategy"),
		    jv_string(k->name));
		v = jv_object_set(v, jv_string("fits"), k->skipped ? jv_null() :
		    jv_bool(k->fits));
		v = jv_object_set(v, jv_string("gpu0_tokens"),
		    jv_number((double)k->tokens));
		v = jv_object_set(v, jv_string("gpu0_prefill"),
		    jv_number((double)k->prefill));
		v = jv_object_set(v, jv_string("helper_requests"),
		    jv_number(k->helper_calls));
		v = jv_object_set(v, jv_string("helper_tokens"),
		    jv_number((double)k->helper_in));
		v = jv_object_set(v, jv_string("predicted_ms"), k->skipped ?
		    jv_null() : jv_number((double)(long)(k->ms + 0.5)));
		a = jv_array_append(a, v);
	}
	return a;
}

static void
log_choice(const struct choice *ch)
{
	int i;

	for (i = 0; i < ch->n; i++)
		log_event(LOG_INFO, "candidate", "strategy", 's',
		    ch->v[i].name, "fits", 's', ch->v[i].skipped ? "skipped" :
		    ch->v[i].fits ? "yes" : "no",
		    "gpu0_tokens", 'i', (long)ch->v[i].tokens,
		    "gpu0_prefill", 'i', (long)ch->v[i].prefill,
		    "helper_requests", 'i', (long)ch->v[i].helper_calls,
		    "helper_tokens", 'i', (long)ch->v[i].helper_in,
		    "predicted_ms", 'f', ch->v[i].skipped ? -1.0 : ch->v[i].ms,
		    (const char *)NULL);
	log_event(LOG_INFO, "policy", "policy", 's', "cost",
	    "strategy", 's', ch->pick >= 0 ? ch->v[ch->pick].name : "none",
	    "predicted_ms", 'f', ch->pick >= 0 ? ch->v[ch->pick].ms : -1.0,
	    (const char *)NULL);
}

/* A server's speeds, for --explain. */
static jv
speed_json(jv v, const struct speed *s)
{
	v = jv_object_set(v, jv_string("prefill_tps"),
	    jv_number((double)(long)(s->prefill * 10 + 0.5) / 10));
	v = jv_object_set(v, jv_string("decode_tps"),
	    jv_number((double)(long)(s->decode * 10 + 0.5) / 10));
	v = jv_object_set(v, jv_string("speeds_from"), jv_string(
	    s->nprefill > 0 || s->ndecode > 0 ? "measured" : "configuration"));
	v = jv_object_set(v, jv_string("speed_answers"),
	    jv_number(s->nprefill > s->ndecode ? s->nprefill : s->ndecode));
	v = jv_object_set(v, jv_string("load_ms"),
	    jv_number((double)(long)(s->load_ms * 10 + 0.5) / 10));
	return jv_object_set(v, jv_string("overhead_ms"),
	    jv_number((double)(long)(s->overhead_ms * 10 + 0.5) / 10));
}

/*
 * Room for the answer: the request's num_predict, or the default for
 * none, -1 (no limit) or -2 (fill the context); at most half the window.
 */
static size_t
answer_reserve(const struct chat *c, long fit)
{
	size_t reserve = (size_t)request_option(c, "num_predict");

	if (reserve == 0)
		reserve = ROUTE_ANSWER_RESERVE;
	if (fit > 0 && reserve > (size_t)fit / 2)
		reserve = (size_t)fit / 2;
	return reserve;
}

/*
 * The strategy for chat c, s by the thresholds: with the cost policy
 * the candidates' fastest (ch filled; s when none fits); with the
 * thresholds s, but a band-B chat whose map-reduction the cache holds
 * whole is map-reduced, which asks the helper nothing.
 */
static enum strategy
decide(const struct chat *c, const char *raw, size_t rawlen,
    const struct config *cfg, const struct route_opts *o,
    const struct role *g1, struct cache *cache, const struct ratio *q,
    const char *model, long fit, enum strategy s, struct choice *ch)
{
	struct mr_plan pl;
	struct chat c2;

	if (cfg->policy == POLICY_COST) {
		choose(c, raw, rawlen, cfg, o, g1, cache, q, model, fit,
		    answer_reserve(c, fit), ch);
		return ch->pick >= 0 ? ch->strat[ch->pick] : s;
	}
	if (s != STRAT_SUMMARIZE || o->b.extractive ||
	    !mapreduce_trial(c, raw, rawlen, g1, o, cache, &pl, &c2, NULL))
		return s;
	chat_free(&c2);
	if (pl.calls > 0)
		return s;
	log_event(LOG_INFO, "band", "strategy", 's', "mapreduce", "was", 's',
	    "summarize", "why", 's', "its summaries are all in the cache",
	    (const char *)NULL);
	return STRAT_MAPREDUCE;
}

/* A role's first URL as --explain shows it: without its password. */
static jv
shown_url(const struct role *r)
{
	struct buf b = BUF_INIT;
	jv v;

	buf_add_redacted(&b, r->urls[0]);
	v = jv_string(buf_str(&b));
	buf_free(&b);
	return v;
}

static int
dry_run(const struct chat *c, const char *raw, size_t rawlen,
    const struct config *cfg, const struct route_opts *o, struct cache *cache,
    FILE *out)
{
	const struct role *g0 = &cfg->role[GPU0];
	const char *model = request_model(c, g0, o->gen.model), *from;
	struct lr_err e;
	long ctx = context_window(c, g0, model, o->fixed_num_ctx, cache, 0,
	    &from, &e);
	struct choice ch;
	struct speed sp;
	struct role g1;
	struct ratio q;
	size_t tokens = measure_tokens(c, o->method);
	enum strategy s;
	jv r, v;

	memset(&ch, 0, sizeof(ch));
	ratio_load(g0, model, cache, &q);
	helper_role(cfg, o, cache, 0, &g1);
	s = strategy_pick(band_tokens(o, &q, tokens), cfg->a_max, cfg->b_max);
	s = decide(c, raw, rawlen, cfg, o, &g1, cache, &q, model, ctx, s, &ch);
	r = measure_report(c, o->method, cfg->a_max, cfg->b_max, rawlen, 0);
	r = jv_object_set(r, jv_string("strategy"),
	    jv_string(strategy_name(s)));
	r = jv_object_set(r, jv_string("bands"), jv_string(o->bands_server ?
	    "server" : "estimate"));
	r = jv_object_set(r, jv_string("policy"), jv_string(
	    cfg->policy == POLICY_COST ? "cost" : "thresholds"));
	if (cfg->policy == POLICY_COST)
		r = jv_object_set(r, jv_string("candidates"), choice_json(&ch));
	v = jv_object_set(jv_object(), jv_string("url"), shown_url(g0));
	v = jv_object_set(v, jv_string("model"), jv_string(model));
	v = jv_object_set(v, jv_string("num_ctx"), ctx > 0 ?
	    jv_number((double)ctx) : jv_null());
	v = jv_object_set(v, jv_string("num_ctx_from"), jv_string(from));
	v = jv_object_set(v, jv_string("token_ratio"), q.n > 0 ?
	    jv_number((double)(long)(q.r * 1000 + 0.5) / 1000) : jv_null());
	v = jv_object_set(v, jv_string("token_ratio_answers"),
	    jv_number(q.n));
	v = jv_object_set(v, jv_string("tokens"), jv_number((double)
	    server_tokens(&q, tokens)));
	speed_get(g0, model, cache, &sp);
	r = jv_object_set(r, jv_string("gpu0"), speed_json(v, &sp));
	v = jv_object_set(jv_object(), jv_string("url"), shown_url(&g1));
	v = jv_object_set(v, jv_string("model"), jv_string(
	    o->b.model != NULL ? o->b.model : g1.model));
	speed_get(&g1, o->b.model != NULL ? o->b.model : g1.model, cache, &sp);
	r = jv_object_set(r, jv_string("gpu1"), speed_json(v, &sp));
	v = jv_dump_string(r, JV_PRINT_PRETTY | JV_PRINT_INDENT_FLAGS(2));
	fprintf(out, "%s\n", jv_string_value(v));
	jv_free(v);
	choice_free(&ch);
	return 0;
}

/*
 * Condensing harder, try by try: the last chunk summarized too, smaller
 * targets, chunks and tails.
 */
static void
harder(struct route_opts *h, const struct route_opts *o, int k)
{
	*h = *o;
	h->mr.c.target = o->mr.c.target >> k;
	h->mr.c.preserve = o->mr.c.preserve >> k;
	h->mr.chunk_tokens = o->mr.chunk_tokens >> (k > 1 ? k - 1 : 0);
	h->mr.chunk_target = o->mr.chunk_target >> k;
	/* Floors, but never above what was asked for. */
	if (h->mr.chunk_tokens < 500)
		h->mr.chunk_tokens = o->mr.chunk_tokens < 500 ?
		    o->mr.chunk_tokens : 500;
	if (h->mr.chunk_target < 32)
		h->mr.chunk_target = o->mr.chunk_target < 32 ?
		    o->mr.chunk_target : 32;
	if (h->mr.c.target < 64)
		h->mr.c.target = o->mr.c.target < 64 ? o->mr.c.target : 64;
	if (h->mr.c.keep_last > (k > 1 ? 1 : 2))
		h->mr.c.keep_last = k > 1 ? 1 : 2;
	h->mr.close_last = 1;
}

/*
 * Did GPU0 evidently cut the prompt?  With its window known: the prompt
 * filled it (within ROUTE_FULL_SLACK), which leaves the answer no room
 * whatever the tokenizer, and which a server counting only what its
 * prompt cache did not hold cannot fake.  Window unknown: far fewer
 * tokens than were sent.
 */
static void
truncated(long pec, size_t sent, long ctx)
{
	long slack = ctx / 32 > ROUTE_FULL_SLACK ? ctx / 32 : ROUTE_FULL_SLACK;

	if (pec < 0)
		return;
	if (ctx > 0 && pec >= ctx - slack)
		lr_warn("GPU0 evaluated %ld prompt tokens, its whole context of "
		    "%ld, where about %zu were sent: the server evidently "
		    "truncated the prompt%s", pec, ctx, sent,
		    sent < (size_t)ctx ? " (its tokenizer counts more than the "
		    "estimate: lower the thresholds or raise num_ctx)" : "");
	else if (ctx <= 0 && (double)pec < 0.85 * (double)sent)
		lr_warn("GPU0 evaluated %ld prompt tokens where about %zu were "
		    "sent: the server evidently truncated the prompt (is its "
		    "context window smaller than %zu?)", pec, sent, sent);
}

/* --on-overflow=direct: the chat goes as it is, and the server cuts it. */
static void
overflow(size_t need, long fit, const char *from)
{
	lr_warn("the chat needs about %zu tokens with its answer even "
	    "condensed, more than GPU0's context of %ld tokens (num_ctx, from "
	    "%s): sending it unchanged (--on-overflow=direct); the server "
	    "will truncate it", need, fit, from);
}

int
route(const struct chat *c, const char *raw, size_t rawlen,
    const struct config *cfg, struct route_opts *o, struct cache *cache,
    FILE *out, struct lr_err *e)
{
	const struct role *g0 = &cfg->role[GPU0];
	struct role g1w = cfg->role[GPU1], *g1 = &g1w;
	struct condense_result res;
	struct route_opts h;
	struct buf cond = BUF_INIT;
	struct chat c2;
	const struct chat *use = NULL;
	enum strategy s;
	size_t tokens, need = 0, reserve, sent = 0, kept;
	const char *model, *from;
	struct ratio q;
	struct choice ch;
	struct prompt_memo m;
	long ctx, fit, n, pec;
	double t0, t_start, t_gen;
	int k, st = 0, direct = 0, decided = 0, interim = 0;

	speed_watch(cache);	/* every answer teaches its server's speed */
	memset(&ch, 0, sizeof(ch));
	t_start = lr_now_ms();
	tokens = measure_tokens(c, o->method);
	model = request_model(c, g0, o->gen.model);
	ratio_load(g0, model, cache, &q);
	s = strategy_pick(band_tokens(o, &q, tokens), cfg->a_max, cfg->b_max);
	log_event(LOG_INFO, "route", "tokens", 'i', (long)tokens,
	    "a_max", 'i', cfg->a_max, "b_max", 'i', cfg->b_max,
	    "strategy", 's', strategy_name(s), (const char *)NULL);
	if (o->dry_run)
		return dry_run(c, raw, rawlen, cfg, o, cache, out);
	ctx = context_window(c, g0, model, o->serve ? o->fixed_num_ctx : 0,
	    cache, 1, &from, e);
	if (e->status != 0)
		return e->status;	/* GPU0 is not there: before any work */
	/* Not asked: is GPU0 there at all, before GPU1 works for it? */
	if ((s != STRAT_DIRECT || cfg->policy == POLICY_COST) && !o->serve &&
	    strcmp(from, "/api/show") != 0 && (st = backend_probe(g0, e)) != 0)
		return st;
	/* The window the chat must fit: a client's smaller one narrows it. */
	fit = ctx;
	if (o->serve && (n = request_option(c, "num_ctx")) > 0 &&
	    (fit <= 0 || n < fit))
		fit = n;
	memset(&o->info, 0, sizeof(o->info));
	o->info.strategy = s;
	o->info.tokens = o->info.tokens_sent = tokens;
	o->info.num_ctx = ctx;
	o->info.num_ctx_from = from;
	o->info.model = model;
	reserve = answer_reserve(c, fit);
	/* The task stays unless it alone takes half of what may be sent. */
	o->b.budget = o->mr.c.budget = fit > 0 ? (size_t)fit - reserve : 0;
	/* Refuse at once what cannot fit even condensed to the bone. */
	if (fit > 0 && server_tokens(&q, tokens) + reserve > (size_t)fit &&
	    (need = server_tokens(&q, verbatim_floor(c, o)) + reserve) >
	    (size_t)fit) {
		if (o->on_overflow != OVERFLOW_DIRECT)
			return lr_seterr(e, LR_INPUT, "the chat needs about "
			    "%zu tokens with its answer even condensed, more "
			    "than GPU0's context of %ld tokens (num_ctx, from "
			    "%s)", need, fit, fit == ctx ? from : "request");
		overflow(need, fit, fit == ctx ? from : "request");
		s = STRAT_DIRECT;	/* as it is: nothing would fit */
		direct = 1;
	}
	/* The policy; both ask for the helper's window first, which
	 * decides its chunks (and tells whether it is there). */
	if (!direct && (cfg->policy == POLICY_COST || s == STRAT_SUMMARIZE)) {
		if (!o->b.extractive)
			route_helper_window(g1, o->b.model != NULL ?
			    o->b.model : g1->model, cache);
		decided = 1;
		s = decide(c, raw, rawlen, cfg, o, g1, cache, &q, model, fit,
		    s, &ch);
		if (cfg->policy == POLICY_COST) {
			log_choice(&ch);
			interim = ch.pick == INTERIM;
		}
		o->info.strategy = s;
	}
	/* Will GPU1 be asked (llm-serve leaves it to the foreground)? */
	o->info.helper = s != STRAT_DIRECT && !direct && !o->b.extractive &&
	    !(decided && cfg->policy == POLICY_COST && ch.pick >= 0 &&
	    ch.v[ch.pick].helper_calls == 0);
	if (o->on_start != NULL && (st = o->on_start(o->hook_ctx, &o->info))) {
		choice_free(&ch);
		return st;
	}
	t0 = lr_now_ms();
	if (s != STRAT_DIRECT && !direct && !o->b.extractive && !decided)
		route_helper_window(g1, o->b.model != NULL ? o->b.model :
		    g1->model, cache);
	h = *o;
	for (k = 0; k < ROUTE_TRIES && !direct; k++) {
		if (k > 0) {
			if (s < STRAT_MAPREDUCE)
				s++;
			harder(&h, o, s == STRAT_MAPREDUCE ? k : 0);
			lr_warn("the chat needs about %zu tokens with its "
			    "answer, more than GPU0's context of %ld tokens "
			    "(num_ctx, from %s): condensing harder (%s)", need,
			    fit, fit == ctx ? from : "request", strategy_name(s));
		}
		buf_reset(&cond);
		if (s == STRAT_DIRECT)
			use = c;
		else if (k == 0 && interim) {	/* the trial is the chat */
			use = &ch.trial;
			o->info.chunks = ch.trial_res.chunks;
			o->info.cache_hits = ch.trial_res.cache_hits;
			log_event(LOG_INFO, "interim", "chunks", 'i',
			    (long)ch.trial_res.chunks, "cache_hits", 'i',
			    (long)ch.trial_res.cache_hits, "stand_ins", 'i',
			    (long)ch.v[2].helper_calls, (const char *)NULL);
		} else {
			st = s == STRAT_SUMMARIZE ?
			    condense_summarize(c, raw, rawlen, g1, &h.b, &cond,
			    &res, e) :
			    mapreduce(c, raw, rawlen, g1, &h.mr, cache, &cond,
			    &res, e);
			if (st != 0)
				break;
			o->info.chunks = res.chunks;
			o->info.cache_hits = res.cache_hits;
			/* What the next stage of the pipeline would read. */
			if (chat_parse(cond.p, cond.len, c->shape == CHAT_TEXT,
			    &c2, e) != 0) {
				chat_free(&c2);
				st = e->status;
				break;
			}
			use = &c2;
		}
		sent = measure_tokens(use, o->method);
		need = server_tokens(&q, sent) + reserve;
		if (fit <= 0 || need <= (size_t)fit)
			break;
		if (use == &c2)
			chat_free(&c2);
		use = NULL;
	}
	if (st == 0 && use == NULL && !direct &&
	    o->on_overflow == OVERFLOW_DIRECT) {
		overflow(need, fit, fit == ctx ? from : "request");
		s = STRAT_DIRECT;
		direct = 1;
	}
	if (direct) {
		use = c;
		sent = tokens;
		need = server_tokens(&q, sent) + reserve;
	}
	if (st == 0 && use == NULL)
		st = lr_seterr(e, LR_INPUT, "the chat needs about %zu tokens "
		    "with its answer even condensed, more than GPU0's context "
		    "of %ld tokens (num_ctx, from %s)", need, fit,
		    fit == ctx ? from : "request");
	o->info.strategy = s;
	o->info.condense_ms = lr_now_ms() - t0;
	if (st == 0) {
		o->info.tokens_sent = sent;
		if (o->on_answer != NULL)
			o->on_answer(o->hook_ctx, &o->info);
		h.gen.num_ctx = ctx;
		/* What GPU0's prompt cache lacks, which its speed is
		 * learned from. */
		prompt_memo_get(g0, model, cache, &m);
		h.gen.prefill_hint = (long)server_tokens(&q,
		    prompt_memo_new(&m, use, o->method, &kept));
		if (h.gen.prefill_hint == 0)
			h.gen.prefill_hint = 1;	/* known: next to none */
		prompt_memo_free(&m);
		t_gen = lr_now_ms();
		st = generate(use, g0, &h.gen, out, e);
		o->gen.prompt_eval_count = pec = h.gen.prompt_eval_count;
		o->gen.http_status = h.gen.http_status;
		if (st == 0) {
			truncated(pec, sent, ctx);
			ratio_learn(&q, cache, pec, sent, ctx);
			prompt_memo_put(g0, model, cache, use, o->method);
			log_event(LOG_INFO, "first_token", "strategy", 's',
			    strategy_name(s), "predicted_ms", 'f',
			    cfg->policy == POLICY_COST && decided &&
			    ch.pick >= 0 && ch.strat[ch.pick] == s ?
			    ch.v[ch.pick].ms : -1.0, "measured_ms", 'f',
			    t_gen - t_start + h.gen.ms_first,
			    (const char *)NULL);
		}
	}
	if (use == &c2)
		chat_free(&c2);
	choice_free(&ch);
	buf_free(&cond);
	return st;
}
