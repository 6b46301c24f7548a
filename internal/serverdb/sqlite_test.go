package serverdb

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSQLite(t *testing.T) {
	runSuite(t, func(t *testing.T) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "appv.db")
	})
}

func TestSQLitePath(t *testing.T) {
	tests := []struct {
		url, want string
		invalid   bool
	}{
		{"", DefaultPath, false},
		{"sqlite:///var/lib/appv/server/x.db", "/var/lib/appv/server/x.db", false},
		{"sqlite://rel/x.db", "rel/x.db", false},
		{"sqlite:rel/x.db", "rel/x.db", false},
		{"/srv/appv.db", "/srv/appv.db", false},
		{"appv.db", "appv.db", false},
		{":memory:", memoryPath, false},
		{"sqlite::memory:", memoryPath, false},
		{"sqlite://", "", true},
		{"sqlite:///x.db?cache=shared", "", true},
		{"mysql://host/db", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			got, err := sqlitePath(tc.url)
			switch {
			case tc.invalid:
				wantErr(t, err, ErrInvalid)
			case err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Errorf("path %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSQLiteFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "we?ird #name.db")
	db := openDB(t, path)
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	var mode string
	ok(t, internal(t, db).reader().row(t.Context(), `PRAGMA journal_mode`).Scan(&mode))
	if mode != "wal" {
		t.Errorf("journal_mode %q, want wal", mode)
	}
	var fk int
	ok(t, internal(t, db).reader().row(t.Context(), `PRAGMA foreign_keys`).Scan(&fk))
	if fk != 1 {
		t.Errorf("foreign_keys %d", fk)
	}
	// Readers are read-only.
	if _, err := internal(t, db).reader().exec(t.Context(), `DELETE FROM packages`); err == nil {
		t.Error("a reader connection wrote")
	}
}

func TestSQLiteMemory(t *testing.T) {
	db := openDB(t, "sqlite::memory:")
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	u := mustIdentity(t, db, KindUser, "u")
	ok(t, db.Entitle(t.Context(), guidN(1), u.ID))
	pub, err := db.Publishing(t.Context(), Principal{Identity: u})
	ok(t, err)
	if len(pub.Packages) != 1 {
		t.Errorf("published %v", published(pub))
	}
}
