import t from 'tap';
import { describeStoreError } from '../../src/store/index.js';

function sqliteError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

t.test('each failure names the file, the cause and the fix', async (t) => {
  const path = '/var/lib/pg/gateway.db';
  const full = describeStoreError(sqliteError('SQLITE_FULL', 'database or disk is full'), path);
  t.match(full, /disk holding store file \/var\/lib\/pg\/gateway\.db is full/);
  t.match(full, /Fix: free space/);
  t.match(describeStoreError(sqliteError('SQLITE_BUSY', 'database is locked'), path), /locked by another process.*only one gateway/);
  t.match(describeStoreError(sqliteError('SQLITE_CORRUPT_INDEX', 'x'), path), /is not a SQLite database or is damaged.*restore it from a backup/);
  t.match(describeStoreError(sqliteError('SQLITE_READONLY', 'attempt to write a readonly database'), path), /cannot be opened for writing.*must own the file/);
  t.match(describeStoreError(sqliteError('SQLITE_IOERR_WRITE', 'disk I/O error'), path), /I\/O error on store file .*check the disk/);
  t.equal(describeStoreError(new Error('odd'), path), `store file ${path}: odd`);
  t.equal(describeStoreError('text', path), `store file ${path}: text`);
});
