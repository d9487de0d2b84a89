import { availableParallelism } from 'node:os';
import type { PreparedH264Decoder } from '@camstream/ffmpeg';
import type { FrameCodec, FrameSink } from '@camstream/media';
import type { StreamDescription } from '@camstream/protocol';
import { SinkSet } from '../sinks/sink-set';
import type { ReceiverStats } from '../stats';
import { AnySizeBufferPool } from './any-size-buffer-pool';
import { EncodingPipeline } from './encoding-pipeline';
import { FramePipeline } from './frame-pipeline';
import { H264FramePipeline } from './h264-pipeline';

export interface CameraPipelineOptions {
  codec: FrameCodec;
  /** Opens the sinks (window, recorder) once the stream's size is known. */
  openSinks: (stream: StreamDescription) => Promise<FrameSink[]>;
  /** Sinks that live for the whole run, across reconnects (the browser viewer, a mosaic tile). */
  lastingSinks: readonly FrameSink[];
  /** Frames decoded at once when they arrive faster than one decode takes (default: cores, at most 4). */
  decodeConcurrency?: number;
  /** For the H.264 decoder of the first H.264 stream (see H264PipelineOptions.preparedDecoder). */
  preparedH264Decoder?: PreparedH264Decoder;
  stats: ReceiverStats;
  log: (line: string) => void;
  /** The error the run was stopped with, if any (a sink that reports it is not logged again). */
  stoppedWith: () => Error | undefined;
  /** Sinks that could not be opened: the run cannot do what was asked. */
  onSinkFailed: (error: Error) => void;
}

/** What one camera's frames go through after their checks: decode, then every sink. */
export interface CameraPipeline {
  pipeline: EncodingPipeline;
  sinks: SinkSet;
  /** Where large payloads are read into, and go back to once decoded. */
  payloads: AnySizeBufferPool;
}

/**
 * The stages behind one camera's transport, the same whether its frames come over TCP or NATS:
 * a latest-wins decode pipeline on the thread pool (or, for H.264, one decoder that sees every
 * access unit) into the camera's sinks, with reused buffers for payloads and pixels.
 */
export function createCameraPipeline(options: CameraPipelineOptions): CameraPipeline {
  const concurrency = options.decodeConcurrency ?? Math.min(4, availableParallelism());
  // Enough for every frame in flight: decoding, waiting to decode, shown, waiting to be shown,
  // and the one being received.
  const payloads = new AnySizeBufferPool(2 * concurrency + 3);
  const sinks = new SinkSet(options.openSinks, options.lastingSinks, options.onSinkFailed);
  const frames = new FramePipeline({
    codec: options.codec,
    concurrency,
    payloads,
    pixels: new AnySizeBufferPool(concurrency + 2),
    sinks,
    stats: options.stats,
    log: options.log,
    stoppedWith: options.stoppedWith,
  });
  const h264 = new H264FramePipeline({
    codec: options.codec,
    payloads,
    pixels: new AnySizeBufferPool(4),
    ...(options.preparedH264Decoder ? { preparedDecoder: options.preparedH264Decoder } : {}),
    sinks,
    stats: options.stats,
    log: options.log,
    stoppedWith: options.stoppedWith,
  });
  return { pipeline: new EncodingPipeline(frames, h264), sinks, payloads };
}
