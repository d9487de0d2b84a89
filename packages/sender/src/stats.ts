import { formatBytes, formatMbps } from './format';
import type { NatsFigures } from './nats-publishing';
import type { TcpViewer } from './tcp-viewer';
import type { TutorialViewer } from './tutorial-viewer';

/** What the stats read of a camstream receiver. */
export type CamstreamViewerFigures = Pick<
  TcpViewer,
  'id' | 'name' | 'sent' | 'dropped' | 'bytesSent' | 'rung' | 'inFlightBytes' | 'inFlightFrames' | 'windowBytes' | 'capacityBytesPerSecond' | 'describeRung'
>;

/** What the stats read of a client of the tutorial's wire: no rungs, no window, no acks. */
export type TutorialViewerFigures = Pick<TutorialViewer, 'wire' | 'id' | 'name' | 'sent' | 'dropped' | 'bytesSent' | 'queuedBytes'>;

export type ViewerFigures = CamstreamViewerFigures | TutorialViewerFigures;

function isTutorial(viewer: ViewerFigures): viewer is TutorialViewerFigures {
  return 'wire' in viewer && viewer.wire === 'tutorial';
}

interface Counted {
  sent: number;
  dropped: number;
  bytes: number;
}

/**
 * Once a second while someone watches: frames published, encode time, and per viewer its rung,
 * the frames and bytes sent to it and dropped for it in that second, its window and the link
 * measured from its acks. While nobody watches it says so once, then nothing until someone joins.
 */
export class SenderStats {
  private frames = 0;
  private encodeMs = 0;
  private totalFrames = 0;
  private totalEncodeMs = 0;
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;
  private last = performance.now();
  /** Each viewer's counters at the previous report. */
  private counted = new Map<ViewerFigures, Counted>();
  /** Whether the last report was that nobody watches. */
  private saidIdle = false;
  /** The NATS side's figures, when the sender publishes there too. */
  private nats: (() => NatsFigures) | undefined;
  private natsCounted = { published: 0, dropped: 0, bytes: 0 };

  constructor(
    private readonly server: { readonly viewerList: readonly ViewerFigures[] },
    private readonly format: 'text' | 'json',
    quiet: boolean,
    private readonly write: (line: string) => void = (line) => void process.stdout.write(line),
  ) {
    this.timer = setInterval(() => this.report(), 1000);
    this.timer.unref();
    if (quiet) clearInterval(this.timer);
  }

  /** Report the NATS side too: one more line (JSON: a `nats` object) per report. */
  showNats(figures: () => NatsFigures): void {
    this.nats = figures;
  }

