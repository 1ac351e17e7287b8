/*
 * mapreduce.c - chunks, their summaries, the cache, the reduction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mapreduce.h"
#include "measure.h"

/* A part of a chunk: a whole message, or a piece of an oversized one. */
struct piece {
	int msg;
	const char *text;
	size_t len;
	int part, nparts;	/* 1-based; nparts 1 for a whole message */
};

struct chunk {
	int from, to;		/* messages [from, to) */
	struct piece *v;
	int n, cap;
	size_t tokens;
	int closed;
	struct buf transcript;
	char key[CACHE_KEY_LEN + 1];
	int cached;
	struct buf summary;
	const char *how;	/* "cache", "helper", "extractive" */
};

struct chunks {
	struct chunk *v;
	int n, cap;
};

/* Template tokens of one message in a transcript. */
#define ENTRY_TOKENS 4

void
mr_opts_init(struct mr_opts *o)
{
	memset(o, 0, sizeof(*o));
	condense_opts_init(&o->c);
	o->c.target = MR_TARGET;
	o->chunk_tokens = MR_CHUNK_TOKENS;
	o->chunk_target = MR_CHUNK_TARGET;
	o->jobs = MR_JOBS;
}

static struct chunk *
new_chunk(struct chunks *cs, int closed)
{
	struct chunk *k;

	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? cs->cap * 2 : 16;
		cs->v = xrealloc(cs->v, sizeof(*cs->v) * (size_t)cs->cap);
	}
	k = &cs->v[cs->n++];
	memset(k, 0, sizeof(*k));
	k->closed = closed;
	k->from = -1;
	return k;
}

static void
add_piece(struct chunk *k, int msg, const char *t, size_t n, int part,
    int nparts, size_t tokens)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 8;
		k->v = xrealloc(k->v, sizeof(*k->v) * (size_t)k->cap);
	}
	k->v[k->n++] = (struct piece){ msg, t, n, part, nparts };
	if (k->from < 0)
		k->from = msg;
	k->to = msg + 1;
	k->tokens += tokens;
}

struct span {
	size_t off, len;
};

struct spans {
	struct span *v;
	int n, cap;
};

static void
add_span(struct spans *s, size_t off, size_t len)
{
	if (len == 0)
		return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, sizeof(*s->v) * (size_t)s->cap);
	}
	s->v[s->n++] = (struct span){ off, len };
}

/*
 * The units of t at a level: 0, paragraphs (ending after a blank line
 * outside code blocks); 1, lines.
 */
static void
units(const char *t, size_t len, int level, struct spans *out)
{
	size_t i = 0, start = 0, e, k, flen = 0, rest;
	char ch, fch = 0;
	int incode = 0;

	while (i < len) {
		const char *nl = memchr(t + i, '\n', len - i);

		e = nl != NULL ? (size_t)(nl - t) + 1 : len;
		k = extract_fence(t + i, e - i, &ch, &rest);
		if (!incode && k > 0) {
			incode = 1;
			fch = ch;
			flen = k;
		} else if (incode && k >= flen && ch == fch &&
		    extract_blank(t + i + rest, e - i - rest))
			incode = 0;
		if (level == 1 || (!incode && (e - i == 1 ||
		    (e - i == 2 && t[i] == '\r')))) {
			add_span(out, start, e - start);
			start = e;
		}
		i = e;
	}
	add_span(out, start, len - start);
}

/*
 * Cut t into spans of at most limit tokens: paragraphs packed together,
 * an oversized one cut into lines, an oversized line into pieces.
 */
static void
cut(const char *t, size_t base, size_t len, size_t limit, int level,
    enum est_method m, struct spans *out)
{
	struct spans u = { NULL, 0, 0 };
	size_t cur = 0, curlen = 0, curtok = 0, tk, k;
	int i;

