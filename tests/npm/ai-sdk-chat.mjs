// ai-sdk-chat.mjs BASE_URL < chat.json
//
// One chat through the Vercel AI SDK (`ai`) streamText with Cline 4's Ollama
// provider, `ollama-ai-provider-v2`: createOllama({baseURL}), where BASE_URL
// is the Ollama API root with its /api (http://HOST:PORT/api, the provider's
// default being http://127.0.0.1:11434/api). Prints one JSON line:
//   {"text": the concatenated text stream, "finish_reason",
//    "usage": {"inputTokens", "outputTokens", "totalTokens"}}
// An error part in the stream, or a thrown error: "NAME: MESSAGE" on stderr,
// exit status 1.

import { streamText } from 'ai';
import { createOllama } from 'ollama-ai-provider-v2';
import { readChat, url, print, run } from './lib.mjs';

await run(async () => {
	const baseURL = url('ai-sdk-chat.mjs BASE_URL < chat.json');
	const chat = readChat();
	const ollama = createOllama({ baseURL });
	const result = streamText({
		model: ollama(chat.model),
		messages: chat.messages,
		allowSystemInMessages: true,	// a chat as Cline sends it, system first
		maxRetries: 0,
		onError: () => {},	// the error part below reports it
	});
	let text = '', error = null;
	for await (const part of result.fullStream) {
		if (part.type === 'text-delta') text += part.text ?? part.delta ?? '';
		else if (part.type === 'error') error ??= part.error;
	}
	if (error) throw error instanceof Error ? error : new Error(JSON.stringify(error));
	const usage = await result.usage;
	print({
		text,
		finish_reason: await result.finishReason,
		usage: {
			inputTokens: usage.inputTokens ?? null,
			outputTokens: usage.outputTokens ?? null,
			totalTokens: usage.totalTokens ?? null,
		},
	});
});
