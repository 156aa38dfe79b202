import { BusError, BusErrorCodes } from '../../errors.js';
import type { TransportMessage } from '../../transport.js';

/**
 * Body and headers in UTF-8 bytes, as the contract counts them (a transport's own framing aside).
 *
 * @example
 * messageBytes({ id: '1', headers: { a: 'é' }, body: 'x' }); // 4
 */
export function messageBytes(message: TransportMessage): number {
  let bytes = Buffer.byteLength(message.body, 'utf8');
  for (const [name, value] of Object.entries(message.headers)) bytes += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
  return bytes;
}

/**
 * Refuses the whole batch if one message is over the topic's bound, before any is sent, so a
 * refusal never leaves half a batch published.
 *
 * @example
 * checkMessageSizes(topic, messages, settings.maxMessageBytes);
 */
export function checkMessageSizes(topic: string, messages: readonly TransportMessage[], maxMessageBytes: number): void {
  for (const message of messages) {
    const bytes = messageBytes(message);
    if (bytes > maxMessageBytes) {
      throw new BusError(BusErrorCodes.MESSAGE_TOO_LARGE, `message ${message.id} is ${bytes} bytes; topic ${topic} takes at most ${maxMessageBytes}`, {
        topic,
        id: message.id,
        bytes,
        maxMessageBytes,
      });
    }
  }
}
