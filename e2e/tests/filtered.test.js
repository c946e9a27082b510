// Follows shapes with `where`, `params`, `columns` and `replica: 'full'` with the official
// client 1.5.28 while node-postgres changes the table, and compares each client's rows with
// `SELECT <columns> FROM table WHERE <clause>`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connectOracle, quoteIdentifier, selectShapeRows } from '../lib/postgres.js';
import { followShape, TEXT_PARSER } from '../lib/shape.js';
import { startVolt } from '../lib/volt.js';

// A short long-poll timeout makes the clients go through many idle live requests as well.
const LONG_POLL_TIMEOUT_MS = 1_000;
const SYNC_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 120_000;

const KEY_COLUMNS = ['id'];
const ALL_COLUMNS = ['id', 'project_id', 'owner', 'status', 'priority', 'title', 'note'];

/**
 * Shape definitions that each test follows on its own table. `where`, `params`, `columns`
 * and `replica` are passed to the client as they are, and the oracle runs the same clause
 * with the same parameter values.
 */
const SHAPES = [
  { name: 'where project 7 not done', where: `project_id = 7 AND status <> 'done'` },
  { name: 'where with params', where: 'owner = $1 AND priority >= $2', params: ['alice', '3'] },
  { name: 'column subset', columns: ['id', 'status', 'title'] },
  {
    name: 'column subset filtered on an unselected column',
    columns: ['id', 'project_id', 'status'],
    where: 'priority > 2',
  },
  { name: 'replica full with where', replica: 'full', where: `status IN ('open', 'review')` },
  {
    name: 'replica full with columns and where',
    replica: 'full',
    columns: ['id', 'owner', 'priority'],
    where: `project_id BETWEEN 7 AND 8 OR owner LIKE 'c%'`,
  },
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

/** Creates the table `name` with the columns of ALL_COLUMNS and inserts `rows` (arrays in that order). */
async function createTasksTable(name, rows) {
  await oracle.query(`CREATE TABLE ${quoteIdentifier(name)} (
    id int PRIMARY KEY,
    project_id int NOT NULL,
    owner text,
    status text NOT NULL,
    priority int,
    title text,
    note text)`);
  for (const row of rows) {
    await oracle.query(`INSERT INTO ${quoteIdentifier(name)} VALUES ($1, $2, $3, $4, $5, $6, $7)`, row);
  }
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

/** Returns the client's shape parameters for `shape` (one of SHAPES), without `table`. */
function clientShapeParams(shape) {
  const shapeParams = {};
  for (const name of ['where', 'params', 'columns', 'replica']) {
    if (shape[name] !== undefined) {
      shapeParams[name] = shape[name];
    }
  }
  return shapeParams;
}

/**
 * Starts a follower for each of `shapes` on `tableName`. Each entry returned has the shape,
 * its follower and `changes`, every change message the client has received so far.
 */
function followShapes(t, tableName, shapes) {
  const entries = shapes.map((shape) => {
    const follower = followShape({
      baseUrl: volt.baseUrl,
      table: tableName,
      parser: TEXT_PARSER,
      shapeParams: clientShapeParams(shape),
    });
    const changes = [];
    follower.stream.subscribe((messages) => {
      for (const message of messages) {
        if (message.headers?.operation !== undefined) {
          changes.push(message);
        }
      }
    });
    return { shape, follower, changes };
  });
  t.after(() => {
    for (const { follower } of entries) {
      follower.stop();
    }
  });
  return entries;
}

/** Returns the rows of `tableName` that `shape` should contain, as text. */
function selectExpectedRows(tableName, shape) {
  return selectShapeRows(oracle, { schema: 'public', name: tableName }, KEY_COLUMNS, shape);
}

/** Waits until every follower's rows equal the SELECT of its shape, read now. */
async function expectEveryShapeMatchesSelect(tableName, entries, label) {
  // One connection runs one query at a time, so the SELECTs run before the waits start.
  const expectedRowsPerEntry = [];
  for (const { shape } of entries) {
    expectedRowsPerEntry.push(await selectExpectedRows(tableName, shape));
  }
  await Promise.all(entries.map(({ shape, follower }, index) => follower.waitUntilRowsEqual(
    expectedRowsPerEntry[index],
    KEY_COLUMNS,
    { timeoutMs: SYNC_TIMEOUT_MS, label: `${label}, shape "${shape.name}"` },
  )));
}

function assertNoRefetch(entries) {
  for (const { shape, follower } of entries) {
    assert.equal(
      follower.responseCount(409),
      0,
      `shape "${shape.name}": the client had to refetch the shape\n${follower.describeHistory()}`,
    );
  }
}

/**
 * Checks the change messages of the replica=full shapes: every update carries each selected
 * column, and its `old_value` (when present) contains only selected columns. With
 * `requireUpdates`, each of these shapes must also have received at least one update.
 */
function assertFullReplicaUpdates(entries, { requireUpdates }) {
  for (const { shape, follower, changes } of entries) {
    if (shape.replica !== 'full') {
      continue;
    }
    const selectedColumns = [...(shape.columns ?? ALL_COLUMNS)].sort();
    const updates = changes.filter((message) => message.headers.operation === 'update');
    if (requireUpdates) {
      assert.ok(updates.length > 0, `shape "${shape.name}" received no update to check\n${follower.describeHistory()}`);
    }
    for (const message of updates) {
      assert.deepEqual(
        Object.keys(message.value).sort(),
        selectedColumns,
        `shape "${shape.name}": columns of the update ${JSON.stringify(message)}`,
      );
      if (message.old_value !== undefined) {
        const unselected = Object.keys(message.old_value).filter((column) => !selectedColumns.includes(column));
        assert.deepEqual(unselected, [], `shape "${shape.name}": old_value of the update ${JSON.stringify(message)}`);
      }
    }
  }
}

test('filtered shapes follow each kind of change', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const tableName = 'tasks';
  await createTasksTable(tableName, [
    [1, 7, 'alice', 'open', 5, 'write the spec', 'first'],
    [2, 7, 'bob', 'done', 1, 'ship it', null],
    [3, 8, 'alice', 'review', 3, 'review the change', 'quote " slash / accent é'],
    [4, 7, null, 'open', null, null, null],
    [5, 9, 'carol', 'open', 4, 'plan', 'x'],
    [6, 7, 'alice', 'blocked', 2, 'wait', null],
    [7, 9, 'dave', 'done', 0, 'outside every where clause', null],
  ]);
  const entries = followShapes(t, tableName, SHAPES);
  await expectEveryShapeMatchesSelect(tableName, entries, 'initial sync');

  const steps = [
    ['insert inside the filters', [
      `INSERT INTO tasks VALUES (10, 7, 'alice', 'open', 4, 'new inside', 'n')`,
    ]],
    ['insert outside the filters', [
      `INSERT INTO tasks VALUES (11, 9, 'dave', 'done', 1, 'new outside', NULL)`,
    ]],
    ['update moving a row in', [`UPDATE tasks SET status = 'open' WHERE id = 2`]],
    ['update moving a row out', [`UPDATE tasks SET status = 'done' WHERE id = 1`]],
    ['update of unselected columns', [`UPDATE tasks SET note = 'changed note' WHERE id = 4`]],
    ['update of an unselected where column', [`UPDATE tasks SET priority = 9 WHERE id = 4`]],
    ['update keeping a row inside', [`UPDATE tasks SET priority = 8, title = 'still inside' WHERE id = 3`]],
    ['update of a where column to NULL', ['UPDATE tasks SET owner = NULL WHERE id = 3']],
    ['delete inside the filters', ['DELETE FROM tasks WHERE id = 10']],
    ['delete outside the filters', ['DELETE FROM tasks WHERE id = 11']],
    ['primary key change inside', ['UPDATE tasks SET id = 106 WHERE id = 6']],
    ['primary key change moving a row out', [`UPDATE tasks SET id = 102, status = 'done' WHERE id = 2`]],
    ['primary key change moving a row in', [`UPDATE tasks SET id = 107, project_id = 7, status = 'open' WHERE id = 7`]],
    ['multi-row transaction', [
      `INSERT INTO tasks VALUES (20, 7, 'alice', 'open', 6, 'in, out and in again', NULL)`,
      `UPDATE tasks SET status = 'done' WHERE id = 20`,
      `UPDATE tasks SET status = 'review', owner = 'carol' WHERE id = 20`,
      `INSERT INTO tasks VALUES (21, 7, 'alice', 'open', 6, 'inserted and deleted', NULL)`,
      'DELETE FROM tasks WHERE id = 21',
      'UPDATE tasks SET priority = coalesce(priority, 0) + 1 WHERE project_id = 7',
      'UPDATE tasks SET id = 130 WHERE id = 3',
      `UPDATE tasks SET status = 'open' WHERE id = 102`,
    ]],
    ['bulk insert and bulk update', [
      `INSERT INTO tasks
         SELECT g, 6 + g % 4, (ARRAY['alice', 'bob', 'carol', NULL])[1 + g % 4],
                (ARRAY['open', 'review', 'blocked', 'done'])[1 + (g / 4) % 4], g % 10, 'bulk ' || g, NULL
           FROM generate_series(200, 263) g`,
      `UPDATE tasks SET status = 'done' WHERE id BETWEEN 200 AND 263 AND priority < 5`,
    ]],
    ['bulk delete', ['DELETE FROM tasks WHERE id BETWEEN 230 AND 263']],
  ];
  for (const [name, statements] of steps) {
    await t.test(name, async () => {
      await runTransaction(statements);
      await expectEveryShapeMatchesSelect(tableName, entries, `after ${name}`);
    });
  }

  assertFullReplicaUpdates(entries, { requireUpdates: true });
  assertNoRefetch(entries);
});

test('moved-in row arrives with every selected column', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const tableName = 'tasks_moving_in';
  await createTasksTable(tableName, [
    [1, 7, 'alice', 'open', 5, 'stays inside', 'a'],
    [2, 7, 'bob', 'done', 1, 'moves in by status', 'b'],
    [3, 8, 'carol', 'review', 1, 'moves in by priority', 'c'],
    [4, 9, 'dave', 'done', 0, 'moves in by project', 'd'],
  ]);
  const entries = followShapes(t, tableName, SHAPES);
  await expectEveryShapeMatchesSelect(tableName, entries, 'initial sync');

  const moves = [
    // Into "where project 7 not done" and "replica full with where".
    { name: 'move in by a selected column', id: '2', statement: `UPDATE tasks_moving_in SET status = 'open' WHERE id = 2` },
    // Into "column subset filtered on an unselected column".
    { name: 'move in by an unselected column', id: '3', statement: 'UPDATE tasks_moving_in SET priority = 7 WHERE id = 3' },
    // Into "replica full with columns and where", which does not select project_id.
    { name: 'move in with replica full', id: '4', statement: 'UPDATE tasks_moving_in SET project_id = 8 WHERE id = 4' },
  ];
  for (const { name, id, statement } of moves) {
    await t.test(name, async () => {
      const wasInside = new Map();
      for (const { shape } of entries) {
        const rows = await selectExpectedRows(tableName, shape);
        wasInside.set(shape.name, rows.some((row) => row.id === id));
      }
      const changeCountsBefore = entries.map(({ changes }) => changes.length);

      await oracle.query(statement);
      await expectEveryShapeMatchesSelect(tableName, entries, `after ${statement}`);

      let movedInCount = 0;
      for (const [index, { shape, follower, changes }] of entries.entries()) {
        const expectedRow = (await selectExpectedRows(tableName, shape)).find((row) => row.id === id);
        if (wasInside.get(shape.name) || expectedRow === undefined) {
          continue;
        }
        movedInCount += 1;
        const messages = changes.slice(changeCountsBefore[index]).filter((message) => message.value?.id === id);
        const context = `shape "${shape.name}", row id ${id}, messages since the update: ${JSON.stringify(messages)}\n${follower.describeHistory()}`;
        assert.ok(messages.length > 0, `no message for the moved-in row: ${context}`);
        assert.equal(messages[0].headers.operation, 'insert', `the first message for the moved-in row is not an insert: ${context}`);
        assert.deepEqual(messages[0].value, expectedRow, `the moved-in row does not carry every selected column: ${context}`);
      }
      assert.ok(movedInCount > 0, `${statement} moved the row into no shape, so nothing was checked`);
    });
  }
  assertNoRefetch(entries);
});

