import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SettingError } from '../../../sdk/js/palisade-plugin.js';
import { Harness } from '../../../sdk/js/testing.js';
import { CapsShouting } from './rule.js';

const harness = Harness.fromManifest(CapsShouting, new URL('./plugin.toml', import.meta.url));

test('shouting fires and short acronyms do not', () => {
  const verdict = harness.scoreText('WHY WOULD YOU EVER DO THAT');
  assert.ok(verdict.score > 0.3, JSON.stringify(verdict));
  assert.equal(verdict.hits[0].rule, 'caps-shouting');
  assert.equal(harness.scoreText('OK, see you at NASA HQ').score, 0);
  assert.equal(harness.scoreText('LOL').score, 0);
});

test('a bad setting is named', () => {
  assert.throws(() => new Harness(CapsShouting, { min_ratio: 'loud' }), SettingError, /min_ratio/);
});
