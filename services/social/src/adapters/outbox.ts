import { enqueue, MessageCatalog, prepareMessage, type MessageDefinition } from '@agora/bus';
import type { Queryable } from '@agora/db';
import type { Static } from '@sinclair/typebox';
import { socialEvents } from '../domain/events.js';

/** Writes an event into social's outbox, inside the transaction of the change it reports. */
export interface EventOutbox {
  add<D extends MessageDefinition>(tx: Queryable, definition: D, data: Static<D['schema']>): Promise<void>;
}

/**
 * The outbox of the `social` schema: each event is validated against its declared schema and
 * stored with the change it reports; the relay publishes it after commit, so an event exists
 * if and only if its change committed.
 */
export function socialOutbox(schema = 'social'): EventOutbox {
  const catalog = new MessageCatalog(socialEvents);
  return {
    add: (tx, definition, data) => enqueue(tx, schema, definition.topic, [prepareMessage(catalog, 'social', definition, data)]),
  };
}
