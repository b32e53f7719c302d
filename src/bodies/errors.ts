/**
 * The one error type the body codecs throw. `status` is the SIP response the
 * caller should send for the refused body: 400 malformed or refused (DOCTYPE,
 * ENTITY, bad encoding, missing required part), 413 too large, 415 a
 * well-formed document of a kind this codec does not handle.
 */
export class BodyError extends Error {
  override readonly name = 'BodyError';

  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
  }
}
