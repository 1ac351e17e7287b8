/*
 * util.c - diagnostics, error values, buffers, allocation, number parsing.
 */
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *progname = "llm-route";
static int quiet;

void
lr_setprog(const char *argv0)
{
	const char *s;

	if (argv0 == NULL || *argv0 == '\0')
		return;
	s = strrchr(argv0, '/');
	progname = s != NULL ? s + 1 : argv0;
}

const char *
lr_prog(void)
{
	return progname;
}

void
lr_setquiet(int q)
{
	quiet = q;
}

/* Make a message one line: control characters become spaces. */
static void
oneline(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/*
 * Secrets no message may show: the API keys and llm-serve's token.
 * Kept here, beside the one function that masks them, so that every
 * diagnostic, log line and --print-config goes through the same check.
 */
#define NSECRETS 8
static char *secrets[NSECRETS];
static int nsecrets;

void
lr_secret(const char *s)
{
	int i;

	/*
	 * We never print a key ourselves: this catches a server echoing
	 * one back in an error.  Shorter than 4 bytes, every match of a
	 * couple of common letters in a message would be masked.
	 */
	if (s == NULL || strlen(s) < 4)
		return;
	for (i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], s) == 0)
			return;
	if (nsecrets < NSECRETS) {
		/* Counted once copied: "out of memory" masks the others. */
		char *copy = xstrdup(s);

		secrets[nsecrets++] = copy;
	}
}

/* Where masked text goes: a buffer, or a fixed array (cut to fit). */
struct redact_out {
	struct buf *b;
	char *p;
	size_t n, size;
};

static void
sink_add(struct redact_out *o, const char *s, size_t n)
{
	if (o->b != NULL) {
		buf_add(o->b, s, n);
		return;
	}
	if (n > o->size - 1 - o->n)
		n = o->size - 1 - o->n;
	memcpy(o->p + o->n, s, n);
	o->n += n;
	o->p[o->n] = '\0';
}

/* Does the user info of a URL end (or not start) at c? */
static int
authority_end(unsigned char c)
{
	return c <= ' ' || c == 0x7f || strchr("/?#\"',<>", c) != NULL;
}

/*
 * Copy s, masking each URL's password (scheme://user:***@host) and each
 * registered secret as "***".  A user info without ':' is masked whole
 * ("***@host"): some servers take a token as the user name.  No
 * allocation with a fixed array, so that "out of memory" can be said.
 */
static void
redact(struct redact_out *o, const char *s)
{
	size_t j, at, len;
	const char *colon;
	int i;

next:
	while (*s != '\0') {
		for (i = 0; i < nsecrets; i++) {
			len = strlen(secrets[i]);
			if (strncmp(s, secrets[i], len) == 0) {
				sink_add(o, "***", 3);
				s += len;
				goto next;
			}
		}
		if (strncmp(s, "://", 3) != 0) {
			sink_add(o, s++, 1);
			continue;
		}
		sink_add(o, s, 3);
		s += 3;
		for (j = 0, at = 0; !authority_end((unsigned char)s[j]); j++)
			if (s[j] == '@')
				at = j + 1;
		if (at == 0)
			continue;
		colon = memchr(s, ':', at - 1);
		if (colon != NULL)
			sink_add(o, s, (size_t)(colon - s) + 1);
		sink_add(o, "***@", 4);
		s += at;
	}
}

void
lr_redact(char *dst, size_t dstsz, const char *src)
{
	struct redact_out o = { NULL, dst, 0, dstsz };

	if (dstsz == 0)
		return;
	dst[0] = '\0';
	redact(&o, src);
}

void
buf_add_redacted(struct buf *b, const char *s)
{
	struct redact_out o = { b, NULL, 0, 0 };

	redact(&o, s);
}

/* What lr_die() calls before it exits (lr_atdie()). */
static void (*die_hook)(int, const char *, void *);
static void *die_ctx;
static int die_now;	/* lr_die() ends with _exit() */

void
lr_die_without_exit_handlers(void)
{
	die_now = 1;
}

void
lr_atdie(void (*fn)(int status, const char *msg, void *ctx), void *ctx)
{
	die_hook = fn;
	die_ctx = ctx;
}

/* Print the message; keep (1024 bytes, or NULL) gets the line. */
static void
vmsg(char *keep, const char *fmt, va_list ap)
{
	char raw[1024], line[1024];

	vsnprintf(raw, sizeof(raw), fmt, ap);
	lr_redact(line, sizeof(line), raw);
	oneline(line);
	fprintf(stderr, "%s: %s\n", progname, line);
	fflush(stderr);
	if (keep != NULL)
		memcpy(keep, line, sizeof(line));
}

int
lr_seterr(struct lr_err *e, int status, const char *fmt, ...)
{
	char raw[sizeof(e->msg)];
	va_list ap;

	if (e == NULL)
		return status;
	e->status = status;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	lr_redact(e->msg, sizeof(e->msg), raw);
	oneline(e->msg);
	return status;
}

void
lr_warn(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	vmsg(NULL, fmt, ap);
	va_end(ap);
}

