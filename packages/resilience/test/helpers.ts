import { expect } from 'vitest';
import type { ResilienceConfigError } from '../src/errors.js';

/** The ResilienceConfigError that `build` throws (failing the test if it throws none or another). */
export function configError(build: () => unknown): ResilienceConfigError {
  try {
    build();
  } catch (err) {
    expect((err as ResilienceConfigError).code).toBe('invalid_option');
    return err as ResilienceConfigError;
  }
  throw new Error('expected a ResilienceConfigError');
}
