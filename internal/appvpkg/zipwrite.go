package appvpkg

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// zipWriter writes an AppX-style ZIP stream: every entry has a local header
// with the data-descriptor flag (as MakeAppx writes), its data, and a data
// descriptor; then the central directory, with Zip64 records when sizes,
// offsets or the entry count need them. The output needs no seeking, so
// memory stays constant whatever the file sizes.
type zipWriter struct {
	w       *bufio.Writer
	off     int64
	entries []zipEntry
	cur     *zipEntry // entry whose data is being written
	curData int64     // bytes of data written for cur
}

func newZipWriter(w io.Writer) *zipWriter {
	return &zipWriter{w: bufio.NewWriterSize(w, 1<<20)}
}

func (z *zipWriter) write(p []byte) error {
	n, err := z.w.Write(p)
	z.off += int64(n)
	return err
}

// dosTime converts t to MS-DOS date and time fields (local fields, 2 s
// resolution); times before 1980 are clamped to 1980-01-01.
func dosTime(t time.Time) (tm, dt uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		return 0, 1<<5 | 1
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	return uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2), uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
}

// begin writes the local header of a new entry and returns its size (the
// block map's LfhSize). Data follows through data(); end() closes the entry.
func (z *zipWriter) begin(name string, method uint16, mtime time.Time) (lfhSize int64, err error) {
	if z.cur != nil {
		return 0, errors.New("appvpkg: zip: entry still open")
	}
	if len(name) > 0xFFFF {
		return 0, fmt.Errorf("appvpkg: zip: name of %d bytes is too long", len(name))
	}
	tm, dt := dosTime(mtime)
	z.entries = append(z.entries, zipEntry{
		Name: name, Flags: flagDataDescriptor | flagUTF8, Method: method,
		HeaderOffset: z.off, ModTime: tm, ModDate: dt,
	})
	z.cur = &z.entries[len(z.entries)-1]
	z.curData = 0
	var h [lenLocalHeader]byte
	b := h[:]
	binary.LittleEndian.PutUint32(b[0:], sigLocalHeader)
	binary.LittleEndian.PutUint16(b[4:], 45) // 4.5: Zip64 data descriptors may follow
	binary.LittleEndian.PutUint16(b[6:], z.cur.Flags)
	binary.LittleEndian.PutUint16(b[8:], method)
	binary.LittleEndian.PutUint16(b[10:], tm)
	binary.LittleEndian.PutUint16(b[12:], dt)
	// CRC and sizes are zero: they are in the data descriptor.
	binary.LittleEndian.PutUint16(b[26:], uint16(len(name)))
	if err := z.write(b); err != nil {
		return 0, err
	}
	if err := z.write([]byte(name)); err != nil {
		return 0, err
	}
	return int64(lenLocalHeader + len(name)), nil
}

func (z *zipWriter) data(p []byte) error {
	z.curData += int64(len(p))
	return z.write(p)
}

// end writes the data descriptor of the open entry.
func (z *zipWriter) end(crc uint32, usize int64) error {
	e := z.cur
	if e == nil {
		return errors.New("appvpkg: zip: no open entry")
	}
	e.CRC32, e.CompressedSize, e.UncompressedSize = crc, z.curData, usize
	z.cur = nil
	var d [24]byte
	binary.LittleEndian.PutUint32(d[0:], sigDataDesc)
	binary.LittleEndian.PutUint32(d[4:], crc)
	if e.needsZip64() {
		binary.LittleEndian.PutUint64(d[8:], uint64(e.CompressedSize))
		binary.LittleEndian.PutUint64(d[16:], uint64(e.UncompressedSize))
		return z.write(d[:24])
	}
	binary.LittleEndian.PutUint32(d[8:], uint32(e.CompressedSize))
	binary.LittleEndian.PutUint32(d[12:], uint32(e.UncompressedSize))
	return z.write(d[:16])
}

func (e *zipEntry) needsZip64() bool {
	return e.CompressedSize >= 0xFFFFFFFF || e.UncompressedSize >= 0xFFFFFFFF || e.HeaderOffset >= 0xFFFFFFFF
}

