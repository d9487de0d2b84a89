/**
 * The FFmpeg adapter: the one package that runs ffmpeg and ffprobe. H.264 encoding (libx264)
 * and decoding in child processes, MP4 recording without re-encoding, and the Annex B tools a
 * receiver needs to check access units before decoding them.
 */
export { H264Encoder, H264_DEFAULTS, encoderArgs } from './h264-encoder';
export type { H264EncoderOptions, EncodedAccessUnit, X264Preset } from './h264-encoder';
export { H264Decoder, PreparedH264Decoder, decoderArgs } from './h264-decoder';
export type { H264DecoderOptions, DecodedFrame } from './h264-decoder';
export { Mp4Recorder, recorderArgs } from './mp4-recorder';
export type { Mp4RecorderOptions, RecordedFrameMeta } from './mp4-recorder';
export { probeVideoFile } from './ffprobe';
export type { VideoFileInfo } from './ffprobe';
export {
  NalType,
  DEFAULT_ANNEXB_LIMITS,
  iterateNalUnits,
  readNalUnits,
  splitAccessUnits,
  inspectAccessUnit,
  isKeyframe,
  parseSps,
  unescapeRbsp,
  avcCodecString,
} from './annexb';
export type { AnnexBLimits, NalUnit, AccessUnitInfo, SpsInfo } from './annexb';
export { defaultFfmpegPath, defaultFfprobePath } from './ffmpeg-process';
export {
  FfmpegAdapterError,
  FfmpegNotFoundError,
  FfmpegExitedError,
  FfmpegClosedError,
  FfmpegBusyError,
  FrameShapeError,
  AnnexBError,
  NotKeyframeError,
  StreamMismatchError,
  DecodeError,
  Mp4RecorderError,
  FfprobeError,
} from './errors';
export type { FfmpegAdapterErrorCode } from './errors';