	if (level >= 2) {	/* bytes, at a sentence or UTF-8 boundary */
		while (len > 0) {
			k = extract_trim(t + base, len, limit, m);
			if (k == 0) {
				k = 1;
				while (k < len && ((unsigned char)t[base + k] &
				    0xc0) == 0x80)
					k++;
			}
			add_span(out, base, k);
			base += k;
			len -= k;
		}
		return;
	}
	units(t + base, len, level, &u);
	for (i = 0; i < u.n; i++) {
		size_t off = base + u.v[i].off;

		tk = est_text_tokens(t + off, u.v[i].len, m);
		if (tk > limit) {
			add_span(out, cur, curlen);
			curlen = curtok = 0;
			cut(t, off, u.v[i].len, limit, level + 1, m, out);
			continue;
		}
		if (curlen > 0 && curtok + tk > limit) {
			add_span(out, cur, curlen);
			curlen = curtok = 0;
		}
		if (curlen == 0)
			cur = off;
		curlen = off + u.v[i].len - cur;
		curtok += tk;
	}
	add_span(out, cur, curlen);
	free(u.v);
}

/* A message as closed chunks of its own, cut into pieces when over. */
static void
own_chunks(struct chunks *cs, int i, struct buf *t, size_t tk, size_t limit,
    enum est_method m)
{
	struct spans sp = { NULL, 0, 0 };
	int j;

	if (tk <= limit) {
		add_piece(new_chunk(cs, 1), i, t->p, t->len, 1, 1, tk);
		return;
	}
	cut(t->p, 0, t->len, limit > ENTRY_TOKENS + 8 ? limit - ENTRY_TOKENS - 8 :
	    1, 0, m, &sp);
	for (j = 0; j < sp.n; j++)
		add_piece(new_chunk(cs, 1), i, t->p + sp.v[j].off, sp.v[j].len,
		    j + 1, sp.n, est_text_tokens(t->p + sp.v[j].off,
		    sp.v[j].len, m) + ENTRY_TOKENS + 8);
	free(sp.v);
}

/*
 * The chunks of messages [from, to): greedy from the start, on the
 * boundaries of units (a message and the tool results after it, which
 * are never parted from their call); all but the last are closed.  A
 * unit over the limit becomes closed chunks of its own: one per message,
 * an oversized message cut into pieces.
 */
static void
make_chunks(const struct chat *c, int from, int to, struct buf *texts,
    const struct mr_opts *o, struct chunks *cs)
{
	struct chunk *cur = NULL;
	size_t limit = o->chunk_tokens, tk, utk;
	size_t *mtk = xmalloc(sizeof(*mtk) * (size_t)(to - from + 1));
	int i, j, end;

	for (i = from; i < to; i++)
		mtk[i - from] = est_text_tokens(texts[i - from].p,
		    texts[i - from].len, o->c.method) + ENTRY_TOKENS;
	for (i = from; i < to; i = end) {
		/* The unit: message i and the tool results that follow. */
		for (end = i + 1; end < to &&
		    strcmp(chat_role(c, end), "tool") == 0; end++)
			;
		for (utk = 0, j = i; j < end; j++)
			if (condense_takes(c, j, o->c.summarize_system))
				utk += mtk[j - from];
		if (utk == 0)
			continue;
		if (utk > limit) {
			if (cur != NULL)
				cur->closed = 1;
			cur = NULL;
			for (j = i; j < end; j++)
				if (condense_takes(c, j, o->c.summarize_system))
					own_chunks(cs, j, &texts[j - from],
					    mtk[j - from], limit, o->c.method);
			continue;
		}
		if (cur != NULL && cur->tokens + utk > limit) {
			cur->closed = 1;
			cur = NULL;
		}
		if (cur == NULL)
			cur = new_chunk(cs, 0);
		for (j = i; j < end; j++) {
			if (!condense_takes(c, j, o->c.summarize_system))
				continue;
			tk = mtk[j - from];
			add_piece(cur, j, texts[j - from].p,
			    texts[j - from].len, 1, 1, tk);
		}
	}
	if (cur != NULL && o->close_last)
		cur->closed = 1;
	free(mtk);
}

