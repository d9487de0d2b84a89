/** The name every hello carries; anything else is not a camstream peer. */
export const PROTOCOL_NAME = 'camstream';
/**
 * Bumped on any change an older peer could not read. Version 2 added flow control (acknowledgements)
 * and quality rungs; a version-1 peer is refused with ERR_VERSION.
 */
export const PROTOCOL_VERSION = 2;

/** Bytes of the big-endian unsigned message length that starts every message. */
export const LENGTH_PREFIX_BYTES = 8;
/** Bytes of the big-endian unsigned header length that starts every message body. */
export const HEADER_LENGTH_BYTES = 4;

/** 64 MiB: a 1920x1080 raw BGR frame (6.2 MB) fits many times; larger raw frames need a larger limit. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** 64 KiB: headers are small JSON objects; anything near this size is hostile or broken. */
export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
