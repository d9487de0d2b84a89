import { CameraNameError } from './errors';

/*
 * Subjects (PROTOCOL.md, "Over NATS"): everything about camera NAME lives under camstream.NAME:
 *   camstream.NAME.frames     frame messages, one per frame, whatever the number of subscribers
 *   camstream.NAME.hello      the sender's announcement (its hello), at start, every few seconds, after a reconnect
 *   camstream.NAME.describe   request/reply: the announcement, on demand, bound to the requester's nonce
 */

export const SUBJECT_ROOT = 'camstream';
export type SubjectKind = 'frames' | 'hello' | 'describe';

/** 1 to 64 letters, digits, '-' or '_': one NATS subject token, without wildcards or dots. */
const CAMERA_NAME = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_CAMERA_NAME_LENGTH = 64;

/** Returns `name` if it can be a camera name; throws CameraNameError saying why not. */
export function checkCameraName(name: string): string {
  if (CAMERA_NAME.test(name)) return name;
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
  const why =
    name.length === 0
      ? 'it is empty'
      : name.length > MAX_CAMERA_NAME_LENGTH
        ? `it is ${name.length} characters long`
        : `it contains ${JSON.stringify(name.match(/[^A-Za-z0-9_-]/)?.[0])}`;
  throw new CameraNameError(
    `camera name ${shown} is not valid: ${why}; use 1 to ${MAX_CAMERA_NAME_LENGTH} letters, digits, '-' or '_' (the name is a NATS subject token)`,
  );
}

export function cameraSubject(camera: string, kind: SubjectKind): string {
  return `${SUBJECT_ROOT}.${checkCameraName(camera)}.${kind}`;
}

/** The subject of `kind` for every camera: camstream.*.frames. */
export function everyCameraSubject(kind: Exclude<SubjectKind, 'describe'>): string {
  return `${SUBJECT_ROOT}.*.${kind}`;
}

/** The camera of a camstream.NAME.KIND subject, or undefined if the subject is not one (or NAME is not valid). */
export function cameraOfSubject(subject: string, kind: SubjectKind): string | undefined {
  const prefix = `${SUBJECT_ROOT}.`;
  const suffix = `.${kind}`;
  if (!subject.startsWith(prefix) || !subject.endsWith(suffix)) return undefined;
  const camera = subject.slice(prefix.length, subject.length - suffix.length);
  return CAMERA_NAME.test(camera) ? camera : undefined;
}

/** Which cameras a subscriber watches: every camera on the bus, or these. */
export type CameraSelection = '*' | readonly string[];

/**
 * Parses a command-line camera selection: `*` for every camera, else one name or a
 * comma-separated list (each checked; duplicates removed).
 */
export function parseCameraSelection(text: string): CameraSelection {
  const trimmed = text.trim();
  if (trimmed === '*') return '*';
  const names = trimmed.split(',').map((name) => name.trim());
  if (names.includes('*')) throw new CameraNameError(`camera list ${JSON.stringify(text)} mixes '*' with names: use '*' alone to watch every camera`);
  return [...new Set(names.map(checkCameraName))];
}