static void
transcript(const struct chat *c, struct chunk *k)
{
	int i;

	for (i = 0; i < k->n; i++) {
		const struct piece *p = &k->v[i];

		if (p->nparts > 1)
			buf_printf(&k->transcript, "[%s] (part %d of %d)\n",
			    chat_role(c, p->msg), p->part, p->nparts);
		else
			buf_printf(&k->transcript, "[%s]\n",
			    chat_role(c, p->msg));
		buf_add(&k->transcript, p->text, p->len);
		buf_adds(&k->transcript, "\n\n");
	}
}

/* The cache key of a summary of text by model within target. */
static void
summary_key(const char *model, size_t target, const char *text, size_t len,
    char key[CACHE_KEY_LEN + 1])
{
	char ver[32], tg[32];
	const char *parts[5];
	size_t lens[5];

	snprintf(ver, sizeof(ver), "%d", PROMPT_VERSION);
	snprintf(tg, sizeof(tg), "%zu", target);
	parts[0] = "llm-route summary";
	parts[1] = ver;
	parts[2] = model;
	parts[3] = tg;
	parts[4] = text;
	lens[0] = strlen(parts[0]);
	lens[1] = strlen(ver);
	lens[2] = strlen(model);
	lens[3] = strlen(tg);
	lens[4] = len;
	cache_key(parts, lens, 5, key);
}

struct progress {
	int done, total;
	const char *what;
};

static void
on_done(struct chat_xfer *x, void *ctx)
{
	struct progress *p = ctx;

	(void)x;
	p->done++;
	fprintf(stderr, "\r%s %d/%d", p->what, p->done, p->total);
	fflush(stderr);
}

/*
 * Summaries of n texts, each within target, through the cache, at most
 * jobs at once.  sums[i] gets text i's summary; failed[i] is set with
 * errs[i] when the helper failed for it.  Returns 0, or the status of an
 * interruption.
 */
static int
summarize_all(struct buf *texts, int n, size_t target,
    const struct role *helper, const struct mr_opts *o, struct cache *cache,
    struct buf *sums, int *cached, int *failed, struct lr_err *errs,
    const char *what)
{
	const char *model = o->c.model != NULL ? o->c.model : helper->model;
	struct chat_xfer *xv, **xs;
	struct buf *bodies;
	char (*keys)[CACHE_KEY_LEN + 1];
	int *idx, m = 0, i, st = 0;
	struct progress pr = { 0, 0, what };

	keys = xmalloc(sizeof(*keys) * (size_t)(n + 1));
	idx = xmalloc(sizeof(*idx) * (size_t)(n + 1));
	xv = xmalloc(sizeof(*xv) * (size_t)(n + 1));
	xs = xmalloc(sizeof(*xs) * (size_t)(n + 1));
	bodies = xmalloc(sizeof(*bodies) * (size_t)(n + 1));
	for (i = 0; i < n; i++) {
		failed[i] = cached[i] = 0;
		summary_key(model, target, texts[i].p, texts[i].len, keys[i]);
		if (cache_get(cache, keys[i], &sums[i])) {
			cached[i] = 1;
			continue;
		}
		memset(&xv[m], 0, sizeof(xv[m]));
		memset(&bodies[m], 0, sizeof(bodies[m]));
		condense_request(helper, model, texts[i].p, texts[i].len,
		    target, &bodies[m]);
		xv[m].role = helper;
		xv[m].body = bodies[m].p;
		xv[m].body_len = bodies[m].len;
		xv[m].keep = 1;
		if (o->progress) {
			xv[m].on_done = on_done;
			xv[m].done_ctx = &pr;
		}
		xs[m] = &xv[m];
		idx[m++] = i;
	}
	pr.total = m;
	if (m > 0) {
		st = backend_run(xs, m, o->jobs);
		if (o->progress)
			fputs("\r\033[K", stderr);
		if (st <= 128)
			st = 0;
	}
	for (i = 0; i < m && st == 0; i++) {	/* interrupted: none */
		int k = idx[i];
		struct stream *s = &xv[i].stream;

		if (xv[i].status == 0 && condense_clean(s->content.p != NULL ?
		    s->content.p : "", s->content.len, target, o->c.method,
		    &sums[k]) == 0)
			cache_put(cache, keys[k], sums[k].p, sums[k].len);
		else {
			failed[k] = 1;
			errs[k] = xv[i].err;
			if (xv[i].status == 0)
				lr_seterr(&errs[k], LR_MALFORMED, "%s %s: the "
				    "summary is empty", helper->name,
				    xv[i].url);
		}
	}
	for (i = 0; i < m; i++) {
		backend_xfer_free(&xv[i]);
		buf_free(&bodies[i]);
	}
	free(keys);
	free(idx);
	free(xv);
	free(xs);
	free(bodies);
	return st;
}

