import * as z from 'zod';
import { PROTOCOL_NAME, PROTOCOL_VERSION } from './constants';
import { LengthMismatchError, SchemaError, VersionMismatchError } from './errors';

/** Frames and streams wider or taller than this are refused (16K is far beyond any camera). */
const MAX_DIMENSION = 16384;
const MAX_NAME_CHARS = 200;
const MAX_BYE_REASON_CHARS = 1000;
/** A ladder longer than this is not a quality ladder any more. */
const MAX_RUNGS = 16;

const dimension = z.number().int().min(1).max(MAX_DIMENSION);
/** Bits per second of an H.264 rung: 1 bit/s to 10 Gbit/s (far above any stream). */
const bitrate = z.number().int().min(1).max(10_000_000_000);

export const encodingSchema = z.enum(['raw-bgr', 'jpeg', 'png', 'h264']);
export type Encoding = z.infer<typeof encodingSchema>;

export const streamDescriptionSchema = z.strictObject({
  width: dimension,
  height: dimension,
  fps: z.number().min(0).max(1000),
  pixelFormat: z.literal('bgr24'),
  encoding: encodingSchema,
  quality: z.number().int().min(1).max(100).optional(),
  /** An h264 stream's bitrate on rung 0, in bits per second (section 4.6). */
  bitrate: bitrate.optional(),
  source: z.string().max(MAX_NAME_CHARS).optional(),
  /**
   * The lower qualities the sender may switch a receiver to when its link cannot carry the stream
   * (section 4.4), best first. Rung 0 is the stream itself (width, height, quality above) and is
   * not listed; entry i here is rung i + 1. Absent: the sender only drops frames.
   */
  rungs: z
    .array(z.strictObject({ width: dimension, height: dimension, quality: z.number().int().min(1).max(100).optional(), bitrate: bitrate.optional() }))
    .max(MAX_RUNGS)
    .optional(),
});
export type StreamDescription = z.infer<typeof streamDescriptionSchema>;

// Two hello shapes told apart by `role`, so the type itself says a sender's hello has a stream
// and a receiver's has none. The nested union still sits under the `type` discriminator.
/** 32 random bytes in standard base64: what each side contributes to authentication. */
const nonce = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected 32 bytes in base64');
/** An HMAC-SHA256 in lower-case hex. */
const mac = z.string().regex(/^[0-9a-f]{64}$/, 'expected an HMAC-SHA256 as 64 hex digits');

const senderHelloSchema = z.strictObject({
  type: z.literal('hello'),
  protocol: z.literal(PROTOCOL_NAME),
  version: z.number().int(),
  role: z.literal('sender'),
  name: z.string().max(MAX_NAME_CHARS).optional(),
  stream: streamDescriptionSchema,
  /** After a challenge: proves to the receiver that the sender knows the secret too. */
  proof: mac.optional(),
});

const receiverHelloSchema = z.strictObject({
  type: z.literal('hello'),
  protocol: z.literal(PROTOCOL_NAME),
  version: z.number().int(),
  role: z.literal('receiver'),
  name: z.string().max(MAX_NAME_CHARS).optional(),
  /** The receiver's half of the authentication nonces. */
  nonce: nonce.optional(),
});

export const helloHeaderSchema = z.discriminatedUnion('role', [senderHelloSchema, receiverHelloSchema]);
export type HelloHeader = z.infer<typeof helloHeaderSchema>;

export const frameHeaderSchema = z.strictObject({
  type: z.literal('frame'),
  // zod 4's int() also demands a safe integer.
  seq: z.number().int().min(0),
  // zod 4's number() refuses Infinity and NaN.
  captureTime: z.number().min(0),
  width: dimension,
  height: dimension,
  channels: z.literal([1, 3, 4]),
  encoding: encodingSchema,
  payloadLength: z.number().int().min(0),
  crc32: z.number().int().min(0).max(0xffff_ffff),
  dropped: z.number().int().min(0),
  /** Which quality rung of the stream this frame is (section 4.4); absent means 0, the stream itself. */
  rung: z.number().int().min(1).max(MAX_RUNGS).optional(),
  /**
   * An h264 frame whose access unit holds an IDR picture: decoding can start here (section 4.6).
   * Absent on every other frame: `false` is never written, and only h264 frames may carry it.
   */
  keyframe: z.literal(true).optional(),
}).refine((frame) => frame.keyframe === undefined || frame.encoding === 'h264', {
  message: 'only an h264 frame can be a keyframe',
  path: ['keyframe'],
});
export type FrameHeader = z.infer<typeof frameHeaderSchema>;

