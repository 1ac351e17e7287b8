// openai-chat.mjs BASE_URL [--stream] < chat.json
//
// One chat through the `openai` npm client against BASE_URL (llm-serve's
// .../v1): chat.completions.create, streamed (with stream_options
// include_usage, as Cline's OpenAI-compatible provider asks) or not.
// Prints one JSON line:
//   {"text", "finish_reason", "usage": {...} or null, "chunks": N (0 when not
//    streamed), "object": the response's or the chunks' object type}
// A thrown error: "NAME: MESSAGE" on stderr, exit status 1.

import OpenAI from 'openai';
import { readChat, url, flag, print, run } from './lib.mjs';

await run(async () => {
	const baseURL = url('openai-chat.mjs BASE_URL [--stream] < chat.json');
	const chat = readChat();
	const client = new OpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY || 'none', maxRetries: 0 });
	const req = { model: chat.model, messages: chat.messages };
	if (flag('--stream')) {
		const stream = await client.chat.completions.create({
			...req, stream: true, stream_options: { include_usage: true },
		});
		let text = '', finish = null, usage = null, chunks = 0;
		const objects = new Set();
		for await (const c of stream) {
			chunks++;
			objects.add(c.object);
			for (const ch of c.choices ?? []) {
				text += ch.delta?.content ?? '';
				if (ch.finish_reason) finish = ch.finish_reason;
			}
			if (c.usage) usage = c.usage;
		}
		print({ text, finish_reason: finish, usage, chunks, object: [...objects].join(',') });
	} else {
		const r = await client.chat.completions.create({ ...req, stream: false });
		print({
			text: r.choices?.[0]?.message?.content ?? null,
			finish_reason: r.choices?.[0]?.finish_reason ?? null,
			usage: r.usage ?? null, chunks: 0, object: r.object,
		});
	}
});
