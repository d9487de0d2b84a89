export { receive, type ReceiverOptions, type ReceiverResult } from './receiver';
export { runSession, type FrameChecks, type SessionEnd, type SessionHandlers, type SessionOptions } from './session/connection';
export { ReceiverStats, formatStatsLine, formatRung, type RungFigure, type StatsSnapshot } from './stats';
export { parseReceiverArgs, type ReceiverCliOptions } from './options';
export { run } from './cli';
export { mosaicLayout, fitPicture, MOSAIC_TITLE, type TileLayout } from './sinks/mosaic';
export type { CameraFigures } from './hub/hub-camera';
