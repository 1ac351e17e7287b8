/*
 * splice.c - writing a changed JSON document with its input's bytes.
 *
 * The scanner trusts that libjq has parsed the bytes (chat_parse() did),
 * but still checks every bound: a span it cannot find makes the value
 * serialized, never a read past the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "splice.h"

#define NONE	((size_t)-1)

static size_t
skip_ws(const char *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
	    p[i] == '\r'))
		i++;
	return i;
}

/* p[i] is '"': the index after the closing quote, or NONE. */
static size_t
skip_string(const char *p, size_t n, size_t i)
{
	const char *q;
	size_t j, k;

	for (j = i + 1; j < n; j = k + 1) {
		if ((q = memchr(p + j, '"', n - j)) == NULL)
			return NONE;
		k = (size_t)(q - p);
		/* Escaped when an odd run of backslashes precedes it; each
		 * run is counted once, so this stays linear. */
		{
			size_t b = k;

			while (b > i + 1 && p[b - 1] == '\\')
				b--;
			if ((k - b) % 2 == 0)
				return k + 1;
		}
	}
	return NONE;
}

/* p[i] starts a value: the index after it, or NONE. */
static size_t
skip_value(const char *p, size_t n, size_t i)
{
	size_t depth = 0;

	if (i >= n)
		return NONE;
	if (p[i] == '"')
		return skip_string(p, n, i);
	if (p[i] != '{' && p[i] != '[') {
		while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' &&
		    p[i] != ' ' && p[i] != '\t' && p[i] != '\n' &&
		    p[i] != '\r')
			i++;
		return i;
	}
	while (i < n) {
		switch (p[i]) {
		case '"':
			if ((i = skip_string(p, n, i)) == NONE)
				return NONE;
			continue;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (--depth == 0)
				return i + 1;
			break;
		}
		i++;
	}
	return NONE;
}

static void
dump(jv v, struct buf *out)
{
	jv s = jv_dump_string(jv_copy(v), 0);

	buf_add(out, jv_string_value(s),
	    (size_t)jv_string_length_bytes(jv_copy(s)));
	jv_free(s);
}

/* The whole document, for values that moved (splice_write_moved()). */
struct ctx {
	const char *root;	/* the top-level value's bytes */
	size_t rootn;
	jv rootold;		/* and what they were parsed into */
	const struct splice_move *moves;
};

static void splice_value(const struct ctx *x, const char *path,
    const char *r, size_t rn, jv old, jv new, struct buf *out);

struct member {
	size_t pre;		/* where the separator before it starts */
	size_t key, kend;	/* its key, with the quotes */
	size_t val, end;	/* its value */
};

/* The spans of an object's members or an array's elements; -1 when r
 * cannot be scanned. */
static int
scan_items(const char *r, size_t rn, int object, struct member **pv,
    size_t *pn)
{
	struct member *v = NULL, *m;
	size_t n = 0, cap = 0, i = 1, j;
	char close = object ? '}' : ']';

	*pv = NULL;
	*pn = 0;
	j = skip_ws(r, rn, i);
	if (j < rn && r[j] == close)
		return 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				lr_die(LR_FAIL, "out of memory");
		}
		m = &v[n];
		m->pre = i;
		i = skip_ws(r, rn, i);
		if (n > 0) {
			if (i >= rn || r[i] != ',')
				goto bad;
			i = skip_ws(r, rn, i + 1);
		}
		m->key = m->kend = i;
		if (object) {
			if (i >= rn || r[i] != '"' ||
			    (i = skip_string(r, rn, i)) == NONE)
				goto bad;
			m->kend = i;
			i = skip_ws(r, rn, i);
			if (i >= rn || r[i] != ':')
				goto bad;
			i = skip_ws(r, rn, i + 1);
		}
		m->val = i;
		if ((i = skip_value(r, rn, i)) == NONE || i == m->val)
			goto bad;
		m->end = i;
		n++;
		j = skip_ws(r, rn, i);
		if (j < rn && r[j] == close)
			break;
		if (j >= rn)
			goto bad;
	}
	*pv = v;
	*pn = n;
	return 0;
bad:
	free(v);
	return -1;
}

