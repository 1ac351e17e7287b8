/*
 * extract.c - verbatim extraction and the extractive summary.
 *
 * Code blocks: lines between an opening fence (``` or ~~~, indented at
 * most three spaces) and a closing fence of the same character at least
 * as long, fences included; an unclosed block runs to the end of the
 * message.  Error lines: a Python traceback from "Traceback (most recent
 * call last):" to its exception line is one item; other lines of at most
 * ERROR_LINE_MAX bytes that look like an error ("error:", "Error:",
 * "FAILED", "fatal:", "panic:", "ValueError: ...", pytest's "E   ...",
 * "file:line:col: error|warning", ...).  File paths: words of path
 * characters with a '/' and a file extension, or rooted (/, ./, ../, ~/)
 * with two parts, or a bare name with a well-known source extension.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "extract.h"

#define ERROR_LINE_MAX	500
#define PATH_MAX_LEN	200
#define TRACEBACK_MAX	80	/* lines */

static const char *const source_exts[] = {
	"c", "h", "cc", "cpp", "hpp", "cxx", "py", "pyi", "js", "mjs", "ts",
	"tsx", "jsx", "go", "rs", "java", "kt", "rb", "php", "sh", "bash",
	"md", "rst", "txt", "json", "yaml", "yml", "toml", "ini", "cfg",
	"conf", "xml", "html", "css", "scss", "sql", "lock", "mk", "cmake",
	"swift", "cs", "lua", "pl", "ex", "hs", "ml", "vue", "proto", "tf",
	"log", "csv", "ipynb", "patch", "diff", NULL
};

static const char *const error_marks[] = {
	"error:", "Error:", "ERROR:", "ERROR ", "FAILED", "FAIL:", "fatal:",
	"panic:", "Exception:", "Segmentation fault", "undefined reference",
	"No such file or directory", "command not found", "Permission denied",
	"npm ERR!", "AssertionError", "Traceback", "core dumped", NULL
};

const char *
item_kind_name(enum item_kind k)
{
	switch (k) {
	case ITEM_ERROR: return "error";
	case ITEM_PATH: return "path";
	case ITEM_CODE: return "code";
	}
	return "?";
}

static void
add_item(struct items *it, enum item_kind k, int msg, const char *s,
    size_t n, enum est_method m)
{
	struct item *x;
	int i;

	if (n == 0)
		return;
	for (i = 0; i < it->n; i++)	/* keep one of each, the newest */
		if (it->v[i].kind == k && it->v[i].len == n &&
		    memcmp(it->v[i].text, s, n) == 0) {
			if (msg > it->v[i].msg)
				it->v[i].msg = msg;
			return;
		}
	if (it->n == it->cap) {
		it->cap = it->cap ? it->cap * 2 : 32;
		it->v = xrealloc(it->v, sizeof(*it->v) * (size_t)it->cap);
	}
	x = &it->v[it->n++];
	memset(x, 0, sizeof(*x));
	x->kind = k;
	x->msg = msg;
	x->text = xstrndup(s, n);
	x->len = n;
	x->tokens = est_text_tokens(s, n, m) + 1;	/* and a separator */
}

void
extract_free(struct items *it)
{
	int i;

	for (i = 0; i < it->n; i++)
		free(it->v[i].text);
	free(it->v);
	it->v = NULL;
	it->n = it->cap = 0;
}

/*
 * A fence line: returns its length in fence characters, else 0; *ch is
 * the character, *rest the offset after the fence.
 */
size_t
extract_fence(const char *s, size_t n, char *ch, size_t *rest)
{
	size_t i = 0, k;

	while (i < n && i < 3 && s[i] == ' ')
		i++;
	if (i >= n || (s[i] != '`' && s[i] != '~'))
		return 0;
	for (k = i; k < n && s[k] == s[i]; k++)
		;
	if (k - i < 3)
		return 0;
	*ch = s[i];
	*rest = k;
	return k - i;
}

int
extract_blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
has(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; i + k <= n; i++)
		if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0)
			return 1;
	return 0;
}

