package serverdb

import (
	"context"
	"strings"
)

// migrations are the schema changes, in order: migration i (from 0) takes
// the schema from version i to version i+1. Append only; never edit one
// that has shipped. Statements are written for both databases, with
// {{autoid}}, {{blob}} and {{bool}} standing for the dialect's types.
var migrations = [][]string{
	// 1: the initial schema.
	{
		// The change counter behind Revision: one row, incremented by every
		// transaction that can change a Publication.
		`CREATE TABLE revision (
			id INTEGER PRIMARY KEY CHECK (id = 1),
			value BIGINT NOT NULL
		)`,
		`INSERT INTO revision (id, value) VALUES (1, 1)`,

		// Packages and versions have integer keys (id) for the joins of
		// the publishing query, and their GUIDs as unique columns.
		// latest_version is kept by every write to versions: the version
		// Publishing serves, NULL when none is left.
		`CREATE TABLE packages (
			id {{autoid}},
			package_id TEXT NOT NULL UNIQUE,
			name TEXT NOT NULL,
			latest_version BIGINT,
			created_at BIGINT NOT NULL
		)`,
		// id also orders versions by when they were added; v_* are the
		// four components of version, for ordering.
		`CREATE TABLE versions (
			id {{autoid}},
			version_id TEXT NOT NULL UNIQUE,
			package BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
			name TEXT NOT NULL,
			version TEXT NOT NULL,
			v_major INTEGER NOT NULL,
			v_minor INTEGER NOT NULL,
			v_build INTEGER NOT NULL,
			v_revision INTEGER NOT NULL,
			location TEXT NOT NULL,
			content_key TEXT NOT NULL,
			size BIGINT NOT NULL,
			sha256 TEXT NOT NULL,
			manifest {{blob}},
			added_at BIGINT NOT NULL
		)`,
		`CREATE INDEX versions_order ON versions
			(package, v_major DESC, v_minor DESC, v_build DESC, v_revision DESC, id DESC)`,

		`CREATE TABLE identities (
			id {{autoid}},
			kind TEXT NOT NULL CHECK (kind IN ('user', 'group', 'machine')),
			name TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			UNIQUE (kind, name)
		)`,
		`CREATE TABLE memberships (
			member_id BIGINT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
			group_id BIGINT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
			PRIMARY KEY (member_id, group_id)
		)`,
		`CREATE INDEX memberships_group ON memberships (group_id, member_id)`,

		// hash is the SHA-256 of the secret; the secret is never stored.
		`CREATE TABLE tokens (
			id {{autoid}},
			hash {{blob}} NOT NULL UNIQUE,
			identity_id BIGINT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
			admin {{bool}} NOT NULL,
			created_at BIGINT NOT NULL,
			expires_at BIGINT NOT NULL
		)`,
		`CREATE INDEX tokens_identity ON tokens (identity_id)`,

		`CREATE TABLE entitlements (
			identity_id BIGINT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
			package BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
			PRIMARY KEY (identity_id, package)
		)`,
		`CREATE INDEX entitlements_package ON entitlements (package)`,

		`CREATE TABLE connection_groups (
			group_id TEXT PRIMARY KEY,
			version_id TEXT NOT NULL UNIQUE,
			name TEXT NOT NULL,
			priority INTEGER NOT NULL,
			updated_at BIGINT NOT NULL
		)`,
		// Members keep their packages and pinned versions from being
		// removed (checked first, with a clear error; the foreign keys are
		// the backstop).
		`CREATE TABLE connection_group_members (
			group_id TEXT NOT NULL REFERENCES connection_groups (group_id) ON DELETE CASCADE,
			position INTEGER NOT NULL,
			package_id TEXT NOT NULL REFERENCES packages (package_id),
			version_id TEXT REFERENCES versions (version_id),
			optional {{bool}} NOT NULL,
			PRIMARY KEY (group_id, position),
			UNIQUE (group_id, package_id)
		)`,
		`CREATE INDEX connection_group_members_package ON connection_group_members (package_id)`,
		`CREATE INDEX connection_group_members_version ON connection_group_members (version_id)`,
		`CREATE TABLE connection_group_entitlements (
			identity_id BIGINT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
			group_id TEXT NOT NULL REFERENCES connection_groups (group_id) ON DELETE CASCADE,
			PRIMARY KEY (identity_id, group_id)
		)`,
		`CREATE INDEX connection_group_entitlements_group ON connection_group_entitlements (group_id)`,

		// identity_id 0 is the package's default, so it has no foreign
		// key: RemoveIdentity deletes an identity's files itself.
		`CREATE TABLE dynamic_configs (
			package BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
			identity_id BIGINT NOT NULL,
			kind TEXT NOT NULL CHECK (kind IN ('deployment', 'user')),
			xml {{blob}} NOT NULL,
			updated_at BIGINT NOT NULL,
			PRIMARY KEY (package, identity_id, kind)
		)`,
		`CREATE INDEX dynamic_configs_identity ON dynamic_configs (identity_id)`,

		`CREATE TABLE clients (
			name TEXT PRIMARY KEY,
			identity_id BIGINT REFERENCES identities (id) ON DELETE SET NULL,
			last_seen BIGINT NOT NULL
		)`,
		`CREATE INDEX clients_identity ON clients (identity_id)`,
	},
	// 2: dynamic configuration files carry the revision counter of the
	// write that stored them, which the server turns into App-V's
	// ConfigurationId (it grows with every change).
	{
		`ALTER TABLE dynamic_configs ADD COLUMN serial BIGINT NOT NULL DEFAULT 0`,
	},
}

// migrate brings the schema to the latest version (len(migrations)) in one transaction. The
// transaction holds the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
// advisory lock), so replicas starting at once migrate one after the other
// and the later ones find nothing to do.
func (s *store) migrate(ctx context.Context) error {
	return s.writeQuiet(ctx, func(c conn) error {
		if s.dialect.lockMigrations != "" {
			if _, err := c.exec(ctx, s.dialect.lockMigrations); err != nil {
				return err
			}
		}
		if _, err := c.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return err
		}
		var current int
		if err := c.row(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
			return err
		}
		if current > len(migrations) {
			return invalidf("the database has schema version %d, newer than this appv's %d: upgrade appv", current, len(migrations))
		}
		if current == len(migrations) {
			return nil
		}
		for _, m := range migrations[current:] {
			for _, stmt := range m {
				if _, err := c.exec(ctx, s.dialect.ddl(stmt)); err != nil {
					return err
				}
			}
		}
		if _, err := c.exec(ctx, `DELETE FROM schema_version`); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO schema_version (version) VALUES (?)`, len(migrations))
		return err
	})
}

func (d *dialect) ddl(stmt string) string {
	return strings.NewReplacer("{{autoid}}", d.autoID, "{{blob}}", d.blob, "{{bool}}", d.boolean).Replace(stmt)
}
