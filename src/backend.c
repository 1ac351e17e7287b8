/*
 * backend.c - chat transfers over libcurl's multi interface.
 */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"

#define ERRBODY_MAX	65536
#define POLL_MS		50
#define SHOW_MS		30000L		/* /api/show, at most */
#define SHOW_REPLY_MAX	(4UL * 1024 * 1024)

volatile sig_atomic_t backend_interrupted;

struct priv {
	CURL *easy;
	struct curl_slist *hdrs;
	char *url;
	int url_index;
	int running;
	int delivered;		/* a callback got something: no failover */
	int abort_status;	/* set by a callback or a deadline */
	double t_start, t_first, t_last;
	struct buf errbody;
	char errbuf[CURL_ERROR_SIZE];
	char what[300];
};

static void
on_signal(int sig)
{
	backend_interrupted = sig;
}

void
backend_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void
backend_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		lr_die(LR_FAIL, "libcurl initialisation failed");
}

void
backend_global_cleanup(void)
{
	curl_global_cleanup();
}

char *
backend_chat_url(const char *base, enum api_kind api)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(base);

	buf_adds(&b, base);
	if (api == API_OLLAMA)
		buf_adds(&b, "/api/chat");
	else if (n >= 3 && strcmp(base + n - 3, "/v1") == 0)
		buf_adds(&b, "/chat/completions");
	else
		buf_adds(&b, "/v1/chat/completions");
	return buf_detach(&b);
}

static int
got_bytes(struct chat_xfer *x)
{
	struct priv *p = x->priv;
	double now = lr_now_ms();

	if (p->t_first == 0)
		p->t_first = now;
	p->t_last = now;
	return 0;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	got_bytes(ud);
	return size * nmemb;
}

static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct chat_xfer *x = ud;
	struct priv *p = x->priv;
	size_t n = size * nmemb;
	long code = 0;
	int r;

	got_bytes(x);
	x->bytes_in += n;
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		if (p->errbody.len < ERRBODY_MAX)
			buf_add(&p->errbody, ptr, n);
		return n;
	}
	r = stream_feed(&x->stream, ptr, n);
	if (x->stream.nlines > 0 && x->cb.delta != NULL)
		p->delivered = 1;
	if (r != 0) {
		p->abort_status = r;
		return CURL_WRITEFUNC_ERROR;
	}
	return n;
}

static void
xfer_close(struct priv *p)
{
	if (p->easy != NULL)
		curl_easy_cleanup(p->easy);
	curl_slist_free_all(p->hdrs);
	free(p->url);
	p->easy = NULL;
	p->hdrs = NULL;
	p->url = NULL;
	buf_free(&p->errbody);
}

/*
 * Out of memory inside libcurl is fatal, as it is in xmalloc(): a list
 * of headers cut short would go without its Authorization, a handle
 * never added would be waited for until its timeout, an URL not copied
 * would fail as a usage error, a failed transfer would count as the
 * backend's failure.
 */
static _Noreturn void
curl_nomem(void)
{
	lr_die(LR_FAIL, "out of memory");
}

static struct curl_slist *
header_add(struct curl_slist *l, const char *h)
{
	struct curl_slist *n = curl_slist_append(l, h);

	if (n == NULL)
		curl_nomem();
	return n;
}

/* A string option that libcurl copies. */
static void
setopt_str(CURL *c, CURLoption opt, const char *s)
{
	if (curl_easy_setopt(c, opt, s) == CURLE_OUT_OF_MEMORY)
		curl_nomem();
}

static void
multi_add(CURLM *m, CURL *c)
{
	CURLMcode mc = curl_multi_add_handle(m, c);

	if (mc == CURLM_OUT_OF_MEMORY)
		curl_nomem();
	if (mc != CURLM_OK)
		lr_die(LR_FAIL, "libcurl: %s", curl_multi_strerror(mc));
}