/* A compiler diagnostic: "file:12: warning" or "file:12:3: error". */
static int
diagnostic(const char *s, size_t n)
{
	size_t i = 0, j, nums = 0;

	while (i < n && s[i] != ':' && !isspace((unsigned char)s[i]))
		i++;
	if (i == 0)
		return 0;
	while (nums < 2 && i < n && s[i] == ':') {
		for (j = ++i; j < n && isdigit((unsigned char)s[j]); j++)
			;
		if (j == i)
			break;
		i = j;
		nums++;
	}
	if (nums == 0 || i + 2 > n || s[i] != ':' || s[i + 1] != ' ')
		return 0;
	i += 2;
	return (n - i >= 5 && memcmp(s + i, "error", 5) == 0) ||
	    (n - i >= 7 && memcmp(s + i, "warning", 7) == 0) ||
	    (n - i >= 5 && memcmp(s + i, "fatal", 5) == 0);
}

/* "ValueError: ..." or "pkg.mod.SomeException" alone on the line. */
static int
exception_line(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_' ||
	    s[i] == '.'))
		i++;
	if (i < 5 || !(i == n || s[i] == ':'))
		return 0;
	return (i >= 5 && memcmp(s + i - 5, "Error", 5) == 0) ||
	    (i >= 9 && memcmp(s + i - 9, "Exception", 9) == 0) ||
	    (i >= 7 && memcmp(s + i - 7, "Warning", 7) == 0 && i < n);
}

static int
error_line(const char *s, size_t n)
{
	int i;

	if (n == 0 || n > ERROR_LINE_MAX)
		return 0;
	for (i = 0; error_marks[i] != NULL; i++)
		if (has(s, n, error_marks[i]))
			return 1;
	if (n > 4 && s[0] == 'E' && s[1] == ' ' && s[2] == ' ' &&
	    !isspace((unsigned char)s[n - 1]))
		return 1;
	return exception_line(s, n) || diagnostic(s, n);
}

static int
path_char(int c)
{
	return isalnum(c) || c == '_' || c == '-' || c == '.' || c == '/' ||
	    c == '~';
}

static int
known_ext(const char *e, size_t n)
{
	int i;

	for (i = 0; source_exts[i] != NULL; i++)
		if (strlen(source_exts[i]) == n &&
		    strncmp(source_exts[i], e, n) == 0)
			return 1;
	return 0;
}

/* Is s (n bytes of path characters) a file path? */
static int
is_path(const char *s, size_t n)
{
	const char *slash = NULL, *dot = NULL, *last;
	size_t i, parts = 0, extn;
	int letter = 0, rooted;

	if (n < 3 || n > PATH_MAX_LEN || (s[0] == '/' && s[1] == '/'))
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '/') {
			slash = s + i;
			if (i + 1 < n && s[i + 1] != '/')
				parts++;
		}
		if (isalpha((unsigned char)s[i]))
			letter = 1;
	}
	if (!letter)
		return 0;
	last = slash != NULL ? slash + 1 : s;
	dot = memchr(last, '.', (size_t)(s + n - last));
	if (dot != NULL) {
		const char *e = s + n;

		while (e > dot && e[-1] != '.')
			e--;
		extn = (size_t)(s + n - e);
		letter = 0;
		for (i = 0; i < extn; i++) {
			if (!isalnum((unsigned char)e[i]))
				extn = 0;
			else if (isalpha((unsigned char)e[i]))
				letter = 1;
		}
		if (extn >= 1 && extn <= 6 && letter && e - 1 > last) {
			if (slash != NULL)
				return 1;
			return known_ext(e, extn);
		}
	}
	rooted = s[0] == '/' || strncmp(s, "./", 2) == 0 ||
	    strncmp(s, "../", 3) == 0 || strncmp(s, "~/", 2) == 0;
	return rooted && parts >= 2 && s[n - 1] != '/';
}

static void
scan_paths(struct items *it, const char *s, size_t n, int msg,
    enum est_method m)
{
	size_t i = 0, j;

