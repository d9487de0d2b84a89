/**
 * @camstream/fanout: one encoded stream to many outbound connections. Every outlet (a TCP
 * receiver at the sender, a browser WebSocket at the receiver) has a latest-wins writer with an
 * optional flow-control window, and a quality rung chosen from its measured link; each rung in use
 * is encoded once per frame. Knows nothing of sockets or of the wire format: outlets do.
 */
export { LatestWinsWriter } from './latest-wins-writer';
export type { LatestWinsWriterOptions } from './latest-wins-writer';
export { RungChooser } from './adaptation';
export type { AdaptationOptions, LinkEstimate } from './adaptation';
export { AdaptiveOutlet } from './adaptive-outlet';
export type { AdaptiveOutletOptions, FlowGate } from './adaptive-outlet';
export { rungLadder, relativeRungSize, RungEncoder } from './rungs';
export type { RungSpec, EncodedRung, RungSource } from './rungs';
export { follows } from './chain';
export type { ChainLink } from './chain';
export { FanOut } from './fan-out';
export type { FanOutOptions, Outlet, Delivery, PublishedImage, Published } from './fan-out';
