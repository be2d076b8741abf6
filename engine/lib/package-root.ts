import { fileURLToPath } from 'node:url';

/**
 * The package's root folder (where package.json, schemas/ and providers/ are). This module sits
 * two levels below it both as TypeScript source (engine/lib/) and compiled (dist/lib/).
 */
export const packageRoot: string = fileURLToPath(new URL('../../', import.meta.url));
