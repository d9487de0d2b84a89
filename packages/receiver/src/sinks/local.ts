import { extname } from 'node:path';
import type { FrameSink } from '@camstream/media';
import { openWindow, type RecorderProcess, startRecorder, type VideoRecorder } from '@camstream/opencv';
import type { StreamDescription } from '@camstream/protocol';

export interface LocalSinkOptions {
  /** Show a window (the caller checked that a display is there). */
  window: boolean;
  /** Record to this file; a stream of another size starts out-2.avi, out-3.avi, ... */
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
  const recorders: VideoRecorder[] = [];
  const open = async (stream: StreamDescription): Promise<FrameSink[]> => {
    const sinks: FrameSink[] = [];
    if (options.window) {
      const window = await openWindow(`camstream: ${stream.source ?? 'stream'} (${options.from})`);
      void window.closed.then(() => {
        options.log('window closed: stopping');
        options.stop();
      });
      sinks.push(window);
    }
    if (options.record) {
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
  const report = () => recorders.map((r, i) => `recorded ${r.writtenFrames} frames to ${numbered(options.record!, i)} (${r.droppedFrames} dropped: the recorder fell behind)`);
  return { open, report };
}

/** out.avi, out-2.avi, out-3.avi, ... */
function numbered(file: string, index: number): string {
  if (index === 0) return file;
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}-${index + 1}${ext}`;
}
