package serverdb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appv/appv/internal/serverdb/pgtest"
)

// The benchmark's world: the scale.
const (
	benchPackages = 10_000
	benchGroups   = 1_000
	benchUsers    = 100_000
	benchMachines = 100
	benchTokens   = 2_000 // users with a token, for the refresh benchmarks
)

// benchWorld is what BenchmarkPublishing seeded.
type benchWorld struct {
	users   []int64  // user IDs
	secrets []string // tokens of benchTokens of them
}

// BenchmarkPublishing measures the publishing refresh on a database of
// 10,000 packages, 100,000 users in 1,000 groups: Publishing for random
// users, alone and from many goroutines at once, and the whole refresh as
// the server does it (Authenticate and Revision; then Publishing if the
// client's tag is stale). It runs against SQLite, and against PostgreSQL
// when APPV_TEST_POSTGRES is set.
func BenchmarkPublishing(b *testing.B) {
	backends := []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "appv.db") }},
	}
	if os.Getenv("APPV_TEST_POSTGRES") != "" {
		backends = append(backends, struct {
			name string
			url  func(b *testing.B) string
		}{"postgres", func(b *testing.B) string { return pgtest.Start(b).Database(b) }})
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			db, err := Open(b.Context(), be.url(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			start := time.Now()
			w := seedBench(b, db)
			b.Logf("%s: seeded in %v", be.name, time.Since(start).Round(time.Millisecond))
			benchRefreshes(b, db, w)
		})
	}
}

func benchRefreshes(b *testing.B, db DB, w benchWorld) {
	ctx := b.Context()
	publish := func(r *rand.Rand) error {
		id := w.users[r.IntN(len(w.users))]
		_, err := db.Publishing(ctx, Principal{Identity: Identity{ID: id, Kind: KindUser}})
		return err
	}
	unchanged := func(r *rand.Rand) error {
		if _, err := db.Authenticate(ctx, w.secrets[r.IntN(len(w.secrets))]); err != nil {
			return err
		}
		_, err := db.Revision(ctx)
		return err
	}
	changed := func(r *rand.Rand) error {
		p, err := db.Authenticate(ctx, w.secrets[r.IntN(len(w.secrets))])
		if err != nil {
			return err
		}
		if _, err := db.Revision(ctx); err != nil {
			return err
		}
		_, err = db.Publishing(ctx, p)
		return err
	}
	b.Run("Publishing", func(b *testing.B) { benchSerial(b, publish) })
	b.Run("PublishingParallel", func(b *testing.B) { benchParallel(b, publish) })
	b.Run("RefreshUnchanged", func(b *testing.B) { benchParallel(b, unchanged) })
	b.Run("RefreshChanged", func(b *testing.B) { benchParallel(b, changed) })
}

// benchSerial calls op b.N times and reports latency percentiles.
func benchSerial(b *testing.B, op func(*rand.Rand) error) {
	r := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		if err := op(r); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatency(b, lat)
}

