// Direct SQL access to Volt's PostgreSQL: the oracle that the client's rows are compared with.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { sharedDir } from './paths.js';
import { runProgramChecked } from './programs.js';

const PSQL_TIMEOUT_MS = 120_000;

/**
 * Connects to `databaseUrl` with every column value returned as PostgreSQL's text output
 * (the text psql prints) and NULL as null, so that values compare exactly with Volt's.
 */
export async function connectOracle(databaseUrl) {
  const client = new pg.Client({
    connectionString: databaseUrl,
    types: { getTypeParser: () => (text) => text },
  });
  await client.connect();
  return client;
}

/** Returns `name` as a double-quoted SQL identifier. */
export function quoteIdentifier(name) {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Returns the quoted `"schema"."name"` form of a table, which is also how Volt's `table` parameter accepts it. */
export function qualifiedName({ schema, name }) {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`;
}

/** Returns the primary-key column names of `table` ({ schema, name }) in key order. */
export async function primaryKeyColumns(client, table) {
  const result = await client.query(
    `SELECT a.attname
       FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = $1::regclass AND i.indisprimary
      ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [qualifiedName(table)],
  );
  const columns = result.rows.map((row) => row.attname);
  if (columns.length === 0) {
    throw new Error(`table ${qualifiedName(table)} has no primary key, but the row comparison keys rows by it`);
  }
  return columns;
}

/** Returns every row of `table` as text, ordered by `keyColumns`. */
export async function selectAll(client, table, keyColumns) {
  const orderBy = keyColumns.map(quoteIdentifier).join(', ');
  const result = await client.query(`SELECT * FROM ${qualifiedName(table)} ORDER BY ${orderBy}`);
  return result.rows;
}

/**
 * Returns the rows of `table` that a filtered shape should contain, as text, ordered by
 * `keyColumns`: `SELECT <columns> FROM table WHERE <where>`, with `params` bound to `$1`,
 * `$2`, … as a shape binds them. `columns` undefined selects every column, and `where`
 * undefined selects every row.
 */
export async function selectShapeRows(client, table, keyColumns, { columns, where, params = [] } = {}) {
  const selectList = columns === undefined ? '*' : columns.map(quoteIdentifier).join(', ');
  const whereClause = where === undefined ? '' : ` WHERE ${where}`;
  const orderBy = keyColumns.map(quoteIdentifier).join(', ');
  const result = await client.query(
    `SELECT ${selectList} FROM ${qualifiedName(table)}${whereClause} ORDER BY ${orderBy}`,
    params,
  );
  return result.rows;
}

/**
 * Loads the Chinook sample database into the database of `databaseUrl` with psql.
 *
 * The script drops and creates a database named chinook and connects to it with `\c`.
 * Those statements are removed so that the tables land in the database that Volt serves.
 * Each of them is a single line ending in a semicolon, and the script's comments mention
 * "Drop database" too, hence the semicolon in the pattern.
 */
export async function loadChinook(databaseUrl) {
  const scriptPath = path.join(sharedDir, 'datasets', 'chinook', 'chinook.sql');
  const script = fs.readFileSync(scriptPath, 'utf8');
  const databaseStatement = /^\s*(DROP|CREATE)\s+DATABASE\b.*;\s*$/i;
  const connectCommand = /^\s*\\c(onnect)?\b/;
  const lines = script.split('\n');
  const keptLines = lines.filter((line) => !databaseStatement.test(line) && !connectCommand.test(line));
  if (lines.length - keptLines.length !== 3) {
    throw new Error(
      `expected ${scriptPath} to contain DROP DATABASE, CREATE DATABASE and \\c once each, ` +
      `but ${lines.length - keptLines.length} lines matched`,
    );
  }

  const scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'volt-e2e-sql-'));
  try {
    const editedPath = path.join(scratchDir, 'chinook.sql');
    fs.writeFileSync(editedPath, keptLines.join('\n'));
    await runProgramChecked(
      'psql',
      ['-v', 'ON_ERROR_STOP=1', '-q', '-d', databaseUrl, '-f', editedPath],
      { timeoutMs: PSQL_TIMEOUT_MS },
    );
  } finally {
    fs.rmSync(scratchDir, { recursive: true, force: true });
  }
}
