// The component's entry point: the world's `score` export, bound to the host.
import * as host from 'palisade:plugin/host@0.1.0';
import { exportHeuristic } from '../../../sdk/js/palisade-plugin.js';
import { CapsShouting } from './rule.js';

export const score = exportHeuristic(CapsShouting, host);
