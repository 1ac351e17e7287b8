/*
 * cache.h - summaries cached on disk by content (SPEC section 3).
 *
 * Owns: the cache directory ($XDG_CACHE_HOME/llm-route, else
 * ~/.cache/llm-route, or --cache-dir), content keys (SHA-256, from
 * libmd), entries written atomically (a temporary file renamed into
 * place, so several processes may share one cache), entries checked on
 * reading (a corrupt or truncated one is a miss, and is rewritten), and
 * the size cap (the least recently used entries go first).
 */
#ifndef LLM_CACHE_H
#define LLM_CACHE_H

#include <stddef.h>

#include "util.h"

#define CACHE_MAX	(64UL * 1024 * 1024)	/* --cache-max default */
#define CACHE_KEY_LEN	64			/* hex digits */

struct cache {
	char *dir;		/* NULL: no cache */
	size_t max;		/* bytes */
	int hits, misses, writes, corrupt;
	/* Told of each hit and each entry written (llm-serve counts the
	 * hits on what background condensing wrote), or NULL. */
	void (*on_hit)(void *ctx, const char *key);
	void (*on_put)(void *ctx, const char *key);
	void *hook_ctx;
};

/*
 * Open the cache in dir (NULL: the default place), creating it.  An
 * unusable default place gives a warning and no cache; an unusable dir
 * named by the user is an error (LR_FAIL).
 */
int cache_open(struct cache *c, const char *dir, size_t max,
    struct lr_err *e);
void cache_close(struct cache *c);

/* The key of n parts (each with its length), as 64 hex digits. */
void cache_key(const char *const *parts, const size_t *lens, int n,
    char key[CACHE_KEY_LEN + 1]);

/* The key of what a server (its base URL) says or shows of a model. */
void cache_server_key(const char *what, const char *url, const char *model,
    char key[CACHE_KEY_LEN + 1]);

/* 1 and the entry appended to out on a hit, 0 on a miss. */
int cache_get(struct cache *c, const char *key, struct buf *out);

/* The same for what the cache keeps beside the summaries (speeds, the
 * memo of a prompt): neither a hit nor a miss. */
int cache_read(struct cache *c, const char *key, struct buf *out);

/* Is there an entry for key (a mark, whose content does not matter)?
 * Neither a hit nor a miss. */
int cache_has(struct cache *c, const char *key);

/* Store an entry; failures are warnings (the cache is an optimization). */
void cache_put(struct cache *c, const char *key, const char *data, size_t n);

#endif
