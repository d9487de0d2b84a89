import { spawnSync } from 'node:child_process';
import type { Display, RawImage } from '@camstream/media';
import { NoDisplayError } from './errors';
import { checkRawImage, wrapImage } from './images';
import { loadOpenCV } from './load-opencv';
import { connectionSetup, findCookie, parseDisplay, PROBE_SCRIPT, probeX11, type DisplayAddress, type DisplayStatus } from './x11';

export type { DisplayStatus } from './x11';

const DEFAULT_PROBE_TIMEOUT_MS = 1000;
/*
 * waitKey(1) is the only way to let HighGUI paint and deliver events, and with Qt it blocks
 * for about 2 ms even when nothing happens (3-4.5 ms when it paints a 720p/1080p image under
 * Xvfb). Pumping every 10 ms regardless kept an idle window at 24% of the event loop. So the
 * pump runs soon after a new image arrives (at most every 10 ms: up to 100 repaints a second)
 * and otherwise every 50 ms, which is plenty for keys and the close button (about 4%).
 */
const FRAME_PUMP_SPACING_MS = 10;
const IDLE_PUMP_INTERVAL_MS = 50;
const KEY_ESC = 27;
const CLOSE_KEYS = new Set(['q'.charCodeAt(0), 'Q'.charCodeAt(0), KEY_ESC]);

/**
 * Whether an X server would accept a window: DISPLAY is set and the server it names answers
 * the X11 connection setup (cookie from Xauthority included). Never guess here: cv.imshow
 * without a reachable display aborts the process (Qt), which no try/catch can stop.
 */
