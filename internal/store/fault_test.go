package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/store"
	"github.com/appv/appv/internal/store/storetest"
)

func TestStreamFault(t *testing.T) {
	// A random read fetches only the block it touches, whatever the
	// read-ahead limit: read-ahead starts when reads are sequential.
	for _, ra := range []int{-1, 0, 3} {
		t.Run(fmt.Sprintf("random read, read-ahead %d", ra), func(t *testing.T) {
			fx := newFixture(t)
			s := fx.open(t, store.Options{ReadAhead: ra})
			v := fx.add(t, s)
			want := fx.want(t, randomBin)
			before := fx.srv.Bytes()
			const block = 5
			off := int64(block)*appvpkg.BlockSize + 100
			buf := make([]byte, 1000)
			if _, err := v.ReadAt(context.Background(), randomBin, buf, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, want[off:off+1000]) {
				t.Fatal("wrong bytes")
			}
			if got, exp := fx.srv.Bytes()-before, fx.rawSize(t, randomBin, block, 1); got != exp {
				t.Errorf("fetched %d bytes, want %d (one block)", got, exp)
			}
			if !v.BlockPresent(randomBin, block) || v.BlockPresent(randomBin, block+1) {
				t.Error("a random read must bring its block and no other")
			}
			// Read again: served locally.
			before = fx.srv.Bytes()
			if _, err := v.ReadAt(context.Background(), randomBin, buf, off); err != nil {
				t.Fatal(err)
			}
			if d := fx.srv.Bytes() - before; d != 0 {
				t.Errorf("second read fetched %d bytes", d)
			}
			if st := v.Stats(); st.Faults != 1 {
				t.Errorf("Faults = %d", st.Faults)
			}
		})
	}
	// Reading a file from start to end in small reads fetches each block
	// once and, with read-ahead, in far fewer requests than blocks; nothing
	// beyond the file's end is fetched.
	for _, tc := range []struct {
		readAhead   int
		maxRequests int
	}{{-1, 25}, {0, 8}, {3, 12}} {
		t.Run(fmt.Sprintf("sequential read, read-ahead %d", tc.readAhead), func(t *testing.T) {
			fx := newFixture(t)
			s := fx.open(t, store.Options{ReadAhead: tc.readAhead})
			v := fx.add(t, s)
			want := fx.want(t, randomBin) // 25 blocks
			before, beforeReq := fx.srv.Bytes(), fx.srv.Requests()
			got := make([]byte, 0, len(want))
			buf := make([]byte, 16<<10)
			for off := int64(0); off < int64(len(want)); off += int64(len(buf)) {
				n, err := v.ReadAt(context.Background(), randomBin, buf, off)
				if err != nil && err != io.EOF {
					t.Fatal(err)
				}
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("wrong bytes")
			}
			nb := (len(want) + appvpkg.BlockSize - 1) / appvpkg.BlockSize
			if fetched, exp := fx.srv.Bytes()-before, fx.rawSize(t, randomBin, 0, nb); fetched != exp {
				t.Errorf("fetched %d bytes, want exactly the file's %d", fetched, exp)
			}
			if reqs := fx.srv.Requests() - beforeReq; reqs > int64(tc.maxRequests) {
				t.Errorf("%d requests for %d blocks, want at most %d", reqs, nb, tc.maxRequests)
			}
		})
	}
}

func TestReadAtEdges(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	v := fx.add(t, s)
	want := fx.want(t, manyText)
	ctx := context.Background()
	tests := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantErr error
	}{
		{"start", 0, 10, 10, nil},
		{"across blocks", appvpkg.BlockSize - 5, 10, 10, nil},
		{"many blocks", 3, 5 * appvpkg.BlockSize, 5 * appvpkg.BlockSize, nil},
		{"tail short", int64(len(want)) - 3, 10, 3, io.EOF},
		{"at end", int64(len(want)), 10, 0, io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, tc.n)
			n, err := v.ReadAt(ctx, manyText, buf, tc.off)
			if n != tc.wantN || !errors.Is(err, tc.wantErr) && err != tc.wantErr {
				t.Fatalf("ReadAt = %d, %v; want %d, %v", n, err, tc.wantN, tc.wantErr)
			}
			if !bytes.Equal(buf[:n], want[tc.off:tc.off+int64(n)]) {
				t.Error("wrong bytes")
			}
		})
	}
	if _, err := v.ReadAt(ctx, "Root/nope", make([]byte, 1), 0); !errors.Is(err, appvpkg.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	if n, err := v.ReadAt(ctx, "Root/share/empty-file", make([]byte, 1), 0); n != 0 || err != io.EOF {
		t.Errorf("empty file: %d, %v", n, err)
	}
}

