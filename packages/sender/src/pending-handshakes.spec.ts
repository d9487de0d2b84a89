import { PendingHandshakes } from './pending-handshakes';

describe('PendingHandshakes', () => {
  it('over the per-address bound, closes the oldest silent connection of that address, never the newcomer', () => {
    const pending = new PendingHandshakes<string>({ total: 100, perAddress: 3 });
    expect(pending.add('a1', 'A')).toBeUndefined();
    expect(pending.add('a2', 'A')).toBeUndefined();
    expect(pending.add('b1', 'B')).toBeUndefined();
    expect(pending.add('a3', 'A')).toBeUndefined();
    expect(pending.add('a4', 'A')).toBe('a1');
    expect(pending.add('a5', 'A')).toBe('a2');
    expect(pending.countFrom('A')).toBe(3);
    expect(pending.countFrom('B')).toBe(1);
    expect(pending.size).toBe(4);
  });

  it('closes refused connections first, then silent ones, and ones mid-handshake last', () => {
    const pending = new PendingHandshakes<string>({ total: 100, perAddress: 3 });
    pending.add('authenticating', 'A');
    pending.add('silent', 'A');
    pending.add('refused', 'A');
    pending.advance('authenticating', 'hello');
    pending.advance('refused', 'refused');
    expect(pending.add('n1', 'A')).toBe('refused');
    expect(pending.add('n2', 'A')).toBe('silent');
    expect(pending.add('n3', 'A')).toBe('n1');
    pending.advance('n2', 'hello');
    pending.advance('n3', 'hello');
    // Only connections that sent their hello are left: the oldest of them goes.
    expect(pending.add('n4', 'A')).toBe('authenticating');
  });

  it('over the total bound, the address holding the most gives one up', () => {
    const pending = new PendingHandshakes<string>({ total: 4, perAddress: 4 });
    pending.add('b1', 'B');
    pending.add('a1', 'A');
    pending.add('a2', 'A');
    pending.add('a3', 'A');
    expect(pending.add('c1', 'C')).toBe('a1');
    expect(pending.add('c2', 'C')).toBe('a2');
    expect(pending.add('d1', 'D')).toBe('c1'); // now C holds the most
    expect(pending.size).toBe(4);
  });

  it('forgets connections that finished or closed, and ignores unknown ones', () => {
    const pending = new PendingHandshakes<string>({ total: 2, perAddress: 2 });
    pending.add('a1', 'A');
    pending.add('a2', 'A');
    pending.remove('a1');
    pending.remove('never added');
    pending.advance('never added', 'hello');
    expect(pending.add('a3', 'A')).toBeUndefined();
    expect(pending.countFrom('A')).toBe(2);
    pending.remove('a2');
    pending.remove('a3');
    expect(pending.size).toBe(0);
    expect(pending.countFrom('A')).toBe(0);
  });

  it('refuses limits that are not whole numbers of at least 1', () => {
    expect(() => new PendingHandshakes({ total: 0, perAddress: 1 })).toThrow(/total must be a whole number of at least 1, got 0/);
    expect(() => new PendingHandshakes({ total: 4, perAddress: 1.5 })).toThrow(/perAddress/);
  });
});
