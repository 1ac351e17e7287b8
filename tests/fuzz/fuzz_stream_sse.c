/*
 * fuzz_stream_sse.c - an OpenAI /v1/chat/completions reply (SSE)
 * through stream_feed() and stream_finish(), split at points derived
 * from the input; see stream_target.h.
 */
#define STREAM_API	API_OPENAI
#define STREAM_NAME	"fuzz_stream_sse"
#include "stream_target.h"
