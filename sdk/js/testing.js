// Run a rule natively under node's test runner, with the settings of its
// manifest, as the host would. Not for use inside a component (it reads files).

import { readFileSync } from 'node:fs';
import { Settings } from './palisade-plugin.js';

/** An event with the WIT record's fields; `content` and any overrides given. */
export function event(content, overrides = {}) {
  return {
    eventId: 'test-event',
    eventType: 'message',
    platform: 'test',
    userId: 'test-user',
    authorId: undefined,
    channelId: undefined,
    content,
    timestampMs: 0n,
    metadata: [],
    ...overrides,
  };
}

export class Harness {
  /** `settings`: an object of setting values (lists and scalars, as in TOML). */
  constructor(RuleClass, settings = {}) {
    const text = Object.fromEntries(
      Object.entries(settings).map(([k, v]) => [k, Array.isArray(v) ? v.join('\n') : String(v)]),
    );
    this.rule = new RuleClass(new Settings((key) => text[key]));
  }

  /** With the `[settings]` of a `plugin.toml` (path or URL). */
  static fromManifest(RuleClass, manifest) {
    return new Harness(RuleClass, settingsOf(readFileSync(manifest, 'utf8')));
  }

  scoreText(content) {
    return this.rule.score(event(content));
  }

  score(e) {
    return this.rule.score(e);
  }
}

// The `[settings]` table of a manifest: `key = value` lines with numbers,
// booleans, strings and one-line string arrays (what plugin manifests use).
function settingsOf(toml) {
  const settings = {};
  let inSettings = false;
  for (const raw of toml.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line.startsWith('[')) {
      inSettings = line === '[settings]';
    } else if (inSettings && line.includes('=')) {
      const at = line.indexOf('=');
      settings[line.slice(0, at).trim()] = JSON.parse(line.slice(at + 1).trim());
    }
  }
  return settings;
}
