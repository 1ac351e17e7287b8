/*
 * splice.h - a changed JSON document written as the bytes it was read
 * from, with only what changed serialized anew (SPEC section 2: what
 * the tools do not own leaves as the bytes that came in).
 *
 * Owns: a byte-level scanner for the spans of an object's members and
 * of an array's elements in input that libjq has already parsed, and
 * the writing of a new value against the old one and its bytes.  Parts
 * that did not change (the same jv, or an equal scalar) are copied from
 * the input, so numbers keep their digits and strings their escapes;
 * members that are gone are left out, with their separators; members
 * that are new are appended; objects and arrays that changed are walked
 * member by member, element by element.  Linear in the input's size.
 */
#ifndef LLM_SPLICE_H
#define LLM_SPLICE_H

#include <jv.h>

#include "util.h"

/*
 * Write new (kept) to out as raw's bytes where it is the same as old
 * (kept), the value that raw (n bytes; white space and a UTF-8 byte
 * order mark around it allowed) was parsed into.  When raw cannot be
 * scanned as old's text, new is serialized as it is.
 */
void splice_write(const char *raw, size_t n, jv old, jv new, struct buf *out);

/*
 * A value that moved: "to" was set from "from" (paths "key" or
 * "key.member", from the top level of the document).  Where the value
 * at "to" is the same as the one at "from", it is written with the
 * bytes it had there.  A list ends with a NULL "to".
 */
struct splice_move {
	const char *to, *from;
};

/* splice_write(), and the values in moves keep their bytes. */
void splice_write_moved(const char *raw, size_t n, jv old, jv new,
    const struct splice_move *moves, struct buf *out);

/*
 * An object new (kept) whose member key holds a value that is written
 * against old (kept), parsed from raw; the other members are
 * serialized.  For a request made around a bare array of messages.
 */
void splice_wrap(const char *raw, size_t n, jv old, jv new, const char *key,
    struct buf *out);

#endif