static void
chunk_range(const struct chunk *k, char *out, size_t n)
{
	if (k->n == 1 && k->v[0].nparts > 1)
		snprintf(out, n, "%d (part %d of %d)", k->from + 1,
		    k->v[0].part, k->v[0].nparts);
	else if (k->to - k->from == 1)
		snprintf(out, n, "%d", k->from + 1);
	else
		snprintf(out, n, "%d-%d", k->from + 1, k->to);
}

static void
dry_run(const struct chunks *cs, const struct mr_opts *o,
    const struct role *helper, struct cache *cache, struct buf *out)
{
	const char *model = o->c.model != NULL ? o->c.model : helper->model;
	char range[64];
	int i;

	buf_adds(out, "chunk\tmessages\ttokens\tstate\tcache\n");
	for (i = 0; i < cs->n; i++) {
		struct chunk *k = &cs->v[i];
		struct buf tmp = BUF_INIT;
		const char *cached = "-";

		/* The cache is not used without it or without the helper. */
		if (k->closed && cache->dir != NULL && !o->c.extractive) {
			summary_key(model, o->chunk_target, k->transcript.p,
			    k->transcript.len, k->key);
			cached = cache_get(cache, k->key, &tmp) ? "hit" :
			    "miss";
		}
		chunk_range(k, range, sizeof(range));
		buf_printf(out, "%d\t%s\t%zu\t%s\t%s\n", i + 1, range,
		    k->tokens, k->closed ? "closed" : "open", cached);
		buf_free(&tmp);
	}
}

/*
 * The summary of the chunk summaries: their list when it is within the
 * target, else summaries of groups of them, level by level.
 */
/*
 * Parts [from, to) within target without the helper: each cut to an
 * equal share at a line, sentence or word end, so that every range of
 * messages keeps its place in the summary.
 */
static void
parts_cut(const struct buf *parts, int from, int to, size_t target,
    enum est_method m, struct buf *out)
{
	size_t share = target / (size_t)(to - from > 0 ? to - from : 1);
	int i;

	if (share < 8)
		share = 8;
	buf_reset(out);
	for (i = from; i < to; i++) {
		buf_add(out, parts[i].p, extract_trim(parts[i].p, parts[i].len,
		    share, m));
		buf_adds(out, i + 1 < to ? "\n" : "");
	}
}

/*
 * Returns 0, a status (e set) for --on-helper-failure=fail, or -1 for
 * =direct.
 */
