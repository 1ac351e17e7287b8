/*
 * cache.c - the on-disk summary cache.
 *
 * An entry is a file named by its key holding one header line,
 * "llm-route-cache 1 LENGTH SHA256\n", and LENGTH bytes of data whose
 * SHA-256 is SHA256.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"

#define MAGIC	"llm-route-cache 1 "

static int
mkdirs(const char *path)
{
	char *p = xstrdup(path), *s;
	int r = 0;

	for (s = p + 1; r == 0 && *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			r = -1;
		*s = '/';
	}
	if (r == 0 && mkdir(p, 0700) != 0 && errno != EEXIST)
		r = -1;
	free(p);
	return r;
}

int
cache_open(struct cache *c, const char *dir, size_t max, struct lr_err *e)
{
	struct buf b = BUF_INIT;
	const char *x;
	struct stat st;

	memset(c, 0, sizeof(*c));
	c->max = max;
	if (dir != NULL)
		buf_adds(&b, dir);
	else if ((x = getenv("XDG_CACHE_HOME")) != NULL && *x == '/')
		buf_printf(&b, "%s/llm-route", x);
	else if ((x = getenv("HOME")) != NULL && *x != '\0')
		buf_printf(&b, "%s/.cache/llm-route", x);
	else {
		lr_warn("no cache: XDG_CACHE_HOME is not an absolute path and "
		    "HOME is not set");
		return 0;
	}
	errno = 0;
	if (mkdirs(buf_str(&b)) != 0 || stat(b.p, &st) != 0 ||
	    !S_ISDIR(st.st_mode) || access(b.p, W_OK | X_OK) != 0) {
		int err = errno;

		if (stat(b.p, &st) == 0 && !S_ISDIR(st.st_mode))
			err = ENOTDIR;
		if (dir != NULL) {
			lr_seterr(e, LR_FAIL, "cache directory %s: %s", b.p,
			    strerror(err ? err : ENOTDIR));
			buf_free(&b);
			return LR_FAIL;
		}
		lr_warn("no cache: %s: %s", b.p, strerror(err ? err : ENOTDIR));
		buf_free(&b);
		return 0;
	}
	c->dir = buf_detach(&b);
	return 0;
}

void
cache_close(struct cache *c)
{
	if (c->dir != NULL)
		log_event(LOG_INFO, "cache", "dir", 's', c->dir,
		    "hits", 'i', (long)c->hits, "misses", 'i', (long)c->misses,
		    "writes", 'i', (long)c->writes,
		    "corrupt", 'i', (long)c->corrupt, (const char *)NULL);
	free(c->dir);
	c->dir = NULL;
}

void
cache_key(const char *const *parts, const size_t *lens, int n,
    char key[CACHE_KEY_LEN + 1])
{
	SHA2_CTX ctx;
	int i;

	SHA256Init(&ctx);
	for (i = 0; i < n; i++) {
		SHA256Update(&ctx, (const uint8_t *)parts[i], lens[i]);
		SHA256Update(&ctx, (const uint8_t *)"", 1);	/* a NUL */
	}
	SHA256End(&ctx, key);
}

static char *
entry_path(const struct cache *c, const char *key)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s/%s", c->dir, key);
	return buf_detach(&b);
}

static int
lookup(struct cache *c, const char *key, struct buf *out, int count)
{
	char *path, head[128], sum[SHA256_DIGEST_STRING_LENGTH];
	char want[SHA256_DIGEST_STRING_LENGTH];
	struct buf data = BUF_INIT;
	unsigned long len;
	FILE *fp;
	size_t n;
	int ok = 0;

	if (c->dir == NULL)
		return 0;
	path = entry_path(c, key);
	if ((fp = fopen(path, "rb")) == NULL) {
		c->misses += count;
		free(path);
		return 0;
	}
	if (fgets(head, sizeof(head), fp) != NULL &&
	    strncmp(head, MAGIC, strlen(MAGIC)) == 0 &&
	    sscanf(head + strlen(MAGIC), "%lu %64s", &len, want) == 2 &&
	    len < 16UL * 1024 * 1024) {
		buf_grow(&data, len + 1);
		n = fread(data.p, 1, len + 1, fp);
		data.len = n;
		if (n == len) {
			SHA256Data((const uint8_t *)data.p, len, sum);
			ok = strcmp(sum, want) == 0;
		}
	}
	fclose(fp);
	if (ok) {
		buf_add(out, data.p, data.len);
		c->hits += count;
		if (count && c->on_hit != NULL)
			c->on_hit(c->hook_ctx, key);
		utimensat(AT_FDCWD, path, NULL, 0);	/* recently used */
	} else {
		c->corrupt++;
		c->misses += count;
		log_event(LOG_WARN, "cache_corrupt", "entry", 's', path,
		    (const char *)NULL);
	}
	buf_free(&data);
	free(path);
	return ok;
}