/* Set up an easy handle for the transfer's current URL. */
static CURL *
xfer_open(struct chat_xfer *x)
{
	struct priv *p = x->priv;
	const struct role *r = x->role;
	CURL *c;

	p->url = backend_chat_url(r->urls[p->url_index], r->api);
	x->url = r->urls[p->url_index];
	snprintf(p->what, sizeof(p->what), "%s %s", r->name, p->url);
	stream_free(&x->stream);
	stream_init(&x->stream, r->api, &x->cb, &x->err);
	x->stream.what = p->what;
	x->stream.keep = x->keep;
	x->bytes_in = 0;
	p->delivered = 0;
	p->abort_status = 0;
	p->t_start = lr_now_ms();
	p->t_first = p->t_last = 0;
	p->errbuf[0] = '\0';
	if ((c = curl_easy_init()) == NULL)
		lr_die(LR_FAIL, "out of memory");
	p->easy = c;
	p->hdrs = header_add(NULL, "Content-Type: application/json");
	p->hdrs = header_add(p->hdrs, r->api == API_OPENAI ?
	    "Accept: text/event-stream" : "Accept: application/x-ndjson");
	p->hdrs = header_add(p->hdrs, "Expect:");
	if (r->api_key != NULL && *r->api_key != '\0') {
		struct buf h = BUF_INIT;

		buf_printf(&h, "Authorization: Bearer %s", r->api_key);
		p->hdrs = header_add(p->hdrs, buf_str(&h));
		buf_free(&h);
	}
	setopt_str(c, CURLOPT_URL, p->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)x->body_len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, p->hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(c, CURLOPT_PRIVATE, x);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "llm-route/" LR_VERSION);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	setopt_str(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (r->connect_ms > 0)
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
		    (long)r->connect_ms);
	x->bytes_out = x->body_len;
	return c;
}

static const char *
secs(double ms, char *b, size_t n)
{
	/* Under 0.1 s, in ms: a 1 ms limit is not "0.0 s". */
	if (ms < 100)
		snprintf(b, n, "%.0f ms", ms);
	else
		snprintf(b, n, ms < 10000 ? "%.1f s" : "%.0f s", ms / 1000.0);
	return b;
}

/* Check a running transfer's deadlines; sets abort_status. */
static int
deadline(struct chat_xfer *x, double now)
{
	struct priv *p = x->priv;
	const struct role *r = x->role;
	char t[32];

	if (p->t_first == 0 && r->first_byte_ms > 0 &&
	    now - p->t_start > (double)r->first_byte_ms)
		return p->abort_status = lr_seterr(&x->err, LR_TIMEOUT,
		    "%s: no reply within %s (first-byte timeout)", p->what,
		    secs((double)r->first_byte_ms, t, sizeof(t)));
	if (p->t_first != 0 && r->idle_ms > 0 &&
	    now - p->t_last > (double)r->idle_ms)
		return p->abort_status = lr_seterr(&x->err, LR_TIMEOUT,
		    "%s: nothing received for %s (idle timeout)", p->what,
		    secs((double)r->idle_ms, t, sizeof(t)));
	if (r->total_ms > 0 && now - p->t_start > (double)r->total_ms)
		return p->abort_status = lr_seterr(&x->err, LR_TIMEOUT,
		    "%s: not done within %s (timeout)", p->what,
		    secs((double)r->total_ms, t, sizeof(t)));
	return 0;
}

/* Turn a finished transfer's curl result into its status. */
/*
 * A server that cannot be reached, in the words a user sees for every
 * request of the role: the system's reason without curl's timing, and
 * where to point the role.
 */
static int
unreachable(const struct role *r, const char *what, CURL *c, CURLcode res,
    const char *why, struct lr_err *e)
{
	char msg[400];
	long oserr = 0;

	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
	if (res == CURLE_COULDNT_CONNECT && oserr != 0)
		snprintf(msg, sizeof(msg), "cannot connect: %s",
		    strerror((int)oserr));
	else
		snprintf(msg, sizeof(msg), "%s", why);
	return lr_seterr(e, LR_UNREACHABLE, "%s: %s (is the server running? "
	    "point %s at it with LLM_%s_URL%s)", what, msg, r->name, r->name,
	    strcmp(r->name, "GPU0") == 0 ? " or OLLAMA_HOST" : "");
}

