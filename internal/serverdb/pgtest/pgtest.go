// Package pgtest gives tests a PostgreSQL server to run against: the one
// $APPV_TEST_POSTGRES names, or a throwaway cluster started with the initdb
// and pg_ctl of Debian's postgresql package. Each test gets an empty schema
// of its own on it, so tests run in parallel on one server. Without
// PostgreSQL the tests skip, except under CI (CI set), where they fail. It
// is for tests only.
package pgtest

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

// How says how to make PostgreSQL tests run.
const How = "install Debian's postgresql package (apt-get install postgresql) or set APPV_TEST_POSTGRES=postgres://…"

// Server is a PostgreSQL server for the tests of one test function.
type Server struct {
	// URL is the server's database URL (postgres://…).
	URL   string
	admin *sql.DB
}

// Start returns the server to test against: $APPV_TEST_POSTGRES, or else a
// throwaway cluster started in tb.TempDir() and stopped when tb ends.
// Without either it skips tb, except under CI, where it fails it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	u := os.Getenv("APPV_TEST_POSTGRES")
	if u == "" {
		var err error
		if u, err = startCluster(tb); err != nil {
			if os.Getenv("CI") != "" {
				tb.Fatalf("PostgreSQL tests must run in CI, but no server could be started: %v\n%s", err, How)
			}
			tb.Skipf("no PostgreSQL server: %v (%s)", err, How)
		}
	}
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	admin := stdlib.OpenDB(*cfg)
	tb.Cleanup(func() { _ = admin.Close() })
	return &Server{URL: u, admin: admin}
}

// Database creates an empty schema on s for tb, dropped when tb ends, and
// returns the URL that selects it (search_path=…). Opening the URL several
// times gives several handles on one database, as replicas have.
func (s *Server) Database(tb testing.TB) string {
	tb.Helper()
	name := "appv_test_" + strings.ToLower(rand.Text()[:16])
	if _, err := s.admin.ExecContext(tb.Context(), "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("pgtest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := s.admin.Exec("DROP SCHEMA " + name + " CASCADE"); err != nil {
			tb.Errorf("pgtest: drop schema: %v", err)
		}
	})
	sep := "?"
	if strings.Contains(s.URL, "?") {
		sep = "&"
	}
	return s.URL + sep + "search_path=" + name
}

// URL is Start(tb).Database(tb): one empty database for one test.
func URL(tb testing.TB) string {
	tb.Helper()
	return Start(tb).Database(tb)
}

// bin finds the directory holding initdb, pg_ctl and postgres: where
// pg_ctl on PATH leads, or the newest /usr/lib/postgresql/*/bin.
func bin() (string, error) {
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
	bin, err := bin()
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
