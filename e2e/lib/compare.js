// Row-set comparison between the client's rows and the oracle's, keyed by primary key.

const EXAMPLE_KEYS_MAX = 3;

/** Returns the map key of `row`: the JSON array of its primary-key values. */
export function rowKey(row, keyColumns) {
  return JSON.stringify(keyColumns.map((column) => row[column]));
}

/** Returns a readable form of a row key, such as `album_id=5`. */
function formatKey(key, keyColumns) {
  const values = JSON.parse(key);
  return keyColumns.map((column, index) => `${column}=${JSON.stringify(values[index])}`).join(', ');
}

/** Returns a Map from row key to row, and throws if two rows share a key. */
export function indexRows(rows, keyColumns, source) {
  const rowsByKey = new Map();
  for (const row of rows) {
    const key = rowKey(row, keyColumns);
    if (rowsByKey.has(key)) {
      throw new Error(`${source} has two rows with key ${formatKey(key, keyColumns)}`);
    }
    rowsByKey.set(key, row);
  }
  return rowsByKey;
}

/**
 * Compares the client's rows with the expected rows (a Map from `indexRows`) and returns
 * null when they are equal, or else a summary: both counts, the first missing and extra keys,
 * and the first row whose columns or values differ.
 *
 * Values must match exactly (===), so both sides must be PostgreSQL text or null.
 */
export function describeRowDifference(clientRows, expectedByKey, keyColumns) {
  let clientByKey;
  try {
    clientByKey = indexRows(clientRows, keyColumns, 'the client');
  } catch (error) {
    return error.message;
  }

  const missingKeys = [];
  let firstValueDifference = null;
  for (const [key, expectedRow] of expectedByKey) {
    const clientRow = clientByKey.get(key);
    if (clientRow === undefined) {
      missingKeys.push(key);
      continue;
    }
    if (firstValueDifference === null) {
      firstValueDifference = describeValueDifference(clientRow, expectedRow);
      if (firstValueDifference !== null) {
        firstValueDifference = `first differing row (${formatKey(key, keyColumns)}): ${firstValueDifference}`;
      }
    }
  }
  const extraKeys = [...clientByKey.keys()].filter((key) => !expectedByKey.has(key));

  if (missingKeys.length === 0 && extraKeys.length === 0 && firstValueDifference === null) {
    return null;
  }

  const lines = [`client has ${clientByKey.size} rows, SELECT has ${expectedByKey.size}`];
  if (missingKeys.length > 0) {
    lines.push(`rows missing on the client: ${missingKeys.length}, first: ${formatKeys(missingKeys, keyColumns)}`);
  }
  if (extraKeys.length > 0) {
    lines.push(`rows only on the client: ${extraKeys.length}, first: ${formatKeys(extraKeys, keyColumns)}`);
  }
  if (firstValueDifference !== null) {
    lines.push(firstValueDifference);
  }
  return lines.join('\n');
}

function formatKeys(keys, keyColumns) {
  return keys.slice(0, EXAMPLE_KEYS_MAX).map((key) => `(${formatKey(key, keyColumns)})`).join(' ');
}

/** Returns null when both rows have the same columns and values, or else the first difference. */
function describeValueDifference(clientRow, expectedRow) {
  const clientColumns = Object.keys(clientRow).sort();
  const expectedColumns = Object.keys(expectedRow).sort();
  if (JSON.stringify(clientColumns) !== JSON.stringify(expectedColumns)) {
    return `client columns [${clientColumns.join(', ')}], SELECT columns [${expectedColumns.join(', ')}]`;
  }
  for (const column of expectedColumns) {
    if (clientRow[column] !== expectedRow[column]) {
      return `column ${column}: client ${JSON.stringify(clientRow[column])}, SELECT ${JSON.stringify(expectedRow[column])}`;
    }
  }
  return null;
}