static int
reduce(struct buf *parts, int n, const struct role *helper,
    const struct mr_opts *o, struct cache *cache, struct buf *out,
    int *levels, struct lr_err *e)
{
	struct buf *groups, *sums;
	struct lr_err *errs;
	int *cached, *failed, g, i, depth, st = 0, warned = 0;
	int was_down = backend_role_down(helper, NULL);
	size_t total, gt, tk;
	int *gfirst;

	*levels = 0;
	for (depth = 0;; depth++) {
		buf_reset(out);
		for (i = 0; i < n; i++) {
			buf_add(out, parts[i].p, parts[i].len);
			buf_adds(out, i + 1 < n ? "\n" : "");
		}
		total = est_text_tokens(out->p, out->len, o->c.method);
		if (total <= o->c.target || depth == MR_MAX_DEPTH || n == 0)
			break;
		/* Groups of consecutive parts, each within a chunk. */
		groups = xmalloc(sizeof(*groups) * (size_t)n);
		memset(groups, 0, sizeof(*groups) * (size_t)n);
		gfirst = xmalloc(sizeof(*gfirst) * (size_t)(n + 1));
		gfirst[0] = 0;
		for (i = 0, g = 0, gt = 0; i < n; i++) {
			tk = est_text_tokens(parts[i].p, parts[i].len,
			    o->c.method) + 2;
			if (groups[g].len > 0 && gt + tk > o->chunk_tokens) {
				g++;
				gfirst[g] = i;
				gt = 0;
			}
			buf_add(&groups[g], parts[i].p, parts[i].len);
			buf_adds(&groups[g], "\n\n");
			gt += tk;
		}
		g++;
		gfirst[g] = n;
		sums = xmalloc(sizeof(*sums) * (size_t)g);
		memset(sums, 0, sizeof(*sums) * (size_t)g);
		errs = xmalloc(sizeof(*errs) * (size_t)g);
		cached = xmalloc(sizeof(*cached) * (size_t)g);
		failed = xmalloc(sizeof(*failed) * (size_t)g);
		gt = g == 1 ? o->c.target : o->c.target / (size_t)g;
		if (gt < 64)
			gt = 64;
		for (i = 0; i < g; i++)
			failed[i] = 0;
		if (!o->c.extractive)
			st = summarize_all(groups, g, gt, helper, o, cache,
			    sums, cached, failed, errs, "reduce");
		for (i = 0; i < g && st == 0; i++) {
			if (failed[i] && o->c.on_failure == FAIL_FAIL) {
				*e = errs[i];
				st = e->status;
			} else if (failed[i] && o->c.on_failure == FAIL_DIRECT) {
				lr_warn("%s; passing the chat on unchanged",
				    errs[i].msg);
				st = -1;
			} else if (failed[i] || o->c.extractive) {
				/* Once: a helper known down was said so. */
				if (failed[i] && !was_down && !warned++)
					lr_warn("%s; cutting each of those parts "
					    "to its share instead", errs[i].msg);
				parts_cut(parts, gfirst[i], gfirst[i + 1], gt,
				    o->c.method, &sums[i]);
			}
		}
		for (i = 0; i < n; i++)
			buf_free(&parts[i]);
		for (i = 0; i < g; i++) {
			parts[i] = sums[i];
			buf_free(&groups[i]);
		}
		n = g;
		free(groups);
		free(gfirst);
		free(sums);
		free(errs);
		free(cached);
		free(failed);
		(*levels)++;
		log_event(LOG_INFO, "reduce", "level", 'i', (long)*levels,
		    "parts", 'i', (long)g, "tokens_in", 'i', (long)total,
		    (const char *)NULL);
		if (st != 0) {
			for (i = 0; i < n; i++)
				buf_free(&parts[i]);
			return st;
		}
	}
	/* Still over after the last level: each part to its share. */
	if (total > o->c.target)
		parts_cut(parts, 0, n, o->c.target, o->c.method, out);
	for (i = 0; i < n; i++)
		buf_free(&parts[i]);
	return 0;
}

static void
free_chunks(struct chunks *cs)
{
	int i;

	for (i = 0; i < cs->n; i++) {
		free(cs->v[i].v);
		buf_free(&cs->v[i].transcript);
		buf_free(&cs->v[i].summary);
	}
	free(cs->v);
}

/*
 * The summary of closed chunk k (sum), by the helper (failed set when it
 * failed) or the extractive compressor.  Returns 0, or a status for
 * --on-helper-failure=fail (e set), or -1 for =direct.
 */
