// Command stream benchmarks the client end to end (root, FUSE): bytes
// fetched for what an application reads, time to first output of a cold
// launch over a 100 Mbit/s link against downloading and unpacking first,
// sequential reads in the virtual environment against native reads, and the
// service's memory with 100 packages added. It prints a table;
// bench/README.md records the results.
//
//	go build -o /tmp/appv ./cmd/appv
//	sudo go run ./bench/stream -appv /tmp/appv
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/appv/appv/internal/harness"
)

// reader is the application the benchmark runs: it reads what it is told
// and reports bytes read and time to its first output.
const reader = `package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// usage: reader first | reader read FILE... | reader seq FILE
func main() {
	switch os.Args[1] {
	case "first":
		fmt.Println("ready")
	case "read":
		var n int64
		for _, f := range os.Args[2:] {
			data, err := os.ReadFile(f)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			n += int64(len(data))
		}
		fmt.Println("read", n)
	case "seq":
		f, err := os.Open(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 1<<20)
		start := time.Now()
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		el := time.Since(start)
		fmt.Println("seq", n, strconv.FormatFloat(float64(n)/el.Seconds()/1e6, 'f', 1, 64))
	}
}
`

func main() {
	appv := flag.String("appv", "appv", "the appv binary")
	seqSize := flag.Int64("seq-mib", 1024, "size of the file read sequentially, MiB")
	npkgs := flag.Int("packages", 100, "packages added for the memory figure")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/stream: run as root (FUSE, namespaces)")
		os.Exit(2)
	}
	if err := run(*appv, *seqSize, *npkgs); err != nil {
		fmt.Fprintln(os.Stderr, "bench/stream:", err)
		os.Exit(1)
	}
}

func must(r harness.Result, err error) (harness.Result, error) {
	if err != nil {
		return r, err
	}
	if r.Code != 0 {
		return r, fmt.Errorf("exit %d: %s %s", r.Code, r.Stdout, r.Stderr)
	}
	return r, nil
}

