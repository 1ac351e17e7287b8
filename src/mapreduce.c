/*
 * mapreduce.c - chunks, their summaries, the cache, the spans and their
 * compactions.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sha2.h>

#include "log.h"
#include "mapreduce.h"
#include "measure.h"

/* A part of a chunk: a whole message, or a piece of an oversized one. */
struct piece {
	int msg;
	const char *text;
	size_t len;
	int part;		/* 1-based; 0 for a whole message */
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
};

struct chunks {
	struct chunk *v;
	int n, cap;
};

/* Template tokens of one message in a transcript. */
#define ENTRY_TOKENS 4
/* Tokens of a span's own lines: its heads and the extract's. */
#define SPAN_OVERHEAD 24

void
mr_opts_init(struct mr_opts *o)
{
	memset(o, 0, sizeof(*o));
	condense_opts_init(&o->c);
	o->c.target = MR_TARGET;
	o->c.preserve = MR_PRESERVE;
	o->chunk_tokens = MR_CHUNK_TOKENS;
	o->chunk_target = MR_CHUNK_TARGET;
	o->jobs = MR_JOBS;
	o->max_chunks = MR_MAX_CHUNKS;
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
    size_t tokens)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 8;
		k->v = xrealloc(k->v, sizeof(*k->v) * (size_t)k->cap);
	}
	k->v[k->n++] = (struct piece){ msg, t, n, part };
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

/*
 * The first span of cut(t[off, off+len)) within limit tokens.  Only a
 * window of the text is cut, doubled while the span reaches its end, so
 * that cutting a document piece by piece stays linear.
 */
static size_t
first_cut(const char *t, size_t off, size_t len, size_t limit,
    enum est_method m)
{
	struct spans sp = { NULL, 0, 0 };
	size_t w = limit * 16 + 256, wl, n;

	for (;;) {
		wl = w < len ? w : len;
		sp.n = 0;
		cut(t, off, wl, limit, 0, m, &sp);
		n = sp.n > 0 ? sp.v[0].len : wl;
		if (n < wl || wl == len)
			break;
		w *= 2;
	}
	free(sp.v);
	return n;
}

/* The hash a document's end marks start from: the version, the size. */
static void
mark_init(SHA2_CTX *ctx, size_t limit)
{
	char ver[48];

	snprintf(ver, sizeof(ver), "llm-route end %d %zu", PROMPT_VERSION,
	    limit);
	SHA256Init(ctx);
	SHA256Update(ctx, (const uint8_t *)ver, strlen(ver) + 1);
}

/*
 * Is there a mark at the end of t[off, e) for some line end e before
 * end: the end of a document as an earlier run read it?  Returns the
 * first such e, else 0.
 */
static size_t
marked_end(struct cache *cache, size_t limit, const char *t, size_t off,
    size_t end)
{
	char key[CACHE_KEY_LEN + 1];
	const char *nl;
	SHA2_CTX ctx, tmp;
	size_t p = off, q;

	if (cache == NULL || cache->dir == NULL)
		return 0;
	mark_init(&ctx, limit);
	while (p < end && (nl = memchr(t + p, '\n', end - p)) != NULL) {
		q = (size_t)(nl - t) + 1;
		SHA256Update(&ctx, (const uint8_t *)t + p, q - p);
		p = q;
		if (p >= end)
			break;
		tmp = ctx;
		SHA256End(&tmp, key);
		if (cache_has(cache, key))
			return p;
	}
	return 0;
}

/* Mark the end of a document's last piece (see marked_end). */
static void
mark_end(struct cache *cache, size_t limit, const char *t, size_t off,
    size_t end)
{
	char key[CACHE_KEY_LEN + 1];
	SHA2_CTX ctx;

	if (cache == NULL || cache->dir == NULL || end <= off)
		return;
	mark_init(&ctx, limit);
	SHA256Update(&ctx, (const uint8_t *)t + off, end - off);
	SHA256End(&ctx, key);
	cache_put(cache, key, "1", 1);
}

