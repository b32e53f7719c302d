/**
 * SQLite failures in words an administrator can act on: what happened to
 * which file, and what to do about it.
 */

export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One sentence (or two) naming the file, the cause and the fix. */
export function describeStoreError(error: unknown, path: string): string {
  const code = errorCode(error);
  const text = errorText(error);
  if (code === 'SQLITE_NOTADB' || code?.startsWith('SQLITE_CORRUPT') === true) {
    return (
      `store file ${path} is not a SQLite database or is damaged (${code}: ${text}). ` +
      `Fix: stop the gateway, move ${path} (and ${path}-wal, ${path}-shm if present) aside or restore it from a backup, ` +
      `then start again; a missing file is created empty (watchers then re-subscribe).`
    );
  }
  if (code === 'SQLITE_FULL') {
    return `the disk holding store file ${path} is full (${code}). Fix: free space there; queued writes are kept and retried.`;
  }
  if (code?.startsWith('SQLITE_BUSY') === true || code?.startsWith('SQLITE_LOCKED') === true) {
    return `store file ${path} is locked by another process (${code}). Fix: make sure only one gateway uses this file.`;
  }
  if (code?.startsWith('SQLITE_READONLY') === true || code?.startsWith('SQLITE_CANTOPEN') === true || code === 'EACCES' || code === 'EPERM') {
    return (
      `store file ${path} cannot be opened for writing (${code}: ${text}). ` +
      `Fix: the gateway's user must own the file and be able to write its directory (or set store.path elsewhere).`
    );
  }
  if (code?.startsWith('SQLITE_IOERR') === true) {
    return `I/O error on store file ${path} (${code}: ${text}). Fix: check the disk and the file system.`;
  }
  return `store file ${path}: ${code === undefined ? '' : `${code}: `}${text}`;
}
