import { parseArgs } from 'node:util';

const USAGE = `agora dlq: the dead letter queue, through the gateway's /admin/dlq (admin scope)

Usage:
  agora dlq ls [--topic T] [--group G] [--limit N] [--after ID]
  agora dlq show ID
  agora dlq replay ID
  agora dlq purge --id ID | --topic T [--group G]

Options:
  --gateway <url>   the gateway (default http://localhost:8080; AGORA_GATEWAY_URL)
  --token <jwt>     a token with the admin scope (AGORA_TOKEN)
`;

interface DeadLetterView {
  id: string;
  topic: string;
  group: string;
  attempts: number;
  deadAt: string;
  message: { id: string; key?: string };
  errors: { error: string }[];
}

type Out = { write(text: string): void };

/** Runs `agora dlq ...`; resolves to the exit code (0 done, 1 the API refused, 2 bad usage). */
export async function dlq(args: readonly string[], env: NodeJS.ProcessEnv, out: Out = process.stdout, err: Out = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        gateway: { type: 'string' },
        token: { type: 'string' },
        topic: { type: 'string' },
        group: { type: 'string' },
        limit: { type: 'string' },
        after: { type: 'string' },
        id: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    err.write(`agora dlq: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, id] = positionals;
  if (values.help === true || command === undefined) {
    (values.help === true ? out : err).write(USAGE);
    return values.help === true ? 0 : 2;
  }
  const gateway = values.gateway ?? env.AGORA_GATEWAY_URL ?? 'http://localhost:8080';
  const token = values.token ?? env.AGORA_TOKEN;
  if (token === undefined) {
    err.write('agora dlq: a token with the admin scope is needed: --token or AGORA_TOKEN\n');
    return 2;
  }
  const call = async (method: string, path: string): Promise<{ ok: boolean; body: Record<string, unknown> }> => {
    const res = await fetch(new URL(path, gateway), { method, headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    return { ok: res.ok, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  const fail = (body: Record<string, unknown>) => {
    const e = (body.error ?? {}) as { code?: string; message?: string };
    err.write(`agora dlq: ${e.code ?? 'error'}: ${e.message ?? 'the gateway refused the request'}\n`);
    return 1;
  };
  const query = (entries: Record<string, string | undefined>) => {
    const q = new URLSearchParams(Object.entries(entries).filter((e): e is [string, string] => e[1] !== undefined));
    return q.size === 0 ? '' : `?${q}`;
  };

  switch (command) {
    case 'ls': {
      const res = await call('GET', `/admin/dlq${query({ topic: values.topic, group: values.group, limit: values.limit, after: values.after })}`);
      if (!res.ok) return fail(res.body);
      const entries = res.body.deadLetters as DeadLetterView[];
      if (entries.length === 0) out.write('no dead letters\n');
      for (const d of entries) {
        const last = d.errors.at(-1)?.error ?? '';
        out.write(`${d.id}\t${d.topic}\t${d.group}\tattempts=${d.attempts}\t${d.deadAt}\t${last.slice(0, 80)}\n`);
      }
      if (typeof res.body.next === 'string') out.write(`more: --after ${res.body.next}\n`);
      return 0;
    }
    case 'show': {
      if (id === undefined) return usage(err, 'show needs the id of a dead letter');
      const res = await call('GET', `/admin/dlq/${encodeURIComponent(id)}`);
      if (!res.ok) return fail(res.body);
      out.write(`${JSON.stringify(res.body.deadLetter, null, 2)}\n`);
      return 0;
    }
    case 'replay': {
      if (id === undefined) return usage(err, 'replay needs the id of a dead letter');
      const res = await call('POST', `/admin/dlq/${encodeURIComponent(id)}/replay`);
      if (!res.ok) return fail(res.body);
      out.write(`replayed ${id}\n`);
      return 0;
    }
    case 'purge': {
      if (values.id === undefined && values.topic === undefined) return usage(err, 'purge needs --id, or --topic (and optionally --group)');
      const res =
        values.id === undefined
          ? await call('DELETE', `/admin/dlq${query({ topic: values.topic, group: values.group })}`)
          : await call('DELETE', `/admin/dlq/${encodeURIComponent(values.id)}`);
      if (!res.ok) return fail(res.body);
      out.write(`purged ${String(res.body.purged)}\n`);
      return 0;
    }
    default:
      return usage(err, `unknown dlq command "${command}"`);
  }
}

function usage(err: Out, message: string): number {
  err.write(`agora dlq: ${message}\n\n${USAGE}`);
  return 2;
}
