import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMigrations, migrationChecksum } from '../src/index.js';

describe('loadMigrations', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agora-migrations-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const files = async (entries: Record<string, string>): Promise<void> => {
    for (const [name, sql] of Object.entries(entries)) await writeFile(join(dir, name), sql);
  };

  it('reads NNNN_name.sql files in numeric order and ignores other files', async () => {
    await files({
      '0002_add_posts.sql': 'create table posts (id bigint primary key);',
      '0001_init.sql': 'create table users (id bigint primary key);',
      'README.md': 'not a migration',
    });
    const migrations = await loadMigrations(dir);
    expect(migrations.map((m) => [m.version, m.name])).toEqual([
      [1, 'init'],
      [2, 'add_posts'],
    ]);
    expect(migrations[0]?.checksum).toBe(migrationChecksum('create table users (id bigint primary key);'));
  });

  it('accepts a file URL', async () => {
    await files({ '0001_init.sql': 'select 1;' });
    expect(await loadMigrations(pathToFileURL(`${dir}/`))).toHaveLength(1);
  });

  it('returns nothing for an empty folder', async () => {
    expect(await loadMigrations(dir)).toEqual([]);
  });

  it('rejects a duplicate version', async () => {
    await files({ '0001_init.sql': 'select 1;', '0001_other.sql': 'select 2;' });
    await expect(loadMigrations(dir)).rejects.toMatchObject({ code: 'DB_MIGRATION_DUPLICATE_VERSION' });
  });

  it('rejects a gap in the numbering', async () => {
    await files({ '0001_init.sql': 'select 1;', '0003_later.sql': 'select 3;' });
    await expect(loadMigrations(dir)).rejects.toMatchObject({ code: 'DB_MIGRATION_GAP' });
  });

  it('rejects numbering that does not start at 1', async () => {
    await files({ '0002_init.sql': 'select 1;' });
    await expect(loadMigrations(dir)).rejects.toMatchObject({ code: 'DB_MIGRATION_GAP' });
  });

  it('rejects a .sql file that is not named NNNN_name.sql', async () => {
    await files({ '0001_init.sql': 'select 1;', '2_typo.sql': 'select 2;' });
    await expect(loadMigrations(dir)).rejects.toMatchObject({ code: 'DB_MIGRATION_INVALID_FILENAME' });
  });

  it('checksums ignore CRLF versus LF line endings', () => {
    expect(migrationChecksum('select 1;\r\nselect 2;\r\n')).toBe(migrationChecksum('select 1;\nselect 2;\n'));
    expect(migrationChecksum('select 1;')).not.toBe(migrationChecksum('select 2;'));
  });
});
