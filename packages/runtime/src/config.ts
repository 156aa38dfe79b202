import { readFileSync } from 'node:fs';
import type { Static, TObject, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * A configuration schema and the environment variable of each setting. One schema serves
 * the file, the environment and the command line, so every source is checked the same way
 * and an error always names the setting the user has to change.
 */
export interface ConfigSpec<S extends TObject> {
  readonly schema: S;
  /** Environment variable name -> dotted path of the setting it sets. */
  readonly env: Readonly<Record<string, string>>;
}

export interface ConfigSources {
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A JSON file; its keys follow the schema's shape. */
  readonly file?: string;
  /** Values from the command line, by dotted path; they win over every other source. */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

export interface ConfigIssue {
  /** Dotted path of the setting, e.g. `gateway.port`. */
  readonly key: string;
  /** Where the bad value came from: an environment variable, the file, the command line. */
  readonly source: string;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(`invalid configuration:\n${issues.map((i) => `  - ${i.key} (${i.source}): ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Tree = Record<string, unknown>;

function setPath(tree: Tree, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
    node = node[part] as Tree;
  }
  node[parts.at(-1) as string] = value;
}

function schemaAt(schema: TSchema, path: string): TSchema | undefined {
  let node: TSchema | undefined = schema;
  for (const part of path.split('.')) node = (node?.properties as Record<string, TSchema> | undefined)?.[part];
  return node;
}

/** Every dotted path in `tree`, sections included, so an issue on a whole section finds its source too. */
function flatten(tree: unknown, prefix = '', out: string[] = []): string[] {
  if (prefix !== '') out.push(prefix);
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) return out;
  for (const [k, v] of Object.entries(tree)) flatten(v, prefix === '' ? k : `${prefix}.${k}`, out);
  return out;
}

const INTEGER_TEXT = /^\s*-?\d+\s*$/;
const NUMBER_TEXT = /^\s*-?\d+(\.\d+)?\s*$/;

/**
 * Converts text to the schema's type. Numbers are taken only when the whole text is one, so
 * `80.5`, `1e3` or `0x50` for an integer is reported instead of silently read as 80, 1 or 80.
 */
function convert(target: TSchema | undefined, value: unknown): unknown {
  if (target === undefined) return value;
  // Lists come from the environment as comma-separated text: AGORA_ADMIN_HANDLES=ada,grace
  if (typeof value === 'string' && target.type === 'array') {
    return value.split(',').map((item) => item.trim()).filter((item) => item !== '').map((item) => convert(target.items as TSchema | undefined, item));
  }
  if (typeof value === 'string' && (target.type === 'integer' || target.type === 'number')) {
    return (target.type === 'integer' ? INTEGER_TEXT : NUMBER_TEXT).test(value) ? Number(value) : value;
  }
  return Value.Convert(target, value);
}

/**
 * Reads the configuration from defaults < file < environment < overrides, converts strings
 * to the schema's types, and checks the result against the schema.
 * @throws ConfigError naming every bad or unknown setting and where it came from
 * @example
 * const spec = { schema: Type.Object({ port: Type.Integer({ default: 8080 }) }), env: { PORT: 'port' } };
 * const config = loadConfig(spec, { env: process.env }); // { port: 8080 }
 */
export function loadConfig<S extends TObject>(spec: ConfigSpec<S>, sources: ConfigSources = {}): Static<S> {
  const tree: Tree = {};
  const origin = new Map<string, string>();
  if (sources.file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(sources.file, 'utf8'));
    } catch (err) {
      throw new ConfigError([{ key: '(file)', source: sources.file, message: `cannot be read as JSON: ${(err as Error).message}` }]);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError([{ key: '(file)', source: sources.file, message: 'must hold a JSON object of settings' }]);
    }
    for (const key of flatten(parsed)) origin.set(key, `file ${sources.file}`);
    Object.assign(tree, structuredClone(parsed));
  }
  for (const [name, path] of Object.entries(spec.env)) {
    const raw = sources.env?.[name];
    if (raw === undefined || raw === '') continue;
    setPath(tree, path, convert(schemaAt(spec.schema, path), raw));
    origin.set(path, `env ${name}`);
  }
  for (const [path, value] of Object.entries(sources.overrides ?? {})) {
    if (value === undefined) continue;
    setPath(tree, path, convert(schemaAt(spec.schema, path), value));
    origin.set(path, 'command line');
  }
  const value = Value.Default(spec.schema, tree);
  const issues: ConfigIssue[] = [];
  for (const error of Value.Errors(spec.schema, value)) {
    const key = error.path.replace(/^\//, '').replaceAll('/', '.');
    const envName = Object.entries(spec.env).find(([, p]) => p === key)?.[0];
    const source = origin.get(key) ?? (envName === undefined ? 'default' : `default; set ${envName}`);
    const got = error.value === undefined ? '' : `, got ${JSON.stringify(error.value)}`;
    const message = error.message === 'Unexpected property' ? 'is not a known setting' : `${error.message.toLowerCase()}${got}`;
    if (!issues.some((i) => i.key === key)) issues.push({ key, source, message });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return value as Static<S>;
}