static int
chunk_summary(const struct chat *c, struct chunk *k, int failed,
    const struct lr_err *err, const struct mr_opts *o, struct buf *sum,
    struct lr_err *e)
{
	struct xmsg *xm;
	int j;

	if (failed && o->c.on_failure == FAIL_FAIL) {
		*e = *err;
		return e->status;
	}
	if (failed && o->c.on_failure == FAIL_DIRECT) {
		lr_warn("%s; passing the chat on unchanged", err->msg);
		return -1;
	}
	xm = xmalloc(sizeof(*xm) * (size_t)k->n);
	for (j = 0; j < k->n; j++)
		xm[j] = (struct xmsg){ chat_role(c, k->v[j].msg),
		    k->v[j].text, k->v[j].len };
	buf_reset(sum);
	extract_summary(xm, k->n, o->chunk_target, o->c.method, sum);
	free(xm);
	k->how = "extractive";
	return 0;
}

int
mapreduce(const struct chat *c, const char *raw, size_t rawlen,
    const struct role *helper, const struct mr_opts *o, struct cache *cache,
    struct buf *out, struct condense_result *res, struct lr_err *e)
{
	struct split s, s2;
	struct mr_opts eff;
	struct chunks cs = { NULL, 0, 0 };
	struct items it = { NULL, 0, 0 };
	struct buf *texts, *tr = NULL, *sums = NULL, summary = BUF_INIT;
	struct lr_err *errs = NULL;
	int *cached = NULL, *failed = NULL, *idx = NULL;
	int i, n = 0, ntr = 0, open_from, levels = 0, st = 0, hits = 0;
	int nfailed = 0, first = 0;
	size_t preserved;
	char range[64];

	memset(res, 0, sizeof(*res));
	res->tokens_in = res->tokens_out = measure_tokens(c, o->c.method);
	condense_split(c, &o->c, &s);
	texts = xmalloc(sizeof(*texts) * (size_t)(s.tail - s.sys_end + 1));
	for (i = s.sys_end; i < s.tail; i++) {
		memset(&texts[i - s.sys_end], 0, sizeof(*texts));
		condense_message_text(c, i, &texts[i - s.sys_end]);
	}
	/* A chunk, the prompt and the summary must fit the helper's
	 * context, or Ollama cuts the prompt silently. */
	eff = *o;
	if (helper->num_ctx > 0) {
		long room = helper->num_ctx - (long)(o->chunk_target +
		    o->chunk_target / 2) - 400;

		if (room < 100)
			room = 100;
		if ((long)eff.chunk_tokens > room) {
			eff.chunk_tokens = (size_t)room;
			log_event(LOG_INFO, "chunk_tokens", "lowered_to", 'i',
			    room, "num_ctx", 'i', helper->num_ctx,
			    (const char *)NULL);
		}
	}
	make_chunks(c, s.sys_end, s.tail, texts, &eff, &cs);
	for (i = 0; i < cs.n; i++) {
		transcript(c, &cs.v[i]);
		n += cs.v[i].closed;
	}
	open_from = s.tail;
	if (cs.n > 0 && !cs.v[cs.n - 1].closed)
		open_from = cs.v[cs.n - 1].from;
	log_event(LOG_INFO, "chunks", "messages", 'i', (long)s.n,
	    "middle_from", 'i', (long)s.sys_end + 1,
	    "middle_to", 'i', (long)s.tail, "chunks", 'i', (long)cs.n,
	    "closed", 'i', (long)n,
	    "open_from", 'i', (long)(open_from < s.tail ? open_from + 1 : -1),
	    (const char *)NULL);
	if (o->dry_run) {
		dry_run(&cs, o, helper, cache, out);
		goto done;
	}
	if (n == 0) {
		condense_unchanged(raw, rawlen, cs.n == 0 ?
		    "nothing to condense" : "the middle fits one open chunk, "
		    "kept verbatim", out, res);
		goto done;
	}