// benchParallel calls op from 16 goroutines per CPU (many clients
// refreshing at once), and reports latency percentiles and throughput.
func benchParallel(b *testing.B, op func(*rand.Rand) error) {
	var (
		mu  sync.Mutex
		all []time.Duration
		seq uint64
	)
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		seq++
		r := rand.New(rand.NewPCG(seq, 7))
		mu.Unlock()
		var lat []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := op(r); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	reportLatency(b, all)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// seedBench fills db with the benchmark's world in one transaction of bulk
// inserts (the DB methods would take one transaction per row):
//   - 10,000 packages, a tenth of them with a second, higher version;
//   - 1,000 groups, 100,000 users each in 1-3 groups, 100 machines;
//   - every group entitled to 20 packages, every 20th user to 1-2 packages
//     directly, every machine to 5;
//   - a default deployment configuration for every 10th package, a user
//     configuration for half the groups on one of their packages;
//   - 100 connection groups of 3 packages, entitled to 3 groups each;
//   - tokens for 2,000 users.
func seedBench(b *testing.B, db DB) benchWorld {
	s := internal(b, db)
	r := rand.New(rand.NewPCG(42, 42))
	ctx := context.Background()
	now := time.Now().UnixNano()
	var w benchWorld

	// Package p (from 0) has key p+1 and GUID guidN(p+1).
	var packages, versions [][]any
	var vkey int64
	for p := range benchPackages {
		nv := 1
		if p%10 == 0 {
			nv = 2
		}
		for v := 1; v <= nv; v++ {
			vkey++
			versions = append(versions, []any{vkey, guidN(1_000_000 + p*10 + v), int64(p + 1), fmt.Sprintf("App %d", p), fmt.Sprintf("%d.0.0.0", v),
				v, 0, 0, 0, fmt.Sprintf("https://cdn.example/%d/%d.appv", p, v), "", 50_000_000, strings.Repeat("ab", 32), []byte("<Package/>"), now})
		}
		packages = append(packages, []any{int64(p + 1), guidN(p + 1), fmt.Sprintf("App %d", p), vkey, now})
	}

	var identities, memberships, entitlements [][]any
	groupPkgs := make([][]int, benchGroups+1)
	for g := 1; g <= benchGroups; g++ {
		identities = append(identities, []any{int64(g), "group", fmt.Sprintf("group%04d", g), now})
		for _, p := range pick(r, benchPackages, 20) {
			groupPkgs[g] = append(groupPkgs[g], p)
			entitlements = append(entitlements, []any{int64(g), int64(p + 1)})
		}
	}
	for u := range benchUsers {
		id := int64(benchGroups + 1 + u)
		w.users = append(w.users, id)
		identities = append(identities, []any{id, "user", fmt.Sprintf("user%06d", u), now})
		for _, g := range pick(r, benchGroups, 1+r.IntN(3)) {
			memberships = append(memberships, []any{id, int64(g + 1)})
		}
		if u%20 == 0 {
			for _, p := range pick(r, benchPackages, 1+r.IntN(2)) {
				entitlements = append(entitlements, []any{id, int64(p + 1)})
			}
		}
	}
	for m := range benchMachines {
		id := int64(benchGroups + benchUsers + 1 + m)
		identities = append(identities, []any{id, "machine", fmt.Sprintf("pc%03d.example.org", m), now})
		for _, p := range pick(r, benchPackages, 5) {
			entitlements = append(entitlements, []any{id, int64(p + 1)})
		}
	}

	var configs [][]any
	for p := 0; p < benchPackages; p += 10 {
		configs = append(configs, []any{int64(p + 1), int64(0), ConfigDeployment, []byte("<DeploymentConfiguration/>"), now})
	}
	for g := 1; g <= benchGroups; g += 2 {
		configs = append(configs, []any{int64(groupPkgs[g][0] + 1), int64(g), ConfigUser, []byte("<UserConfiguration/>"), now})
	}

	var cgroups, cmembers, cents [][]any
	for c := range 100 {
		gid := guidN(2_000_000 + c)
		cgroups = append(cgroups, []any{gid, guidN(3_000_000 + c), fmt.Sprintf("cg%d", c), c % 5, now})
		g := 1 + r.IntN(benchGroups)
		for i, p := range groupPkgs[g][:3] {
			cmembers = append(cmembers, []any{gid, i, guidN(p + 1), nil, i == 2})
		}
		for _, eg := range append([]int{g - 1}, pick(r, benchGroups, 2)...) {
			cents = append(cents, []any{int64(eg + 1), gid})
		}
	}

	var tokens [][]any
	for i, u := range pick(r, benchUsers, benchTokens) {
		secret := fmt.Sprintf("%sbench%06d", tokenPrefix, i)
		id := w.users[u]
		w.secrets = append(w.secrets, secret)
		tokens = append(tokens, []any{hashSecret(secret), id, false, now, int64(0)})
	}

	err := s.write(ctx, func(c conn) error {
		for _, t := range []struct {
			table string
			cols  string
			rows  [][]any
		}{
			{"packages", "id, package_id, name, latest_version, created_at", packages},
			{"versions", "id, version_id, package, name, version, v_major, v_minor, v_build, v_revision, location, content_key, size, sha256, manifest, added_at", versions},
			{"identities", "id, kind, name, created_at", identities},
			{"memberships", "member_id, group_id", memberships},
			{"entitlements", "identity_id, package", dedupe(entitlements)},
			{"dynamic_configs", "package, identity_id, kind, xml, updated_at", configs},
			{"connection_groups", "group_id, version_id, name, priority, updated_at", cgroups},
			{"connection_group_members", "group_id, position, package_id, version_id, optional", cmembers},
			{"connection_group_entitlements", "identity_id, group_id", dedupe(cents)},
			{"tokens", "hash, identity_id, admin, created_at, expires_at", tokens},
		} {
			if err := bulkInsert(ctx, c, t.table, t.cols, t.rows); err != nil {
				return fmt.Errorf("%s: %w", t.table, err)
			}
		}
		if s.dialect.name == "postgres" {
			// Explicit keys do not advance the sequences.
			for _, table := range []string{"packages", "versions", "identities"} {
				if _, err := c.exec(ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', 'id'), (SELECT MAX(id) FROM `+table+`))`); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
	// PostgreSQL's autovacuum would analyze the tables after such a load.
	// SQLite never does by itself, and its plans here need no statistics.
	if s.dialect.name == "postgres" {
		if _, err := s.w.ExecContext(ctx, "ANALYZE"); err != nil {
			b.Fatalf("analyze: %v", err)
		}
	}
	return w
}

// pick returns k distinct numbers in [0, n).
func pick(r *rand.Rand, n, k int) []int {
	seen := make(map[int]bool, k)
	out := make([]int, 0, k)
	for len(out) < k {
		if i := r.IntN(n); !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

// dedupe drops repeated two-column rows.
func dedupe(rows [][]any) [][]any {
	seen := map[string]bool{}
	var out [][]any
	for _, row := range rows {
		k := fmt.Sprint(row...)
		if !seen[k] {
			seen[k] = true
			out = append(out, row)
		}
	}
	return out
}

// bulkInsert inserts rows with multi-row INSERTs, staying under both
// databases' limits on placeholders per statement.
func bulkInsert(ctx context.Context, c conn, table, cols string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	width := len(rows[0])
	per := 30000 / width
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	for len(rows) > 0 {
		n := min(per, len(rows))
		args := make([]any, 0, n*width)
		for _, row := range rows[:n] {
			args = append(args, row...)
		}
		q := "INSERT INTO " + table + " (" + cols + ") VALUES " + strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", ")
		if _, err := c.exec(ctx, q, args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}
