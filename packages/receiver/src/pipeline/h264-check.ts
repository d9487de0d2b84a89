import { AnnexBError, inspectAccessUnit } from '@camstream/ffmpeg';
import { SessionError, type FrameHeader } from '@camstream/protocol';

/**
 * PROTOCOL.md 4.6, what a receiver checks of an h264 frame before its decoder sees it: the
 * payload is one well-formed access unit within the frame limit, `keyframe` is set exactly when it
 * holds an IDR picture, and a keyframe carries its SPS and PPS, the SPS announcing the frame's size
 * (which the session already checked against the rung). Throws SessionError ERR_STREAM_MISMATCH:
 * the sender is wrong, and the session ends with that error.
 */
export function checkH264Frame(header: FrameHeader, payload: Buffer, maxFrameBytes: number): void {
  let info;
  try {
    info = inspectAccessUnit(payload, { maxAccessUnitBytes: maxFrameBytes });
  } catch (error) {
    if (!(error instanceof AnnexBError)) throw error;
    throw new SessionError('ERR_STREAM_MISMATCH', `frame ${header.seq} is not one H.264 access unit: ${error.message}`);
  }
  const keyframe = header.keyframe === true;
  if (info.keyframe !== keyframe) {
    const holds = info.keyframe ? 'holds an IDR picture' : 'holds no IDR picture';
    throw new SessionError('ERR_STREAM_MISMATCH', `frame ${header.seq} ${keyframe ? 'says it is a keyframe' : 'does not say it is a keyframe'}, but its access unit ${holds}`);
  }
  if (!keyframe) return;
  if (!info.sps || !info.hasPps) {
    throw new SessionError('ERR_STREAM_MISMATCH', `keyframe ${header.seq} carries no ${info.sps ? 'PPS' : 'SPS'}: a receiver cannot start decoding at it`);
  }
  if (info.sps.width !== header.width || info.sps.height !== header.height) {
    throw new SessionError('ERR_STREAM_MISMATCH', `keyframe ${header.seq} is ${header.width}x${header.height}, but its SPS announces ${info.sps.width}x${info.sps.height}`);
  }
}