	while (i < n) {
		while (i < n && !path_char((unsigned char)s[i]))
			i++;
		j = i;
		while (j < n && path_char((unsigned char)s[j]))
			j++;
		/* A word glued to a URL scheme ("http://...") is no path. */
		if (!(j + 2 < n && s[j] == ':' && s[j + 1] == '/' &&
		    s[j + 2] == '/')) {
			size_t k = j;

			while (k > i && (s[k - 1] == '.' || s[k - 1] == '-'))
				k--;
			if (is_path(s + i, k - i))
				add_item(it, ITEM_PATH, msg, s + i, k - i, m);
		} else {
			j += 3;
			while (j < n && !isspace((unsigned char)s[j]))
				j++;
		}
		i = j;
	}
}

/* The end of the line at p (not past end), without a '\r'. */
static const char *
line_end(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	*next = nl != NULL ? nl + 1 : end;
	if (nl == NULL)
		nl = end;
	if (nl > p && nl[-1] == '\r')
		nl--;
	return nl;
}

void
extract_message(struct items *it, const char *text, size_t len, int msg,
    enum est_method m)
{
	const char *p = text, *end, *next, *le;
	const char *code = NULL;	/* start of the open code block */
	char fch = 0, ch = 0;
	size_t flen = 0, k, rest = 0;

	if (len == 0)	/* text may be NULL: an empty buffer */
		return;
	end = text + len;
	for (; p < end; p = next) {
		le = line_end(p, end, &next);
		k = extract_fence(p, (size_t)(le - p), &ch, &rest);
		if (code == NULL && k > 0) {
			code = p;
			fch = ch;
			flen = k;
			continue;
		}
		if (code != NULL && k >= flen && ch == fch &&
		    extract_blank(p + rest, (size_t)(le - p) - rest)) {
			add_item(it, ITEM_CODE, msg, code, (size_t)(le - code),
			    m);
			code = NULL;
			continue;
		}
		if (has(p, (size_t)(le - p), "Traceback (most recent call "
		    "last):")) {
			/* The frames, indented, then the exception line. */
			const char *start = p, *q = next, *qe = le, *qn = next;
			int lines = 0;

			char c2;
			size_t r2;

			while (q < end && lines++ < TRACEBACK_MAX) {
				qe = line_end(q, end, &qn);
				if (qe > q && !isspace((unsigned char)*q))
					break;
				q = qn;
			}
			if (q < end && lines > TRACEBACK_MAX)	/* too long */
				qe = line_end(q, end, &qn);
			if (q < end && extract_fence(q, (size_t)(qe - q), &c2, &r2) == 0) {
				add_item(it, ITEM_ERROR, msg, start,
				    (size_t)(qe - start), m);
				/* Inside a code block, its lines go on as lines,
				 * so that the closing fence is seen. */
				if (code == NULL) {
					scan_paths(it, start,
					    (size_t)(qe - start), msg, m);
					next = qn;
					continue;
				}
			}
		}
		if (error_line(p, (size_t)(le - p)))
			add_item(it, ITEM_ERROR, msg, p, (size_t)(le - p), m);
		scan_paths(it, p, (size_t)(le - p), msg, m);
	}
	if (code != NULL)
		add_item(it, ITEM_CODE, msg, code, (size_t)(end - code), m);
}

static int
cmp_choice(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a;
	const struct item *y = *(const struct item *const *)b;

	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	if (x->msg != y->msg)
		return y->msg - x->msg;
	return x < y ? 1 : x > y ? -1 : 0;	/* later in a message first */
}

static int
inside_kept(const struct items *it, const struct item *x)
{
	int i;

	for (i = 0; i < it->n; i++) {
		const struct item *y = &it->v[i];

		if (y != x && y->kept && y->len > x->len &&
		    strstr(y->text, x->text) != NULL)
			return 1;
	}
	return 0;
}

size_t
extract_choose(struct items *it, size_t budget)
{
	struct item **order;
	size_t used = 0;
	int i;

	if (it->n == 0)
		return 0;
	order = xmalloc(sizeof(*order) * (size_t)it->n);
	for (i = 0; i < it->n; i++) {
		order[i] = &it->v[i];
		order[i]->kept = order[i]->covered = 0;
	}
	qsort(order, (size_t)it->n, sizeof(*order), cmp_choice);
	for (i = 0; i < it->n; i++) {
		struct item *x = order[i];

		if (used + x->tokens <= budget) {
			x->kept = 1;
			used += x->tokens;
		}
	}
	/* What a kept item contains needs no place of its own. */
	for (i = 0; i < it->n; i++) {
		struct item *x = order[i];

		if (inside_kept(it, x)) {
			if (x->kept)
				used -= x->tokens;
			x->kept = 0;
			x->covered = 1;
		}
	}
	free(order);
	return used;
}

