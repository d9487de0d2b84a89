export { Call, collapseRetries, type CallEnd, type CallOptions } from './call';
export { CallWindow, type CallWindowOptions } from './call-window';
export { parseCallArgs, type CallCliOptions } from './options';
export { run } from './cli';
