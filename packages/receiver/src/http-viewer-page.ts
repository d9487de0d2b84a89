/**
 * The browser viewer's page: one self-contained HTML document (inline CSS and JS, no external
 * assets) served at `/` by HttpViewer.
 *
 * How it gets pictures: fetch('stream.mjpg') and a small multipart reader on the response body
 * stream; each JPEG part is decoded with createImageBitmap and drawn to a <canvas> (latest-wins:
 * while one decodes, only the newest waiting part is kept). Reading the parts itself, rather than
 * pointing an <img> at the stream, lets the page count the frames it really shows and measure
 * capture -> display latency from each part's X-Capture-Time header. Browsers without streaming
 * fetch fall back to <img src="stream.mjpg">.
 *
 * How it gets figures: an EventSource on 'events': `stats` events (receiver stats + viewer status)
 * on every publishStats, `viewer` events (viewer count, age of the newest frame) once a second.
 */

export interface ViewerPageOptions {
  title: string;
  /** CSP nonce for the inline <style> and <script>. */
  nonce: string;
}

/** Frames shown in this tab are considered stalled after this long without a new one. */
export const STALL_AFTER_MS = 2000;

export function renderViewerPage({ title, nonce }: ViewerPageOptions): string {
  const safeTitle = escapeHtml(title);
  const safeNonce = escapeHtml(nonce);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${safeTitle} · camstream</title>
<style nonce="${safeNonce}">${PAGE_CSS}</style>
</head>
<body>
<header>
  <h1 id="title">${safeTitle}</h1>
  <span id="state" class="badge waiting" role="status" aria-live="polite">connecting…</span>
</header>
<main>
  <figure id="video-box">
    <canvas id="video" width="320" height="240" aria-label="live video of ${safeTitle}"></canvas>
    <div id="overlay" class="shown">waiting for the first frame…</div>
    <noscript><img src="stream.mjpg" alt="live video of ${safeTitle}"></noscript>
  </figure>
  <section id="panels">
    <div class="panel">
      <h2>Stream</h2>
      <dl>
        <dt>resolution</dt><dd id="stat-resolution">–</dd>
        <dt>frame</dt><dd id="stat-seq">–</dd>
        <dt>received</dt><dd><span id="stat-fps">–</span> fps</dd>
        <dt>decoded</dt><dd><span id="stat-decoded-fps">–</span> fps</dd>
        <dt>bitrate</dt><dd><span id="stat-mbps">–</span> Mbit/s</dd>
        <dt>frames total</dt><dd id="stat-frames">–</dd>
      </dl>
    </div>
    <div class="panel">
      <h2>Latency <small>capture → receiver</small></h2>
      <dl>
        <dt>p50</dt><dd><span id="stat-p50">–</span> ms</dd>
        <dt>p95</dt><dd><span id="stat-p95">–</span> ms</dd>
        <dt>p99</dt><dd><span id="stat-p99">–</span> ms</dd>
      </dl>
      <h2>Losses</h2>
      <dl>
        <dt>dropped by sender</dt><dd id="stat-dropped">–</dd>
        <dt>skipped</dt><dd id="stat-skipped">–</dd>
        <dt>gaps</dt><dd id="stat-gaps">–</dd>
        <dt>corrupt</dt><dd id="stat-corrupt">–</dd>
      </dl>
    </div>
    <div class="panel">
      <h2>This tab</h2>
      <dl>
        <dt>shown</dt><dd><span id="tab-fps">–</span> fps</dd>
        <dt>capture → display p50</dt><dd><span id="tab-p50">–</span> ms</dd>
        <dt>capture → display p95</dt><dd><span id="tab-p95">–</span> ms</dd>
        <dt>skipped by server</dt><dd id="tab-server-skipped">–</dd>
        <dt>skipped in tab</dt><dd id="tab-skipped">0</dd>
        <dt>viewers</dt><dd id="stat-viewers">–</dd>
      </dl>
    </div>
  </section>
</main>
<script nonce="${safeNonce}">${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const PAGE_CSS = `
:root { color-scheme: dark; --ok: #2fbf71; --bad: #e5484d; --warn: #f5a524; --dim: #8b949e; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #0d1117; color: #e6edf3; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; padding: .75rem 1rem; border-bottom: 1px solid #30363d; }
h1 { font-size: 1.2rem; margin: 0; overflow-wrap: anywhere; }
h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .06em; color: var(--dim); margin: .2rem 0 .4rem; }
h2 small { text-transform: none; letter-spacing: 0; }
main { display: flex; flex-wrap: wrap; gap: 1rem; padding: 1rem; align-items: flex-start; }
figure { position: relative; margin: 0; max-width: 100%; line-height: 0; background: #000; }
canvas, figure img { display: block; max-width: 100%; height: auto; }
canvas.stale { opacity: .45; }
#overlay { position: absolute; inset: 0; display: none; align-items: center; justify-content: center; text-align: center;
  padding: 1rem; line-height: 1.3; font-weight: 600; color: #fff; background: rgba(0,0,0,.35); }
#overlay.shown { display: flex; }
#panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: 1rem; flex: 1 1 20rem; min-width: 0; }
.panel { background: #161b22; border: 1px solid #30363d; border-radius: 8px; padding: .6rem .8rem; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .15rem .8rem; margin: 0 0 .5rem; }
dt { color: var(--dim); }
dd { margin: 0; text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
dd.alarm { color: var(--bad); font-weight: 700; }
.badge { padding: .15rem .6rem; border-radius: 999px; font-weight: 700; font-size: .85rem; }
.badge.live { background: var(--ok); color: #000; }
.badge.stalled { background: var(--bad); color: #fff; }
.badge.waiting { background: var(--warn); color: #000; }
@media (max-width: 600px) { main { padding: .5rem; gap: .5rem; } body { font-size: 14px; } }
`;

// Plain ES2019 without template literals, so that it can live inside this TypeScript template.
const PAGE_SCRIPT = `
(function () {
  'use strict';
  var STALL_AFTER_MS = ${STALL_AFTER_MS};
  var MAX_PART_BYTES = 64 * 1024 * 1024;
  var clientId = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
  function $(id) { return document.getElementById(id); }
  var canvas = $('video');
  var overlay = $('overlay');
  var badge = $('state');
  var context = canvas.getContext('2d');

  var tab = { shownAt: [], latencies: [], lastShownAt: 0, lastSeq: null, shown: 0, skipped: 0, decodeErrors: 0 };
  var server = { status: null, receivedAt: 0 };
  var links = { stream: false, events: false, streamError: '' };
  window.camstreamViewer = { tab: tab, links: links, clientId: clientId };

  function setText(id, text, alarm) {
    var el = $(id);
    if (!el) return;
    if (el.textContent !== text) el.textContent = text;
    if (alarm !== undefined) el.classList.toggle('alarm', !!alarm);
  }
  function num(value, digits) { return typeof value === 'number' && isFinite(value) ? value.toFixed(digits) : '–'; }
  function percentile(values, p) {
    if (!values.length) return null;
    var sorted = values.slice().sort(function (a, b) { return a - b; });
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  }
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // ---- pictures: fetch + multipart reader + canvas, latest-wins ----
  var drawing = false;
  var waiting = null;
  function offer(frame) {
    if (drawing) { if (waiting) tab.skipped++; waiting = frame; return; }
    draw(frame);
  }
  function draw(frame) {
    drawing = true;
    createImageBitmap(new Blob([frame.bytes], { type: 'image/jpeg' })).then(function (bitmap) {
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
      }
      context.drawImage(bitmap, 0, 0);
      if (bitmap.close) bitmap.close();
      var now = performance.now();
      tab.shown++;
      tab.lastShownAt = now;
      tab.lastSeq = frame.seq;
      tab.shownAt.push(now);
      if (isFinite(frame.captureTime)) tab.latencies.push({ at: now, ms: Date.now() - frame.captureTime });
      canvas.dataset.seq = String(frame.seq);
      canvas.dataset.shown = String(tab.shown);
      // Lift the "waiting"/"stalled" overlay at once rather than at the next tick.
      if (overlay.classList.contains('shown')) update();
    }, function () { tab.decodeErrors++; }).then(function () {
      drawing = false;
      var next = waiting;
      waiting = null;
      if (next) draw(next);
    });
  }

  function indexOfHeaderEnd(bytes, from, to) {
    for (var i = from; i + 3 < to; i++) {
      if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
    }
    return -1;
  }
  function parsePartHeaders(text) {
    var headers = {};
    text.split('\\r\\n').forEach(function (line) {
      var colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    });
    return headers;
  }

  async function readStream() {
    var response = await fetch('stream.mjpg?client=' + encodeURIComponent(clientId), { cache: 'no-store' });
    if (!response.ok || !response.body) {
      var reason = (await response.text()).trim();
      throw new Error('HTTP ' + response.status + (reason ? ': ' + reason : ''));
    }
    links.stream = true;
    links.streamError = '';
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    // One growing buffer with start/end marks: bytes are copied in once and out once per frame.
    var buffer = new Uint8Array(256 * 1024);
    var start = 0;
    var end = 0;
    var part = null;
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) return;
      var bytes = chunk.value;
      if (end + bytes.length > buffer.length) {
        var live = end - start;
        var target = live + bytes.length > buffer.length ? new Uint8Array(Math.max(buffer.length * 2, live + bytes.length)) : buffer;
        if (target === buffer) buffer.copyWithin(0, start, end); else target.set(buffer.subarray(start, end));
        buffer = target;
        start = 0;
        end = live;
      }
      buffer.set(bytes, end);
      end += bytes.length;
      for (;;) {
        if (!part) {
          var headerEnd = indexOfHeaderEnd(buffer, start, end);
          if (headerEnd < 0) break;
          var headers = parsePartHeaders(decoder.decode(buffer.subarray(start, headerEnd)));
          start = headerEnd + 4;
          var length = Number(headers['content-length']);
          if (!(length >= 0 && length <= MAX_PART_BYTES)) throw new Error('a part without a usable Content-Length');
          part = { length: length, seq: Number(headers['x-frame-seq']), captureTime: Number(headers['x-capture-time']) };
        }
        if (end - start < part.length) break;
        offer({ bytes: buffer.slice(start, start + part.length), seq: part.seq, captureTime: part.captureTime });
        start += part.length;
        part = null;
      }
      if (start === end) { start = 0; end = 0; }
    }
  }

  async function runStream() {
    var delay = 500;
    for (;;) {
      try {
        await readStream();
        delay = 500;
      } catch (err) {
        links.streamError = String((err && err.message) || err);
      }
      links.stream = false;
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }

  function fallBackToImg() {
    var img = document.createElement('img');
    img.src = 'stream.mjpg';
    img.alt = canvas.getAttribute('aria-label') || 'live video';
    img.id = 'video';
    img.onload = function () { tab.lastShownAt = performance.now(); tab.shown++; };
    canvas.replaceWith(img);
    canvas = img;
    links.stream = true;
  }

  // ---- figures: Server-Sent Events ----
  function showStats(stats) {
    if (!stats) return;
    setText('stat-fps', num(stats.fps, 1));
    setText('stat-decoded-fps', num(stats.decodedFps, 1));
    setText('stat-mbps', num(stats.mbps, 2));
    setText('stat-frames', String(stats.frames));
    var latency = stats.latencyMs;
    setText('stat-p50', latency ? num(latency.p50, 1) : '–');
    setText('stat-p95', latency ? num(latency.p95, 1) : '–');
    setText('stat-p99', latency ? num(latency.p99, 1) : '–');
    setText('stat-dropped', String(stats.senderDropped));
    setText('stat-skipped', String(stats.skipped));
    setText('stat-gaps', String(stats.gaps), stats.gaps > 0);
    setText('stat-corrupt', String(stats.corrupt), stats.corrupt > 0);
  }
  function showViewer(status) {
    if (!status) return;
    server.status = status;
    server.receivedAt = performance.now();
    setText('stat-viewers', String(status.streams));
    if (status.frame) {
      setText('stat-resolution', status.frame.width + '×' + status.frame.height);
      setText('stat-seq', String(status.frame.seq));
    }
    if (status.you) setText('tab-server-skipped', String(status.you.dropped));
  }
  function listenForEvents() {
    var events = new EventSource('events?client=' + encodeURIComponent(clientId));
    events.onopen = function () { links.events = true; };
    events.onerror = function () {
      links.events = false;
      // EventSource gives up for good on an HTTP error (e.g. 503 when the viewer is full): retry later.
      if (events.readyState === EventSource.CLOSED) setTimeout(listenForEvents, 5000);
    };
    events.addEventListener('stats', function (event) {
      var message = JSON.parse(event.data);
      showStats(message.stats);
      showViewer(message.viewer);
    });
    events.addEventListener('viewer', function (event) { showViewer(JSON.parse(event.data)); });
  }

  // ---- twice a second: this tab's figures and the connection state ----
  function serverFrameAgeMs() {
    var status = server.status;
    if (!status || status.frameAgeMs === null) return null;
    return status.frameAgeMs + (performance.now() - server.receivedAt);
  }
  function update() {
    var now = performance.now();
    while (tab.shownAt.length && tab.shownAt[0] < now - 1000) tab.shownAt.shift();
    while (tab.latencies.length && tab.latencies[0].at < now - 2000) tab.latencies.shift();
    var latencies = tab.latencies.map(function (entry) { return entry.ms; });
    setText('tab-fps', canvas.tagName === 'CANVAS' ? String(tab.shownAt.length) : '–');
    setText('tab-p50', num(percentile(latencies, 50), 0));
    setText('tab-p95', num(percentile(latencies, 95), 0));
    setText('tab-skipped', String(tab.skipped));

    var sinceShown = tab.shown ? now - tab.lastShownAt : Infinity;
    var serverAge = serverFrameAgeMs();
    var state = 'live';
    var message = '';
    if (sinceShown > STALL_AFTER_MS) {
      state = 'stalled';
      if (!links.stream && !links.events) {
        message = 'Viewer server unreachable' + (links.streamError ? ' (' + links.streamError + ')' : '') + ': retrying…';
      } else if (!links.stream && links.streamError) {
        message = 'Video unavailable: ' + links.streamError + ': retrying…';
      } else if (server.status && !server.status.frame) {
        message = 'Stream not connected: no frame received yet';
        state = 'waiting';
      } else if (serverAge !== null && serverAge > STALL_AFTER_MS) {
        message = 'Stream stalled: no frame from the stream for ' + (serverAge / 1000).toFixed(1) + ' s';
      } else if (tab.shown) {
        message = 'No new frame shown for ' + (sinceShown / 1000).toFixed(1) + ' s';
      } else {
        message = 'Waiting for the first frame…';
        state = 'waiting';
      }
    }
    badge.className = 'badge ' + state;
    badge.textContent = state === 'live' ? 'LIVE' : state === 'waiting' ? 'NOT CONNECTED' : 'STALLED';
    overlay.textContent = message;
    overlay.classList.toggle('shown', state !== 'live');
    canvas.classList.toggle('stale', state !== 'live' && tab.shown > 0);
  }

  listenForEvents();
  var streamingFetch = typeof ReadableStream !== 'undefined' && typeof createImageBitmap === 'function' && 'body' in Response.prototype;
  if (streamingFetch) runStream(); else fallBackToImg();
  update();
  setInterval(update, 500);
})();
`;
