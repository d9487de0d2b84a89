import { redactUrl } from './capture-source';
import { parseSourceSpec } from './sources';

describe('parseSourceSpec', () => {
  it.each([
    ['test', { kind: 'test-pattern' }],
    ['pattern', { kind: 'test-pattern' }],
    ['Test-Pattern', { kind: 'test-pattern' }],
    ['0', { kind: 'camera', index: 0 }],
    ['12', { kind: 'camera', index: 12 }],
    ['camera:2', { kind: 'camera', index: 2 }],
    ['/dev/video1', { kind: 'camera', index: 1 }],
    ['rtsp://cam.local:554/stream', { kind: 'url', url: 'rtsp://cam.local:554/stream' }],
    ['https://example.org/live.m3u8', { kind: 'url', url: 'https://example.org/live.m3u8' }],
    ['videos/demo.mp4', { kind: 'file', path: 'videos/demo.mp4' }],
    ['-1', { kind: 'file', path: '-1' }],
    ['C:video.avi', { kind: 'file', path: 'C:video.avi' }],
  ])('%s', (spec, expected) => {
    expect(parseSourceSpec(spec)).toEqual(expected);
  });
});

describe('redactUrl', () => {
  it('hides a password, which would otherwise travel to every viewer in the description', () => {
    expect(redactUrl('rtsp://admin:secret@10.0.0.2/stream')).toBe('rtsp://admin:***@10.0.0.2/stream');
    expect(redactUrl('rtsp://10.0.0.2/stream')).toBe('rtsp://10.0.0.2/stream');
  });
});
