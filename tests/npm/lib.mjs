// lib.mjs - what the client scripts share: the chat from stdin, the result
// on stdout, a thrown error as one line on stderr and exit status 1.

import { readFileSync } from 'node:fs';

// The chat request on stdin (an Ollama or OpenAI chat request object).
export function readChat() {
	const chat = JSON.parse(readFileSync(0, 'utf8'));
	if (!chat || typeof chat.model !== 'string' || !Array.isArray(chat.messages))
		throw new Error('stdin: a chat request with model and messages is needed');
	return chat;
}

// The server URL: the first argument.
export function url(usage) {
	const u = process.argv[2];
	if (!u || u.startsWith('-')) {
		process.stderr.write(`usage: ${usage}\n`);
		process.exit(2);
	}
	return u;
}

export function flag(name) {
	return process.argv.slice(3).includes(name);
}

// One JSON object, one line, on stdout.
export function print(obj) {
	process.stdout.write(JSON.stringify(obj) + '\n');
}

// Run main; a thrown error becomes "NAME: MESSAGE" on one line of stderr.
export async function run(main) {
	try {
		await main();
	} catch (e) {
		const name = e?.name ?? 'Error';
		const msg = String(e?.message ?? e).replace(/\s*\n\s*/g, ' ');
		process.stderr.write(`${name}: ${msg}\n`);
		process.exitCode = 1;
	}
}
