/*
 * fuzz_estimate.c - est_text_tokens() and est_message_tokens(), which
 * read the raw bytes of every message (any UTF-8, valid or not).
 *
 * The input is the content of one message.  Checks: no estimate is
 * wildly larger than the text (a negative cost converted to size_t, or
 * a runaway rate, would show here), chars4 is ceil(code points / 4),
 * and the message estimate adds the template to the text estimate.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "estimate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, \
	"fuzz_estimate: check failed: %s (%s:%d)\n", #cond, __FILE__, \
	__LINE__); abort(); } } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = data != NULL ? (const char *)data : "";
	size_t q, c4, cp = 0, i, mq, mc, n;
	char role[64];

	for (i = 0; i < size; i++)
		if ((data[i] & 0xc0) != 0x80)
			cp++;
	q = est_text_tokens(s, size, EST_QWEN);
	c4 = est_text_tokens(s, size, EST_CHARS4);
	/* At most a few tokens per byte (rare scripts: 2 per letter). */
	CHECK(q <= 3 * size + 1);
	CHECK(c4 == (cp + 3) / 4);
	mq = est_message_tokens("assistant", s, size, EST_QWEN);
	mc = est_message_tokens("user", s, size, EST_CHARS4);
	CHECK(mc == c4);
	CHECK(mq >= q && mq <= q + 4 + est_text_tokens("assistant", 9,
	    EST_QWEN));
	/* The role is outside input too: any string of a chat. */
	n = size < sizeof(role) - 1 ? size : sizeof(role) - 1;
	memcpy(role, s, n);
	role[n] = '\0';
	(void)est_message_tokens(role, s, size, EST_QWEN);
	return 0;
}
