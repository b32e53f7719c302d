/**
 * The diagnostics page as a person uses it, in Debian's Chromium (headless,
 * driven by playwright-core): the users table fills, a Teams call started in
 * the Graph simulator turns the row to "on the phone" live (no reload), the
 * filters narrow the table, "test subscribe" shows a body, and screenshots
 * (1280x800 and a phone width) are written and checked.
 *
 * Three setups: the admin plugin over a fake AdminSource; the real gateway
 * in this process in demo mode (built-in simulator) with a test AdminSource;
 * and the real gateway as a child process with the simulator, serving the
 * admin API itself (`admin:` in the config). Chromium missing is a failure,
 * not a skip: CI installs it (test.sh).
 */
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startGateway as startInProcess } from '../../src/app.js';
import { configSchema } from '../../src/config/schema.js';
import { ChangeHistory } from '../../src/core/history.js';
import type { AdminSource, ClusterFacts } from '../../src/http/admin-source.js';
import { clusterView } from '../../src/http/cluster-rows.js';
import { startHttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/util/logger.js';
import { repoRoot } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { startTeamsEnv, startTeamsGateway, TEAMS_USERS } from '../helpers/teams-gateway.js';
import { fakeSource, TOKEN } from '../http/fake-source.js';

const CHROMIUM = '/usr/bin/chromium';

function httpsStatus(url: string, ca: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}
const ARTIFACTS = join(repoRoot(), 'test', '.artifacts');

async function launch(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'pg-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    ignoreHTTPSErrors: true,
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

interface Scenario {
  name: string;
  origin: string;
  users: readonly string[];
  /** the user whose Teams call is started, and another for the text filter */
  caller: string;
  other: { id: string; search: string };
  startCall(): void | Promise<void>;
  /** what the rendered presence body of the caller contains during the call */
  probeShows: RegExp;
  /** how many rows the Nodes panel shows (absent: no panel) */
  nodes?: number;
}

/** Evaluate browser-side source (this project's TypeScript has no DOM types). */
async function js<T>(page: Page, expression: string): Promise<T> {
  return (await page.evaluate(expression)) as T;
}

/** Poll a browser-side condition (waitForFunction would need eval, which the page's CSP forbids). */
async function until(page: Page, expression: string, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await js<boolean>(page, `Boolean(${expression})`))) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const visibleIds = (page: Page): Promise<string[]> =>
  js(page, `[...document.querySelectorAll('#user-rows tr')].filter((tr) => !tr.hidden).map((tr) => tr.getAttribute('data-id'))`);

async function exercise(t: Test, scenario: Scenario): Promise<void> {
  const browser = await launch();
  t.teardown(() => browser.close());
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });

  await page.goto(`${scenario.origin}/?token=${encodeURIComponent(TOKEN)}`);
  await page.waitForSelector('#live[data-state="live"]', { timeout: 15_000 });
  t.notMatch(page.url(), /token=/, 'the token is taken out of the address bar');
  t.equal(await js(page, `sessionStorage.getItem('presence-gateway.admin-token')`), TOKEN, 'and kept in sessionStorage');
  await until(page, `document.querySelectorAll('#user-rows tr').length === ${scenario.users.length}`, 15_000, 'the table fills');
  t.same((await visibleIds(page)).sort(), [...scenario.users].sort(), 'the table fills with every user');
  t.match(await page.textContent('#count'), `${scenario.users.length} of ${scenario.users.length} users`);
  const row = page.locator(`#user-rows tr[data-id="${scenario.caller}"]`);
  t.not(await row.getAttribute('data-state'), 'on-the-phone', 'not on the phone before the call');
  t.ok((await page.locator('#connectors li').count()) >= 1, 'connectors are listed');
  if (scenario.nodes === undefined) t.equal(await page.locator('#nodes-panel').isHidden(), true, 'no Nodes panel without a cluster section');
  else {
    t.equal(await page.locator('#node-rows tr').count(), scenario.nodes, `the Nodes panel lists ${scenario.nodes} node(s)`);
    t.equal(await page.locator('#node-rows tr[data-self="true"][data-up="true"]').count(), 1, 'this node, up');
  }

  // live, without reload: a marker on the window survives
  await js(page, 'window.marker = 42');
  await scenario.startCall();
  await page.waitForSelector(`#user-rows tr[data-id="${scenario.caller}"][data-state="on-the-phone"]`, { timeout: 20_000 });
  t.equal(await js(page, 'window.marker'), 42, 'the row changed without a reload');
  t.match(await row.locator('.state').textContent(), 'On the phone', 'the row says so in words');
  t.match(await row.locator('td[data-label="Teams"]').textContent(), /InACall/, 'Teams presence shows the call');

  // filters
  await page.selectOption('#filter-state', 'on-the-phone');
  t.same(await visibleIds(page), [scenario.caller], 'the state filter keeps the caller only');
  await page.selectOption('#filter-state', '');
  await page.fill('#filter-text', scenario.other.search);
  t.same(await visibleIds(page), [scenario.other.id], 'the text filter narrows to one user');
  await page.fill('#filter-text', 'nobody-is-called-this');
  t.same(await visibleIds(page), [], 'no match: no rows');
  t.ok(await page.isVisible('#empty'), 'and a message says so');
  await page.fill('#filter-text', '');
  t.equal((await visibleIds(page)).length, scenario.users.length, 'clearing the filters shows everyone');

  // test subscribe
  await row.getByRole('button', { name: /Test subscribe/ }).click();
  await page.waitForSelector('#dialog[open]');
  await until(page, `!document.getElementById('probe-body').textContent.startsWith('Loading')`, 5000, 'the body is rendered');
  t.match(await page.textContent('#probe-body'), scenario.probeShows, 'test subscribe shows what a watcher gets now');
  t.match(await page.textContent('#probe-type'), /Content-Type: application\/pidf\+xml/);
  await page.selectOption('#probe-event', 'dialog');
  await until(page, `/dialog-info/.test(document.getElementById('probe-type').textContent)`, 5000, 'the dialog-info body');
  t.pass('the dialog-info body follows the event choice');
  await page.click('#dialog-close');

  // screenshots
  await mkdir(ARTIFACTS, { recursive: true });
  const wide = join(ARTIFACTS, `diagnostics-${scenario.name}-1280.png`);
  t.ok(await row.isVisible(), 'the caller row is visible at 1280x800');
  const box = await row.boundingBox();
  t.ok(box !== null && box.y + box.height <= 800 && box.width > 600, 'and inside the viewport, full width');
  await page.screenshot({ path: wide });
  t.ok((await stat(wide)).size > 10_000, `screenshot written: ${wide}`);

  await page.setViewportSize({ width: 390, height: 800 });
  const overflow = await js<number>(page, 'document.documentElement.scrollWidth - window.innerWidth');
  t.ok(overflow <= 1, `no sideways scrolling at 390 px (overflow ${overflow})`);
  t.ok(await row.isVisible(), 'the caller row is visible at a phone width');
  const narrow = join(ARTIFACTS, `diagnostics-${scenario.name}-390.png`);
  await page.screenshot({ path: narrow, fullPage: true });
  t.ok((await stat(narrow)).size > 10_000, `narrow screenshot written: ${narrow}`);
  t.same(problems, [], 'no script errors in the page');
}

