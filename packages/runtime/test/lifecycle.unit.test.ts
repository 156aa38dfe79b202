import { afterEach, describe, expect, it, vi } from 'vitest';
import { deferred, Host, StoppedWhileStartingError, stopOnSignals, type Component } from '../src/index.js';
import { caught, gate, quietLogger } from './helpers.js';

/** A component that writes `start:<name>` and `stop:<name>` into a shared journal. */
function recorded(journal: string[], name: string, behaviour: { start?: () => Promise<void>; stop?: () => Promise<void> } = {}): Component {
  return {
    name,
    async start() {
      journal.push(`start:${name}`);
      await behaviour.start?.();
    },
    async stop() {
      journal.push(`stop:${name}`);
      await behaviour.stop?.();
    },
  };
}

const newHost = (stopTimeoutMs?: number) => new Host({ logger: quietLogger(), ...(stopTimeoutMs === undefined ? {} : { stopTimeoutMs }) });

afterEach(() => {
  vi.useRealTimers();
});

describe('Host: start and stop', () => {
  it('starts components in order and stops them in reverse', async () => {
    const journal: string[] = [];
    const host = newHost().add(recorded(journal, 'db')).add(recorded(journal, 'social')).add(recorded(journal, 'gateway'));
    await host.start();
    expect(journal).toEqual(['start:db', 'start:social', 'start:gateway']);
    expect(await host.stop()).toBe(true);
    expect(journal.slice(3)).toEqual(['stop:gateway', 'stop:social', 'stop:db']);
  });

  it('starts only once when start is called twice', async () => {
    const journal: string[] = [];
    const host = newHost().add(recorded(journal, 'db'));
    await Promise.all([host.start(), host.start()]);
    expect(journal).toEqual(['start:db']);
    await host.stop();
  });

  it('stops what was started, in reverse, and rethrows when a start fails', async () => {
    // given a host whose third component fails to start
    const journal: string[] = [];
    const failure = new Error('port taken');
    const host = newHost()
      .add(recorded(journal, 'db'))
      .add(recorded(journal, 'social'))
      .add(recorded(journal, 'gateway', { start: () => Promise.reject(failure) }))
      .add(recorded(journal, 'never'));
    // when it starts
    const err = await caught(() => host.start());
    // then the failure comes back as is, and only the two that started are stopped
    expect(err).toBe(failure);
    expect(journal).toEqual(['start:db', 'start:social', 'start:gateway', 'stop:social', 'stop:db']);
  });

  it('stops each component once however many times stop is called', async () => {
    const journal: string[] = [];
    const host = newHost().add(recorded(journal, 'db')).add(recorded(journal, 'social'));
    await host.start();
    const [first, second] = await Promise.all([host.stop(), host.stop()]);
    const third = await host.stop();
    expect([first, second, third]).toEqual([true, true, true]);
    expect(journal.filter((e) => e.startsWith('stop:'))).toEqual(['stop:social', 'stop:db']);
  });

  it('resolves false when a component fails to stop, and still stops the others', async () => {
    const journal: string[] = [];
    const host = newHost()
      .add(recorded(journal, 'db'))
      .add(recorded(journal, 'broken', { stop: () => Promise.reject(new Error('socket stuck')) }))
      .add(recorded(journal, 'gateway'));
    await host.start();
    expect(await host.stop()).toBe(false);
    expect(journal.slice(3)).toEqual(['stop:gateway', 'stop:broken', 'stop:db']);
  });

  it('cuts off a component that hangs in stop at the deadline, resolves false, and stops the rest', async () => {
    // given a started host whose middle component never finishes stopping
    vi.useFakeTimers();
    const journal: string[] = [];
    const host = newHost(5000)
      .add(recorded(journal, 'db'))
      .add(recorded(journal, 'hanging', { stop: () => new Promise<void>(() => undefined) }))
      .add(recorded(journal, 'gateway'));
    await host.start();
    // when it stops
    let result: boolean | undefined;
    void host.stop().then((clean) => (result = clean));
    // then it waits for the hanging component until the deadline, not a moment less
    await vi.advanceTimersByTimeAsync(4999);
    expect(result).toBeUndefined();
    expect(journal.slice(3)).toEqual(['stop:gateway', 'stop:hanging']);
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toBe(false);
    expect(journal.slice(3)).toEqual(['stop:gateway', 'stop:hanging', 'stop:db']);
  });
});