export async function probeDisplay(env: NodeJS.ProcessEnv = process.env, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<DisplayStatus> {
  const address = addressOf(env);
  if ('reason' in address) return address;
  return probeX11(address, connectionSetup(findCookie(address, env)), timeoutMs);
}

/**
 * Synchronous form of probeDisplay, for command-line decisions: the same probe, run in a
 * short-lived child process with spawnSync (Node has no synchronous sockets). Costs about
 * 40 ms when DISPLAY is set, nothing when it is not.
 */
export function hasDisplay(env: NodeJS.ProcessEnv = process.env, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): boolean {
  const address = addressOf(env);
  if ('reason' in address) return false;
  const setup = connectionSetup(findCookie(address, env)).toString('hex');
  const probe = spawnSync(process.execPath, ['-e', PROBE_SCRIPT, JSON.stringify([address.targets, setup, timeoutMs])], {
    env: {},
    stdio: 'ignore',
    timeout: timeoutMs + 5000,
  });
  return probe.status === 0;
}

function addressOf(env: NodeJS.ProcessEnv): DisplayAddress | { available: false; reason: string } {
  const display = env['DISPLAY'];
  if (!display) return { available: false, reason: 'DISPLAY is not set' };
  return parseDisplay(display) ?? { available: false, reason: `DISPLAY=${display} is not of the form [host]:N[.screen]` };
}

export interface WindowOptions {
  /** Let the person resize the window (the image is scaled); default: fixed to the image size. */
  resizable?: boolean;
  /** Show OpenCV's Qt toolbar (zoom, save) and status bar; default: just the image. */
  toolbar?: boolean;
}

export type WindowCloseReason = 'key' | 'window' | 'program' | 'error';

/**
 * Opens a window to show images in. Throws NoDisplayError (and never calls into OpenCV's GUI)
 * when there is no display. See OpenCVWindow for how it behaves.
 */
export async function openWindow(title: string, options: WindowOptions = {}): Promise<OpenCVWindow> {
  const status = await probeDisplay(process.env);
  if (!status.available) throw new NoDisplayError(`no display available (${status.reason}): cannot open the window "${title}"`);
  for (const window of openWindows) {
    if (window.title === title) throw new Error(`a window titled "${title}" is already open; OpenCV identifies windows by title`);
  }
  const cv = loadOpenCV();
  const flags = (options.resizable ? cv.WINDOW_NORMAL : cv.WINDOW_AUTOSIZE) | (options.toolbar ? cv.WINDOW_GUI_EXPANDED : cv.WINDOW_GUI_NORMAL);
  cv.namedWindow(title, flags);
  const window = new OpenCVWindow(title);
  openWindows.add(window);
  schedulePump(0);
  return window;
}

/**
 * An OpenCV HighGUI window. write() only records the newest image (latest wins, nothing
 * queues; images replaced before they were shown count in `droppedFrames`); a timer on the
 * event loop shows it soon after (within 10 ms) and pumps window events with waitKey(1), every
 * 50 ms while no new image comes. `closed` resolves when the person presses q, Q or Esc,
 * closes the window (WND_PROP_VISIBLE drops below 1), or the program calls close();
 * `closeReason` says which ('error' if showing an image threw; `error` has the exception).
 * Writes after that are ignored.
 *
 * OpenCV reports keys without saying which window had focus, so with several windows open a
 * q closes all of them. While open, the window keeps the process alive (its timer is ref'd):
 * a program awaiting `closed` must not exit just because nothing else is pending.
 */
export class OpenCVWindow implements Display {
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private latest: RawImage | undefined;
  /** Resolves the write() of `latest`. */
  private latestDone: (() => void) | undefined;
  private shown: RawImage | undefined;
  private seenVisible = false;
  private shownCount = 0;
  private droppedCount = 0;
  private reason: WindowCloseReason | undefined;
  private failure: unknown;

  constructor(readonly title: string) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** Images shown so far. */
  get shownFrames(): number {
    return this.shownCount;
  }

  /** Images replaced by a newer one before they could be shown. */
  get droppedFrames(): number {
    return this.droppedCount;
  }

  /** Why the window closed; undefined while open. */
  get closeReason(): WindowCloseReason | undefined {
    return this.reason;
  }

  /** Resolves when the window is done with the image: it is on the screen, was replaced, or the window closed. */
  write(image: RawImage): Promise<void> {
    if (this.reason) return Promise.resolve();
    checkRawImage(image, `window "${this.title}"`);
    if (this.latest !== this.shown) this.droppedCount++;
    this.releaseLatest();
    this.latest = image;
    const done = new Promise<void>((resolve) => (this.latestDone = resolve));
    schedulePump(lastPumpAt + FRAME_PUMP_SPACING_MS - performance.now());
    return done;
  }

  private releaseLatest(): void {
    this.latestDone?.();
    this.latestDone = undefined;
  }

  /** An image was written that is not on the screen yet. */
  get hasNewImage(): boolean {
    return this.latest !== undefined && this.latest !== this.shown;
  }

  async close(): Promise<void> {
    this.finish('program');
  }

  /** Called by the pump before it processes events. */
  showLatest(): void {
    const image = this.latest;
    if (!image || image === this.shown || this.reason) return;
    // imshow copies the pixels into the window's own buffer, so the wrapped Mat may go at once.
    loadOpenCV().imshow(this.title, wrapImage(image));
    this.releaseLatest();
    this.shown = image;
    this.shownCount++;
  }

  /** Called by the pump after waitKey, with the key it returned (-1 for none). */
  handleEvents(key: number): void {
    if (this.reason) return;
    if (key >= 0 && CLOSE_KEYS.has(key & 0xff)) return this.finish('key');
    const cv = loadOpenCV();
    // Only trust "not visible" once the window has been seen visible: before it is mapped,
    // some backends report 0 too.
    const visible = cv.getWindowProperty(this.title, cv.WND_PROP_VISIBLE) >= 1;
    if (visible) this.seenVisible = true;
    else if (this.seenVisible) this.finish('window');
  }

  /** Closes the window because showing it failed; `error` holds what went wrong. */
  fail(err: unknown): void {
    this.failure ??= err;
    this.finish('error');
  }

  /** What made the window close with reason 'error'. */
  get error(): unknown {
    return this.failure;
  }

  private finish(reason: WindowCloseReason): void {
    if (this.reason) return;
    this.reason = reason;
    this.releaseLatest();
    this.latest = undefined;
    this.shown = undefined;
    openWindows.delete(this);
    const cv = loadOpenCV();
    try {
      cv.destroyWindow(this.title);
      cv.waitKey(1); // HighGUI removes the window while processing events
    } catch {
      // already gone (closed by the person): nothing to destroy
    }
    stopPumpWhenIdle();
    this.resolveClosed();
  }
}

const openWindows = new Set<OpenCVWindow>();
let pumpTimer: NodeJS.Timeout | undefined;
let pumpDueAt = Infinity;
let lastPumpAt = -Infinity;

/**
 * One pump for all windows (waitKey is process-wide: one call serves every window), run at
 * most `delayMs` from now: an earlier request replaces a later one, never the reverse. The
 * timer is ref'd: an open window keeps the process alive (see OpenCVWindow).
 */
function schedulePump(delayMs: number): void {
  const dueAt = performance.now() + Math.max(0, delayMs);
  if (pumpTimer && pumpDueAt <= dueAt) return;
  if (pumpTimer) clearTimeout(pumpTimer);
  pumpDueAt = dueAt;
  pumpTimer = setTimeout(runPump, Math.max(0, delayMs));
}

function runPump(): void {
  pumpTimer = undefined;
  pumpDueAt = Infinity;
  lastPumpAt = performance.now();
  pumpWindows();
  if (openWindows.size === 0) return;
  const newImageWaiting = [...openWindows].some((window) => window.hasNewImage);
  schedulePump(newImageWaiting ? FRAME_PUMP_SPACING_MS : IDLE_PUMP_INTERVAL_MS);
}

function stopPumpWhenIdle(): void {
  if (openWindows.size > 0 || !pumpTimer) return;
  clearTimeout(pumpTimer);
  pumpTimer = undefined;
  pumpDueAt = Infinity;
}

function pumpWindows(): void {
  const cv = loadOpenCV();
  for (const window of [...openWindows]) guard(window, () => window.showLatest());
  const key = cv.waitKey(1);
  for (const window of [...openWindows]) guard(window, () => window.handleEvents(key));
}

/** An exception in a timer callback would take the process down: close that window instead. */
function guard(window: OpenCVWindow, step: () => void): void {
  try {
    step();
  } catch (err) {
    window.fail(err);
  }
}