	/* Map: the closed chunks' summaries, in chunk order. */
	tr = xmalloc(sizeof(*tr) * (size_t)n);
	sums = xmalloc(sizeof(*sums) * (size_t)n);
	errs = xmalloc(sizeof(*errs) * (size_t)n);
	cached = xmalloc(sizeof(*cached) * (size_t)n);
	failed = xmalloc(sizeof(*failed) * (size_t)n);
	idx = xmalloc(sizeof(*idx) * (size_t)n);
	for (i = 0, n = 0; i < cs.n; i++)
		if (cs.v[i].closed) {
			memset(&tr[n], 0, sizeof(*tr));
			memset(&sums[n], 0, sizeof(*sums));
			buf_add(&tr[n], cs.v[i].transcript.p,
			    cs.v[i].transcript.len);
			cached[n] = failed[n] = 0;
			idx[n++] = i;
		}
	ntr = n;
	if (!o->c.extractive)
		st = summarize_all(tr, n, o->chunk_target, helper, o, cache,
		    sums, cached, failed, errs, "map");
	res->chunks = n;
	for (i = 0; i < n; i++)
		res->cache_hits += cached[i];
	if (o->map_only) {
		res->how = "prefetch";
		goto done;
	}
	for (i = 0; i < n && st == 0; i++) {
		struct chunk *k = &cs.v[idx[i]];

		k->how = cached[i] ? "cache" : "helper";
		hits += cached[i];
		if (o->c.extractive || failed[i])
			st = chunk_summary(c, k, failed[i], &errs[i], o,
			    &sums[i], e);
		if (st != 0)
			break;
		if (failed[i] && nfailed++ == 0)
			first = i;
		chunk_range(k, range, sizeof(range));
		log_event(LOG_INFO, "chunk", "index", 'i', (long)idx[i] + 1,
		    "messages", 's', range, "tokens", 'i', (long)k->tokens,
		    "how", 's', k->how, "summary_tokens", 'i',
		    (long)est_text_tokens(sums[i].p, sums[i].len,
		    o->c.method), (const char *)NULL);
		/* The part as the reduction and the block show it. */
		buf_reset(&tr[i]);
		buf_printf(&tr[i], "Messages %s: ", range);
		buf_add(&tr[i], sums[i].p, sums[i].len);
	}
	if (st == 0 && nfailed > 0)	/* one warning for them all */
		lr_warn("%s; using the extractive summary for %d of %d "
		    "span%s%s", errs[first].msg, nfailed, n, n == 1 ? "" : "s",
		    backend_role_down(helper, NULL) ? " (GPU1 is not asked "
		    "again in this run)" : "");
	if (st == 0) {	/* reduce; reduce() takes the parts in tr[] */
		res->how = "mapreduce";
		st = reduce(tr, n, helper, o, cache, &summary, &levels, e);
		ntr = 0;
	}
	if (st == -1) {
		condense_unchanged(raw, rawlen, "the helper failed", out, res);
		st = 0;
		goto done;
	}
	if (st != 0)
		goto done;
	s2 = s;
	s2.tail = open_from;
	condense_extract(c, s.sys_end, open_from, &o->c, &it);
	preserved = extract_choose(&it, o->c.preserve);
	log_event(LOG_INFO, "mapreduce", "chunks", 'i', (long)cs.n,
	    "cache_hits", 'i', (long)hits, "levels", 'i', (long)levels,
	    (const char *)NULL);
	condense_output(c, raw, rawlen, &s2, summary.p, summary.len, &it,
	    preserved, &o->c, out, res);
done:
	for (i = 0; i < ntr; i++)	/* until reduce() took them */
		buf_free(&tr[i]);
	for (i = 0; sums != NULL && i < n; i++)
		buf_free(&sums[i]);
	free(tr);
	free(sums);
	free(errs);
	free(cached);
	free(failed);
	free(idx);
	for (i = 0; i < s.tail - s.sys_end; i++)
		buf_free(&texts[i]);
	free(texts);
	extract_free(&it);
	buf_free(&summary);
	free_chunks(&cs);
	return st;
}