void
lr_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(NULL, fmt, ap);
	va_end(ap);
}

void
lr_die(int status, const char *fmt, ...)
{
	void (*hook)(int, const char *, void *) = die_hook;
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vmsg(line, fmt, ap);
	va_end(ap);
	die_hook = NULL;	/* once, even if it dies itself */
	if (hook != NULL)
		hook(status, line, die_ctx);
	if (die_now)
		_exit(status);
	exit(status);
}

void
lr_die_err(const struct lr_err *e)
{
	lr_die(e->status, "%s", e->msg);
}

void
lr_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(NULL, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", progname);
	exit(LR_USAGE);
}

void
lr_excerpt(char *dst, size_t dstsz, const char *s, size_t len, size_t max)
{
	size_t i, n, o = 0;
	int cut = len > max;

	if (dstsz == 0)
		return;
	n = cut ? max : len;
	for (i = 0; i < n && o + 4 < dstsz; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	if ((cut || i < n) && o + 4 <= dstsz) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		lr_die(LR_FAIL, "out of memory");
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		lr_die(LR_FAIL, "out of memory");
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
buf_grow(struct buf *b, size_t more)
{
	size_t want, cap;

	if (more > SIZE_MAX - b->len - 1)
		lr_die(LR_FAIL, "out of memory");
	want = b->len + more + 1;
	if (want <= b->cap)
		return;
	cap = b->cap == 0 ? 256 : b->cap;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	/* The new size only once it is there: what runs as xrealloc()
	 * dies must not see a buffer bigger than it is. */
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	buf_grow(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addc(struct buf *b, char c)
{
	buf_grow(b, 1);
	b->p[b->len++] = c;
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return;
	buf_grow(b, (size_t)n);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *
buf_detach(struct buf *b)
{
	char *p;

	buf_grow(b, 0);
	b->p[b->len] = '\0';
	p = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

const char *
buf_str(struct buf *b)
{
	buf_grow(b, 0);
	b->p[b->len] = '\0';
	return b->p;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
}

void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

double
lr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int
lr_parse_long(const char *s, long min, long max, long *out, const char **why)
{
	char *end;
	long v;

	errno = 0;
	if (s == NULL || *s == '\0' || *s == ' ' || *s == '+') {
		*why = "not a number";
		return -1;
	}
	v = strtol(s, &end, 10);
	if (end == s || *end != '\0') {
		*why = "not a number";
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		*why = "out of range";
		return -1;
	}
	*out = v;
	return 0;
}

int
lr_parse_size(const char *s, size_t *out, const char **why)
{
	char *end;
	unsigned long long v, mult = 1;

	if (s == NULL || *s < '0' || *s > '9') {
		*why = "not a size";
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE) {
		*why = "out of range";
		return -1;
	}
	if (*end != '\0') {
		if (end[1] != '\0' && !(end[1] == 'i' && end[2] == 'B' &&
		    end[3] == '\0') && !(end[1] == 'B' && end[2] == '\0')) {
			*why = "not a size (use a number with K, M or G)";
			return -1;
		}
		switch (*end) {
		case 'k': case 'K': mult = 1024ULL; break;
		case 'm': case 'M': mult = 1024ULL * 1024; break;
		case 'g': case 'G': mult = 1024ULL * 1024 * 1024; break;
		default:
			*why = "not a size (use a number with K, M or G)";
			return -1;
		}
	}
	if (v > (unsigned long long)SIZE_MAX / mult) {
		*why = "out of range";
		return -1;
	}
	*out = (size_t)(v * mult);
	return 0;
}

int
lr_parse_ms(const char *s, long *out, const char **why)
{
	char *end;
	double v, mult = 1000.0;

	if (s == NULL || !((*s >= '0' && *s <= '9') || *s == '.')) {
		*why = "not a duration";
		return -1;
	}
	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno == ERANGE) {
		*why = "not a duration";
		return -1;
	}
	if (strcmp(end, "ms") == 0)
		mult = 1.0;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000.0;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mult = 60000.0;
	else {
		*why = "not a duration (use a number of seconds, or ms, s, m)";
		return -1;
	}
	v *= mult;
	if (!(v >= 0 && v <= (double)LONG_MAX / 2)) {
		*why = "out of range";
		return -1;
	}
	*out = (long)(v + 0.5);
	/* Rounded to 0, a tiny limit would mean none at all. */
	if (*out == 0 && v > 0)
		*out = 1;
	return 0;
}

const char *
lr_memfind(const char *p, size_t len, const char *needle, size_t n)
{
	const char *q, *end = p + len;

	if (n == 0)
		return p;
	while (len >= n && (q = memchr(p, needle[0], len - n + 1)) != NULL) {
		if (memcmp(q, needle, n) == 0)
			return q;
		p = q + 1;
		len = (size_t)(end - p);
	}
	return NULL;
}

void
lr_put_time(struct buf *b)
{
	struct timeval tv;
	struct tm tm;
	char ts[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_printf(b, "%s.%06ldZ", ts, (long)tv.tv_usec);
}
