import { describe, expect, it } from 'vitest';
import { createMemoryRegistry, type RegistryChange } from '../src/index.js';

describe('memory registry', () => {
  it('lists registered instances per service and forgets deregistered ones', async () => {
    const registry = createMemoryRegistry();
    await registry.register({ id: 'a1', service: 'a', url: 'http://127.0.0.1:1' });
    await registry.register({ id: 'a2', service: 'a', url: 'http://127.0.0.1:2' });
    await registry.register({ id: 'b1', service: 'b', url: 'http://127.0.0.1:3' });
    expect((await registry.instances('a')).map((i) => i.id)).toEqual(['a1', 'a2']);
    expect(await registry.services()).toEqual(['a', 'b']);
    await registry.deregister('a1');
    expect((await registry.instances('a')).map((i) => i.id)).toEqual(['a2']);
    expect(await registry.instances('nobody')).toEqual([]);
  });

  it('tells watchers of joins and leaves until they unsubscribe', async () => {
    const registry = createMemoryRegistry();
    const seen: RegistryChange[] = [];
    const stop = registry.watch((c) => seen.push(c));
    await registry.register({ id: 'a1', service: 'a', url: 'http://127.0.0.1:1' });
    await registry.deregister('a1');
    await registry.deregister('a1'); // unknown by now: no event
    stop();
    await registry.register({ id: 'a2', service: 'a', url: 'http://127.0.0.1:2' });
    expect(seen.map((c) => `${c.type}:${c.instance.id}`)).toEqual(['up:a1', 'down:a1']);
  });
});
