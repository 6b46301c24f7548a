package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// opener opens a source holding data, closed at the end of the test.
type opener func(t *testing.T, data []byte) Source

func fileOpener(url bool) opener {
	return func(t *testing.T, data []byte) Source {
		p := filepath.Join(t.TempDir(), "p.appv")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if url {
			p = "file://" + p
		}
		return openURL(t, p, fast())
	}
}

func httpOpener(wrap func(http.Handler) http.Handler) opener {
	return func(t *testing.T, data []byte) Source {
		srv := newServer(t, wrap(serve(data)))
		return openURL(t, srv.URL+"/content/p.appv", fast())
	}
}

// TestSource runs the Source contract against every implementation and
// the kinds of HTTP server we meet.
func TestSource(t *testing.T) {
	var reordered atomic.Int64
	same := func(h http.Handler) http.Handler { return h }
	impls := []struct {
		name string
		open opener
	}{
		{"file", fileOpener(false)},
		{"file URL", fileOpener(true)},
		{"http ServeContent", httpOpener(same)},
		{"http shuffled parts", httpOpener(func(h http.Handler) http.Handler { return shuffleParts(h, &reordered) })},
		{"http first range only", httpOpener(firstRangeOnly)},
		{"http whole for multi-range", httpOpener(wholeForMultiRange)},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) { testSource(t, impl.open) })
	}
	if reordered.Load() == 0 {
		t.Error("the shuffling server never reordered the parts")
	}
}