void
extract_render(const struct items *it, struct buf *out)
{
	static const char *const heads[] = { "Errors:\n", "Files: ",
	    "Code:\n" };
	struct item **order;
	int i, k, first;

	order = xmalloc(sizeof(*order) * (size_t)(it->n + 1));
	for (i = 0; i < it->n; i++)
		order[i] = &it->v[i];
	qsort(order, (size_t)it->n, sizeof(*order), cmp_choice);
	for (k = ITEM_ERROR; k <= ITEM_CODE; k++) {
		first = 1;
		for (i = 0; i < it->n; i++) {
			const struct item *x = order[i];

			if (x->kind != (enum item_kind)k || !x->kept)
				continue;
			if (first)
				buf_adds(out, heads[k]);
			else if (k == ITEM_PATH)
				buf_adds(out, ", ");
			buf_add(out, x->text, x->len);
			if (k != ITEM_PATH)
				buf_addc(out, '\n');
			first = 0;
		}
		if (!first && k == ITEM_PATH)
			buf_addc(out, '\n');
	}
	free(order);
}

size_t
extract_trim(const char *text, size_t len, size_t target, enum est_method m)
{
	size_t lo = 0, hi, mid, i, w = target * 16 + 256;

	/*
	 * Only a window is searched, doubled while all of it is within
	 * target: trimming a long text piece by piece (a line of megabytes
	 * cut into chunks) costs the pieces, not the rest of the text for
	 * each piece.
	 */
	for (;;) {
		hi = w < len ? w : len;
		if (est_text_tokens(text, hi, m) > target)
			break;
		if (hi == len)
			return len;
		w = w > len / 2 ? len : w * 2;
	}
	while (lo < hi) {	/* the longest prefix within target */
		mid = lo + (hi - lo + 1) / 2;
		while (mid > lo && mid < len &&
		    ((unsigned char)text[mid] & 0xc0) == 0x80)
			mid--;
		if (mid == lo) {
			lo = mid;
			break;
		}
		if (est_text_tokens(text, mid, m) <= target)
			lo = mid;
		else
			hi = mid - 1;
	}
	while (lo > 0 && lo < len &&
	    ((unsigned char)text[lo] & 0xc0) == 0x80)
		lo--;
	/* Back to a line or sentence end in the last half, if any, else
	 * to a space. */
	for (i = lo; i > lo / 2; i--)
		if (text[i - 1] == '\n' || (i >= 2 && text[i - 1] == ' ' &&
		    (text[i - 2] == '.' || text[i - 2] == '!' ||
		    text[i - 2] == '?')))
			return i;
	for (i = lo; i > lo / 2; i--)
		if (text[i - 1] == ' ' || text[i - 1] == '\t')
			return i;
	return lo;
}

/* --- The extractive summary. --- */

struct unit {
	int msg;
	const char *s;
	size_t n;
	size_t tokens;
	double score;
	int chosen;
};

struct wordtab {
	uint64_t *keys;		/* 0: empty */
	int *df;
	int *last;		/* the last unit that counted the word */
	size_t cap, used;
};

static uint64_t
word_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)tolower((unsigned char)s[i]);
		h *= 1099511628211ULL;
	}
	return h | 1;
}

static size_t
word_slot(struct wordtab *t, uint64_t h)
{
	size_t i = (size_t)(h ^ (h >> 29)) & (t->cap - 1);

	while (t->keys[i] != 0 && t->keys[i] != h)
		i = (i + 1) & (t->cap - 1);
	return i;
}

