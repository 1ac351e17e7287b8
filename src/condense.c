/*
 * condense.c - strategy B: the middle of a chat condensed into one block.
 */
#include <stdlib.h>
#include <string.h>

#include "condense.h"
#include "log.h"
#include "measure.h"
#include "request.h"
#include "splice.h"

#define SPAN_HEAD	"--- Summary ---\n"
#define SPAN_KEPT	"--- Kept verbatim from it ---\n"

static const char helper_system[] =
    "You condense conversations between a user and a coding assistant. "
    "Write a summary that lets the assistant continue the work without "
    "the original messages. Keep the user's goals and requests, decisions "
    "and their reasons, the names of files, functions, classes and "
    "commands, the results of commands and tests, errors and how they "
    "were resolved, and what remains to be done. Do not invent anything. "
    "Write plain text, without a preamble, in at most %zu words.";

void
condense_opts_init(struct condense_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->keep_last = CONDENSE_KEEP_LAST;
	o->target = CONDENSE_TARGET;
	o->preserve = CONDENSE_PRESERVE;
	o->on_failure = FAIL_EXTRACTIVE;
	o->method = EST_QWEN;
}

int
condense_on_failure_parse(const char *s)
{
	if (strcmp(s, "extractive") == 0)
		return FAIL_EXTRACTIVE;
	if (strcmp(s, "direct") == 0)
		return FAIL_DIRECT;
	if (strcmp(s, "fail") == 0)
		return FAIL_FAIL;
	return -1;
}

static int
is_role(const struct chat *c, int i, const char *role)
{
	return strcmp(chat_role(c, i), role) == 0;
}

/*
 * The first user message, when it stays verbatim as the task; when it
 * is too large for that, s->task_tokens and s->task_budget say so.
 */
static int
pin_task(const struct chat *c, const struct condense_opts *o,
    struct split *s)
{
	struct msg_size sz;
	size_t budget = o->budget;
	int i;
	jv m;

	for (i = s->sys_end; i < s->tail && !is_role(c, i, "user"); i++)
		;
	if (i >= s->tail)
		return -1;	/* none, or in the tail already */
	m = jv_array_get(jv_copy(c->messages), i);
	measure_message(m, o->method, &sz);
	jv_free(m);
	if (budget == 0)
		budget = measure_tokens(c, o->method);
	if (sz.tokens > budget / CONDENSE_TASK_SHARE) {
		s->task_msg = i;
		s->task_tokens = sz.tokens;
		s->task_budget = budget;
		return -1;
	}
	return i;
}

void
condense_log_task(const struct split *s)
{
	if (s->task_msg >= 0)
		log_event(LOG_INFO, "task", "message", 'i',
		    (long)s->task_msg + 1, "tokens", 'i',
		    (long)s->task_tokens, "budget", 'i', (long)s->task_budget,
		    "kept", 's', "no: more than half the budget, condensed "
		    "with the rest", (const char *)NULL);
}

void
condense_split(const struct chat *c, const struct condense_opts *o,
    struct split *s)
{
	int i, last_user = -1;

	s->n = chat_count(c);
	s->sys_end = 0;
	s->task = s->task_msg = -1;
	s->task_tokens = s->task_budget = 0;
	s->summarize_system = o->summarize_system;
	if (c->shape == CHAT_TEXT || o->summary_only) {
		/* All of a text is condensed; all but the system messages
		 * of a chat summarized on its own. */
		if (c->shape != CHAT_TEXT && !o->summarize_system)
			while (s->sys_end < s->n &&
			    is_role(c, s->sys_end, "system"))
				s->sys_end++;
		s->tail = s->n;
		return;
	}
	if (!o->summarize_system)
		while (s->sys_end < s->n && is_role(c, s->sys_end, "system"))
			s->sys_end++;
	/*
	 * The last turn starts at the last user message, or at the last
	 * tool result in a tool-calling conversation, whose only user
	 * message is often the first.
	 */
	for (i = s->n - 1; i >= 0 && last_user < 0; i--)
		if (is_role(c, i, "user") || is_role(c, i, "tool"))
			last_user = i;
	s->tail = last_user >= 0 ? last_user : s->n;
	if (s->tail > s->n - o->keep_last)
		s->tail = s->n - o->keep_last;
	/* A tool result stays with the assistant message that called it. */
	while (s->tail > s->sys_end && s->tail < s->n &&
	    is_role(c, s->tail, "tool"))
		s->tail--;
	if (s->tail < s->sys_end)
		s->tail = s->sys_end;
	s->task = pin_task(c, o, s);
}

