/**
 * Reading many users' presence: POST /communications/getPresencesByUserId
 * takes at most 650 ids a call. Batches run a few at a time (the shared
 * budget paces them); a failed batch does not fail the others.
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
}

export async function readPresences(
  client: Client,
  ids: readonly string[],
  onValues: (values: unknown[]) => void,
  concurrency = 4,
): Promise<BatchReadResult> {
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += MAX_IDS_PER_CALL) batches.push(ids.slice(i, i + MAX_IDS_PER_CALL));
  const result: BatchReadResult = { failedIds: [], failures: [], calls: 0 };
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
        result.failures.push(graphFailure(error));
        for (const id of batch) result.failedIds.push(id);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, batches.length) }, () => worker()));
  return result;
}
