// Follows a Volt shape with the official @electric-sql/client and waits for its rows.

import { Shape, ShapeStream } from '@electric-sql/client';

import { describeRowDifference, indexRows } from './compare.js';

/**
 * Types that the default parser of @electric-sql/client 1.5.28 converts to JavaScript values
 * (its `defaultParser` in src/parser.ts, which the package does not export).
 */
const CLIENT_CONVERTED_TYPES = ['int2', 'int4', 'int8', 'float4', 'float8', 'bool', 'json', 'jsonb'];

/**
 * Client parser that keeps every value as the text Volt sent, so that rows compare exactly
 * with the oracle's text.
 *
 * NOTE: the client still splits array columns (those with `dims` in the schema) into
 * JavaScript arrays, whatever the parser, so text comparisons only work for tables
 * without array columns.
 */
export const TEXT_PARSER = Object.fromEntries(CLIENT_CONVERTED_TYPES.map((type) => [type, (text) => text]));

const DEFAULT_WAIT_TIMEOUT_MS = 30_000;
const RECENT_RESPONSES_MAX = 20;
const ERROR_RESPONSES_MAX = 20;
const ERROR_BODY_MAX_CHARS = 500;
const RECENT_MESSAGES_MAX = 30;
const MESSAGE_MAX_CHARS = 400;

// The client retries 5xx responses and network errors forever by default. These options make
// it give up after 10 retries (at most about 13 s of backoff unless the server sends a longer
// retry-after), so that a failing server ends a test with its error.
const BACKOFF_OPTIONS = { initialDelay: 100, maxDelay: 2_000, multiplier: 2, maxRetries: 10 };

/**
 * Starts following `table` on Volt at `baseUrl` with a ShapeStream and a Shape.
 *
 * `parser` is passed to the client (undefined keeps its default parser). `shapeParams`
 * (optional) contains more of the client's shape parameters, such as `where`, `params`,
 * `columns` and `replica`, and is merged into its `params` next to `table`. `streamOptions`
 * (optional) contains more ShapeStream options, such as `liveSse: true`. The returned
 * ShapeFollower records every HTTP response the client receives and the error that stopped
 * the stream, if any. Call `stop()` to abort the stream.
 */
export function followShape({ baseUrl, table, parser, shapeParams = {}, streamOptions = {} }) {
  return new ShapeFollower({ baseUrl, table, parser, shapeParams, streamOptions });
}

class ShapeFollower {
  /** The client's ShapeStream. */
  stream;
  /** The client's Shape, which contains the materialized rows. */
  shape;
  /** Error that stopped the stream, or null. */
  streamError = null;
  /**
   * Counts of successful responses: to live requests over server-sent events (`sse`), to
   * live long polls (`longPoll`), and with a gzip body (`gzip`).
   */
  responseKinds = { sse: 0, longPoll: 0, gzip: 0 };

  #table;
  #abortController = new AbortController();
  #responseCountsByStatus = new Map();
  #recentResponses = [];
  #errorResponses = [];
  #recentMessages = [];
  #responseListeners = new Set();
  #errorListeners = new Set();

  constructor({ baseUrl, table, parser, shapeParams, streamOptions }) {
    this.#table = table;
    this.stream = new ShapeStream({
      ...streamOptions,
      url: `${baseUrl}/v1/shape`,
      params: { ...shapeParams, table },
      parser,
      signal: this.#abortController.signal,
      fetchClient: (input, init) => this.#fetchAndRecord(input, init),
      backoffOptions: BACKOFF_OPTIONS,
      // Returning nothing stops the stream, so the error reaches the waiting test at once.
      onError: (error) => {
        this.streamError = error;
        for (const listener of this.#errorListeners) {
          listener(error);
        }
      },
    });
    this.shape = new Shape(this.stream);
    this.stream.subscribe((messages) => this.#recordMessages(messages));
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
    const url = new URL(input instanceof Request ? input.url : String(input));
    const record = {
      status: response.status,
      path: `${url.pathname}${url.search}`,
      live: url.searchParams.get('live') === 'true',
      sse: url.searchParams.get('live_sse') === 'true',
      contentType: response.headers.get('content-type'),
      contentEncoding: response.headers.get('content-encoding'),
      hasData: response.headers.get('electric-has-data'),
    };
    if (response.ok) {
      this.responseKinds.sse += record.sse ? 1 : 0;
      this.responseKinds.longPoll += record.live && !record.sse ? 1 : 0;
      this.responseKinds.gzip += record.contentEncoding === 'gzip' ? 1 : 0;
    }

    this.#responseCountsByStatus.set(response.status, this.responseCount(response.status) + 1);
    this.#recentResponses.push(record);
    if (this.#recentResponses.length > RECENT_RESPONSES_MAX) {
      this.#recentResponses.shift();
    }
    if (response.status >= 400 && this.#errorResponses.length < ERROR_RESPONSES_MAX) {
      record.body = (await response.clone().text()).slice(0, ERROR_BODY_MAX_CHARS);
      this.#errorResponses.push(record);
    }
    for (const listener of this.#responseListeners) {
      listener(record);
    }
    return response;
  }

  #recordMessages(messages) {
    for (const message of messages.slice(-RECENT_MESSAGES_MAX)) {
      const text = JSON.stringify(message, (key, value) => (typeof value === 'bigint' ? `${value}n` : value));
      this.#recentMessages.push(text.slice(0, MESSAGE_MAX_CHARS));
      if (this.#recentMessages.length > RECENT_MESSAGES_MAX) {
        this.#recentMessages.shift();
      }
    }
  }

