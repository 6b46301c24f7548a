// Command create benchmarks `appv package create` against `zip -r -6` and
// `mksquashfs -comp gzip` on the same tree in the same run, then measures
// verified random block reads from the package it made. It prints a table;
// bench/README.md records the results and how to reproduce them.
//
//	go build -o /tmp/appv ./cmd/appv
//	go run ./bench/create -appv /tmp/appv -tree /usr/share
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/appv/appv/internal/appvpkg"
)

type result struct {
	name      string
	wall, cpu time.Duration
	size      int64
}

func main() {
	appvBin := flag.String("appv", "appv", "the appv binary to measure")
	tree := flag.String("tree", "/usr/share", "tree to package (at least 500 MB for the issue's figure)")
	work := flag.String("work", "", "scratch directory (default: a new temporary one)")
	reads := flag.Int("reads", 20000, "random blocks to read in the read benchmark")
	runs := flag.Int("runs", 2, "runs of each tool; the fastest counts")
	readOnly := flag.String("read-only", "", "only measure verified random block reads of this existing package")
	flag.Parse()
	if *readOnly != "" {
		if err := readBench(*readOnly, *reads); err != nil {
			fmt.Fprintln(os.Stderr, "bench/create:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*appvBin, *tree, *work, *reads, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench/create:", err)
		os.Exit(1)
	}
}

func run(appvBin, tree, work string, reads, runs int) error {
	if work == "" {
		d, err := os.MkdirTemp("", "appv-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	// Reading every file warms the page cache, so no tool is charged for
	// cold reads (tar -cf /dev/null would not: GNU tar skips the reads).
	treeSize, files, err := du(tree)
	if err != nil {
		return err
	}
	fmt.Printf("tree %s: %d files, %.1f MB; %d cores (%s); inflater %s\n", tree, files, mb(treeSize), runtime.NumCPU(), cpuModel(), appvpkg.InflaterName)
	fmt.Printf("each tool runs %d times; the table shows its fastest run\n\n", runs)
	pkg := filepath.Join(work, "bench.appv")
	zipOut := filepath.Join(work, "bench.zip")
	sq := filepath.Join(work, "bench.sqfs")
	tools := []struct {
		name, dir, out string
		argv           []string
	}{
		{"appv package create", "", pkg, []string{appvBin, "package", "create", "-q", "--skip-external-symlinks",
			"--from-dir", tree, "--name", "Bench", "--version", "1.0.0.0", "--root", "/opt/bench", "-o", pkg}},
		{"zip -r -6", tree, zipOut, []string{"zip", "-q", "-r", "-6", "-y", zipOut, "."}},
		{"mksquashfs -comp gzip", "", sq, []string{"mksquashfs", tree, sq, "-comp", "gzip", "-noappend", "-quiet", "-no-progress"}},
	}
	var rs []result
	for _, t := range tools {
		var best result
		for i := 0; i < runs; i++ {
			_ = os.Remove(t.out)
			r, err := timedIn(t.dir, t.name, t.out, t.argv...)
			if err != nil {
				return err
			}
			if i == 0 || r.wall < best.wall {
				best = r
			}
		}
		rs = append(rs, best)
	}

	base := rs[1]
	fmt.Printf("%-24s %10s %10s %12s %12s %12s\n", "tool", "wall s", "cpu s", "size MB", "wall vs zip", "size vs zip")
	for _, r := range rs {
		fmt.Printf("%-24s %10.2f %10.2f %12.1f %11.2fx %11.3fx\n", r.name, r.wall.Seconds(), r.cpu.Seconds(), mb(r.size),
			base.wall.Seconds()/r.wall.Seconds(), float64(r.size)/float64(base.size))
	}
	fmt.Println("\n(wall vs zip: how many times faster than zip; size vs zip: output size relative to zip's)")
	return readBench(pkg, reads)
}

// readBench reads random blocks through ReadBlock (fetch, inflate, verify)
// on one goroutine and reports uncompressed MB/s, i.e. per core.
func readBench(pkg string, n int) error {
	// Warm the page cache with the package, so the figure is the reader's
	// work (fetch, inflate, hash), not the disk's.
	if f, err := os.Open(pkg); err == nil {
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}
	p, err := appvpkg.OpenFile(pkg)
	if err != nil {
		return err
	}
	defer p.Close()
	type ref struct {
		f *appvpkg.File
		i int
	}
	var all []ref
	var deflated int
	for _, f := range p.Files() {
		for i := 0; i < f.Blocks(); i++ {
			all = append(all, ref{f, i})
		}
		if f.Deflated {
			deflated++
		}
	}
	var full []ref
	for _, r := range all {
		if r.f.BlockLen(r.i) == appvpkg.BlockSize {
			full = append(full, r)
		}
	}
	fmt.Println("\nverified random block reads (fetch, inflate, hash; 1 goroutine, page cache warm):")
	for _, set := range []struct {
		name string
		refs []ref
	}{{"all blocks", all}, {"full 64 KiB blocks", full}} {
		rng := rand.New(rand.NewPCG(7, 7))
		var bytes int64
		var buf []byte
		start := time.Now()
		for range n {
			r := set.refs[rng.IntN(len(set.refs))]
			if buf, err = p.ReadBlock(r.f, r.i, buf[:0]); err != nil {
				return err
			}
			bytes += int64(len(buf))
		}
		el := time.Since(start)
		fmt.Printf("  %-20s %6d blocks, %7.1f MB in %5.2f s = %4.0f MB/s per core\n", set.name, n, mb(bytes), el.Seconds(), mb(bytes)/el.Seconds())
	}
	fmt.Printf("(%d of %d files deflated; %d blocks in the package)\n", deflated, len(p.Files()), len(all))
	return nil
}

func timedIn(dir, name, out string, argv ...string) (result, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	r := result{name: name, wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if out != "" {
		st, err := os.Stat(out)
		if err != nil {
			return r, err
		}
		r.size = st.Size()
	}
	return r, nil
}

// du sums the regular files under root, reading each one whole.
func du(root string) (size int64, files int, err error) {
	err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, f)
			f.Close()
			if err != nil {
				return err
			}
			size += n
			files++
		}
		return nil
	})
	return size, files, err
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}
