// Syncs every table of the Pagila schema, filled with edge-case rows, through the client's
// default parser, and compares the parsed values with SELECT parsed by the same rules.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { loadPagilaSchema } from '../lib/pagila.js';
import { connectOracle, primaryKeyColumns, qualifiedName, quoteIdentifier } from '../lib/postgres.js';
import { followShape } from '../lib/shape.js';
import { startVolt } from '../lib/volt.js';

const SYNC_TIMEOUT_MS = 20_000;
const DIFFERENCES_SHOWN_MAX = 5;

// Rows that reach the edges of each column type, parents before children. Pagila has no json,
// jsonb or int8 column (its "bıgınt" domain is not used by any table).
// NOTE: film_embedding.embedding is NOT NULL, so its arrays have no NULL element, because
// client 1.5.28 applies a column's NOT NULL check to each array element (src/parser.ts).
const FILL_STATEMENTS = [
  `INSERT INTO country (country_id, country, last_update) VALUES
     (1, 'Åland "quoted" \\ back', '2024-03-31 01:30:00.123456+05:45'),
     (2, '', 'infinity'),
     (2147483647, E'line\\nbreak\\ttab', '-infinity')`,
  `INSERT INTO city (city_id, city, country_id, last_update) VALUES
     (1, 'Zürich', 1, '4713-01-01 00:00:00+00 BC'),
     (-2147483648, 'NULL', 2147483647, '294276-12-31 23:59:59.999999+00')`,
  `INSERT INTO address (address_id, address, address2, district, city_id, postal_code, phone, last_update) VALUES
     (1, '1 Main St', NULL, 'd', 1, NULL, '+1 555', '2000-02-29 12:00:00+00'),
     (2, 'x', '', '日本語 🙂', -2147483648, '00000', '', '1999-12-31 23:59:59.5-12')`,
  `INSERT INTO store (store_id, manager_staff_id, address_id, last_update) VALUES
     (1, 1, 1, '2022-01-01 00:00:00+00'),
     (2, 2147483647, 2, '2022-06-15 12:34:56.789+02')`,
  `INSERT INTO staff (staff_id, first_name, last_name, address_id, email, store_id, active, username, password, last_update, picture) VALUES
     (1, 'Mike', 'O''Hara', 1, NULL, 1, true, 'mike', NULL, '2022-01-01 00:00:00+00', '\\x00ff5c22275c'),
     (2, 'Jon', '"Quoted"', 2, 'jon@example.com', 2, false, 'jon', 'secret', '2022-01-02 00:00:00+00', '\\x'),
     (3, 'No', 'Picture', 2, '', 1, true, 'np', '', '2022-01-03 00:00:00+00', NULL)`,
  `INSERT INTO customer (customer_id, store_id, first_name, last_name, email, address_id, activebool, create_date, last_update, active, uuid) VALUES
     (1, 1, 'A', 'B', NULL, 1, true, '4713-01-01 BC', NULL, NULL, '00000000-0000-0000-0000-000000000000'),
     (2, 2, 'C', 'D', E'tab\\there', 2, false, '5874897-12-31', '2022-01-01 00:00:00+00', -2147483648, 'ffffffff-ffff-ffff-ffff-ffffffffffff'),
     (3, 1, 'E', 'F', 'e@f', 1, true, 'infinity', '-infinity', 2147483647, DEFAULT)`,
  `INSERT INTO language (language_id, name, last_update) VALUES
     (1, 'English', '2022-01-01 00:00:00+00'),
     (2, 'Ελληνικά', '2022-01-01 00:00:00+00')`,
  `INSERT INTO film (film_id, title, description, release_year, language_id, original_language_id, rental_duration,
                     rental_rate, length, replacement_cost, rating, last_update, special_features, fulltext) VALUES
     (1, 'Edge "Film"', 'It''s a fat cat', 1901, 1, NULL, -32768, 99.99, 5999, 999.99, 'NC-17',
      '2022-01-01 00:00:00+00', '{"with \\"quote\\"",NULL,"NULL","a,b","back\\\\slash","{braces}"," spaced ",""}', ''),
     (2, 'Plain', NULL, 2155, 2, 1, 32767, -99.99, -5999, -999.99, 'PG-13',
      '2022-01-01 00:00:00+00', '{{a,b},{c,NULL}}', ''),
     (3, 'Nulls', NULL, NULL, 1, NULL, 0, 0, NULL, 0, NULL,
      '2022-01-01 00:00:00+00', NULL, ''),
     (4, 'Empty array', 'G', 2000, 1, 2, 1, 0.01, 0, 0.01, 'G', '2022-01-01 00:00:00+00', '{}', ''),
     (5, 'Other ratings', 'PG and R', 2001, 1, NULL, 1, 4.99, 60, 19.99, 'PG', '2022-01-01 00:00:00+00', '{Trailers}', ''),
     (6, 'R rated', NULL, 2002, 1, NULL, 1, 4.99, 61, 19.99, 'R', '2022-01-01 00:00:00+00', '{Trailers,"Deleted Scenes"}', '')`,
  `INSERT INTO film_embedding (film_id, embedding, last_update) VALUES
     (1, '{1.5,-0,3.4028235e+38,1e-45,NaN,Infinity,-Infinity,0.1}', '2022-01-01 00:00:00+00'),
     (2, '{}', '2022-01-01 00:00:00+00')`,
  `INSERT INTO actor (actor_id, first_name, last_name, last_update) VALUES
     (1, 'Penélope', 'Guiness', '2022-01-01 00:00:00+00'),
     (2, '', 'x''y', '2022-01-01 00:00:00+00')`,
  `INSERT INTO category (category_id, name, last_update) VALUES
     (1, 'Action', '2022-01-01 00:00:00+00'),
     (2, '{not an array}', '2022-01-01 00:00:00+00')`,
  `INSERT INTO film_actor (actor_id, film_id, last_update) VALUES
     (1, 1, '2022-01-01 00:00:00+00'), (2, 1, '2022-01-01 00:00:00+00'), (1, 2, '2022-01-01 00:00:00+00')`,
  `INSERT INTO film_category (film_id, category_id, last_update) VALUES
     (1, 1, '2022-01-01 00:00:00+00'), (1, 2, '2022-01-01 00:00:00+00'), (3, 2, '2022-01-01 00:00:00+00')`,
  `INSERT INTO inventory (inventory_id, film_id, store_id, last_update) VALUES
     (1, 1, 1, '2022-01-01 00:00:00+00'), (2, 2, 2, '2022-01-01 00:00:00+00')`,
  `INSERT INTO rental (rental_id, rental_date, inventory_id, customer_id, return_date, staff_id, last_update, uuid) VALUES
     (1, '2022-01-01 00:00:00+00', 1, 1, NULL, 1, '2022-01-01 00:00:00+00', '01890a5d-ac96-774b-bcce-b302099a8057'),
     (2, '2022-05-24 22:53:30.000001+03', 2, 2, '2022-05-26 22:04:30-07', 2, '2022-01-01 00:00:00+00', DEFAULT)`,
  // The partition bounds run from 2022-01-01 to 2026-08-01, and payment_date picks the partition.
  `INSERT INTO payment (payment_id, customer_id, staff_id, rental_id, amount, payment_date, uuid) VALUES
     (1, 1, 1, 1, 999.99, '2022-01-01 00:00:00+00', '00000000-0000-0000-0000-000000000001'),
     (2, 2, 2, 2, -999.99, '2026-07-31 23:59:59.999999+00', DEFAULT),
     (3, 3, 1, 1, 0.00, '2024-02-29 12:00:00+05:30', DEFAULT)`,
];

