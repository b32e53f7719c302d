/**
 * Reading many users' presence: POST /communications/getPresencesByUserId
 * takes at most 650 ids a call. Batches run a few at a time (the shared
 * budget paces them); a failed batch does not fail the others.
 *
 * What Graph does with an id it does not know is not documented
 * (cloudcommunications-getpresencesbyuserid shows only known users), so every
 * answer is handled: an id left out of `value` simply gets no reading, an
 * entry with PresenceUnknown is taken as it is, and a 404 (or 400) for the
 * whole call is split in halves until the unknown id stands alone; that id
 * is reported in `unknownIds` and not read again as a failure.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import { graphFailure, isRecord, type GraphFailure } from './client.js';

// Graph: cloudcommunications-getpresencesbyuserid (at most 650 ids a request)
export const MAX_IDS_PER_CALL = 650;

export interface BatchReadResult {
  /** ids whose batch failed */
  failedIds: string[];
  failures: GraphFailure[];
  calls: number;
  /** ids Graph answered 404 for on their own */
  unknownIds: string[];
}

export async function readPresences(
  client: Client,
  ids: readonly string[],
  onValues: (values: unknown[]) => void,
  concurrency = 4,
): Promise<BatchReadResult> {
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += MAX_IDS_PER_CALL) batches.push(ids.slice(i, i + MAX_IDS_PER_CALL));
  const result: BatchReadResult = { failedIds: [], failures: [], calls: 0, unknownIds: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const batch = batches[next++];
      if (batch === undefined) return;
      result.calls++;
      try {
        const body: unknown = await client.api('/communications/getPresencesByUserId').post({ ids: batch });
        onValues(isRecord(body) && Array.isArray(body['value']) ? body['value'] : []);
      } catch (error) {
        const f = graphFailure(error);
        if ((f.status === 404 || f.status === 400) && batch.length > 1) {
          const half = Math.ceil(batch.length / 2);
          batches.push(batch.slice(0, half), batch.slice(half));
          continue;
        }
        if (f.status === 404) {
          result.unknownIds.push(...batch);
          continue;
        }
        result.failures.push(f);
        for (const id of batch) result.failedIds.push(id);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, batches.length) }, () => worker()));
  return result;
}
