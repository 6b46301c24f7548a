package serverdb

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

func TestPostgres(t *testing.T) {
	runSuite(t, postgresSchemas(t, postgresServer(t)))
}

// postgresServer returns the URL of a PostgreSQL server to test against:
// $APPV_TEST_POSTGRES, or else a throwaway cluster started in tb.TempDir()
// with the initdb and pg_ctl of Debian's postgresql package. Without
// either it skips, except under CI, where it fails.
func postgresServer(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv("APPV_TEST_POSTGRES"); u != "" {
		return u
	}
	u, err := startCluster(tb)
	if err == nil {
		return u
	}
	const how = "install Debian's postgresql package (apt-get install postgresql) or set APPV_TEST_POSTGRES=postgres://…"
	if os.Getenv("CI") != "" {
		tb.Fatalf("PostgreSQL tests must run in CI, but no server could be started: %v\n%s", err, how)
	}
	tb.Skipf("no PostgreSQL server: %v (%s)", err, how)
	return ""
}

// postgresBin finds the directory holding initdb, pg_ctl and postgres:
// where pg_ctl on PATH leads, or the newest /usr/lib/postgresql/*/bin.
func postgresBin() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(found, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	dirs = append(dirs, found...)
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("no initdb and pg_ctl on PATH nor in /usr/lib/postgresql/*/bin")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// startCluster initialises and starts a PostgreSQL cluster in a temporary
// directory, listening only on a Unix socket there, and stops it when the
// test ends. PostgreSQL refuses to run as root, so as root the cluster runs
// as the postgres user. Durability is off: it is thrown away.
func startCluster(tb testing.TB) (string, error) {
	bin, err := postgresBin()
	if err != nil {
		return "", err
	}
	dir := tb.TempDir()
	var attr *syscall.SysProcAttr
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root, and no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
		// The testing package makes the directory above 0700.
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			return "", err
		}
		attr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = attr
		cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "appv", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses='' -c max_connections=300 "+
		"-c fsync=off -c synchronous_commit=off -c full_page_writes=off", dir, port)
	logFile := filepath.Join(dir, "postgres.log")
	if err := run("pg_ctl", "-D", data, "-l", logFile, "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		return "", fmt.Errorf("%w\n%s", err, log)
	}
	tb.Cleanup(func() {
		if err := run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"); err != nil {
			tb.Errorf("stopping PostgreSQL: %v", err)
		}
	})
	return fmt.Sprintf("postgres://appv@/postgres?host=%s&port=%d&sslmode=disable", url.QueryEscape(dir), port), nil
}

// freePort returns a TCP port nothing listens on. The cluster listens on a
// Unix socket only, whose name carries the port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// postgresSchemas gives every test its own empty schema on the server at
// base (dropped afterwards), so tests run in parallel on one server and
// need only the CREATE privilege on its database.
func postgresSchemas(t *testing.T, base string) newDatabase {
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	admin := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = admin.Close() })
	return func(t *testing.T) string {
		return newSchema(t, admin, base)
	}
}

func newSchema(tb testing.TB, admin *sql.DB, base string) string {
	tb.Helper()
	name := "appv_test_" + strings.ToLower(rand.Text()[:16])
	if _, err := admin.ExecContext(tb.Context(), "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + name + " CASCADE"); err != nil {
			tb.Errorf("drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + name
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