struct packer {
	struct chunks *cs;
	struct chunk *cur;	/* the chunk being filled, or NULL */
	size_t limit;
	enum est_method m;
	struct cache *marks;	/* a document's earlier ends, or NULL */
};

static void
pack_close(struct packer *pk)
{
	if (pk->cur != NULL)
		pk->cur->closed = 1;
	pk->cur = NULL;
}

static void
pack_piece(struct packer *pk, int msg, const char *t, size_t n, int part,
    size_t tokens)
{
	if (pk->cur != NULL && pk->cur->tokens + tokens > pk->limit)
		pack_close(pk);
	if (pk->cur == NULL)
		pk->cur = new_chunk(pk->cs, 0);
	add_piece(pk->cur, msg, t, n, part, tokens);
}

/*
 * An oversized message in pieces: the first fills what is left of the
 * chunk being filled (unless that is under a quarter), the rest are cut
 * to about equal sizes, so that no chunk is left small beside it.  A
 * document (marks set) is cut greedily instead, and where an earlier
 * run's input ended, so that its pieces come out again as they were.
 */
static void
pack_cut(struct packer *pk, int msg, const char *t, size_t len)
{
	size_t room = 0, off = 0, n, rtk, np, lim, e, over = ENTRY_TOKENS + 8;
	size_t plimit = pk->limit > over + 1 ? pk->limit - over : 1;
	struct spans sp = { NULL, 0, 0 };
	int part = 1, j;

	/* A chunk may be a little over: estimates do not add up exactly. */
	if (pk->cur != NULL && pk->cur->tokens < pk->limit)
		room = pk->limit - pk->cur->tokens;
	if (room < pk->limit / 4 || room <= over + 1)
		pack_close(pk);	/* also a chunk already full */
	else {
		n = first_cut(t, 0, len, room - over, pk->m);
		if (pk->marks != NULL &&
		    (e = marked_end(pk->marks, pk->limit, t, 0, n)))
			n = e;
		add_piece(pk->cur, msg, t, n, part++,
		    est_text_tokens(t, n, pk->m) + over);
		pack_close(pk);
		off = n;
	}
	while (off < len) {
		if (pk->marks != NULL) {
			n = first_cut(t, off, len - off, plimit, pk->m);
			if ((e = marked_end(pk->marks, pk->limit, t, off,
			    off + n)))
				n = e - off;
		} else {
			rtk = est_text_tokens(t + off, len - off, pk->m);
			np = (rtk + plimit - 1) / plimit;
			lim = np > 1 ? rtk / np + rtk / np / 10 : plimit;
			if (lim > plimit)
				lim = plimit;
			sp.n = 0;
			cut(t, off, len - off, lim, 0, pk->m, &sp);
			for (j = 0; j < sp.n; j++) {
				pk->cur = new_chunk(pk->cs, 0);
				add_piece(pk->cur, msg, t + sp.v[j].off,
				    sp.v[j].len, part++, est_text_tokens(t +
				    sp.v[j].off, sp.v[j].len, pk->m) + over);
				if (j + 1 < sp.n)
					pack_close(pk);
			}
			break;
		}
		pk->cur = new_chunk(pk->cs, 0);
		add_piece(pk->cur, msg, t + off, n, part++,
		    est_text_tokens(t + off, n, pk->m) + over);
		off += n;
		if (off < len)
			pack_close(pk);
	}
	free(sp.v);
}

/*
 * The chunks of the middle [from, to): greedy from the start, on the
 * boundaries of units (a message and the tool results after it, which
 * are never parted from their call); all but the last are closed.  A
 * unit over the limit is packed message by message, an oversized
 * message cut into pieces (pack_cut), and it closes its last chunk, so
 * that what is kept verbatim never starts inside it.
 */
static void
make_chunks(const struct chat *c, const struct split *s, int from, int to,
    struct buf *texts, const struct mr_opts *o, struct cache *cache,
    struct chunks *cs)
{
	struct packer pk = { cs, NULL, o->chunk_tokens, o->c.method, NULL };
	size_t *mtk = xmalloc(sizeof(*mtk) * (size_t)(to - from + 1));
	size_t utk;
	int i, j, end;