export const byeHeaderSchema = z.strictObject({
  type: z.literal('bye'),
  reason: z.string().min(1).max(MAX_BYE_REASON_CHARS),
});
export type ByeHeader = z.infer<typeof byeHeaderSchema>;

export const errorHeaderSchema = z.strictObject({
  type: z.literal('error'),
  code: z.string(),
  reason: z.string(),
});
export type ErrorHeader = z.infer<typeof errorHeaderSchema>;

/** Sender -> receiver when a secret is required: answer with an `auth` message. */
export const challengeHeaderSchema = z.strictObject({
  type: z.literal('challenge'),
  method: z.literal('hmac-sha256'),
  nonce,
});
export type ChallengeHeader = z.infer<typeof challengeHeaderSchema>;

/** Receiver -> sender: the HMAC of both nonces under the shared secret. */
export const authHeaderSchema = z.strictObject({
  type: z.literal('auth'),
  mac,
});
export type AuthHeader = z.infer<typeof authHeaderSchema>;

/**
 * Receiver -> sender, for every frame received (section 4.3): opens the sender's flow-control
 * window and tells it how fast the frame arrived.
 */
export const ackHeaderSchema = z.strictObject({
  type: z.literal('ack'),
  seq: z.number().int().min(0),
  /** Milliseconds from the read that brought the frame's first byte to the read that completed it. */
  spanMs: z.number().min(0).max(3_600_000),
  /** Bytes of the frame message that arrived after that first read. */
  spanBytes: z.number().int().min(0),
});
export type AckHeader = z.infer<typeof ackHeaderSchema>;

/** Sender -> receiver when no frame went out for a while: the connection is alive. */
export const pingHeaderSchema = z.strictObject({
  type: z.literal('ping'),
  time: z.number().min(0),
});
export type PingHeader = z.infer<typeof pingHeaderSchema>;

/**
 * Every header the protocol knows. A new message type is one more member here (and one more case
 * in `checkPayloadLength`); the framing does not change.
 */
export const headerSchema = z.discriminatedUnion('type', [
  helloHeaderSchema,
  frameHeaderSchema,
  byeHeaderSchema,
  errorHeaderSchema,
  challengeHeaderSchema,
  authHeaderSchema,
  pingHeaderSchema,
  ackHeaderSchema,
]);
export type Header = z.infer<typeof headerSchema>;

/**
 * Validates a decoded JSON value as a header. Throws VersionMismatchError for a hello of another
 * protocol or version, SchemaError (zod error as `cause`) for anything else that is not a header.
 */
export function parseHeader(value: unknown): Header {
  checkHelloVersion(value);
  return parseWith(headerSchema, value);
}

/** Runs a zod schema and turns its failure into a SchemaError with a readable one-line message. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new SchemaError(describeSchemaFailure(value, result.error), { cause: result.error });
  }
  return result.data;
}

/**
 * Checks what a header says about its payload against the payload's real length: frames carry
 * exactly `payloadLength` bytes (and a raw frame exactly width*height*channels), every other
 * message carries none.
 */
export function checkPayloadLength(header: Header, payloadLength: number): void {
  switch (header.type) {
    case 'frame': {
      if (header.encoding === 'raw-bgr') {
        const pixelBytes = header.width * header.height * header.channels;
        if (header.payloadLength !== pixelBytes) {
          throw new LengthMismatchError(
            `raw-bgr frame ${header.seq} is ${header.width}x${header.height}x${header.channels} = ${pixelBytes} bytes ` +
              `but its header says payloadLength ${header.payloadLength}`,
          );
        }
      }
      if (payloadLength !== header.payloadLength) {
        throw new LengthMismatchError(
          `frame ${header.seq} carries ${payloadLength} payload bytes but its header says payloadLength ${header.payloadLength}`,
        );
      }
      return;
    }
    case 'hello':
    case 'bye':
    case 'error':
    case 'challenge':
    case 'auth':
    case 'ping':
    case 'ack':
      if (payloadLength !== 0) {
        throw new LengthMismatchError(
          `${header.type} message has ${payloadLength} payload bytes but must have none`,
        );
      }
      return;
    default:
      return assertNever(header);
  }
}

