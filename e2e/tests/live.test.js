// Follows small tables with the official client while node-postgres changes them.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connectOracle, selectAll } from '../lib/postgres.js';
import { followShape, TEXT_PARSER } from '../lib/shape.js';
import { startVolt } from '../lib/volt.js';

// A short long-poll timeout makes the client go through many idle live requests as well.
const LONG_POLL_TIMEOUT_MS = 1_000;
const SYNC_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 120_000;

let volt;
let oracle;

before(async () => {
  volt = await startVolt({ extraArgs: ['--long-poll-timeout-ms', String(LONG_POLL_TIMEOUT_MS)] });
  oracle = await connectOracle(volt.databaseUrl);
}, { timeout: 90_000 });

after(async () => {
  await oracle?.end();
  await volt?.stop();
}, { timeout: 60_000 });

/** Reads `table` with SELECT and waits until the follower's rows equal it. */
async function expectClientMatchesSelect(follower, table, keyColumns, label) {
  const expectedRows = await selectAll(oracle, table, keyColumns);
  await follower.waitUntilRowsEqual(expectedRows, keyColumns, { timeoutMs: SYNC_TIMEOUT_MS, label });
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

test('items follow every kind of change', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const table = { schema: 'public', name: 'items' };
  const keyColumns = ['id'];
  await oracle.query('CREATE TABLE items (id int PRIMARY KEY, title text, n int)');
  await oracle.query(`INSERT INTO items VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', NULL)`);

  const follower = followShape({ baseUrl: volt.baseUrl, table: 'items', parser: TEXT_PARSER });
  t.after(() => follower.stop());
  await expectClientMatchesSelect(follower, table, keyColumns, 'initial sync');

  const steps = [
    ['insert', [
      ['INSERT INTO items VALUES ($1, $2, $3)', [4, 'quote " backslash \\ tab \t accent é emoji 🚀\nsecond line', 40]],
    ]],
    ['update of a non-key column', [`UPDATE items SET title = 'two, renamed' WHERE id = 2`]],
    ['update to NULL', ['UPDATE items SET n = NULL WHERE id = 1']],
    ['delete', ['DELETE FROM items WHERE id = 3']],
    ['update of the primary key', ['UPDATE items SET id = 10 WHERE id = 1']],
    ['update of key and value together', ['UPDATE items SET id = 20, n = 7 WHERE id = 2']],
    ['transaction with several changes', [
      `INSERT INTO items VALUES (5, 'five', 50)`,
      `UPDATE items SET title = 'five, renamed' WHERE id = 5`,
      `INSERT INTO items VALUES (6, 'six', 60)`,
      'DELETE FROM items WHERE id = 4',
      'UPDATE items SET n = coalesce(n, 0) + 1',
    ]],
    ['delete of every row', ['DELETE FROM items']],
    ['insert of a previously deleted key', [`INSERT INTO items VALUES (1, 'one again', 1)`]],
  ];
  for (const [name, statements] of steps) {
    await t.test(name, async () => {
      await runTransaction(statements);
      await expectClientMatchesSelect(follower, table, keyColumns, `after ${name}`);
    });
  }

  assert.equal(follower.responseCount(409), 0, `the client had to refetch the shape\n${follower.describeHistory()}`);
});

test('composite key in quoted mixed-case table', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const table = { schema: 'MixedCase', name: 'Order Items' };
  const keyColumns = ['Order Code', 'Line Code'];
  await oracle.query('CREATE SCHEMA "MixedCase"');
  await oracle.query(`CREATE TABLE "MixedCase"."Order Items" (
    "Order Code" text,
    "Line Code" text,
    "Quantity" int NOT NULL,
    note text,
    PRIMARY KEY ("Order Code", "Line Code"))`);
  // The rows ('a"/"b', 'c') and ('a', 'b"/"c') get the same row key unless "/" inside
  // key values is escaped, so the client would keep only one of them.
  await oracle.query(`INSERT INTO "MixedCase"."Order Items" VALUES
    ('A-1', '1', 2, 'first'),
    ('A-1', '2', 1, NULL),
    ('a"/"b', 'c', 3, 'slash and quotes in the first key column'),
    ('a', 'b"/"c', 4, 'slash and quotes in the second key column'),
    ('x/y', 'z', 5, 'slash')`);

  const follower = followShape({
    baseUrl: volt.baseUrl,
    table: '"MixedCase"."Order Items"',
    parser: TEXT_PARSER,
  });
  t.after(() => follower.stop());
  await expectClientMatchesSelect(follower, table, keyColumns, 'initial sync');

  const steps = [
    ['update of a non-key column', [`UPDATE "MixedCase"."Order Items" SET "Quantity" = 9 WHERE "Order Code" = 'A-1' AND "Line Code" = '1'`]],
    ['update of one key column', [`UPDATE "MixedCase"."Order Items" SET "Line Code" = '3' WHERE "Order Code" = 'A-1' AND "Line Code" = '2'`]],
    ['delete', [`DELETE FROM "MixedCase"."Order Items" WHERE "Order Code" = 'a' AND "Line Code" = 'b"/"c'`]],
    ['insert', [`INSERT INTO "MixedCase"."Order Items" VALUES ('B-2', '1', 1, 'new')`]],
  ];
  for (const [name, statements] of steps) {
    await t.test(name, async () => {
      await runTransaction(statements);
      await expectClientMatchesSelect(follower, table, keyColumns, `after ${name}`);
    });
  }

  assert.equal(follower.responseCount(409), 0, `the client had to refetch the shape\n${follower.describeHistory()}`);
});

