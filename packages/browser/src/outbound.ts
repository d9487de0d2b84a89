import type { IncomingMessage } from 'node:http';

/** One frame of one rung as the server hands it to its connections: built once, shared by all. */
export interface ServedFrame {
  readonly seq: number;
  readonly captureTime: number;
  readonly rung: number;
  readonly width: number;
  readonly height: number;
  /** The JPEG, or the H.264 access unit. On rung 0 of a JPEG or H.264 stream: the received payload itself. */
  readonly payload: Buffer;
  /** Absent: JPEG. */
  readonly codec?: 'jpeg' | 'h264';
  /** An H.264 access unit that decoding can start at. */
  readonly keyframe?: boolean;
}

export type StreamKind = 'tab' | 'mjpeg' | 'events';

/** One open streaming connection, as seen by the server (for logs, /stats.json and tests). */
export interface ClientInfo {
  kind: StreamKind;
  /** The `client` query parameter the page sends, if any (links a tab's video and its events). */
  id: string | undefined;
  remote: string;
  /** Frames (or events) handed to the connection. */
  sent: number;
  /** Frames (or events) skipped for it: a newer one replaced the one waiting (latest-wins). */
  dropped: number;
  /** Bytes waiting in this connection's userland write buffer. */
  bufferedBytes: number;
  /** True while the socket has not drained since it last refused more bytes. */
  blocked: boolean;
  /** Tabs only: the flow window and the quality rung. */
  tab?: TabFlowInfo;
}

export interface TabFlowInfo {
  /** The rung of the last frame sent (on an H.264 stream: 0 is the H.264 itself, 1 and up JPEG). */
  rung: number;
  /** How the tab decodes: H.264 with WebCodecs (and JPEG), or JPEG only. */
  decodes: 'h264' | 'jpeg';
  /** Frames the tab acknowledged (each ack settles every frame up to it). */
  acks: number;
  inFlightBytes: number;
  windowBytes: number;
  /** Link capacity measured from the tab's acks, bytes/s; undefined before the first ack. */
  capacityBytesPerSecond: number | undefined;
}

/**
 * What every outbound connection (tab WebSocket, MJPEG, Server-Sent Events) offers the server:
 * its figures, how long its peer has not taken what it was sent, and a way to cut it. Each one
 * writes through a LatestWinsWriter; the server checks all of them for stalls in one place.
 */
export interface OutboundStream {
  readonly kind: StreamKind;
  readonly id: string | undefined;
  readonly remote: string;
  info(): ClientInfo;
  /** 0 while the peer keeps up; else how long it has not taken bytes (or not acknowledged frames). */
  stalledForMs(now: number): number;
  /** Disconnects at once (a stalled peer). */
  cut(): void;
  /** Ends the connection politely (the server shuts down); resolves once it is closed. */
  end(): Promise<void>;
}

export function remoteOf(req: IncomingMessage): string {
  const { remoteAddress, remotePort } = req.socket;
  return `${remoteAddress ?? '?'}:${remotePort ?? '?'}`;
}
