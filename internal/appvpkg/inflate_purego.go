//go:build !cgo || nolibdeflate

package appvpkg

import (
	"bytes"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// InflaterName names the block inflater this binary was built with.
const InflaterName = "klauspost/compress/flate (pure Go)"

var flatePool sync.Pool

// inflateBlock inflates one independently deflated block into out, which
// has exactly the block's uncompressed length.
func inflateBlock(raw, out []byte) error {
	br := bytes.NewReader(raw)
	fr, ok := flatePool.Get().(io.ReadCloser)
	if ok {
		if err := fr.(flate.Resetter).Reset(br, nil); err != nil {
			ok = false
		}
	}
	if !ok {
		fr = flate.NewReader(br)
	}
	defer flatePool.Put(fr)
	_, err := io.ReadFull(fr, out)
	return err
}
