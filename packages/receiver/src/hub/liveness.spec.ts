import { Liveness } from './liveness';

describe('Liveness', () => {
  it('is waiting until the first frame, live while frames come, stopped after 5 frame intervals without one', () => {
    const liveness = new Liveness();
    liveness.setFps(10); // 5 intervals: 500 ms
    expect(liveness.state).toBe('waiting');
    expect(liveness.check(10_000)).toBe(false); // no frame yet: not "stopped"
    liveness.frame(1000);
    expect(liveness.state).toBe('live');
    expect(liveness.check(1500)).toBe(false);
    expect(liveness.check(1501)).toBe(true);
    expect(liveness.state).toBe('stopped');
    expect(liveness.check(1600)).toBe(false); // said once
    expect(liveness.stoppedForMs(1700)).toBe(700);
    expect(liveness.frame(2000)).toBe(1000);
    expect(liveness.state).toBe('live');
    expect(liveness.stoppedForMs(2000)).toBeNull();
  });

  it('waits at least 500 ms for a fast camera, and 2 s for one of unknown rate', () => {
    const fast = new Liveness();
    fast.setFps(60);
    expect(fast.thresholdMs).toBe(500);
    const unknown = new Liveness();
    expect(unknown.thresholdMs).toBe(2000);
    const slow = new Liveness();
    slow.setFps(2);
    expect(slow.thresholdMs).toBe(2500);
  });
});
