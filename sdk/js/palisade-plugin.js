// The Palisade plugin SDK for JavaScript: write a heuristic rule as a class,
// build it into a WebAssembly component with componentize-js
// (`scripts/build-plugins`), and test it natively with node's test runner
// (`testing.js`).
//
// A rule is a class with `constructor(settings)` and `score(event) -> verdict`.
// `exportHeuristic(Rule, host)` makes the world's `score` export: it scores a
// batch one event at a time and builds the rule once per instance from the
// manifest's `[settings]` (through the host's `config`). Events have the WIT
// record's fields in camelCase (`content`, `userId`, `authorId`, ...); a
// verdict is `{ score, category, hits }` with categories as below.
//
// This module runs inside the component: it must not import node modules
// (the test harness, which does, is `testing.js`). The component is built
// without WASI (no files, sockets, clocks or stdio): console output goes to the
// host log, and `host.nowMs()` is the clock.

/** The categories a hit can point to (the WIT `category` enum's values). */
export const Category = Object.freeze({
  LOW_RISK: 'low-risk',
  SPAM: 'spam',
  TOXIC: 'toxic',
  TARGETED_HARASSMENT: 'targeted-harassment',
  HATE_SPEECH: 'hate-speech',
  VIOLENCE: 'violence',
  SEXUAL: 'sexual',
});

/** A verdict that found nothing. */
export function clean() {
  return { score: 0, category: undefined, hits: [] };
}

/** One rule that fired: its name, how strongly (0..1), what it points to, and why. */
export function hit(rule, weight, category, detail) {
  return { rule, weight, category, detail };
}

/** The strongest hit's weight plus a quarter of the others', clamped to [0, 1];
 *  the category of the strongest hit (as the Rust SDK does). */
export function fromHits(hits) {
  if (hits.length === 0) return clean();
  const top = hits.reduce((a, b) => (b.weight > a.weight ? b : a));
  const extra = hits.reduce((sum, h) => sum + h.weight, 0) - top.weight;
  return { score: Math.min(Math.max(top.weight + 0.25 * extra, 0), 1), category: top.category, hits };
}

/** A manifest setting that is present but not of the asked type. */
export class SettingError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SettingError';
  }
}

/** The plugin's `[settings]`, typed on read. Lists arrive newline-joined. */
export class Settings {
  constructor(get) {
    this.get = get;
  }
  string(key, fallback) {
    return this.get(key) ?? fallback;
  }
  number(key, fallback) {
    return this.parse(key, fallback, 'a number', (raw) => Number(raw), Number.isFinite);
  }
  integer(key, fallback) {
    return this.parse(key, fallback, 'a whole number', (raw) => Number(raw), Number.isInteger);
  }
  boolean(key, fallback) {
    return this.parse(key, fallback, 'true or false', (raw) => raw === 'true', (_, raw) => raw === 'true' || raw === 'false');
  }
  list(key, fallback) {
    const raw = this.get(key);
    return raw === undefined || raw === null ? [...fallback] : raw.split('\n').filter((line) => line);
  }
  parse(key, fallback, what, convert, valid) {
    const raw = this.get(key);
    if (raw === undefined || raw === null) return fallback;
    const value = convert(raw);
    if (raw.trim() === '' || !valid(value, raw)) {
      throw new SettingError(`setting \`${key}\`: expected ${what}, got ${JSON.stringify(raw)}`);
    }
    return value;
  }
}

/** The share of cased letters that are uppercase, and how many cased letters
 *  there are (the Rust SDK's `text::caps_ratio`, by case mapping). */
export function capsRatio(text) {
  let upper = 0;
  let cased = 0;
  // An index loop over UTF-16 units with an ASCII fast path: the engine in the
  // component is an interpreter, and it pays for every string it allocates.
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 128) {
      if (code >= 65 && code <= 90) {
        upper += 1;
        cased += 1;
      } else if (code >= 97 && code <= 122) {
        cased += 1;
      }
      continue;
    }
    const point = text.codePointAt(i);
    if (point > 0xffff) i += 1;
    const c = String.fromCodePoint(point);
    const lower = c.toLowerCase();
    const upperCase = c.toUpperCase();
    if (lower !== c && upperCase === c) {
      upper += 1;
      cased += 1;
    } else if (upperCase !== c && lower === c) {
      cased += 1;
    }
  }
  return cased === 0 ? [0, 0] : [upper / cased, cased];
}

/** The world's `score` export: `export const score = exportHeuristic(MyRule, host);`
 *  where `host` is `import * as host from 'palisade:plugin/host@0.1.0'`. */
export function exportHeuristic(RuleClass, host) {
  let rule;
  return (events) => {
    try {
      if (rule === undefined) {
        // The component has no WASI: console output goes to the host log.
        const to = (level) => (...args) => host.log(level, args.map(String).join(' '));
        globalThis.console = { log: to('info'), info: to('info'), debug: to('debug'), warn: to('warn'), error: to('error') };
        rule = new RuleClass(new Settings((key) => host.config(key)));
      }
      return events.map((event) => rule.score(event));
    } catch (e) {
      // Logged before the call traps, so the host's fault quotes it.
      host.log('error', `${e?.stack ?? ''}\n${e}`.trim());
      throw e;
    }
  };
}
