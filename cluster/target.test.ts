import { describe, expect, it } from 'vitest';
import { CAPABILITIES, cannotSentence, hasCapabilities, missingCapabilities, type Target } from './target.ts';

// A target as the capability checks see it: only which optional capabilities are there.
const target = (caps: Partial<Target>): Target => ({ kind: 'existing', name: 'staging', ...caps }) as Target;

describe('target capabilities', () => {
  it('says which capabilities a target lacks, in the order asked, in the words of the map', () => {
    const t = target({ images: { load: async () => {} } });
    expect(missingCapabilities(t, ['images', 'dependencies', 'controlPlane'])).toEqual(['dependencies', 'controlPlane']);
    expect(hasCapabilities(t, ['images'])).toBe(true);
    expect(hasCapabilities(t, ['images', 'nodes'])).toBe(false);
    expect(cannotSentence(t, ['dependencies', 'controlPlane'])).toBe(
      'the existing target cannot take dependencies away or stop and start its control plane',
    );
  });

  it('every capability has its words', () => {
    for (const [name, c] of Object.entries(CAPABILITIES)) expect(c.does, name).toMatch(/^[a-z]/);
    expect(Object.keys(CAPABILITIES)).toEqual([
      'images',
      'dependencies',
      'attribution',
      'routing',
      'podReach',
      'controlPlane',
      'nodes',
      'network',
    ]);
  });
});
