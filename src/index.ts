/**
 * The package entry point (`import { connect } from 'paxosstore'`): the TypeScript client and the
 * error catalogue its calls reject with.
 */
export type {
  AppendResult,
  CallOptions,
  Client,
  ConnectOptions,
  CounterResult,
  DeleteOptions,
  GetOptions,
  Key,
  ReadResult,
  SetOptions,
  Value,
  WriteResult,
} from './client/index.js';
export { connect } from './client/index.js';
export { type ErrorCode, errorCatalogue, isPaxosStoreError, PaxosStoreError } from './errors.js';