func TestConcurrentReadersOneFetch(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{ReadAhead: -1})
	v := fx.add(t, s)
	want := fx.want(t, manyText)
	fx.srv.Delay(200 * time.Millisecond)
	before, beforeBytes := fx.srv.Requests(), fx.srv.Bytes()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			off := int64(7*appvpkg.BlockSize + i*100)
			if _, err := v.ReadAt(context.Background(), manyText, buf, off); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(buf, want[off:off+4096]) {
				errs <- errors.New("wrong bytes")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := fx.srv.Requests() - before; got != 1 {
		t.Errorf("20 readers made %d requests, want 1", got)
	}
	if got, exp := fx.srv.Bytes()-beforeBytes, fx.rawSize(t, manyText, 7, 1); got != exp {
		t.Errorf("fetched %d bytes, want %d", got, exp)
	}
}

func TestCorruptBlock(t *testing.T) {
	tests := []struct {
		name    string
		corrupt int // block of random.bin served corrupted
		read    int // block read
		wantErr bool
	}{
		{"requested block", 3, 3, true},
		// Block 2 then 3: a sequential reader, so 4 comes by read-ahead.
		{"read-ahead block", 4, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			s := fx.open(t, store.Options{ReadAhead: 2})
			v := fx.add(t, s)
			want := fx.want(t, randomBin)
			fx.srv.Corrupt(fx.blockOffset(t, randomBin, tc.corrupt) + 1000)
			buf := make([]byte, 100)
			if !tc.wantErr {
				if _, err := v.ReadAt(context.Background(), randomBin, buf, int64(tc.read-1)*appvpkg.BlockSize); err != nil {
					t.Fatal(err)
				}
			}
			off := int64(tc.read) * appvpkg.BlockSize
			_, err := v.ReadAt(context.Background(), randomBin, buf, off)
			if tc.wantErr {
				if !errors.Is(err, appvpkg.ErrHash) {
					t.Fatalf("ReadAt of a corrupt block: %v, want ErrHash", err)
				}
				if bytes.Equal(buf, want[off:off+100]) {
					t.Error("the reader got the block's bytes anyway")
				}
			} else if err != nil {
				t.Fatalf("ReadAt: %v", err)
			}
			if v.BlockPresent(randomBin, tc.corrupt) {
				t.Error("corrupt block is marked present")
			}
			p, _ := filepath.Abs(filepath.Join(v.Dir(), randomBin))
			if dataAt(t, p, int64(tc.corrupt)*appvpkg.BlockSize, appvpkg.BlockSize) {
				t.Error("corrupt block was written to the sparse file")
			}
			if st := v.Stats(); st.HashFailures != 1 {
				t.Errorf("HashFailures = %d", st.HashFailures)
			}
			// The server is fixed: the next read fetches and heals.
			fx.srv.Fix()
			before := fx.srv.Bytes()
			off = int64(tc.corrupt) * appvpkg.BlockSize
			if _, err := v.ReadAt(context.Background(), randomBin, buf, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, want[off:off+100]) {
				t.Error("wrong bytes after healing")
			}
			if fx.srv.Bytes() == before {
				t.Error("healing read fetched nothing")
			}
		})
	}
}

func TestServerFailure(t *testing.T) {
	tests := []struct {
		name string
		fail func(*storetest.Server)
	}{
		{"dies mid-stream", func(s *storetest.Server) { s.DieAfter(1000) }},
		{"down", func(s *storetest.Server) { s.Down(true) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			s := fx.open(t, store.Options{})
			v := fx.add(t, s)
			want := fx.want(t, randomBin)
			tc.fail(fx.srv)
			buf := make([]byte, 3*appvpkg.BlockSize)
			off := int64(10 * appvpkg.BlockSize)
			_, err := v.ReadAt(context.Background(), randomBin, buf, off)
			if err == nil {
				t.Fatal("read from a broken server succeeded")
			}
			if errors.Is(err, appvpkg.ErrHash) {
				t.Errorf("error is a hash error: %v", err)
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "store: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if v.BlockPresent(randomBin, 10) {
				t.Error("block present after a failed fetch")
			}
			fx.srv.Fix()
			if _, err := v.ReadAt(context.Background(), randomBin, buf, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, want[off:off+int64(len(buf))]) {
				t.Error("wrong bytes")
			}
		})
	}
}

