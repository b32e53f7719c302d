import { BodyError } from '../../src/bodies/errors.js';

/** The BodyError status a call throws, 'no error', or a description of any other error. */
export function statusOf(fn: () => unknown): number | string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof BodyError ? err.status : `not a BodyError: ${String(err)}`;
  }
}
