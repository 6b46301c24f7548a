package appvpkg

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The ZIP layer. archive/zip reads ZIP files well but hides the offset of each
// local file header; a streaming client needs it (with the block map's
// LfhSize) to turn "file F, block i" into a byte range without first reading
// every local header over the network. So the central directory is parsed
// here, strictly; archive/zip serves as the reference in tests.

const (
	sigLocalHeader   = 0x04034b50
	sigCentralHeader = 0x02014b50
	sigEOCD          = 0x06054b50
	sigZip64EOCD     = 0x06064b50
	sigZip64Locator  = 0x07064b50
	sigDataDesc      = 0x08074b50

	lenLocalHeader   = 30
	lenCentralHeader = 46
	lenEOCD          = 22
	lenZip64EOCD     = 56
	lenZip64Locator  = 20

	methodStore   = 0
	methodDeflate = 8

	flagEncrypted      = 0x1
	flagDataDescriptor = 0x8
	flagUTF8           = 0x800

	zip64ExtraID = 0x0001

	// maxCentralDirectory bounds the central directory read into memory.
	maxCentralDirectory = 512 << 20
	// maxEntries bounds the number of ZIP entries in a package.
	maxEntries = 4 << 20
)

// zipEntry is one central-directory record.
type zipEntry struct {
	Name             string // raw ZIP name (percent-encoded part name)
	Flags            uint16
	Method           uint16
	CRC32            uint32
	CompressedSize   int64
	UncompressedSize int64
	HeaderOffset     int64 // offset of the local file header
	ModTime, ModDate uint16
	ExternalAttrs    uint32
}

// zipDirectory is the parsed central directory of an archive.
type zipDirectory struct {
	Entries  []zipEntry
	CDOffset int64 // where the central directory starts (end of entry data)
}

type readBuf []byte

func (b *readBuf) u16() uint16 { v := binary.LittleEndian.Uint16(*b); *b = (*b)[2:]; return v }
func (b *readBuf) u32() uint32 { v := binary.LittleEndian.Uint32(*b); *b = (*b)[4:]; return v }
func (b *readBuf) u64() uint64 { v := binary.LittleEndian.Uint64(*b); *b = (*b)[8:]; return v }
func (b *readBuf) sub(n int) readBuf {
	s := (*b)[:n]
	*b = (*b)[n:]
	return s
}

// readZipDirectory reads and checks the end records and the central
// directory. It reads at most two regions: the tail of the file and the
// central directory itself.
func readZipDirectory(r io.ReaderAt, size int64) (*zipDirectory, error) {
	const part = "ZIP container"
	if size < lenEOCD {
		return nil, formatErr(part, nil, "file of %d bytes is too small to be a ZIP archive", size)
	}
	tailLen := int64(lenEOCD + 65535 + lenZip64Locator)
	tailLen = min(tailLen, size)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil && err != io.EOF {
		return nil, fmt.Errorf("appvpkg: read ZIP end records: %w", err)
	}
	eocdAt := -1
	for i := len(tail) - lenEOCD; i >= 0; i-- {
		if binary.LittleEndian.Uint32(tail[i:]) == sigEOCD {
			// The comment must run exactly to the end of the file.
			if int(binary.LittleEndian.Uint16(tail[i+20:]))+i+lenEOCD == len(tail) {
				eocdAt = i
				break
			}
		}
	}
	if eocdAt < 0 {
		return nil, formatErr(part, nil, "no end of central directory record: not a ZIP archive, or truncated")
	}
	b := readBuf(tail[eocdAt+4:])
	diskNum, cdDisk := b.u16(), b.u16()
	entriesOnDisk, entries := uint64(b.u16()), uint64(b.u16())
	cdSize, cdOffset := uint64(b.u32()), uint64(b.u32())
	eocdOffset := size - tailLen + int64(eocdAt)

	// Zip64: a locator just before the EOCD points at the Zip64 EOCD record.
	if eocdAt >= lenZip64Locator && binary.LittleEndian.Uint32(tail[eocdAt-lenZip64Locator:]) == sigZip64Locator {
		lb := readBuf(tail[eocdAt-lenZip64Locator+4:])
		lb.u32() // disk with the zip64 EOCD
		z64Off := int64(lb.u64())
		if z64Off < 0 || z64Off > eocdOffset-lenZip64Locator-lenZip64EOCD {
			return nil, formatErr(part, nil, "Zip64 end record offset %d is outside the archive", z64Off)
		}
		rec := make([]byte, lenZip64EOCD)
		if _, err := r.ReadAt(rec, z64Off); err != nil {
			return nil, fmt.Errorf("appvpkg: read Zip64 end record: %w", err)
		}
		zb := readBuf(rec)
		if zb.u32() != sigZip64EOCD {
			return nil, formatErr(part, nil, "bad Zip64 end of central directory signature")
		}
		zb.u64() // record size
		zb.u16() // version made by
		zb.u16() // version needed
		diskNum = uint16(zb.u32())
		cdDisk = uint16(zb.u32())
		entriesOnDisk = zb.u64()
		entries = zb.u64()
		cdSize = zb.u64()
		cdOffset = zb.u64()
		eocdOffset = z64Off
	}
	if diskNum != 0 || cdDisk != 0 || entriesOnDisk != entries {
		return nil, formatErr(part, nil, "multi-disk archives are not supported")
	}
	if cdOffset > uint64(eocdOffset) || cdSize > uint64(eocdOffset)-cdOffset {
		return nil, formatErr(part, nil, "central directory (offset %d, size %d) lies outside the archive", cdOffset, cdSize)
	}
	if cdSize > maxCentralDirectory {
		return nil, formatErr(part, nil, "central directory of %d bytes is larger than the limit of %d", cdSize, maxCentralDirectory)
	}
	if entries > maxEntries || entries*lenCentralHeader > cdSize {
		return nil, formatErr(part, nil, "central directory claims %d entries in %d bytes", entries, cdSize)
	}
	cd := make([]byte, cdSize)
	if _, err := r.ReadAt(cd, int64(cdOffset)); err != nil && !(err == io.EOF && len(cd) == 0) {
		return nil, fmt.Errorf("appvpkg: read central directory: %w", err)
	}
	dir := &zipDirectory{CDOffset: int64(cdOffset), Entries: make([]zipEntry, 0, entries)}
	cb := readBuf(cd)
	for i := uint64(0); i < entries; i++ {
		e, err := parseCentralHeader(&cb, int64(cdOffset))
		if err != nil {
			return nil, err
		}
		dir.Entries = append(dir.Entries, e)
	}
	return dir, nil
}

