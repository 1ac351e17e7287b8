/*
 * util.h - what every file shares: exit statuses, one-line diagnostics,
 * error values passed up from the stages, growable byte buffers and
 * checked allocation.
 */
#ifndef LLM_UTIL_H
#define LLM_UTIL_H

#include <stdarg.h>
#include <stddef.h>

/* Exit statuses, SPEC section 7.  The same in every binary. */
enum lr_status {
	LR_OK = 0,
	LR_FAIL = 1,		/* other runtime failure */
	LR_USAGE = 2,		/* usage or configuration error */
	LR_INPUT = 3,		/* bad input */
	LR_UNREACHABLE = 4,	/* backend refused, no route, DNS */
	LR_TIMEOUT = 5,		/* backend timed out */
	LR_BACKEND = 6,		/* backend answered with an error */
	LR_MALFORMED = 7	/* backend reply malformed or cut */
};

/*
 * An error travelling up from a stage: a status and a one-line message
 * ("what failed: why", without the program name).
 */
struct lr_err {
	int status;
	char msg[512];
};

/* Set e (if not NULL) and return status.  The message is made one line. */
int lr_seterr(struct lr_err *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void lr_setprog(const char *argv0);
const char *lr_prog(void);
void lr_setquiet(int quiet);

/* "prog: message" on stderr, made one line; lr_die exits with status. */
void lr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lr_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void lr_die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
_Noreturn void lr_die_err(const struct lr_err *e);
/*
 * A function lr_die() calls once, after the message and before it
 * exits, with the status and the message: to end a stream that an
 * error (out of memory) cuts short.  It must not count on allocating.
 * NULL clears it.
 */
void lr_atdie(void (*fn)(int status, const char *msg, void *ctx),
    void *ctx);
/*
 * From now on lr_die() ends the process with _exit(), after its message
 * and the lr_atdie() function: for a forked worker, whose stdio streams
 * are its parent's or half-way through a write (an fopencookie() stream
 * whose write function ran out of memory), and must not be flushed.
 */
void lr_die_without_exit_handlers(void);
_Noreturn void lr_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Secrets kept out of every message (SPEC section 7): lr_secret()
 * registers one (an API key, llm-serve's token); lr_redact() copies src
 * into dst (dstsz, cut to fit) with each registered secret and each
 * URL's password shown as "***" (http://user:***@host).  lr_seterr(),
 * lr_warn(), lr_msg(), lr_die() and log_event() mask what they print;
 * whatever prints settings on stdout (--print-config, --explain) uses
 * buf_add_redacted().
 */
void lr_secret(const char *s);
void lr_redact(char *dst, size_t dstsz, const char *src);

/* Copy at most max bytes of s into dst (size dstsz) for a message:
 * control characters become spaces, a cut is marked with "...". */
void lr_excerpt(char *dst, size_t dstsz, const char *s, size_t len,
    size_t max);

void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

struct buf {
	char *p;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_grow(struct buf *b, size_t more);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Add s as lr_redact() shows it. */
void buf_add_redacted(struct buf *b, const char *s);
/* Take the NUL-terminated contents; b is left empty. */
char *buf_detach(struct buf *b);
/* NUL-terminate without counting the NUL. */
const char *buf_str(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

/* The first n-byte needle in the len bytes at p, or NULL (memmem). */
const char *lr_memfind(const char *p, size_t len, const char *needle,
    size_t n);

/* The time now as Ollama writes created_at: 2026-01-01T00:00:00.000000Z. */
void lr_put_time(struct buf *b);

/* Monotonic clock in milliseconds. */
double lr_now_ms(void);

/*
 * Parse a non-negative number with an optional suffix, with range checks:
 * lr_parse_size: bytes, suffixes K, M, G (powers of 1024);
 * lr_parse_ms: a duration, default unit seconds, suffixes ms, s, m;
 *     more than 0 but under 1 ms is 1 ms (0 means "no limit");
 * lr_parse_long: a plain integer in [min, max].
 * Each returns 0 on success, -1 with *why set on failure.
 */
int lr_parse_size(const char *s, size_t *out, const char **why);
int lr_parse_ms(const char *s, long *out, const char **why);
int lr_parse_long(const char *s, long min, long max, long *out,
    const char **why);

#endif