static int
finish(struct chat_xfer *x, CURLcode res)
{
	struct priv *p = x->priv;
	char msg[400], t[32];
	const char *why;

	x->ms_total = lr_now_ms() - p->t_start;
	x->ms_first = p->t_first != 0 ? p->t_first - p->t_start : -1;
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &x->http_status);
	if (p->abort_status != 0)
		return p->abort_status;
	why = p->errbuf[0] != '\0' ? p->errbuf : curl_easy_strerror(res);
	switch (res) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
		return unreachable(x->role, p->what, p->easy, res, why,
		    &x->err);
	case CURLE_OPERATION_TIMEDOUT:
		return lr_seterr(&x->err, LR_TIMEOUT, "%s: connect timeout "
		    "after %s", p->what, secs((double)x->role->connect_ms, t,
		    sizeof(t)));
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return lr_seterr(&x->err, LR_USAGE, "%s: %s", p->what, why);
	case CURLE_GOT_NOTHING:
		return lr_seterr(&x->err, LR_MALFORMED, "%s: the server closed "
		    "the connection without a reply", p->what);
	case CURLE_OUT_OF_MEMORY:
		curl_nomem();
	default:
		if (x->http_status >= 200 && x->http_status <= 299)
			return lr_seterr(&x->err, LR_MALFORMED, "%s: the reply "
			    "was cut before %s: %s", p->what,
			    x->role->api == API_OPENAI ? "[DONE]" : "done",
			    why);
		if (x->http_status == 0)
			return lr_seterr(&x->err, LR_UNREACHABLE, "%s: %s",
			    p->what, why);
		break;
	}
	if (x->http_status < 200 || x->http_status > 299) {
		stream_error_message(p->errbody.p, p->errbody.len, msg,
		    sizeof(msg));
		return lr_seterr(&x->err, LR_BACKEND, "%s: HTTP %ld%s%s",
		    p->what, x->http_status, *msg ? ": " : "", msg);
	}
	return stream_finish(&x->stream);
}

/* May the transfer try its role's next URL after this failure? */
static int
failover(struct chat_xfer *x)
{
	struct priv *p = x->priv;

	if (p->url_index + 1 >= x->role->nurls || p->delivered ||
	    backend_interrupted)
		return 0;
	return x->status == LR_UNREACHABLE ||
	    (x->status == LR_BACKEND && x->http_status >= 500);
}

/*
 * Roles that failed in this process (unreachable, timed out, 5xx once
 * every URL was tried): not asked again, so a dead or hung helper costs
 * one timeout, not one per chunk and per try.
 */
static struct {
	char name[8];
	struct lr_err err;
} down[NROLES];

static int
down_index(const struct role *r, int add)
{
	int i;

	for (i = 0; i < NROLES; i++)
		if (strcmp(down[i].name, r->name) == 0)
			return i;
	for (i = 0; add && i < NROLES; i++)
		if (down[i].name[0] == '\0') {
			snprintf(down[i].name, sizeof(down[i].name), "%s",
			    r->name);
			return i;
		}
	return -1;
}

int
backend_role_down(const struct role *r, struct lr_err *e)
{
	int i = down_index(r, 0);

	if (i < 0)
		return 0;
	if (e != NULL)
		*e = down[i].err;
	return 1;
}

void
backend_mark_down(const struct role *r, const struct lr_err *e)
{
	int i = down_index(r, 1);

	if (i >= 0 && down[i].err.status == 0)
		down[i].err = *e;
}

/* Does this failure say the role is down, rather than this request bad? */
static int
role_failure(const struct chat_xfer *x)
{
	return x->status == LR_UNREACHABLE || x->status == LR_TIMEOUT ||
	    (x->status == LR_BACKEND && x->http_status >= 500);
}

void (*backend_observer)(const struct chat_xfer *x);