	if (c->shape == CHAT_TEXT)
		pk.marks = cache;
	for (i = from; i < to; i++)
		mtk[i - from] = est_text_tokens(texts[i - from].p,
		    texts[i - from].len, o->c.method) + ENTRY_TOKENS;
	for (i = from; i < to; i = end) {
		/* The unit: message i and the tool results that follow. */
		for (end = i + 1; end < to &&
		    strcmp(chat_role(c, end), "tool") == 0; end++)
			;
		for (utk = 0, j = i; j < end; j++)
			if (condense_takes(c, s, j))
				utk += mtk[j - from];
		if (utk == 0)
			continue;
		if (utk <= pk.limit) {
			if (pk.cur != NULL && pk.cur->tokens + utk > pk.limit)
				pack_close(&pk);
			for (j = i; j < end; j++)
				if (condense_takes(c, s, j))
					pack_piece(&pk, j, texts[j - from].p,
					    texts[j - from].len, 0,
					    mtk[j - from]);
			continue;
		}
		for (j = i; j < end; j++) {
			if (!condense_takes(c, s, j))
				continue;
			if (mtk[j - from] <= pk.limit)
				pack_piece(&pk, j, texts[j - from].p,
				    texts[j - from].len, 0, mtk[j - from]);
			else
				pack_cut(&pk, j, texts[j - from].p != NULL ?
				    texts[j - from].p : "", texts[j - from].len);
		}
		pack_close(&pk);
	}
	if (o->close_last)
		pack_close(&pk);
	free(mtk);
}