// close writes the central directory and end records and flushes.
func (z *zipWriter) close() error {
	if z.cur != nil {
		return errors.New("appvpkg: zip: entry still open at close")
	}
	cdStart := z.off
	for i := range z.entries {
		if err := z.writeCentral(&z.entries[i]); err != nil {
			return err
		}
	}
	cdEnd := z.off
	n := uint64(len(z.entries))
	cdSize := uint64(cdEnd - cdStart)
	if n >= 0xFFFF || cdSize >= 0xFFFFFFFF || cdStart >= 0xFFFFFFFF {
		var r [lenZip64EOCD + lenZip64Locator]byte
		b := r[:]
		binary.LittleEndian.PutUint32(b[0:], sigZip64EOCD)
		binary.LittleEndian.PutUint64(b[4:], lenZip64EOCD-12)
		binary.LittleEndian.PutUint16(b[12:], 45)
		binary.LittleEndian.PutUint16(b[14:], 45)
		binary.LittleEndian.PutUint64(b[24:], n)
		binary.LittleEndian.PutUint64(b[32:], n)
		binary.LittleEndian.PutUint64(b[40:], cdSize)
		binary.LittleEndian.PutUint64(b[48:], uint64(cdStart))
		l := b[lenZip64EOCD:]
		binary.LittleEndian.PutUint32(l[0:], sigZip64Locator)
		binary.LittleEndian.PutUint64(l[8:], uint64(cdEnd))
		binary.LittleEndian.PutUint32(l[16:], 1)
		if err := z.write(b); err != nil {
			return err
		}
	}
	var e [lenEOCD]byte
	b := e[:]
	binary.LittleEndian.PutUint32(b[0:], sigEOCD)
	binary.LittleEndian.PutUint16(b[8:], uint16(min(n, 0xFFFF)))
	binary.LittleEndian.PutUint16(b[10:], uint16(min(n, 0xFFFF)))
	binary.LittleEndian.PutUint32(b[12:], uint32(min(cdSize, 0xFFFFFFFF)))
	binary.LittleEndian.PutUint32(b[16:], uint32(min(uint64(cdStart), 0xFFFFFFFF)))
	if err := z.write(b); err != nil {
		return err
	}
	return z.w.Flush()
}

func (z *zipWriter) writeCentral(e *zipEntry) error {
	var extra []byte
	csize, usize, off := uint32(e.CompressedSize), uint32(e.UncompressedSize), uint32(e.HeaderOffset)
	if e.needsZip64() {
		// All three values go into the Zip64 field, all three saturated, so
		// readers agree on the field's layout.
		extra = make([]byte, 4+24)
		binary.LittleEndian.PutUint16(extra[0:], zip64ExtraID)
		binary.LittleEndian.PutUint16(extra[2:], 24)
		binary.LittleEndian.PutUint64(extra[4:], uint64(e.UncompressedSize))
		binary.LittleEndian.PutUint64(extra[12:], uint64(e.CompressedSize))
		binary.LittleEndian.PutUint64(extra[20:], uint64(e.HeaderOffset))
		csize, usize, off = 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF
	}
	var h [lenCentralHeader]byte
	b := h[:]
	binary.LittleEndian.PutUint32(b[0:], sigCentralHeader)
	binary.LittleEndian.PutUint16(b[4:], 3<<8|45) // made by Unix, 4.5
	binary.LittleEndian.PutUint16(b[6:], 45)
	binary.LittleEndian.PutUint16(b[8:], e.Flags)
	binary.LittleEndian.PutUint16(b[10:], e.Method)
	binary.LittleEndian.PutUint16(b[12:], e.ModTime)
	binary.LittleEndian.PutUint16(b[14:], e.ModDate)
	binary.LittleEndian.PutUint32(b[16:], e.CRC32)
	binary.LittleEndian.PutUint32(b[20:], csize)
	binary.LittleEndian.PutUint32(b[24:], usize)
	binary.LittleEndian.PutUint16(b[28:], uint16(len(e.Name)))
	binary.LittleEndian.PutUint16(b[30:], uint16(len(extra)))
	binary.LittleEndian.PutUint32(b[38:], e.ExternalAttrs)
	binary.LittleEndian.PutUint32(b[42:], off)
	if err := z.write(b); err != nil {
		return err
	}
	if err := z.write([]byte(e.Name)); err != nil {
		return err
	}
	return z.write(extra)
}
