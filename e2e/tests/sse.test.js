// Client 1.5.28 in SSE mode (`liveSse: true`) and in long-poll mode, side by side, against a
// Volt started with --secret: every kind of change arrives, and both clients end equal to
// SELECT. Short stream lifetimes make the SSE client reconnect from the offset it derives
// from each up-to-date message.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connectOracle, selectAll } from '../lib/postgres.js';
import { runProgramChecked } from '../lib/programs.js';
import { followShape, TEXT_PARSER } from '../lib/shape.js';
import { startVolt } from '../lib/volt.js';

const SECRET = 'sse secret/with+signs';
const LONG_POLL_TIMEOUT_MS = 1_000;
// Long enough that the client does not count a stream as a failed short connection (under
// 1 s), short enough that the test goes through several reconnects.
const SSE_LIFETIME_MS = 3_000;
const SSE_KEEP_ALIVE_INTERVAL_MS = 500;
const SYNC_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 180_000;
const INITIAL_ROWS = 300;

let volt;
let oracle;

before(async () => {
  volt = await startVolt({
    extraArgs: [
      '--secret', SECRET,
      '--long-poll-timeout-ms', String(LONG_POLL_TIMEOUT_MS),
      '--sse-lifetime-ms', String(SSE_LIFETIME_MS),
      '--sse-keep-alive-interval-ms', String(SSE_KEEP_ALIVE_INTERVAL_MS),
    ],
  });
  oracle = await connectOracle(volt.databaseUrl);
}, { timeout: 90_000 });

after(async () => {
  await oracle?.end();
  await volt?.stop();
}, { timeout: 60_000 });

/**
 * Checks every change `follower` receives from now on: its log position (`lsn`, then
 * `op_position`) must be greater than the previous change's, so no change arrives twice or
 * out of order. Returns the list of violations, which the test asserts empty.
 */
function trackPositions(follower) {
  const violations = [];
  let last = null;
  follower.stream.subscribe((messages) => {
    for (const message of messages) {
      if (message.headers?.control === 'must-refetch') {
        last = null;
      }
      if (typeof message.headers?.lsn !== 'string') {
        continue;
      }
      const position = { lsn: BigInt(message.headers.lsn), op: message.headers.op_position };
      if (last !== null && (position.lsn < last.lsn || (position.lsn === last.lsn && position.op <= last.op))) {
        violations.push(`change at ${position.lsn}_${position.op} after ${last.lsn}_${last.op}`);
      }
      last = position;
    }
  });
  return violations;
}

/** Runs `statements` (SQL text or [text, values]) in one transaction. */
async function runTransaction(statements) {
  await oracle.query('BEGIN');
  try {
    for (const statement of statements) {
      const [text, values] = Array.isArray(statement) ? statement : [statement, []];
      await oracle.query(text, values);
    }
    await oracle.query('COMMIT');
  } catch (error) {
    await oracle.query('ROLLBACK');
    throw error;
  }
}

test('SSE and long-poll clients follow every kind of change', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const table = { schema: 'public', name: 'items' };
  const keyColumns = ['id'];
  await oracle.query('CREATE TABLE items (id int PRIMARY KEY, title text, n int)');
  await oracle.query(
    `INSERT INTO items SELECT g, 'title ' || g, g FROM generate_series(1, ${INITIAL_ROWS}) g`,
  );
  // Changes to another table move the server's WAL position past the shape's last change.
  await oracle.query('CREATE TABLE other (id int PRIMARY KEY, n int)');

  const followers = {
    sse: followShape({
      baseUrl: volt.baseUrl,
      table: 'items',
      parser: TEXT_PARSER,
      shapeParams: { secret: SECRET },
      streamOptions: { liveSse: true },
    }),
    'long-poll': followShape({
      baseUrl: volt.baseUrl,
      table: 'items',
      parser: TEXT_PARSER,
      shapeParams: { secret: SECRET },
    }),
  };
  t.after(() => Object.values(followers).forEach((follower) => follower.stop()));
  const violations = Object.fromEntries(
    Object.entries(followers).map(([mode, follower]) => [mode, trackPositions(follower)]),
  );

  const expectClientsMatchSelect = async (label) => {
    const expectedRows = await selectAll(oracle, table, keyColumns);
    await Promise.all(Object.entries(followers).map(([mode, follower]) => follower.waitUntilRowsEqual(
      expectedRows, keyColumns, { timeoutMs: SYNC_TIMEOUT_MS, label: `${mode} client, ${label}` },
    )));
  };
  await expectClientsMatchSelect('initial sync');

  const steps = [
    ['insert', [
      ['INSERT INTO items VALUES ($1, $2, $3)', [1000, 'quote " backslash \\ accent é emoji 🚀\nsecond line', 1]],
    ]],
    ['update of a non-key column', [`UPDATE items SET title = 'renamed' WHERE id = 2`]],
    ['update to NULL', ['UPDATE items SET n = NULL WHERE id = 3']],
    ['delete', ['DELETE FROM items WHERE id = 4']],
    ['changes to another table only', [
      'INSERT INTO other SELECT g, g FROM generate_series(1, 50) g',
      'UPDATE other SET n = n + 1',
    ]],
    ['update of the primary key', ['UPDATE items SET id = 2000 WHERE id = 5']],
    ['transaction with several changes', [
      `INSERT INTO items VALUES (3000, 'new', 1)`,
      `UPDATE items SET title = 'new, renamed' WHERE id = 3000`,
      'DELETE FROM items WHERE id BETWEEN 10 AND 20',
      'UPDATE items SET n = coalesce(n, 0) + 1 WHERE id % 7 = 0',
      'UPDATE other SET n = n + 1',
    ]],
    ['delete of most rows', ['DELETE FROM items WHERE id > 50']],
    ['insert of a previously deleted key', [`INSERT INTO items VALUES (100, 'back again', 1)`]],
  ];
  for (const [name, statements] of steps) {
    await t.test(name, async () => {
      await runTransaction(statements);
      await expectClientsMatchSelect(`after ${name}`);
    });
  }

  await t.test('change after an SSE reconnect', async () => {
    // The stream ends after its lifetime; the next one starts from the offset the client
    // derived from the last up-to-date message.
    const reconnected = followers.sse.waitForResponse(
      (record) => record.sse && record.status === 200,
      { timeoutMs: SSE_LIFETIME_MS * 3, label: 'SSE reconnect' },
    );
    await oracle.query('UPDATE other SET n = n + 1');
    await reconnected;
    await runTransaction([`UPDATE items SET title = 'after reconnect' WHERE id = 1`]);
    await expectClientsMatchSelect('after an SSE reconnect');
  });

  const sse = followers.sse;
  const longPoll = followers['long-poll'];
  assert.ok(sse.responseKinds.sse >= 2, `SSE responses: ${sse.responseKinds.sse}\n${sse.describeHistory()}`);
  // The client falls back to long polls after three streams shorter than 1 s.
  assert.equal(sse.responseKinds.longPoll, 0, `the SSE client fell back to long polling\n${sse.describeHistory()}`);
  assert.equal(longPoll.responseKinds.sse, 0);
  assert.ok(longPoll.responseKinds.longPoll > 0, longPoll.describeHistory());
  for (const [mode, follower] of Object.entries(followers)) {
    assert.deepEqual(violations[mode], [], `${mode} client received changes twice or out of order`);
    assert.equal(follower.responseCount(409), 0, `${mode} client resynced\n${follower.describeHistory()}`);
    assert.equal(follower.responseCount(400), 0, `${mode} client got a 400\n${follower.describeHistory()}`);
    // Node's fetch accepts gzip, and the first snapshot chunk is large enough to compress.
    assert.ok(follower.responseKinds.gzip > 0, `${mode} client received no gzip response\n${follower.describeHistory()}`);
  }
});