int
condense_takes(const struct chat *c, const struct split *s, int i)
{
	return i != s->task && (s->summarize_system ||
	    !is_role(c, i, "system"));
}

void
condense_message_text(const struct chat *c, int i, struct buf *out)
{
	jv m = jv_array_get(jv_copy(c->messages), i), tc;

	chat_msg_text(m, out);
	tc = jv_object_get(m, jv_string("tool_calls"));
	if (jv_get_kind(tc) == JV_KIND_ARRAY &&
	    jv_array_length(jv_copy(tc)) > 0) {
		buf_adds(out, "\n[tool calls] ");
		request_dump(tc, out);
	} else
		jv_free(tc);
}

void
condense_transcript(const struct chat *c, const struct split *s, int from,
    int to, struct buf *out)
{
	int i;

	for (i = from; i < to; i++) {
		if (!condense_takes(c, s, i))
			continue;
		buf_printf(out, "[%s]\n", chat_role(c, i));
		condense_message_text(c, i, out);
		buf_adds(out, "\n\n");
	}
}

void
condense_request(const struct role *r, const char *model,
    const char *transcript, size_t len, size_t target, struct buf *body)
{
	struct buf sys = BUF_INIT, user = BUF_INIT;
	size_t words = target * 3 / 4, predict = target + target / 2;
	jv msgs, req, opts;

	buf_printf(&sys, helper_system, words);
	buf_adds(&user, "<conversation>\n");
	buf_add(&user, transcript, len);
	buf_printf(&user, "</conversation>\n\nSummarize the conversation "
	    "above in at most %zu words.", words);
	msgs = jv_array_append(jv_array(), jv_object_set(jv_object_set(
	    jv_object(), jv_string("role"), jv_string("system")),
	    jv_string("content"), jv_string(buf_str(&sys))));
	msgs = jv_array_append(msgs, jv_object_set(jv_object_set(jv_object(),
	    jv_string("role"), jv_string("user")), jv_string("content"),
	    jv_string_sized(user.p, (int)user.len)));
	req = jv_object_set(jv_object(), jv_string("model"), jv_string(model));
	req = jv_object_set(req, jv_string("messages"), msgs);
	req = jv_object_set(req, jv_string("stream"), jv_true());
	if (r->api == API_OLLAMA) {
		/* Thinking off where the server supports it. */
		req = jv_object_set(req, jv_string("think"), jv_false());
		opts = jv_object_set(jv_object(), jv_string("temperature"),
		    jv_number(0));
		opts = jv_object_set(opts, jv_string("num_predict"),
		    jv_number((double)predict));
		if (r->num_ctx > 0)
			opts = jv_object_set(opts, jv_string("num_ctx"),
			    jv_number((double)r->num_ctx));
		req = jv_object_set(req, jv_string("options"), opts);
	} else {
		req = jv_object_set(req, jv_string("temperature"),
		    jv_number(0));
		req = jv_object_set(req, jv_string("max_tokens"),
		    jv_number((double)predict));
	}
	request_dump(req, body);
	buf_free(&sys);
	buf_free(&user);
}

int
condense_clean(const char *answer, size_t len, size_t target,
    enum est_method m, struct buf *out)
{
	struct buf b = BUF_INIT;
	const char *p = answer, *end = answer + len, *open, *close;
	size_t n;

	/* Every <think>...</think> out; an unclosed one runs to the end. */
	while (p < end) {
		open = NULL;
		for (close = p; close + 7 <= end; close++)
			if (memcmp(close, "<think>", 7) == 0) {
				open = close;
				break;
			}
		if (open == NULL) {
			buf_add(&b, p, (size_t)(end - p));
			break;
		}
		buf_add(&b, p, (size_t)(open - p));
		for (close = open + 7; close + 8 <= end; close++)
			if (memcmp(close, "</think>", 8) == 0)
				break;
		if (close + 8 > end)
			break;
		p = close + 8;
	}
	p = b.p != NULL ? b.p : "";
	n = b.len;
	while (n > 0 && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\n' ||
	    p[n - 1] == '\r' || p[n - 1] == '\t'))
		n--;
	n = extract_trim(p, n, target, m);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\n'))
		n--;
	buf_add(out, p, n);
	buf_free(&b);
	return n > 0 ? 0 : -1;
}

