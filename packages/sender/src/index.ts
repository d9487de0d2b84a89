export { StreamServer, ListenError, type StreamServerOptions } from './stream-server';
export { Broadcast, type BroadcastOptions, type BroadcastResult } from './broadcast';
export { OutgoingFrame } from './outgoing-frame';
export { TcpViewer, type TcpViewerOptions } from './tcp-viewer';
export { pumpFrames, type PumpOptions, type PumpResult } from './pump';
export { parseSenderArgs, type SenderOptions } from './options';
export { run } from './cli';
