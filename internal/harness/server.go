package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// AppvServer is a running `appv server` on a loopback port with its own data
// directory and SQLite database.
type AppvServer struct {
	Bin       string
	URL       string // the publishing URL, http://127.0.0.1:PORT/
	Data      string
	TokenFile string // the admin token the first start created
	cmd       *exec.Cmd
	done      chan struct{}
	logs      *Buffer
}

var listeningRE = regexp.MustCompile(`listening on (https?://\S+)`)

// StartServer starts `appv server --listen 127.0.0.1:0 --data data` (and
// any extra flags) and waits until it says where it listens.
func StartServer(appv, data string, extra ...string) (*AppvServer, error) {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	s := &AppvServer{Bin: appv, Data: data, TokenFile: filepath.Join(data, "admin.token"), done: make(chan struct{}), logs: &Buffer{}}
	s.cmd = exec.Command(appv, append([]string{"server", "--listen", "127.0.0.1:0", "--data", data}, extra...)...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("harness: start appv server: %w", err)
	}
	go func() { _ = s.cmd.Wait(); pw.Close(); close(s.done) }()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = s.logs.Write([]byte(line + "\n"))
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(s.logs, pr)
	}()
	select {
	case u := <-found:
		s.URL = strings.TrimSuffix(u, "/") + "/"
	case <-s.done:
		return nil, fmt.Errorf("harness: appv server exited:\n%s", s.logs.String())
	case <-time.After(30 * time.Second):
		s.Stop()
		return nil, fmt.Errorf("harness: appv server did not say where it listens:\n%s", s.logs.String())
	}
	return s, nil
}

// Admin runs `appv admin ARGS…` against the server with the admin token.
func (s *AppvServer) Admin(ctx context.Context, args ...string) (Result, error) {
	return s.AdminWith(ctx, s.TokenFile, args...)
}

// AdminWith runs `appv admin ARGS…` with the token in tokenFile.
func (s *AppvServer) AdminWith(ctx context.Context, tokenFile string, args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, s.Bin, append([]string{"admin"}, args...)...)
	cmd.Env = append(os.Environ(), "APPV_SERVER="+strings.TrimSuffix(s.URL, "/"), "APPV_TOKEN_FILE="+tokenFile)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
		err = nil
	}
	return r, err
}

// PID is the server's process id.
func (s *AppvServer) PID() int { return s.cmd.Process.Pid }

// Logs returns what the server printed.
func (s *AppvServer) Logs() string { return s.logs.String() }

// Stop ends the server.
func (s *AppvServer) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