func TestReadCancelled(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{ReadAhead: -1})
	v := fx.add(t, s)
	fx.srv.Delay(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// One reader gives up; another, waiting on the same block, must still
	// get it.
	var wg sync.WaitGroup
	var err2 error
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(10 * time.Millisecond)
		_, err2 = v.ReadAt(context.Background(), randomBin, make([]byte, 10), 0)
	}()
	_, err := v.ReadAt(ctx, randomBin, make([]byte, 10), 0)
	wg.Wait()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled read: %v", err)
	}
	if err2 != nil {
		t.Errorf("patient read: %v", err2)
	}
}

func TestEnsure(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	v := fx.add(t, s)
	ctx := context.Background()
	if err := v.Ensure(ctx, manyText, 10, 5); err != nil {
		t.Fatal(err)
	}
	for i := 8; i < 17; i++ {
		if got, want := v.BlockPresent(manyText, i), i >= 10 && i < 15; got != want {
			t.Errorf("block %d present = %v", i, got)
		}
	}
	if err := v.Ensure(ctx, manyText, 38, 100); err != nil { // clipped
		t.Fatal(err)
	}
	if err := v.EnsureFeatureBlock(ctx, store.Primary); err != nil { // empty
		t.Fatal(err)
	}
	before := fx.srv.Bytes()
	if err := v.EnsureFeatureBlock(ctx, store.Publishing); err != nil {
		t.Fatal(err)
	}
	if d := fx.srv.Bytes() - before; d != 0 {
		t.Errorf("publishing block fetched again: %d bytes", d)
	}
}

func TestFeatureBlocks(t *testing.T) {
	primary := appvpkg.StreamMap{}
	if err := primary.Primary.Add(manyText, appvpkg.BlockRange{Index: 2, Count: 3}, appvpkg.BlockRange{Index: 30, Count: 2}); err != nil {
		t.Fatal(err)
	}
	if err := primary.Primary.Add(randomBin); err != nil { // whole file
		t.Fatal(err)
	}
	loadAll := appvpkg.StreamMap{}
	loadAll.Publishing.LoadAll = true

	tests := []struct {
		name        string
		sm          *appvpkg.StreamMap
		afterAdd    func(t *testing.T, v *store.Version) // what Add left
		afterEnsure func(t *testing.T, v *store.Version) // after the primary feature block
	}{
		{
			name: "primary",
			sm:   &primary,
			afterAdd: func(t *testing.T, v *store.Version) {
				if v.BlockPresent(manyText, 2) || v.BlockPresent(randomBin, 0) {
					t.Error("primary feature block loaded by Add")
				}
			},
			afterEnsure: func(t *testing.T, v *store.Version) {
				for i := 0; i < 41; i++ {
					want := (i >= 2 && i < 5) || i == 30 || i == 31
					if v.BlockPresent(manyText, i) != want {
						t.Errorf("%s block %d present = %v", manyText, i, !want)
					}
				}
				if !v.FullyLocal(randomBin) {
					t.Errorf("%s not local", randomBin)
				}
			},
		},
		{
			name: "publishing LoadAll",
			sm:   &loadAll,
			afterAdd: func(t *testing.T, v *store.Version) {
				if st := v.Stats(); st.BlocksPresent != st.BlocksTotal {
					t.Errorf("LoadAll: %d of %d blocks after Add", st.BlocksPresent, st.BlocksTotal)
				}
			},
			afterEnsure: func(t *testing.T, v *store.Version) {},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree := storetest.Tree(t)
			data := storetest.PackageWith(t, tree, storetest.VersionID, tc.sm)
			srv := storetest.NewServer(t, data)
			fx := &fixture{tree: tree, data: data, srv: srv, dir: t.TempDir()}
			s := fx.open(t, store.Options{ReadAhead: -1})
			v := fx.add(t, s)
			tc.afterAdd(t, v)
			before := srv.Requests()
			if err := v.EnsureFeatureBlock(context.Background(), store.Primary); err != nil {
				t.Fatal(err)
			}
			if r := srv.Requests() - before; r > 3 {
				t.Errorf("primary feature block took %d requests", r)
			}
			tc.afterEnsure(t, v)
		})
	}
}
