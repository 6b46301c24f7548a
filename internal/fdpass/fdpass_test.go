package fdpass

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// pair returns two connected Unix stream sockets, closed at the end of the
// test.
func pair(t testing.TB) (a, b *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// openFDs counts this process's open descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// tempFiles creates n files, each holding its index, open for reading.
func tempFiles(t *testing.T, n int) []*os.File {
	t.Helper()
	var files []*os.File
	for i := range n {
		f, err := os.CreateTemp(t.TempDir(), "f")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(strings.Repeat("x", i)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	return files
}

type msg struct {
	Op   string   `json:"op"`
	Args []string `json:"args,omitempty"`
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		msg   msg
		files int
	}{
		{"no files", msg{Op: "hello"}, 0},
		{"one file", msg{Op: "one", Args: []string{"a"}}, 1},
		{"three files", msg{Op: "stdio"}, 3},
		{"max files", msg{Op: "many"}, MaxFiles},
		{"large message with files", msg{Op: "big", Args: []string{strings.Repeat("y", MaxMessageSize-100)}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t)
			files := tempFiles(t, tt.files)
			errc := make(chan error, 1)
			go func() { errc <- Send(a, tt.msg, files...) }()
			var got msg
			recvd, err := Recv(b, &got)
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Send: %v", err)
			}
			defer closeAll(recvd)
			if got.Op != tt.msg.Op || len(got.Args) != len(tt.msg.Args) {
				t.Fatalf("got %q with %d args, want %q with %d", got.Op, len(got.Args), tt.msg.Op, len(tt.msg.Args))
			}
			if len(recvd) != tt.files {
				t.Fatalf("got %d files, want %d", len(recvd), tt.files)
			}
			for i, f := range recvd {
				// Same open file description: the size tells them apart.
				st, err := f.Stat()
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() != int64(i) {
					t.Errorf("file %d has size %d, want %d (order lost?)", i, st.Size(), i)
				}
				flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
				if err != nil {
					t.Fatal(err)
				}
				if flags&unix.FD_CLOEXEC == 0 {
					t.Errorf("file %d is not close-on-exec", i)
				}
			}
		})
	}
}

// Messages sent back to back keep their own files.
func TestBackToBack(t *testing.T) {
	a, b := pair(t)
	files := tempFiles(t, 4)
	sent := make(chan error, 1)
	go func() {
		sent <- errors.Join(
			Send(a, msg{Op: "first"}, files[1]),
			Send(a, msg{Op: "second"}),
			Send(a, msg{Op: "third"}, files[2], files[3]))
	}()
	defer func() {
		if err := <-sent; err != nil {
			t.Error(err)
		}
	}()
	want := []struct {
		op    string
		sizes []int64
	}{{"first", []int64{1}}, {"second", nil}, {"third", []int64{2, 3}}}
	for _, w := range want {
		var got msg
		recvd, err := Recv(b, &got)
		if err != nil {
			t.Fatalf("%s: %v", w.op, err)
		}
		if got.Op != w.op || len(recvd) != len(w.sizes) {
			t.Fatalf("got %q with %d files, want %q with %d", got.Op, len(recvd), w.op, len(w.sizes))
		}
		for i, f := range recvd {
			st, _ := f.Stat()
			if st.Size() != w.sizes[i] {
				t.Errorf("%s: file %d size %d, want %d", w.op, i, st.Size(), w.sizes[i])
			}
			f.Close()
		}
	}
}

func TestSendRefuses(t *testing.T) {
	tests := []struct {
		name  string
		v     any
		files int
		want  error
	}{
		{"too many files", msg{Op: "x"}, MaxFiles + 1, ErrTooLarge},
		{"too large", msg{Args: []string{strings.Repeat("z", MaxMessageSize)}}, 0, ErrTooLarge},
		{"not JSON", make(chan int), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := pair(t)
			err := Send(a, tt.v, tempFiles(t, tt.files)...)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "fdpass: send: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// rawSend writes bytes with descriptors attached, bypassing Send's checks.
func rawSend(t *testing.T, c *net.UnixConn, b []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.WriteMsgUnix(b, oob, nil); err != nil {
		t.Fatal(err)
	}
}

func frame(payload string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	return append(b, payload...)
}

// Recv fails cleanly on bad input and closes every descriptor it received.
func TestRecvRejects(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	null := int(devnull.Fd())
	many := make([]int, MaxFiles+1)
	for i := range many {
		many[i] = null
	}
	tests := []struct {
		name  string
		bytes []byte
		fds   []int
		close bool // close the sender after writing
		want  error
	}{
		{"too many files", frame(`{"op":"x"}`), many, false, ErrTooLarge},
		{"oversized length", binary.BigEndian.AppendUint32(nil, MaxMessageSize+1), []int{null}, false, ErrTooLarge},
		{"bad JSON", frame(`{"op":`), []int{null, null}, false, nil},
		{"trailing data", frame(`{"op":"x"} {}`), []int{null}, false, nil},
		{"wrong type", frame(`{"op":3}`), []int{null}, false, nil},
		{"cut payload", frame(`{"op":"x"}`)[:8], []int{null}, true, io.ErrUnexpectedEOF},
		{"cut header", []byte{0, 0}, []int{null}, true, io.ErrUnexpectedEOF},
		{"end of stream", nil, nil, true, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t)
			before := openFDs(t)
			if len(tt.bytes) > 0 {
				rawSend(t, a, tt.bytes, tt.fds...)
			}
			if tt.close {
				a.Close()
			}
			var got msg
			files, err := Recv(b, &got)
			if err == nil {
				t.Fatalf("Recv succeeded: %+v, %d files", got, len(files))
			}
			if files != nil {
				t.Errorf("got %d files with the error", len(files))
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if tt.close {
				before-- // the closed sender
			}
			if after := openFDs(t); after != before {
				t.Errorf("%d descriptors open after the error, %d before", after, before)
			}
		})
	}
}

// One sender and one receiver may run at the same time on each side.
func TestConcurrentDirections(t *testing.T) {
	a, b := pair(t)
	const n = 200
	var wg sync.WaitGroup
	for _, c := range []*net.UnixConn{a, b} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range n {
				if err := Send(c, msg{Op: "ping"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range n {
				var m msg
				if _, err := Recv(c, &m); err != nil || m.Op != "ping" {
					t.Errorf("Recv: %v %q", err, m.Op)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzRecv(f *testing.F) {
	f.Add(frame(`{"op":"launch","args":["a"]}`))
	f.Add(frame(`{}`))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 1, '{'})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := pair(t)
		go func() {
			_, _ = a.Write(data)
			a.Close()
		}()
		for {
			var m msg
			files, err := Recv(b, &m)
			closeAll(files)
			if err != nil {
				return
			}
		}
	})
}