func parseCentralHeader(cb *readBuf, cdOffset int64) (zipEntry, error) {
	const part = "ZIP central directory"
	if len(*cb) < lenCentralHeader {
		return zipEntry{}, formatErr(part, nil, "truncated central directory entry")
	}
	if cb.u32() != sigCentralHeader {
		return zipEntry{}, formatErr(part, nil, "bad central directory entry signature")
	}
	var e zipEntry
	cb.u16() // version made by
	cb.u16() // version needed
	e.Flags = cb.u16()
	e.Method = cb.u16()
	e.ModTime = cb.u16()
	e.ModDate = cb.u16()
	e.CRC32 = cb.u32()
	csize, usize := uint64(cb.u32()), uint64(cb.u32())
	nameLen, extraLen, commentLen := int(cb.u16()), int(cb.u16()), int(cb.u16())
	cb.u16() // disk start
	cb.u16() // internal attrs
	e.ExternalAttrs = cb.u32()
	off := uint64(cb.u32())
	if len(*cb) < nameLen+extraLen+commentLen {
		return zipEntry{}, formatErr(part, nil, "truncated central directory entry")
	}
	e.Name = string(cb.sub(nameLen))
	extra := cb.sub(extraLen)
	cb.sub(commentLen)
	for len(extra) >= 4 {
		id, n := extra.u16(), int(extra.u16())
		if n > len(extra) {
			return zipEntry{}, formatErr(e.Name, nil, "extra field runs past its entry")
		}
		field := extra.sub(n)
		if id != zip64ExtraID {
			continue
		}
		// Zip64 values appear only for the fields that are saturated.
		if usize == 0xFFFFFFFF {
			if len(field) < 8 {
				return zipEntry{}, formatErr(e.Name, nil, "short Zip64 extra field")
			}
			usize = field.u64()
		}
		if csize == 0xFFFFFFFF {
			if len(field) < 8 {
				return zipEntry{}, formatErr(e.Name, nil, "short Zip64 extra field")
			}
			csize = field.u64()
		}
		if off == 0xFFFFFFFF {
			if len(field) < 8 {
				return zipEntry{}, formatErr(e.Name, nil, "short Zip64 extra field")
			}
			off = field.u64()
		}
	}
	if e.Flags&flagEncrypted != 0 {
		return zipEntry{}, formatErr(e.Name, nil, "encrypted entries are not allowed")
	}
	if e.Method != methodStore && e.Method != methodDeflate {
		return zipEntry{}, formatErr(e.Name, nil, "compression method %d is not allowed (only stored and deflate)", e.Method)
	}
	if off >= uint64(cdOffset) || csize > uint64(cdOffset)-off {
		return zipEntry{}, formatErr(e.Name, nil, "entry data (offset %d, %d bytes) lies outside the archive's data area", off, csize)
	}
	if e.Method == methodStore && csize != usize {
		return zipEntry{}, formatErr(e.Name, nil, "stored entry has compressed size %d but size %d", csize, usize)
	}
	if usize > 1<<62 {
		return zipEntry{}, formatErr(e.Name, nil, "declared size %d is impossible", usize)
	}
	e.CompressedSize, e.UncompressedSize, e.HeaderOffset = int64(csize), int64(usize), int64(off)
	return e, nil
}

// localHeader is what a reader learns from an entry's local file header.
type localHeader struct {
	Size   int64 // bytes from the header's start to the entry's data (the LfhSize)
	Name   string
	Method uint16
}

// readLocalHeader reads the local file header at off.
func readLocalHeader(r io.ReaderAt, off int64, part string) (localHeader, error) {
	var hdr [lenLocalHeader]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return localHeader{}, formatErr(part, err, "cannot read local file header at offset %d", off)
	}
	b := readBuf(hdr[:])
	if b.u32() != sigLocalHeader {
		return localHeader{}, formatErr(part, nil, "bad local file header signature at offset %d", off)
	}
	b.u16() // version
	b.u16() // flags
	method := b.u16()
	b.sub(16) // time, date, crc, sizes
	nameLen, extraLen := int(b.u16()), int(b.u16())
	name := make([]byte, nameLen)
	if _, err := r.ReadAt(name, off+lenLocalHeader); err != nil {
		return localHeader{}, formatErr(part, err, "cannot read local file header name")
	}
	return localHeader{Size: int64(lenLocalHeader + nameLen + extraLen), Name: string(name), Method: method}, nil
}