describe('Host: stop while starting', () => {
  it('lets the component being started finish, starts no other, stops those started, and rejects', async () => {
    // given a host whose second component is in the middle of starting
    const journal: string[] = [];
    const socialStarting = gate();
    const host = newHost()
      .add(recorded(journal, 'db'))
      .add(recorded(journal, 'social', { start: () => socialStarting.promise }))
      .add(recorded(journal, 'gateway'));
    const starting = host.start();
    const startErr = caught(() => starting);
    await vi.waitFor(() => expect(journal).toContain('start:social'));
    // when a stop is asked for, and only then the start finishes
    let stopped: boolean | undefined;
    const stopping = host.stop().then((clean) => (stopped = clean));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBeUndefined(); // stop waits for the component being started
    socialStarting.open();
    // then start rejects with stopped_while_starting, the last one never starts, and the others stop in reverse
    const err = await startErr;
    expect(err).toBeInstanceOf(StoppedWhileStartingError);
    expect((err as StoppedWhileStartingError).code).toBe('stopped_while_starting');
    await stopping;
    expect(stopped).toBe(true);
    expect(journal).toEqual(['start:db', 'start:social', 'stop:social', 'stop:db']);
  });

  it('rejects also when the stop comes while the last component is starting', async () => {
    const journal: string[] = [];
    const lastStarting = gate();
    const host = newHost().add(recorded(journal, 'db')).add(recorded(journal, 'gateway', { start: () => lastStarting.promise }));
    const startErr = caught(() => host.start());
    await vi.waitFor(() => expect(journal).toContain('start:gateway'));
    const stopping = host.stop();
    lastStarting.open();
    const err = await startErr;
    expect((err as StoppedWhileStartingError).code).toBe('stopped_while_starting');
    expect(await stopping).toBe(true);
    expect(journal).toEqual(['start:db', 'start:gateway', 'stop:gateway', 'stop:db']);
  });

  it('rejects with the start failure, not stopped_while_starting, when the component being started fails', async () => {
    const journal: string[] = [];
    const socialStarting = gate();
    const failure = new Error('migration failed');
    const host = newHost().add(recorded(journal, 'db')).add(recorded(journal, 'social', { start: () => socialStarting.promise }));
    const startErr = caught(() => host.start());
    await vi.waitFor(() => expect(journal).toContain('start:social'));
    const stopping = host.stop();
    socialStarting.fail(failure);
    expect(await startErr).toBe(failure);
    expect(await stopping).toBe(true);
    expect(journal).toEqual(['start:db', 'start:social', 'stop:db']);
  });

  it('starts nothing once stopped', async () => {
    const journal: string[] = [];
    const host = newHost().add(recorded(journal, 'db'));
    expect(await host.stop()).toBe(true);
    const err = await caught(() => host.start());
    expect((err as StoppedWhileStartingError).code).toBe('stopped_while_starting');
    expect(journal).toEqual([]);
  });
});

describe('deferred', () => {
  it('builds its component only when started, and stops what it built', async () => {
    // given a deferred component that needs a value known only once the host runs
    const journal: string[] = [];
    let url: string | undefined;
    const build = vi.fn(async () => recorded(journal, `social@${url ?? 'unknown'}`));
    const host = newHost()
      .add({ name: 'db', start: async () => void (url = 'postgres://db'), stop: async () => undefined })
      .add(deferred('social', build));
    expect(build).not.toHaveBeenCalled();
    // when the host starts and stops
    await host.start();
    await host.stop();
    // then it was built once, after the database knew its url
    expect(build).toHaveBeenCalledTimes(1);
    expect(journal).toEqual(['start:social@postgres://db', 'stop:social@postgres://db']);
  });

  it('does nothing on stop when it was never built', async () => {
    const build = vi.fn(async () => recorded([], 'never'));
    await deferred('lazy', build).stop();
    expect(build).not.toHaveBeenCalled();
  });

  it('fails to start when building fails', async () => {
    const failure = new Error('no database url');
    const err = await caught(() => deferred('social', () => Promise.reject(failure)).start());
    expect(err).toBe(failure);
  });
});

describe('stopOnSignals', () => {
  it('stops the host on SIGTERM and exits 0, once however many signals come', async () => {
    // given a started host listening for signals, with exit replaced
    const journal: string[] = [];
    const stopGate = gate();
    const host = newHost().add(recorded(journal, 'db', { stop: () => stopGate.promise }));
    await host.start();
    const exit = vi.fn<(code: number) => void>();
    const listenersBefore = process.listenerCount('SIGTERM');
    const dispose = stopOnSignals(host, { logger: quietLogger(), exit });
    try {
      expect(process.listenerCount('SIGTERM')).toBe(listenersBefore + 1);
      // when SIGTERM comes, and again while stopping
      process.emit('SIGTERM', 'SIGTERM');
      process.emit('SIGTERM', 'SIGTERM');
      stopGate.open();
      // then the host stops once and the process exits 0
      await vi.waitFor(() => expect(exit).toHaveBeenCalled());
      expect(exit).toHaveBeenCalledTimes(1);
      expect(exit).toHaveBeenCalledWith(0);
      expect(journal).toEqual(['start:db', 'stop:db']);
    } finally {
      dispose();
    }
    expect(process.listenerCount('SIGTERM')).toBe(listenersBefore);
  });

  it('exits 1 when something failed to stop', async () => {
    const host = newHost().add({ name: 'broken', start: async () => undefined, stop: () => Promise.reject(new Error('stuck')) });
    await host.start();
    const exit = vi.fn<(code: number) => void>();
    const dispose = stopOnSignals(host, { logger: quietLogger(), exit, signals: ['SIGINT'] });
    try {
      process.emit('SIGINT', 'SIGINT');
      await vi.waitFor(() => expect(exit).toHaveBeenCalledWith(1));
    } finally {
      dispose();
    }
  });

  it('listens to nothing once disposed', async () => {
    const journal: string[] = [];
    const host = newHost().add(recorded(journal, 'db'));
    await host.start();
    const exit = vi.fn<(code: number) => void>();
    const listenersBefore = process.listenerCount('SIGUSR2');
    stopOnSignals(host, { logger: quietLogger(), exit, signals: ['SIGUSR2'] })();
    expect(process.listenerCount('SIGUSR2')).toBe(listenersBefore);
    await host.stop();
    expect(exit).not.toHaveBeenCalled();
  });
});
