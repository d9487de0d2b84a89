/**
 * @camstream/nats: camstream over NATS, the fan-out tier for many cameras, viewers and machines
 * (PROTOCOL.md, "Over NATS"). A CameraPublisher sends each frame of one camera once, whatever the
 * number of subscribers; a CameraSubscriber watches one camera, a list or all of them, checks every
 * message as a TCP receiver would (plus signatures and replays with a shared secret), counts what
 * was lost and hands the consumer only the newest frame. connectNats passes NATS's own security
 * through (user/password, token, creds file, TLS) and reconnects forever.
 */
export { connectNats, parseNatsUrl, redact, NatsLink } from './connection';
export type { NatsConnectOptions, ParsedNatsUrl, LinkEvent } from './connection';
export { CameraPublisher } from './publisher';
export type { CameraPublisherOptions, PublisherStats } from './publisher';
export { CameraSubscriber } from './subscriber';
export type { CameraSubscriberOptions, CameraStats, SubscriberEvent } from './subscriber';
export { CameraTracker } from './camera-tracker';
export type { CameraTrackerOptions, CameraCounts, NatsFrame, Outage, OutageCause, RefusalReason, FrameVerdict, AnnouncementVerdict, IncomingMessage } from './camera-tracker';
export { checkCameraName, parseCameraSelection, cameraSubject, cameraOfSubject, everyCameraSubject, SUBJECT_ROOT } from './subjects';
export type { CameraSelection, SubjectKind } from './subjects';
export { newEpoch, parseEpoch, compareEpochs } from './epoch';
export type { ParsedEpoch } from './epoch';
export { signMessage, signatureMatches, signaturePrefix, SIGNATURE_LABEL } from './signing';
export type { SignedFields } from './signing';
export { HEADER_EPOCH, HEADER_RECONNECTS, HEADER_SIGNATURE, HEADER_NONCE, frameMessageBytes, decodeWholeMessage } from './wire';
export { NatsTransportError, CameraNameError, PayloadTooLargeError } from './errors';
export type { NatsTransportErrorCode } from './errors';
