package appvpkg

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"

	// Register the hashes the block map may name.
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// BlockSize is the uncompressed size of every block but a file's last.
const BlockSize = 64 << 10

// Block-map namespaces and hash methods.
const (
	BlockMapNS2010 = "http://schemas.microsoft.com/appx/2010/blockmap"
	BlockMapNS2015 = "http://schemas.microsoft.com/appx/2015/blockmap"
	BlockMapNS2017 = "http://schemas.microsoft.com/appx/2017/blockmap"

	HashSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
	HashSHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	HashSHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
)

var hashMethods = map[string]crypto.Hash{
	HashSHA256: crypto.SHA256,
	HashSHA384: crypto.SHA384,
	HashSHA512: crypto.SHA512,
}

// BlockMap is AppxBlockMap.xml: for every file, its size, its local header
// size and the hash (and, for deflated files, compressed size) of each
// 64 KiB block.
type BlockMap struct {
	HashMethod string
	Hash       crypto.Hash
	Files      []BlockMapFile
}

// BlockMapFile is one <File> of the block map.
type BlockMapFile struct {
	Name    string // package path ("/"-separated, decoded)
	Size    int64  // uncompressed size
	LfhSize int64  // size of the ZIP local file header
	Blocks  []Block
}

// Block is one <Block>: its hash, and its compressed size for deflated files
// (0 means stored: no Size attribute).
type Block struct {
	Hash []byte
	Size int64
}

// ParseBlockMap parses and checks AppxBlockMap.xml. It checks the document on
// its own: namespace, hash method, hash lengths, block counts, names and
// duplicates. Agreement with the ZIP is checked by Open.
func ParseBlockMap(data []byte) (*BlockMap, error) {
	const part = BlockMapPart
	data, err := checkXML(part, data)
	if err != nil {
		return nil, err
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	bm := &BlockMap{}
	var cur *BlockMapFile
	seen := map[string]bool{}
	depth := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, formatErr(part, err, "not well-formed XML")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if t.Name.Local != "BlockMap" || !isBlockMapNS(t.Name.Space) {
					return nil, formatErr(part, nil, "root element is {%s}%s, not BlockMap in the appx block-map namespace", t.Name.Space, t.Name.Local)
				}
				bm.HashMethod = attr(t, "HashMethod")
				h, ok := hashMethods[bm.HashMethod]
				if !ok {
					return nil, formatErr(part, nil, "unsupported HashMethod %q", bm.HashMethod)
				}
				bm.Hash = h
			case depth == 2 && t.Name.Local == "File" && isBlockMapNS(t.Name.Space):
				f, err := parseBlockMapFile(t)
				if err != nil {
					return nil, err
				}
				// Exact duplicates only: Linux trees may hold names that
				// differ only in case (docs/format.md).
				key := f.Name
				if seen[key] {
					return nil, formatErr(part, nil, "file %q is listed more than once", f.Name)
				}
				seen[key] = true
				bm.Files = append(bm.Files, f)
				cur = &bm.Files[len(bm.Files)-1]
			case depth == 3 && t.Name.Local == "Block" && isBlockMapNS(t.Name.Space) && cur != nil:
				b, err := parseBlock(t, cur.Name, len(cur.Blocks), bm.Hash)
				if err != nil {
					return nil, err
				}
				cur.Blocks = append(cur.Blocks, b)
			case isBlockMapNS(t.Name.Space):
				return nil, formatErr(part, nil, "unexpected element <%s> at depth %d", t.Name.Local, depth)
			}
			// Elements in other namespaces are extensions; ignored.
		case xml.EndElement:
			if depth == 2 && cur != nil {
				if err := checkBlockCount(cur); err != nil {
					return nil, err
				}
				cur = nil
			}
			depth--
		}
	}
	if bm.Hash == 0 {
		return nil, formatErr(part, nil, "no BlockMap element")
	}
	return bm, nil
}

// isBlockMapNS reports whether uri is one of the block-map namespaces. Later
// versions add elements (ignored here) but keep File and Block.
func isBlockMapNS(uri string) bool {
	return uri == BlockMapNS2010 || uri == BlockMapNS2015 || uri == BlockMapNS2017
}

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func hasAttr(t xml.StartElement, local string) bool {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return true
		}
	}
	return false
}