void
condense_extract(const struct chat *c, const struct split *s, int from,
    int to, enum est_method m, struct items *it)
{
	struct buf t = BUF_INIT;
	int i;

	for (i = from; i < to; i++) {
		if (!condense_takes(c, s, i))
			continue;
		buf_reset(&t);
		condense_message_text(c, i, &t);	/* tool calls too */
		extract_message(it, t.p != NULL ? t.p : "", t.len, i, m);
	}
	buf_free(&t);
}

void
condense_extractive(const struct chat *c, const struct split *s, int from,
    int to, const struct items *it, const struct condense_opts *o,
    struct buf *out)
{
	struct xmsg *v;
	struct buf *texts;
	int i, n = 0;

	v = xmalloc(sizeof(*v) * (size_t)(to - from + 1));
	texts = xmalloc(sizeof(*texts) * (size_t)(to - from + 1));
	for (i = from; i < to; i++) {
		if (!condense_takes(c, s, i))
			continue;
		memset(&texts[n], 0, sizeof(texts[n]));
		chat_text(c, i, &texts[n]);
		v[n].role = chat_role(c, i);
		v[n].text = texts[n].p != NULL ? texts[n].p : "";
		v[n].len = texts[n].len;
		n++;
	}
	extract_summary(v, n, o->target, o->method, it, out);
	for (i = 0; i < n; i++)
		buf_free(&texts[i]);
	free(texts);
	free(v);
}

void
condense_span(const char *summary, size_t slen, const struct items *it,
    struct buf *out)
{
	int i, kept = 0;

	buf_adds(out, SPAN_HEAD);
	if (slen > 0) {
		buf_add(out, summary, slen);
		buf_addc(out, '\n');
	}
	for (i = 0; it != NULL && i < it->n; i++)
		kept += it->v[i].kept;
	if (kept > 0) {
		buf_adds(out, SPAN_KEPT);
		extract_render(it, out);
	}
}

static jv
message(const char *role, const char *text, size_t len)
{
	return jv_object_set(jv_object_set(jv_object(), jv_string("role"),
	    jv_string(role)), jv_string("content"),
	    jv_string_sized(text, (int)len));
}

jv
condense_place(const struct chat *c, const struct split *s,
    const char *block, size_t blen)
{
	jv out = jv_array();
	int i;

	/* What never changes first: the system messages and the task. */
	for (i = 0; i < s->sys_end; i++)
		out = jv_array_append(out, jv_array_get(jv_copy(c->messages),
		    i));
	if (s->task >= 0)
		out = jv_array_append(out, jv_array_get(jv_copy(c->messages),
		    s->task));
	out = jv_array_append(out, message("user", block, blen));
	/* System messages inside the middle stay, in their order. */
	for (i = s->sys_end; i < s->tail; i++)
		if (i != s->task && !condense_takes(c, s, i))
			out = jv_array_append(out,
			    jv_array_get(jv_copy(c->messages), i));
	for (i = s->tail; i < s->n; i++)
		out = jv_array_append(out, jv_array_get(jv_copy(c->messages),
		    i));
	return out;
}

void
condense_write(const struct chat *c, jv messages, struct buf *out)
{
	jv doc;

	switch (c->shape) {
	case CHAT_OLLAMA:
	case CHAT_OPENAI:
		/* The input's bytes, with only "messages" replaced. */
		doc = jv_object_set(jv_copy(c->doc), jv_string("messages"),
		    messages);
		splice_write(c->raw, c->rawlen, c->doc, doc, out);
		jv_free(doc);
		buf_addc(out, '\n');
		break;
	case CHAT_ARRAY:
		splice_write(c->raw, c->rawlen, c->doc, messages, out);
		jv_free(messages);
		buf_addc(out, '\n');
		break;
	case CHAT_TEXT: {
		jv m = jv_array_get(messages, 0);

		chat_msg_text(m, out);
		jv_free(m);
		buf_addc(out, '\n');
		break;
	}
	}
}