static void
transcript(const struct chat *c, struct chunk *k)
{
	int i;

	for (i = 0; i < k->n; i++) {
		const struct piece *p = &k->v[i];

		if (p->part > 0)	/* a piece: no count that grows */
			buf_printf(&k->transcript, "[%s] (part %d)\n",
			    chat_role(c, p->msg), p->part);
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

/* failed[i] of a summary the helper was not asked for (--max-chunks). */
#define NOT_ASKED 2

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
 * errs[i] when the helper failed for it, or to NOT_ASKED when it was
 * not in the cache and the helper was not to be asked: not allow[i]
 * (allow may be NULL), or no more of the *budget helper requests left,
 * which go to the newest texts first.  Returns 0, or the status of an
 * interruption.
 */
static int
summarize_all(struct buf *texts, int n, size_t target,
    const struct role *helper, const struct mr_opts *o, struct cache *cache,
    const int *allow, size_t *budget, struct buf *sums, int *cached,
    int *failed, struct lr_err *errs, const char *what)
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
	for (i = n - 1; i >= 0; i--) {	/* the budget: newest first */
		failed[i] = cached[i] = 0;
		summary_key(model, target, texts[i].p, texts[i].len, keys[i]);
		if (cache_get(cache, keys[i], &sums[i]))
			cached[i] = 1;
		else if ((allow != NULL && !allow[i]) || *budget == 0)
			failed[i] = NOT_ASKED;
		else
			(*budget)--;
	}
	for (i = 0; i < n; i++) {
		if (cached[i] || failed[i])
			continue;
		if (o->plan != NULL) {	/* a trial: counted, not asked */
			o->plan->calls++;
			o->plan->tokens_in += est_text_tokens(texts[i].p,
			    texts[i].len, o->c.method);
			o->plan->tokens_out += target;
			failed[i] = 1;
			memset(&errs[i], 0, sizeof(errs[i]));
			continue;
		}
		memset(&xv[m], 0, sizeof(xv[m]));
		memset(&bodies[m], 0, sizeof(bodies[m]));
		condense_request(helper, model, texts[i].p, texts[i].len,
		    target, &bodies[m]);
		xv[m].role = helper;
		xv[m].model = model;
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
	if (k->n == 1 && k->v[0].part > 0)
		snprintf(out, n, "%d (part %d)", k->from + 1, k->v[0].part);
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

static void
free_chunks(struct chunks *cs)
{
	int i;

	for (i = 0; i < cs->n; i++) {
		free(cs->v[i].v);
		buf_free(&cs->v[i].transcript);
	}
	free(cs->v);
}

/*
 * A span of the summary block: a closed chunk (level 0), or spans merged
 * when the block outgrew its budget (a compaction), one level up.
 */
struct node {
	int level;
	int rank;		/* made after its spans: 1 + their highest */
	int first, last;	/* the closed chunks it stands for */
	int *kids, nkids;	/* the merged spans, oldest first */
	struct buf sum;		/* its summary */
	struct items it;	/* its own extract */
	const char *how;	/* "cache", "helper", "extractive" */
};

struct plan {
	struct node *v;
	int n, cap;
	int *spans, nspans;	/* the block's spans, oldest first */
	int compactions, levels, ranks;
};

static int
new_node(struct plan *p, int level, int first, int last)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->v = xrealloc(p->v, sizeof(*p->v) * (size_t)p->cap);
	}
	memset(&p->v[p->n], 0, sizeof(p->v[p->n]));
	p->v[p->n].level = level;
	p->v[p->n].first = first;
	p->v[p->n].last = last;
	if (level + 1 > p->levels)
		p->levels = level + 1;
	return p->n++;
}

/*
 * The spans of n closed chunks, as if the conversation had grown chunk
 * by chunk: each chunk is appended as a span of its own; while there
 * are more than max spans, the spans of the lowest level that has
 * several (the newest end of the block), at most group of them, the
 * oldest first, merge into one span of the next level; when every
 * level has one, the two oldest merge and the older's level stays, so
 * that the levels stay few.  It depends on n alone, so a conversation
 * that grows keeps the spans it had, but for the merges, and a merge
 * rewrites the block only from the merged spans on: from its start
 * only when the top level merges.  With max 8 and group 9: 2
 * compactions by 20 chunks, 20 by 100, 42 by 155 (3 levels); past
 * that, the upper levels fill the block and merges come every few
 * chunks.
 */
static void
plan_spans(struct plan *p, int n, int max, int group)
{
	int j, lo, hi, lvl, k, x, up;

	p->spans = xmalloc(sizeof(*p->spans) * (size_t)(n + 1));
	p->ranks = n > 0;
	for (j = 0; j < n; j++) {
		p->spans[p->nspans++] = new_node(p, 0, j, j);
		while (p->nspans > max) {
			hi = p->nspans;
			for (;;) {	/* a run of one level, from the end */
				lvl = p->v[p->spans[hi - 1]].level;
				for (lo = hi - 1; lo > 0 &&
				    p->v[p->spans[lo - 1]].level == lvl; lo--)
					;
				if (hi - lo >= 2 || lo == 0)
					break;
				hi = lo;
			}
			up = hi - lo >= 2;
			if (!up) {
				lo = 0;
				hi = 2;
			}
			if (hi - lo > group)
				hi = lo + group;
			for (lvl = 0, k = lo; k < hi; k++)
				if (p->v[p->spans[k]].level > lvl)
					lvl = p->v[p->spans[k]].level;
			x = new_node(p, lvl + up, p->v[p->spans[lo]].first,
			    p->v[p->spans[hi - 1]].last);
			for (k = lo; k < hi; k++)
				if (p->v[p->spans[k]].rank >= p->v[x].rank)
					p->v[x].rank = p->v[p->spans[k]].rank + 1;
			if (p->v[x].rank + 1 > p->ranks)
				p->ranks = p->v[x].rank + 1;
			p->v[x].nkids = hi - lo;
			p->v[x].kids = xmalloc(sizeof(int) * (size_t)(hi - lo));
			memcpy(p->v[x].kids, p->spans + lo,
			    sizeof(int) * (size_t)(hi - lo));
			p->spans[lo] = x;
			memmove(p->spans + lo + 1, p->spans + hi,
			    sizeof(int) * (size_t)(p->nspans - hi));
			p->nspans -= hi - lo - 1;
			p->compactions++;
		}
	}
}

static void
free_plan(struct plan *p)
{
	int i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].kids);
		buf_free(&p->v[i].sum);
		extract_free(&p->v[i].it);
	}
	free(p->v);
	free(p->spans);
}

