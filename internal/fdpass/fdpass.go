// Package fdpass sends small JSON messages together with open files over a
// Unix domain stream socket, using SCM_RIGHTS ancillary data.
//
// # Wire format
//
// Each message is a 4-byte big-endian length followed by that many bytes of
// JSON. The files of a message travel as SCM_RIGHTS on the same sendmsg call,
// so the kernel attaches them to the message's first byte; [Recv] reads the
// length prefix with recvmsg and collects them there, then reads exactly the
// payload, never a byte of the next message. That keeps message and files
// together without any other framing.
//
// A message's JSON is at most [MaxMessageSize] bytes and carries at most
// [MaxFiles] files. Received descriptors are close-on-exec from the moment
// they exist (MSG_CMSG_CLOEXEC), and every one of them is closed again when
// Recv fails, so an error never leaks descriptors.
//
// Send and Recv do not take a context: bound them with the connection's
// deadlines (SetDeadline) or by closing it. Several goroutines may not call
// Send on one connection at the same time, nor Recv; one sender and one
// receiver may run concurrently.
package fdpass

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

const (
	// MaxMessageSize is the largest JSON payload Send writes and Recv accepts.
	MaxMessageSize = 1 << 20
	// MaxFiles is the largest number of files one message may carry.
	MaxFiles = 16
)

const headerSize = 4

// ErrTooLarge reports a message or a set of files beyond MaxMessageSize or
// MaxFiles.
var ErrTooLarge = errors.New("fdpass: message too large")

// Send writes v as JSON, with files attached, as one message on conn. The
// files stay open in the caller; the receiver gets duplicates.
func Send(conn *net.UnixConn, v any, files ...*os.File) error {
	if len(files) > MaxFiles {
		return fmt.Errorf("fdpass: send: %d files (at most %d): %w", len(files), MaxFiles, ErrTooLarge)
	}
	payload, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("fdpass: send: encode: %w", err)
	}
	if len(payload) > MaxMessageSize {
		return fmt.Errorf("fdpass: send: %d bytes (at most %d): %w", len(payload), MaxMessageSize, ErrTooLarge)
	}
	buf := make([]byte, headerSize+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[headerSize:], payload)

	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			if f == nil {
				return fmt.Errorf("fdpass: send: file %d is nil", i)
			}
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	n, _, err := conn.WriteMsgUnix(buf, oob, nil)
	// f.Fd() hands out the raw descriptor; keep the files alive (and open)
	// until the kernel has taken its references.
	runtime.KeepAlive(files)
	if err != nil {
		return fmt.Errorf("fdpass: send: %w", err)
	}
	// A stream socket may take a large message in pieces; the files went
	// with the first one.
	if n < len(buf) {
		if _, err := conn.Write(buf[n:]); err != nil {
			return fmt.Errorf("fdpass: send: %w", err)
		}
	}
	return nil
}

// Recv reads one message from conn, decodes its JSON into v and returns the
// files that came with it, in the order they were sent. The caller owns the
// files and must close them. On error no files are returned and all received
// descriptors are closed. At the end of the stream Recv returns io.EOF
// (unwrapped) when no byte of a new message has arrived.
func Recv(conn *net.UnixConn, v any) ([]*os.File, error) {
	var hdr [headerSize]byte
	oob := make([]byte, unix.CmsgSpace(MaxFiles*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(hdr[:], oob)
	files, perr := parseRights(oob[:oobn])
	if err == nil && n == 0 {
		err = io.EOF
	}
	if err != nil {
		closeAll(files)
		if errors.Is(err, io.EOF) && n == 0 {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("fdpass: recv: %w", err)
	}
	if perr != nil {
		closeAll(files)
		return nil, fmt.Errorf("fdpass: recv: %w", perr)
	}
	if flags&unix.MSG_CTRUNC != 0 {
		closeAll(files)
		return nil, fmt.Errorf("fdpass: recv: more than %d files: %w", MaxFiles, ErrTooLarge)
	}
	if n < headerSize {
		if _, err := io.ReadFull(conn, hdr[n:]); err != nil {
			closeAll(files)
			return nil, fmt.Errorf("fdpass: recv: header: %w", unexpectedEOF(err))
		}
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > MaxMessageSize {
		closeAll(files)
		return nil, fmt.Errorf("fdpass: recv: %d bytes (at most %d): %w", size, MaxMessageSize, ErrTooLarge)
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(conn, payload); err != nil {
		closeAll(files)
		return nil, fmt.Errorf("fdpass: recv: payload: %w", unexpectedEOF(err))
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(v); err != nil {
		closeAll(files)
		return nil, fmt.Errorf("fdpass: recv: decode: %w", err)
	}
	if dec.More() {
		closeAll(files)
		return nil, errors.New("fdpass: recv: decode: data after the JSON value")
	}
	return files, nil
}

// parseRights turns SCM_RIGHTS control messages into files. It returns every
// descriptor it found, even with an error, so that the caller can close them.
func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var files []*os.File
	var firstErr error
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			if firstErr == nil {
				firstErr = fmt.Errorf("unexpected control message level %d type %d", m.Header.Level, m.Header.Type)
			}
			continue
		}
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("rights: %w", err)
			}
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("fdpass:%d", fd)))
		}
	}
	return files, firstErr
}

func closeAll(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
