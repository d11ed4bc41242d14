import { it } from 'vitest';
import { testApp } from '../helpers/app.js';
it('probe', async () => {
  const t = await testApp();
  const doc = t.app.swagger() as { paths: Record<string, Record<string, { operationId?: string; summary?: string }>> };
  for (const [p, ops] of Object.entries(doc.paths)) console.log(p, Object.entries(ops).map(([m, o]) => `${m}:${o.operationId ?? ''}:${o.summary}`).join(' '));
  await t.close();
});
