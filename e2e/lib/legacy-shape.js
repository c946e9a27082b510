// Follows a Volt shape through the 2024 dialect (/v1/shape/{table}) with the official
// @electric-sql/client 0.3.1, installed under the alias electric-client-legacy.

import { Shape, ShapeStream } from 'electric-client-legacy';

import { describeRowDifference, indexRows } from './compare.js';

const DEFAULT_WAIT_TIMEOUT_MS = 30_000;
const RECENT_RESPONSES_MAX = 20;
const ERROR_BODY_MAX_CHARS = 500;

// Client 0.3.1 retries 5xx responses and network errors forever and has no retry limit, so a
// failing server shows up as a timeout whose history lists the 5xx responses.
const BACKOFF_OPTIONS = { initialDelay: 100, maxDelay: 2_000, multiplier: 2 };

/**
 * Starts following `table` (written as the 2024 path segment: `name` or `schema.name`, exact
 * case) with a 0.3.1 ShapeStream and Shape. `parser` and `where` (optional, an SQL boolean
 * clause) are passed to the client. Call `stop()` to abort the stream.
 */
export function followLegacyShape({ baseUrl, table, parser, where }) {
  return new LegacyShapeFollower({ baseUrl, table, parser, where });
}

class LegacyShapeFollower {
  /** The client's ShapeStream. */
  stream;
  /** The client's Shape, whose `valueSync` map contains the materialized rows by key. */
  shape;
  /** Error the client reported, or null. Client 0.3.1 stops on any 4xx other than 409. */
  streamError = null;

  #table;
  #abortController = new AbortController();
  #responseCountsByStatus = new Map();
  #recentResponses = [];
  #changeListeners = new Set();

  constructor({ baseUrl, table, parser, where }) {
    this.#table = table;
    this.stream = new ShapeStream({
      url: `${baseUrl}/v1/shape/${encodeURIComponent(table)}`,
      where,
      parser,
      signal: this.#abortController.signal,
      fetchClient: (input, init) => this.#fetchAndRecord(input, init),
      backoffOptions: BACKOFF_OPTIONS,
    });
    this.shape = new Shape(this.stream);
    // The Shape subscribed first, so it has applied each batch when this callback runs. The
    // Shape itself does not notify after a resync that brings no rows.
    this.stream.subscribe(
      () => this.#notifyChange(),
      (error) => {
        this.streamError = error;
        this.#notifyChange();
      },
    );
  }

  /** Current rows of the Shape, as an array. */
  get rows() {
    return [...this.shape.valueSync.values()];
  }

  /** Shape id the client follows. */
  get shapeId() {
    return this.stream.shapeId;
  }

  /** Aborts the stream's requests and ends live polling. */
  stop() {
    this.shape.unsubscribeAll();
    this.#abortController.abort();
  }

  /** Number of responses received with HTTP `status`. */
  responseCount(status) {
    return this.#responseCountsByStatus.get(status) ?? 0;
  }

  async #fetchAndRecord(input, init) {
    const response = await fetch(input, init);
    const url = new URL(String(input));
    const record = { status: response.status, path: `${url.pathname}${url.search}` };
    if (response.status >= 400) {
      record.body = (await response.clone().text()).slice(0, ERROR_BODY_MAX_CHARS);
    }
    this.#responseCountsByStatus.set(response.status, this.responseCount(response.status) + 1);
    this.#recentResponses.push(record);
    if (this.#recentResponses.length > RECENT_RESPONSES_MAX) {
      this.#recentResponses.shift();
    }
    this.#notifyChange();
    return response;
  }

  #notifyChange() {
    for (const listener of this.#changeListeners) {
      listener();
    }
  }

  /** Summary of the responses received, for failure messages. */
  describeHistory() {
    const counts = [...this.#responseCountsByStatus].map(([status, count]) => `${status}: ${count}`).join(', ');
    const lines = [`responses by status for table ${this.#table} (client 0.3.1): ${counts || 'none'}`];
    for (const record of this.#recentResponses) {
      lines.push(`  ${record.status} GET ${record.path}${record.body === undefined ? '' : ` ${record.body}`}`);
    }
    return lines.join('\n');
  }

  /**
   * Resolves when the client is up to date and `describeMismatch(rows)` returns null. The
   * condition is checked at once, after each batch and after each response. Rejects when the
   * client reports an error, or after `timeoutMs` with the last mismatch and the history.
   */
  waitUntil(describeMismatch, { timeoutMs = DEFAULT_WAIT_TIMEOUT_MS, label }) {
    return new Promise((resolve, reject) => {
      let settled = false;
      let checkScheduled = false;
      let lastMismatch = 'the client never reported an up-to-date state';

      const finish = (error) => {
        if (settled) {
          return;
        }
        settled = true;
        clearTimeout(timer);
        this.#changeListeners.delete(scheduleCheck);
        if (error) {
          reject(error);
        } else {
          resolve();
        }
      };
      const check = () => {
        checkScheduled = false;
        if (settled) {
          return;
        }
        if (this.streamError !== null) {
          finish(new Error(`${label}: the client stopped with ${this.streamError.message}\n${this.describeHistory()}`));
          return;
        }
        if (!this.stream.isUpToDate) {
          lastMismatch = 'the client is not up to date';
          return;
        }
        const mismatch = describeMismatch(this.rows);
        if (mismatch === null) {
          finish();
        } else {
          lastMismatch = mismatch;
        }
      };
      // Coalesce notifications, because comparing a large table on every batch is slow.
      const scheduleCheck = () => {
        if (!checkScheduled) {
          checkScheduled = true;
          setImmediate(check);
        }
      };

      this.#changeListeners.add(scheduleCheck);
      const timer = setTimeout(() => {
        finish(new Error(`${label}: timed out after ${timeoutMs} ms\n${lastMismatch}\n${this.describeHistory()}`));
      }, timeoutMs);
      scheduleCheck();
    });
  }

  /**
   * Resolves when the client's rows equal `expectedRows` (the oracle's text rows), compared
   * by the values of `keyColumns`. Deadline and errors are as for `waitUntil`.
   */
  waitUntilRowsEqual(expectedRows, keyColumns, { timeoutMs, label }) {
    const expectedByKey = indexRows(expectedRows, keyColumns, 'SELECT');
    return this.waitUntil(
      (rows) => describeRowDifference(rows, expectedByKey, keyColumns),
      { timeoutMs, label: `${label}: client rows equal SELECT` },
    );
  }
}