int
cache_get(struct cache *c, const char *key, struct buf *out)
{
	return lookup(c, key, out, 1);
}

int
cache_read(struct cache *c, const char *key, struct buf *out)
{
	return lookup(c, key, out, 0);
}

int
cache_has(struct cache *c, const char *key)
{
	char *path;
	int ok;

	if (c->dir == NULL)
		return 0;
	path = entry_path(c, key);
	if ((ok = access(path, F_OK) == 0))
		utimensat(AT_FDCWD, path, NULL, 0);	/* recently used */
	free(path);
	return ok;
}

struct entry {
	char *name;
	off_t size;
	struct timespec used;
};

static int
cmp_used(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
	if (x->used.tv_nsec != y->used.tv_nsec)
		return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Remove the least recently used entries until under the cap. */
static void
evict(struct cache *c)
{
	struct entry *v = NULL;
	struct dirent *d;
	struct stat st;
	size_t n = 0, cap = 0, total = 0, i;
	DIR *dp;
	char *path;

	if ((dp = opendir(c->dir)) == NULL)
		return;
	while ((d = readdir(dp)) != NULL) {
		/* A temporary file a killed process left behind. */
		if (strncmp(d->d_name, ".tmp.", 5) == 0) {
			path = entry_path(c, d->d_name);
			if (stat(path, &st) == 0 &&
			    time(NULL) - st.st_mtime > 600)
				unlink(path);
			free(path);
			continue;
		}
		if (strlen(d->d_name) != CACHE_KEY_LEN)
			continue;
		path = entry_path(c, d->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[n].name = xstrdup(d->d_name);
			v[n].size = st.st_size;
			v[n].used = st.st_mtim;
			total += (size_t)st.st_size;
			n++;
		}
		free(path);
	}
	closedir(dp);
	if (total > c->max) {
		qsort(v, n, sizeof(*v), cmp_used);
		for (i = 0; i < n && total > c->max; i++) {
			path = entry_path(c, v[i].name);
			if (unlink(path) == 0)
				total -= (size_t)v[i].size;
			free(path);
		}
	}
	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

void
cache_put(struct cache *c, const char *key, const char *data, size_t n)
{
	char sum[SHA256_DIGEST_STRING_LENGTH];
	char *path, *tmp;
	struct buf t = BUF_INIT;
	FILE *fp;
	int fd, ok;

	if (c->dir == NULL)
		return;
	path = entry_path(c, key);
	buf_printf(&t, "%s/.tmp.XXXXXX", c->dir);
	tmp = buf_detach(&t);
	if ((fd = mkstemp(tmp)) < 0 || (fp = fdopen(fd, "wb")) == NULL) {
		lr_warn("cache: %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(tmp);
		free(path);
		return;
	}
	SHA256Data((const uint8_t *)data, n, sum);
	fprintf(fp, MAGIC "%zu %s\n", n, sum);
	fwrite(data, 1, n, fp);
	ok = fflush(fp) == 0 && !ferror(fp);
	if (fclose(fp) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) != 0) {
		lr_warn("cache: writing %s: %s", path, strerror(errno));
		unlink(tmp);
	} else {
		c->writes++;
		if (c->on_put != NULL)
			c->on_put(c->hook_ctx, key);
		evict(c);
	}
	free(tmp);
	free(path);
}

void
cache_server_key(const char *what, const char *url, const char *model,
    char key[CACHE_KEY_LEN + 1])
{
	const char *parts[3] = { what, url, model };
	size_t lens[3] = { strlen(what), strlen(url), strlen(model) };

	cache_key(parts, lens, 3, key);
}
