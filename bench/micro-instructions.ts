// Not part of the bench: a fixed number of parses or serializations of the micro phase's messages, for counting
// instructions on a shared machine (wall clock is noise there): run it under callgrind for N and for 0 and take the
// difference, e.g. valgrind --tool=callgrind --smc-check=all-non-file node dist/bench/micro-instructions.js parse 20000
import { parseMessage } from '../src/sip/parser.js';
import { serializeMessage } from '../src/sip/serializer.js';
import { microMessages } from './parser.js';

const op = process.argv[2] ?? 'parse';
const n = Number(process.argv[3] ?? 0);
const { inputs, messages } = microMessages();
let sink = 0;
// the same warm-up for every N, so the difference between two N is the loop alone
for (let i = 0; i < 3000; i++) {
  if (parseMessage(inputs[i & 1]!).ok) sink++;
  sink += serializeMessage(messages[i & 1]!).length;
}
if (op === 'parse') for (let i = 0; i < n; i++) { if (parseMessage(inputs[i & 1]!).ok) sink++; }
else for (let i = 0; i < n; i++) sink += serializeMessage(messages[i & 1]!).length;
if (sink < 0) console.log(sink);
