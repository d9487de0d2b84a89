/** One Xauthority record: family, then address, display number, auth name and data, each u16 BE length + bytes. */
export function xauthorityEntry(family: number, address: string, number: string, name: string, data: Buffer): Buffer {
  const u16 = (value: number) => Buffer.from([value >> 8, value & 0xff]);
  const field = (value: Buffer) => Buffer.concat([u16(value.length), value]);
  return Buffer.concat([u16(family), field(Buffer.from(address, 'latin1')), field(Buffer.from(number, 'latin1')), field(Buffer.from(name, 'latin1')), field(data)]);
}
