/*
 * log.h - the stage log on stderr (SPEC section 7).
 *
 * Owns: -v (one logfmt line per event: time, program, event, key=value
 * pairs) and --log-json (the same as one JSON object per line).
 * Warnings always print unless -q; info events only with -v or
 * --log-json.
 */
#ifndef LLM_LOG_H
#define LLM_LOG_H

enum log_level { LOG_INFO, LOG_WARN };

void log_setup(int verbose, int json);
int log_enabled(void);

/* Leave out every log line while on (a prediction's trial run). */
void log_mute(int on);

/*
 * log_event(level, event, key, type, value, ..., NULL): type 's' takes a
 * const char *, 'i' a long, 'f' a double (milliseconds, printed with one
 * decimal), 'r' a double (a ratio, three decimals).  Negative numbers and NULL strings are
 * left out: they stand for "not known".
 */
void log_event(enum log_level level, const char *event, ...);

#endif