// The version is checked before the shape: a future version's hello may have fields this version
// does not know, and the peer should hear "wrong version", not "unknown field".
function checkHelloVersion(value: unknown): void {
  if (!isPlainObject(value) || value['type'] !== 'hello') return;
  const { protocol, version } = value;
  const otherProtocol = protocol !== undefined && protocol !== PROTOCOL_NAME;
  const otherVersion = version !== undefined && version !== PROTOCOL_VERSION;
  if (otherProtocol || otherVersion) {
    throw new VersionMismatchError(
      `peer speaks protocol ${show(protocol)} version ${show(version)}, ` +
        `this side speaks ${show(PROTOCOL_NAME)} version ${PROTOCOL_VERSION}`,
    );
  }
}

function describeSchemaFailure(value: unknown, error: z.ZodError): string {
  if (!isPlainObject(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return `header is not a JSON object (got ${got})`;
  }
  const what = typeof value['type'] === 'string' ? `${show(value['type'])} header` : 'header';
  const shown = error.issues.slice(0, 3).map((issue) => describeIssue(value, issue));
  const more = error.issues.length > shown.length ? `; and ${error.issues.length - shown.length} more` : '';
  return `invalid ${what}: ${shown.join('; ')}${more}`;
}

/** One issue in a few hundred characters at most: zod's own message lists every unknown key sent. */
function describeIssue(root: unknown, issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? `${clip(issue.path.join('.'), MAX_SHOWN_CHARS)}: ` : '';
  const message = clip(issue.message, 3 * MAX_SHOWN_CHARS);
  if (issue.path.length === 0) return `${where}${message}`;
  const got = valueAt(root, issue.path);
  return `${where}${message}${got === undefined ? '' : ` (got ${show(got)})`}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** How much of an untrusted value an error message quotes. */
const MAX_SHOWN_CHARS = 60;
/** Levels of arrays and objects quoted before `[...]` or `{...}`. */
const MAX_SHOWN_DEPTH = 2;
/** Elements or keys quoted per array or object. */
const MAX_SHOWN_ITEMS = 4;

/**
 * Renders an untrusted value for an error message, short enough to log. The peer chooses the
 * value: JSON.stringify and String() walk all of it, recursively (a 5,000-deep array overflows
 * the stack), so only a bounded part is walked here: depth, items and string lengths are capped.
 */
function show(value: unknown): string {
  return clip(render(value, MAX_SHOWN_DEPTH), MAX_SHOWN_CHARS);
}

function render(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(clip(value, MAX_SHOWN_CHARS));
    case 'number':
    case 'boolean':
      return JSON.stringify(value);
    case 'object':
      if (value === null) return 'null';
      if (Array.isArray(value)) return renderArray(value, depth);
      return renderObject(value as Record<string, unknown>, depth);
    default:
      return typeof value; // not in parsed JSON
  }
}

function renderArray(value: readonly unknown[], depth: number): string {
  if (depth === 0) return '[...]';
  const items = value.slice(0, MAX_SHOWN_ITEMS).map((item) => render(item, depth - 1));
  if (value.length > MAX_SHOWN_ITEMS) items.push('...');
  return `[${items.join(',')}]`;
}

function renderObject(value: Record<string, unknown>, depth: number): string {
  if (depth === 0) return '{...}';
  const entries: string[] = [];
  for (const key in value) {
    if (entries.length === MAX_SHOWN_ITEMS) {
      entries.push('...');
      break;
    }
    if (Object.hasOwn(value, key)) entries.push(`${JSON.stringify(clip(key, MAX_SHOWN_CHARS))}:${render(value[key], depth - 1)}`);
  }
  return `{${entries.join(',')}}`;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function assertNever(value: never): never {
  throw new Error(`unhandled header ${JSON.stringify(value)}`);
}
