// Drive the dbhub MCP server over stdio the way an agent does, and print
// what the agent reads back: initialize, tools/list, then one tools/call of
// its SQL tool per statement.
//
// usage: node mcp_call.mjs POSTGRES_URL SQL [SQL ...]
//
// For each statement it prints the statement, then the text of the tool
// result (prefixed "error: " when the tool reports an error).  The exit
// status is 0 when the server answered every call, 1 otherwise.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [url, ...statements] = process.argv.slice(2);
if (!url || statements.length === 0) {
	console.error('usage: node mcp_call.mjs POSTGRES_URL SQL [SQL ...]');
	process.exit(2);
}

const here = dirname(fileURLToPath(import.meta.url));
const dbhubMain = join(here, 'node_modules', '@bytebase', 'dbhub', 'dist', 'index.js');
// cwd in clients/: dbhub reads ./dbhub.toml and ./.env if they exist
// dbhub uses the global Web Crypto object, behind a flag before Node.js 19
const nodeFlags = Number(process.versions.node.split('.')[0]) < 19
	? ['--experimental-global-webcrypto'] : [];
const server = spawn(process.execPath,
	[...nodeFlags, dbhubMain, '--transport', 'stdio', '--dsn', url],
	{ cwd: here, stdio: ['pipe', 'pipe', 'pipe'] });
let serverErrors = '';
server.stderr.on('data', (chunk) => { serverErrors += chunk; });

const waiting = new Map();
createInterface({ input: server.stdout }).on('line', (line) => {
	let message;
	try {
		message = JSON.parse(line);
	} catch {
		return;					// not a JSON-RPC message
	}
	const resolve = waiting.get(message.id);
	if (resolve) {
		waiting.delete(message.id);
		resolve(message);
	}
});

let lastId = 0;
function request(method, params) {
	const id = ++lastId;
	server.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
	return new Promise((resolve, reject) => {
		waiting.set(id, resolve);
		setTimeout(() => reject(new Error(`no answer to ${method}; dbhub said:\n${serverErrors}`)),
			60000).unref();
	});
}

let status = 0;
try {
	const init = await request('initialize', {
		protocolVersion: '2025-06-18',
		capabilities: {},
		clientInfo: { name: 'agent_guard-demo', version: '1.0' },
	});
	server.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
	const info = init.result?.serverInfo ?? {};
	const tools = (await request('tools/list', {})).result?.tools ?? [];
	const sqlTool = tools.find((tool) => tool.inputSchema?.properties?.sql)?.name;
	if (!sqlTool)
		throw new Error('the MCP server offers no SQL tool');
	console.log(`MCP server ${info.name ?? '?'} ${info.version ?? ''}, SQL tool "${sqlTool}"`);

	for (const sql of statements) {
		const answer = await request('tools/call', { name: sqlTool, arguments: { sql } });
		if (!answer.result)
			throw new Error(`tools/call failed: ${JSON.stringify(answer.error ?? answer)}`);
		const text = (answer.result.content ?? []).map((part) => part.text ?? '').join('');
		console.log(`agent -> ${sqlTool}: ${sql}`);
		console.log(`agent <- ${answer.result.isError ? 'error: ' : ''}${text}`);
	}
} catch (error) {
	console.error(error.message);
	status = 1;
} finally {
	server.stdin.end();
	server.kill();
}
process.exit(status);
