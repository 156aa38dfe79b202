import { FormatRegistry, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { BusError, BusErrorCodes } from './errors.js';

// TypeBox checks only the string formats registered with it; these are the ones message
// schemas use. Registered once per process, never overriding someone else's.
const FORMATS: Record<string, (value: string) => boolean> = {
  'date-time': (v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v)),
  uuid: (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v),
  email: (v) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v),
};
for (const [name, check] of Object.entries(FORMATS)) if (!FormatRegistry.Has(name)) FormatRegistry.Set(name, check);

/** A message type, declared once: its topic, its schema, and what orders it. */
export interface MessageDefinition<S extends TSchema = TSchema> {
  readonly type: string;
  readonly version: number;
  readonly topic: string;
  readonly schema: S;
  /**
   * The ordering key, from the data (messages with the same key are handled in order).
   * A method, not a function-typed property: method parameters are bivariant, so a
   * `MessageDefinition<TObject<...>>` still fits where a `MessageDefinition` is asked for
   * (the bus's `messages`); a property would make every keyed definition a type error there.
   */
  key?(data: Static<S>): string;
}

/**
 * @example
 * const PostCreated = defineMessage({
 *   type: 'social.post.created', version: 1, topic: 'social.posts',
 *   schema: Type.Object({ postId: Type.String(), authorId: Type.String() }),
 *   key: (d) => d.authorId,
 * });
 */
export function defineMessage<S extends TSchema>(definition: MessageDefinition<S>): MessageDefinition<S> {
  return definition;
}

/** The declared messages of a bus, with compiled validators. */
export class MessageCatalog {
  readonly #byType = new Map<string, { definition: MessageDefinition; check: TypeCheck<TSchema> }>();

  constructor(definitions: readonly MessageDefinition[]) {
    for (const definition of definitions) {
      if (this.#byType.has(definition.type)) throw new BusError(BusErrorCodes.INVALID_OPTION, `message type ${definition.type} is declared twice`);
      this.#byType.set(definition.type, { definition, check: TypeCompiler.Compile(definition.schema) });
    }
  }

  definition(type: string): MessageDefinition {
    const entry = this.#byType.get(type);
    if (entry === undefined) throw new BusError(BusErrorCodes.UNKNOWN_MESSAGE_TYPE, `no message type ${type} is declared`, { type });
    return entry.definition;
  }

  has(type: string): boolean {
    return this.#byType.has(type);
  }

  /** @throws BusError `invalid_message` listing each field that fails the schema */
  validate(type: string, data: unknown): void {
    const entry = this.#byType.get(type);
    if (entry === undefined) throw new BusError(BusErrorCodes.UNKNOWN_MESSAGE_TYPE, `no message type ${type} is declared`, { type });
    if (entry.check.Check(data)) return;
    const issues = [...entry.check.Errors(data)].slice(0, 10).map((e) => `${e.path || '/'}: ${e.message}`);
    throw new BusError(BusErrorCodes.INVALID_MESSAGE, `${type} does not match its schema: ${issues.join('; ')}`, { type, issues });
  }

  topics(): string[] {
    return [...new Set([...this.#byType.values()].map((e) => e.definition.topic))];
  }
}
