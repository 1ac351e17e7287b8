/*
 * log.c - logfmt and JSON-lines stage logs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"
#include "util.h"

static int verbose, as_json, muted;

void
log_setup(int v, int json)
{
	verbose = v;
	as_json = json;
}

int
log_enabled(void)
{
	return (verbose || as_json) && !muted;
}

void
log_mute(int on)
{
	muted = on;
}

/* A string as a JSON string or a logfmt value (quoted when needed). */
static void
put_str(struct buf *b, const char *s, int json)
{
	int quote = json || *s == '\0' || strpbrk(s, " =\"") != NULL;
	const unsigned char *p;

	if (quote)
		buf_addc(b, '"');
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			buf_addc(b, '\\');
			buf_addc(b, (char)*p);
		} else if (*p < 0x20 || *p == 0x7f)
			buf_printf(b, json ? "\\u%04x" : " ", *p);
		else
			buf_addc(b, (char)*p);
	}
	if (quote)
		buf_addc(b, '"');
}

void
log_event(enum log_level level, const char *event, ...)
{
	struct buf b = BUF_INIT, v = BUF_INIT;	/* v: a value, masked */
	struct timeval tv;
	struct tm tm;
	char ts[32];
	const char *k;
	va_list ap;

	if (!log_enabled())
		return;
	(void)level;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	if (as_json) {
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		buf_printf(&b, "{\"time\":\"%s.%03ldZ\",\"prog\":", ts,
		    (long)tv.tv_usec / 1000);
		put_str(&b, lr_prog(), 1);
		buf_adds(&b, ",\"event\":");
		put_str(&b, event, 1);
	} else {
		strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
		buf_printf(&b, "%s.%03ld %s: %s", ts, (long)tv.tv_usec / 1000,
		    lr_prog(), event);
	}
	va_start(ap, event);
	while ((k = va_arg(ap, const char *)) != NULL) {
		int t = va_arg(ap, int);
		const char *s;
		long l;
		double d;

		switch (t) {
		case 's':
			s = va_arg(ap, const char *);
			if (s == NULL)
				continue;
			buf_printf(&b, as_json ? ",\"%s\":" : " %s=", k);
			buf_reset(&v);
			buf_add_redacted(&v, s);
			put_str(&b, buf_str(&v), as_json);
			break;
		case 'i':
			l = va_arg(ap, long);
			if (l < 0)
				continue;
			buf_printf(&b, as_json ? ",\"%s\":%ld" : " %s=%ld",
			    k, l);
			break;
		case 'f':
		case 'r':
			d = va_arg(ap, double);
			if (d < 0)
				continue;
			if (t == 'f')
				buf_printf(&b, as_json ? ",\"%s\":%.1f" :
				    " %s=%.1f", k, d);
			else
				buf_printf(&b, as_json ? ",\"%s\":%.3f" :
				    " %s=%.3f", k, d);
			break;
		}
	}
	va_end(ap);
	if (as_json)
		buf_addc(&b, '}');
	buf_addc(&b, '\n');
	fwrite(b.p, 1, b.len, stderr);
	fflush(stderr);
	buf_free(&b);
	buf_free(&v);
}
