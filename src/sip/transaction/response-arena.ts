/**
 * Where completed server transactions keep their final response for Timer J
 * (RFC 3261 §17.2.2: over UDP the transaction stays Completed 64*T1 = 32 s
 * and repeats that response to each retransmission of the request).
 *
 * At thousands of requests a second that is ~100,000 responses held at once.
 * Each serialized message is its own ArrayBuffer (one heap object, one
 * native backing store and one malloc'd block each, freed in random order).
 * Here they are copied into shared slabs instead: a transaction keeps only
 * the slab and two offsets. Every response kept here lives the same Timer J
 * and slabs fill in time order, so a slab is released whole once its last
 * transaction ends (slabs are large enough to be mmap'd blocks that go back
 * to the system, not holes in the malloc heap).
 */

import type { ByteSpace } from '../serializer.js';

/** A response kept in a slab: bytes [start, end) of `slab`. */
export interface KeptBytes {
  readonly slab: Buffer;
  readonly start: number;
  readonly end: number;
}

const DEFAULT_SLAB_BYTES = 256 * 1024;
/** Copies are 8-byte aligned (cheap, and keeps slabs' views aligned). */
const ALIGN = 8;

export class ResponseArena implements ByteSpace {
  private slab: Buffer | undefined = undefined;
  private used = 0;
  private slabsMade = 0;

  constructor(private readonly slabBytes = DEFAULT_SLAB_BYTES) {}

  /** Slabs allocated so far (tests, diagnostics). */
  get slabs(): number {
    return this.slabsMade;
  }

  /**
   * Copy `data` into the current slab (a new one when it is full). A message
   * larger than a quarter slab keeps its own buffer: `slab` is then `data`.
   */
  keep(data: Buffer): KeptBytes {
    const length = data.length;
    const room = this.reserve(length);
    if (room === undefined) return { slab: data, start: 0, end: length };
    data.copy(room.buffer, room.start);
    this.commit(room.start + length);
    return { slab: room.buffer, start: room.start, end: room.start + length };
  }

  /**
   * Room for up to `maxLength` bytes in the current slab (a new one when it
   * has not that much left), written by the caller, then commit(); undefined
   * over a quarter slab (such a message keeps its own buffer).
   * serializeMessageInto writes here.
   */
  reserve(maxLength: number): { buffer: Buffer; start: number } | undefined {
    if (maxLength * 4 > this.slabBytes) return undefined;
    let slab = this.slab;
    if (slab === undefined || this.used + maxLength > slab.length) {
      slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.slab = slab;
      this.used = 0;
      this.slabsMade++;
    }
    return { buffer: slab, start: this.used };
  }

  /** The bytes up to `end` of the slab reserve() gave are used. */
  commit(end: number): void {
    this.used = (end + ALIGN - 1) & ~(ALIGN - 1);
  }
}
