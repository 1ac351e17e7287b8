/*
 * estimate.c - token estimation for chat text.
 *
 * The "qwen" method reads the bytes once and cuts them as the
 * pre-tokenizer of the Qwen2/Qwen3 byte-level BPE does: a word with at
 * most one leading space or symbol, each digit alone, a run of symbols
 * with the newlines after it, a run of whitespace whose last space goes
 * with the next word.  It then guesses the BPE pieces of each chunk
 * from its shape, not from a vocabulary.  A word is one token plus a
 * quarter token or so per letter past 10 letters after a space, past
 * 9 at the start of a line and past 5 after a symbol ("_foo", "/bar");
 * each camelCase or ALLCAPS hump counts as a word, one with few
 * vowels ("pwn", "HTB", hashes) half a token more.  A digit is a token.
 * A run of symbols is about one token per two characters, but a long
 * rule ("-----", "=====") is nearly one.  A whitespace chunk is one
 * token however deep the indentation.  "<think>", "<tool_call>" and
 * the like are one.  Letters of other scripts cost a rate per letter
 * (Cyrillic, Arabic, Hebrew 0.2-0.25, kana and CJK 0.6-0.65, Greek and
 * Indic 0.8-0.9, rare scripts 2), and words of a text with accented
 * Latin letters 30% more (Portuguese, French or German prose splits
 * more than English).  A message adds its chat template,
 * "<|im_start|>ROLE\n...<|im_end|>\n": 4 tokens and the role.  The
 * rates were fitted on the corpus against the Qwen3 tokenizer; see
 * bench/ESTIMATE.md.
 *
 * The "chars4" method is the design note's: ceil(characters / 4) of
 * each message's content, characters being UTF-8 code points, and
 * nothing for the template.
 *
 * Costs add up in thousandths of a token, in integers: no floating
 * point, no locale, no state outside the call.
 */

#include <stddef.h>
#include <string.h>

#include "estimate.h"

#define MT	1000	/* milli-tokens per token */

typedef long long cost_t;	/* milli-tokens */

/* Tunable rates, in milli-tokens; est-harness can override them. */
struct est_params {
	int	sp_free;	/* letters of a word after a space at base cost */
	int	sp_rate;	/* each letter past sp_free */
	int	no_free;	/* the same for words after nothing */
	int	no_rate;
	int	sym_free;	/* the same for words after a symbol ("_foo") */
	int	sym_rate;
	int	cap_sym;	/* a capital after a symbol ("(Foo", "_CTF") */
	int	up_free;	/* the same for an ALLCAPS hump */
	int	up_rate;
	int	rare;		/* a hump of 3+ letters with few vowels */
	int	latin_extra;	/* accented Latin letter within a word */
	int	latin_words;	/* words of a text with 1% accented letters */
	int	esc;		/* "\n" + word inside escaped strings */
	int	pu_rate;	/* symbol run: pu_rate * n + pu_base, >= 1 */
	int	pu_base;
	int	pu_space;	/* symbol run after a space */
	int	rule_rate;	/* each char of a long "-----" style rule */
	int	caret_rate;	/* each char of a long "^^^^" or "||||" run */
	int	ws_base;	/* a whitespace chunk */
	int	foreign_base;	/* a run of letters of another script */
	int	tmpl;		/* template tokens besides the role */
};

static const struct est_params est_defaults = {
	.sp_free = 10,
	.sp_rate = 250,
	.no_free = 9,
	.no_rate = 300,
	.sym_free = 5,
	.sym_rate = 250,
	.cap_sym = 400,
	.up_free = 5,
	.up_rate = 275,
	.rare = 500,
	.latin_extra = 500,
	.latin_words = 1300,
	.esc = 750,
	.pu_rate = 470,
	.pu_base = -125,
	.pu_space = 375,
	.rule_rate = 67,
	.caret_rate = 440,
	.ws_base = 1000,
	.foreign_base = 1000,
	.tmpl = 4,
};

/* Character classes, as the pre-tokenizer sees them. */
enum cc {
	C_LET,		/* \p{L} */
	C_DIG,		/* ASCII digit (a token each) */
	C_NL,		/* \r or \n */
	C_SP,		/* other whitespace */
	C_SYM		/* anything else: punctuation, symbols, bad bytes */
};

