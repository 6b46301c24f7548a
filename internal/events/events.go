// Package events is the client's event log: structured records on App-V's
// three channels (Admin, Operational, Virtual Application), kept as JSON
// lines in one file that `appv events` reads.
package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Channels, as App-V names them.
const (
	// Admin: configuration applied to the client, and its warnings and errors.
	Admin = "Admin"
	// Operational: an audit of the operations completed (add, publish, ...).
	Operational = "Operational"
	// VirtualApplication: launches and use of virtual environments.
	VirtualApplication = "VirtualApplication"
)

// maxLogSize is the size at which the log is rotated to <file>.1.
const maxLogSize = 16 << 20

// Log writes events to a file. It is safe for concurrent use.
type Log struct {
	mu   sync.Mutex
	path string
	f    *os.File
	size int64
}

// Open opens (creating) the event log at path.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("events: %w", err)
	}
	return &Log{path: path, f: f, size: st.Size()}, nil
}

// Close closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Write appends one JSON record; it rotates the file when it grows large.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.size+int64(len(p)) > maxLogSize {
		_ = l.f.Close()
		_ = os.Rename(l.path, l.path+".1")
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return 0, err
		}
		l.f, l.size = f, 0
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// Logger returns a logger for a channel. Records also go to also (e.g. the
// service's stderr), if not nil.
func (l *Log) Logger(channel string, also slog.Handler) *slog.Logger {
	h := slog.Handler(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if also != nil {
		h = teeHandler{h, also}
	}
	return slog.New(h).With("channel", channel)
}

type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	err := t.a.Handle(ctx, r.Clone())
	if t.b.Enabled(ctx, r.Level) {
		err = errors.Join(err, t.b.Handle(ctx, r))
	}
	return err
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t.a.WithGroup(name), t.b.WithGroup(name)}
}

// Record is one event as read back.
type Record struct {
	Time    time.Time      `json:"time"`
	Level   string         `json:"level"`
	Channel string         `json:"channel"`
	Message string         `json:"msg"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

// Filter selects records.
type Filter struct {
	Channel string    // "" for all
	Since   time.Time // zero for all
	UID     *int      // only records about this user (attr "uid"), nil for all
}

// Read returns the records of the log at path (and its rotated predecessor)
// that match f, oldest first. Lines that are not records are skipped.
func Read(path string, f Filter) ([]Record, error) {
	var out []Record
	for _, p := range []string{path + ".1", path} {
		file, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		recs, err := readRecords(file, f)
		file.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

func readRecords(r io.Reader, f Filter) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			continue
		}
		rec := Record{Attrs: map[string]any{}}
		for k, v := range raw {
			switch k {
			case "time":
				s, _ := v.(string)
				rec.Time, _ = time.Parse(time.RFC3339Nano, s)
			case "level":
				rec.Level, _ = v.(string)
			case "channel":
				rec.Channel, _ = v.(string)
			case "msg":
				rec.Message, _ = v.(string)
			default:
				rec.Attrs[k] = v
			}
		}
		if f.Channel != "" && rec.Channel != f.Channel {
			continue
		}
		if !f.Since.IsZero() && rec.Time.Before(f.Since) {
			continue
		}
		if f.UID != nil {
			if uid, ok := rec.Attrs["uid"].(float64); !ok || int(uid) != *f.UID {
				continue
			}
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}