let volt;
let oracle;

before(async () => {
  volt = await startVolt();
  await loadPagilaSchema(volt.databaseUrl);
  oracle = await connectOracle(volt.databaseUrl);
  for (const statement of FILL_STATEMENTS) {
    await oracle.query(statement);
  }
}, { timeout: 90_000 });

after(async () => {
  await oracle?.end();
  await volt?.stop();
}, { timeout: 60_000 });

/** Returns `text` parsed as client 1.5.28's default parser does for the PostgreSQL type `typeName`. */
function parseScalar(text, typeName) {
  switch (typeName) {
    case 'int2':
    case 'int4':
    case 'float4':
    case 'float8':
      return Number(text);
    case 'int8':
      return BigInt(text);
    case 'bool':
      return text === 't' || text === 'true';
    case 'json':
    case 'jsonb':
      return JSON.parse(text);
    default:
      return text;
  }
}

/**
 * Parses a PostgreSQL array literal such as `{a,"b \"c\"",NULL,{d}}` into nested JavaScript
 * arrays, with unquoted NULL as null and each other element passed to `parseElement`.
 * Written here from PostgreSQL's array output rules, independently of the client's parser.
 */
function parseArrayLiteral(text, parseElement) {
  let position = 0;
  if (text[position] === '[') {
    // Skip dimension decorations such as `[0:1]=`, which only non-default lower bounds have.
    position = text.indexOf('=') + 1;
  }

  function parseLevel() {
    assert.equal(text[position], '{', `array literal ${JSON.stringify(text)}: expected { at ${position}`);
    position += 1;
    const elements = [];
    if (text[position] === '}') {
      position += 1;
      return elements;
    }
    for (;;) {
      if (text[position] === '{') {
        elements.push(parseLevel());
      } else if (text[position] === '"') {
        position += 1;
        let element = '';
        while (text[position] !== '"') {
          if (text[position] === '\\') {
            position += 1;
          }
          element += text[position];
          position += 1;
        }
        position += 1;
        elements.push(parseElement(element));
      } else {
        let end = position;
        while (text[end] !== ',' && text[end] !== '}') {
          end += 1;
        }
        const element = text.slice(position, end);
        position = end;
        elements.push(element === 'NULL' ? null : parseElement(element));
      }
      if (text[position] === ',') {
        position += 1;
      } else {
        assert.equal(text[position], '}', `array literal ${JSON.stringify(text)}: expected , or } at ${position}`);
        position += 1;
        return elements;
      }
    }
  }

  return parseLevel();
}

