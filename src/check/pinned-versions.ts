/**
 * The multiset of versions pinned by the operations not yet linearized, with its minimum. An
 * operation with an ok outcome pins the version the key had just before it took effect (its
 * result's version, minus one for an applied write). Removals and restorations come in LIFO order
 * from the search, so a count per distinct version and a lazily advanced minimum suffice.
 */
import { NONE } from './event-list.js';

export class PinnedVersions {
  private readonly versions: number[];
  private readonly indexOf: Int32Array;
  private readonly counts: Int32Array;
  private minimumIndex = 0;

  /** `pinnedOf[i]`: the version operation i pins, undefined when it pins none. */
  constructor(pinnedOf: ReadonlyArray<number | undefined>) {
    this.versions = [...new Set(pinnedOf.filter((version) => version !== undefined))].sort((a, b) => a - b);
    const position = new Map(this.versions.map((version, index) => [version, index]));
    this.indexOf = Int32Array.from(pinnedOf, (version) => (version === undefined ? NONE : position.get(version)!));
    this.counts = new Int32Array(this.versions.length);
    for (const index of this.indexOf) if (index !== NONE) this.counts[index]++;
  }

  /** The smallest version still pinned; +∞ when none is. */
  minimum(): number {
    while (this.minimumIndex < this.counts.length && this.counts[this.minimumIndex] === 0) this.minimumIndex++;
    return this.minimumIndex < this.versions.length ? this.versions[this.minimumIndex] : Number.POSITIVE_INFINITY;
  }

  remove(operation: number): void {
    const index = this.indexOf[operation];
    if (index !== NONE) this.counts[index]--;
  }

  restore(operation: number): void {
    const index = this.indexOf[operation];
    if (index === NONE) return;
    this.counts[index]++;
    if (index < this.minimumIndex) this.minimumIndex = index;
  }
}
