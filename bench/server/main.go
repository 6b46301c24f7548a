// Command server benchmarks appv server at the scale: 10,000
// packages, 100,000 users in 1,000 groups. It seeds a database through
// serverdb, starts the real `appv server` on it in its own process, and
// measures from this one, over loopback HTTP:
//
//   - publishing refreshes from 1,000 concurrent clients, each refreshing on
//     its own schedule so that together they offer -rate refreshes a second
//     (open loop: latency is measured from when a refresh was due, so a
//     server that falls behind shows it): p50, p99, achieved rate;
//   - the same with every client saying If-None-Match (the unchanged
//     refresh, answered 304) and without (the full document);
//   - the most refreshes a second the server answers with 1,000 clients
//     sending back to back (closed loop), and its CPU time per refresh;
//   - package content: appv server's /content/ against Debian's nginx
//     serving the same file from the same directory, whole-file GETs and
//     1 MiB Range reads from parallel clients.
//
// It prints a table; bench/README.md records the results.
//
//	go build -o /tmp/appv ./cmd/appv
//	go run ./bench/server -appv /tmp/appv
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/harness"
	"github.com/appv/appv/internal/server/api"
	"github.com/appv/appv/internal/serverdb"
)

type options struct {
	appv                            string
	dir                             string
	db                              string
	packages, users, groups, tokens int
	clients                         int
	rate                            float64
	duration                        time.Duration
	contentMiB, contentClients      int
	skipRefresh, skipContent        bool
}

func main() {
	var o options
	flag.StringVar(&o.appv, "appv", "", "the appv binary (required)")
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a new temporary one, removed at the end)")
	flag.StringVar(&o.db, "db", "", "database URL (default: SQLite in the work directory)")
	flag.IntVar(&o.packages, "packages", 10_000, "packages")
	flag.IntVar(&o.users, "users", 100_000, "users")
	flag.IntVar(&o.groups, "groups", 1_000, "groups (each user in one or two)")
	flag.IntVar(&o.tokens, "tokens", 5_000, "users with a token, whom the clients refresh as")
	flag.IntVar(&o.clients, "clients", 1_000, "concurrent clients")
	flag.Float64Var(&o.rate, "rate", 5_000, "refreshes a second all clients offer together (open-loop runs)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each run")
	flag.IntVar(&o.contentMiB, "content-mib", 256, "size of the package served in the content runs")
	flag.IntVar(&o.contentClients, "content-clients", 8, "parallel clients in the content runs")
	flag.BoolVar(&o.skipRefresh, "skip-refresh", false, "leave out the refresh runs")
	flag.BoolVar(&o.skipContent, "skip-content", false, "leave out the content runs")
	flag.Parse()
	if o.appv == "" {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/server -appv /tmp/appv (see the comment in bench/server/main.go)")
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "appv-bench-server-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	data := filepath.Join(o.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	if o.db == "" {
		o.db = filepath.Join(data, "appv.db")
	}
	start := time.Now()
	w, err := seed(ctx, o)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	fmt.Printf("seeded %d packages, %d users in %d groups, %d tokens in %v\n", o.packages, o.users, o.groups, len(w.secrets), time.Since(start).Round(time.Second))

	srv, err := harness.StartServer(o.appv, data, "--db", o.db, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer srv.Stop()
	pid := srv.PID()
	fmt.Printf("appv server pid %d at %s\n\n", pid, srv.URL)

	if !o.skipRefresh {
		if err := refreshRuns(ctx, o, srv.URL, pid, w); err != nil {
			return err
		}
	}
	if !o.skipContent {
		if err := contentRuns(ctx, o, srv, data); err != nil {
			return err
		}
	}
	return nil
}

// world is what seed made: the users' token secrets.
type world struct {
	secrets []string
}

