// The package against the real Python 3 and numpy (/usr/bin/python3 with python3-numpy): the
// tutorial's receiver reads our frames, we read the tutorial streamer's, and what Python would
// run from a hostile pickle we refuse.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { TutorialWireError } from './errors';
import { TutorialFrameDecoder } from './frame-decoder';
import { ACCEPTED_OPCODES, OPCODE_NAMES } from './opcodes';
import { decodeArrayPickle, type DecodedImage } from './pickle-decoder';
import { encodeTutorialFrame, type BgrImage } from './pickle-encoder';
import { mutate, mutationsArbitrary } from './testing/mutations';
import { FIXTURES_DIR, FIXTURES_FILE, fixture } from './testing/pickle-bytes';
import { runPython, startPython } from './testing/python';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function testImage(width: number, height: number, seed = 1): BgrImage {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 9) + seed * 31) & 0xff;
  return { width, height, data };
}

function wire(image: BgrImage): Buffer {
  const { head, pixels, tail } = encodeTutorialFrame(image);
  return Buffer.concat([head, pixels, tail]);
}

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'tutorial-wire-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('our frames in Python', () => {
  // Reads frames from stdin as the tutorial's receiver does, pickle.loads each, and re-pickles it.
  const loadFrames = `
import hashlib, json, pickle, struct, sys
stream = sys.stdin.buffer
while True:
    head = stream.read(8)
    if not head:
        break
    data = stream.read(struct.unpack("Q", head)[0])
    a = pickle.loads(data)
    print(json.dumps({"type": type(a).__name__, "dtype": a.dtype.name, "shape": list(a.shape),
                      "sha256": hashlib.sha256(a.tobytes(order="C")).hexdigest(),
                      "same_as_pickle_dumps": pickle.dumps(a) == data}))
`;

  it('pickle.loads gives the image, and pickle.dumps of it gives our bytes back, at every layout', async () => {
    // 1x1 to 85x1: SHORT_BINBYTES; 86x1: BINBYTES; 21845x1: the largest single FRAME; 21846x1 and
    // up: pixels outside frames; 640x480: BININT2 dimensions; 3x70000: BININT (over 65535).
    const sizes = [[1, 1], [2, 1], [85, 1], [86, 1], [300, 70], [21845, 1], [21846, 1], [640, 480], [3, 70000]] as const;
    const images = sizes.map(([width, height], i) => testImage(width, height, i));
    const result = await runPython(['-c', loadFrames], Buffer.concat(images.map(wire)));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.toString('utf8').trim().split('\n').map((line) => JSON.parse(line) as unknown);
    expect(lines).toEqual(
      images.map((image) => ({
        type: 'ndarray',
        dtype: 'uint8',
        shape: [image.height, image.width, 3],
        sha256: sha256(image.data),
        same_as_pickle_dumps: true,
      })),
    );
  });

  it("the tutorial's receiver (seed_receiver.py) watches a stream of our frames over TCP", async () => {
    const width = 640;
    const height = 480;
    const frames = [1, 2, 3].map((seed) => testImage(width, height, seed));
    const served = await serveFrames(frames);
    try {
      const receiver = await runPython([join(FIXTURES_DIR, 'seed_receiver.py'), '--port', String(served.port),
        '--max-frames', '4', '--expect', `${width}x${height}`]);
      expect(receiver.stderr).toBe('');
      expect(receiver.code).toBe(0);
      const report = JSON.parse(receiver.stdout.toString('utf8').trim()) as Record<string, number>;
      // 1 warm-up frame, then the 4 counted: --expect's shape and dtype assertion passed on the first.
      expect(report['frames']).toBe(4);
      expect(report['frame_bytes']).toBe(encodeTutorialFrame(frames[0] as BgrImage).byteLength);
    } finally {
      await served.close();
    }
  });

  it("seed_receiver.py's --expect check is live: a wrong size fails it", async () => {
    const served = await serveFrames([testImage(64, 48)]);
    try {
      const receiver = await runPython([join(FIXTURES_DIR, 'seed_receiver.py'), '--port', String(served.port), '--max-frames', '1', '--expect', '48x64']);
      expect(receiver.code).not.toBe(0);
      expect(receiver.stderr).toContain('AssertionError: (48, 64, 3)');
    } finally {
      await served.close();
    }
  });
});

