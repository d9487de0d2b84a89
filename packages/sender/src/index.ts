export { StreamServer, ListenError, type StreamServerOptions } from './stream-server';
export { pumpFrames, type PumpOptions, type PumpResult } from './pump';
export type { EncodedFrame } from './encoded-frame';
export { parseSenderArgs, type SenderOptions } from './options';
export { run } from './cli';