// seed fills the database through serverdb: packages (one version each,
// content on a CDN), groups entitled to 20 packages each, users in one or
// two groups, one in 20 entitled to a package directly, and tokens.
func seed(ctx context.Context, o options) (world, error) {
	db, err := serverdb.Open(ctx, o.db)
	if err != nil {
		return world{}, err
	}
	defer db.Close()
	r := mrand.New(mrand.NewPCG(1, 2))
	pkgs := make([]string, o.packages)
	err = parallel(o.packages, func(i int) error {
		pkgs[i] = appvpkg.NewGUID()
		return db.CreateVersion(ctx, serverdb.Version{
			PackageID: pkgs[i], VersionID: appvpkg.NewGUID(), Name: fmt.Sprintf("App%05d", i), Version: "1.0.0.0",
			Location: fmt.Sprintf("https://cdn.example.org/apps/%05d/App.appv", i), Size: 50 << 20,
		})
	})
	if err != nil {
		return world{}, err
	}
	groups := make([]int64, o.groups)
	err = parallel(o.groups, func(i int) error {
		g, err := db.CreateIdentity(ctx, serverdb.Identity{Kind: serverdb.KindGroup, Name: fmt.Sprintf("group%04d", i)})
		groups[i] = g.ID
		return err
	})
	if err != nil {
		return world{}, err
	}
	type ent struct {
		pkg string
		id  int64
	}
	var ents []ent
	for _, g := range groups {
		for range 20 {
			ents = append(ents, ent{pkgs[r.IntN(len(pkgs))], g})
		}
	}
	userGroups := make([][]int64, o.users)
	for u := range userGroups {
		userGroups[u] = append(userGroups[u], groups[r.IntN(len(groups))])
		if r.IntN(2) == 0 {
			userGroups[u] = append(userGroups[u], groups[r.IntN(len(groups))])
		}
	}
	users := make([]int64, o.users)
	err = parallel(o.users, func(u int) error {
		id, err := db.CreateIdentity(ctx, serverdb.Identity{Kind: serverdb.KindUser, Name: fmt.Sprintf("user%06d", u)})
		if err != nil {
			return err
		}
		users[u] = id.ID
		for _, g := range userGroups[u] {
			if err := db.AddMember(ctx, g, id.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return world{}, err
	}
	for u := 0; u < o.users; u += 20 {
		ents = append(ents, ent{pkgs[r.IntN(len(pkgs))], users[u]})
	}
	if err := parallel(len(ents), func(i int) error { return db.Entitle(ctx, ents[i].pkg, ents[i].id) }); err != nil {
		return world{}, err
	}
	var w world
	w.secrets = make([]string, min(o.tokens, o.users))
	err = parallel(len(w.secrets), func(i int) error {
		s, err := db.CreateToken(ctx, users[i*(o.users/len(w.secrets))], false, time.Time{})
		w.secrets[i] = s
		return err
	})
	return w, err
}

// parallel runs fn(0…n-1) on 8 goroutines and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// cpuTime is a process's user+system CPU time.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		IdleConnTimeout: time.Minute, DisableCompression: true,
	}}
}

// result is one run's figures.
type result struct {
	name       string
	n, errs    int64
	status     map[int]int64
	elapsed    time.Duration
	lat        []time.Duration
	cpu        time.Duration
	bytes      int64
	offeredRPS float64
}

func (r result) row() string {
	slices.Sort(r.lat)
	q := func(p float64) string {
		if len(r.lat) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(r.lat[int(p*float64(len(r.lat)-1))].Microseconds())/1000)
	}
	rate := float64(r.n) / r.elapsed.Seconds()
	cpuPer := "-"
	if r.n > 0 {
		cpuPer = fmt.Sprintf("%.0f", float64(r.cpu.Microseconds())/float64(r.n))
	}
	offered := "closed loop"
	if r.offeredRPS > 0 {
		offered = fmt.Sprintf("%.0f/s", r.offeredRPS)
	}
	var st []string
	for code, n := range r.status {
		st = append(st, fmt.Sprintf("%d×%d", code, n))
	}
	slices.Sort(st)
	return fmt.Sprintf("| %s | %s | %.0f | %s | %s | %s | %.0f | %s | %d |", r.name, offered, rate, q(0.5), q(0.99), cpuPer,
		float64(r.bytes)/float64(max(r.n, 1)), strings.Join(st, " "), r.errs)
}

