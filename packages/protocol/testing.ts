// Byte builders for other packages' tests (`@camstream/protocol/testing`): malformed messages
// the encoder refuses to make. Not part of the library's API, so not exported from src/index.ts.
export { rawMessage, type RawMessageParts } from './src/testing/bytes';
export { h264Keyframe, type GoldenVector } from './src/testing/vectors';
