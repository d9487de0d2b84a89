/**
 * Soak test: one real sender PROCESS and receiver PROCESSES that join and leave at random for a
 * long time, on 127.0.0.1 only. Not part of the test run.
 *
 * Run from the workspace root:
 *
 *   npx nx run e2e:soak -- --minutes 10 --receivers 4 --size 1280x720 --codec jpeg --fps 30
 *
 * or without nx:
 *
 *   TS_NODE_PROJECT=packages/e2e/tsconfig.json node -r ts-node/register/transpile-only \
 *     packages/e2e/soak/soak.ts --minutes 10 --receivers 4
 *
 * Options: --minutes M (default 10), --receivers N most receivers at once (default 4), --size WxH
 * (default 1280x720), --codec jpeg|png|raw (default jpeg), --fps N (default 30), --seed N (default
 * random; printed, so a run can be repeated).
 *
 * Receivers (`camstream-receiver --stats-json --display off`) live 5 to 90 s each and then end
 * one of four ways: SIGTERM (orderly: bye, summary, exit 0), SIGKILL (the sender sees a dead
 * socket), --frames N (they leave by themselves), or they are "slow": an in-process client that
 * reads at most 8 frames a second, so the sender has to drop frames for it and declare them.
 * Every frame's sequence number is checked against the declared drops.
 *
 * At the end it prints: frames the sender sent (from its per-second JSON stats), per receiver the
 * frames received, declared drops, gaps outside declared drops, corrupt; the sender's RSS and open
 * file descriptors at the start, every minute and at the end; the most processes alive at once.
 * Exits 1 if any receiver saw a gap or corruption, if a process exited unexpectedly, or if a
 * process was left running; 0 otherwise. Ctrl-C ends the run early (with the same report).
 */
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { encodeMessage, MessageDecoder, ReceiverSession } from '@camstream/protocol';
import { freePort, seededRandom, startApp, type AppProcess } from '@camstream/testkit';

const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };

interface Options {
  minutes: number;
  receivers: number;
  size: string;
  codec: string;
  fps: number;
  seed: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      minutes: { type: 'string', default: '10' },
      receivers: { type: 'string', default: '4' },
      size: { type: 'string', default: '1280x720' },
      codec: { type: 'string', default: 'jpeg' },
      fps: { type: 'string', default: '30' },
      seed: { type: 'string' },
    },
  });
  const number = (name: string, text: string, min: number, max: number) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} ${text}: expected a number from ${min} to ${max}`);
    return n;
  };
  if (!/^\d+x\d+$/.test(values.size)) throw new Error(`--size ${values.size}: expected WIDTHxHEIGHT`);
  if (!['jpeg', 'png', 'raw'].includes(values.codec)) throw new Error(`--codec ${values.codec}: expected jpeg, png or raw`);
  return {
    minutes: number('minutes', values.minutes, 0.1, 24 * 60),
    receivers: Math.floor(number('receivers', values.receivers, 1, 64)),
    size: values.size,
    codec: values.codec,
    fps: number('fps', values.fps, 1, 1000),
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : number('seed', values.seed, 0, 2 ** 32),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether any process of the group `pid` leads is still alive. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface Usage {
  label: string;
  rssMb: number;
  fds: number;
}

/** VmRSS and the number of open file descriptors of a process, from /proc. */
function usageOf(pid: number, label: string): Usage {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return { label, rssMb: Math.round((rssKb / 1024) * 10) / 10, fds: readdirSync(`/proc/${pid}/fd`).length };
}

type Ending = 'SIGTERM' | 'SIGKILL' | 'frames' | 'slow';

interface Figures {
  frames: number;
  senderDropped: number;
  gaps: number;
  corrupt: number;
}

interface ReceiverRun {
  name: string;
  /** How it was planned to end; at the end of the run the ones still alive get SIGTERM. */
  ending: Ending;
  /** The signal it was sent, if any. */
  signalled?: 'SIGTERM' | 'SIGKILL';
  startedAt: number;
  lifetimeMs: number;
  endedAt?: number;
  /** A receiver process (every ending but 'slow'). */
  app?: AppProcess;
  /** The in-process slow client. */
  slow?: SlowClient;
  /** Set once it is gone. */
  exit?: string;
  /** Whether the way it ended was the one asked for. */
  expectedExit?: boolean;
  figures?: Figures;
}

/**
 * A receiver that reads slowly: at most one frame per 125 ms tick (8 fps at most) and then
 * nothing until the next tick, so its socket backs up and the sender must keep only the latest
 * frame for it and declare the ones it skipped. Checks every sequence number.
 */
class SlowClient {
  /** The protocol's receiver side: checks every frame and acknowledges it, as a receiver must. */
  private readonly session: ReceiverSession;
  frames = 0;
  senderDropped = 0;
  gaps = 0;
  corrupt = 0;
  closed = false;
  error: string | undefined;
  private readonly socket: net.Socket;
  private readonly timer: NodeJS.Timeout;
  private readonly decoder = new MessageDecoder();
  private framesThisTick = 0;

  constructor(port: number, name: string) {
    this.session = new ReceiverSession({ name });
    this.socket = net.connect({ host: '127.0.0.1', port }, () => {
      this.socket.write(encodeMessage(this.session.hello()).head);
    });
    this.socket.on('error', (error) => (this.error ??= error.message));
    this.socket.on('close', () => {
      this.closed = true;
      clearInterval(this.timer);
    });
    this.socket.on('data', (chunk: Buffer) => {
      try {
        for (const message of this.decoder.push(chunk, undefined, performance.now())) {
          for (const event of this.session.receive(message)) {
            if (event.type === 'send') this.socket.write(encodeMessage(event.header).head);
            else if (event.type === 'frame') {
              this.frames++;
              this.framesThisTick++;
              this.senderDropped += event.declaredDrops;
              this.gaps += event.undeclaredGap;
            } else if (event.type === 'end' && event.end.kind !== 'left') {
              this.error ??= 'reason' in event.end ? `${event.end.kind}: ${event.end.reason}` : `failed: ${event.end.error.message}`;
            }
          }
        }
      } catch (error) {
        this.corrupt++;
        this.error ??= (error as Error).message;
        this.socket.destroy();
      }
      if (this.framesThisTick > 0) this.socket.pause();
    });
    this.timer = setInterval(() => {
      this.framesThisTick = 0;
      this.socket.resume();
    }, 125);
  }

  figures(): Figures {
    return { frames: this.frames, senderDropped: this.senderDropped, gaps: this.gaps, corrupt: this.corrupt };
  }

  /**
   * Says bye and waits (bounded) for the socket to close. Leaving through the session: it then
   * acknowledges none of the frames still arriving (an ack after our end would be a write after end).
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    if (!this.closed) {
      const bye = this.session.leave('soak: slow client leaving').find((event) => event.type === 'send');
      if (bye) this.socket.end(encodeMessage(bye.header).head);
      else this.socket.end();
      this.socket.resume();
      const deadline = Date.now() + 3000;
      while (!this.closed && Date.now() < deadline) await sleep(20);
      this.socket.destroy();
    }
  }
}

/** The receiver's latest cumulative figures: its summary line if it printed one, else its last interval line. */
function figuresOf(app: AppProcess): Figures | undefined {
  const line = app.stdoutLines.findLast((l) => l.includes('"kind":"summary"')) ?? app.stdoutLines.findLast((l) => l.includes('"kind":"interval"'));
  if (!line) return undefined;
  const s = JSON.parse(line) as Figures;
  return { frames: s.frames, senderDropped: s.senderDropped, gaps: s.gaps, corrupt: s.corrupt };
}

function describeExit(status: { code: number | null; signal: string | null }): string {
  return status.signal ? `signal ${status.signal}` : `code ${status.code}`;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const random = seededRandom(options.seed);
  const log = (line: string) => process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  log(
    `${options.minutes} min, up to ${options.receivers} receivers, ${options.size} ${options.codec} @ ${options.fps} fps, seed ${options.seed}`,
  );

  const port = await freePort();
  const sender = startApp(
    'sender',
    ['--source', 'test', '--size', options.size, '--fps', String(options.fps), '--codec', options.codec, '--port', String(port), '--host', '127.0.0.1', '--max-viewers', String(options.receivers + 4), '--stats-json'],
    { env: headless },
  );
  await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 60_000 });
  log(`sender pid ${sender.pid} listening on 127.0.0.1:${port}`);
  const usage: Usage[] = [usageOf(sender.pid, 'start')];

  const runs: ReceiverRun[] = [];
  const live = () => runs.filter((r) => r.exit === undefined);
  let maxProcesses = 1;
  let maxReceivers = 0;
  let count = 0;
  let stopping = false;
  process.once('SIGINT', () => {
    log('SIGINT: finishing early');
    stopping = true;
  });

  const started = Date.now();
  const deadline = started + options.minutes * 60_000;
  let nextSample = started + 60_000;

  const spawn = () => {
    const n = ++count;
    const roll = random();
    const ending: Ending = roll < 0.35 ? 'SIGTERM' : roll < 0.65 ? 'SIGKILL' : roll < 0.85 ? 'frames' : 'slow';
    const lifetimeMs = Math.round(5000 + random() * 85_000);
    const name = `soak-${ending === 'slow' ? 'slow' : 'r'}${n}`;
    const run: ReceiverRun = { name, ending, startedAt: Date.now(), lifetimeMs };
    if (ending === 'slow') {
      run.slow = new SlowClient(port, name);
    } else {
      const frames = ending === 'frames' ? ['--frames', String(Math.max(1, Math.round((lifetimeMs / 1000) * options.fps * 0.5)))] : [];
      run.app = startApp('receiver', ['--host', '127.0.0.1', '--port', String(port), '--display', 'off', '--stats-json', '--name', name, ...frames], { env: headless });
      void run.app.exited.then((status) => {
        run.endedAt = Date.now();
        run.exit = `${describeExit(status)}${run.signalled ? ` (sent ${run.signalled})` : ' (by itself)'}`;
        run.figures = figuresOf(run.app!);
        // Receivers asked to stop (SIGTERM) or to leave after N frames exit 0; SIGKILL is SIGKILL.
        run.expectedExit = run.signalled === 'SIGKILL' ? status.signal === 'SIGKILL' : status.code === 0;
        if (!run.signalled) log(`- ${name} left by itself: ${run.exit}`);
      });
    }
    runs.push(run);
    log(`+ ${name} (${ending}, ${Math.round(lifetimeMs / 1000)} s)${run.app ? ` pid ${run.app.pid}` : ''}`);
  };

  const end = async (run: ReceiverRun, finalRound = false) => {
    if (run.slow) {
      await run.slow.close();
      run.figures = run.slow.figures();
      run.endedAt = Date.now();
      run.exit = run.slow.error && !/^bye/.test(run.slow.error) ? `closed (${run.slow.error})` : 'closed';
      run.expectedExit = run.slow.corrupt === 0;
      return;
    }
    run.signalled = finalRound || run.ending !== 'SIGKILL' ? 'SIGTERM' : 'SIGKILL';
    run.app!.signal(run.signalled);
    await run.app!.waitForExit(15_000).catch(() => run.app!.kill());
    await sleep(300); // let the exit handler above record it
  };

  while (Date.now() < deadline && !stopping) {
    const now = Date.now();
    for (const run of live()) {
      if (now - run.startedAt > run.lifetimeMs || (run.slow?.closed ?? false)) {
        log(`- ${run.name} (${run.ending})`);
        await end(run);
      }
    }
    if (live().length < options.receivers && random() < 0.4) spawn();
    maxProcesses = Math.max(maxProcesses, 1 + live().filter((r) => r.app).length);
    maxReceivers = Math.max(maxReceivers, live().length);
    if (sender.exitedWith) {
      log(`the sender exited (${describeExit(sender.exitedWith)}): stopping`);
      break;
    }
    if (now >= nextSample) {
      const sample = usageOf(sender.pid, `${Math.round((now - started) / 60_000)} min`);
      usage.push(sample);
      log(`sender RSS ${sample.rssMb} MB, ${sample.fds} fds; ${live().length} receivers live`);
      nextSample += 60_000;
    }
    await sleep(1000);
  }

  log('ending every receiver');
  for (const run of live()) {
    // At the end, orderly: a receiver still running is asked to stop.
    await end(run, true);
  }
  await sleep(2000); // the sender notices the last ones leave
  const senderAlive = !sender.exitedWith;
  if (senderAlive) usage.push(usageOf(sender.pid, 'end (receivers gone)'));
  sender.signal('SIGTERM');
  const senderExit = await sender.waitForExit(15_000).catch(async () => sender.kill());

  // Frames the sender encoded and sent: its per-second JSON lines give fps over ~1 s each (its
  // last line, kind "summary", covers the whole run and has no per-name drops).
  const senderStats = sender.stdoutLines
    .filter((l) => l.includes('"kind":"interval"'))
    .map((l) => JSON.parse(l) as { fps: number; dropped: Record<string, number> });
  const framesSent = Math.round(senderStats.reduce((sum, s) => sum + s.fps, 0));
  const senderDrops = new Map<string, number>();
  for (const s of senderStats) for (const [name, dropped] of Object.entries(s.dropped)) senderDrops.set(name, dropped);

  const leftovers = [sender, ...runs.flatMap((r) => (r.app ? [r.app] : []))].filter((app) => groupAlive(app.pid));
  const slowOpen = runs.filter((r) => r.slow && !r.slow.closed);

  const out: string[] = [];
  out.push('', '=== soak report ===');
  out.push(`duration: ${((Date.now() - started) / 60_000).toFixed(1)} min; ${options.size} ${options.codec} @ ${options.fps} fps; up to ${options.receivers} receivers; seed ${options.seed}`);
  out.push(`sender: ~${framesSent} frames encoded and sent (sum of its per-second fps), exit ${describeExit(senderExit)}`);
  out.push(`receivers: ${runs.length} started (${(['SIGTERM', 'SIGKILL', 'frames', 'slow'] as const).map((e) => `${runs.filter((r) => r.ending === e).length} ${e}`).join(', ')})`);
  out.push('name            planned  lived  exit                           frames  declared drops  (sender says)  gaps  corrupt');
  for (const r of runs) {
    const f = r.figures ?? { frames: 0, senderDropped: 0, gaps: 0, corrupt: 0 };
    out.push(
      `${r.name.padEnd(15)} ${r.ending.padEnd(8)} ${`${Math.round(((r.endedAt ?? Date.now()) - r.startedAt) / 1000)} s`.padStart(5)}  ${(r.exit ?? '?').padEnd(30)} ${String(f.frames).padStart(7)}  ${String(f.senderDropped).padStart(14)}  ${String(senderDrops.get(r.name) ?? '-').padStart(13)}  ${String(f.gaps).padStart(4)}  ${String(f.corrupt).padStart(7)}${r.figures ? '' : '  (no stats)'}`,
    );
  }
  const total = runs.reduce(
    (t, r) => ({
      frames: t.frames + (r.figures?.frames ?? 0),
      senderDropped: t.senderDropped + (r.figures?.senderDropped ?? 0),
      gaps: t.gaps + (r.figures?.gaps ?? 0),
      corrupt: t.corrupt + (r.figures?.corrupt ?? 0),
    }),
    { frames: 0, senderDropped: 0, gaps: 0, corrupt: 0 },
  );
  out.push(`total: ${total.frames} frames received, ${total.senderDropped} declared drops, ${total.gaps} gaps outside declared drops, ${total.corrupt} corrupt`);
  out.push(`sender RSS / open fds: ${usage.map((u) => `${u.label}: ${u.rssMb} MB / ${u.fds}`).join('; ')}`);
  out.push(`most processes alive at once: ${maxProcesses} (the sender and receiver processes); most receivers at once: ${maxReceivers} (slow in-process clients included)`);
  const unexpected = runs.filter((r) => r.expectedExit === false);
  out.push(`unexpected exits: ${unexpected.length === 0 ? 'none' : unexpected.map((r) => `${r.name} (${r.exit})`).join(', ')}`);
  out.push(`left running: ${leftovers.length + slowOpen.length === 0 ? 'nothing' : [...leftovers.map((a) => `${a.name} pid ${a.pid}`), ...slowOpen.map((r) => r.name)].join(', ')}`);

  const failures: string[] = [];
  if (total.gaps > 0) failures.push(`${total.gaps} gaps outside declared drops`);
  if (total.corrupt > 0) failures.push(`${total.corrupt} corrupt`);
  if (leftovers.length + slowOpen.length > 0) failures.push('processes or sockets left running');
  if (unexpected.length > 0) failures.push(`${unexpected.length} unexpected exits`);
  if (!senderAlive || senderExit.code !== 0) failures.push(`the sender ${senderAlive ? `exited with ${describeExit(senderExit)} on SIGTERM` : 'died during the run'}`);
  out.push(failures.length === 0 ? 'RESULT: PASS' : `RESULT: FAIL (${failures.join('; ')})`);
  process.stdout.write(`${out.join('\n')}\n`);

  for (const app of leftovers) await app.kill();
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`soak: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  },
);