static void
word_grow(struct wordtab *t)
{
	struct wordtab n;
	size_t i, j;

	n.cap = t->cap ? t->cap * 2 : 1024;
	n.used = t->used;
	n.keys = xmalloc(n.cap * sizeof(*n.keys));
	n.df = xmalloc(n.cap * sizeof(*n.df));
	n.last = xmalloc(n.cap * sizeof(*n.last));
	memset(n.keys, 0, n.cap * sizeof(*n.keys));
	for (i = 0; i < t->cap; i++) {
		if (t->keys[i] == 0)
			continue;
		j = word_slot(&n, t->keys[i]);
		n.keys[j] = t->keys[i];
		n.df[j] = t->df[i];
		n.last[j] = t->last[i];
	}
	free(t->keys);
	free(t->df);
	free(t->last);
	*t = n;
}

/* Call f for each word (3+ letters, digits or '_') of s. */
static void
each_word(const char *s, size_t n, void (*f)(void *, const char *, size_t),
    void *ctx)
{
	size_t i = 0, j;

	while (i < n) {
		while (i < n && !(isalnum((unsigned char)s[i]) || s[i] == '_'))
			i++;
		for (j = i; j < n && (isalnum((unsigned char)s[j]) ||
		    s[j] == '_'); j++)
			;
		if (j - i >= 3)
			f(ctx, s + i, j - i);
		i = j;
	}
}

struct count_ctx {
	struct wordtab *t;
	int unit;
	double sum;	/* for scoring */
	int words;
	double nunits;
};

static void
count_word(void *vc, const char *w, size_t n)
{
	struct count_ctx *c = vc;
	struct wordtab *t = c->t;
	uint64_t h = word_hash(w, n);
	size_t i;

	if ((t->used + 1) * 2 > t->cap)
		word_grow(t);
	i = word_slot(t, h);
	if (t->keys[i] == 0) {
		t->keys[i] = h;
		t->df[i] = 0;
		t->last[i] = -1;
		t->used++;
	}
	if (t->last[i] != c->unit) {
		t->df[i]++;
		t->last[i] = c->unit;
	}
}

static void
score_word(void *vc, const char *w, size_t n)
{
	struct count_ctx *c = vc;
	struct wordtab *t = c->t;
	size_t i = word_slot(t, word_hash(w, n));

	c->words++;
	if (t->keys[i] == 0 || t->last[i] == -2 - c->unit)
		return;		/* counted once per unit */
	t->last[i] = -2 - c->unit;
	c->sum += log((c->nunits + 1.0) / (t->df[i] + 0.5));
}

static const char *const cue_words[] = {
	"because", "decid", "fix", "bug", "should", "must", "need", "todo",
	"error", "fail", "work", "pass", "cause", "instead", "goal", "want",
	NULL
};

static int
cue(const char *s, size_t n)
{
	int i;

	for (i = 0; cue_words[i] != NULL; i++)
		if (has(s, n, cue_words[i]))
			return 1;
	return 0;
}

static void
add_unit(struct unit **v, int *n, int *cap, int msg, const char *s,
    size_t len)
{
	while (len > 0 && isspace((unsigned char)*s))
		s++, len--;
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len < 3)
		return;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = xrealloc(*v, sizeof(**v) * (size_t)*cap);
	}
	memset(&(*v)[*n], 0, sizeof(**v));
	(*v)[*n].msg = msg;
	(*v)[*n].s = s;
	(*v)[*n].n = len;
	(*n)++;
}

/* The units of a message: its lines outside code blocks, long lines cut
 * into sentences. */
static void
split_units(struct unit **v, int *n, int *cap, int msg, const char *text,
    size_t len)
{
	const char *p = text, *end, *next, *le, *s, *q;
	char fch = 0, ch = 0;
	size_t flen = 0, k, rest = 0;
	int incode = 0;

	if (len == 0)	/* text may be NULL: an empty buffer */
		return;
	end = text + len;
	for (; p < end; p = next) {
		le = line_end(p, end, &next);
		k = extract_fence(p, (size_t)(le - p), &ch, &rest);
		if (!incode && k > 0) {
			incode = 1;
			fch = ch;
			flen = k;
			continue;
		}
		if (incode) {
			if (k >= flen && ch == fch &&
			    extract_blank(p + rest, (size_t)(le - p) - rest))
				incode = 0;
			continue;
		}
		if ((size_t)(le - p) <= 240) {
			add_unit(v, n, cap, msg, p, (size_t)(le - p));
			continue;
		}
		for (s = p, q = p; q + 1 < le; q++)
			if ((*q == '.' || *q == '?' || *q == '!') &&
			    q[1] == ' ' && q - s > 20) {
				add_unit(v, n, cap, msg, s, (size_t)(q + 1 - s));
				s = q + 2;
			}
		add_unit(v, n, cap, msg, s, (size_t)(le - s));
	}
}