func parseBlockMapFile(t xml.StartElement) (BlockMapFile, error) {
	const part = BlockMapPart
	name := attr(t, "Name")
	p, err := fromBlockMapName(name)
	if err != nil {
		return BlockMapFile{}, formatErr(part, err, "bad file name %q", name)
	}
	size, err := strconv.ParseInt(attr(t, "Size"), 10, 64)
	if err != nil || size < 0 {
		return BlockMapFile{}, formatErr(part, nil, "file %q: bad Size %q", name, attr(t, "Size"))
	}
	lfh, err := strconv.ParseInt(attr(t, "LfhSize"), 10, 64)
	if err != nil || lfh < lenLocalHeader || lfh > lenLocalHeader+2*0xFFFF {
		return BlockMapFile{}, formatErr(part, nil, "file %q: bad LfhSize %q", name, attr(t, "LfhSize"))
	}
	return BlockMapFile{Name: p, Size: size, LfhSize: lfh}, nil
}

func parseBlock(t xml.StartElement, file string, i int, h crypto.Hash) (Block, error) {
	const part = BlockMapPart
	sum, err := base64.StdEncoding.DecodeString(attr(t, "Hash"))
	if err != nil || len(sum) != h.Size() {
		return Block{}, formatErr(part, nil, "file %q block %d: hash is not a base64 %s digest", file, i, h)
	}
	b := Block{Hash: sum}
	if hasAttr(t, "Size") {
		n, err := strconv.ParseInt(attr(t, "Size"), 10, 64)
		// A deflated 64 KiB block is at most a few bytes over 64 KiB.
		if err != nil || n <= 0 || n > BlockSize+1024 {
			return Block{}, formatErr(part, nil, "file %q block %d: bad Size %q", file, i, attr(t, "Size"))
		}
		b.Size = n
	}
	return b, nil
}

// checkBlockCount checks ceil(Size/64 KiB) blocks, and that the blocks are
// either all deflated (all have Size) or all stored (none has).
func checkBlockCount(f *BlockMapFile) error {
	want := (f.Size + BlockSize - 1) / BlockSize
	if int64(len(f.Blocks)) != want {
		return formatErr(BlockMapPart, nil, "file %q of %d bytes has %d blocks, want %d", f.Name, f.Size, len(f.Blocks), want)
	}
	for i := range f.Blocks {
		if (f.Blocks[i].Size > 0) != (f.Blocks[0].Size > 0) {
			return formatErr(BlockMapPart, nil, "file %q mixes blocks with and without Size", f.Name)
		}
	}
	return nil
}

// Deflated reports whether the file's blocks carry compressed sizes.
func (f *BlockMapFile) Deflated() bool { return len(f.Blocks) > 0 && f.Blocks[0].Size > 0 }

// BlockLen returns the uncompressed length of block i.
func (f *BlockMapFile) BlockLen(i int) int64 {
	return min(BlockSize, f.Size-int64(i)*BlockSize)
}

// CompressedSum returns the sum of the blocks' compressed sizes (deflated) or
// the file size (stored).
func (f *BlockMapFile) CompressedSum() int64 {
	if !f.Deflated() {
		return f.Size
	}
	var n int64
	for _, b := range f.Blocks {
		n += b.Size
	}
	return n
}

// Marshal writes the block map in the form MakeAppx writes.
func (bm *BlockMap) Marshal() []byte {
	var b bytes.Buffer
	b.Grow(128 + len(bm.Files)*160)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="no"?>` + "\n")
	fmt.Fprintf(&b, `<BlockMap xmlns="%s" HashMethod="%s">`, BlockMapNS2010, bm.HashMethod)
	b.WriteString("\n")
	for _, f := range bm.Files {
		b.WriteString(`<File Name="`)
		_ = xml.EscapeText(&b, []byte(blockMapName(f.Name)))
		fmt.Fprintf(&b, `" Size="%d" LfhSize="%d">`, f.Size, f.LfhSize)
		for _, blk := range f.Blocks {
			b.WriteString(`<Block Hash="`)
			b.WriteString(base64.StdEncoding.EncodeToString(blk.Hash))
			if blk.Size > 0 {
				fmt.Fprintf(&b, `" Size="%d`, blk.Size)
			}
			b.WriteString(`"/>`)
		}
		b.WriteString("</File>\n")
	}
	b.WriteString("</BlockMap>\n")
	return b.Bytes()
}