func testSource(t *testing.T, open opener) {
	data := testData(3<<20+12345, 7)

	t.Run("Size", func(t *testing.T) {
		s := open(t, data)
		if s.Size() != int64(len(data)) {
			t.Errorf("Size() = %d, want %d", s.Size(), len(data))
		}
		if s.Location() == "" {
			t.Error("Location() is empty")
		}
	})

	t.Run("ReadAt", func(t *testing.T) {
		s := open(t, data)
		r := rand.New(rand.NewPCG(1, 2))
		for range 100 {
			off := r.Int64N(int64(len(data)))
			n := r.IntN(200 << 10)
			p := make([]byte, n)
			got, err := s.ReadAt(p, off)
			want := min(n, len(data)-int(off))
			if got != want {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, want %d (%v)", n, off, got, want, err)
			}
			if want < n && err != io.EOF {
				t.Fatalf("ReadAt(%d bytes at %d) past the end: err %v, want io.EOF", n, off, err)
			}
			if want == n && err != nil {
				t.Fatalf("ReadAt(%d bytes at %d): %v", n, off, err)
			}
			if !bytes.Equal(p[:got], data[off:off+int64(got)]) {
				t.Fatalf("ReadAt(%d bytes at %d): wrong bytes", n, off)
			}
		}
	})

	t.Run("ReadAtEdges", func(t *testing.T) {
		s := open(t, data)
		size := int64(len(data))
		tests := []struct {
			name    string
			off     int64
			n       int
			want    int
			wantEOF bool
		}{
			{"empty buffer", 10, 0, 0, false},
			{"first byte", 0, 1, 1, false},
			{"last byte", size - 1, 1, 1, false},
			{"whole", 0, len(data), len(data), false},
			{"across the end", size - 10, 20, 10, true},
			{"at the end", size, 5, 0, true},
			{"past the end", size + 100, 5, 0, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := make([]byte, tt.n)
				n, err := s.ReadAt(p, tt.off)
				if n != tt.want || (err == io.EOF) != tt.wantEOF || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d, EOF %v", tt.n, tt.off, n, err, tt.want, tt.wantEOF)
				}
				if n > 0 && !bytes.Equal(p[:n], data[tt.off:tt.off+int64(n)]) {
					t.Fatal("wrong bytes")
				}
			})
		}
		if _, err := s.ReadAt(make([]byte, 1), -1); err == nil {
			t.Error("ReadAt at -1: no error")
		}
	})

	t.Run("ReadRanges", func(t *testing.T) {
		s := open(t, data)
		r := rand.New(rand.NewPCG(3, 4))
		size := int64(len(data))
		for round := range 20 {
			var rs []Range
			switch round % 3 {
			case 0: // scattered
				for range 1 + r.IntN(100) {
					off := r.Int64N(size)
					rs = append(rs, Range{off, r.Int64N(min(70000, size-off) + 1)})
				}
			case 1: // runs of blocks, as a stream fault or feature block asks
				off := r.Int64N(size / 2)
				for range 1 + r.IntN(40) {
					n := 1 + r.Int64N(64<<10)
					if off+n > size {
						break
					}
					rs = append(rs, Range{off, n})
					off += n + r.Int64N(3)*r.Int64N(40<<10)
				}
			case 2: // overlapping, repeated and empty ranges, and many of them
				for range 150 {
					off := r.Int64N(size)
					rs = append(rs, Range{off, r.Int64N(min(5000, size-off) + 1)})
				}
				rs = append(rs, rs[0], Range{0, 0}, Range{size, 0}, Range{size - 1, 1}, Range{0, size})
				r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
			}
			got, err := s.ReadRanges(context.Background(), rs)
			if err != nil {
				t.Fatalf("round %d: ReadRanges: %v", round, err)
			}
			if len(got) != len(rs) {
				t.Fatalf("round %d: %d slices for %d ranges", round, len(got), len(rs))
			}
			for i, rg := range rs {
				if got[i] == nil || !bytes.Equal(got[i], data[rg.Off:rg.Off+rg.Len]) {
					t.Fatalf("round %d: range %d %+v: wrong bytes (%d of them)", round, i, rg, len(got[i]))
				}
			}
		}
		if got, err := s.ReadRanges(context.Background(), nil); err != nil || len(got) != 0 {
			t.Errorf("ReadRanges(nil) = %v, %v", got, err)
		}
	})

	t.Run("ReadRangesOutside", func(t *testing.T) {
		s := open(t, data)
		size := int64(len(data))
		for _, rg := range []Range{{-1, 5}, {0, -1}, {size - 1, 2}, {size + 1, 0}, {1, 1<<63 - 1}} {
			if _, err := s.ReadRanges(context.Background(), []Range{{0, 10}, rg}); err == nil {
				t.Errorf("ReadRanges(%+v): no error", rg)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t, data)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 9))
				for range 10 {
					off := r.Int64N(int64(len(data)) - 70000)
					p := make([]byte, 1+r.IntN(70000))
					if _, err := s.ReadAt(p, off); err != nil {
						t.Error(err)
						return
					}
					if !bytes.Equal(p, data[off:off+int64(len(p))]) {
						t.Error("wrong bytes")
						return
					}
					rs := []Range{{off, 10}, {off / 2, 100}, {off / 3, 1000}}
					got, err := s.ReadRanges(context.Background(), rs)
					if err != nil {
						t.Error(err)
						return
					}
					for i, rg := range rs {
						if !bytes.Equal(got[i], data[rg.Off:rg.Off+rg.Len]) {
							t.Error("wrong bytes")
							return
						}
					}
				}
			})
		}
		wg.Wait()
	})

	t.Run("Stats", func(t *testing.T) {
		s := open(t, data)
		before := s.Stats()
		if _, err := s.ReadAt(make([]byte, 1000), 5000); err != nil {
			t.Fatal(err)
		}
		after := s.Stats()
		if after.Requests != before.Requests+1 {
			t.Errorf("Requests %d → %d after one ReadAt", before.Requests, after.Requests)
		}
		if after.Bytes != before.Bytes+1000 {
			t.Errorf("Bytes %d → %d after reading 1000", before.Bytes, after.Bytes)
		}
		if after.Retries != 0 {
			t.Errorf("Retries = %d", after.Retries)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		s := open(t, nil)
		if s.Size() != 0 {
			t.Fatalf("Size() = %d", s.Size())
		}
		if n, err := s.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
			t.Errorf("ReadAt = %d, %v; want 0, EOF", n, err)
		}
		got, err := s.ReadRanges(context.Background(), []Range{{0, 0}})
		if err != nil || len(got) != 1 || len(got[0]) != 0 {
			t.Errorf("ReadRanges = %v, %v", got, err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		s := open(t, data)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReadAt(make([]byte, 10), 0); !errors.Is(err, os.ErrClosed) {
			t.Errorf("ReadAt after Close: %v, want os.ErrClosed", err)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		s := open(t, data)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.ReadRanges(ctx, []Range{{0, 10}, {1 << 20, 10}})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ReadRanges with a canceled ctx: %v, want context.Canceled", err)
		}
	})
}