static int
cmp_score(const void *a, const void *b)
{
	const struct unit *x = *(const struct unit *const *)a;
	const struct unit *y = *(const struct unit *const *)b;

	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return x < y ? -1 : x > y;
}

/* Does a chosen item of skip hold the text s? */
static int
listed(const struct items *skip, const char *s, size_t n)
{
	int i;

	for (i = 0; skip != NULL && i < skip->n; i++)
		if (skip->v[i].kept && skip->v[i].len >= n &&
		    lr_memfind(skip->v[i].text, skip->v[i].len, s, n) != NULL)
			return 1;
	return 0;
}

void
extract_summary(const struct xmsg *msgs, int nmsgs, size_t target,
    enum est_method m, const struct items *skip, struct buf *out)
{
	struct unit *v = NULL, **order;
	struct wordtab t;
	struct count_ctx c;
	int n = 0, cap = 0, i, j, last = -1;
	size_t used = 0;
	int *msg_used;

	memset(&t, 0, sizeof(t));
	word_grow(&t);
	for (i = 0; i < nmsgs; i++)
		split_units(&v, &n, &cap, i, msgs[i].text, msgs[i].len);
	if (n == 0) {
		free(t.keys);
		free(t.df);
		free(t.last);
		return;
	}
	memset(&c, 0, sizeof(c));
	c.t = &t;
	for (i = 0; i < n; i++) {
		c.unit = i;
		each_word(v[i].s, v[i].n, count_word, &c);
	}
	c.nunits = n;
	for (i = 0; i < n; i++) {
		const char *role = msgs[v[i].msg].role;
		double w = strcmp(role, "user") == 0 ? 1.3 :
		    strcmp(role, "assistant") == 0 ? 1.0 : 0.7;

		c.unit = i;
		c.sum = 0;
		c.words = 0;
		each_word(v[i].s, v[i].n, score_word, &c);
		v[i].tokens = est_text_tokens(v[i].s, v[i].n, m) + 1;
		v[i].score = c.sum / sqrt((double)c.words + 4.0) * w *
		    (1.0 + 0.3 * v[i].msg / (nmsgs > 1 ? nmsgs - 1 : 1)) *
		    (cue(v[i].s, v[i].n) ? 1.2 : 1.0);
	}
	order = xmalloc(sizeof(*order) * (size_t)n);
	for (i = 0; i < n; i++)
		order[i] = &v[i];
	qsort(order, (size_t)n, sizeof(*order), cmp_score);
	msg_used = xmalloc(sizeof(*msg_used) * (size_t)nmsgs);
	memset(msg_used, 0, sizeof(*msg_used) * (size_t)nmsgs);
	for (i = 0; i < n; i++) {
		struct unit *u = order[i];
		size_t cost = u->tokens + (msg_used[u->msg] ? 0 : 3);
		int dup = 0;

		if (used + cost > target || u->score <= 0 ||
		    listed(skip, u->s, u->n))
			continue;
		for (j = 0; j < i && !dup; j++)
			dup = order[j]->chosen && order[j]->n == u->n &&
			    memcmp(order[j]->s, u->s, u->n) == 0;
		if (dup)
			continue;
		u->chosen = 1;
		msg_used[u->msg] = 1;
		used += cost;
	}
	for (i = 0; i < n; i++) {
		if (!v[i].chosen)
			continue;
		if (v[i].msg != last) {
			if (last >= 0)
				buf_addc(out, '\n');
			buf_printf(out, "%s:", msgs[v[i].msg].role);
			last = v[i].msg;
		}
		buf_addc(out, ' ');
		buf_add(out, v[i].s, v[i].n);
	}
	if (last >= 0)
		buf_addc(out, '\n');
	free(msg_used);
	free(order);
	free(v);
	free(t.keys);
	free(t.df);
	free(t.last);
}
