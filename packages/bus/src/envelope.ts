import { randomUUID } from 'node:crypto';
import { currentContext } from '@agora/observability';
import { BusError, BusErrorCodes } from './errors.js';

/**
 * The envelope every message travels in (DESIGN.md, Contracts). `id` is the dedup key of
 * consumers; `key` orders messages (same key, same partition); `traceparent` continues the
 * trace of the request that caused the message.
 */
export interface Envelope<T = unknown> {
  readonly id: string;
  readonly type: string;
  readonly version: number;
  /** The service that published it. */
  readonly source: string;
  /** ISO 8601, when it was published. */
  readonly time: string;
  readonly key?: string;
  readonly traceparent?: string;
  readonly data: T;
}

/**
 * @example
 * const env = newEnvelope({ type: 'social.post.created', version: 1, source: 'social', key: '42', data: { postId: '7' } });
 */
export function newEnvelope<T>(fields: { type: string; version: number; source: string; key?: string; data: T; id?: string; time?: Date }): Envelope<T> {
  const ctx = currentContext();
  return {
    id: fields.id ?? randomUUID(),
    type: fields.type,
    version: fields.version,
    source: fields.source,
    time: (fields.time ?? new Date()).toISOString(),
    ...(fields.key === undefined ? {} : { key: fields.key }),
    ...(ctx === undefined ? {} : { traceparent: `00-${ctx.traceId}-${ctx.spanId}-01` }),
    data: fields.data,
  };
}

export const encodeEnvelope = (envelope: Envelope): string => JSON.stringify(envelope);

/**
 * Parses a message body back into an envelope, checking the envelope's own fields (the
 * data is checked against its declared schema by the bus).
 * @throws BusError `invalid_message` naming what is wrong
 */
export function decodeEnvelope(body: string): Envelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new BusError(BusErrorCodes.INVALID_MESSAGE, 'the message body is not JSON');
  }
  // JSON that is not an object (`null`, `42`, `"x"`, an array) cannot be an envelope; checked
  // first, as reading fields of `null` or `'data' in 42` would throw a TypeError instead.
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BusError(BusErrorCodes.INVALID_MESSAGE, 'the message body is not a JSON object', { fields: ['shape'] });
  }
  const e = parsed as Partial<Record<keyof Envelope, unknown>>;
  const problems = [
    typeof e.id === 'string' && e.id !== '' ? undefined : 'id',
    typeof e.type === 'string' && e.type !== '' ? undefined : 'type',
    Number.isInteger(e.version) ? undefined : 'version',
    typeof e.source === 'string' ? undefined : 'source',
    typeof e.time === 'string' ? undefined : 'time',
    e.key === undefined || typeof e.key === 'string' ? undefined : 'key',
    'data' in parsed ? undefined : 'data',
  ].filter((p) => p !== undefined);
  if (problems.length > 0) {
    throw new BusError(BusErrorCodes.INVALID_MESSAGE, `the envelope lacks or has a wrong ${problems.join(', ')}`, { fields: problems });
  }
  return parsed as Envelope;
}
