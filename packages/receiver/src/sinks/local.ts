import { extname } from 'node:path';
import type { FrameSink } from '@camstream/media';
import { openWindow, type RecorderProcess, startRecorder, type VideoRecorder } from '@camstream/opencv';
import type { FrameHeader, StreamDescription } from '@camstream/protocol';
import { Mp4RecordingSink, recordsAccessUnits } from './mp4-recording';

export interface LocalSinkOptions {
  /** Show a window (the caller checked that a display is there). */
  window: boolean;
  /**
   * Record to this file; a stream of another size starts out-2.avi, out-3.avi, ... An h264 stream
   * into .mp4 is recorded as received (no re-encoding); anything else is the decoded pictures,
   * encoded by OpenCV (Motion JPEG in .avi).
   */
  record: string | undefined;
  /** The recording process, started early (loading OpenCV in it takes a second or two). */
  recorderProcess: RecorderProcess | undefined;
  /** Where the stream comes from, for the window's title. */
  from: string;
  log: (line: string) => void;
  /** The person closed the window, or a recording cannot be written: the run must stop (with that error). */
  stop: (error?: Error) => void;
}

/** The sinks on this machine: a window and a recorder, opened for each stream size. */
export function localSinks(options: LocalSinkOptions) {
  const recorders: Array<VideoRecorder | Mp4RecordingSink> = [];
  /** The recording of the current stream's access units, if it is one. */
  let accessUnits: Mp4RecordingSink | undefined;
  const open = async (stream: StreamDescription): Promise<FrameSink[]> => {
    const sinks: FrameSink[] = [];
    accessUnits = undefined;
    if (options.record && recordsAccessUnits(options.record, stream)) {
      // Opened before any frame of the stream arrives: the file starts at its first keyframe.
      const file = numbered(options.record, recorders.length);
      const recorder = new Mp4RecordingSink(file, stream, options.stop);
      recorders.push(recorder);
      accessUnits = recorder;
      sinks.push(recorder);
      options.log(`recording to ${file} (H.264 as received, no re-encoding)`);
    }
    if (options.window) {
      const window = await openWindow(`camstream: ${stream.source ?? 'stream'} (${options.from})`);
      void window.closed.then(() => {
        options.log('window closed: stopping');
        options.stop();
      });
      sinks.push(window);
    }
    if (options.record && !accessUnits) {
      const file = numbered(options.record, recorders.length);
      // It takes frames at once, while it opens the file: the first frames shown are recorded too.
      const recorder = startRecorder(file, { fps: stream.fps || 30, width: stream.width, height: stream.height }, options.recorderProcess);
      recorders.push(recorder);
      sinks.push(recorder);
      // A file that cannot be opened ends the run with that error (receive() returns it).
      recorder.opened.then(
        () => options.log(`recording to ${file}`),
        (error: Error) => options.stop(error),
      );
    }
    return sinks;
  };
  /** One line per recording: how many frames it holds and how many it dropped. */
  const report = () =>
    recorders.map((r, i) =>
      r instanceof Mp4RecordingSink
        ? `recorded ${r.writtenFrames} frames to ${r.file} (H.264 as received; ${r.skippedFrames} not recorded: before the first keyframe, refused, or of another size)`
        : `recorded ${r.writtenFrames} frames to ${numbered(options.record!, i)} (${r.droppedFrames} dropped: the recorder fell behind)`,
    );
  /** Every checked frame as received: an h264 stream's access units go into its MP4 recording. */
  const onFrame = (header: FrameHeader, payload: Buffer) => accessUnits?.writeAccessUnit(header, payload);
  return { open, report, onFrame };
}

/** out.avi, out-2.avi, out-3.avi, ... */
function numbered(file: string, index: number): string {
  if (index === 0) return file;
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}-${index + 1}${ext}`;
}