#define L	C_LET
#define D	C_DIG
#define N	C_NL
#define S	C_SP
#define Y	C_SYM
static const unsigned char ascii_class[128] = {
	Y, Y, Y, Y, Y, Y, Y, Y, Y, S, N, S, S, N, Y, Y,
	Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y,
	S, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y, Y,
	D, D, D, D, D, D, D, D, D, D, Y, Y, Y, Y, Y, Y,
	Y, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
	L, L, L, L, L, L, L, L, L, L, L, Y, Y, Y, Y, Y,
	Y, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
	L, L, L, L, L, L, L, L, L, L, L, Y, Y, Y, Y, Y,
};
#undef L
#undef D
#undef N
#undef S
#undef Y

/*
 * Decode the character at s[i] (i < len).  Returns its length in bytes
 * (at least 1) and stores the code point; a byte that does not start a
 * well-formed sequence stands alone as U+FFFD.
 */
static size_t
utf8_next(const unsigned char *s, size_t len, size_t i, unsigned long *cp)
{
	unsigned long c = s[i], min;
	size_t n, k;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	if (len - i < n) {
		*cp = 0xfffd;
		return 1;
	}
	for (k = 1; k < n; k++) {
		if ((s[i + k] & 0xc0) != 0x80) {
			*cp = 0xfffd;
			return 1;
		}
		c = (c << 6) | (s[i + k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
		*cp = 0xfffd;
		return 1;
	}
	*cp = c;
	return n;
}

static enum cc
classify(unsigned long c)
{
	if (c < 0x80) {
		if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
			return C_LET;
		if (c >= '0' && c <= '9')
			return C_DIG;
		if (c == '\n' || c == '\r')
			return C_NL;
		if (c == ' ' || c == '\t' || c == '\v' || c == '\f')
			return C_SP;
		return C_SYM;
	}
	if (c == 0x85 || c == 0xa0 || c == 0x1680 ||
	    (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	    c == 0x202f || c == 0x205f || c == 0x3000)
		return C_SP;
	if (c < 0xc0 || c == 0xd7 || c == 0xf7 ||
	    (c >= 0x300 && c <= 0x36f) ||		/* combining marks */
	    (c >= 0x2000 && c <= 0x2bff) ||		/* punctuation, symbols */
	    (c >= 0x3000 && c <= 0x303f) ||		/* CJK punctuation */
	    (c >= 0xfe00 && c <= 0xfe0f) ||		/* variation selectors */
	    (c >= 0xff01 && c <= 0xff0f) || c == 0xfffd ||
	    (c >= 0x1f000 && c <= 0x1faff))		/* emoji */
		return C_SYM;
	return C_LET;
}

/* The character at s[i] (i < len): its code point, class and length. */
static inline size_t
char_at(const unsigned char *s, size_t len, size_t i, unsigned long *cp,
    enum cc *k)
{
	size_t n;

	if (s[i] < 0x80) {
		*cp = s[i];
		*k = (enum cc)ascii_class[s[i]];
		return 1;
	}
	n = utf8_next(s, len, i, cp);
	*k = classify(*cp);
	return n;
}

/*
 * Cost of one letter of a script other than Latin: the per-letter rate
 * of the BPE on ordinary text of that script.  Returns 0 for Latin
 * letters, which are handled as part of ASCII words.
 */
static int
foreign_rate(unsigned long c)
{
	if (c < 0x250 || (c >= 0x1e00 && c <= 0x1eff))
		return 0;			/* Latin */
	if (c < 0x370)
		return 1000;			/* IPA, modifiers */
	if (c < 0x400)
		return 800;			/* Greek */
	if (c < 0x530)
		return 200;			/* Cyrillic */
	if (c < 0x900)
		return 250;			/* Armenian, Hebrew, Arabic */
	if (c < 0xe00)
		return 900;			/* Indic */
	if (c < 0xf00)
		return 400;			/* Thai, Lao */
	if (c < 0x3040)
		return 2000;			/* rarer scripts */
	if (c < 0x3100)
		return 600;			/* kana */
	if (c < 0x3400)
		return 1000;
	if (c < 0x4e00)
		return 2000;			/* CJK extension A */
	if (c < 0xa000)
		return 650;			/* CJK ideographs */
	if (c >= 0xac00 && c < 0xd7b0)
		return 500;			/* Hangul */
	if (c < 0x10000)
		return 1500;
	return 2000;
}

/* Cost of one non-ASCII symbol inside a run of symbols. */
static int
symbol_rate(unsigned long c)
{
	if (c >= 0x10000)
		return 1500;			/* emoji and the like */
	return 1000;
}

/*
 * Cost of one hump of a word: n letters of which nvow are vowels and
 * ncaps capitals (a hump has its capitals first), the first of its word
 * or not, after a space, after another prefix or neither.  Vowel-less humps ("pwn", "HTB", hashes)
 * are rarely in the vocabulary whole.
 */
static cost_t
hump_cost(const struct est_params *p, size_t n, size_t nvow, size_t ncaps,
    int first, unsigned long pre)
{
	cost_t free_, rate, c = 0;

	if (n == 0)
		return 0;
	if (n >= 3 && nvow * 4 < n)
		c += p->rare;
	if (first && pre != 0 && pre != ' ' && ncaps > 0)
		c += p->cap_sym;
	if (ncaps > 1 && ncaps == n) {
		free_ = p->up_free;
		rate = p->up_rate;
	} else if (first && pre == ' ') {
		free_ = p->sp_free;
		rate = p->sp_rate;
	} else if (first && pre != 0) {
		free_ = p->sym_free;
		rate = p->sym_rate;
	} else {
		free_ = p->no_free;
		rate = p->no_rate;
	}
	c += MT;
	if ((cost_t)n > free_)
		c += ((cost_t)n - free_) * rate;
	return c;
}

static int
is_rule_char(unsigned long c)
{
	return c == '-' || c == '=' || c == '*' || c == '#' || c == '_' ||
	    c == '/' || c == '.' || c == '~' || c == '+';
}

/*
 * The length of the special token at s[i] ("<think>", "</tool_call>",
 * "<|im_end|>" ...), which the tokenizer counts as one, or 0.
 */
static size_t
special(const unsigned char *s, size_t len, size_t i)
{
	static const char *const tags[] = {
		"<tool_call>", "</tool_call>", "<tool_response>",
		"</tool_response>", "<think>", "</think>"
	};
	size_t k, n;

	if (s[i] != '<' || len - i < 4)
		return 0;
	if (s[i + 1] == '|') {
		for (k = i + 2; k < len && k - i < 24; k++) {
			if (s[k] == '|')
				return k + 1 < len && s[k + 1] == '>' &&
				    k > i + 2 ? k + 2 - i : 0;
			if (!((s[k] >= 'a' && s[k] <= 'z') || s[k] == '_'))
				return 0;
		}
		return 0;
	}
	for (k = 0; k < sizeof(tags) / sizeof(tags[0]); k++) {
		n = strlen(tags[k]);
		if (len - i >= n && memcmp(s + i, tags[k], n) == 0)
			return n;
	}
	return 0;
}

/* Is s[i] the start of one of the contractions 's 't 're 've 'm 'll 'd? */
static size_t
contraction(const unsigned char *s, size_t len, size_t i)
{
	int a, b;

	if (s[i] != '\'' || len - i < 2)
		return 0;
	a = s[i + 1] | 0x20;
	b = len - i >= 3 ? s[i + 2] | 0x20 : 0;
	if (a == 's' || a == 't' || a == 'm' || a == 'd')
		return 2;
	if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
	    (a == 'l' && b == 'l'))
		return 3;
	return 0;
}

/* Is the ASCII letter c one of a, e, i, o, u, y? */
static inline int
is_vowel(unsigned long c)
{
	return (int)(0x1104111UL >> (((c | 0x20) - 'a') & 31) & 1);
}

static int
is_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* What the words of a text cost, apart: see latin_words. */
struct words {
	cost_t	cost;		/* Latin-script words */
	size_t	letters;	/* their letters */
	size_t	accented;	/* of which accented */
};

/*
 * A word: letters from s[i], after a prefix character pre (0 for none).
 * Humps: "fooBar" is foo|Bar, "HTTPServer" is HTTP|Server.  Adds the
 * cost of its Latin letters to w, of others to *other, and returns the
 * index past it.
 */
static size_t
word(const struct est_params *p, const unsigned char *s, size_t len,
    size_t i, unsigned long pre, int after_bs, struct words *w, cost_t *other)
{
	cost_t *cost = &w->cost;

	unsigned long c;
	enum cc k;
	size_t n, seg = 0, ncaps = 0, nvow = 0;
	int first = 1, prev_low = 0, in_foreign = 0, r, up, vow, last_vow = 0;

	/* "\\nfoo" in an escaped string: "\\n" (or "n") is a token apart */
	if ((pre == '\\' || after_bs) && len - i >= 3 &&
	    (s[i] == 'n' || s[i] == 't' || s[i] == 'r') &&
	    is_alpha(s[i + 1]) && is_alpha(s[i + 2])) {
		*cost += p->esc;
		i++;
		pre = 0;
	}
	while (i < len) {
		if (s[i] >= 'a' && s[i] <= 'z' && !(ncaps >= 2 && ncaps == seg)) {
			/* the common case, a run of small ASCII letters */
			for (n = i; n < len && s[n] >= 'a' && s[n] <= 'z'; n++)
				nvow += is_vowel(s[n]);
			last_vow = is_vowel(s[n - 1]);
			seg += n - i;
			w->letters += n - i;
			prev_low = 1;
			in_foreign = 0;
			i = n;
			continue;
		}
		n = char_at(s, len, i, &c, &k);
		if (k != C_LET)
			break;
		if (c >= 0x80 && (r = foreign_rate(c)) != 0) {
			*cost += hump_cost(p, seg, nvow, ncaps, first, pre);
			if (seg > 0)
				first = 0;
			seg = ncaps = nvow = 0;
			if (!in_foreign)
				*other += p->foreign_base;
			*other += r;
			in_foreign = 1;
			prev_low = 0;
			i += n;
			continue;
		}
		in_foreign = 0;
		w->letters++;
		if (c >= 0x80) {
			w->accented++;
			*cost += p->latin_extra;
		}
		up = c >= 'A' && c <= 'Z';
		vow = c < 0x80 && is_vowel(c);
		if (up && prev_low) {
			/* "fooBar": foo, then Bar */
			*cost += hump_cost(p, seg, nvow, ncaps, first, pre);
			first = 0;
			seg = ncaps = nvow = 0;
		} else if (!up && ncaps >= 2 && ncaps == seg) {
			/* "HTTPServer": HTTP, then Server */
			*cost += hump_cost(p, seg - 1, nvow - last_vow,
			    seg - 1, first, pre);
			first = 0;
			seg = ncaps = 1;
			nvow = last_vow;
		}
		seg++;
		ncaps += up;
		nvow += vow;
		last_vow = vow;
		prev_low = !up;
		i += n;
	}
	*cost += hump_cost(p, seg, nvow, ncaps, first, pre);
	return i;
}

/*
 * A run of symbols from s[i] (after a space when sp), with the newlines
 * that follow it.  Adds its cost and returns the index past it.
 */
static size_t
symbols(const struct est_params *p, const unsigned char *s, size_t len,
    size_t i, int sp, cost_t *cost)
{
	unsigned long c, c0 = 0;
	enum cc k;
	size_t n, nascii = 0;
	cost_t other = 0, a;
	int same = 1;

	while (i < len) {
		n = char_at(s, len, i, &c, &k);
		if (k != C_SYM ||
		    (c == '<' && special(s, len, i) != 0))
			break;
		if (c < 0x80) {
			if (nascii == 0)
				c0 = c;
			else if (c != c0)
				same = 0;
			nascii++;
		} else
			other += symbol_rate(c);
		i += n;
	}
	while (i < len && (s[i] == '\n' || s[i] == '\r'))
		i++;
	if (nascii == 0)
		a = 0;
	else if (same && nascii >= 4 && other == 0 && is_rule_char(c0))
		a = MT + (cost_t)nascii * p->rule_rate;
	else if (same && nascii >= 4 && other == 0 &&
	    (c0 == '^' || c0 == '|'))
		a = (cost_t)nascii * p->caret_rate;
	else {
		a = (cost_t)nascii * p->pu_rate + p->pu_base +
		    (sp ? p->pu_space : 0);
		if (a < MT)
			a = MT;
	}
	*cost += a + other;
	return i;
}

/* The class of the character at s[i], or C_NL past the end. */
static enum cc
class_at(const unsigned char *s, size_t len, size_t i)
{
	unsigned long c;
	enum cc k;

	if (i >= len)
		return C_NL;
	(void)char_at(s, len, i, &c, &k);
	return k;
}

static cost_t
qwen_cost(const struct est_params *p, const unsigned char *s, size_t len)
{
	unsigned long c;
	size_t i = 0, j, n, m, lastnl;
	struct words w = { 0, 0, 0 };
	cost_t cost = 0;
	int after_bs = 0;
	enum cc k;

	while (i < len) {
		n = char_at(s, len, i, &c, &k);
		if (c == '<' && (m = special(s, len, i)) != 0) {
			cost += MT;
			i += m;
			after_bs = 0;
			continue;
		}
		if (c == '\'' && (m = contraction(s, len, i)) != 0) {
			cost += MT;
			i += m;
			after_bs = 0;
			continue;
		}
		if (k == C_LET) {
			i = word(p, s, len, i, 0, after_bs, &w, &cost);
			after_bs = 0;
			continue;
		}
		if ((k == C_SYM || k == C_SP) && class_at(s, len, i + n) ==
		    C_LET) {
			i = word(p, s, len, i + n, c, after_bs, &w, &cost);
			after_bs = 0;
			continue;
		}
		if (k == C_DIG) {
			cost += MT;
			i++;
			after_bs = 0;
			continue;
		}
		if (k == C_SYM || (c == ' ' &&
		    class_at(s, len, i + 1) == C_SYM &&
		    special(s, len, i + 1) == 0)) {
			j = symbols(p, s, len, k == C_SYM ? i : i + 1,
			    k != C_SYM, &cost);
			after_bs = s[j - 1] == '\\';
			i = j;
			continue;
		}
		/* whitespace: the run from i to j */
		after_bs = 0;
		lastnl = 0;
		for (j = i; j < len; j += m) {
			m = char_at(s, len, j, &c, &k);
			if (k == C_NL)
				lastnl = j + 1;
			else if (k != C_SP)
				break;
		}
		cost += p->ws_base;
		if (lastnl != 0)
			i = lastnl;		/* \s*[\r\n]+ */
		else if (j < len && j - i > n) {
			/* \s+(?!\S): the last space goes with what follows */
			while (j > i) {
				j--;
				if ((s[j] & 0xc0) != 0x80)
					break;
			}
			i = j;
		} else
			i = j;
	}
	/*
	 * Prose in other Latin-script languages (Portuguese, French,
	 * German ...) splits into more pieces than English; accents give
	 * it away.
	 */
	if (w.accented * 100 >= w.letters && w.letters > 0)
		w.cost = w.cost / MT * p->latin_words +
		    w.cost % MT * p->latin_words / MT;
	return cost + w.cost;
}

static size_t
chars4(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		if ((u[i] & 0xc0) != 0x80)
			n++;
	return (n + 3) / 4;
}

static size_t
round_cost(cost_t cost)
{
	if (cost <= 0)
		return 0;
	return (size_t)((cost + MT / 2) / MT);
}

static size_t
text_tokens(const struct est_params *p, const char *s, size_t len,
    enum est_method m)
{
	if (s == NULL || len == 0)
		return 0;
	if (m == EST_CHARS4)
		return chars4(s, len);
	return round_cost(qwen_cost(p, (const unsigned char *)s, len));
}

static size_t
message_tokens(const struct est_params *p, const char *role,
    const char *content, size_t content_len, enum est_method m)
{
	size_t n, r;

	n = text_tokens(p, content, content_len, m);
	if (m == EST_CHARS4)
		return n;
	if (role == NULL || *role == '\0')
		r = 0;
	else
		r = text_tokens(p, role, strlen(role), m);
	if (r == 0)
		r = 1;
	/* a leading newline of the content joins the "\n" after the role */
	if (n > 0 && content_len > 0 &&
	    (content[0] == '\n' || content[0] == '\r'))
		n--;
	return (size_t)p->tmpl + r + n;
}

int
est_method_parse(const char *name)
{
	if (name == NULL)
		return -1;
	if (strcmp(name, "qwen") == 0)
		return EST_QWEN;
	if (strcmp(name, "chars4") == 0)
		return EST_CHARS4;
	return -1;
}

const char *
est_method_name(enum est_method m)
{
	return m == EST_CHARS4 ? "chars4" : "qwen";
}

size_t
est_text_tokens(const char *s, size_t len, enum est_method m)
{
	return text_tokens(&est_defaults, s, len, m);
}

size_t
est_message_tokens(const char *role, const char *content,
    size_t content_len, enum est_method m)
{
	return message_tokens(&est_defaults, role, content, content_len, m);
}
