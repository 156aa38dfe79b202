import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Service boundaries, checked on the source: a service talks to another only through its
// API or its events, never by importing its code or reading its tables.
const root = fileURLToPath(new URL('../../', import.meta.url));
const services = readdirSync(join(root, 'services')).filter((d) => statSync(join(root, 'services', d)).isDirectory());

function files(dir: string, extensions: readonly string[]): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : files(path, extensions);
    return extensions.some((e) => entry.name.endsWith(e)) ? [path] : [];
  });
}

const importsOf = (source: string) => [...source.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);

/** Text of the string and template literals of a TypeScript file that read like SQL. */
function sqlLiterals(source: string): string[] {
  return [...source.matchAll(/`([^`]*)`|'([^'\n]*)'/g)]
    .map((m) => m[1] ?? m[2] ?? '')
    .filter((text) => /\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN|TABLE)\b/i.test(text));
}

describe('service boundaries', () => {
  it('finds the services it checks', () => {
    expect(services).toEqual(expect.arrayContaining(['identity', 'social']));
  });

  for (const service of services) {
    const dir = join(root, 'services', service);
    const others = services.filter((s) => s !== service);

    it(`${service} imports no other service's code`, () => {
      const offending = files(dir, ['.ts']).flatMap((file) =>
        importsOf(readFileSync(file, 'utf8'))
          .filter((spec) => others.some((o) => spec === `@agora/${o}` || spec.startsWith(`@agora/${o}/`) || spec.includes(`services/${o}`) || spec.includes(`../${o}/`)))
          .map((spec) => `${relative(root, file)} imports ${spec}`),
      );
      expect(offending).toEqual([]);
    });

    it(`${service} names no other service's schema in its SQL`, () => {
      const schemaRef = new RegExp(`\\b(${others.join('|')})\\s*\\.\\s*[a-z_]+`, 'i');
      const sql = [
        ...files(join(dir, 'migrations'), ['.sql']).map((file) => ({ file, texts: [readFileSync(file, 'utf8')] })),
        ...files(join(dir, 'src'), ['.ts']).map((file) => ({ file, texts: sqlLiterals(readFileSync(file, 'utf8')) })),
      ];
      const offending = sql.flatMap(({ file, texts }) => texts.filter((t) => schemaRef.test(t)).map((t) => `${relative(root, file)}: ${t.trim().slice(0, 80)}`));
      expect(offending).toEqual([]);
    });
  }

  it('libraries under packages/ import no service and no app', () => {
    const offending = files(join(root, 'packages'), ['.ts'])
      .filter((file) => file.includes('/src/'))
      .flatMap((file) =>
        importsOf(readFileSync(file, 'utf8'))
          .filter((spec) => [...services, 'cli'].some((s) => spec === `@agora/${s}` || spec.startsWith(`@agora/${s}/`)))
          .map((spec) => `${relative(root, file)} imports ${spec}`),
      );
    expect(offending).toEqual([]);
  });

  it('would notice a cross-schema query (the check itself works)', () => {
    const schemaRef = /\b(identity)\s*\.\s*[a-z_]+/i;
    expect(sqlLiterals('const q = `SELECT * FROM identity.accounts`;').some((t) => schemaRef.test(t))).toBe(true);
    expect(sqlLiterals("identity.get('/internal/v1')").some((t) => schemaRef.test(t))).toBe(false);
  });
});
