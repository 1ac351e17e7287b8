#!/usr/bin/env node
// fit.mjs - fit the rates of the "qwen" estimator on per-message counts.
//
// usage: node fit.mjs [--lofo] FILE.json...
//
// Counts every message of the FILEs with the Qwen3 tokenizer (rendered
// as in count.mjs), runs ../est-harness with candidate rates (-p), and
// does a coordinate descent on sum((est - real)^2 / (real + 20)) over
// messages, starting from the rates below (est_defaults in
// src/estimate.c).  Prints the fitted rates and each file's error.
// --lofo instead fits once per file with that file left out and prints
// the error on the file left out.  Builds ../est-harness.c with cc in
// a temporary directory.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { contentText, messagesOf, renderedTokens } from "./count.mjs";

const TMP = mkdtempSync(join(tmpdir(), "est-fit-"));
const HARNESS = join(TMP, "est-harness");
process.on("exit", () => rmSync(TMP, { recursive: true, force: true }));
execFileSync(process.env.CC || "cc", ["-std=c11", "-D_POSIX_C_SOURCE=200809L",
    "-O2", "-o", HARNESS, join(dirname(fileURLToPath(import.meta.url)), "..",
    "est-harness.c")], { stdio: "inherit" });
const INIT = { sp_free: 10, sp_rate: 250, no_free: 9, no_rate: 300,
    sym_free: 5, sym_rate: 250, cap_sym: 400, up_free: 5, up_rate: 275,
    rare: 500, esc: 750, pu_rate: 470, pu_base: -125, pu_space: 375,
    rule_rate: 67, caret_rate: 440 };
const STEP = { sp_free: 1, sp_rate: 40, no_free: 1, no_rate: 40,
    sym_free: 1, sym_rate: 40, cap_sym: 150, up_free: 1, up_rate: 60,
    rare: 150, esc: 150, pu_rate: 60, pu_base: 150, pu_space: 150,
    rule_rate: 8, caret_rate: 60 };
const INTS = new Set(["sp_free", "no_free", "sym_free", "up_free"]);

let argv = process.argv.slice(2);
const lofo = argv[0] === "--lofo";
if (lofo)
	argv = argv.slice(1);
if (argv.length === 0) {
	process.stderr.write("usage: node fit.mjs [--lofo] FILE.json...\n");
	process.exit(2);
}

const real = [];	// [file, tokens] per message
const parts = [];
for (const f of argv) {
	const name = basename(f);
	for (const m of messagesOf(JSON.parse(readFileSync(f, "utf8")))) {
		const role = typeof m.role === "string" ? m.role : "";
		const text = contentText(m.content);
		real.push([name, renderedTokens(role, text)]);
		parts.push(Buffer.from(`M\t${role}\t${Buffer.byteLength(text)}\n`),
		    Buffer.from(text), Buffer.from("\n"));
	}
}
const dump = Buffer.concat(parts);

function evaluate(params, exclude) {
	const args = ["-v"];
	for (const [k, v] of Object.entries(params))
		args.push("-p", `${k}=${v}`);
	const est = execFileSync(HARNESS, args, { input: dump }).toString()
	    .trim().split("\n").map((l) => +l.split("\t")[3]);
	const files = {};
	let loss = 0;
	real.forEach(([f, r], i) => {
		const t = files[f] ??= { real: 0, est: 0 };
		t.real += r;
		t.est += est[i];
		if (f !== exclude)
			loss += (est[i] - r) ** 2 / (r + 20);
	});
	for (const t of Object.values(files))
		t.err = (t.est - t.real) * 100 / t.real;
	return { loss, files };
}

function fit(exclude) {
	let p = { ...INIT };
	const st = { ...STEP };
	let best = evaluate(p, exclude).loss;
	for (let round = 0; round < 14; round++) {
		let improved = false;
		for (const k of Object.keys(p))
			for (const dir of [1, -1])
				for (;;) {
					const q = { ...p, [k]: p[k] + dir * st[k] };
					if (INTS.has(k) && q[k] < 0)
						break;
					const l = evaluate(q, exclude).loss;
					if (l >= best)
						break;
					best = l;
					p = q;
					improved = true;
				}
		for (const k of Object.keys(st))
			if (!INTS.has(k))
				st[k] = Math.max(1, Math.round(st[k] / 2));
		if (!improved && round > 4)
			break;
	}
	return p;
}

function summary(errs) {
	const a = errs.map(Math.abs).sort((x, y) => x - y);
	const n = a.length;
	const med = n % 2 ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
	return `median |error| ${med.toFixed(1)}%, worst ${a[n - 1].toFixed(1)}%`;
}

if (lofo) {
	const errs = [];
	for (const f of argv.map((x) => basename(x))) {
		const r = evaluate(fit(f)).files[f];
		errs.push(r.err);
		console.log(`${f}\t${r.real}\t${r.est}\t${r.err.toFixed(1)}%`);
	}
	console.log(`left out: ${summary(errs)}`);
} else {
	const p = fit();
	console.log(JSON.stringify(p));
	const r = evaluate(p);
	for (const [f, t] of Object.entries(r.files))
		console.log(`${f}\t${t.real}\t${t.est}\t${t.err.toFixed(1)}%`);
	console.log(`fitted: ${summary(Object.values(r.files).map((t) => t.err))}`);
}
