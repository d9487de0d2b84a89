import type { Header } from '../schema';

/** How a message is named in error texts: "hello from a sender", "'frame' message". */
export function describeHeader(header: Header): string {
  return header.type === 'hello' ? `hello from a ${header.role}` : `'${header.type}' message`;
}
