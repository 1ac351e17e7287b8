/*
 * policy.c - measured speeds, the prompt-cache model, predicted times.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "measure.h"
#include "policy.h"

static struct cache *watched;

static void
speed_key(const struct role *r, const char *model, char key[CACHE_KEY_LEN + 1])
{
	cache_server_key("speed", r->urls[0], model, key);
}

void
speed_get(const struct role *r, const char *model, struct cache *cache,
    struct speed *s)
{
	char key[CACHE_KEY_LEN + 1];
	struct buf b = BUF_INIT;
	double p, d, l, o = 0;
	int np, nd;

	memset(s, 0, sizeof(*s));
	s->prefill = r->prefill_tps > 0 ? r->prefill_tps : 1000;
	s->decode = r->decode_tps > 0 ? r->decode_tps : 30;
	if (cache == NULL || r->nurls == 0)
		return;
	speed_key(r, model, key);
	if (cache_read(cache, key, &b) && sscanf(buf_str(&b),
	    "%lf %d %lf %d %lf %lf", &p, &np, &d, &nd, &l, &o) >= 5 &&
	    np >= 0 && np <= SPEED_ANSWERS && nd >= 0 &&
	    nd <= SPEED_ANSWERS && l >= 0 && o >= 0 && o < 1e7) {
		if (np > 0 && p > 0) {
			s->prefill = p;
			s->nprefill = np;
		}
		if (nd > 0 && d > 0) {
			s->decode = d;
			s->ndecode = nd;
		}
		s->load_ms = l;
		s->overhead_ms = o;
	}
	buf_free(&b);
}

/* A running mean of the last SPEED_ANSWERS samples, about. */
static void
learn(double *mean, int *n, double x)
{
	if (*n < SPEED_ANSWERS)
		(*n)++;
	*mean = *n == 1 ? x : *mean + (x - *mean) / *n;
}

/*
 * Speeds from one answer.  Ollama gives the durations; for an OpenAI
 * server the time to the first byte is the prefill and the rest the
 * decoding.  Prefilled are the tokens the server evaluated: a server
 * that counts the whole prompt (Ollama before 0.30, llama-server with
 * its cache counted) evaluated only what its prompt cache lacked, which
 * the caller predicted.
 */
static void
observe(const struct chat_xfer *x)
{
	jv f = x->stream.final;
	const char *model = x->model != NULL ? x->model : x->role->model;
	double pec, ped, ec, ed, ld, pre, t;
	char key[CACHE_KEY_LEN + 1];
	struct buf b = BUF_INIT;
	struct speed s;
	int changed = 0;

	if (watched == NULL || watched->dir == NULL ||
	    jv_get_kind(f) != JV_KIND_OBJECT || model == NULL)
		return;
	speed_get(x->role, model, watched, &s);
	if (s.nprefill == 0)	/* the configured speed teaches nothing */
		s.prefill = 0;
	if (s.ndecode == 0)
		s.decode = 0;
	pec = chat_number(f, "prompt_eval_count");
	ped = chat_number(f, "prompt_eval_duration");
	ec = chat_number(f, "eval_count");
	ed = chat_number(f, "eval_duration");
	ld = chat_number(f, "load_duration");
	pre = pec;
	if (x->prefill_hint > 0 && (double)x->prefill_hint < pre)
		pre = (double)x->prefill_hint;
	t = ped > 0 ? ped / 1e9 : x->role->api == API_OPENAI ?
	    x->ms_first / 1000 : 0;
	if (pre >= SPEED_SMALL && t > 0) {
		learn(&s.prefill, &s.nprefill, pre / t);
		changed = 1;
	}
	t = ed > 0 ? ed / 1e9 : x->role->api == API_OPENAI ?
	    (x->ms_total - x->ms_first) / 1000 : 0;
	if (ec >= 8 && t > 0) {
		learn(&s.decode, &s.ndecode, ec / t);
		changed = 1;
	}
	if (ld >= 0) {
		s.load_ms = s.load_ms == 0 ? ld / 1e6 :
		    s.load_ms + (ld / 1e6 - s.load_ms) / SPEED_ANSWERS;
		changed = 1;
	}
	/* What the first byte took beyond the server's own work. */
	if (ped > 0 && x->ms_first > 0) {
		t = x->ms_first - ped / 1e6 - (ld > 0 ? ld / 1e6 : 0);
		if (t < 0)
			t = 0;
		s.overhead_ms = s.overhead_ms == 0 ? t :
		    s.overhead_ms + (t - s.overhead_ms) / SPEED_ANSWERS;
		changed = 1;
	}
	if (!changed)
		return;
	speed_key(x->role, model, key);
	buf_printf(&b, "%.2f %d %.2f %d %.3f %.3f", s.prefill, s.nprefill,
	    s.decode, s.ndecode, s.load_ms, s.overhead_ms);
	cache_put(watched, key, b.p, b.len);
	buf_free(&b);
	log_event(LOG_INFO, "speed", "role", 's', x->role->name,
	    "model", 's', model,
	    "prefill_tps", 'f', s.prefill, "prefill_answers", 'i',
	    (long)s.nprefill, "decode_tps", 'f', s.decode,
	    "decode_answers", 'i', (long)s.ndecode, "load_ms", 'f',
	    s.load_ms, "overhead_ms", 'f', s.overhead_ms, (const char *)NULL);
}

