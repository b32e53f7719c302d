/**
 * Rendered bodies per resource, valid for one revision of its state: a change
 * fanned out to 10k watchers renders each distinct body once.
 */
export class RevisionCache<T> {
  private readonly entries = new Map<string, { revision: number; values: Map<string, T> }>();

  /** The value for (resource, key) at `revision`, made on first use. */
  get(resource: string, revision: number, key: string, make: () => T): T {
    let entry = this.entries.get(resource);
    if (entry === undefined || entry.revision !== revision) {
      entry = { revision, values: new Map() };
      this.entries.set(resource, entry);
    }
    let value = entry.values.get(key);
    if (value === undefined) {
      value = make();
      entry.values.set(key, value);
    }
    return value;
  }

  release(resource: string): void {
    this.entries.delete(resource);
  }

  get size(): number {
    return this.entries.size;
  }
}
