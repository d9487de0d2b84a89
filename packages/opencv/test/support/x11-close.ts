import { connect } from 'node:net';

/**
 * Asks a window to close the way a window manager's close button does: a WM_PROTOCOLS /
 * WM_DELETE_WINDOW ClientMessage sent to the window. Xvfb has no window manager and xdotool
 * 3.2016 has no `windowclose` (its `windowkill` kills the client's X connection, which makes
 * Qt exit the process), so this speaks the few X11 requests needed over the display's socket.
 */
export function requestWindowClose(display: string, windowId: number, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const number = /:(\d+)/.exec(display)?.[1];
    if (number === undefined) return reject(new Error(`cannot parse DISPLAY ${display}`));
    const socket = connect(`/tmp/.X11-unix/X${number}`);
    const timer = setTimeout(() => done(new Error('X server did not answer')), timeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    let pending = Buffer.alloc(0);
    let phase: 'setup' | 'atoms' | 'sync' = 'setup';
    const atoms: number[] = [];
    const internAtom = (name: string) => {
      const bytes = Buffer.from(name, 'latin1');
      const length = 8 + ((bytes.length + 3) & ~3);
      const request = Buffer.alloc(length);
      request[0] = 16; // InternAtom
      request.writeUInt16LE(length / 4, 2);
      request.writeUInt16LE(bytes.length, 4);
      bytes.copy(request, 8);
      socket.write(request);
    };
    socket.on('error', done);
    socket.on('connect', () => {
      const setup = Buffer.alloc(12);
      setup[0] = 0x6c; // little-endian, protocol 11.0, no authorisation (Xvfb default)
      setup.writeUInt16LE(11, 2);
      socket.write(setup);
    });
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (phase === 'setup') {
        if (pending.length < 8) return;
        const length = 8 + pending.readUInt16LE(6) * 4;
        if (pending.length < length) return;
        if (pending[0] !== 1) return done(new Error('X server refused the connection'));
        pending = pending.subarray(length);
        phase = 'atoms';
        internAtom('WM_PROTOCOLS');
        internAtom('WM_DELETE_WINDOW');
      }
      while (pending.length >= 32) {
        const kind = pending[0]!;
        const length = 32 + (kind === 1 ? pending.readUInt32LE(4) * 4 : 0);
        if (pending.length < length) return;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        if (kind === 0) return done(new Error(`X error ${message[1]}`));
        if (kind !== 1) continue; // an event
        if (phase === 'atoms') {
          atoms.push(message.readUInt32LE(8));
          if (atoms.length < 2) continue;
          const request = Buffer.alloc(44);
          request[0] = 25; // SendEvent, no propagation, event mask 0: to the window's owner
          request.writeUInt16LE(11, 2);
          request.writeUInt32LE(windowId, 4);
          request[12] = 33; // ClientMessage, format 32
          request[13] = 32;
          request.writeUInt32LE(windowId, 16);
          request.writeUInt32LE(atoms[0]!, 20);
          request.writeUInt32LE(atoms[1]!, 24); // data[0] = WM_DELETE_WINDOW, data[1] = CurrentTime
          socket.write(request);
          phase = 'sync';
          internAtom('WM_PROTOCOLS'); // its reply proves the SendEvent was processed
        } else {
          return done();
        }
      }
    });
  });
}
