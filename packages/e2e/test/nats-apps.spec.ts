import { connectNats, HEADER_SIGNATURE, type NatsLink } from '@camstream/nats';
import type { Msg } from '@nats-io/transport-node';
import { parsePrometheusText, startApp, startNatsCluster, startNatsServer, type AppProcess } from '@camstream/testkit';

// The apps over NATS, as processes against real nats-servers: the sender publishes each frame once
// (beside its TCP server), receivers watch one camera or every camera; a node of a cluster
// restarts under them; a signed camera's subject gets forged and replayed frames; a wrong
// password. The transport-level versions of these are in packages/nats/test.

const headless = { DISPLAY: undefined, WAYLAND_DISPLAY: undefined };
/** The requirement: frames resume within 5 s of a node restart. */
const RESUME_REQUIREMENT_MS = 5000;
const SENDER_ARGS = ['--source', 'test', '--size', '320x240', '--fps', '15', '--port', '0', '--stats-json'];

interface Figures {
  kind: string;
  camera: string;
  transport: string;
  frames: number;
  shown: number;
  gaps: number;
  corrupt: number;
  lostInTransport: number;
  refused: number;
  outages: number;
  state: string;
}

/** The receiver's newest figures of `camera` (--stats-json), if it printed any. */
function figuresOf(receiver: AppProcess, camera: string): Figures | undefined {
  for (let i = receiver.stdoutLines.length - 1; i >= 0; i--) {
    const line = receiver.stdoutLines[i]!;
    if (!line.startsWith('{')) continue;
    const figures = JSON.parse(line) as Figures;
    if (figures.camera === camera) return figures;
  }
  return undefined;
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resolves with the receiver's figures of `camera` once `condition` holds for them. */
function untilFigures(receiver: AppProcess, camera: string, condition: (figures: Figures) => boolean, what: string): Promise<Figures> {
  return until(() => {
    const figures = figuresOf(receiver, camera);
    return figures && condition(figures) ? figures : undefined;
  }, `${receiver.name} ${what}`);
}

it('the sender publishes each frame once, beside TCP; receivers of one camera and of every camera get every frame', async () => {
  await using server = await startNatsServer();
  await using sender = startApp('sender', [...SENDER_ARGS, '--nats', server.url, '--camera', 'porch', '--metrics', '0'], { env: headless });
  const port = /:(\d+)$/.exec(await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 }))![1]!;
  const metricsUrl = /metrics at (http:\/\/\S+)/.exec(await sender.waitForLine(/metrics at/, { stream: 'stderr' }))![1]!;
  await using one = startApp('receiver', ['--nats', server.url, '--camera', 'porch', '--display', 'off', '--stats-json'], { env: headless });
  await using every = startApp('receiver', ['--nats', server.url, '--camera', '*', '--display', 'off', '--stats-json'], { env: headless });
  await using tcp = startApp('receiver', [`127.0.0.1:${port}`, '--display', 'off', '--stats-json'], { env: headless });

  const fromOne = await untilFigures(one, 'porch', (f) => f.frames >= 45, 'to get 45 frames of porch');
  const fromEvery = await untilFigures(every, 'porch', (f) => f.frames >= 45, 'to get 45 frames of porch');
  await untilFigures(tcp, `127.0.0.1:${port}`, (f) => f.frames >= 45, 'to get 45 frames over TCP');
  for (const figures of [fromOne, fromEvery]) {
    expect(figures).toMatchObject({ transport: 'nats', state: 'live', gaps: 0, corrupt: 0, lostInTransport: 0, refused: 0 });
  }
  expect(one.stderrLines.join('\n')).toMatch(/NATS camera porch: test pattern 320x240 jpeg @ 15 fps/);

  // Once per frame, whatever the number of subscribers: the server got each frame once from the
  // sender (plus an announcement every 2 s and a describe reply per receiver) and sent it to both.
  // The sender's figures come once a second: one line printed before the server's snapshot and
  // one after it bound what the server can have counted.
  const publishedAsOfLine = (from: number) => until(() => {
    const line = sender.stdoutLines.slice(from).findLast((l) => l.includes('"nats"'));
    return line ? (JSON.parse(line) as { nats: { framesPublished: number } }).nats.framesPublished : undefined;
  }, 'the sender\'s NATS figures');
  const before = await publishedAsOfLine(0);
  const linesBefore = sender.stdoutLines.length;
  const connz = await server.connz();
  const senderConnection = connz.connections.find((c) => c.name === 'camstream-sender porch')!;
  const published = await publishedAsOfLine(linesBefore);
  expect(senderConnection.in_msgs).toBeLessThan(published * 1.2 + 10);
  expect(senderConnection.in_msgs).toBeGreaterThanOrEqual(before);
  const varz = await server.varz();
  expect(varz.out_msgs).toBeGreaterThanOrEqual(2 * published);

  // The sender's /metrics counts the same frames.
  const families = await parsePrometheusText(await (await fetch(metricsUrl)).text());
  const natsPublished = families.find((f) => f.name === 'camstream_sender_nats_frames_published')!;
  expect(natsPublished.type).toBe('counter');
  expect(natsPublished.samples[0]).toMatchObject({ labels: { camera: 'porch' } });
  expect(natsPublished.samples[0]!.value).toBeGreaterThanOrEqual(published);
  expect(families.find((f) => f.name === 'camstream_sender_encode_seconds')?.type).toBe('histogram');
  expect(families.find((f) => f.name === 'camstream_sender_viewer_frames_sent')?.samples).toHaveLength(1);
});

