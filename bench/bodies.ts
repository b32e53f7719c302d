/**
 * Throughput of the body codecs: PIDF build (the NOTIFY fan-out path), PIDF
 * parse (PUBLISH and upstream NOTIFY in) and dialog-info build.
 */
import { buildDialogInfo, buildPidf, parsePidf, type DialogInfoDocument, type PidfDocument } from '../src/bodies/index.js';

const SAMPLE_PIDF: PidfDocument = {
  entity: 'sip:alice.smith@corp.example.com',
  tuples: [
    {
      id: 'pg-alice-1',
      basic: 'open',
      contact: 'sip:alice.smith@corp.example.com',
      notes: ['On the phone (Teams)'],
      activities: [],
    },
  ],
  persons: [
    {
      id: 'alice',
      activities: [{ name: 'on-the-phone', ns: 'rpid' }, { name: 'busy', ns: 'rpid' }],
      notes: ['On the phone (Teams) & <busy>'],
      timestamp: '2024-05-02T10:00:00Z',
    },
  ],
  notes: [],
};

const SAMPLE_DIALOG: DialogInfoDocument = {
  entity: 'sip:201@pbx.example.net',
  version: 17,
  state: 'full',
  dialogs: [
    {
      id: '201',
      direction: 'recipient',
      state: 'early',
      local: { identity: 'sip:201@pbx.example.net', display: 'Room 201', target: 'sip:201@pbx.example.net' },
      remote: { identity: 'sip:100@pbx.example.net', display: 'Front Desk' },
    },
  ],
};

function perSecond(iterations: number, fn: (i: number) => number): number {
  let sink = 0;
  const warm = Math.min(iterations, 1000);
  for (let i = 0; i < warm; i++) sink += fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += fn(i);
  const ns = Number(process.hrtime.bigint() - start);
  if (sink < 0) throw new Error('unreachable'); // keeps the work observable
  return ns > 0 ? (iterations * 1e9) / ns : Number.POSITIVE_INFINITY;
}

export function benchBodies(iterations: number): {
  pidfBuildsPerSecond: number;
  pidfParsesPerSecond: number;
  dialogBuildsPerSecond: number;
} {
  const n = Math.max(1, Math.floor(iterations));
  const person = SAMPLE_PIDF.persons[0]!;
  const pidfBuildsPerSecond = perSecond(n, (i) => {
    // vary one field so nothing can be cached between iterations
    person.timestamp = i & 1 ? '2024-05-02T10:00:01Z' : '2024-05-02T10:00:00Z';
    return buildPidf(SAMPLE_PIDF, { flavor: i & 2 ? 'cisco' : 'rfc' }).length;
  });
  const body = Buffer.from(buildPidf(SAMPLE_PIDF, { flavor: 'cisco' }));
  const pidfParsesPerSecond = perSecond(n, () => parsePidf(body).persons.length);
  const dialogBuildsPerSecond = perSecond(n, (i) => {
    SAMPLE_DIALOG.version = i;
    return buildDialogInfo(SAMPLE_DIALOG).length;
  });
  return { pidfBuildsPerSecond, pidfParsesPerSecond, dialogBuildsPerSecond };
}