/* A member's key as a jv string (invalid when it is no string). */
static jv
member_key(const char *r, const struct member *m)
{
	size_t len = m->kend - m->key;

	if (memchr(r + m->key, '\\', len) != NULL)	/* the parser decodes */
		return jv_parse_sized(r + m->key, (int)len);
	return jv_string_sized(r + m->key + 1, (int)len - 2);
}

/* The span of member key of the object r (rn bytes), or -1. */
static int
find_member(const char *r, size_t rn, const char *key, size_t *from,
    size_t *to)
{
	struct member *v;
	size_t n, i;
	int found = -1;

	if (rn == 0 || r[0] != '{' || scan_items(r, rn, 1, &v, &n) != 0)
		return -1;
	for (i = n; i-- > 0 && found < 0;) {	/* libjq keeps the last */
		jv k = member_key(r, &v[i]);

		if (jv_get_kind(k) == JV_KIND_STRING &&
		    strcmp(jv_string_value(k), key) == 0) {
			*from = v[i].val;
			*to = v[i].end;
			found = 0;
		}
		jv_free(k);
	}
	free(v);
	return found;
}

/*
 * Member key of the object at path ("" the top level, else a member of
 * it) written as nv: when a move says where it came from and the value
 * there is the same, with the bytes it had there.  Returns 1 when
 * written.
 */
static int
moved(const struct ctx *x, const char *path, const char *key, jv nv,
    struct buf *out)
{
	const struct splice_move *m;
	char to[256], parent[128];
	const char *dot;
	size_t f, t, f2, t2;
	jv ov;
	int same;

	if (x->moves == NULL || path == NULL)
		return 0;
	snprintf(to, sizeof(to), "%s%s%s", path, *path ? "." : "", key);
	for (m = x->moves; m->to != NULL; m++) {
		if (strcmp(m->to, to) != 0)
			continue;
		dot = strchr(m->from, '.');
		if (dot == NULL) {
			snprintf(parent, sizeof(parent), "%s", m->from);
			ov = jv_object_get(jv_copy(x->rootold),
			    jv_string(m->from));
		} else {
			snprintf(parent, sizeof(parent), "%.*s",
			    (int)(dot - m->from), m->from);
			ov = jv_object_get(jv_copy(x->rootold),
			    jv_string(parent));
			ov = jv_get_kind(ov) == JV_KIND_OBJECT ?
			    jv_object_get(ov, jv_string(dot + 1)) :
			    (jv_free(ov), jv_invalid());
		}
		same = jv_get_kind(ov) == jv_get_kind(nv) &&
		    jv_equal(ov, jv_copy(nv));
		if (!same || find_member(x->root, x->rootn, parent, &f,
		    &t) != 0)
			continue;
		if (dot != NULL) {
			if (find_member(x->root + f, t - f, dot + 1, &f2,
			    &t2) != 0)
				continue;
			f2 += f;
			t2 += f;
			f = f2;
			t = t2;
		}
		buf_add(out, x->root + f, t - f);
		return 1;
	}
	return 0;
}

/* A new member of the top level, nv (kept) an object: written out,
 * with its members that moved there in the bytes they had. */
static void
new_object(const struct ctx *x, const char *path, jv nv, struct buf *out)
{
	int it = jv_object_iter(nv), first = 1;

	buf_addc(out, '{');
	while (jv_object_iter_valid(nv, it)) {
		jv k = jv_object_iter_key(nv, it);
		jv v = jv_object_iter_value(nv, it);

		if (!first)
			buf_addc(out, ',');
		first = 0;
		dump(k, out);
		buf_addc(out, ':');
		if (!moved(x, path, jv_string_value(k), v, out))
			dump(v, out);
		jv_free(k);
		jv_free(v);
		it = jv_object_iter_next(nv, it);
	}
	buf_addc(out, '}');
}

