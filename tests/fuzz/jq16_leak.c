/*
 * jq16_leak.c - hide one known leak of libjq 1.6, linked into every
 * fuzz target so that every other leak still counts.
 *
 * libjq 1.6's parser leaks a string when a string follows another value
 * without a separator ('["a" "b"]', '{"a" "b"}'): value() in
 * src/jv_parse.c returns "Expected separator between values" without
 * freeing the new value (fixed upstream, where value() frees it).  The
 * leak is inside libjq, one per failed parse, and would otherwise stop
 * the fuzzer on the first such input.
 *
 * jv_parse_sized() and jv_parse() are defined here, so that src/ (linked
 * statically into the target) calls these.  Each input is parsed once
 * with LeakSanitizer disabled; only when the result is that error is the
 * result returned as is.  Otherwise it is freed and the input parsed
 * again with LeakSanitizer on, so a value that src/ fails to free is
 * still reported.
 */
#define _GNU_SOURCE	/* RTLD_NEXT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>
#include <sanitizer/lsan_interface.h>

jv jv_parse_sized(const char *string, int length);
jv jv_parse(const char *string);

static jv (*real_parse_sized)(const char *, int);

static int
separator_error(jv v)
{
	jv msg;
	int r = 0;

	if (jv_is_valid(v) || !jv_invalid_has_msg(jv_copy(v)))
		return 0;
	msg = jv_invalid_get_msg(jv_copy(v));
	if (jv_get_kind(msg) == JV_KIND_STRING)
		r = strstr(jv_string_value(msg),
		    "Expected separator between values") != NULL;
	jv_free(msg);
	return r;
}

jv
jv_parse_sized(const char *string, int length)
{
	jv v;

	if (real_parse_sized == NULL) {
		*(void **)&real_parse_sized = dlsym(RTLD_NEXT,
		    "jv_parse_sized");
		if (real_parse_sized == NULL) {
			fprintf(stderr, "jq16_leak: no jv_parse_sized\n");
			abort();
		}
	}
	__lsan_disable();
	v = real_parse_sized(string, length);
	__lsan_enable();
	if (separator_error(v))
		return v;
	jv_free(v);
	return real_parse_sized(string, length);
}

jv
jv_parse(const char *string)
{
	return jv_parse_sized(string, (int)strlen(string));
}
