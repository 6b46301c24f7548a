// Package serverdb is the state of appv's server: packages and their
// versions, identities (users, groups, machines) and their API tokens,
// entitlements, connection groups, dynamic configuration, the clients seen,
// and the publishing query that turns them into what one user or machine
// gets at a publishing refresh. The server keeps no other state, so several
// replicas of it can run on one database.
//
// # Use
//
// Open takes a database URL: a SQLite file (the default, nothing to
// install) or a PostgreSQL database (postgres://…), and creates or migrates
// the schema. The DB it returns is made of small interfaces (PackageStore,
// IdentityStore, TokenStore, EntitlementStore, ConnectionGroupStore,
// DynamicConfigStore, Publisher, ClientStore) so that each consumer can ask
// for only what it uses. A publishing refresh is:
//
//	p, err := db.Authenticate(ctx, secret)      // one indexed query
//	rev, err := db.Revision(ctx)                // one row
//	if ifNoneMatch == serverdb.Tag(p.Identity.ID, rev) { 304 }
//	pub, err := db.Publishing(ctx, p)           // one query; pub.Revision is the ETag
//
// Errors read "serverdb: <operation> <object>: <cause>" and wrap
// ErrNotFound, ErrConflict, ErrInvalid or ErrExpired where they are one of
// those; each method's comment says which it returns. IDs in App-V's GUID
// form are accepted in either case, with or without braces, and stored and
// returned in lower case without braces.
//
// # Schema
//
// The schema is created by migrations written in Go (schema.go), applied in
// one transaction when a DB is opened; schema_version holds the version
// reached. Replicas starting at once are serialized (SQLite: the write lock
// taken by BEGIN IMMEDIATE; PostgreSQL: pg_advisory_xact_lock), so the
// later ones find nothing to do. A database newer than the code is refused.
//
//	revision            the change counter (one row)
//	packages            id, package_id (GUID, unique), name, latest_version → versions.id
//	versions            id (also the order added), version_id (GUID, unique), package → packages.id,
//	                    version and its four numbers, location, content_key, size, sha256, manifest
//	identities          id, kind (user, group, machine), name; unique (kind, name)
//	memberships         (member_id, group_id): users and machines in groups; groups are flat
//	tokens              id, hash (SHA-256 of the secret, unique), identity_id, admin, expiry
//	entitlements        (identity_id, package)
//	connection_groups   group_id, version_id, name, priority
//	connection_group_members   (group_id, position), package_id, version_id (NULL: any), optional
//	connection_group_entitlements   (identity_id, group_id)
//	dynamic_configs     (package, identity_id (0: the package default), kind), xml,
//	                    updated_at, serial (the revision counter of the write that stored it)
//	clients             name, identity_id, last_seen
//
// Packages and versions have integer keys for the joins of the publishing
// query and their GUIDs as unique columns. packages.latest_version is kept
// by every write to versions: the highest Version (numerically, component
// by component: 1.10.0.0 > 1.9.0.0), of equal Versions the one added last.
// Every lookup the publishing query makes is an index lookup: entitlements
// by identity, packages and versions by integer key, dynamic configuration
// by package, connection groups by their entitlements, memberships by
// member.
//
// # Revision
//
// The revision table holds one counter. Every write transaction that can
// change a Publication increments it, first thing, inside the transaction;
// token and client writes cannot and leave it alone. Revision reads it (one
// row by primary key), and Publishing reads it in the same statement as
// the data it returns. A Publication's Revision is Tag(identity, counter):
// equal tags mean equal publications, so a server can answer If-None-Match
// with Authenticate and Revision alone, and replicas agree on tags because
// the counter is in the database. The counter is global, not per identity:
// any write makes every client's next refresh a full one, which is cheap
// next to how rarely an administrator writes. Restoring a backup takes the
// counter back, and tags issued after the backup was taken could come back
// naming other content: after a restore, move the counter well past them
// (UPDATE revision SET value = value + 1000000) before clients refresh.
//
// # Publishing
//
// Publishing returns, for a principal (a user or a machine, with the groups
// it is a member of, read from the database in the same snapshot):
//   - the packages entitled to it or its groups, each once, at its latest
//     version; a package without versions is left out;
//   - for each, the dynamic configuration file of each kind (deployment,
//     user) that applies: the principal's own, else its groups' with the
//     lowest group ID, else the package default;
//   - the connection groups entitled to it or its groups, by priority
//     (lower first) then GroupID, whose non-optional members are all among
//     those packages; members resolve to their pinned version, or for
//     any-version members to the package's latest; optional members that
//     are not published are left out;
//   - Global for machines: App-V's global publishing.
//
// # SQLite and PostgreSQL
//
// One implementation runs both, over database/sql with
// modernc.org/sqlite (pure Go) and pgx's database/sql driver; the
// differences are a handful of type names, placeholders ($1 against ?),
// and how constraint errors are recognized.
//
// SQLite runs in WAL mode with synchronous=NORMAL (durable at checkpoints,
// always consistent), foreign keys on, a 10 s busy timeout, reads through a
// memory map, and two pools: one writer connection whose transactions begin
// IMMEDIATE (taking the write lock at once, so the busy timeout covers
// them and none fails half way), and read-only readers that never block it
// nor are blocked by it. Several processes may share the file: they queue
// for the write lock. Read queries are prepared once per connection.
//
// PostgreSQL needs nothing but a database and a role that can create tables
// in it (the URL may choose a schema with search_path=…). Write
// transactions are READ COMMITTED; incrementing the counter first makes
// them run one at a time, so the checks a write makes (does the package
// exist, does a connection group pin this version) hold until it commits,
// across replicas as on SQLite. Multi-statement reads run in REPEATABLE
// READ read-only transactions; Publishing is a single statement, one round
// trip.
package serverdb