/* The items of closed chunks [first, last], chosen within preserve. */
static void
node_items(struct chunk **closed, const struct node *x, size_t preserve,
    enum est_method m, struct items *it)
{
	int i, j;

	for (i = x->first; i <= x->last; i++)
		for (j = 0; j < closed[i]->n; j++)
			extract_message(it, closed[i]->v[j].text,
			    closed[i]->v[j].len, closed[i]->v[j].msg, m);
	extract_choose(it, preserve);
}

/* The extractive summary of a closed chunk, leaving out its extract. */
static void
leaf_extractive(const struct chat *c, const struct chunk *k,
    const struct items *it, const struct mr_opts *o, struct buf *sum)
{
	struct xmsg *xm;
	int j;

	xm = xmalloc(sizeof(*xm) * (size_t)k->n);
	for (j = 0; j < k->n; j++)
		xm[j] = (struct xmsg){ chat_role(c, k->v[j].msg),
		    k->v[j].text, k->v[j].len };
	buf_reset(sum);
	extract_summary(xm, k->n, o->chunk_target, o->c.method, it, sum);
	free(xm);
}

/*
 * What to do with a span the helper failed on: 0 (use the model-free
 * summary), a status for --on-helper-failure=fail (e set), or -1 for
 * =direct.
 */
static int
on_failed(const struct lr_err *err, const struct mr_opts *o,
    struct lr_err *e)
{
	if (o->c.on_failure == FAIL_FAIL) {
		*e = *err;
		return e->status;
	}
	if (o->c.on_failure == FAIL_DIRECT) {
		lr_warn("%s; passing the chat on unchanged", err->msg);
		return -1;
	}
	return 0;
}

/*
 * The summaries of the nodes of one rank (0: the closed chunks), by
 * the helper through the cache, else the model-free way.  *nfailed and
 * *first count and keep the failures for one warning.  Returns 0, a
 * status (e set), or -1 for --on-helper-failure=direct.
 */
static int
summarize_rank(const struct chat *c, struct plan *p, int rank,
    struct chunk **closed, int old, size_t *budget, const struct role *helper,
    const struct mr_opts *o, struct cache *cache, int *hits, int *nfailed,
    struct lr_err *first, struct lr_err *e)
{
	struct buf *texts, *sums;
	struct lr_err *errs;
	int *idx, *cached, *failed, *allow, n = 0, i, j, st = 0;
	size_t share;

	idx = xmalloc(sizeof(*idx) * (size_t)(p->n + 1));
	for (i = 0; i < p->n; i++)
		if (p->v[i].rank == rank)
			idx[n++] = i;
	texts = xmalloc(sizeof(*texts) * (size_t)(n + 1));
	sums = xmalloc(sizeof(*sums) * (size_t)(n + 1));
	errs = xmalloc(sizeof(*errs) * (size_t)(n + 1));
	cached = xmalloc(sizeof(*cached) * (size_t)(n + 1));
	failed = xmalloc(sizeof(*failed) * (size_t)(n + 1));
	allow = xmalloc(sizeof(*allow) * (size_t)(n + 1));
	for (i = 0; i < n; i++) {
		struct node *x = &p->v[idx[i]];

		/* Older than the bound: cached, or extractive. */
		allow[i] = (rank == 0 ? x->first : x->last) >= old;
		memset(&texts[i], 0, sizeof(*texts));
		memset(&sums[i], 0, sizeof(*sums));
		cached[i] = failed[i] = 0;
		if (rank == 0) {
			struct chunk *k = closed[x->first];

			buf_add(&texts[i], k->transcript.p, k->transcript.len);
		} else
			for (j = 0; j < x->nkids; j++) {
				buf_add(&texts[i], p->v[x->kids[j]].sum.p,
				    p->v[x->kids[j]].sum.len);
				buf_adds(&texts[i], "\n\n");
			}
	}
	if (!o->c.extractive && n > 0)
		st = summarize_all(texts, n, o->chunk_target, helper, o, cache,
		    allow, budget, sums, cached, failed, errs,
		    rank == 0 ? "map" : "merge");
	if (st > 128)
		goto out;
	st = 0;
	for (i = 0; i < n && st == 0; i++) {
		struct node *x = &p->v[idx[i]];

		*hits += cached[i];
		x->how = cached[i] ? "cache" : "helper";
		if (failed[i] == 1 && o->plan == NULL &&
		    (st = on_failed(&errs[i], o, e)) != 0)
			break;
		if (failed[i] == 1 && o->plan == NULL && (*nfailed)++ == 0)
			*first = errs[i];
		if (failed[i] || o->c.extractive) {
			x->how = "extractive";
			if (rank == 0)
				leaf_extractive(c, closed[x->first], &x->it, o,
				    &sums[i]);
			else {	/* each merged summary cut to its share */
				struct buf *kid = xmalloc(sizeof(*kid) *
				    (size_t)x->nkids);

				for (j = 0; j < x->nkids; j++)
					kid[j] = p->v[x->kids[j]].sum;
				/* A token a newline between them, and the
				 * whole within the target all the same. */
				share = o->chunk_target > (size_t)x->nkids ?
				    o->chunk_target - (size_t)x->nkids : 1;
				parts_cut(kid, 0, x->nkids, share, o->c.method,
				    &sums[i]);
				sums[i].len = extract_trim(sums[i].p != NULL ?
				    sums[i].p : "", sums[i].len,
				    o->chunk_target, o->c.method);
				free(kid);
			}
		}
		x->sum = sums[i];
		memset(&sums[i], 0, sizeof(sums[i]));
	}
out:
	for (i = 0; i < n; i++) {
		buf_free(&texts[i]);
		buf_free(&sums[i]);
	}
	free(texts);
	free(sums);
	free(errs);
	free(cached);
	free(failed);
	free(allow);
	free(idx);
	return st;
}

