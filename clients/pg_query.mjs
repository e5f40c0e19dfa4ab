// Run one statement through node-postgres ("pg"), the driver most Node.js
// agent frameworks use, and print what the agent gets back as one JSON line.
//
// usage: node pg_query.mjs CONNECTION_STRING SQL [PARAMS_JSON]
//
// With PARAMS_JSON (a JSON array) the statement goes through the extended
// query protocol (Parse/Bind/Execute, $1, $2, ...); without it, through the
// simple protocol.  The output is
//   {"ok":true,"command":...,"rowCount":...,"rows":[...]}
// or
//   {"ok":false,"error":{"message":...,"code":...,"detail":...,"hint":...,...}}
// where "error" holds every field node-postgres puts on its error object.
// The exit status is 0 either way; it is 2 only if the arguments are wrong.
import pg from 'pg';

const [connectionString, sql, paramsJson] = process.argv.slice(2);
if (!connectionString || !sql) {
	console.error('usage: node pg_query.mjs CONNECTION_STRING SQL [PARAMS_JSON]');
	process.exit(2);
}
const params = paramsJson === undefined ? undefined : JSON.parse(paramsJson);

const client = new pg.Client({ connectionString, application_name: 'node-pg agent' });
let answer;
try {
	await client.connect();
	const result = params === undefined
		? await client.query(sql)
		: await client.query(sql, params);
	answer = { ok: true, command: result.command, rowCount: result.rowCount, rows: result.rows };
} catch (err) {
	// the message is not an own enumerable property of an Error: add it
	const error = { message: err.message };
	for (const [key, value] of Object.entries(err))
		if (value !== undefined)
			error[key] = value;
	answer = { ok: false, error };
} finally {
	await client.end().catch(() => {});
}
console.log(JSON.stringify(answer));