describe("Python's frames in the strict decoder", () => {
  // The tutorial streamer's loop (frame -> pickle.dumps -> struct.pack("Q", len) + payload ->
  // sendall), over every protocol and layout numpy uses, at 640x480.
  const streamer = `
import hashlib, json, pickle, socket, struct
import numpy as np
rng = np.random.default_rng(7)
bgr = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
cases = [(p, "C", bgr) for p in (2, 3, 4, 5)] + [(p, "F", np.asfortranarray(bgr)) for p in (2, 3, 4, 5)]
cases += [(4, "C", bgr[:, :, 0].copy()), (5, "C", bgr[::2, ::2, :]), (5, "C", np.dstack([bgr, bgr[:, :, :1]]))]
server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.bind(("127.0.0.1", 0))
server_socket.listen(5)
print(server_socket.getsockname()[1], flush=True)
client_socket, addr = server_socket.accept()
report = []
for protocol, order, frame in cases:
    a = pickle.dumps(frame, protocol=protocol)
    message = struct.pack("Q", len(a)) + a
    client_socket.sendall(message)
    report.append({"protocol": protocol, "shape": list(frame.shape), "sha256": hashlib.sha256(frame.tobytes(order="C")).hexdigest()})
client_socket.close()
print(json.dumps(report), flush=True)
`;

  it('decodes every frame the tutorial streamer sends, at protocols 2 to 5, C and Fortran order', async () => {
    const python = await startPython(['-c', streamer]);
    const socket = connect(Number(python.firstLine), '127.0.0.1');
    const decoder = new TutorialFrameDecoder({ maxSize: { width: 640, height: 480 } });
    const images: DecodedImage[] = [];
    socket.on('data', (chunk: Buffer) => {
      for (const pickle of decoder.push(chunk)) images.push(decodeArrayPickle(pickle, { maxSize: { width: 640, height: 480 } }));
    });
    await once(socket, 'end');
    decoder.end();
    const result = await python.done;
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout.toString('utf8').trim().split('\n').pop() as string) as { shape: number[]; sha256: string }[];
    expect(report).toHaveLength(11);
    expect(images.map((image) => ({ shape: [image.height, image.width, ...(image.channels === 1 ? [] : [image.channels])], sha256: sha256(image.data) })))
      .toEqual(report.map(({ shape, sha256: hash }) => ({ shape, sha256: hash })));
    expect(images.map((image) => image.order)).toEqual(['C', 'C', 'C', 'C', 'F', 'F', 'F', 'F', 'C', 'C', 'C']);
  });
});