/*
 * The summaries of closed chunks that stay verbatim for now, into the
 * cache; a failure is left for the turn that needs them.  Returns 0, or
 * the status of an interruption.
 */
static int
prepare(struct chunk **closed, int n, size_t *budget,
    const struct role *helper, const struct mr_opts *o, struct cache *cache)
{
	struct buf *texts, *sums;
	struct lr_err *errs;
	int *cached, *failed, i, st;

	texts = xmalloc(sizeof(*texts) * (size_t)n);
	sums = xmalloc(sizeof(*sums) * (size_t)n);
	errs = xmalloc(sizeof(*errs) * (size_t)n);
	cached = xmalloc(sizeof(*cached) * (size_t)n);
	failed = xmalloc(sizeof(*failed) * (size_t)n);
	for (i = 0; i < n; i++) {
		texts[i] = closed[i]->transcript;	/* borrowed */
		memset(&sums[i], 0, sizeof(sums[i]));
	}
	st = summarize_all(texts, n, o->chunk_target, helper, o, cache, NULL,
	    budget, sums, cached, failed, errs, "prepare");
	for (i = 0; i < n; i++)
		buf_free(&sums[i]);
	free(texts);
	free(sums);
	free(errs);
	free(cached);
	free(failed);
	return st > 128 ? st : 0;
}

/* The spans the helper summarizes when the chunks before old do not go
 * to it: the newer chunks, and the merges that take one of them. */
static size_t
helper_nodes(const struct plan *p, int old)
{
	size_t k = 0;
	int i;

	for (i = 0; i < p->n; i++)
		k += (p->v[i].rank == 0 ? p->v[i].first : p->v[i].last) >= old;
	return k;
}

/* The most spans the block holds: its budget over a span's largest size. */
static int
max_spans(const struct mr_opts *o)
{
	size_t span = o->chunk_target + o->c.preserve + SPAN_OVERHEAD;
	size_t n = o->c.target / (span > 0 ? span : 1);

	return n < 2 ? 2 : n > 100000 ? 100000 : (int)n;
}

/* The most spans one merge takes: as many summaries as fit a chunk. */
static int
merge_group(const struct mr_opts *o)
{
	size_t n = o->chunk_tokens / (o->chunk_target + ENTRY_TOKENS);

	return n < 2 ? 2 : n > 1000 ? 1000 : (int)n;
}

