package client

import (
	"context"
	"errors"

	"github.com/appv/appv/internal/store"
)

// Background loading follows App-V's AutoLoad: 0 loads nothing in the
// background, 1 loads packages that have been launched before, 2 loads every
// package. One version is loaded at a time, so background work never
// competes with itself for the link; stream faults of running applications
// are served first by the store.

func (s *Service) startAutoLoad(ctx context.Context) {
	queue := make(chan *store.Version, 64)
	s.autoload = queue
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case v := <-queue:
				s.loadInBackground(ctx, v)
			}
		}
	}()
	for _, v := range s.store.Versions() {
		if s.cfg.AutoLoad == 2 || (s.cfg.AutoLoad == 1 && v.Used()) {
			s.queueLoad(v)
		}
	}
}

func (s *Service) queueLoad(v *store.Version) {
	if st := v.Stats(); st.BlocksPresent == st.BlocksTotal {
		return
	}
	select {
	case s.autoload <- v:
	default: // the queue is full; the next start or launch will queue it again
	}
}

func (s *Service) loadInBackground(ctx context.Context, v *store.Version) {
	_, ver := v.ID()
	s.mu.Lock()
	if _, busy := s.mounts[ver]; busy {
		s.mu.Unlock()
		return
	}
	mctx, cancel := context.WithCancel(ctx)
	s.mounts[ver] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.mounts, ver)
		s.mu.Unlock()
		cancel()
	}()
	err := v.Mount(mctx, nil)
	switch {
	case err == nil:
		s.ops.Info("package loaded in the background", "package", identityOf(v).Name, "versionId", ver)
	case errors.Is(err, context.Canceled):
	default:
		s.ops.Warn("background loading failed; it is retried at the next launch", "package", identityOf(v).Name, "versionId", ver, "err", err)
	}
}

// markUsed records that a version was launched and, under AutoLoad 1 or 2,
// queues it for background loading.
func (s *Service) markUsed(v *store.Version) {
	if err := v.MarkUsed(); err != nil {
		s.ops.Warn("cannot record that the package was used", "versionId", func() string { _, ver := v.ID(); return ver }(), "err", err)
	}
	if s.cfg.AutoLoad >= 1 {
		s.queueLoad(v)
	}
}
