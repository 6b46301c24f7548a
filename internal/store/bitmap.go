package store

// bitmap is the block-presence bitmap, in its on-disk form: bit g is bit
// g%8 (least significant first) of byte g/8.
type bitmap []byte

func newBitmap(n int) bitmap { return make(bitmap, (n+7)/8) }

func (b bitmap) has(g int) bool { return b[g>>3]&(1<<(g&7)) != 0 }
func (b bitmap) set(g int)      { b[g>>3] |= 1 << (g & 7) }
func (b bitmap) clear(g int)    { b[g>>3] &^= 1 << (g & 7) }