void
speed_watch(struct cache *cache)
{
	watched = cache;
	backend_observer = cache != NULL ? observe : NULL;
}

static void
memo_key(const struct role *r, const char *model, char key[CACHE_KEY_LEN + 1])
{
	cache_server_key("prompt", r->urls[0], model, key);
}

/* Message i's hash: 16 hex digits of its JSON's SHA-256. */
static void
msg_hash(jv msg, char out[17])
{
	char key[CACHE_KEY_LEN + 1];
	jv s = jv_dump_string(msg, 0);
	const char *p = jv_string_value(s);
	size_t n = (size_t)jv_string_length_bytes(jv_copy(s));

	cache_key(&p, &n, 1, key);
	memcpy(out, key, 16);
	out[16] = '\0';
	jv_free(s);
}

void
prompt_memo_get(const struct role *r, const char *model,
    struct cache *cache, struct prompt_memo *m)
{
	char key[CACHE_KEY_LEN + 1], h[17];
	struct buf b = BUF_INIT;
	const char *p, *nl;
	size_t t;
	int cap = 0;

	memset(m, 0, sizeof(*m));
	if (cache == NULL || r->nurls == 0)
		return;
	memo_key(r, model, key);
	if (!cache_read(cache, key, &b)) {
		buf_free(&b);
		return;
	}
	for (p = buf_str(&b); *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL ||
		    sscanf(p, "%16[0-9a-f] %zu", h, &t) != 2 ||
		    strlen(h) != 16)
			break;	/* a damaged memo ends there */
		if (m->n == cap) {
			cap = cap ? cap * 2 : 64;
			m->hash = xrealloc(m->hash, sizeof(*m->hash) *
			    (size_t)cap);
			m->tokens = xrealloc(m->tokens, sizeof(*m->tokens) *
			    (size_t)cap);
		}
		memcpy(m->hash[m->n], h, 17);
		m->tokens[m->n++] = t;
	}
	buf_free(&b);
}

void
prompt_memo_put(const struct role *r, const char *model,
    struct cache *cache, const struct chat *c, enum est_method method)
{
	char key[CACHE_KEY_LEN + 1], h[17];
	struct buf b = BUF_INIT;
	struct msg_size sz;
	int i, n = chat_count(c);

	if (cache == NULL || r->nurls == 0 || c->shape == CHAT_TEXT)
		return;
	for (i = 0; i < n; i++) {
		jv msg = jv_array_get(jv_copy(c->messages), i);

		msg_hash(jv_copy(msg), h);
		measure_message(msg, method, &sz);
		jv_free(msg);
		buf_printf(&b, "%s %zu\n", h, sz.tokens);
	}
	memo_key(r, model, key);
	cache_put(cache, key, b.p != NULL ? b.p : "", b.len);
	buf_free(&b);
}

void
prompt_memo_free(struct prompt_memo *m)
{
	free(m->hash);
	free(m->tokens);
	memset(m, 0, sizeof(*m));
}

size_t
prompt_memo_new(const struct prompt_memo *m, const struct chat *c,
    enum est_method method, size_t *kept)
{
	struct msg_size sz;
	size_t all = 0;
	char h[17];
	int i, n = chat_count(c), same = 1;

	*kept = 0;
	for (i = 0; i < n; i++) {
		jv msg = jv_array_get(jv_copy(c->messages), i);

		if (same && i < m->n) {
			msg_hash(jv_copy(msg), h);
			same = strcmp(h, m->hash[i]) == 0;
		} else
			same = 0;
		measure_message(msg, method, &sz);
		jv_free(msg);
		if (same)
			*kept += sz.tokens;
		all += sz.tokens;
	}
	return all - *kept;
}

double
policy_predict(const struct candidate *k, const struct speed *g0,
    const struct speed *g1, int jobs)
{
	double ms = 0;
	int side = jobs < 1 ? 1 : jobs;

	if (k->helper_calls > 0) {
		if (side > k->helper_calls)
			side = k->helper_calls;
		ms += (double)k->helper_in * 1000 / g1->prefill;
		ms += (double)k->helper_out * 1000 / g1->decode / side;
		ms += g1->overhead_ms * ((k->helper_calls + side - 1) / side);
	}
	return ms + g0->overhead_ms + (double)k->prefill * 1000 / g0->prefill;
}

int
policy_pick(struct candidate *v, int n, const struct speed *g0,
    const struct speed *g1, int jobs)
{
	int i, best = -1;

	for (i = 0; i < n; i++)
		v[i].ms = policy_predict(&v[i], g0, g1, jobs);
	for (i = 0; i < n; i++) {
		double d, slack;

		if (!v[i].fits || v[i].skipped)
			continue;
		if (best < 0) {
			best = i;
			continue;
		}
		d = v[i].ms - v[best].ms;
		slack = v[best].ms * POLICY_TIE;
		if (slack < POLICY_TIE_MS)
			slack = POLICY_TIE_MS;
		if (d < -slack || (d <= slack && v[i].kept > v[best].kept))
			best = i;
	}
	return best;
}
