// Package harness runs appv for end-to-end tests and benchmark drivers: a
// client service with its own state and run directories, the appv command as
// a given user, and an HTTP content server that counts the bytes it sends and
// can be limited to a link speed. It is used only by e2e/ and bench/.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// User is an account appv runs as. A nil *User means root.
type User struct {
	Name     string
	UID, GID int
	Home     string
}

// Service is a running client service.
type Service struct {
	Bin   string // the appv binary
	State string // APPV_STATEDIR
	Run   string // APPV_RUNDIR
	cmd   *exec.Cmd
	logs  *Buffer
	done  chan struct{}
}

// Buffer collects a process's output while the test reads it: a
// bytes.Buffer safe for one writer and readers at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartService starts `appv client service` with state and run directories
// under base and waits until its socket answers.
func StartService(appv, base string) (*Service, error) {
	s := &Service{Bin: appv, State: filepath.Join(base, "state"), Run: filepath.Join(base, "run"), logs: &Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(appv, "client", "service")
	s.cmd.Env = s.Env()
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", filepath.Join(s.Run, "appv.sock")); err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("the client service exited:\n%s", s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("the client service did not start:\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Env is the environment that points appv at this service. Launchers of
// globally published packages go to a directory of the service's, not to
// the host's /usr/local/bin.
func (s *Service) Env() []string {
	return append(os.Environ(), "APPV_STATEDIR="+s.State, "APPV_RUNDIR="+s.Run, "APPV_CONFIG="+filepath.Join(s.State, "client.json"),
		"APPV_GLOBALBINDIR="+filepath.Join(filepath.Dir(s.State), "global-bin"))
}

// Logs returns what the service printed.
func (s *Service) Logs() string { return s.logs.String() }

// PID is the service's process id.
func (s *Service) PID() int { return s.cmd.Process.Pid }

// Stop ends the service (SIGTERM, then SIGKILL) and unmounts what it left.
func (s *Service) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = exec.Command("umount", "-l", filepath.Join(s.Run, "fs")).Run()
}

// Kill ends the service with SIGKILL, as a crash would.
func (s *Service) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
	_ = exec.Command("umount", "-l", filepath.Join(s.Run, "fs")).Run()
}

// Result is what one appv run returned.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Appv runs the appv command as u (nil: root) with stdin.
func (s *Service) Appv(ctx context.Context, u *User, stdin string, args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, s.Bin, args...)
	cmd.Env = s.Env()
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
		cmd.Env = append(cmd.Env, "HOME="+u.Home, "USER="+u.Name, "XDG_DATA_HOME=", "XDG_CACHE_HOME=")
		cmd.Dir = u.Home
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		return r, err
	}
	return r, nil
}

// AddUser creates an account with its home under base; Remove deletes it.
func AddUser(name, base string) (*User, error) {
	home := filepath.Join(base, name)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("useradd", "-m", "-d", home, "-s", "/bin/sh", "-U", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("useradd %s: %v: %s", name, err, out)
	}
	u := &User{Name: name, Home: home}
	for _, f := range []struct {
		flag string
		dst  *int
	}{{"-u", &u.UID}, {"-g", &u.GID}} {
		out, err := exec.Command("id", f.flag, name).Output()
		if err != nil {
			return nil, err
		}
		if _, err := fmt.Sscan(string(out), f.dst); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Remove deletes the account.
func (u *User) Remove() { _ = exec.Command("userdel", "-f", u.Name).Run() }

// ContentServer serves a directory over HTTP with Range requests, counting
// the body bytes it sends, optionally at a limited rate.
type ContentServer struct {
	URL   string
	srv   *http.Server
	l     net.Listener
	sent  atomic.Int64
	reqs  atomic.Int64
	limit *rateLimiter

	down      atomic.Bool  // every request has its connection closed
	failAfter atomic.Int64 // bytes left before connections break; <0: never
}

// NewContentServer serves dir on a loopback port. bytesPerSecond 0 means no
// limit; the limit is shared by all connections, like one link.
func NewContentServer(dir string, bytesPerSecond int64) (*ContentServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cs := &ContentServer{URL: "http://" + l.Addr().String(), l: l}
	cs.failAfter.Store(-1)
	if bytesPerSecond > 0 {
		cs.limit = &rateLimiter{rate: bytesPerSecond, start: time.Now()}
	}
	files := http.FileServer(http.Dir(dir))
	cs.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.reqs.Add(1)
		if cs.down.Load() {
			panic(http.ErrAbortHandler) // the connection closes with no answer
		}
		files.ServeHTTP(&countingWriter{ResponseWriter: w, cs: cs}, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = cs.srv.Serve(l) }()
	return cs, nil
}

// SetDown makes the server close every connection without answering (a
// dead server), or serve again.
func (cs *ContentServer) SetDown(down bool) { cs.down.Store(down) }

// Down reports whether the server refuses everything.
func (cs *ContentServer) Down() bool { return cs.down.Load() }

// BreakAfter makes the server cut every response once n more body bytes
// have been sent, and then refuse everything until SetDown(false) and
// BreakAfter(-1): a server that dies mid-stream.
func (cs *ContentServer) BreakAfter(n int64) { cs.failAfter.Store(n) }

// Sent returns the body bytes sent so far.
func (cs *ContentServer) Sent() int64 { return cs.sent.Load() }

// Requests returns the requests served so far.
func (cs *ContentServer) Requests() int64 { return cs.reqs.Load() }

// Close stops the server.
func (cs *ContentServer) Close() error { return cs.srv.Close() }

type countingWriter struct {
	http.ResponseWriter
	cs *ContentServer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	// Write in small pieces so a rate limit shapes the stream smoothly.
	var n int
	for len(p) > 0 {
		chunk := p[:min(len(p), 16<<10)]
		if c.cs.limit != nil {
			c.cs.limit.wait(int64(len(chunk)))
		}
		if left := c.cs.failAfter.Load(); left >= 0 {
			if left < int64(len(chunk)) {
				c.cs.down.Store(true)
				panic(http.ErrAbortHandler) // dies mid-body
			}
			c.cs.failAfter.Add(-int64(len(chunk)))
		}
		// Counted before it is written: the client may have the bytes
		// (and the test read the counter) before Write returns.
		c.cs.sent.Add(int64(len(chunk)))
		m, err := c.ResponseWriter.Write(chunk)
		n += m
		c.cs.sent.Add(int64(m - len(chunk)))
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

// rateLimiter paces a shared byte stream to rate bytes per second.
type rateLimiter struct {
	mu    sync.Mutex
	rate  int64
	start time.Time
	sent  int64
}

func (r *rateLimiter) wait(n int64) {
	r.mu.Lock()
	now := time.Now()
	// An idle link earns no credit: bursts are not faster than the link.
	if due := r.start.Add(r.duration(r.sent)); due.Before(now) {
		r.start = now.Add(-r.duration(r.sent))
	}
	r.sent += n
	due := r.start.Add(r.duration(r.sent))
	r.mu.Unlock()
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

func (r *rateLimiter) duration(bytes int64) time.Duration {
	return time.Duration(float64(bytes) / float64(r.rate) * float64(time.Second))
}

// Download fetches url whole into file, as a plain client would.
func Download(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
