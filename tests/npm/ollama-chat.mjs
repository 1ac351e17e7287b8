// ollama-chat.mjs URL [--no-stream] < chat.json
//
// One chat through the `ollama` npm client (the one Cline 3.x used), the way
// Cline called it: new Ollama({host}), chat({model, messages, stream: true}),
// for await over the parts. Prints one JSON line:
//   {"text": the concatenated message.content, "parts": N, "done": N of parts
//    with done:true, "last_done": whether the last part had done:true,
//    "done_reason", "prompt_eval_count", "eval_count",
//    "bad_parts": N of parts without message.role "assistant" and a string
//    message.content}
// A thrown error: "NAME: MESSAGE" on stderr, exit status 1.

import { Ollama } from 'ollama';
import { readChat, url, flag, print, run } from './lib.mjs';

await run(async () => {
	const host = url('ollama-chat.mjs URL [--no-stream] < chat.json');
	const chat = readChat();
	const client = new Ollama({ host });
	const stream = !flag('--no-stream');
	const res = await client.chat({ ...chat, stream });
	const parts = [];
	if (stream) {
		for await (const part of res)
			parts.push(part);
	} else {
		parts.push(res);
	}
	const last = parts[parts.length - 1] ?? {};
	print({
		text: parts.map((p) => p.message?.content ?? '').join(''),
		parts: parts.length,
		done: parts.filter((p) => p.done === true).length,
		last_done: last.done === true,
		done_reason: last.done_reason ?? null,
		prompt_eval_count: last.prompt_eval_count ?? null,
		eval_count: last.eval_count ?? null,
		bad_parts: parts.filter((p) => p.message?.role !== 'assistant'
			|| typeof p.message?.content !== 'string').length,
	});
});
