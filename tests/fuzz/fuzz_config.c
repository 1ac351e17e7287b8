/*
 * fuzz_config.c - the config file parser: config_load() with
 * LLM_ROUTE_CONFIG naming a file that holds the input.
 *
 * The other variables config_load() reads are unset, so the file alone
 * decides.  Checks: the result is 0 or LR_USAGE with a one-line message
 * (a config error is a usage error, never a crash); on success every
 * role has 1 to ROLE_MAX_URLS URLs, a model and thresholds in range,
 * llm-serve's settings in range, every setting with a value and an
 * origin, and config_check() and config_print() work on it.  The seed
 * all_keys.conf sets every key the table in src/config.c has.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, \
	"fuzz_config: check failed: %s (%s:%d)\n", #cond, __FILE__, \
	__LINE__); abort(); } } while (0)

static char path[4096];
static int fd = -1;
static FILE *devnull;

static void
cleanup(void)
{
	if (path[0] != '\0')
		unlink(path);
}

static void
setup(void)
{
	static const char *const vars[] = {
		"LLM_GPU0_URL", "LLM_GPU0_MODEL", "LLM_GPU0_API",
		"LLM_GPU0_API_KEY", "LLM_GPU1_URL", "LLM_GPU1_MODEL",
		"LLM_GPU1_API", "LLM_GPU1_API_KEY", "LLM_ROUTE_A_MAX",
		"LLM_ROUTE_B_MAX", "LLM_ROUTE_POLICY", "LLM_SERVE_LISTEN",
		"OLLAMA_HOST", NULL
	};
	const char *tmp = getenv("TMPDIR");
	int i;

	for (i = 0; vars[i] != NULL; i++)
		unsetenv(vars[i]);
	snprintf(path, sizeof(path), "%s/fuzz_config.XXXXXX",
	    tmp != NULL && *tmp == '/' ? tmp : "/tmp");
	if ((fd = mkstemp(path)) < 0) {
		perror("fuzz_config: mkstemp");
		abort();
	}
	atexit(cleanup);
	setenv("LLM_ROUTE_CONFIG", path, 1);
	devnull = fopen("/dev/null", "w");
	CHECK(devnull != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	struct lr_err e;
	int r, j, k;

	if (fd < 0)
		setup();
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);
	memset(&e, 0, sizeof(e));
	r = config_load(&c, &e);
	if (r != 0) {
		CHECK(r == LR_USAGE);
		CHECK(e.status == LR_USAGE);
		CHECK(e.msg[0] != '\0');
		CHECK(strchr(e.msg, '\n') == NULL);
	} else {
		for (j = 0; j < NROLES; j++) {
			const struct role *ro = &c.role[j];

			CHECK(ro->nurls >= 1 && ro->nurls <= ROLE_MAX_URLS);
			for (k = 0; k < ro->nurls; k++)
				CHECK(ro->urls[k] != NULL);
			CHECK(ro->model != NULL && ro->model[0] != '\0');
			CHECK(ro->api == API_OLLAMA || ro->api == API_OPENAI);
			CHECK(ro->connect_ms >= 0 && ro->total_ms >= 0 &&
			    ro->first_byte_ms >= 0 && ro->idle_ms >= 0);
		}
		CHECK(c.a_max >= 0 && c.b_max >= 0);
		CHECK(c.policy == POLICY_THRESHOLDS || c.policy == POLICY_COST);
		CHECK(c.serve.nlisten >= 1 &&
		    c.serve.nlisten <= SERVE_MAX_LISTEN);
		for (k = 0; k < c.serve.nlisten; k++)
			CHECK(c.serve.listen[k] != NULL &&
			    strchr(c.serve.listen[k], ':') != NULL);
		CHECK(c.serve.max_streams >= 0 && c.serve.keepalive_ms >= 0 &&
		    c.serve.drain_ms >= 0);
		CHECK(c.serve.prefetch == 0 || c.serve.prefetch == 1);
		CHECK(c.serve.prepare_pct >= 0 && c.serve.prepare_pct <= 100);
		CHECK(c.serve.token_file != NULL);
		for (j = 0; j < CONFIG_NSETTINGS; j++)
			CHECK(c.values[j] != NULL && c.origins[j] != NULL);
		memset(&e, 0, sizeof(e));
		r = config_check(&c, &e);
		CHECK(r == 0 || (r == LR_USAGE && e.msg[0] != '\0'));
		config_print(&c, devnull);
	}
	config_free(&c);
	return 0;
}
