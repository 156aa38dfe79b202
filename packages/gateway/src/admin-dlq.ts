import type { DeadLetterStore } from '@agora/bus';
import { HINT, notFound, type HttpApp } from '@agora/runtime';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';

const Name = Type.String({ pattern: '^[A-Za-z0-9._:-]{1,200}$', [HINT]: 'a topic or group name: letters, digits and . _ : -' });
const Filter = Type.Object(
  {
    topic: Type.Optional(Name),
    group: Type.Optional(Name),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, [HINT]: 'limit must be an integer from 1 to 1000' })),
    after: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

/**
 * The dead letter queue over HTTP, for operators and `agora dlq`: list (filtered, keyset
 * paginated with `after`), show one, replay one (back to its group, attempts start over),
 * purge one or all of a topic/group. Every route needs the admin scope (`guard`).
 */
export function deadLetterRoutes(app: HttpApp, store: DeadLetterStore, guard: (request: FastifyRequest) => Promise<void>): void {
  app.get('/admin/dlq', { schema: { hide: true, querystring: Filter } }, async (request) => {
    await guard(request);
    const q = request.query as { topic?: string; group?: string; limit?: number; after?: string };
    const entries = await store.list({ ...q, limit: q.limit ?? 100 });
    return { deadLetters: entries, next: entries.length === (q.limit ?? 100) ? entries.at(-1)?.id : undefined };
  });

  app.get('/admin/dlq/:id', { schema: { hide: true, params: IdParams } }, async (request) => {
    await guard(request);
    const entry = await store.get((request.params as { id: string }).id);
    if (entry === undefined) throw notFound(`the dead letter ${(request.params as { id: string }).id}`);
    return { deadLetter: entry };
  });

  app.post('/admin/dlq/:id/replay', { schema: { hide: true, params: IdParams } }, async (request) => {
    await guard(request);
    const { id } = request.params as { id: string };
    if (!(await store.replay(id))) throw notFound(`the dead letter ${id}`);
    return { replayed: id };
  });

  app.delete('/admin/dlq/:id', { schema: { hide: true, params: IdParams } }, async (request) => {
    await guard(request);
    const { id } = request.params as { id: string };
    const purged = await store.purge({ id });
    if (purged === 0) throw notFound(`the dead letter ${id}`);
    return { purged };
  });

  app.delete('/admin/dlq', { schema: { hide: true, querystring: Type.Object({ topic: Name, group: Type.Optional(Name) }, { additionalProperties: false }) } }, async (request) => {
    await guard(request);
    // A topic is required: purging every dead letter of every topic by accident is too easy otherwise.
    return { purged: await store.purge(request.query as { topic: string; group?: string }) };
  });
}
