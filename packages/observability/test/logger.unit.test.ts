import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger, newRequestContext, runWithContext } from '../src/index.js';

/** A destination that keeps every line written, parsed. */
function memoryDestination() {
  const lines: Record<string, unknown>[] = [];
  return {
    lines,
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
}

describe('createLogger', () => {
  it('writes one JSON line per call with its name, level label and time', () => {
    const dest = memoryDestination();
    const name = `logger-${randomUUID()}`;
    const log = createLogger({ name, destination: dest });
    log.info({ postId: 7 }, 'post created');
    expect(dest.lines).toHaveLength(1);
    expect(dest.lines[0]).toMatchObject({ name, level: 'info', msg: 'post created', postId: 7, pid: process.pid });
    expect(Number.isNaN(Date.parse(String(dest.lines[0]?.time)))).toBe(false);
  });

  it('adds requestId and traceId inside a request context and not outside', () => {
    const dest = memoryDestination();
    const log = createLogger({ name: `ctx-${randomUUID()}`, destination: dest });
    const ctx = newRequestContext({ requestId: `log-${randomUUID()}` });
    runWithContext(ctx, () => log.info('inside'));
    log.info('outside');
    expect(dest.lines[0]).toMatchObject({ msg: 'inside', requestId: ctx.requestId, traceId: ctx.traceId });
    expect(dest.lines[1]).toMatchObject({ msg: 'outside' });
    expect(dest.lines[1]).not.toHaveProperty('requestId');
    expect(dest.lines[1]).not.toHaveProperty('traceId');
  });

  it('carries the context in child loggers too', () => {
    const dest = memoryDestination();
    const log = createLogger({ name: `child-${randomUUID()}`, destination: dest }).child({ component: 'repo' });
    const ctx = newRequestContext();
    runWithContext(ctx, () => log.warn('slow query'));
    expect(dest.lines[0]).toMatchObject({ component: 'repo', level: 'warn', requestId: ctx.requestId, traceId: ctx.traceId });
  });

  it('redacts passwords at the top level, one level down, and the authorization header', () => {
    const dest = memoryDestination();
    const log = createLogger({ name: `redact-${randomUUID()}`, destination: dest });
    const secret = `secret-${randomUUID()}`;
    log.info({ password: secret, body: { handle: 'ada', password: secret }, req: { headers: { authorization: `Bearer ${secret}` } } }, 'login');
    const line = dest.lines[0];
    expect(line).toMatchObject({ password: '[redacted]', body: { handle: 'ada', password: '[redacted]' }, req: { headers: { authorization: '[redacted]' } } });
    expect(JSON.stringify(line)).not.toContain(secret);
  });

  it('drops lines below its level', () => {
    const dest = memoryDestination();
    const log = createLogger({ name: `level-${randomUUID()}`, level: 'warn', destination: dest });
    log.info('dropped');
    log.debug('dropped');
    log.error('kept');
    expect(dest.lines.map((l) => l.msg)).toEqual(['kept']);
  });
});