static void
splice_object(const struct ctx *x, const char *path, const char *r,
    size_t rn, jv old, jv new, struct buf *out)
{
	struct member *v;
	size_t n, i, tail;
	jv seen = jv_object();
	int first = 1, it;

	if (scan_items(r, rn, 1, &v, &n) != 0 ||
	    (size_t)jv_object_length(jv_copy(old)) > n) {
		jv_free(seen);
		dump(new, out);
		return;
	}
	/* The keys; a key given twice (libjq keeps the last) is rare
	 * enough to be written anew. */
	for (i = 0; i < n; i++) {
		jv k = member_key(r, &v[i]);

		if (jv_get_kind(k) != JV_KIND_STRING ||
		    jv_object_has(jv_copy(seen), jv_copy(k))) {
			jv_free(k);
			jv_free(seen);
			free(v);
			dump(new, out);
			return;
		}
		seen = jv_object_set(seen, k, jv_true());
	}
	buf_addc(out, '{');
	for (i = 0; i < n; i++) {
		jv k = member_key(r, &v[i]);
		jv nv = jv_object_get(jv_copy(new), jv_copy(k)), ov;

		if (!jv_is_valid(nv)) {		/* gone */
			jv_free(nv);
			jv_free(k);
			continue;
		}
		/* The separator before it: the input's, or, for the first
		 * one written, the white space that came after "{". */
		if (first && i > 0)
			buf_add(out, r + 1, v[0].key - 1);
		else
			buf_add(out, r + v[i].pre, v[i].key - v[i].pre);
		first = 0;
		buf_add(out, r + v[i].key, v[i].val - v[i].key);
		ov = jv_object_get(jv_copy(old), jv_copy(k));
		/* A scalar that changed may be one that moved here. */
		if ((jv_get_kind(nv) != JV_KIND_NUMBER &&
		    jv_get_kind(nv) != JV_KIND_STRING) ||
		    (jv_get_kind(nv) == jv_get_kind(ov) &&
		    jv_equal(jv_copy(ov), jv_copy(nv))) ||
		    !moved(x, path, jv_string_value(k), nv, out))
			splice_value(x, path == NULL || *path ? NULL :
			    jv_string_value(k), r + v[i].val,
			    v[i].end - v[i].val, ov, nv, out);
		jv_free(ov);
		jv_free(k);
		jv_free(nv);
	}
	tail = n > 0 ? v[n - 1].end : 1;
	/* New members, in the order they were set. */
	it = jv_object_iter(new);
	while (jv_object_iter_valid(new, it)) {
		jv k = jv_object_iter_key(new, it);

		if (!jv_object_has(jv_copy(seen), jv_copy(k))) {
			jv nv = jv_object_iter_value(new, it);

			if (!first)
				buf_addc(out, ',');
			first = 0;
			dump(k, out);
			buf_addc(out, ':');
			if (path != NULL && *path == '\0' &&
			    jv_get_kind(nv) == JV_KIND_OBJECT)
				new_object(x, jv_string_value(k), nv, out);
			else if (!moved(x, path, jv_string_value(k), nv, out))
				dump(nv, out);
			jv_free(nv);
		}
		jv_free(k);
		it = jv_object_iter_next(new, it);
	}
	buf_add(out, r + tail, rn - tail);
	jv_free(seen);
	free(v);
}

static void
splice_array(const struct ctx *x, const char *r, size_t rn, jv old, jv new,
    struct buf *out)
{
	struct member *v;
	size_t n, i, j = 0, k, from, prev = NONE;
	size_t nn = (size_t)jv_array_length(jv_copy(new));

	if (scan_items(r, rn, 0, &v, &n) != 0 ||
	    (size_t)jv_array_length(jv_copy(old)) != n) {
		dump(new, out);
		return;
	}
	for (i = 0; i < nn; i++) {
		jv nv = jv_array_get(jv_copy(new), (int)i), ov;

		/*
		 * Where it comes from: the same place when the lengths are
		 * the same; else the next old element that is this very
		 * value (as a condensed chat keeps messages), if any.
		 */
		from = NONE;
		if (nn == n)
			from = i;
		else
			for (k = j; k < n && from == NONE; k++) {
				ov = jv_array_get(jv_copy(old), (int)k);
				if (jv_identical(ov, jv_copy(nv)))
					from = k;
			}
		if (i == 0)
			buf_add(out, r, from == 0 ? v[0].key : 1);
		else if (from != NONE && prev != NONE && from == prev + 1)
			buf_add(out, r + v[from].pre, v[from].key -
			    v[from].pre);
		else
			buf_addc(out, ',');
		if (from != NONE) {
			ov = jv_array_get(jv_copy(old), (int)from);
			splice_value(x, NULL, r + v[from].val,
			    v[from].end - v[from].val, ov, nv, out);
			jv_free(ov);
			j = from + 1;
		} else
			dump(nv, out);
		jv_free(nv);
		prev = from;
	}
	if (nn == 0)
		buf_addc(out, '[');
	if (n == 0 || (nn > 0 && prev == n - 1))
		buf_add(out, r + (n > 0 ? v[n - 1].end : 1), rn -
		    (n > 0 ? v[n - 1].end : 1));
	else
		buf_addc(out, ']');
	free(v);
}

