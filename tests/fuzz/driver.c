/*
 * driver.c - run inputs through a fuzz target without libFuzzer.
 *
 * Usage: fuzz_NAME FILE|DIR ...
 * Each file, and each regular file of each directory (in name order,
 * dot files skipped), is read into a buffer of exactly its size and
 * passed to LLVMFuzzerTestOneInput(), as libFuzzer would replay it.
 * A crash, a sanitizer report or an abort ends the run; otherwise the
 * exit status is 0, or 1 when an input could not be read.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *prog = "fuzz-driver";
static unsigned long ninputs;

static int
run_file(const char *path)
{
	FILE *fp;
	uint8_t *p;
	long n;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return 1;
	}
	if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) != 0) {
		fprintf(stderr, "%s: %s: cannot size\n", prog, path);
		fclose(fp);
		return 1;
	}
	/* Exactly n bytes (at least 1 to malloc), so ASan sees overreads. */
	if ((p = malloc(n > 0 ? (size_t)n : 1)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	if (n > 0 && fread(p, 1, (size_t)n, fp) != (size_t)n) {
		fprintf(stderr, "%s: %s: short read\n", prog, path);
		free(p);
		fclose(fp);
		return 1;
	}
	fclose(fp);
	fprintf(stderr, "%s: %s (%ld bytes)\n", prog, path, n);
	(void)LLVMFuzzerTestOneInput(p, (size_t)n);
	free(p);
	ninputs++;
	return 0;
}

static int
run_dir(const char *dir)
{
	struct dirent **ents;
	struct stat st;
	char path[4096];
	int i, n, bad = 0;

	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir,
		    ents[i]->d_name) < (int)sizeof(path) &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode))
			bad |= run_file(path);
		free(ents[i]);
	}
	free(ents);
	return bad;
}

int
main(int argc, char **argv)
{
	struct stat st;
	int i, bad = 0;

	if (argc > 0 && argv[0] != NULL && strrchr(argv[0], '/') != NULL)
		prog = strrchr(argv[0], '/') + 1;
	else if (argc > 0 && argv[0] != NULL)
		prog = argv[0];
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR ...\n", prog);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, argv[i],
			    strerror(errno));
			bad = 1;
		} else if (S_ISDIR(st.st_mode))
			bad |= run_dir(argv[i]);
		else
			bad |= run_file(argv[i]);
	}
	fprintf(stderr, "%s: %lu inputs run%s\n", prog, ninputs,
	    bad ? ", some unreadable" : "");
	return bad;
}