void
condense_log_dropped(const struct items *it)
{
	char ex[120];
	int i;

	for (i = 0; i < it->n; i++) {
		const struct item *x = &it->v[i];

		if (x->kept || x->covered)
			continue;
		lr_excerpt(ex, sizeof(ex), x->text, x->len, 100);
		log_event(LOG_INFO, "dropped", "kind", 's',
		    item_kind_name(x->kind), "message", 'i', (long)x->msg + 1,
		    "tokens", 'i', (long)x->tokens, "item", 's', ex,
		    (const char *)NULL);
	}
}

/*
 * The newest part of a transcript that fits the helper's context:
 * cut at a line start.  Returns the offset to start from.
 */
static size_t
fit_context(const struct role *r, const char *t, size_t n, size_t target,
    enum est_method m)
{
	long room = r->num_ctx - (long)(target + target / 2) - 400;
	size_t lo = 0, hi = n, mid;

	if (r->num_ctx <= 0 || est_text_tokens(t, n, m) <= (size_t)
	    (room > 0 ? room : 0))
		return 0;
	if (room <= 0)
		return n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (est_text_tokens(t + mid, n - mid, m) <= (size_t)room)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo > 0 && lo < n) {	/* from the start of a line */
		const char *nl = memchr(t + lo - 1, '\n', n - lo + 1);

		lo = nl != NULL ? (size_t)(nl - t) + 1 : n;
	}
	return lo;
}

/* Ask the helper; 0 and the summary in out, or a status with e set. */
static int
ask_helper(const struct chat *c, const struct split *s,
    const struct role *helper, const struct condense_opts *o,
    struct buf *out, struct lr_err *e)
{
	struct buf t = BUF_INIT, body = BUF_INIT;
	struct chat_xfer x, *xs[1] = { &x };
	size_t from;
	int st;

	condense_transcript(c, s, s->sys_end, s->tail, &t);
	from = fit_context(helper, t.p, t.len, o->target, o->method);
	if (from >= t.len) {
		buf_free(&t);
		return lr_seterr(e, LR_USAGE, "%s: num_ctx %ld leaves no room "
		    "for a summary of %zu tokens", helper->name,
		    helper->num_ctx, o->target);
	}
	if (from > 0)
		lr_warn("the part to condense (%zu tokens) is larger than %s's "
		    "context (num_ctx %ld): the helper reads its newest part",
		    est_text_tokens(t.p, t.len, o->method), helper->name,
		    helper->num_ctx);
	condense_request(helper, o->model != NULL ? o->model : helper->model,
	    t.p + from, t.len - from, o->target, &body);
	memset(&x, 0, sizeof(x));
	x.role = helper;
	x.model = o->model != NULL ? o->model : helper->model;
	x.body = body.p;
	x.body_len = body.len;
	x.keep = 1;
	st = backend_run(xs, 1, 1);
	if (st != 0)
		*e = x.err;
	else if (condense_clean(x.stream.content.p != NULL ?
	    x.stream.content.p : "", x.stream.content.len, o->target,
	    o->method, out) != 0)
		st = lr_seterr(e, LR_MALFORMED, "%s %s: the summary is empty",
		    helper->name, x.url);
	backend_xfer_free(&x);
	buf_free(&body);
	buf_free(&t);
	return st;
}

static size_t
messages_tokens(const struct chat *c, jv messages, enum est_method m)
{
	struct chat tmp = { .shape = c->shape, .doc = jv_null(),
	    .messages = messages };

	return measure_tokens(&tmp, m);
}

int
condense_summarize(const struct chat *c, const char *raw, size_t rawlen,
    const struct role *helper, const struct condense_opts *o,
    struct buf *out, struct condense_result *res, struct lr_err *e)
{
	struct split s;
	struct items it = { NULL, 0, 0 };
	struct buf summary = BUF_INIT, span = BUF_INIT;
	const char *why = NULL;
	int i, middle = 0, st;