// refreshRuns measures publishing refreshes.
func refreshRuns(ctx context.Context, o options, url string, pid int, w world) error {
	hc := newHTTPClient(o.clients)
	target := url + "?ClientVersion=5.1.0.0&ClientOS=Linux"
	etags := make([]atomic.Value, len(w.secrets))
	refresh := func(i int, conditional bool) (int, int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+w.secrets[i])
		if conditional {
			if tag, ok := etags[i].Load().(string); ok {
				req.Header.Set("If-None-Match", tag)
			}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if tag := resp.Header.Get("ETag"); tag != "" {
			etags[i].Store(tag)
		}
		return resp.StatusCode, n, err
	}
	// Warm up: every token refreshes once (the server's first document for
	// each identity, and the clients' ETags).
	start := time.Now()
	if err := parallel(len(w.secrets), func(i int) error {
		code, _, err := refresh(i, false)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("warm-up refresh: HTTP %d", code)
		}
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("warm-up: %d first refreshes in %v\n\n", len(w.secrets), time.Since(start).Round(time.Millisecond))

	fmt.Println("| refresh run | offered | refreshes/s | p50 ms | p99 ms | server CPU µs/refresh | bytes/answer | answers | errors |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---|---:|")
	for _, run := range []struct {
		name        string
		conditional bool
		openLoop    bool
	}{
		{"unchanged (If-None-Match → 304)", true, true},
		{"full document (no If-None-Match)", false, true},
		{"unchanged, saturated", true, false},
		{"full document, saturated", false, false},
	} {
		r := load(ctx, o, pid, run.openLoop, func(client int, k int) (int, int64, error) {
			// Client c refreshes as the users c, c+clients, … in turn.
			i := (client + k*o.clients) % len(w.secrets)
			return refresh(i, run.conditional)
		})
		r.name = run.name
		fmt.Println(r.row())
	}
	fmt.Println()

	// After a change every identity's cached document is stale: each
	// user's next refresh rebuilds it from the database.
	db, err := serverdb.Open(ctx, o.db)
	if err != nil {
		return err
	}
	_, err = db.CreateIdentity(ctx, serverdb.Identity{Kind: serverdb.KindGroup, Name: fmt.Sprintf("bump%d", time.Now().UnixNano())})
	db.Close()
	if err != nil {
		return err
	}
	var next atomic.Int64
	r := load(ctx, options{clients: o.clients, duration: time.Hour}, pid, false, func(int, int) (int, int64, error) {
		i := int(next.Add(1) - 1)
		if i >= len(w.secrets) {
			return 0, 0, errDone
		}
		return refresh(i, true)
	})
	r.name = fmt.Sprintf("after a change: each of %d users' first refresh rebuilds its document", len(w.secrets))
	fmt.Println("| refresh run | offered | refreshes/s | p50 ms | p99 ms | server CPU µs/refresh | bytes/answer | answers | errors |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---|---:|")
	fmt.Println(r.row())
	fmt.Println()
	return nil
}

// errDone ends a client's loop in load.
var errDone = errors.New("done")

// load runs o.clients clients for o.duration. Open loop: client c sends its
// k-th request at start + offset(c) + k×interval, interval =
// clients/rate, and latency counts from that due time. Closed loop: each
// client sends the next request when the last one is answered.
func load(ctx context.Context, o options, pid int, openLoop bool, do func(client, k int) (int, int64, error)) result {
	var mu sync.Mutex
	res := result{status: map[int]int64{}}
	if openLoop {
		res.offeredRPS = o.rate
	}
	var interval time.Duration
	if openLoop {
		interval = time.Duration(float64(o.clients) / o.rate * float64(time.Second))
	}
	cpu0 := cpuTime(pid)
	start := time.Now()
	end := start.Add(o.duration)
	var wg sync.WaitGroup
	for c := range o.clients {
		wg.Go(func() {
			var lat []time.Duration
			status := map[int]int64{}
			var n, errs, bytes int64
			var offset time.Duration
			if openLoop {
				offset = time.Duration(mrand.Int64N(int64(interval)))
			}
			for k := 0; ; k++ {
				due := time.Now()
				if openLoop {
					due = start.Add(offset + time.Duration(k)*interval)
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				if due.After(end) {
					break
				}
				code, nb, err := do(c, k)
				if errors.Is(err, errDone) {
					break
				}
				if err != nil {
					errs++
					continue
				}
				lat = append(lat, time.Since(due))
				status[code]++
				n++
				bytes += nb
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			for k, v := range status {
				res.status[k] += v
			}
			res.n += n
			res.errs += errs
			res.bytes += bytes
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.cpu = cpuTime(pid) - cpu0
	return res
}

// contentRuns compares appv server's content endpoint with nginx serving
// the same file.
func contentRuns(ctx context.Context, o options, srv *harness.AppvServer, data string) error {
	tree := filepath.Join(o.dir, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	blob := make([]byte, 1<<20)
	f, err := os.Create(filepath.Join(tree, "data.bin"))
	if err != nil {
		return err
	}
	for range o.contentMiB {
		_, _ = rand.Read(blob)
		if _, err := f.Write(blob); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	pkg := filepath.Join(o.dir, "Content.appv")
	if out, err := exec.CommandContext(ctx, o.appv, "package", "create", "-q", "--from-dir", tree, "--name", "Content", "--version", "1.0.0.0", "-o", pkg).CombinedOutput(); err != nil {
		return fmt.Errorf("package create: %v\n%s", err, out)
	}
	token, err := os.ReadFile(srv.TokenFile)
	if err != nil {
		return err
	}
	admin, err := api.NewClient(strings.TrimSuffix(srv.URL, "/"), strings.TrimSpace(string(token)), nil)
	if err != nil {
		return err
	}
	pf, err := os.Open(pkg)
	if err != nil {
		return err
	}
	st, _ := pf.Stat()
	v, err := admin.Import(ctx, bufio.NewReader(pf), st.Size())
	pf.Close()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	contentDir := filepath.Join(data, "content")
	files, _ := filepath.Glob(filepath.Join(contentDir, "*"))
	var name string
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Size() == st.Size() {
			name = filepath.Base(f)
		}
	}
	if name == "" {
		return fmt.Errorf("the imported package is not in %s", contentDir)
	}
	ng, err := harness.StartNginx(contentDir)
	if err != nil {
		return err
	}
	defer ng.Stop()
	appvURL := strings.TrimSuffix(srv.URL, "/") + "/content/" + v.VersionID + ".appv"
	nginxURL := ng.URL + "/" + name
	size := st.Size()
	auth := "Bearer " + strings.TrimSpace(string(token))

	fmt.Printf("content: a %d MiB package, %d parallel clients, %v per run\n\n", size>>20, o.contentClients, o.duration)
	fmt.Println("| content run | appv server MB/s | nginx MB/s | appv / nginx |")
	fmt.Println("|---|---:|---:|---:|")
	hc := newHTTPClient(o.contentClients)
	for _, run := range []struct {
		name  string
		chunk int64 // 0: whole file
	}{
		{"whole-file GET", 0},
		{"1 MiB Range GETs at random offsets", 1 << 20},
		{"64 KiB Range GETs at random offsets", 64 << 10},
	} {
		rates := make([]float64, 2)
		for i, u := range []string{appvURL, nginxURL} {
			var total atomic.Int64
			start := time.Now()
			end := start.Add(o.duration)
			var wg sync.WaitGroup
			var failed atomic.Value
			for range o.contentClients {
				wg.Go(func() {
					for time.Now().Before(end) {
						req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
						req.Header.Set("Authorization", auth)
						want := size
						if run.chunk > 0 {
							off := mrand.Int64N(size - run.chunk)
							req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+run.chunk-1))
							want = run.chunk
						}
						resp, err := hc.Do(req)
						if err != nil {
							failed.Store(err)
							return
						}
						n, err := io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if err != nil || n != want {
							failed.Store(fmt.Errorf("%s: HTTP %d, %d of %d bytes, %v", u, resp.StatusCode, n, want, err))
							return
						}
						total.Add(n)
					}
				})
			}
			wg.Wait()
			if err, ok := failed.Load().(error); ok {
				return err
			}
			rates[i] = float64(total.Load()) / 1e6 / time.Since(start).Seconds()
		}
		fmt.Printf("| %s | %.0f | %.0f | %.2f× |\n", run.name, rates[0], rates[1], rates[0]/rates[1])
	}
	return nil
}