func run(appv string, seqMiB int64, npkgs int) error {
	ctx := context.Background()
	base, err := os.MkdirTemp("", "avb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	_ = os.Chmod(base, 0o755)
	content := filepath.Join(base, "content")
	if err := os.MkdirAll(content, 0o755); err != nil {
		return err
	}
	readerBin, err := buildReader(base)
	if err != nil {
		return err
	}

	// Package A: 20 files of 5 MiB of random data (100 MiB, incompressible:
	// compressed bytes equal raw bytes, so the ratio is pure overhead) plus
	// the reader. The application reads one file whole: 5 % of the package.
	treeA := filepath.Join(base, "treeA")
	for i := range 20 {
		if err := writeRandom(filepath.Join(treeA, "share", fmt.Sprintf("data%02d.bin", i)), 5<<20); err != nil {
			return err
		}
	}
	if err := install(readerBin, filepath.Join(treeA, "bin", "reader")); err != nil {
		return err
	}
	pkgA := filepath.Join(content, "BenchA.appv")
	if _, err := must(runCmd(appv, "package", "create", "-q", "--from-dir", treeA, "--name", "BenchA", "--version", "1", "--root", "/opt/bencha", "-o", pkgA)); err != nil {
		return err
	}
	sizeA := fileSize(pkgA)

	fmt.Printf("package A: %.1f MB (20 x 5 MiB random files and a reader)\n\n", float64(sizeA)/1e6)

	// (1) Bytes fetched for bytes read.
	srv, err := harness.NewContentServer(content, 0)
	if err != nil {
		return err
	}
	defer srv.Close()
	svc, err := harness.StartService(appv, filepath.Join(base, "svc1"))
	if err != nil {
		return err
	}
	if _, err := must(svc.Appv(ctx, nil, "", "add", srv.URL+"/BenchA.appv")); err != nil {
		svc.Stop()
		return err
	}
	if _, err := must(svc.Appv(ctx, nil, "", "publish", "BenchA")); err != nil {
		svc.Stop()
		return err
	}
	afterAdd := srv.Sent()
	r, err := must(svc.Appv(ctx, nil, "", "launch", "reader", "--", "read", "/opt/bencha/share/data07.bin"))
	if err != nil {
		svc.Stop()
		return err
	}
	var read int64
	if _, err := fmt.Sscanf(strings.TrimSpace(r.Stdout), "read %d", &read); err != nil || read == 0 {
		return fmt.Errorf("the reader reported %q", r.Stdout)
	}
	launchFetched := srv.Sent() - afterAdd
	fmt.Println("(1) bytes fetched / bytes the application read (it reads 5 % of the package)")
	fmt.Printf("    add fetched %d B (metadata, publishing block); the launch fetched %d B for %d B read\n", afterAdd, launchFetched, read)
	fmt.Printf("    launch only: %.3f; add + launch: %.3f   (target <= 1.25)\n\n",
		float64(launchFetched)/float64(read), float64(srv.Sent())/float64(read))
	svc.Stop()

	// (2) Cold launch over 100 Mbit/s against downloading and unpacking.
	const link = 100e6 / 8
	slow, err := harness.NewContentServer(content, link)
	if err != nil {
		return err
	}
	defer slow.Close()
	svc2, err := harness.StartService(appv, filepath.Join(base, "svc2"))
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := must(svc2.Appv(ctx, nil, "", "add", slow.URL+"/BenchA.appv")); err != nil {
		svc2.Stop()
		return err
	}
	if _, err := must(svc2.Appv(ctx, nil, "", "publish", "BenchA")); err != nil {
		svc2.Stop()
		return err
	}
	addPub := time.Since(start)
	launchStart := time.Now()
	if _, err := must(svc2.Appv(ctx, nil, "", "launch", "reader", "--", "first")); err != nil {
		svc2.Stop()
		return err
	}
	launch := time.Since(launchStart)
	svc2.Stop()
	start = time.Now()
	dl := filepath.Join(base, "dl.appv")
	if err := harness.Download(slow.URL+"/BenchA.appv", dl); err != nil {
		return err
	}
	out := filepath.Join(base, "unpacked")
	if _, err := must(runCmd(appv, "package", "extract", "-q", dl, out)); err != nil {
		return err
	}
	if _, err := must(runCmd(filepath.Join(out, "Root", "bin", "reader"), "first")); err != nil {
		return err
	}
	full := time.Since(start)
	fmt.Println("(2) time to first output of a cold launch over a 100 Mbit/s link")
	fmt.Printf("    streamed: add + publish %.2f s, launch %.2f s, total %.2f s\n", addPub.Seconds(), launch.Seconds(), (addPub + launch).Seconds())
	fmt.Printf("    download whole package + extract + run: %.2f s\n", full.Seconds())
	fmt.Printf("    speed-up: %.1fx (add+publish+launch), %.1fx (launch of a published package)   (target >= 5x)\n\n",
		full.Seconds()/(addPub+launch).Seconds(), full.Seconds()/launch.Seconds())

	// (3) Sequential read of a fully local file in the virtual environment.
	treeB := filepath.Join(base, "treeB")
	if err := writeRandom(filepath.Join(treeB, "share", "big.bin"), seqMiB<<20); err != nil {
		return err
	}
	if err := install(readerBin, filepath.Join(treeB, "bin", "reader2")); err != nil {
		return err
	}
	pkgB := filepath.Join(content, "BenchB.appv")
	if _, err := must(runCmd(appv, "package", "create", "-q", "--from-dir", treeB, "--name", "BenchB", "--version", "1", "--root", "/opt/benchb", "-o", pkgB)); err != nil {
		return err
	}
	_ = os.RemoveAll(treeB)
	svc3, err := harness.StartService(appv, filepath.Join(base, "svc3"))
	if err != nil {
		return err
	}
	defer svc3.Stop()
	for _, args := range [][]string{{"add", srv.URL + "/BenchB.appv"}, {"publish", "BenchB"}, {"mount", "-q", "BenchB"}} {
		if _, err := must(svc3.Appv(ctx, nil, "", args...)); err != nil {
			return err
		}
	}
	native := findFile(filepath.Join(svc3.State, "packages"), "big.bin")
	if native == "" {
		return fmt.Errorf("cannot find big.bin in the store")
	}
	fmt.Printf("(3) sequential read of a fully local %d MiB file, 1 MiB reads\n", seqMiB)
	for _, cache := range []string{"warm", "cold"} {
		var venvMBs, nativeMBs float64
		for i := range 2 {
			if cache == "cold" || i == 0 {
				dropCaches()
			}
			r, err := must(svc3.Appv(ctx, nil, "", "launch", "reader2", "--", "seq", "/opt/benchb/share/big.bin"))
			if err != nil {
				return err
			}
			venvMBs = parseSeq(r.Stdout)
		}
		for i := range 2 {
			if cache == "cold" || i == 0 {
				dropCaches()
			}
			r, err := must(runCmd(readerBin, "seq", native))
			if err != nil {
				return err
			}
			nativeMBs = parseSeq(r.Stdout)
		}
		fmt.Printf("    %s cache: virtual environment %.0f MB/s, native %.0f MB/s, ratio %.2f   (target >= 0.9)\n", cache, venvMBs, nativeMBs, venvMBs/nativeMBs)
	}
	fmt.Println()

	// (4) The service's memory with many packages added.
	svc4, err := harness.StartService(appv, filepath.Join(base, "svc4"))
	if err != nil {
		return err
	}
	defer svc4.Stop()
	rssEmpty := rss(svc4.PID())
	small := filepath.Join(base, "small")
	if err := writeRandom(filepath.Join(small, "share", "data.bin"), 256<<10); err != nil {
		return err
	}
	if err := install(readerBin, filepath.Join(small, "bin", "tool")); err != nil {
		return err
	}
	for i := range npkgs {
		name := fmt.Sprintf("Small%03d", i)
		p := filepath.Join(content, name+".appv")
		if _, err := must(runCmd(appv, "package", "create", "-q", "--from-dir", small, "--name", name, "--version", "1", "-o", p)); err != nil {
			return err
		}
		if _, err := must(svc4.Appv(ctx, nil, "", "add", srv.URL+"/"+name+".appv")); err != nil {
			return err
		}
	}
	fmt.Printf("(4) client service memory: %.1f MiB RSS with no packages, %.1f MiB with %d packages added (%.1f KiB each)\n",
		rssEmpty/1024, rss(svc4.PID())/1024, npkgs, (rss(svc4.PID())-rssEmpty)/float64(npkgs))
	return nil
}

func buildReader(base string) (string, error) {
	src := filepath.Join(base, "readersrc")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(reader), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module reader\ngo 1.26\n"), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(base, "reader")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build reader: %v: %s", err, out)
	}
	return bin, nil
}

func runCmd(argv ...string) (harness.Result, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.Output()
	r := harness.Result{Stdout: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code, r.Stderr = ee.ExitCode(), string(ee.Stderr)
		return r, nil
	}
	return r, err
}

func writeRandom(path string, n int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		m := min(n, int64(len(buf)))
		_, _ = rand.Read(buf[:m])
		if _, err := f.Write(buf[:m]); err != nil {
			f.Close()
			return err
		}
		n -= m
	}
	return f.Close()
}

func install(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func findFile(root, name string) string {
	var found string
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Name() == name && info.Mode().IsRegular() {
			found = p
		}
		return nil
	})
	return found
}

func parseSeq(out string) float64 {
	f := strings.Fields(out)
	if len(f) < 3 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[2], 64)
	return v
}

func dropCaches() {
	_ = exec.Command("sync").Run()
	_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o644)
}

// rss returns a process's resident set in KiB.
func rss(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb
		}
	}
	return 0
}