test('SSE clients follow a pgbench run', { timeout: 420_000 }, async (t) => {
  const followedTables = [
    { table: { schema: 'public', name: 'pgbench_accounts' }, keyColumns: ['aid'] },
    { table: { schema: 'public', name: 'pgbench_tellers' }, keyColumns: ['tid'] },
    { table: { schema: 'public', name: 'pgbench_branches' }, keyColumns: ['bid'] },
  ];
  await runProgramChecked('pgbench', ['-i', '-q', '-s', '1', volt.databaseUrl], { timeoutMs: 120_000 });
  const followers = followedTables.map(({ table }) => followShape({
    baseUrl: volt.baseUrl,
    table: table.name,
    parser: TEXT_PARSER,
    shapeParams: { secret: SECRET },
    streamOptions: { liveSse: true },
  }));
  t.after(() => followers.forEach((follower) => follower.stop()));
  const violations = followers.map(trackPositions);

  const expectFollowersMatchSelect = (label, timeoutMs) => Promise.all(
    followedTables.map(async ({ table, keyColumns }, index) => {
      const expectedRows = await selectAll(oracle, table, keyColumns);
      await followers[index].waitUntilRowsEqual(expectedRows, keyColumns, { timeoutMs, label: `${table.name} ${label}` });
    }),
  );
  await expectFollowersMatchSelect('initial sync', 120_000);

  // Four writers for 10 s, so several streams end and reconnect while transactions commit.
  const benchmark = await runProgramChecked(
    'pgbench',
    ['-c', '4', '-T', '10', volt.databaseUrl],
    { timeoutMs: 120_000 },
  );
  const processed = /number of transactions actually processed: (\d+)/.exec(benchmark.stdout);
  assert.ok(processed, `pgbench printed no transaction count:\n${benchmark.stdout}`);
  assert.ok(Number(processed[1]) > 0, `pgbench processed no transactions:\n${benchmark.stdout}`);
  t.diagnostic(`pgbench processed ${processed[1]} transactions`);

  await expectFollowersMatchSelect('after pgbench', 60_000);
  for (const [index, follower] of followers.entries()) {
    const name = followedTables[index].table.name;
    assert.deepEqual(violations[index], [], `${name}: changes arrived twice or out of order`);
    assert.ok(follower.responseKinds.sse >= 2, `${name}: SSE responses\n${follower.describeHistory()}`);
    assert.equal(follower.responseKinds.longPoll, 0, `${name}: fell back to long polls\n${follower.describeHistory()}`);
    assert.equal(follower.responseCount(409), 0, `${name}: resynced\n${follower.describeHistory()}`);
  }
});

test('SSE request without the secret gets 401', async () => {
  const response = await fetch(
    `${volt.baseUrl}/v1/shape?table=items&offset=0_inf&handle=h&live=true&live_sse=true`,
    { headers: { accept: 'text/event-stream' } },
  );
  assert.equal(response.status, 401);
  assert.deepEqual(await response.json(), { message: 'Unauthorized - Invalid API secret' });
});
