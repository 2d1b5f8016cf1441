// ALL-CAPS shouting: a high share of uppercase letters in a long enough message.

import { Category, capsRatio, clean, fromHits, hit } from '../../../sdk/js/palisade-plugin.js';

export class CapsShouting {
  constructor(settings) {
    this.minRatio = settings.number('min_ratio', 0.7);
    this.minLetters = settings.integer('min_letters', 10);
    this.maxWeight = settings.number('max_weight', 0.4);
  }

  score(event) {
    const [ratio, letters] = capsRatio(event.content);
    if (letters < this.minLetters || ratio < this.minRatio) return clean();
    // Scale from half the cap at the threshold to the full cap at 100 % caps.
    const span = Math.max(1 - this.minRatio, 1e-7);
    const weight = this.maxWeight * (0.5 + (0.5 * (ratio - this.minRatio)) / span);
    const detail = `${(ratio * 100).toFixed(0)}% of ${letters} letters uppercase`;
    return fromHits([hit('caps-shouting', weight, Category.TOXIC, detail)]);
  }
}
