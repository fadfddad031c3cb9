/** Public API of the LSM engine (DESIGN.md §3). Format and knobs: docs/lsm.md. */
export { LsmTree, type RecoveryReport } from './lsm-tree.js';
export type { LsmOptions } from './options.js';
