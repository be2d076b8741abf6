import { afterAll, describe } from 'vitest';
import { openPostgresStore } from '../../engine/store/postgres/postgres-store.js';
import { postgresTestUrl, requirePostgresUnderCi, TestSchemas, withApplicationName } from '../support/postgres.js';
import { describeStateStoreContract } from './contract.js';

requirePostgresUnderCi('PostgresStore');

describe.skipIf(postgresTestUrl === undefined)('PostgreSQL store', () => {
  const appName = `pbtest_${process.pid}`;
  const url = withApplicationName(postgresTestUrl ?? 'postgres://unset', appName);
  const schemas = new TestSchemas(postgresTestUrl ?? 'postgres://unset', 'store');

  afterAll(async () => {
    await schemas.expectNoConnections(appName);
    await schemas.dropAll();
  });

  describeStateStoreContract('postgres', (dir, clock) => openPostgresStore(url, { schema: schemas.forDir(dir), ...(clock === undefined ? {} : { clock }) }));
});