describe('hostile pickles: refused, and proven not run', () => {
  it('refuses os.system via REDUCE at protocols 2, 4 and 5: the command does not run, though pickle.loads would run it', async () => {
    const marker = join(scratch, 'pwned');
    const make = `
import os, pickle, sys
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[1],))
for protocol in (2, 4, 5):
    print(pickle.dumps(Evil(), protocol=protocol).hex())
`;
    const made = await runPython(['-c', make, marker]);
    expect(made.code).toBe(0);
    const hostile = made.stdout.toString('utf8').trim().split('\n').map((hex) => Buffer.from(hex, 'hex'));
    expect(hostile).toHaveLength(3);
    for (const pickle of hostile) {
      // Through the framing too, as a receiver would get it from the socket.
      const [framed] = new TutorialFrameDecoder().push(Buffer.concat([lengthPrefix(pickle.length), pickle]));
      let error: unknown;
      try {
        decodeArrayPickle(framed as Buffer);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TutorialWireError);
      expect(error).toMatchObject({ code: 'ERR_NOT_ALLOWED', message: expect.stringMatching(/GLOBAL at byte \d+ on posix\.system is not allowed/) });
    }
    expect(existsSync(marker)).toBe(false);

    // The control: the same bytes in Python's own unpickler do run the command.
    const loaded = await runPython(['-c', 'import pickle, sys; pickle.loads(bytes.fromhex(sys.stdin.read()))'], (hostile[1] as Buffer).toString('hex'));
    expect(loaded.code).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('refuses builtins eval, exec and getattr as Python pickles them', async () => {
    const make = `
import builtins, pickle
class Call:
    def __init__(self, f, args): self.f, self.args = f, args
    def __reduce__(self): return (self.f, self.args)
for f, args in ((eval, ("1+1",)), (exec, ("x=1",)), (getattr, (1, "real"))):
    print(pickle.dumps(Call(f, args), protocol=4).hex())
`;
    const made = await runPython(['-c', make]);
    expect(made.code).toBe(0);
    const names = made.stdout.toString('utf8').trim().split('\n').map((hex) => {
      try {
        decodeArrayPickle(Buffer.from(hex, 'hex'));
      } catch (err) {
        expect(err).toMatchObject({ code: 'ERR_NOT_ALLOWED' });
        return /on (\S+) is not allowed/.exec((err as Error).message)?.[1];
      }
      return 'accepted';
    });
    expect(names).toEqual(['builtins.eval', 'builtins.exec', 'builtins.getattr']);
  });
});

describe('agreement with Python', () => {
  it('names every opcode as pickletools does, and accepts each at the protocol that introduced it', async () => {
    const result = await runPython(['-c', 'import json, pickletools; print(json.dumps([[ord(o.code.encode("latin1")), o.name, o.proto] for o in pickletools.opcodes]))']);
    const opcodes = JSON.parse(result.stdout.toString('utf8')) as [number, string, number][];
    expect(new Map(opcodes.map(([code, name]) => [code, name]))).toEqual(OPCODE_NAMES);
    const introduced = new Map(opcodes.map(([code, , proto]) => [code, proto]));
    for (const [code, protocol] of ACCEPTED_OPCODES) expect({ code, protocol }).toEqual({ code, protocol: introduced.get(code) });
  });

  it('has fixtures that fixtures/generate.py writes byte for byte', async () => {
    const out = join(scratch, 'numpy-pickles.json');
    const result = await runPython([join(FIXTURES_DIR, 'generate.py'), out]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(FIXTURES_FILE, 'utf8'));
  });

  it('decodes every mutated pickle it accepts to the array Python loads from it', async () => {
    // Mutants of Python's pickles that the strict decoder accepts (pixel changes, but also changed
    // orders, protocols, memo indices...): Python, limited to the same globals, must agree.
    const bases = ['p2-fortran-gray', 'p3-bgr', 'p4-fortran-bgr', 'p5-fortran-bgr', 'p5-bgr-numpy2'].map((name) => Buffer.from(fixture(name).pickle, 'hex'));
    const accepted = new Map<string, DecodedImage>();
    for (const [baseIndex, mutations] of fc.sample(fc.tuple(fc.nat({ max: bases.length - 1 }), mutationsArbitrary), { seed: 11, numRuns: 15_000 })) {
      const pickle = mutate(bases[baseIndex] as Buffer, mutations);
      try {
        const image = decodeArrayPickle(pickle);
        accepted.set(pickle.toString('hex'), { ...image, data: Buffer.from(image.data) });
      } catch (err) {
        if (!(err instanceof TutorialWireError)) throw err;
      }
    }
    expect(accepted.size).toBeGreaterThan(300);
    const strictLoads = `
import hashlib, io, json, pickle, sys
ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy.core.numeric", "_frombuffer"),
           ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
class Strict(pickle.Unpickler):
    def find_class(self, module, name):
        module = module.replace("numpy._core.", "numpy.core.")
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError("refused %s.%s" % (module, name))
        return super().find_class(module, name)
for line in sys.stdin:
    try:
        a = Strict(io.BytesIO(bytes.fromhex(line.strip()))).load()
        height, width, channels = a.shape if a.ndim == 3 else a.shape + (1,)
        print(json.dumps([[height, width, channels], a.dtype.name, hashlib.sha256(a.tobytes(order="C")).hexdigest()]))
    except Exception as e:
        print(json.dumps(["error", repr(e)[:200]]))
`;
    const hexes = [...accepted.keys()];
    const result = await runPython(['-c', strictLoads], hexes.join('\n') + '\n');
    expect(result.code).toBe(0);
    const answers = result.stdout.toString('utf8').trim().split('\n').map((line) => JSON.parse(line) as unknown);
    expect(answers).toHaveLength(hexes.length);
    const disagreements = hexes.flatMap((hex, i) => {
      const image = accepted.get(hex) as DecodedImage;
      const ours = [[image.height, image.width, image.channels], 'uint8', sha256(image.data)];
      return JSON.stringify(answers[i]) === JSON.stringify(ours) ? [] : [{ hex, ours, python: answers[i] }];
    });
    expect(disagreements.slice(0, 3)).toEqual([]);
  });
});

function lengthPrefix(length: number): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(length));
  return prefix;
}

/** A TCP server that writes `frames` round and round to each client, as camstream's sender would, until it hangs up. */
async function serveFrames(frames: BgrImage[]): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined); // the receiver hangs up mid-frame when it has seen enough
    socket.on('close', () => sockets.delete(socket));
    let next = 0;
    const writeMore = (): void => {
      while (!socket.destroyed && socket.writable) {
        const { head, pixels, tail } = encodeTutorialFrame(frames[next++ % frames.length] as BgrImage);
        socket.cork();
        socket.write(head);
        socket.write(pixels);
        const roomLeft = socket.write(tail);
        socket.uncork();
        if (!roomLeft) {
          socket.once('drain', writeMore);
          return;
        }
      }
    };
    writeMore();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
