/**
 * The small pieces of state kept in the store for other layers: refused
 * password sign-ins, phones' forwarding, and the Graph subscription state
 * taking over an older release's JSON file.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { JsonFileSubscriptionStateStore, migratingFromFile, type SubscriptionRecord, type SubscriptionStateStore } from '../../src/graph/subscription-state.js';
import { MemoryStore, passwordRefusalState, PHONE_FORWARDING_META_KEY, phoneForwardingState } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/logger.js';

t.test('password refusals: per account, case-insensitive, junk ignored, deleted', async (t) => {
  const store = new MemoryStore();
  const refusals = passwordRefusalState(store);
  t.equal(refusals.get('svc@contoso.example'), undefined);
  refusals.set('Svc@Contoso.example', { code: 'AADSTS50126', message: 'bad password', at: 5, salt: 's', hash: 'h' });
  t.same(refusals.get('svc@contoso.example'), { code: 'AADSTS50126', message: 'bad password', at: 5, salt: 's', hash: 'h' });
  store.meta.set('graph.passwordRefused.other@contoso.example', '{not json');
  t.equal(refusals.get('other@contoso.example'), undefined, 'a damaged row reads as no refusal');
  store.meta.set('graph.passwordRefused.third@contoso.example', JSON.stringify({ code: 'x' }));
  t.equal(refusals.get('third@contoso.example'), undefined, 'a row without its hash and salt is no refusal');
  refusals.delete('SVC@contoso.example');
  t.equal(refusals.get('svc@contoso.example'), undefined);
});

t.test('phone forwarding: saved per person, forgotten when empty, bad entries skipped on load', async (t) => {
  const store = new MemoryStore();
  const state = phoneForwardingState(store);
  t.same([...state.load()], []);
  state.save('alice', [{ type: 'forwardBusy', on: true, to: '2000', at: 1 }]);
  state.save('bob', [{ type: 'forwardImmediate', on: false, at: 2 }]);
  state.save('bob', []);
  t.same(JSON.parse(store.meta.get(PHONE_FORWARDING_META_KEY)!), { alice: [{ type: 'forwardBusy', on: true, to: '2000', at: 1 }] });
  store.meta.set(PHONE_FORWARDING_META_KEY, JSON.stringify({ carol: [{ type: 'forwardSometimes', on: true }, { type: 'forwardNoAns', on: true, ringCount: 0, at: 3 }] }));
  t.same([...phoneForwardingState(store).load()], [['carol', [{ type: 'forwardNoAns', on: true, at: 3 }]]], 'unknown type dropped, bad ring count left out');
});

t.test('Graph subscription state takes over a legacy JSON file once', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pg-legacy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const legacy = path.join(dir, 'graph-subscriptions.json');
  const record: SubscriptionRecord = { id: 'sub-1', account: 'app', userIds: ['u1'], expiresAt: 123, clientState: 'cs', notificationUrl: 'https://gw.example/graph/notify' };
  // the file as an older release wrote it
  await new JsonFileSubscriptionStateStore(legacy).save([record]);
  let held: SubscriptionRecord[] = [];
  const inner: SubscriptionStateStore = { load: async () => held, save: async (r) => void (held = [...r]) };

  const memory = migratingFromFile(inner, legacy, { keepsNothing: true, logger: silentLogger(), target: ':memory:' });
  t.equal((await memory.load()).length, 1, 'a memory store reads the file');
  t.ok(existsSync(legacy), 'and leaves it for the next run');
  t.same(held, [], 'nothing was saved');

  const file = migratingFromFile(inner, legacy, { keepsNothing: false, logger: silentLogger(), target: 'gateway.db' });
  t.match(await file.load(), [{ id: 'sub-1' }]);
  t.match(held, [{ id: 'sub-1' }], 'saved into the store');
  t.notOk(existsSync(legacy), 'the file is renamed');
  t.ok(existsSync(`${legacy}.migrated`));
  t.match(await file.load(), [{ id: 'sub-1' }], 'the next load comes from the store');
});