/* Arrays of the very same elements (a copy made on a write that set
 * each element to itself). */
static int
same_elements(jv old, jv new)
{
	int i, n = jv_array_length(jv_copy(old));

	if (n != jv_array_length(jv_copy(new)))
		return 0;
	for (i = 0; i < n; i++)
		if (!jv_identical(jv_array_get(jv_copy(old), i),
		    jv_array_get(jv_copy(new), i)))
			return 0;
	return 1;
}

/* path: where the value is, for moves: "" the top level, "options" a
 * member of it, NULL deeper. */
static void
splice_value(const struct ctx *x, const char *path, const char *r,
    size_t rn, jv old, jv new, struct buf *out)
{
	jv_kind k = jv_get_kind(new);

	if (jv_get_kind(old) != k || rn == 0) {
		dump(new, out);
		return;
	}
	if (jv_identical(jv_copy(old), jv_copy(new))) {
		buf_add(out, r, rn);
		return;
	}
	switch (k) {
	case JV_KIND_OBJECT:
		if (r[0] == '{')
			splice_object(x, path, r, rn, old, new, out);
		else
			dump(new, out);
		break;
	case JV_KIND_ARRAY:
		if (same_elements(old, new))	/* a copy: nothing to scan */
			buf_add(out, r, rn);
		else if (r[0] == '[')
			splice_array(x, r, rn, old, new, out);
		else
			dump(new, out);
		break;
	case JV_KIND_STRING:
	case JV_KIND_NUMBER:
		if (jv_equal(jv_copy(old), jv_copy(new)))
			buf_add(out, r, rn);
		else
			dump(new, out);
		break;
	default:	/* null, true, false: the kind is the value */
		buf_add(out, r, rn);
		break;
	}
}

/* The span of the one value in raw, or -1. */
static int
value_span(const char *raw, size_t n, size_t *from, size_t *to)
{
	size_t i = 0, e;

	if (n >= 3 && memcmp(raw, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	i = skip_ws(raw, n, i);
	if ((e = skip_value(raw, n, i)) == NONE || e == i ||
	    skip_ws(raw, n, e) != n)
		return -1;
	*from = i;
	*to = e;
	return 0;
}

void
splice_write_moved(const char *raw, size_t n, jv old, jv new,
    const struct splice_move *moves, struct buf *out)
{
	struct ctx x;
	size_t from, to;

	if (raw == NULL || value_span(raw, n, &from, &to) != 0) {
		dump(new, out);
		return;
	}
	buf_grow(out, to - from + 4096);	/* one copy, most of it */
	x.root = raw + from;
	x.rootn = to - from;
	x.rootold = old;
	x.moves = moves;
	splice_value(&x, "", raw + from, to - from, old, new, out);
}

void
splice_write(const char *raw, size_t n, jv old, jv new, struct buf *out)
{
	splice_write_moved(raw, n, old, new, NULL, out);
}

void
splice_wrap(const char *raw, size_t n, jv old, jv new, const char *key,
    struct buf *out)
{
	int it, first = 1;

	if (jv_get_kind(new) != JV_KIND_OBJECT) {
		dump(new, out);
		return;
	}
	buf_addc(out, '{');
	it = jv_object_iter(new);
	while (jv_object_iter_valid(new, it)) {
		jv k = jv_object_iter_key(new, it);
		jv v = jv_object_iter_value(new, it);

		if (!first)
			buf_addc(out, ',');
		first = 0;
		dump(k, out);
		buf_addc(out, ':');
		if (strcmp(jv_string_value(k), key) == 0)
			splice_write(raw, n, old, v, out);
		else
			dump(v, out);
		jv_free(k);
		jv_free(v);
		it = jv_object_iter_next(new, it);
	}
	buf_addc(out, '}');
}
