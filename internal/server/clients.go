package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/appv/appv/internal/serverdb"
)

// maxClientsTracked bounds the clients whose last record is remembered.
const maxClientsTracked = 100_000

// clientRecorder writes clients' visits to the database, each client at
// most once per interval, from one goroutine, so that a refresh never
// waits for a write.
type clientRecorder struct {
	db       serverdb.ClientStore
	log      *slog.Logger
	interval time.Duration
	queue    chan visit

	mu   sync.Mutex
	last map[string]time.Time // when a client's visit was last queued
}

type visit struct {
	name       string
	identityID int64
	at         time.Time
}

func newClientRecorder(db serverdb.ClientStore, log *slog.Logger, interval time.Duration) *clientRecorder {
	return &clientRecorder{db: db, log: log, interval: interval, queue: make(chan visit, 1024), last: make(map[string]time.Time)}
}

// seen notes a visit; it is queued for writing unless the client's last
// one was less than interval ago, or the queue is full.
func (c *clientRecorder) seen(name string, identityID int64) {
	now := time.Now()
	c.mu.Lock()
	if t, ok := c.last[name]; ok && now.Sub(t) < c.interval {
		c.mu.Unlock()
		return
	}
	if len(c.last) >= maxClientsTracked {
		clear(c.last)
	}
	c.last[name] = now
	c.mu.Unlock()
	select {
	case c.queue <- visit{name, identityID, now}:
	default:
		c.forget(name)
	}
}

// forget makes the client's next visit be queued again.
func (c *clientRecorder) forget(name string) {
	c.mu.Lock()
	delete(c.last, name)
	c.mu.Unlock()
}

// run writes queued visits until ctx ends, then writes those still queued.
func (c *clientRecorder) run(ctx context.Context) {
	for {
		select {
		case v := <-c.queue:
			c.write(ctx, v)
		case <-ctx.Done():
			for {
				select {
				case v := <-c.queue:
					c.write(ctx, v)
				default:
					return
				}
			}
		}
	}
}

func (c *clientRecorder) write(ctx context.Context, v visit) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.db.RecordClient(ctx, v.name, v.identityID, v.at); err != nil {
		c.log.Warn("recording a client", "client", v.name, "err", err)
		c.forget(v.name)
	}
}
