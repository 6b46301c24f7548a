package serverdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

const memoryPath = ":memory:"

// busyTimeoutMS is how long a SQLite connection waits for another
// connection's (or process's) write lock before failing with SQLITE_BUSY.
const busyTimeoutMS = 10000

// sqlitePath turns a URL Open accepts into a file path, or memoryPath.
func sqlitePath(u string) (string, error) {
	var path string
	switch {
	case u == "":
		return DefaultPath, nil
	case u == memoryPath, u == "sqlite:"+memoryPath:
		return memoryPath, nil
	case strings.HasPrefix(u, "sqlite://"):
		path = strings.TrimPrefix(u, "sqlite://")
	case strings.HasPrefix(u, "sqlite:"):
		path = strings.TrimPrefix(u, "sqlite:")
	case strings.Contains(u, "://"):
		scheme, _, _ := strings.Cut(u, "://")
		return "", invalidf("unknown database scheme %q (want sqlite or postgres)", scheme)
	default:
		return u, nil // a plain path, taken as it is
	}
	switch {
	case path == "":
		return "", invalidf("no SQLite file path")
	case strings.ContainsAny(path, "?#"):
		return "", invalidf("SQLite URLs take no parameters")
	}
	return path, nil
}

func sqliteDialect() *dialect {
	return &dialect{
		name:     "sqlite",
		autoID:   "INTEGER PRIMARY KEY AUTOINCREMENT",
		blob:     "BLOB",
		boolean:  "INTEGER",
		classify: classifySQLite,
		readTx:   &sql.TxOptions{ReadOnly: true},
	}
}

func classifySQLite(err error) error {
	se, ok := errors.AsType[*sqlite.Error](err)
	if !ok {
		return nil
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return ErrConflict
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return ErrNotFound
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
		return ErrInvalid
	}
	return nil
}

// sqliteDSN is modernc.org/sqlite's data source name for path. Every
// connection waits busyTimeoutMS for locks and enforces foreign keys. The
// writer begins its transactions IMMEDIATE (taking the write lock at BEGIN,
// so the busy timeout applies to it and no transaction fails half way on
// an upgrade from read to write); readers are read-only.
func sqliteDSN(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	if path != memoryPath {
		// WAL: readers never block the writer nor the writer readers;
		// NORMAL sync is durable at every checkpoint and consistent always.
		q.Add("_pragma", "synchronous(NORMAL)")
		// Read through a memory map: no read system call per page, and
		// one copy of the pages (the kernel's) for every connection.
		q.Add("_pragma", "mmap_size(1073741824)")
		if writer {
			q.Add("_pragma", "journal_mode(WAL)")
			q.Set("_txlock", "immediate")
		} else {
			q.Add("_pragma", "query_only(1)")
		}
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

func openSQLite(ctx context.Context, path string) (*store, error) {
	s := &store{dialect: sqliteDialect()}
	if path == memoryPath {
		db, err := sql.Open("sqlite", sqliteDSN(path, true))
		if err != nil {
			return nil, err
		}
		// One connection holds the whole database.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.w, s.r, s.stmts = db, db, &stmtCache{db: db}
		return s, db.PingContext(ctx)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
	}
	w, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.w, s.r, s.stmts = w, r, &stmtCache{db: r}
	return s, nil
}
