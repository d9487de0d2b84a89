import { execFile } from 'node:child_process';
import { FfmpegNotFoundError, FfprobeError } from './errors';
import { defaultFfprobePath } from './ffmpeg-process';

export interface VideoFileInfo {
  /** ffprobe's container names, e.g. "mov,mp4,m4a,3gp,3g2,mj2". */
  readonly formatName: string;
  readonly codec: string;
  /** e.g. "Constrained Baseline", "High". */
  readonly profile: string | undefined;
  readonly width: number;
  readonly height: number;
  readonly pixelFormat: string | undefined;
  /** Frames counted by reading the whole stream (not the container's claim). */
  readonly frames: number;
  /** The container's duration in seconds. */
  readonly durationS: number;
}

/**
 * What ffprobe finds in a video file's first video stream, counting its frames by reading them
 * all (-count_frames). Rejects with FfprobeError when the file is not a readable video.
 */
export function probeVideoFile(path: string, ffprobePath: string = defaultFfprobePath()): Promise<VideoFileInfo> {
  const args = [
    '-v', 'error', '-count_frames', '-select_streams', 'v:0',
    '-show_entries', 'stream=codec_name,profile,width,height,pix_fmt,nb_read_frames:format=format_name,duration',
    '-of', 'json', path,
  ];
  return new Promise((resolve, reject) => {
    execFile(ffprobePath, args, { maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new FfmpegNotFoundError(ffprobePath, error));
      if (error) return reject(new FfprobeError(`ffprobe cannot read ${path}: ${stderr.trim().split('\n').slice(-2).join(' | ') || error.message}`, { cause: error }));
      try {
        const parsed = JSON.parse(stdout) as { streams?: Array<Record<string, string | number>>; format?: Record<string, string> };
        const stream = parsed.streams?.[0];
        if (!stream) return reject(new FfprobeError(`${path} has no video stream`));
        resolve({
          formatName: String(parsed.format?.['format_name'] ?? ''),
          codec: String(stream['codec_name']),
          profile: stream['profile'] === undefined ? undefined : String(stream['profile']),
          width: Number(stream['width']),
          height: Number(stream['height']),
          pixelFormat: stream['pix_fmt'] === undefined ? undefined : String(stream['pix_fmt']),
          frames: Number(stream['nb_read_frames']),
          durationS: Number(parsed.format?.['duration']),
        });
      } catch (parseError) {
        reject(new FfprobeError(`ffprobe's answer about ${path} is not JSON`, { cause: parseError }));
      }
    });
  });
}