	memset(res, 0, sizeof(*res));
	res->how = "unchanged";
	res->tokens_in = res->tokens_out = measure_tokens(c, o->method);
	condense_split(c, o, &s);
	for (i = s.sys_end; i < s.tail; i++)
		middle += condense_takes(c, &s, i);
	condense_log_task(&s);
	log_event(LOG_INFO, "split", "messages", 'i', (long)s.n,
	    "system", 'i', (long)s.sys_end, "task", 'i', (long)s.task + 1,
	    "middle", 'i', (long)middle,
	    "middle_from", 'i', (long)s.sys_end + 1,
	    "middle_to", 'i', (long)s.tail, "tail", 'i', (long)(s.n - s.tail),
	    (const char *)NULL);
	if (middle == 0) {
		why = "nothing to condense";
		goto unchanged;
	}
	condense_extract(c, &s, s.sys_end, s.tail, o->method, &it);
	extract_choose(&it, o->preserve);
	if (o->extractive) {
		res->how = "extractive";
		condense_extractive(c, &s, s.sys_end, s.tail, &it, o, &summary);
	} else if ((st = ask_helper(c, &s, helper, o, &summary, e)) != 0) {
		if (st > 128 || o->on_failure == FAIL_FAIL) {
			extract_free(&it);
			buf_free(&summary);
			return st;
		}
		if (o->on_failure == FAIL_DIRECT) {
			lr_warn("%s; passing the chat on unchanged", e->msg);
			why = "the helper failed";
			goto unchanged;
		}
		lr_warn("%s; using the extractive summary", e->msg);
		res->how = "extractive";
		buf_reset(&summary);
		condense_extractive(c, &s, s.sys_end, s.tail, &it, o, &summary);
	} else
		res->how = "helper";
	condense_span(summary.p, summary.len, &it, &span);
	res->spans = 1;
	if (condense_output(c, raw, rawlen, &s, span.p, span.len, o, out,
	    res))
		condense_log_dropped(&it);
	extract_free(&it);
	buf_free(&summary);
	buf_free(&span);
	return 0;
unchanged:
	condense_unchanged(raw, rawlen, why, out, res);
	extract_free(&it);
	buf_free(&summary);
	return 0;
}

void
condense_unchanged(const char *raw, size_t rawlen, const char *why,
    struct buf *out, struct condense_result *res)
{
	res->how = "unchanged";
	res->tokens_out = res->tokens_in;
	buf_add(out, raw, rawlen);
	log_event(LOG_INFO, "condense", "how", 's', "unchanged",
	    "why", 's', why, "tokens_in", 'i', (long)res->tokens_in,
	    (const char *)NULL);
}

int
condense_output(const struct chat *c, const char *raw, size_t rawlen,
    const struct split *s, const char *spans, size_t slen,
    const struct condense_opts *o, struct buf *out,
    struct condense_result *res)
{
	struct buf block = BUF_INIT;
	jv msgs;

	if (c->shape == CHAT_TEXT || o->summary_only) {
		/* The spans alone, as text. */
		res->tokens_out = est_text_tokens(spans, slen, o->method);
		if (res->tokens_out >= res->tokens_in && !o->summary_only) {
			condense_unchanged(raw, rawlen,
			    "the summary is not smaller", out, res);
			return 0;
		}
		buf_add(out, spans, slen);
	} else {
		buf_adds(&block, CONDENSE_HEAD);
		buf_addc(&block, '\n');
		buf_add(&block, spans, slen);
		msgs = condense_place(c, s, block.p, block.len);
		res->tokens_out = messages_tokens(c, msgs, o->method);
		if (res->tokens_out >= res->tokens_in) {
			jv_free(msgs);
			buf_free(&block);
			condense_unchanged(raw, rawlen,
			    "the condensed chat is not smaller", out, res);
			return 0;
		}
		condense_write(c, msgs, out);
	}
	log_event(LOG_INFO, "condense", "how", 's', res->how,
	    "tokens_in", 'i', (long)res->tokens_in,
	    "tokens_out", 'i', (long)res->tokens_out,
	    "ratio", 'r', (double)res->tokens_out / (double)res->tokens_in,
	    "task", 's', s->task >= 0 ? "kept" : "-",
	    "spans", 'i', (long)res->spans,
	    "summary_tokens", 'i', (long)est_text_tokens(spans, slen,
	    o->method), (const char *)NULL);
	buf_free(&block);
	return 1;
}