/**
 * Returns the columns of `table` in order, each as { name, typeName, isArray, generated }.
 * `typeName` is the element type of an array column, and the pg_type name otherwise (a
 * domain keeps its own name).
 */
async function describeColumns(table) {
  const result = await oracle.query(
    `SELECT a.attname,
            CASE WHEN t.typcategory = 'A' THEN element_type.typname ELSE t.typname END AS type_name,
            t.typcategory = 'A' AS is_array,
            a.attgenerated <> '' AS generated
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_type element_type ON element_type.oid = t.typelem
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [qualifiedName(table)],
  );
  return result.rows.map((row) => ({
    name: row.attname,
    typeName: row.type_name,
    isArray: row.is_array === 't',
    generated: row.generated === 't',
  }));
}

/** Reads `columns` of every row of `table` as text and parses them like the client's default parser. */
async function selectParsedRows(table, columns, keyColumns) {
  const selectList = columns.map((column) => quoteIdentifier(column.name)).join(', ');
  const orderBy = keyColumns.map(quoteIdentifier).join(', ');
  const result = await oracle.query(`SELECT ${selectList} FROM ${qualifiedName(table)} ORDER BY ${orderBy}`);
  return result.rows.map((row) => {
    const parsed = {};
    for (const column of columns) {
      const text = row[column.name];
      if (text === null) {
        parsed[column.name] = null;
      } else if (column.isArray) {
        parsed[column.name] = parseArrayLiteral(text, (element) => parseScalar(element, column.typeName));
      } else {
        parsed[column.name] = parseScalar(text, column.typeName);
      }
    }
    return parsed;
  });
}

/** Returns `value` as JSON, with BigInt as `123n` and NaN, infinities and -0 spelled out. */
function formatValue(value) {
  return JSON.stringify(value, (key, item) => {
    if (typeof item === 'bigint') {
      return `${item}n`;
    }
    if (typeof item === 'number' && (!Number.isFinite(item) || Object.is(item, -0))) {
      return Object.is(item, -0) ? '-0' : String(item);
    }
    return item;
  });
}

function keyOf(row, keyColumns) {
  return keyColumns.map((column) => `${column}=${formatValue(row[column])}`).join(', ');
}

/**
 * Returns null when the client's parsed rows deep-equal the expected rows, or else a message
 * listing the row counts, missing and extra keys, and the first differing values.
 */
function describeParsedDifference(tableName, clientRows, expectedRows, keyColumns) {
  const clientByKey = new Map(clientRows.map((row) => [keyOf(row, keyColumns), row]));
  const expectedByKey = new Map(expectedRows.map((row) => [keyOf(row, keyColumns), row]));
  const differences = [];
  for (const [key, expectedRow] of expectedByKey) {
    const clientRow = clientByKey.get(key);
    if (clientRow === undefined) {
      differences.push(`table ${tableName}, key (${key}): row missing on the client`);
      continue;
    }
    const columnNames = new Set([...Object.keys(expectedRow), ...Object.keys(clientRow)]);
    for (const column of columnNames) {
      try {
        assert.deepStrictEqual(clientRow[column], expectedRow[column]);
      } catch {
        differences.push(
          `table ${tableName}, key (${key}), column ${column}: ` +
          `client ${formatValue(clientRow[column])}, SELECT parsed ${formatValue(expectedRow[column])}`,
        );
      }
    }
  }
  for (const key of clientByKey.keys()) {
    if (!expectedByKey.has(key)) {
      differences.push(`table ${tableName}, key (${key}): row only on the client`);
    }
  }
  if (differences.length === 0) {
    return null;
  }
  return [
    `client has ${clientRows.length} rows and SELECT has ${expectedRows.length}. First of ${differences.length} differences:`,
    ...differences.slice(0, DIFFERENCES_SHOWN_MAX),
  ].join('\n');
}

/**
 * Sends a first shape request for `tableName` without `columns` and returns its status and body.
 * Volt rejects tables with generated columns unless `columns` leaves them out.
 */
async function requestWholeShape(tableName) {
  const url = new URL('/v1/shape', volt.baseUrl);
  url.searchParams.set('table', tableName);
  url.searchParams.set('offset', '-1');
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

/** Starts following `table` with the default parser, leaving out generated columns. */
async function followParsed(table, columns) {
  const generatedColumns = columns.filter((column) => column.generated);
  const shapeParams = {};
  if (generatedColumns.length > 0) {
    const { status, body } = await requestWholeShape(table.name);
    assert.equal(status, 400, `shape of ${table.name} without columns, which has generated columns: ${body}`);
    for (const column of generatedColumns) {
      assert.ok(body.includes(column.name), `400 body for ${table.name} does not name ${column.name}: ${body}`);
    }
    shapeParams.columns = columns.filter((column) => !column.generated).map((column) => column.name);
  }
  return followShape({ baseUrl: volt.baseUrl, table: table.name, shapeParams });
}

test('pagila tables sync through default parser', { timeout: 120_000 }, async (t) => {
  const result = await oracle.query(
    `SELECT c.relname
       FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
      ORDER BY c.relname`,
  );
  const tableNames = result.rows.map((row) => row.relname);
  assert.ok(tableNames.includes('payment_p2026_07'), `the public schema lacks the payment partitions: ${tableNames}`);

  for (const name of tableNames) {
    await t.test(name, async (tableTest) => {
      const table = { schema: 'public', name };
      const keyColumns = await primaryKeyColumns(oracle, table);
      const columns = await describeColumns(table);
      const syncedColumns = columns.filter((column) => !column.generated);
      const expectedRows = await selectParsedRows(table, syncedColumns, keyColumns);

      const follower = await followParsed(table, columns);
      tableTest.after(() => follower.stop());
      await follower.waitUntil(
        (rows) => describeParsedDifference(name, rows, expectedRows, keyColumns),
        { timeoutMs: SYNC_TIMEOUT_MS, label: `initial sync of ${name}` },
      );
      assert.equal(follower.responseCount(409), 0, `must-refetch responses while syncing ${name}`);
    });
  }
});

test('film array update reaches parsed rows', { timeout: 60_000 }, async (t) => {
  const table = { schema: 'public', name: 'film' };
  const keyColumns = ['film_id'];
  const columns = await describeColumns(table);
  const syncedColumns = columns.filter((column) => !column.generated);

  const follower = await followParsed(table, columns);
  t.after(() => follower.stop());
  const initialRows = await selectParsedRows(table, syncedColumns, keyColumns);
  await follower.waitUntil(
    (rows) => describeParsedDifference('film', rows, initialRows, keyColumns),
    { timeoutMs: SYNC_TIMEOUT_MS, label: 'initial sync of film' },
  );

  // The update goes through logical replication, whose text Volt converts separately from
  // the snapshot's.
  await oracle.query(
    `UPDATE film
        SET special_features = $1, rating = 'R', rental_rate = -0.01, release_year = NULL,
            length = 1, original_language_id = 2
      WHERE film_id = 2`,
    ['{{"x \\"y\\"",NULL},{"",NULL}}'],
  );
  await oracle.query(`UPDATE film SET special_features = NULL, rating = 'G' WHERE film_id = 1`);
  const updatedRows = await selectParsedRows(table, syncedColumns, keyColumns);
  assert.deepStrictEqual(
    updatedRows.find((row) => row.film_id === 2).special_features,
    [['x "y"', null], ['', null]],
    'SELECT parsed the updated array differently from the literal that was written',
  );
  await follower.waitUntil(
    (rows) => describeParsedDifference('film', rows, updatedRows, keyColumns),
    { timeoutMs: SYNC_TIMEOUT_MS, label: 'live update of film rows 1 and 2' },
  );
});