/** The page in Chromium, served by the admin plugin over `src` (status pushed every `statusMs`); all closed at teardown. */
async function openOnFakeSource(t: Test, src: ReturnType<typeof fakeSource>, statusMs: number): Promise<{ page: Page; server: { origin: string } }> {
  const server = await startHttpServer({ address: '127.0.0.1', port: 0, logger: silentLogger(), admin: { token: TOKEN, source: src, statusMs } });
  const browser = await launch();
  t.teardown(async () => {
    await browser.close();
    await server.close();
    src.close();
  });
  return { page: await browser.context.newPage(), server };
}

t.test('Chromium is installed', async (t) => {
  t.ok(existsSync(CHROMIUM), `Chromium at ${CHROMIUM} (apt-get install -y chromium; test.sh does)`);
});

{
  t.test('against the admin plugin over a fake AdminSource', async (t) => {
    const src = fakeSource();
    const server = await startHttpServer({
      address: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
      admin: { token: TOKEN, source: src, statusMs: 500 },
    });
    t.teardown(async () => {
      await server.close();
      src.close();
    });
    await exercise(t, {
      name: 'fake',
      origin: server.origin,
      users: ['anna', 'ben', 'chiara'],
      caller: 'anna',
      other: { id: 'chiara', search: 'rossi' },
      startCall: () => src.store.setTeams('anna', { availability: 'Busy', activity: 'InACall', at: Date.now() }),
      probeShows: /on-the-phone/,
    });
  });

  t.test('a red Graph sign-in card: Sign in shows the code to enter', async (t) => {
    const src = fakeSource();
    const svc = 'svc-presence@contoso.test';
    type Account = NonNullable<NonNullable<typeof src.graphInfo>['accounts']>[number];
    let current: Account = { account: svc, method: 'deviceCode', state: 'signed-out', usable: false, reason: 'not signed in: run presence-gateway-cli signin ' + svc, since: 1 };
    const info = src.graphInfo!;
    src.graphInfo = {
      ...info,
      tokens: [...info.tokens, { name: svc, ok: false }],
      get accounts() {
        return [current];
      },
    };
    const asked: string[] = [];
    src.signIn = async (name) => {
      asked.push(name);
      current = { ...current, state: 'signing-in', reason: 'waiting', prompt: { userCode: 'ABCD23EFG', verificationUri: 'https://microsoft.com/devicelogin', message: 'm', expiresAt: Date.now() + 900_000 } };
      return { ok: true, account: current };
    };
    const { page, server } = await openOnFakeSource(t, src, 500);
    await page.goto(`${server.origin}/?token=${encodeURIComponent(TOKEN)}`);
    const card = page.locator('li[data-kind="graph-auth"][data-ok="false"]', { hasText: svc });
    await card.waitFor({ timeout: 15_000 });
    t.match(await card.innerText(), /presence-gateway-cli signin/, 'red, with the reason');
    await card.locator('button[data-action="sign-in"]').click();
    await page.locator('[data-user-code="ABCD23EFG"]').waitFor({ timeout: 15_000 });
    t.match(await card.innerText(), /microsoft\.com\/devicelogin[\s\S]*ABCD23EFG/, 'the code and where to enter it');
    t.same(asked, [svc]);
  });

  t.test('the Nodes panel: each node up or down with what it owns, this node marked, job holders on the cards, Redis red when unreachable', async (t) => {
    const src = fakeSource();
    // a node id is not markup: it must show as text
    const evil = '<img src=x id=injected>';
    const now = Date.now();
    const facts: ClusterFacts = {
      nodeId: 'node-a',
      store: 'redis',
      storeUrl: 'redis://gw:secret@10.1.2.3:6379/0',
      connected: true,
      nodeTtlMs: 5000,
      nodes: [
        { nodeId: 'node-a', sip: ['udp 10.0.0.1:5060'], http: 'https://10.0.0.1:8443', startedAt: now - 3_600_000, seenAt: now, subscriptions: 12, leases: ['trunk:pbx1'] },
        { nodeId: evil, sip: ['udp 10.0.0.2:5060'], startedAt: now - 60_000, seenAt: now, subscriptions: 30, leases: ['graph:subscriptions'] },
        { nodeId: 'node-c', sip: ['udp 10.0.0.3:5060'], startedAt: now - 60_000, seenAt: now - 60_000, subscriptions: 4, leases: [] },
      ],
      leases: [
        { job: 'trunk:pbx1', holder: 'node-a', token: 3, expiresAt: now + 4000 },
        { job: 'graph:subscriptions', holder: evil, token: 7, expiresAt: now + 4000 },
        { job: 'trunk:cucm', holder: undefined, token: undefined, expiresAt: undefined },
      ],
    };
    // node-a and the other live node beat; node-c's last heartbeat stays a minute old
    src.cluster = () =>
      clusterView(
        {
          ...facts,
          nodes: facts.nodes.map((n) => (n.nodeId === 'node-c' ? n : { ...n, seenAt: Date.now() })),
          leases: facts.leases.map((l) => (l.expiresAt !== undefined ? { ...l, expiresAt: Date.now() + 4000 } : l)),
        },
        Date.now(),
      );
    const { page, server } = await openOnFakeSource(t, src, 200);
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(`${server.origin}/?token=${encodeURIComponent(TOKEN)}`);
    await page.waitForSelector('#nodes-panel:not([hidden]) #node-rows tr', { timeout: 15_000 });
    t.equal(await page.locator('#node-rows tr').count(), 3, 'one row a node');
    const self = page.locator('#node-rows tr[data-self="true"]');
    t.equal(await self.getAttribute('data-node'), 'node-a', 'this node first, marked');
    t.match(await self.innerText(), /node-a \(this node\)[\s\S]*Up[\s\S]*12[\s\S]*trunk:pbx1/, 'up, its subscriptions and leases');
    const dead = page.locator('#node-rows tr[data-node="node-c"]');
    t.equal(await dead.getAttribute('data-up'), 'false');
    t.match(await dead.locator('.badge').innerText(), /Down/, 'the node not seen within the TTL is down');
    t.equal(await js(page, `document.getElementById('injected') === null && document.querySelectorAll('#nodes-panel img, #connectors img').length === 0`), true, 'the node id is not rendered as markup');
    t.match(await page.locator('#node-rows tr').nth(1).locator('strong').innerText(), evil, 'but shown as text');
    t.match(await page.locator('#nodes-count').innerText(), '2 of 3 up');
    t.match(await page.locator('#store-line').innerText(), /Redis redis:\/\/10\.1\.2\.3:6379\/0[\s\S]*Connected/, 'the store, without its password');
    t.notMatch(await page.content(), /secret/);
    // the trunk and Graph cards name the node that runs their job
    t.match(await page.locator('li[data-kind="trunk"]', { hasText: 'pbx1' }).locator('.conn-job').innerText(), 'Run by node-a (this node)');
    t.match(await page.locator('li[data-kind="trunk"]', { hasText: 'cucm' }).locator('.conn-job').innerText(), 'No node runs it now');
    t.match(await page.locator('li[data-kind="graph-subscription"] .conn-job').innerText(), `Run by ${evil}`);
    t.match(await page.locator('#job-rows tr[data-job="graph:subscriptions"]').innerText(), /Graph subscriptions[\s\S]*<img src=x id=injected>[\s\S]*grant 7, runs out in \d s/, 'and the job table');
    t.equal(await page.locator('li[data-kind="store"]').getAttribute('data-ok'), 'true', 'a green store card');

    await mkdir(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'diagnostics-nodes-1280.png');
    await page.locator('#nodes-panel').screenshot({ path: shot });
    t.ok((await stat(shot)).size > 5_000, `screenshot written: ${shot}`);

    // Redis goes away: pushed live, red
    facts.connected = false;
    await page.waitForSelector('#store-state[data-ok="false"]', { timeout: 5000 });
    t.match(await page.locator('#store-state').innerText(), 'Unreachable');
    t.equal(await page.locator('li[data-kind="store"]').getAttribute('data-ok'), 'false', 'the store card is red');
    t.equal(await self.getAttribute('data-up'), 'false', 'this node is down');
    t.match(await page.locator('#node-rows tr').nth(1).locator('.badge').innerText(), 'Not known', 'the others not known');
    t.same(problems, [], 'no script errors in the page');
  });

  t.test('the real gateway in this process (demo mode, built-in simulator), a test AdminSource', async (t) => {
    const stateDir = await mkdtemp(join(tmpdir(), 'pg-diag-state-'));
    const httpPort = await freePort();
    const simPort = await freePort();
    const config = configSchema.parse({
      sip: { listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }], domain: 'demo.presence-gateway.local' },
      http: { address: '127.0.0.1', port: httpPort },
      graphSimulator: { port: simPort, dir: join(stateDir, 'sim') },
      stateDir,
      users: TEAMS_USERS.map((u) => ({ id: u.id, displayName: u.displayName, extension: u.extension })),
    });
    const gw = await startInProcess(config, silentLogger());
    const history = new ChangeHistory(gw.store);
    const source: AdminSource = {
      persons: () => gw.directory.all(),
      state: (id) => gw.store.state(id),
      view: (id) => gw.store.view(id),
      history: (id) => history.entries(id),
      watchers: () => ({}),
      onChange: (l) => gw.store.onChange((id) => l(id)),
      trunks: () => [],
      graph: () => gw.graph?.status(),
      resync: async () => ({ ok: true, detail: 'polled' }),
      render: (id, event) => {
        const v = gw.store.view(id);
        return event === 'presence'
          ? { contentType: 'application/pidf+xml', body: `<presence><activities>${v.activities.join(' ')}</activities></presence>` }
          : { contentType: 'application/dialog-info+xml', body: `<dialog-info calls="${v.calls.length}"/>` };
      },
    };
    const admin = await startHttpServer({ address: '127.0.0.1', port: 0, logger: silentLogger(), admin: { token: TOKEN, source, statusMs: 500 } });
    t.teardown(async () => {
      await admin.close();
      history.close();
      await gw.stop();
      await rm(stateDir, { recursive: true, force: true });
    });
    const sim = gw.simulator;
    if (sim === undefined) throw new Error('demo mode without a simulator');
    // the Graph side has read everyone before the page opens
    await gw.graph?.idle();
    await exercise(t, {
      name: 'in-process',
      origin: admin.origin,
      users: TEAMS_USERS.map((u) => u.id),
      caller: 'anna',
      other: { id: 'dmitri', search: 'volkov' },
      startCall: () => {
        sim.control.call('anna');
      },
      probeShows: /on-the-phone/,
    });
  });

  t.test('the real gateway process with the Graph simulator', async (t) => {
    const env = await startTeamsEnv();
    const sim = env.sim;
    const { gw, httpPort } = await startTeamsGateway(env, {
      stateDir: await env.newStateDir(),
      pollIntervalSec: 60,
      overrides: { admin: { token: TOKEN } },
    });
    t.teardown(async () => {
      await gw.stop();
      await env.close();
    });
    const ca = await readFile(env.caPath, 'utf8');
    t.equal(await httpsStatus(`https://127.0.0.1:${httpPort}/api/status`, ca, TOKEN), 200, 'the gateway serves the admin API');
    t.equal(await httpsStatus(`https://127.0.0.1:${httpPort}/api/status`, ca, 'not-the-token-at-all-000000'), 401, 'and refuses a wrong token');
    await exercise(t, {
      name: 'gateway',
      origin: `https://127.0.0.1:${httpPort}`,
      users: TEAMS_USERS.map((u) => u.id),
      caller: 'anna',
      other: { id: 'dmitri', search: 'volkov' },
      startCall: () => {
        sim.control.call('anna');
      },
      probeShows: /on-the-phone/,
      nodes: 1,
    });
  });
}
