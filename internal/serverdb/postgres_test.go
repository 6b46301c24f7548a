package serverdb

import (
	"testing"

	"github.com/appv/appv/internal/serverdb/pgtest"
)

func TestPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	runSuite(t, func(t *testing.T) string { return srv.Database(t) })
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://appv:s3cret@db.example/appv", "postgres://appv:xxxxx@db.example/appv"},
		{"postgres://appv@db.example/appv", "postgres://appv@db.example/appv"},
		{"postgres:///appv?host=/run/postgresql", "postgres:///appv?host=/run/postgresql"},
		{"/var/lib/appv/server/appv.db", "/var/lib/appv/server/appv.db"},
	}
	for _, tc := range tests {
		if got := redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