int
mapreduce(const struct chat *c, const char *raw, size_t rawlen,
    const struct role *helper, const struct mr_opts *o, struct cache *cache,
    struct buf *out, struct condense_result *res, struct lr_err *e)
{
	struct split s, s2;
	struct mr_opts eff;
	struct chunks cs = { NULL, 0, 0 };
	struct chunk **closed = NULL;
	struct plan p;
	struct buf *texts, spans = BUF_INIT;
	struct lr_err first;
	int i, n = 0, open_from, rank, st = 0, hits = 0, nfailed = 0, emit;
	int old;
	size_t budget;
	char range[64];

	memset(res, 0, sizeof(*res));
	memset(&p, 0, sizeof(p));
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
	if (o->c.summary_only)
		eff.close_last = 1;
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
	/* No more requests at once than the helper serves at once: one
	 * more would wait in its queue with its first-byte timer running. */
	if (helper->parallel > 0 && eff.jobs > helper->parallel) {
		eff.jobs = (int)helper->parallel;
		if (o->jobs_given && !o->dry_run && !o->c.extractive)
			log_event(LOG_INFO, "jobs", "asked", 'i', (long)o->jobs,
			    "parallel", 'i', helper->parallel,
			    (const char *)NULL);
	}
	make_chunks(c, &s, s.sys_end, s.tail, texts, &eff, cache, &cs);
	closed = xmalloc(sizeof(*closed) * (size_t)(cs.n + 1));
	for (i = 0; i < cs.n; i++) {
		transcript(c, &cs.v[i]);
		if (cs.v[i].closed)
			closed[n++] = &cs.v[i];
	}
	open_from = s.tail;
	if (cs.n > 0 && !cs.v[cs.n - 1].closed)
		open_from = cs.v[cs.n - 1].from;
	/* What is kept verbatim starts with a call, not with its results. */
	while (open_from > s.sys_end && open_from < s.tail &&
	    strcmp(chat_role(c, open_from), "tool") == 0)
		open_from--;
	condense_log_task(&s);
	log_event(LOG_INFO, "chunks", "messages", 'i', (long)s.n,
	    "task", 'i', (long)s.task + 1,
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

	/*
	 * Switch late: once MR_SWITCH chunks have closed, they go into the
	 * block MR_SWITCH at a time; those closed since stay verbatim, so
	 * that the part after the block, which GPU0 processes again when
	 * it changes, changes a third as often.  Their summaries are made
	 * now all the same (prepare early), for the turn that switches.
	 */
	emit = n;
	if (!eff.close_last && c->shape != CHAT_TEXT && n > MR_SWITCH)
		emit = n - n % MR_SWITCH;
	/* ... but never parting the pieces of a message, or a call from
	 * its results. */
	while (emit < n && (closed[emit]->v[0].part > 1 ||
	    strcmp(chat_role(c, closed[emit]->from), "tool") == 0))
		emit++;
	if (emit < n) {
		open_from = closed[emit]->from;
		while (open_from > s.sys_end && strcmp(chat_role(c,
		    open_from), "tool") == 0)
			open_from--;
	}
	res->chunks = n;
	n = emit;
	/* The spans, their extracts, and their summaries level by level. */
	plan_spans(&p, n, max_spans(&eff), merge_group(&eff));
	for (i = 0; i < p.n; i++)
		if (p.v[i].rank == 0)
			node_items(closed, &p.v[i], eff.c.preserve,
			    o->c.method, &p.v[i].it);
	for (i = 0; i < p.nspans; i++)
		if (p.v[p.spans[i]].rank > 0)
			node_items(closed, &p.v[p.spans[i]], eff.c.preserve,
			    o->c.method, &p.v[p.spans[i]].it);
	/*
	 * What one chat may cost the helper: max_chunks requests.  The
	 * chunks before old, and the merges of them alone, take their
	 * summaries from the cache, else the model-free ones: a huge paste
	 * costs a bounded wait, and a later turn, which finds the newest
	 * in the cache, costs no more than before.  Which spans go to the
	 * helper depends on the plan alone, not on what the cache holds,
	 * so that the same chat gives the same block run after run; the
	 * budget caps what prepare() makes ahead too.
	 */
	budget = eff.max_chunks > 0 ? eff.max_chunks : SIZE_MAX;
	old = eff.max_chunks > 0 && (size_t)n > eff.max_chunks ?
	    n - (int)eff.max_chunks : 0;
	while (eff.max_chunks > 0 && !o->c.extractive && old < n &&
	    helper_nodes(&p, old) > eff.max_chunks)
		old++;
	if (old > 0 && !o->c.extractive)
		log_event(LOG_INFO, "max_chunks", "chunks", 'i', (long)n,
		    "max_chunks", 'i', (long)eff.max_chunks, "older", 'i',
		    (long)old, (const char *)NULL);
	for (rank = 0; rank < p.ranks && st == 0; rank++) {
		int h = 0;

		st = summarize_rank(c, &p, rank, closed, old, &budget, helper,
		    &eff, cache, &h, &nfailed, &first, e);
		if (rank == 0)
			res->cache_hits = hits = h;
	}
	if (st == 0 && nfailed > 0)	/* one warning for them all */
		lr_warn("%s; using the extractive summary for %d of %d "
		    "summar%s%s", first.msg, nfailed, p.n, p.n == 1 ? "y" : "ies",
		    backend_role_down(helper, NULL) ? " (GPU1 is not asked "
		    "again in this run)" : "");
	if (st == -1) {
		condense_unchanged(raw, rawlen, "the helper failed", out, res);
		st = 0;
		goto done;
	}
	if (st == 0 && emit < res->chunks && !o->c.extractive &&
	    !backend_role_down(helper, NULL))
		st = prepare(closed + emit, res->chunks - emit, &budget,
		    helper, &eff, cache);
	if (st != 0)
		goto done;
	if (o->map_only) {
		res->how = "prefetch";
		goto done;
	}
	for (i = 0; i < p.n; i++)
		if (p.v[i].rank == 0) {
			struct chunk *k = closed[p.v[i].first];

			chunk_range(k, range, sizeof(range));
			log_event(LOG_INFO, "chunk", "index", 'i',
			    (long)p.v[i].first + 1, "messages", 's', range,
			    "tokens", 'i', (long)k->tokens,
			    "how", 's', p.v[i].how, "summary_tokens", 'i',
			    (long)est_text_tokens(p.v[i].sum.p,
			    p.v[i].sum.len, o->c.method), (const char *)NULL);
		}
	for (i = 0; i < p.nspans; i++) {
		struct node *x = &p.v[p.spans[i]];

		if (i > 0)
			buf_addc(&spans, '\n');
		condense_span(x->sum.p, x->sum.len, &x->it, &spans);
	}
	res->how = "mapreduce";
	res->spans = p.nspans;
	res->compactions = p.compactions;
	log_event(LOG_INFO, "mapreduce", "chunks", 'i', (long)cs.n,
	    "cache_hits", 'i', (long)hits, "spans", 'i', (long)p.nspans,
	    "levels", 'i', (long)p.levels,
	    "compactions", 'i', (long)p.compactions, (const char *)NULL);
	s2 = s;
	s2.tail = open_from;
	if (s2.task >= open_from)
		s2.task = -1;
	if (condense_output(c, raw, rawlen, &s2, spans.p, spans.len, &eff.c,
	    out, res)) {
		for (i = 0; i < p.nspans; i++)
			condense_log_dropped(&p.v[p.spans[i]].it);
		/* Where this run ended (a trial's leaves no mark). */
		if (c->shape == CHAT_TEXT && o->plan == NULL) {
			const struct chunk *k = closed[n - 1];
			const struct piece *q = &k->v[k->n - 1];

			if (q->part > 0)
				mark_end(cache, eff.chunk_tokens, texts[0].p,
				    (size_t)(q->text - texts[0].p), texts[0].len);
		}
	}
done:
	for (i = 0; i < s.tail - s.sys_end; i++)
		buf_free(&texts[i]);
	free(texts);
	free(closed);
	free_plan(&p);
	buf_free(&spans);
	free_chunks(&cs);
	return st;
}
