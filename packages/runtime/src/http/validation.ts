import type { ErrorObject } from 'ajv';
import { Ajv } from 'ajv';
import addFormatsImport from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

/**
 * Schemas may carry `x-hint`: the sentence shown to the caller when the value is wrong,
 * e.g. "handle must be 3 to 30 characters of a-z, 0-9 and _".
 */
export const HINT = 'x-hint';

function makeAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    verbose: true, // keeps parentSchema on errors, to read x-hint
    coerceTypes,
    removeAdditional: false,
    useDefaults: true,
    strict: true,
    allowUnionTypes: true,
  });
  addFormats(ajv);
  ajv.addKeyword({ keyword: HINT, schemaType: 'string' });
  // Keywords written by TypeBox and @fastify/swagger that carry no validation.
  ajv.addVocabulary(['example']);
  return ajv;
}

/**
 * Bodies are validated strictly: no coercion (a number is not a string) and no silent
 * removal of unknown fields (an unknown field is an error). Query strings and path
 * parameters arrive as text, so they are coerced to the declared types.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object);
}

export interface ValidationIssue {
  /** Where: `body.handle`, `query.limit`, `params.id`. */
  readonly field: string;
  readonly message: string;
}

const PART: Record<string, string> = { body: 'body', querystring: 'query', params: 'params', headers: 'headers' };

/** Turns ajv's errors into one issue per field, in words a caller can act on. */
export function describeValidation(errors: readonly ErrorObject[], context: string): ValidationIssue[] {
  const issues = new Map<string, string>();
  const base = PART[context] ?? context;
  for (const e of errors) {
    const path = e.instancePath.replace(/^\//, '').replaceAll('/', '.');
    let field = path === '' ? base : `${base}.${path}`;
    let message: string;
    if (e.keyword === 'required') {
      field = `${field}.${String(e.params.missingProperty)}`;
      message = `${field} is required`;
    } else if (e.keyword === 'additionalProperties') {
      field = `${field}.${String(e.params.additionalProperty)}`;
      message = `${field} is not a known field; remove it`;
    } else {
      // A wrong type gets the plain fact; the hint explains the constraints of a right-typed value.
      const hint = e.keyword === 'type' ? undefined : (e.parentSchema as Record<string, unknown> | undefined)?.[HINT];
      message = typeof hint === 'string' ? hint : `${field} ${e.message ?? 'is not valid'}`;
    }
    if (!issues.has(field)) issues.set(field, message);
  }
  return [...issues].map(([field, message]) => ({ field, message }));
}
