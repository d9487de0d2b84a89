import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * The page's own files (packages/browser/page), read once when the server starts. Found through
 * the package, not this file: an app bundle runs this code from its own dist folder.
 */
// A relative path would be resolved against the bundle's folder, hence the package's own name here.
export const PAGE_DIRECTORY = join(dirname(require.resolve('@camstream/browser/package.json')), 'page');

export interface PageAsset {
  readonly contentType: string;
  readonly body: Buffer;
}

export interface PageFiles {
  /** index.html with the stream's title filled in (HTML-escaped). */
  index(title: string): Buffer;
  /** grid.html, the page of several cameras, with the title filled in (HTML-escaped). */
  grid(title: string): Buffer;
  /** viewer.js, frame-receiver.js, viewer.css, grid.js and grid.css by their path, e.g. '/viewer.js'. */
  readonly assets: ReadonlyMap<string, PageAsset>;
}

const ASSETS: ReadonlyArray<[string, string]> = [
  ['viewer.js', 'text/javascript; charset=utf-8'],
  ['frame-receiver.js', 'text/javascript; charset=utf-8'],
  ['viewer.css', 'text/css; charset=utf-8'],
  ['grid.js', 'text/javascript; charset=utf-8'],
  ['grid.css', 'text/css; charset=utf-8'],
];

export async function loadPageFiles(directory = PAGE_DIRECTORY): Promise<PageFiles> {
  const read = async (name: string): Promise<Buffer> => {
    try {
      return await readFile(join(directory, name));
    } catch (err) {
      throw new Error(`cannot read the page file ${join(directory, name)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  };
  const template = (await read('index.html')).toString('utf8');
  if (!template.includes('{{title}}')) throw new Error(`${join(directory, 'index.html')} has no {{title}} placeholder`);
  const gridTemplate = (await read('grid.html')).toString('utf8');
  if (!gridTemplate.includes('{{title}}')) throw new Error(`${join(directory, 'grid.html')} has no {{title}} placeholder`);
  const assets = new Map<string, PageAsset>();
  for (const [name, contentType] of ASSETS) assets.set(`/${name}`, { contentType, body: await read(name) });
  return {
    index: (title) => Buffer.from(template.replaceAll('{{title}}', escapeHtml(title)), 'utf8'),
    grid: (title) => Buffer.from(gridTemplate.replaceAll('{{title}}', escapeHtml(title)), 'utf8'),
    assets,
  };
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
