/** `npm run schema`: writes `lifecycle.schema.json` (JSON Schema of `lifecycle.config.json`) at the repo root. */
import { fileURLToPath } from 'node:url';
import { writeConfigJsonSchema } from '../lib/config-file.ts';

const target = fileURLToPath(new URL('../lifecycle.schema.json', import.meta.url));
writeConfigJsonSchema(target);
console.log(`wrote ${target}`);
