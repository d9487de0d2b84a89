export { receive, type ReceiverOptions, type ReceiverResult } from './receiver';
export { runSession, type SessionEnd, type SessionHandlers, type SessionOptions } from './session';
export { ReceiverStats, formatStatsLine, type StatsSnapshot } from './stats';
export { SequenceCheck, OutOfOrderError } from './sequence-check';
export { parseReceiverArgs, type ReceiverCliOptions } from './options';
export { run } from './cli';