  /** A frame was published (encoded for every rung in use). */
  published(encodeMs: number): void {
    this.frames++;
    this.encodeMs += encodeMs;
    this.totalFrames++;
    this.totalEncodeMs += encodeMs;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Prints the figures since the last report (the timer calls it once a second). */
  report(): void {
    const now = performance.now();
    const seconds = (now - this.last) / 1000;
    this.last = now;
    const viewers = this.server.viewerList;
    const idle = viewers.length === 0 && this.frames === 0;
    if (idle && this.saidIdle) return;
    this.saidIdle = idle;
    const counted = new Map<ViewerFigures, Counted>();
    const perViewer = viewers.map((v) => {
      const before = this.counted.get(v) ?? { sent: 0, dropped: 0, bytes: 0 };
      counted.set(v, { sent: v.sent, dropped: v.dropped, bytes: v.bytesSent });
      return {
        viewer: v,
        frames: v.sent - before.sent,
        mbps: round(((v.bytesSent - before.bytes) * 8) / seconds / 1e6, 2),
        dropped: v.dropped - before.dropped,
      };
    });
    this.counted = counted;
    const figures = {
      fps: round(this.frames / seconds, 1),
      mbps: round(perViewer.reduce((sum, p) => sum + p.mbps, 0), 2),
      encodeMs: this.frames ? round(this.encodeMs / this.frames, 2) : 0,
      viewers: viewers.length,
    };
    this.frames = this.encodeMs = 0;
    const nats = this.natsInterval(seconds);
    if (this.format === 'json') {
      this.write(
        `${JSON.stringify({
          kind: 'interval',
          time: new Date().toISOString(),
          ...figures,
          dropped: Object.fromEntries(viewers.map((v) => [v.name, v.dropped])),
          perViewer: perViewer.map((p) => ({ ...viewerJson(p.viewer), frames: p.frames, mbps: p.mbps, droppedNow: p.dropped })),
          ...(nats ? { nats } : {}),
        })}\n`,
      );
    } else if (idle) {
      this.write('waiting for receivers\n');
    } else {
      const drops = viewers.reduce((sum, v) => sum + v.dropped, 0);
      const lines = [
        `sending ${figures.fps.toFixed(1)} fps, encode ${figures.encodeMs.toFixed(2)} ms, ${figures.viewers} viewer(s), ${figures.mbps.toFixed(2)} Mbit/s in all, ${drops} frames dropped\n`,
        ...perViewer.map(({ viewer, frames, mbps, dropped }) =>
          isTutorial(viewer)
            ? `sending to #${viewer.id} (${viewer.name}) on the tutorial wire: ${frames} frames, ${mbps.toFixed(2)} Mbit/s, ${dropped} dropped, ` +
              `queued ${formatBytes(viewer.queuedBytes)} in its socket\n`
            : `sending to #${viewer.id} (${viewer.name}) on ${viewer.describeRung(viewer.rung)}: ${frames} frames, ${mbps.toFixed(2)} Mbit/s, ${dropped} dropped, ` +
              `in flight ${formatBytes(viewer.inFlightBytes)} of ${formatBytes(viewer.windowBytes)}, link ${viewer.capacityBytesPerSecond === undefined ? 'not measured yet' : formatMbps(viewer.capacityBytesPerSecond)}\n`,
        ),
      ];
      if (nats) {
        lines.push(
          `nats camera ${nats.camera}: ${nats.frames} frames published, ${nats.mbps.toFixed(2)} Mbit/s, ${nats.droppedNow} dropped ` +
            `(${nats.framesDropped} in all, ${nats.framesPublished} published), ${nats.connected ? `connected to ${nats.server}` : 'DISCONNECTED'}, ${nats.reconnects} reconnects\n`,
        );
      }
      for (const line of lines) this.write(line);
    }
  }

  /** The NATS figures since the last report, and in all. */
  private natsInterval(seconds: number) {
    if (!this.nats) return undefined;
    const figures = this.nats();
    const before = this.natsCounted;
    this.natsCounted = { published: figures.framesPublished, dropped: figures.framesDropped, bytes: figures.frameBytes };
    return {
      camera: figures.camera,
      frames: figures.framesPublished - before.published,
      mbps: round(((figures.frameBytes - before.bytes) * 8) / seconds / 1e6, 2),
      droppedNow: figures.framesDropped - before.dropped,
      framesPublished: figures.framesPublished,
      framesDropped: figures.framesDropped,
      connected: figures.connected,
      server: figures.server,
      reconnects: figures.reconnects,
    };
  }

  /** In JSON, one last line for the whole run (the text summary is the viewers' "left" lines). */
  summary(): void {
    if (this.format !== 'json') return;
    const seconds = (performance.now() - this.started) / 1000;
    this.write(
      `${JSON.stringify({
        kind: 'summary',
        time: new Date().toISOString(),
        seconds: round(seconds, 1),
        frames: this.totalFrames,
        fps: round(this.totalFrames / seconds, 1),
        encodeMs: this.totalFrames ? round(this.totalEncodeMs / this.totalFrames, 2) : 0,
        perViewer: this.server.viewerList.map(viewerJson),
        ...(this.nats ? { nats: this.nats() } : {}),
      })}\n`,
    );
  }
}

function viewerJson(v: ViewerFigures) {
  if (isTutorial(v)) return { id: v.id, name: v.name, wire: v.wire, sent: v.sent, dropped: v.dropped, queuedBytes: v.queuedBytes };
  const capacity = v.capacityBytesPerSecond;
  return {
    id: v.id,
    name: v.name,
    rung: v.rung,
    sent: v.sent,
    dropped: v.dropped,
    inFlightBytes: v.inFlightBytes,
    inFlightFrames: v.inFlightFrames,
    windowBytes: v.windowBytes,
    linkMbps: capacity === undefined ? null : round((capacity * 8) / 1e6, 1),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