test('default parser converts numbers and booleans', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await oracle.query(`CREATE TABLE typed_values (
    id int4 PRIMARY KEY,
    small int2,
    big int8,
    real_value float4,
    double_value float8,
    flag bool,
    document jsonb,
    amount numeric(10, 2),
    label text)`);
  // 9007199254740993 is 2^53 + 1, which a JavaScript number cannot represent.
  await oracle.query(`INSERT INTO typed_values VALUES
    (1, -7, 9007199254740993, 1.5, -2.25, true, '{"a": [1, 2], "b": null}', 12.50, 'one'),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);

  const follower = followShape({ baseUrl: volt.baseUrl, table: 'typed_values' });
  t.after(() => follower.stop());
  const rowsById = () => new Map(follower.shape.currentRows.map((row) => [row.id, row]));
  const waitForIds = (ids, label) => follower.waitUntil((rows) => {
    const presentIds = new Set(rows.map((row) => row.id));
    const missingIds = ids.filter((id) => !presentIds.has(id));
    return missingIds.length === 0 ? null : `rows with id ${missingIds.join(', ')} are missing`;
  }, { timeoutMs: SYNC_TIMEOUT_MS, label });

  await waitForIds([1, 2], 'initial sync');
  const snapshotRows = rowsById();
  assert.deepEqual(snapshotRows.get(1), {
    id: 1,
    small: -7,
    big: 9007199254740993n,
    real_value: 1.5,
    double_value: -2.25,
    flag: true,
    document: { a: [1, 2], b: null },
    amount: '12.50',
    label: 'one',
  });
  assert.deepEqual(snapshotRows.get(2), {
    id: 2,
    small: null,
    big: null,
    real_value: null,
    double_value: null,
    flag: null,
    document: null,
    amount: null,
    label: null,
  });

  // Changes arrive through the replication stream, whose text can differ from the snapshot's
  // (booleans, for example), so they are checked separately.
  await oracle.query(`INSERT INTO typed_values VALUES
    (3, 32767, -1, 0.25, 1e100, true, '[1, "x"]', 0.10, 'three'),
    (4, 0, 0, -0.5, 3.5, false, '{"ok": false}', 100, 'four')`);
  await waitForIds([1, 2, 3, 4], 'live inserts');
  const liveRows = rowsById();
  assert.deepEqual(liveRows.get(3), {
    id: 3,
    small: 32767,
    big: -1n,
    real_value: 0.25,
    double_value: 1e100,
    flag: true,
    document: [1, 'x'],
    amount: '0.10',
    label: 'three',
  });
  assert.deepEqual(liveRows.get(4), {
    id: 4,
    small: 0,
    big: 0n,
    real_value: -0.5,
    double_value: 3.5,
    flag: false,
    document: { ok: false },
    amount: '100.00',
    label: 'four',
  });

  await oracle.query('UPDATE typed_values SET flag = false, small = 8 WHERE id = 1');
  await follower.waitUntil((rows) => {
    const row = rows.find((candidate) => candidate.id === 1);
    return row?.flag === false && row?.small === 8 ? null : `row 1 is ${formatRow(row)}`;
  }, { timeoutMs: SYNC_TIMEOUT_MS, label: 'live update of row 1' });
  assert.equal(rowsById().get(1).big, 9007199254740993n, 'update kept the unchanged int8 column');
});

test('empty table syncs then gets first insert', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const table = { schema: 'public', name: 'empty_items' };
  const keyColumns = ['id'];
  await oracle.query('CREATE TABLE empty_items (id int PRIMARY KEY, title text)');

  const follower = followShape({ baseUrl: volt.baseUrl, table: 'empty_items', parser: TEXT_PARSER });
  t.after(() => follower.stop());
  await follower.waitUntilRowsEqual([], keyColumns, { timeoutMs: SYNC_TIMEOUT_MS, label: 'initial sync' });
  assert.equal(follower.shape.currentRows.length, 0);

  await oracle.query(`INSERT INTO empty_items VALUES (1, 'first')`);
  await expectClientMatchesSelect(follower, table, keyColumns, 'after the first insert');
  assert.equal(follower.shape.currentRows.length, 1);
});

test('idle long poll ends and following continues', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const table = { schema: 'public', name: 'idle_items' };
  const keyColumns = ['id'];
  await oracle.query('CREATE TABLE idle_items (id int PRIMARY KEY, title text)');
  await oracle.query(`INSERT INTO idle_items VALUES (1, 'one')`);

  const follower = followShape({ baseUrl: volt.baseUrl, table: 'idle_items', parser: TEXT_PARSER });
  t.after(() => follower.stop());
  await expectClientMatchesSelect(follower, table, keyColumns, 'initial sync');

  // With no change to deliver, the live request must end after the long-poll timeout.
  // The current protocol responds with 200 and electric-has-data: false (older servers sent 204).
  const idleResponse = await follower.waitForResponse(
    (record) => record.live && (record.status === 204 || record.hasData === 'false'),
    { timeoutMs: LONG_POLL_TIMEOUT_MS * 10, label: 'live request that times out without data' },
  );
  assert.equal(idleResponse.status, 200, `idle live request ${idleResponse.path}`);

  await oracle.query(`INSERT INTO idle_items VALUES (2, 'two')`);
  await expectClientMatchesSelect(follower, table, keyColumns, 'after an insert following the idle poll');
  assert.equal(follower.responseCount(409), 0, `the client had to refetch the shape\n${follower.describeHistory()}`);
});

function formatRow(row) {
  if (row === undefined) {
    return 'missing';
  }
  return JSON.stringify(row, (key, value) => (typeof value === 'bigint' ? `${value}n` : value));
}
