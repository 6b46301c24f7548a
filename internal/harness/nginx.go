package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Nginx is Debian's nginx serving a directory on a loopback port: the real
// web server a content share often is (App-V's "IIS server for streaming").
type Nginx struct {
	URL    string // http://127.0.0.1:PORT, serving Root at /
	Root   string
	prefix string
	cmd    *exec.Cmd
	done   chan struct{}
	logs   *Buffer
}

// NginxBinary is where Debian's nginx-light package puts nginx.
const NginxBinary = "/usr/sbin/nginx"

// StartNginx starts nginx in the foreground, as the calling user, serving
// root (read-only, with Range requests and sendfile) on a free loopback
// port. Its configuration, logs and temporary files live in a new directory
// that Stop removes.
func StartNginx(root string) (*Nginx, error) {
	if _, err := os.Stat(NginxBinary); err != nil {
		return nil, fmt.Errorf("harness: nginx: %w (install Debian's nginx-light)", err)
	}
	prefix, err := os.MkdirTemp("", "appv-nginx-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(prefix)
		return nil, err
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would drop to nobody, who may not read a test's files.
		user = "user root;\n"
	}
	conf := fmt.Sprintf(`%sworker_processes 2;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  types { application/octet-stream appv; }
  default_type application/octet-stream;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  server {
    listen 127.0.0.1:%[3]d;
    root %[4]s;
    max_ranges 1024;
  }
}
`, user, prefix, port, root)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		os.RemoveAll(prefix)
		return nil, err
	}
	n := &Nginx{URL: "http://127.0.0.1:" + strconv.Itoa(port), Root: root, prefix: prefix, done: make(chan struct{}), logs: &Buffer{}}
	n.cmd = exec.Command(NginxBinary, "-p", prefix, "-c", confPath, "-g", "daemon off;")
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := n.cmd.Start(); err != nil {
		os.RemoveAll(prefix)
		return nil, fmt.Errorf("harness: start nginx: %w", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	if err := waitListening(n.URL[len("http://"):], n.done, 10*time.Second); err != nil {
		n.Stop()
		errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
		return nil, fmt.Errorf("harness: nginx did not start: %w\n%s%s", err, n.logs.String(), errLog)
	}
	return n, nil
}

// Stop ends nginx and removes its directory.
func (n *Nginx) Stop() {
	if n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	}
	os.RemoveAll(n.prefix)
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until addr accepts connections, the process behind
// done exits, or timeout passes.
func waitListening(addr string, done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return errors.New("the process exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s", addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
