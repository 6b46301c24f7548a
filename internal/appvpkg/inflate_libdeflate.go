//go:build cgo && !nolibdeflate

package appvpkg

/*
#cgo LDFLAGS: -ldeflate
#include <libdeflate.h>
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Blocks are inflated with libdeflate, a whole-buffer inflater about four
// times faster than Go's on this work (bench/README.md): a block is at most
// 64 KiB and its size is known, which is the case libdeflate is built for.
// Build with -tags nolibdeflate (or CGO_ENABLED=0) for the pure-Go inflater.

// InflaterName names the block inflater this binary was built with.
const InflaterName = "libdeflate"

type inflater struct {
	d       *C.struct_libdeflate_decompressor
	scratch []byte
}

var inflaters = sync.Pool{New: func() any {
	in := &inflater{d: C.libdeflate_alloc_decompressor()}
	if in.d == nil {
		panic("appvpkg: libdeflate_alloc_decompressor: out of memory")
	}
	runtime.AddCleanup(in, func(d *C.struct_libdeflate_decompressor) { C.libdeflate_free_decompressor(d) }, in.d)
	return in
}}

// inflateBlock inflates one independently deflated block into out, which
// has exactly the block's uncompressed length. A block ends in a sync flush,
// not a final block, so the final empty block MakeAppx writes ("03 00") is
// appended to a copy: libdeflate wants a complete stream, and raw may be a
// window into a larger buffer that must not be written.
func inflateBlock(raw, out []byte) error {
	in := inflaters.Get().(*inflater)
	defer inflaters.Put(in)
	in.scratch = append(append(in.scratch[:0], raw...), finalBlock...)
	var n C.size_t
	r := C.libdeflate_deflate_decompress_ex(in.d,
		unsafe.Pointer(&in.scratch[0]), C.size_t(len(in.scratch)),
		unsafe.Pointer(&out[0]), C.size_t(len(out)), nil, &n)
	switch r {
	case C.LIBDEFLATE_SUCCESS:
		if int(n) != len(out) {
			return fmt.Errorf("inflates to %d bytes", int(n))
		}
		return nil
	case C.LIBDEFLATE_INSUFFICIENT_SPACE:
		return fmt.Errorf("inflates to more than %d bytes", len(out))
	}
	return fmt.Errorf("not valid deflate data (libdeflate error %d)", int(r))
}
