import t from 'tap';
import { BodyError, parseResourceLists } from '../../src/bodies/index.js';

const status = (fn: () => unknown): number | string => {
  try {
    fn();
    return 'parsed';
  } catch (e) {
    return e instanceof BodyError ? e.status : String(e);
  }
};

t.test('entries flattened in order, names kept, duplicates dropped, references counted', async (t) => {
  const doc = parseResourceLists(
    '<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copycontrol">' +
      '<rl:list name="a"><rl:entry uri="sip:a@h" cp:copyControl="to"><rl:display-name>A &amp; Co</rl:display-name></rl:entry>' +
      '<rl:list><rl:entry uri="sip:b@h"/><rl:entry uri="SIP:A@H"/></rl:list>' +
      '<rl:entry-ref ref="users/x"/><rl:external anchor="http://x/y"/></rl:list></rl:resource-lists>',
  );
  t.same(doc, { entries: [{ uri: 'sip:a@h', displayName: 'A & Co' }, { uri: 'sip:b@h' }], references: 2 });
});

t.test('refusals', async (t) => {
  t.equal(status(() => parseResourceLists('<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="x"/>')), 415, 'not a resource-lists document');
  t.equal(status(() => parseResourceLists('<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry/></list></resource-lists>')), 400);
  const three = '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="sip:1@h"/><entry uri="sip:2@h"/><entry uri="sip:3@h"/></list></resource-lists>';
  t.equal(status(() => parseResourceLists(three, { maxEntries: 2 })), 413);
  t.equal(parseResourceLists(three, { maxEntries: 3 }).entries.length, 3);
  let deep = '';
  for (let i = 0; i < 20; i++) deep += '<list>';
  for (let i = 0; i < 20; i++) deep += '</list>';
  t.equal(status(() => parseResourceLists(`<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">${deep}</resource-lists>`)), 400, 'nesting bounded');
});