/** Returns a function that yields pseudo-random numbers in [0, 1) from `seed` (mulberry32). */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

const WORKLOAD_SEED = 20240607;
const WORKLOAD_STATEMENTS = 300;
const TRANSACTION_STATEMENTS_MAX = 4;
const INITIAL_ROW_COUNT = 60;

const OWNERS = ['alice', 'bob', 'carol', null];
const STATUSES = ['open', 'review', 'blocked', 'done'];
const PROJECTS = [6, 7, 8, 9];

/**
 * Generates transactions of single-row and multi-row statements on `tableName`, each a list
 * of [text, values]. It keeps `existingIds` up to date, so that most updates and deletes hit a row.
 */
function* generateWorkload(tableName, random, existingIds, firstNewId) {
  const table = quoteIdentifier(tableName);
  const pick = (values) => values[Math.floor(random() * values.length)];
  const pickPriority = () => (random() < 0.1 ? null : Math.floor(random() * 10));
  const pickId = () => pick([...existingIds]);
  let nextId = firstNewId;
  let statementCount = 0;

  while (statementCount < WORKLOAD_STATEMENTS) {
    const transaction = [];
    const size = 1 + Math.floor(random() * TRANSACTION_STATEMENTS_MAX);
    for (let i = 0; i < size && statementCount < WORKLOAD_STATEMENTS; i += 1, statementCount += 1) {
      const kind = random();
      if (kind < 0.18 || existingIds.size === 0) {
        const id = nextId++;
        existingIds.add(id);
        transaction.push([
          `INSERT INTO ${table} VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [id, pick(PROJECTS), pick(OWNERS), pick(STATUSES), pickPriority(), `task ${id}`, random() < 0.5 ? null : `note ${id}`],
        ]);
      } else if (kind < 0.32) {
        transaction.push([`UPDATE ${table} SET status = $1 WHERE id = $2`, [pick(STATUSES), pickId()]]);
      } else if (kind < 0.42) {
        transaction.push([`UPDATE ${table} SET project_id = $1 WHERE id = $2`, [pick(PROJECTS), pickId()]]);
      } else if (kind < 0.50) {
        transaction.push([`UPDATE ${table} SET owner = $1 WHERE id = $2`, [pick(OWNERS), pickId()]]);
      } else if (kind < 0.60) {
        transaction.push([`UPDATE ${table} SET priority = $1 WHERE id = $2`, [pickPriority(), pickId()]]);
      } else if (kind < 0.68) {
        transaction.push([
          `UPDATE ${table} SET note = $1, title = $2 WHERE id = $3`,
          [`edited ${statementCount}`, `title ${statementCount}`, pickId()],
        ]);
      } else if (kind < 0.76) {
        transaction.push([
          `UPDATE ${table} SET status = $1, owner = $2, priority = $3 WHERE id = $4`,
          [pick(STATUSES), pick(OWNERS), pickPriority(), pickId()],
        ]);
      } else if (kind < 0.84) {
        const id = pickId();
        existingIds.delete(id);
        transaction.push([`DELETE FROM ${table} WHERE id = $1`, [id]]);
      } else if (kind < 0.92) {
        const id = pickId();
        const newId = nextId++;
        existingIds.delete(id);
        existingIds.add(newId);
        transaction.push([`UPDATE ${table} SET id = $1 WHERE id = $2`, [newId, id]]);
      } else if (kind < 0.96) {
        transaction.push([
          `UPDATE ${table} SET priority = (coalesce(priority, 0) + 3) % 10 WHERE project_id = $1 AND id % 3 = $2`,
          [pick(PROJECTS), Math.floor(random() * 3)],
        ]);
      } else {
        transaction.push([
          `UPDATE ${table} SET status = $1 WHERE owner IS NOT DISTINCT FROM $2 AND id % 4 = $3`,
          [pick(STATUSES), pick(OWNERS), Math.floor(random() * 4)],
        ]);
      }
    }
    yield transaction;
  }
}

test('filtered shapes follow a random workload', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const tableName = 'tasks_workload';
  const random = seededRandom(WORKLOAD_SEED);
  const initialRows = [];
  for (let id = 1; id <= INITIAL_ROW_COUNT; id += 1) {
    initialRows.push([
      id,
      PROJECTS[id % PROJECTS.length],
      OWNERS[Math.floor(id / 2) % OWNERS.length],
      STATUSES[Math.floor(id / 3) % STATUSES.length],
      id % 10,
      `initial ${id}`,
      id % 2 === 0 ? null : `note ${id}`,
    ]);
  }
  await createTasksTable(tableName, initialRows);
  const entries = followShapes(t, tableName, SHAPES);
  await expectEveryShapeMatchesSelect(tableName, entries, 'initial sync');

  // Shapes requested at a quarter, half and three quarters of the workload take their
  // snapshot while it keeps committing.
  const lateShapeSets = [
    [
      { name: 'late where with params, bob', where: 'owner = $1 AND priority >= $2', params: ['bob', '1'] },
      { name: 'late where project 8 not done', where: `project_id = 8 AND status <> 'done'`, replica: 'full' },
    ],
    [
      { name: 'late where with params, carol', where: 'owner = $1 AND priority >= $2', params: ['carol', '4'] },
      { name: 'late column subset where project 6', columns: ['id', 'status'], where: 'project_id = 6' },
    ],
    [
      { name: 'late where with params, alice', where: 'owner = $1 AND priority >= $2', params: ['alice', '2'] },
      { name: 'late where status open', where: `status = 'open'`, replica: 'full' },
    ],
  ];
  const existingIds = new Set(initialRows.map(([id]) => id));
  const transactions = [...generateWorkload(tableName, random, existingIds, INITIAL_ROW_COUNT + 1)];
  const lateShapeSetsByIndex = new Map(lateShapeSets.map((shapes, index) => [
    Math.floor((transactions.length * (index + 1)) / (lateShapeSets.length + 1)),
    shapes,
  ]));
  const lateEntries = [];
  for (const [index, transaction] of transactions.entries()) {
    if (lateShapeSetsByIndex.has(index)) {
      lateEntries.push(...followShapes(t, tableName, lateShapeSetsByIndex.get(index)));
    }
    await runTransaction(transaction);
  }

  const allEntries = [...entries, ...lateEntries];
  await expectEveryShapeMatchesSelect(
    tableName,
    allEntries,
    `after ${WORKLOAD_STATEMENTS} statements in ${transactions.length} transactions (random seed ${WORKLOAD_SEED})`,
  );
  for (const { shape, follower } of allEntries) {
    const expectedRows = await selectExpectedRows(tableName, shape);
    assert.ok(expectedRows.length > 0, `shape "${shape.name}" ends empty, so the comparison checks little`);
    assert.equal(follower.shape.currentRows.length, expectedRows.length, `row count of shape "${shape.name}"`);
  }
  // A late shape whose snapshot is taken after the last commit receives no update at all.
  assertFullReplicaUpdates(entries, { requireUpdates: true });
  assertFullReplicaUpdates(lateEntries, { requireUpdates: false });
  assertNoRefetch(allEntries);
});
