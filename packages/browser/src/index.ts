/**
 * @camstream/browser: serves a received stream to browsers. The page (page/: index.html,
 * viewer.js, viewer.css) gets frames over a WebSocket with per-tab flow control and quality
 * rungs; /stream.mjpg, /snapshot.jpg, /stats.json and /events serve players and scripts.
 * BrowserHub serves several cameras on one port: a grid page, each camera's URLs with
 * ?camera=NAME, and the app's /metrics.
 */
export { BrowserServer } from './browser-server';
export type { BrowserServerOptions, ReceivedFrame, ReceiverFigures, ServerStatus, FrameInfo } from './browser-server';
export { BrowserHub } from './browser-hub';
export type { BrowserHubOptions, CameraEntry } from './browser-hub';
export type { ClientInfo, TabFlowInfo, StreamKind } from './outbound';
export {
  TAB_FRAME_VERSION,
  TAB_FRAME_HEADER_BYTES,
  FRAGMENT_BYTES,
  encodeTabFrameHeader,
  decodeTabFrameHeader,
  parseTabAck,
  TabFrameFormatError,
  TabMessageError,
} from './tab-frames';
export type { TabFrameHeader, TabAck } from './tab-frames';
