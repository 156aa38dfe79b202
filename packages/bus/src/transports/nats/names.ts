import { BusError } from '../../errors.js';
import type { TransportMessage } from '../../transport.js';

/** Message header carrying the transport message's id, key and headers as JSON (values stay free of CR/LF). */
export const MESSAGE_HEADER = 'Agora-Message';
/** On a replayed dead letter: the only group that handles it; the others acknowledge it unseen. */
export const ONLY_GROUP_HEADER = 'Agora-Only-Group';
/** On a dead letter entry: topic, group, partition, attempts, errors and deadAt as JSON. */
export const DEAD_HEADER = 'Agora-Dead-Letter';

export const DEFAULT_PREFIX = 'agora';
export const DEFAULT_ACK_WAIT_MS = 30_000;

import { invalidOption } from '../shared/errors.js';

export { invalidOption };
export { DEFAULT_MAX_MESSAGE_BYTES } from '../shared/validate.js';
export { messageBytes } from '../shared/message-size.js';

export function unknownTopic(topic: string): BusError {
  return new BusError('unknown_topic', `topic ${topic} is not declared`, { topic });
}

export function closedError(): BusError {
  return new BusError('transport_closed', 'the nats transport is closed');
}

/**
 * A name as one subject token and stream/consumer name part: `[A-Za-z0-9-]` kept, every other
 * UTF-8 byte as `_` plus two hex digits. Injective, so distinct topics never share a stream; and a
 * token never starts with `_` followed by a non-hex letter, which keeps `_dlq`/`_attempts` free.
 */
export function tokenOf(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const isPlain = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x2d;
    out += isPlain ? String.fromCharCode(byte) : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Stream, subject and consumer names of one prefix. */
export class Names {
  constructor(readonly prefix: string) {
    if (!/^[A-Za-z0-9-]+$/.test(prefix)) throw invalidOption(`prefix must match [A-Za-z0-9-]+, got ${prefix}`, { prefix });
  }
  stream(topic: string): string {
    return `${this.prefix}_${tokenOf(topic)}`;
  }
  subject(topic: string, partition: number): string {
    return `${this.prefix}.${tokenOf(topic)}.p.${partition}`;
  }
  durable(group: string, partition: number): string {
    return `${tokenOf(group)}_p${partition}`;
  }
  get deadLetterStream(): string {
    return `${this.prefix}__dlq`;
  }
  /** Subject (or filter) of dead letters; an omitted part is a wildcard. */
  deadLetterSubject(topic?: string, group?: string): string {
    if (topic === undefined && group === undefined) return `${this.prefix}._dlq.>`;
    return `${this.prefix}._dlq.${topic === undefined ? '*' : tokenOf(topic)}.${group === undefined ? '*' : tokenOf(group)}`;
  }
  get attemptStream(): string {
    return `${this.prefix}__attempts`;
  }
  attemptSubject(topic: string, group: string, seq: number): string {
    return `${this.prefix}._attempts.${tokenOf(topic)}.${tokenOf(group)}.${seq}`;
  }
}

/** What travels in {@link MESSAGE_HEADER}. */
interface MessageMeta {
  readonly id: string;
  readonly key?: string;
  readonly headers: Readonly<Record<string, string>>;
}

export function encodeMeta(message: TransportMessage): string {
  const meta: MessageMeta = message.key === undefined ? { id: message.id, headers: message.headers } : { id: message.id, key: message.key, headers: message.headers };
  return JSON.stringify(meta);
}

export function decodeMessage(meta: string | undefined, body: string, fallbackId: string): TransportMessage {
  if (meta === undefined || meta === '') return { id: fallbackId, headers: {}, body };
  const parsed = JSON.parse(meta) as MessageMeta;
  return parsed.key === undefined ? { id: parsed.id, headers: parsed.headers, body } : { id: parsed.id, key: parsed.key, headers: parsed.headers, body };
}

/** Error text as dead letters keep it. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
}
