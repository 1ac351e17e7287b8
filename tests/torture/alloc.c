/*
 * alloc.c - allocation-failure torture (make torture), as curl's
 * memdebug does it: count the allocations of a program and make the Nth
 * one fail.  Linked into the programs of the torture build only.
 *
 * What is counted:
 *  - malloc, calloc, realloc, strdup, strndup and getline called from
 *    src/ and cmd/, through the linker's --wrap (the Makefile's
 *    TORTURE_WRAP): xmalloc() and friends, and the few direct calls;
 *  - libcurl's allocations: the constructor below hands libcurl these
 *    allocators with curl_global_init_mem() (the programs' own
 *    curl_global_init() then only counts one more user), so a failure
 *    inside libcurl (a handle, a header list, a buffer of a transfer)
 *    comes back as libcurl reports it, NULL or CURLE_OUT_OF_MEMORY;
 *  - libjq's allocations: jv_mem_alloc, jv_mem_calloc, jv_mem_realloc
 *    and jv_mem_strdup are called through libjq's PLT, so the
 *    definitions here (exported with -rdynamic) take their place.  A
 *    failed one does what libjq 1.6's memory_exhausted() does: call the
 *    handler set with jv_nomem_handler() (recorded here on its way to
 *    libjq) and, if that returns or none is set, print libjq's message
 *    and abort().  So a program that did not set a handler aborts, and
 *    the torture script sees it.
 *
 * Environment:
 *   LLM_ROUTE_FAIL_ALLOC=N   the Nth counted allocation (from 1) fails,
 *                            and only that one
 *   LLM_ROUTE_ALLOC_COUNT=F  at exit, append "PID COUNT WHO" to file F,
 *                            WHO what the failure hit: ours, curl, jq,
 *                            or - (none)
 * A child (llm-serve's workers) goes on counting from its parent's
 * count, and reports it when it ends with _exit() (wrapped too).
 */
#define _GNU_SOURCE	/* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jv.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
ssize_t __real_getline(char **line, size_t *cap, FILE *fp);
_Noreturn void __real__exit(int st);
_Noreturn void __wrap__exit(int st);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
ssize_t __wrap_getline(char **line, size_t *cap, FILE *fp);

void *jv_mem_alloc(size_t n);
void *jv_mem_calloc(size_t k, size_t n);
void *jv_mem_realloc(void *p, size_t n);
char *jv_mem_strdup(const char *s);

static unsigned long count, fail_at;
static int inited, off;
static const char *failed = "-";	/* who the failure hit */
static jv_nomem_handler_f nomem;
static void *nomem_data;

static void
report(void)
{
	const char *f = getenv("LLM_ROUTE_ALLOC_COUNT");
	char line[64];
	int fd, n;

	if (f == NULL || *f == '\0')
		return;
	if ((fd = open(f, O_WRONLY | O_APPEND | O_CREAT, 0644)) < 0)
		return;
	n = snprintf(line, sizeof(line), "%ld %lu %s\n", (long)getpid(),
	    count, failed);
	/* A short write shows as a count missing in the script. */
	(void)!write(fd, line, (size_t)n);
	close(fd);
}

/* Count one allocation for who ("ours", "curl", "jq"); 1 when it is
 * the one to fail. */
static int
fail_now(const char *who)
{
	if (!inited) {
		const char *s = getenv("LLM_ROUTE_FAIL_ALLOC");

		inited = 1;
		fail_at = s != NULL ? strtoul(s, NULL, 10) : 0;
		atexit(report);
	}
	if (off || ++count != fail_at)
		return 0;
	failed = who;
	return 1;
}

