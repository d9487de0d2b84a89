export { receive, type ReceiverOptions, type ReceiverResult } from './receiver';
export { runSession, type FrameChecks, type SessionEnd, type SessionHandlers, type SessionOptions } from './session/connection';
export { runTutorialSession, type TutorialSessionOptions } from './session/tutorial-connection';
export { TutorialStreamError } from './session/errors';
export { ReceiverStats, formatStatsLine, formatRung, TUTORIAL_WIRE_NOT_KNOWN, type NotKnown, type ReceiverStatsOptions, type RungFigure, type StatsSnapshot } from './stats';
export { parseReceiverArgs, type ReceiverCliOptions } from './options';
export { run } from './cli';
export { mosaicLayout, fitPicture, MOSAIC_TITLE, type TileLayout } from './sinks/mosaic';
export type { CameraFigures } from './hub/hub-camera';