static void
log_done(struct chat_xfer *x)
{
	struct priv *p = x->priv;
	jv f = x->stream.final;
	double pe = -1, ev = -1;

	if (jv_get_kind(f) == JV_KIND_OBJECT) {
		jv v = jv_object_get(jv_copy(f), jv_string("prompt_eval_count"));
		if (jv_get_kind(v) == JV_KIND_NUMBER)
			pe = jv_number_value(v);
		jv_free(v);
		v = jv_object_get(jv_copy(f), jv_string("eval_count"));
		if (jv_get_kind(v) == JV_KIND_NUMBER)
			ev = jv_number_value(v);
		jv_free(v);
	}
	log_event(x->status == 0 ? LOG_INFO : LOG_WARN, "request",
	    "role", 's', x->role->name,
	    "url", 's', p->url,
	    "status", 'i', (long)x->http_status,
	    "result", 's', x->status == 0 ? "ok" : "error",
	    "exit", 'i', (long)x->status,
	    "ms", 'f', x->ms_total,
	    "first_byte_ms", 'f', x->ms_first,
	    "bytes_out", 'i', (long)x->bytes_out,
	    "bytes_in", 'i', (long)x->bytes_in,
	    "prompt_tokens", 'i', (long)pe,
	    "answer_tokens", 'i', (long)ev,
	    (const char *)NULL);
	if (x->status == 0 && backend_observer != NULL)
		backend_observer(x);
}

int
backend_run(struct chat_xfer **xs, int n, int jobs)
{
	CURLM *m;
	CURLMsg *msg;
	int i, next = 0, active = 0, left, still;
	struct priv *privs;

	if (n <= 0)
		return 0;
	if (jobs <= 0 || jobs > n)
		jobs = n;
	privs = xmalloc(sizeof(*privs) * (size_t)n);
	memset(privs, 0, sizeof(*privs) * (size_t)n);
	if ((m = curl_multi_init()) == NULL)
		lr_die(LR_FAIL, "out of memory");
	for (i = 0; i < n; i++) {
		xs[i]->priv = &privs[i];
		xs[i]->status = -1;
		xs[i]->err.msg[0] = '\0';
		stream_init(&xs[i]->stream, xs[i]->role->api, NULL, NULL);
	}
	for (;;) {
		while (active < jobs && next < n) {
			struct chat_xfer *x = xs[next++];
			struct lr_err de;

			if (backend_role_down(x->role, &de)) {
				/* Failed already: at once, the same way. */
				x->err = de;
				x->status = de.status;
				x->url = x->role->urls[0];
				if (x->on_done != NULL)
					x->on_done(x, x->done_ctx);
				continue;
			}
			multi_add(m, xfer_open(x));
			privs[next - 1].running = 1;
			active++;
		}
		if (active == 0)
			break;
		if (curl_multi_perform(m, &still) == CURLM_OUT_OF_MEMORY)
			curl_nomem();
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct chat_xfer *x;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&x);
			x->status = finish(x, msg->data.result);
			log_done(x);
			curl_multi_remove_handle(m, msg->easy_handle);
			if (failover(x)) {
				struct priv *p = x->priv;

				lr_warn("%s; trying %s", x->err.msg,
				    x->role->urls[p->url_index + 1]);
				xfer_close(p);
				p->url_index++;
				multi_add(m, xfer_open(x));
				continue;
			}
			xfer_close(x->priv);
			((struct priv *)x->priv)->running = 0;
			active--;
			if (role_failure(x) && !backend_interrupted)
				backend_mark_down(x->role, &x->err);
			if (x->on_done != NULL)
				x->on_done(x, x->done_ctx);
		}
		if (backend_interrupted)
			break;
		/* Deadlines: abort a transfer by removing it. */
		for (i = 0; i < next; i++) {
			struct priv *p = &privs[i];

			if (!p->running || deadline(xs[i], lr_now_ms()) == 0)
				continue;
			curl_multi_remove_handle(m, p->easy);
			xs[i]->status = finish(xs[i], CURLE_OK);
			log_done(xs[i]);
			if (role_failure(xs[i]))
				backend_mark_down(xs[i]->role, &xs[i]->err);
			xfer_close(p);
			p->running = 0;
			active--;
			if (xs[i]->on_done != NULL)
				xs[i]->on_done(xs[i], xs[i]->done_ctx);
		}
		/* Wait only when there is nothing to start: with a free
		 * slot and a transfer waiting, it starts at once (polling
		 * with no transfer running would sleep all of POLL_MS). */
		if (active > 0 && (active >= jobs || next >= n))
			curl_multi_poll(m, NULL, 0, POLL_MS, NULL);
	}
	for (i = 0; i < n; i++) {
		if (privs[i].running) {
			curl_multi_remove_handle(m, privs[i].easy);
			xfer_close(&privs[i]);
		}
		if (xs[i]->status == -1)
			xs[i]->status = lr_seterr(&xs[i]->err,
			    128 + (int)backend_interrupted, "interrupted");
		xs[i]->priv = NULL;
	}
	curl_multi_cleanup(m);
	free(privs);
	if (backend_interrupted)
		return 128 + (int)backend_interrupted;
	for (i = 0; i < n; i++)
		if (xs[i]->status != 0)
			return xs[i]->status;
	return 0;
}

