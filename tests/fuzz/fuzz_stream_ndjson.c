/*
 * fuzz_stream_ndjson.c - an Ollama /api/chat reply (NDJSON) through
 * stream_feed() and stream_finish(), split at points derived from the
 * input; see stream_target.h.
 */
#define STREAM_API	API_OLLAMA
#define STREAM_NAME	"fuzz_stream_ndjson"
#include "stream_target.h"