  /** Summary of the responses and the last messages received, for failure messages. */
  describeHistory() {
    const counts = [...this.#responseCountsByStatus].map(([status, count]) => `${status}: ${count}`).join(', ');
    const lines = [`responses by status for table ${this.#table}: ${counts || 'none'}`];
    for (const record of this.#errorResponses) {
      lines.push(`  error response ${record.status} to GET ${record.path}: ${record.body}`);
    }
    lines.push('  most recent responses:');
    for (const record of this.#recentResponses) {
      lines.push(`    ${record.status} GET ${record.path} (electric-has-data: ${record.hasData}, content-type: ${record.contentType})`);
    }
    lines.push('  most recent messages, as parsed by the client:');
    for (const message of this.#recentMessages) {
      lines.push(`    ${message}`);
    }
    return lines.join('\n');
  }

  /**
   * Resolves when the Shape is up to date and `describeMismatch(rows)` returns null.
   *
   * The condition is checked at once and after each Shape notification. Rejects when the
   * stream stops with an error, or after `timeoutMs` with the last mismatch description and
   * the recorded responses.
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
        unsubscribe();
        this.#errorListeners.delete(onStreamError);
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
        if (!this.shape.isUpToDate) {
          lastMismatch = 'the client is not up to date';
          return;
        }
        const mismatch = describeMismatch(this.shape.currentRows);
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
      const onStreamError = (error) => {
        finish(new Error(`${label}: the client stopped with ${describeError(error)}\n${this.describeHistory()}`));
      };

      const unsubscribe = this.shape.subscribe(scheduleCheck);
      this.#errorListeners.add(onStreamError);
      const timer = setTimeout(() => {
        finish(new Error(
          `${label}: timed out after ${timeoutMs} ms\n${lastMismatch}\n${this.describeHistory()}`,
        ));
      }, timeoutMs);

      if (this.streamError !== null) {
        onStreamError(this.streamError);
      } else {
        scheduleCheck();
      }
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

  /**
   * Resolves with the first response received from now on for which `predicate(record)` is
   * true. A record has `status`, `path`, `live`, `sse` (the request had `live_sse=true`),
   * `contentType`, `contentEncoding` and `hasData` (the electric-has-data header).
   * Rejects after `timeoutMs` or when the stream stops with an error.
   */
  waitForResponse(predicate, { timeoutMs = DEFAULT_WAIT_TIMEOUT_MS, label }) {
    return new Promise((resolve, reject) => {
      const finish = (error, record) => {
        clearTimeout(timer);
        this.#responseListeners.delete(onResponse);
        this.#errorListeners.delete(onStreamError);
        if (error) {
          reject(error);
        } else {
          resolve(record);
        }
      };
      const onResponse = (record) => {
        if (predicate(record)) {
          finish(null, record);
        }
      };
      const onStreamError = (error) => {
        finish(new Error(`${label}: the client stopped with ${describeError(error)}\n${this.describeHistory()}`));
      };

      const timer = setTimeout(() => {
        finish(new Error(`${label}: timed out after ${timeoutMs} ms without such a response\n${this.describeHistory()}`));
      }, timeoutMs);
      this.#responseListeners.add(onResponse);
      this.#errorListeners.add(onStreamError);
      if (this.streamError !== null) {
        onStreamError(this.streamError);
      }
    });
  }
}

function describeError(error) {
  const status = error?.status === undefined ? '' : ` (HTTP ${error.status})`;
  return `${error?.name ?? 'error'}${status}: ${error?.message ?? String(error)}`;
}
