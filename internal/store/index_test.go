package store

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"

	"github.com/appv/appv/internal/source"
)

func TestCoalesce(t *testing.T) {
	tests := []struct {
		name string
		in   []source.Range
		want []source.Range
	}{
		{"empty", nil, nil},
		{"one", []source.Range{{Off: 5, Len: 3}}, []source.Range{{Off: 5, Len: 3}}},
		{"adjacent", []source.Range{{Off: 8, Len: 2}, {Off: 5, Len: 3}}, []source.Range{{Off: 5, Len: 5}}},
		{"overlapping", []source.Range{{Off: 0, Len: 10}, {Off: 5, Len: 3}, {Off: 9, Len: 4}}, []source.Range{{Off: 0, Len: 13}}},
		{"apart", []source.Range{{Off: 20, Len: 1}, {Off: 0, Len: 10}}, []source.Range{{Off: 0, Len: 10}, {Off: 20, Len: 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := coalesce(slices.Clone(tc.in)); !slices.Equal(got, tc.want) {
				t.Errorf("coalesce(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// bytesSource is a source.Source over a byte slice that counts reads.
type bytesSource struct {
	data  []byte
	reads int
}

func (s *bytesSource) ReadAt(p []byte, off int64) (int, error) {
	s.reads++
	return bytes.NewReader(s.data).ReadAt(p, off)
}

func (s *bytesSource) ReadRanges(ctx context.Context, rs []source.Range) ([][]byte, error) {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		out[i] = make([]byte, r.Len)
		if _, err := s.ReadAt(out[i], r.Off); err != nil && err != io.EOF {
			return nil, err
		}
	}
	return out, nil
}

func (s *bytesSource) Size() int64         { return int64(len(s.data)) }
func (s *bytesSource) Location() string    { return "bytes" }
func (s *bytesSource) Stats() source.Stats { return source.Stats{} }
func (s *bytesSource) Close() error        { return nil }

func TestRecorder(t *testing.T) {
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	src := &bytesSource{data: data}
	r := newRecorder(src)
	tests := []struct {
		name      string
		off, n    int64
		wantReads int // source reads so far
	}{
		{"first read fetches 64 KiB", 1000, 30, 1},
		{"inside it: no fetch", 1030, 100, 1},
		{"past it", 100 << 10, 10, 2},
		{"spanning both and the gap", 500, 120 << 10, 3},
		{"now all recorded", 0, 160 << 10, 4},
		{"recorded", 10, 150 << 10, 4},
		{"tail, short", int64(len(data)) - 5, 10, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]byte, tc.n)
			n, err := r.ReadAt(p, tc.off)
			want := data[tc.off:min(int64(len(data)), tc.off+tc.n)]
			if n != len(want) || !bytes.Equal(p[:n], want) {
				t.Fatalf("ReadAt = %d, %v", n, err)
			}
			if n < len(p) && err != io.EOF {
				t.Errorf("short read without EOF: %v", err)
			}
			if src.reads != tc.wantReads {
				t.Errorf("source reads = %d, want %d", src.reads, tc.wantReads)
			}
		})
	}
	// Recorded chunks never overlap or touch.
	for i := 1; i < len(r.chunks); i++ {
		prev := r.chunks[i-1]
		if prev.off+int64(len(prev.data)) >= r.chunks[i].off {
			t.Errorf("chunks %d and %d touch", i-1, i)
		}
	}
}