void
backend_xfer_free(struct chat_xfer *x)
{
	stream_free(&x->stream);
}

int
backend_probe(const struct role *r, struct lr_err *e)
{
	char errbuf[CURL_ERROR_SIZE], what[300];
	CURLcode res = CURLE_OK;
	int i, st = 0;
	CURL *c;

	for (i = 0; i < r->nurls; i++) {
		if ((c = curl_easy_init()) == NULL)
			lr_die(LR_FAIL, "out of memory");
		errbuf[0] = '\0';
		setopt_str(c, CURLOPT_URL, r->urls[i]);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
		setopt_str(c, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
		    r->connect_ms > 0 ? (long)r->connect_ms : 5000L);
		res = curl_easy_perform(c);
		if (res == CURLE_OUT_OF_MEMORY)
			curl_nomem();
		snprintf(what, sizeof(what), "%s %s", r->name, r->urls[i]);
		if (res == CURLE_OK)
			st = 0;
		else if (res == CURLE_OPERATION_TIMEDOUT)
			st = lr_seterr(e, LR_TIMEOUT, "%s: connect timeout",
			    what);
		else
			st = unreachable(r, what, c, res, *errbuf ? errbuf :
			    curl_easy_strerror(res), e);
		curl_easy_cleanup(c);
		if (st == 0)
			break;
	}
	return st;
}

struct fwd {
	CURL *c;
	const struct fwd_cb *cb;
	int headed, status;
	const struct role *r;
	double t_start, t_last;	/* ms; t_last: the last bytes, or 0 */
	const char *timed_out;	/* "first byte", "idle" */
};

/* Cancel on a signal, and on the role's first-byte and idle limits. */
static int
fwd_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct fwd *f = ud;
	double now = lr_now_ms();

	(void)dt, (void)dn, (void)ut, (void)un;
	if (backend_interrupted)
		return 1;
	if (f->t_last == 0 && f->r->first_byte_ms > 0 &&
	    now - f->t_start > (double)f->r->first_byte_ms)
		f->timed_out = "first byte";
	else if (f->t_last > 0 && f->r->idle_ms > 0 &&
	    now - f->t_last > (double)f->r->idle_ms)
		f->timed_out = "idle";
	return f->timed_out != NULL;
}

static int
fwd_head(struct fwd *f)
{
	long code = 0;
	char *ct = NULL;

	if (f->headed)
		return 0;
	f->headed = 1;
	curl_easy_getinfo(f->c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(f->c, CURLINFO_CONTENT_TYPE, &ct);
	return f->status = f->cb->head(f->cb->ctx, code, ct);
}

static size_t
fwd_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct fwd *f = ud;
	size_t n = size * nmemb;

	f->t_last = lr_now_ms();
	if (fwd_head(f) != 0 ||
	    (f->status = f->cb->data(f->cb->ctx, ptr, n)) != 0)
		return CURL_WRITEFUNC_ERROR;
	return n;
}

