/**
 * @camstream/testkit: the only fakes in camstream. Fake cameras that stamp a readable frame
 * number on every image, loopback and misbehaving-network helpers, and helpers that start the
 * real apps (and Xvfb, and nats-server) and always clean them up; a Prometheus text parser (the
 * reference Python one). For tests, benchmarks and scripts only.
 *
 * ChaosProxy misbehaves on purpose (random chunking, stalls, cuts) and emulates slow links
 * (rate limit with small buffers, one-way delay, rate schedules); bin/chaos-proxy runs it as a
 * process (--help lists its options).
 */
export { renderFakeFrame, readFrameNumber, imageDifference } from './fake-frames';
export { FakeCamera, PregeneratedSource } from './fake-camera';
export type { FakeCameraOptions, PregeneratedSourceOptions } from './fake-camera';
export { listenOnFreePort, freePort, memoryDuplexPair, stallingClient } from './loopback';
export type { StallingClient } from './loopback';
export { ChaosProxy, seededRandom } from './chaos-proxy';
export type { ChaosProxyOptions, ConnectionStats, Direction, LinkOptions, LinkPhase, LinkUsage, RateChange } from './chaos-proxy';
export { parseRate, parseSchedule } from './chaos-proxy-cli';
export { startApp, startProcess, stopAllProcesses, processExists, AppProcess, workspaceRoot } from './processes';
export type { AppName, ExitStatus, StartAppOptions, StartProcessOptions, WaitForLineOptions } from './processes';
export { startXvfb, sendKey } from './xvfb';
export { startNatsServer, startNatsCluster, natsServerBinary, NatsServer, NatsCluster } from './nats-server';
export type { NatsServerOptions, NatsVarz, NatsConnz, NatsConnectionInfo } from './nats-server';
export type { XvfbOptions, XvfbServer } from './xvfb';
export { parsePrometheusText } from './prometheus';
export type { ParsedFamily, ParsedSample } from './prometheus';
