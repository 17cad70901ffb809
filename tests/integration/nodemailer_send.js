#!/usr/bin/env node
/*
 * nodemailer_send.js - sends one message with nodemailer, for
 * test_nodemailer.py.
 *
 * Reads a JSON object from standard input: host, port, secure, requireTLS,
 * user, pass, from, to (array), subject, text. Prints one JSON line on
 * standard output: {"ok": true, "response": ..., "accepted": [...],
 * "rejected": [...], "messageId": ...} or {"ok": false, "code": ...,
 * "responseCode": ..., "response": ..., "message": ...}; exits 0 when the
 * message was accepted, 1 otherwise, 2 on a usage error.
 */
'use strict';

const nodemailer = require('nodemailer');

function readStdin() {
	return new Promise((resolve, reject) => {
		const chunks = [];
		process.stdin.on('data', (c) => chunks.push(c));
		process.stdin.on('end', () =>
		    resolve(Buffer.concat(chunks).toString('utf8')));
		process.stdin.on('error', reject);
	});
}

async function main() {
	let o;
	try {
		o = JSON.parse(await readStdin());
	} catch (e) {
		process.stderr.write('nodemailer_send: bad JSON on stdin: ' +
		    e.message + '\n');
		return 2;
	}
	const transport = nodemailer.createTransport({
		host: o.host,
		port: o.port,
		secure: !!o.secure,
		requireTLS: !!o.requireTLS,
		auth: o.user ? { user: o.user, pass: o.pass } : undefined,
		tls: { rejectUnauthorized: false },
		name: 'nodemailer.test',
		connectionTimeout: 15000,
		greetingTimeout: 15000,
		socketTimeout: 30000,
	});
	try {
		const info = await transport.sendMail({
			from: o.from,
			to: o.to,
			subject: o.subject,
			text: o.text,
		});
		process.stdout.write(JSON.stringify({
			ok: true,
			response: info.response,
			accepted: info.accepted,
			rejected: info.rejected,
			messageId: info.messageId,
		}) + '\n');
		return 0;
	} catch (e) {
		process.stdout.write(JSON.stringify({
			ok: false,
			code: e.code || null,
			responseCode: e.responseCode || null,
			response: e.response || null,
			message: e.message,
		}) + '\n');
		return 1;
	} finally {
		transport.close();
	}
}

main().then((rc) => { process.exitCode = rc; }, (e) => {
	process.stderr.write('nodemailer_send: ' + e.stack + '\n');
	process.exitCode = 1;
});