/* One forwarded request on one URL. */
static int
forward_one(const struct role *r, const char *base, const char *method,
    const char *path, const char *body, size_t len, long total_ms,
    const struct fwd_cb *cb, struct lr_err *e)
{
	struct buf url = BUF_INIT, auth = BUF_INIT;
	struct curl_slist *h = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", what[300], t[32];
	curl_off_t conn = 0;
	struct fwd f;
	CURLcode res;
	int st = 0;

	memset(&f, 0, sizeof(f));
	f.cb = cb;
	f.r = r;
	f.t_start = lr_now_ms();
	buf_printf(&url, "%s%s", base, path);
	if ((f.c = curl_easy_init()) == NULL)
		lr_die(LR_FAIL, "out of memory");
	if (body != NULL)
		h = header_add(h, "Content-Type: application/json");
	if (r->api_key != NULL && *r->api_key != '\0') {
		buf_printf(&auth, "Authorization: Bearer %s", r->api_key);
		h = header_add(h, buf_str(&auth));
	}
	setopt_str(f.c, CURLOPT_URL, buf_str(&url));
	curl_easy_setopt(f.c, CURLOPT_NOSIGNAL, 1L);
	setopt_str(f.c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(f.c, CURLOPT_NOBODY, 1L);
	else if (body != NULL) {
		curl_easy_setopt(f.c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(f.c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    strcmp(method, "POST") != 0)
		setopt_str(f.c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(f.c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(f.c, CURLOPT_WRITEFUNCTION, fwd_write);
	curl_easy_setopt(f.c, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(f.c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(f.c, CURLOPT_CONNECTTIMEOUT_MS,
	    r->connect_ms > 0 ? (long)r->connect_ms : 5000L);
	if (total_ms > 0)
		curl_easy_setopt(f.c, CURLOPT_TIMEOUT_MS, total_ms);
	curl_easy_setopt(f.c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(f.c, CURLOPT_XFERINFOFUNCTION, fwd_progress);
	curl_easy_setopt(f.c, CURLOPT_XFERINFODATA, &f);
	res = curl_easy_perform(f.c);
	if (res == CURLE_OUT_OF_MEMORY)
		curl_nomem();
	if (res == CURLE_OK)
		st = fwd_head(&f);
	else if (f.status != 0)
		st = lr_seterr(e, f.status, "%s %s: output closed", r->name,
		    buf_str(&url));
	else if (f.timed_out != NULL)
		st = lr_seterr(e, LR_TIMEOUT, "%s %s: timed out (%s, after "
		    "%.1f s)", r->name, buf_str(&url), f.timed_out,
		    (lr_now_ms() - f.t_start) / 1000);
	else if (res == CURLE_ABORTED_BY_CALLBACK)
		st = lr_seterr(e, 128 + (int)backend_interrupted,
		    "interrupted");
	else if (res == CURLE_COULDNT_CONNECT ||
	    res == CURLE_COULDNT_RESOLVE_HOST || res == CURLE_SEND_ERROR) {
		snprintf(what, sizeof(what), "%s %s", r->name, buf_str(&url));
		st = unreachable(r, what, f.c, res, *errbuf ? errbuf :
		    curl_easy_strerror(res), e);
	} else if (res == CURLE_OPERATION_TIMEDOUT) {
		/* Not connected yet: the connect timeout; else the whole. */
		curl_easy_getinfo(f.c, CURLINFO_CONNECT_TIME_T, &conn);
		if (conn == 0)
			st = lr_seterr(e, LR_TIMEOUT, "%s %s: connect timeout "
			    "after %s", r->name, buf_str(&url), secs((double)
			    (r->connect_ms > 0 ? r->connect_ms : 5000L), t,
			    sizeof(t)));
		else
			st = lr_seterr(e, LR_TIMEOUT, "%s %s: not done within "
			    "%s (timeout)", r->name, buf_str(&url),
			    secs((double)total_ms, t, sizeof(t)));
	} else
		st = lr_seterr(e, LR_MALFORMED, "%s %s: %s", r->name,
		    buf_str(&url), *errbuf ? errbuf : curl_easy_strerror(res));
	curl_slist_free_all(h);
	curl_easy_cleanup(f.c);
	buf_free(&url);
	buf_free(&auth);
	return st;
}

int
backend_forward(const struct role *r, const char *method, const char *path,
    const char *body, size_t len, long total_ms, const struct fwd_cb *cb,
    struct lr_err *e)
{
	int i, st = lr_seterr(e, LR_UNREACHABLE, "%s: no URL", r->name);

	for (i = 0; i < r->nurls; i++) {
		st = forward_one(r, r->urls[i], method, path, body, len,
		    total_ms, cb, e);
		if (st != LR_UNREACHABLE)
			break;
	}
	return st;
}

/* What an /api/show reply collects: its status and body, capped. */
struct show_reply {
	long code;
	struct buf body;
};

static int
show_head(void *ctx, long status, const char *ctype)
{
	struct show_reply *r = ctx;

	(void)ctype;
	r->code = status;
	return 0;
}

static int
show_data(void *ctx, const char *p, size_t n)
{
	struct show_reply *r = ctx;

	/* The model's description is a few kB; the rest is not read. */
	if (r->body.len < SHOW_REPLY_MAX)
		buf_add(&r->body, p, n);
	return 0;
}

/* The context length in an /api/show reply, or -1. */
static long
show_context_length(const struct buf *b)
{
	jv v, info, arch, n;
	long ctx = -1;

	v = b->len > 0 && b->len < 0x7fffffff ?
	    jv_parse_sized(b->p, (int)b->len) : jv_invalid();
	info = jv_get_kind(v) == JV_KIND_OBJECT ?
	    jv_object_get(jv_copy(v), jv_string("model_info")) : jv_invalid();
	arch = jv_get_kind(info) == JV_KIND_OBJECT ?
	    jv_object_get(jv_copy(info), jv_string("general.architecture")) :
	    jv_invalid();
	n = jv_invalid();
	if (jv_get_kind(arch) == JV_KIND_STRING)
		n = jv_object_get(jv_copy(info), jv_string_fmt(
		    "%s.context_length", jv_string_value(arch)));
	if (jv_get_kind(n) == JV_KIND_NUMBER && jv_number_value(n) > 0 &&
	    jv_number_value(n) < 1e9)
		ctx = (long)jv_number_value(n);
	jv_free(n);
	jv_free(arch);
	jv_free(info);
	jv_free(v);
	return ctx;
}

/*
 * Through backend_forward(), the path every other request to a role but
 * a chat takes: the role's connect, first-byte and idle timeouts and its
 * key, the next URL when one is unreachable.  In all at most the role's
 * total timeout, and SHOW_MS, since the reply is a few kB read from disk:
 * a server that takes longer is hung, whatever a prompt may take it.
 */
int
backend_context_length(const struct role *r, const char *model, long *ctx,
    struct lr_err *e)
{
	struct show_reply rep;
	struct fwd_cb cb = { show_head, show_data, &rep };
	struct buf url = BUF_INIT;
	char msg[400];
	long total = r->total_ms > 0 && r->total_ms < SHOW_MS ? r->total_ms :
	    SHOW_MS;
	int i, st = lr_seterr(e, LR_UNREACHABLE, "%s: no URL", r->name);
	jv body;

	body = jv_dump_string(jv_object_set(jv_object(), jv_string("model"),
	    jv_string(model)), 0);
	for (i = 0; i < r->nurls; i++) {
		memset(&rep, 0, sizeof(rep));
		buf_reset(&url);
		buf_printf(&url, "%s/api/show", r->urls[i]);
		st = forward_one(r, r->urls[i], "POST", "/api/show",
		    jv_string_value(body), strlen(jv_string_value(body)),
		    total, &cb, e);
		if (st == 0 && (rep.code < 200 || rep.code > 299)) {
			stream_error_message(rep.body.p, rep.body.len, msg,
			    sizeof(msg));
			st = lr_seterr(e, LR_BACKEND, "%s %s: HTTP %ld%s%s",
			    r->name, buf_str(&url), rep.code, *msg ? ": " : "",
			    msg);
		} else if (st == 0 &&
		    (*ctx = show_context_length(&rep.body)) < 0)
			st = lr_seterr(e, LR_MALFORMED, "%s %s: no context "
			    "length in model_info", r->name, buf_str(&url));
		log_event(st == 0 ? LOG_INFO : LOG_WARN, "show", "role", 's',
		    r->name, "url", 's', buf_str(&url), "status", 'i',
		    rep.code, "context_length", 'i', st == 0 ? *ctx : -1L,
		    (const char *)NULL);
		buf_free(&rep.body);
		/* The next URL as a chat would try it: this one is not
		 * there, or failed as a server fails. */
		if (st != LR_UNREACHABLE && (st != LR_BACKEND ||
		    rep.code < 500))
			break;
	}
	jv_free(body);
	buf_free(&url);
	return st;
}
