package serverdb

import (
	"context"
	"database/sql"
	"errors"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultPath is the SQLite database Open uses for the URL "".
const DefaultPath = "/var/lib/appv/server/appv.db"

// Open opens (creating or migrating its schema first) the database at url:
//
//   - "" (DefaultPath), "sqlite:///abs/path.db", "sqlite:rel/path.db" or a
//     plain path: a SQLite file, created with its directory if missing;
//   - "sqlite::memory:" or ":memory:": a private in-memory SQLite database
//     (for tests; it lives as long as the DB);
//   - "postgres://…" or "postgresql://…": a PostgreSQL database, in the
//     URL form libpq and pgx accept (host=/socket/dir for a Unix socket).
//
// Any other scheme is ErrInvalid. ctx bounds the opening and migration.
func Open(ctx context.Context, url string) (DB, error) {
	var (
		s   *store
		err error
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s, err = openPostgres(ctx, url)
	default:
		var path string
		path, err = sqlitePath(url)
		if err == nil {
			s, err = openSQLite(ctx, path)
		}
	}
	if err != nil {
		return nil, wrap(nil, "open", redact(url), err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, s.wrap("open", redact(url), err)
	}
	return s, nil
}

// redact hides the password of a database URL for error messages.
func redact(s string) string {
	u, err := neturl.Parse(s)
	switch {
	case err != nil && strings.Contains(s, "://"):
		return "(unparsable database URL)"
	case err != nil || u.Scheme == "" || u.Opaque != "":
		return s
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// store implements DB over database/sql for both SQLite and PostgreSQL.
// Writes go through w, reads through r. On SQLite w holds a single
// connection (SQLite has one writer at a time) and r a pool of read-only
// connections; on PostgreSQL both are the same pool.
type store struct {
	dialect *dialect
	w, r    *sql.DB
	stmts   *stmtCache // prepared statements on r; nil on PostgreSQL
}

var _ DB = (*store)(nil)

func (s *store) Close() error {
	if s.stmts != nil {
		s.stmts.close()
	}
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// dialect holds what differs between the databases.
type dialect struct {
	name string
	// numbered: placeholders are $1, $2... (PostgreSQL); queries are
	// written with ? and rewritten once, then cached.
	numbered bool
	// DDL types.
	autoID, blob, boolean string
	// classify sorts a driver error into ErrConflict, ErrNotFound or
	// ErrInvalid, or returns nil.
	classify func(error) error
	// readTx are the options of a read-only snapshot transaction.
	readTx *sql.TxOptions
	// lockMigrations runs first in the migration transaction.
	lockMigrations string

	rebound sync.Map // query -> rebound query
}

func (d *dialect) q(query string) string {
	if !d.numbered {
		return query
	}
	if v, ok := d.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	v, _ := d.rebound.LoadOrStore(query, b.String())
	return v.(string)
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs queries written with ? placeholders on a querier.
type conn struct {
	q querier
	d *dialect
	// stmts, when set, holds prepared statements for queries on q, which
	// is then the pool they are prepared on. (Not for transactions: to
	// prepare on the pool from within one could wait for a connection that
	// only transactions waiting the same way hold.)
	stmts *stmtCache
}

// stmtCache keeps the prepared statements of the read pool's single
// statement queries: SQLite parses and plans a query anew each time it is
// not prepared, and that was a third of a Publishing call. (pgx keeps its
// own cache per connection.) Only fixed query strings go through it.
type stmtCache struct {
	db    *sql.DB
	stmts sync.Map // query -> *sql.Stmt
}

func (sc *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := sc.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := sc.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := sc.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (sc *stmtCache) close() {
	sc.stmts.Range(func(k, v any) bool {
		_ = v.(*sql.Stmt).Close()
		sc.stmts.Delete(k)
		return true
	})
}

// stmt returns the prepared statement for query, or nil.
func (c conn) stmt(ctx context.Context, query string) *sql.Stmt {
	if c.stmts == nil {
		return nil
	}
	st, err := c.stmts.get(ctx, query)
	if err != nil {
		return nil // run it unprepared; the error, if any, shows there
	}
	return st
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.d.q(query), args...)
}

// execOne runs a statement that must change exactly one row; none is
// ErrNotFound.
func (c conn) execOne(ctx context.Context, query string, args ...any) error {
	return c.execOneOr(ctx, ErrNotFound, query, args...)
}

// execOneOr is execOne returning notFound when no row changed.
func (c conn) execOneOr(ctx context.Context, notFound error, query string, args ...any) error {
	res, err := c.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound
	}
	return nil
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query = c.d.q(query)
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.q.QueryContext(ctx, query, args...)
}

func (c conn) row(ctx context.Context, query string, args ...any) *sql.Row {
	query = c.d.q(query)
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.q.QueryRowContext(ctx, query, args...)
}

// exists reports whether a query returns a row.
func (c conn) exists(ctx context.Context, query string, args ...any) (bool, error) {
	var one int
	err := c.row(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// reader runs single statements on the read pool.
func (s *store) reader() conn { return conn{q: s.r, d: s.dialect, stmts: s.stmts} }

// write runs fn in a write transaction that first increments the revision
// counter. Incrementing first takes the counter row's lock, so on
// PostgreSQL every such transaction runs after the ones before it have
// committed, as on SQLite: checks made in fn stay true until the commit.
func (s *store) write(ctx context.Context, fn func(c conn) error) error {
	return s.inTx(ctx, true, fn)
}

// writeQuiet runs fn in a write transaction that leaves the counter alone:
// for writes that cannot change a Publication.
func (s *store) writeQuiet(ctx context.Context, fn func(c conn) error) error {
	return s.inTx(ctx, false, fn)
}

func (s *store) inTx(ctx context.Context, bump bool, fn func(c conn) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	c := conn{q: tx, d: s.dialect}
	if bump {
		if _, err := c.exec(ctx, `UPDATE revision SET value = value + 1 WHERE id = 1`); err != nil {
			return err
		}
	}
	if err := fn(c); err != nil {
		return err
	}
	return tx.Commit()
}

// read runs fn in a read-only transaction: one consistent snapshot.
func (s *store) read(ctx context.Context, fn func(c conn) error) (err error) {
	tx, err := s.r.BeginTx(ctx, s.dialect.readTx)
	if err != nil {
		return err
	}
	defer func() {
		// A read-only transaction has nothing to commit; Rollback ends it
		// on both databases.
		if rerr := tx.Rollback(); err == nil && rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			err = rerr
		}
	}()
	return fn(conn{q: tx, d: s.dialect})
}

// revisionQuery reads the change counter.
const revisionQuery = `SELECT value FROM revision WHERE id = 1`

func (s *store) Revision(ctx context.Context) (int64, error) {
	var v int64
	err := s.reader().row(ctx, revisionQuery).Scan(&v)
	return v, s.wrap("revision", "", err)
}

// Times are stored as Unix nanoseconds; 0 is the zero time.

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
