import { CameraNameError } from './errors';
import { cameraOfSubject, cameraSubject, checkCameraName, everyCameraSubject, parseCameraSelection } from './subjects';

describe('camera names and subjects', () => {
  it('accepts 1 to 64 letters, digits, dashes and underscores', () => {
    for (const name of ['a', 'front-door', 'CAM_01', 'x'.repeat(64)]) expect(checkCameraName(name)).toBe(name);
  });

  it('refuses anything else, saying what is wrong', () => {
    const why = (name: string) => {
      try {
        checkCameraName(name);
      } catch (error) {
        expect(error).toBeInstanceOf(CameraNameError);
        expect((error as CameraNameError).code).toBe('ERR_CAMERA_NAME');
        return (error as Error).message;
      }
      throw new Error(`${name} was accepted`);
    };
    expect(why('')).toBe(`camera name "" is not valid: it is empty; use 1 to 64 letters, digits, '-' or '_' (the name is a NATS subject token)`);
    expect(why('a.b')).toContain('it contains "."');
    expect(why('*')).toContain('it contains "*"');
    expect(why('>')).toContain('it contains ">"');
    expect(why('two words')).toContain('it contains " "');
    expect(why('caméra')).toContain('it contains "é"');
    expect(why('x'.repeat(65))).toContain('it is 65 characters long');
    expect(why('x'.repeat(500))).toMatch(/^camera name "x{80}\.\.\." is not valid: it is 500 characters long/);
  });

  it('puts everything about a camera under camstream.NAME, and reads the camera back from a subject', () => {
    expect(cameraSubject('porch', 'frames')).toBe('camstream.porch.frames');
    expect(cameraSubject('porch', 'hello')).toBe('camstream.porch.hello');
    expect(cameraSubject('porch', 'describe')).toBe('camstream.porch.describe');
    expect(() => cameraSubject('a.b', 'frames')).toThrow(CameraNameError);
    expect(everyCameraSubject('frames')).toBe('camstream.*.frames');
    expect(cameraOfSubject('camstream.porch.frames', 'frames')).toBe('porch');
    expect(cameraOfSubject('camstream.porch.frames', 'hello')).toBeUndefined();
    expect(cameraOfSubject('camstream.a.b.frames', 'frames')).toBeUndefined();
    expect(cameraOfSubject('other.porch.frames', 'frames')).toBeUndefined();
  });

  it("parses a command line's camera selection: '*' or a comma-separated list", () => {
    expect(parseCameraSelection('*')).toBe('*');
    expect(parseCameraSelection(' * ')).toBe('*');
    expect(parseCameraSelection('porch')).toEqual(['porch']);
    expect(parseCameraSelection('porch, yard,porch')).toEqual(['porch', 'yard']);
    expect(() => parseCameraSelection('porch,*')).toThrow(`camera list "porch,*" mixes '*' with names: use '*' alone to watch every camera`);
    expect(() => parseCameraSelection('porch,,yard')).toThrow('camera name "" is not valid: it is empty');
  });
});