it('a node of a 2-node cluster restarts under the sender: everyone reconnects, frames resume, the outage is reported, no gaps', async () => {
  await using cluster = await startNatsCluster(2);
  const [a, b] = cluster.servers;
  await using sender = startApp('sender', [...SENDER_ARGS, '--nats', a!.url, '--camera', 'lobby'], { env: headless });
  await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
  const receivers = [
    startApp('receiver', ['--nats', b!.url, '--camera', 'lobby', '--display', 'off', '--stats-json'], { env: headless }),
    startApp('receiver', ['--nats', b!.url, '--camera', '*', '--display', 'off', '--stats-json'], { env: headless }),
  ];
  try {
    for (const receiver of receivers) await untilFigures(receiver, 'lobby', (f) => f.frames >= 30, 'to get 30 frames');
    const before = receivers.map((receiver) => figuresOf(receiver, 'lobby')!.frames);

    await a!.restart();
    await sender.waitForLine(/NATS: reconnected to/, { stream: 'stderr' });
    for (const [i, receiver] of receivers.entries()) {
      const line = await receiver.waitForLine(/outage of [\d.]+ s over \(/, { stream: 'stderr' });
      const [, seconds, cause] = /outage of ([\d.]+) s over \(([a-z-]+)\)/.exec(line)!;
      expect(cause).toBe('sender-reconnected');
      expect(Number(seconds) * 1000).toBeLessThan(RESUME_REQUIREMENT_MS);
      const after = await untilFigures(receiver, 'lobby', (f) => f.frames >= before[i]! + 30 && f.outages >= 1, 'to get 30 more frames after the outage');
      // Whatever went missing is accounted for: declared by the sender, or lost with its connection.
      expect(after).toMatchObject({ gaps: 0, corrupt: 0, state: 'live' });
    }
  } finally {
    await Promise.all(receivers.map((receiver) => receiver.kill()));
  }
});

it('a signed camera: forged, replayed and unsigned frames on its subject are refused and counted by the receiver', async () => {
  await using server = await startNatsServer();
  const secret = { CAMSTREAM_SECRET: 'a shared secret for the porch' };
  await using sender = startApp('sender', [...SENDER_ARGS, '--nats', server.url, '--camera', 'porch'], { env: { ...headless, ...secret } });
  await sender.waitForLine(/publishing camera porch to NATS at .* \(every message signed\)/, { stream: 'stderr', timeoutMs: 30_000 });
  await using receiver = startApp('receiver', ['--nats', server.url, '--camera', 'porch', '--display', 'off', '--stats-json', '--http', '0'], { env: { ...headless, ...secret } });
  const url = /browser viewer at (http:\/\/\S+)/.exec(await receiver.waitForLine(/browser viewer at/, { stream: 'stderr', timeoutMs: 30_000 }))![1]!;
  await untilFigures(receiver, 'porch', (f) => f.frames >= 15, 'to get 15 signed frames');

  // Someone else on the bus: a genuine frame copied as it went by, then sent again, altered, and unsigned.
  let intruder: NatsLink | undefined;
  try {
    intruder = await connectNats({ url: server.url, env: {}, name: 'intruder' });
    const genuine = await new Promise<Msg>((resolve) => {
      const subscription = intruder!.connection.subscribe('camstream.porch.frames', {
        callback: (error, msg) => {
          if (error) return;
          subscription.unsubscribe();
          resolve(msg);
        },
      });
    });
    intruder.connection.publish(genuine.subject, genuine.data, { headers: genuine.headers! });
    const altered = Uint8Array.from(genuine.data);
    altered[altered.length - 10]! ^= 0xff;
    intruder.connection.publish(genuine.subject, altered, { headers: genuine.headers! });
    genuine.headers!.delete(HEADER_SIGNATURE);
    intruder.connection.publish(genuine.subject, genuine.data, { headers: genuine.headers! });
    await intruder.connection.flush();
  } finally {
    await intruder?.close();
  }

  const figures = await untilFigures(receiver, 'porch', (f) => f.refused >= 3, 'to count 3 refused messages');
  expect(figures).toMatchObject({ refused: 3, gaps: 0, corrupt: 0 });
  const log = receiver.stderrLines.join('\n');
  expect(log).toMatch(/refused a message \(replayed\): frame \d+ is not newer than frame \d+/);
  expect(log).toMatch(/refused a message \(bad-signature\)/);
  expect(log).toMatch(/refused a message \(unsigned\)/);
  const families = await parsePrometheusText(await (await fetch(`${url}metrics`)).text());
  const refused = families.find((f) => f.name === 'camstream_receiver_refused')!;
  expect(Object.fromEntries(refused.samples.map((s) => [s.labels['reason'], s.value]))).toEqual({ unsigned: 1, 'bad-signature': 1, replayed: 1, 'stale-epoch': 0 });
  // The real frames went on.
  const more = figures.frames + 15;
  await untilFigures(receiver, 'porch', (f) => f.frames >= more, 'to get 15 more signed frames');
});

it('NATS credentials pass through (URL or environment); a wrong password fails with one clear message', async () => {
  await using server = await startNatsServer({ user: 'alice', password: 'right horse' });
  const where = `127.0.0.1:${server.port}`;
  await using sender = startApp('sender', [...SENDER_ARGS, '--nats', `nats://alice:right%20horse@${where}`, '--camera', 'gate'], { env: headless });
  await sender.waitForLine(/^LISTENING AT: /, { stream: 'stdout', timeoutMs: 30_000 });
  await using receiver = startApp('receiver', ['--nats', `nats://${where}`, '--camera', 'gate', '--display', 'off', '--stats-json'], {
    env: { ...headless, NATS_USER: 'alice', NATS_PASSWORD: 'right horse' },
  });
  await untilFigures(receiver, 'gate', (f) => f.frames >= 5, 'to get frames with the password from the environment');

  const wrongSender = startApp('sender', [...SENDER_ARGS, '--nats', `nats://alice:wrong@${where}`, '--camera', 'gate'], { env: headless });
  expect(await wrongSender.waitForExit(30_000)).toEqual({ code: 1, signal: null });
  expect(wrongSender.stderrLines.filter((line) => /refused|NATS/.test(line))).toEqual([
    `camstream-sender: NATS at ${where} refused the credentials: authorization violation (user "alice" from the URL)`,
  ]);
  expect(wrongSender.stdoutLines.join('\n')).not.toMatch(/LISTENING AT/);

  const wrongReceiver = startApp('receiver', ['--nats', `nats://${where}`, '--camera', 'gate', '--display', 'off'], { env: { ...headless, NATS_USER: 'alice', NATS_PASSWORD: 'wrong' } });
  expect(await wrongReceiver.waitForExit(30_000)).toEqual({ code: 1, signal: null });
  expect(wrongReceiver.stderrLines.filter((line) => /refused|NATS/.test(line))).toEqual([
    `camstream-receiver: NATS at ${where} refused the credentials: authorization violation (user "alice" from NATS_USER)`,
  ]);
});
