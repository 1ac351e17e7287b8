/*
 * fuzz_stream_error.c - stream_error_message(): the message of a
 * backend's error body ({"error":"..."}, {"error":{"message":"..."}}, or
 * anything else, of which an excerpt is shown).
 *
 * The input is the body.  The output buffer is allocated at exactly
 * each of several sizes, so that a write past it is caught; the result
 * must be a NUL-terminated line within the buffer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, \
	"fuzz_stream_error: check failed: %s (%s:%d)\n", #cond, __FILE__, \
	__LINE__); abort(); } } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = { 1, 2, 3, 4, 5, 8, 64, 400, 1024 };
	const char *body = data != NULL ? (const char *)data : "";
	size_t i, j, len;
	char *out;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		out = malloc(sizes[i]);
		CHECK(out != NULL);
		stream_error_message(body, size, out, sizes[i]);
		len = strnlen(out, sizes[i]);
		CHECK(len < sizes[i]);
		for (j = 0; j < len; j++)
			CHECK((unsigned char)out[j] >= 0x20 &&
			    out[j] != 0x7f);
		free(out);
	}
	return 0;
}
