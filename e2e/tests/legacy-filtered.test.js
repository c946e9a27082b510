// Follows WHERE-filtered shapes through the 2024 dialect (/v1/shape/{table}?where=…) with the
// official client 0.3.1 while node-postgres changes the table, and compares each client's
// rows with `SELECT * FROM table WHERE <clause>`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { followLegacyShape } from '../lib/legacy-shape.js';
import { connectOracle, selectShapeRows } from '../lib/postgres.js';
import { TEXT_PARSER } from '../lib/shape.js';
import { startVolt } from '../lib/volt.js';

// A short long-poll timeout makes the clients go through idle live requests (204) as well.
const LONG_POLL_TIMEOUT_MS = 1_000;
const SYNC_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 120_000;

const TABLE = { schema: 'public', name: 'legacy_tasks' };
const KEY_COLUMNS = ['id'];
const WHERE_CLAUSES = [
  `status = 'open'`,
  'priority >= 3 AND priority < 8',
  `due < '2025-01-01'`,
];

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

/** Waits until each follower's rows equal the SELECT of its WHERE clause, read now. */
async function expectEveryShapeMatchesSelect(entries, label) {
  // One connection runs one query at a time, so the SELECTs run before the waits start.
  const expectedRowsPerEntry = [];
  for (const { where } of entries) {
    expectedRowsPerEntry.push(await selectShapeRows(oracle, TABLE, KEY_COLUMNS, { where }));
  }
  await Promise.all(entries.map(({ where, follower }, index) => follower.waitUntilRowsEqual(
    expectedRowsPerEntry[index],
    KEY_COLUMNS,
    { timeoutMs: SYNC_TIMEOUT_MS, label: `${label}, where ${where}` },
  )));
}

test('client 0.3.1 follows WHERE-filtered shapes', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await oracle.query(`CREATE TABLE legacy_tasks (
    id int PRIMARY KEY,
    status text NOT NULL,
    priority int,
    due date,
    title text)`);
  await oracle.query(`INSERT INTO legacy_tasks VALUES
    (1, 'open', 5, '2024-03-01', 'open, mid priority, due early'),
    (2, 'done', 1, '2025-06-30', 'done, low priority, due late'),
    (3, 'review', 8, NULL, 'review, priority at the upper bound, no due date'),
    (4, 'open', NULL, '2024-12-31', 'quote " slash / accent é'),
    (5, 'blocked', 3, '2025-01-01', 'priority at the lower bound, due on the bound')`);

  const entries = WHERE_CLAUSES.map((where) => ({
    where,
    follower: followLegacyShape({ baseUrl: volt.baseUrl, table: 'legacy_tasks', parser: TEXT_PARSER, where }),
  }));
  t.after(() => {
    for (const { follower } of entries) {
      follower.stop();
    }
  });
  await expectEveryShapeMatchesSelect(entries, 'initial sync');

  const steps = [
    ['insert inside', [`INSERT INTO legacy_tasks VALUES (10, 'open', 4, '2024-01-15', 'inside every shape')`]],
    ['insert outside', [`INSERT INTO legacy_tasks VALUES (11, 'done', 9, '2026-01-01', 'outside every shape')`]],
    ['update moving rows in', [
      `UPDATE legacy_tasks SET status = 'open' WHERE id = 2`,
      'UPDATE legacy_tasks SET priority = 7 WHERE id = 3',
      `UPDATE legacy_tasks SET due = '2024-12-31' WHERE id = 5`,
    ]],
    ['update moving rows out', [
      `UPDATE legacy_tasks SET status = 'done' WHERE id = 1`,
      'UPDATE legacy_tasks SET priority = 8 WHERE id = 3',
      `UPDATE legacy_tasks SET due = NULL WHERE id = 4`,
    ]],
    ['update keeping a row inside', [`UPDATE legacy_tasks SET priority = 6, title = 'still inside' WHERE id = 10`]],
    ['update of a column outside the clauses', [`UPDATE legacy_tasks SET title = 'renamed' WHERE id = 2`]],
    ['delete inside', ['DELETE FROM legacy_tasks WHERE id = 10']],
    ['delete outside', ['DELETE FROM legacy_tasks WHERE id = 11']],
    ['primary key change inside', ['UPDATE legacy_tasks SET id = 102 WHERE id = 2']],
    ['primary key change moving a row out', [`UPDATE legacy_tasks SET id = 105, priority = 2, due = '2025-02-01' WHERE id = 5`]],
    ['several changes in one transaction', [
      'BEGIN',
      `INSERT INTO legacy_tasks VALUES (20, 'open', 5, '2024-06-01', 'in, out and in again')`,
      `UPDATE legacy_tasks SET status = 'done', priority = 9, due = NULL WHERE id = 20`,
      `UPDATE legacy_tasks SET status = 'open', priority = 3, due = '2024-06-02' WHERE id = 20`,
      `INSERT INTO legacy_tasks VALUES (21, 'open', 5, '2024-06-01', 'inserted and deleted')`,
      'DELETE FROM legacy_tasks WHERE id = 21',
      'UPDATE legacy_tasks SET priority = coalesce(priority, 0) + 1',
      'COMMIT',
    ]],
    ['bulk insert and update', [
      'BEGIN',
      `INSERT INTO legacy_tasks
         SELECT g, (ARRAY['open', 'review', 'blocked', 'done'])[1 + g % 4], g % 11,
                DATE '2024-10-01' + (g * 7), 'bulk ' || g
           FROM generate_series(200, 259) g`,
      `UPDATE legacy_tasks SET status = 'open' WHERE id BETWEEN 200 AND 259 AND priority > 6`,
      'COMMIT',
    ]],
    ['bulk delete', ['DELETE FROM legacy_tasks WHERE id BETWEEN 230 AND 259']],
  ];
  for (const [name, statements] of steps) {
    await t.test(name, async () => {
      for (const statement of statements) {
        await oracle.query(statement);
      }
      await expectEveryShapeMatchesSelect(entries, `after ${name}`);
    });
  }

  for (const { where, follower } of entries) {
    const expectedRows = await selectShapeRows(oracle, TABLE, KEY_COLUMNS, { where });
    assert.ok(expectedRows.length > 0, `where ${where} ends with no rows, so the comparison checks little`);
    assert.equal(follower.responseCount(409), 0, `where ${where}: the client had to refetch\n${follower.describeHistory()}`);
  }
});