static void *
counted_malloc(const char *who, size_t n)
{
	if (fail_now(who)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_malloc(n);
}

void *
__wrap_malloc(size_t n)
{
	return counted_malloc("ours", n);
}

static void *
counted_calloc(const char *who, size_t k, size_t n)
{
	if (fail_now(who)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(k, n);
}

void *
__wrap_calloc(size_t k, size_t n)
{
	return counted_calloc("ours", k, n);
}

static void *
counted_realloc(const char *who, void *p, size_t n)
{
	if (fail_now(who)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(p, n);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return counted_realloc("ours", p, n);
}

static char *
counted_strdup(const char *who, const char *s)
{
	if (fail_now(who)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_strdup(s);
}

char *
__wrap_strdup(const char *s)
{
	return counted_strdup("ours", s);
}

char *
__wrap_strndup(const char *s, size_t n)
{
	if (fail_now("ours")) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_strndup(s, n);
}

/* getline() allocates the line: a failure is -1 with errno ENOMEM. */
ssize_t
__wrap_getline(char **line, size_t *cap, FILE *fp)
{
	if (fail_now("ours")) {
		errno = ENOMEM;
		return -1;
	}
	return __real_getline(line, cap, fp);
}

/* llm-serve's workers end with _exit(): their count too. */
void
__wrap__exit(int st)
{
	if (inited)
		report();
	__real__exit(st);
}

/* libjq's own failure: its handler, else its message and abort(). */
static void
jq_exhausted(void)
{
	if (nomem != NULL)
		nomem(nomem_data);
	fprintf(stderr, "error: cannot allocate memory\n");
	abort();
}

/* libjq's own definition of name, into *fp (a function pointer). */
static void
next(const char *name, void *fp, size_t size)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL) {
		fprintf(stderr, "torture: no %s in libjq\n", name);
		abort();
	}
	memcpy(fp, &f, size);
}

void
jv_nomem_handler(jv_nomem_handler_f h, void *data)
{
	static void (*real)(jv_nomem_handler_f, void *);

	if (real == NULL)
		next("jv_nomem_handler", &real, sizeof(real));
	nomem = h;
	nomem_data = data;
	real(h, data);
}

void *
jv_mem_alloc(size_t n)
{
	static void *(*real)(size_t);

	if (real == NULL)
		next("jv_mem_alloc", &real, sizeof(real));
	if (fail_now("jq"))
		jq_exhausted();
	return real(n);
}

void *
jv_mem_calloc(size_t k, size_t n)
{
	static void *(*real)(size_t, size_t);

	if (real == NULL)
		next("jv_mem_calloc", &real, sizeof(real));
	if (fail_now("jq"))
		jq_exhausted();
	return real(k, n);
}

void *
jv_mem_realloc(void *p, size_t n)
{
	static void *(*real)(void *, size_t);

	if (real == NULL)
		next("jv_mem_realloc", &real, sizeof(real));
	if (fail_now("jq"))
		jq_exhausted();
	return real(p, n);
}

char *
jv_mem_strdup(const char *s)
{
	static char *(*real)(const char *);

	if (real == NULL)
		next("jv_mem_strdup", &real, sizeof(real));
	if (fail_now("jq"))
		jq_exhausted();
	return real(s);
}

/* libcurl's allocators: counted like the others. */
static void *
c_malloc(size_t n)
{
	return counted_malloc("curl", n);
}

static void
c_free(void *p)
{
	free(p);
}

static void *
c_realloc(void *p, size_t n)
{
	return counted_realloc("curl", p, n);
}

static char *
c_strdup(const char *s)
{
	return counted_strdup("curl", s);
}

static void *
c_calloc(size_t k, size_t n)
{
	return counted_calloc("curl", k, n);
}

static void __attribute__((constructor))
curl_counted(void)
{
	off = 1;	/* libcurl's own start-up is not the program's */
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, c_malloc, c_free,
	    c_realloc, c_strdup, c_calloc) != CURLE_OK) {
		fprintf(stderr, "torture: curl_global_init_mem failed\n");
		abort();
	}
	off = 0;
}

static void __attribute__((destructor))
curl_done(void)
{
	off = 1;
	curl_global_cleanup();
}
