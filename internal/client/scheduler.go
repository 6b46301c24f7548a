package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// Background work of publishing and upgrades: scheduled refreshes, pending
// tasks, and removing old versions. Both goroutines stop when the service's
// ctx ends; Close waits for them.

// housekeepingInterval is how often pending tasks are looked at.
const housekeepingInterval = time.Second

// collectInterval is how often old versions are looked at even when nothing
// happened (an environment that kept one may have ended).
const collectInterval = time.Minute

func (s *Service) startBackground(ctx context.Context) {
	sc := &scheduler{
		list: func() []Registration { return s.reg.list(0, true) },
		refresh: func(ctx context.Context, reg Registration) {
			s.refresher.refresh(ctx, reg, nil)
			s.gcDue.Store(true)
		},
		kick: s.kick,
		tick: housekeepingInterval,
	}
	s.gcDue.Store(true)
	s.bg.Add(2)
	go func() {
		defer s.bg.Done()
		sc.run(ctx)
	}()
	go func() {
		defer s.bg.Done()
		s.housekeeping(ctx)
	}()
}

// housekeeping performs pending tasks whose packages are no longer in use,
// and removes old versions nothing refers to, until ctx ends.
func (s *Service) housekeeping(ctx context.Context) {
	t := time.NewTicker(housekeepingInterval)
	defer t.Stop()
	lastCollect := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(lastCollect) > collectInterval {
			s.gcDue.Store(true)
		}
		pending := len(s.reg.pendingTasks()) > 0
		if !pending && !s.gcDue.Load() {
			continue
		}
		s.mu.Lock()
		if pending {
			s.runPending(ctx, nil)
		}
		if s.gcDue.Swap(false) {
			s.collect(ctx)
			lastCollect = time.Now()
		}
		s.mu.Unlock()
	}
}

// wakeScheduler tells the scheduler that registrations changed.
func (s *Service) wakeScheduler() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// scheduler refreshes each registration at its start (RefreshAtStart) and
// every RefreshInterval, jittered by ±10% so that clients started together
// do not refresh together, one refresh at a time. A failed refresh is
// retried at the next interval; nothing stops the scheduler but ctx.
type scheduler struct {
	list    func() []Registration                       // the registrations now
	refresh func(ctx context.Context, reg Registration) // one refresh; logs its own result
	kick    <-chan struct{}                             // registrations changed
	tick    time.Duration                               // how often due times are checked
	jitter  func(d time.Duration) time.Duration         // nil: ±10%
	now     func() time.Time                            // nil: time.Now
	due     map[string]time.Time                        // next refresh by key; zero: none
	every   map[string]time.Duration                    // the interval due was computed with
}

// jittered returns d changed by up to ±10%.
func jittered(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

func (sc *scheduler) run(ctx context.Context) {
	if sc.jitter == nil {
		sc.jitter = jittered
	}
	if sc.now == nil {
		sc.now = time.Now
	}
	sc.due, sc.every = map[string]time.Time{}, map[string]time.Duration{}
	sc.plan(true)
	t := time.NewTicker(sc.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sc.kick:
			sc.plan(false)
		case <-t.C:
		}
		now := sc.now()
		for _, reg := range sc.list() {
			k := reg.key()
			if d := sc.due[k]; d.IsZero() || now.Before(d) {
				continue
			}
			if ctx.Err() != nil {
				return
			}
			sc.refresh(ctx, reg)
			sc.due[k] = sc.next(sc.now(), reg.RefreshInterval)
		}
	}
}

// next is the refresh after one at t.
func (sc *scheduler) next(t time.Time, every time.Duration) time.Time {
	if every <= 0 {
		return time.Time{}
	}
	return t.Add(sc.jitter(every))
}

// plan sets the due time of registrations that are new or whose interval
// changed; at start, those with RefreshAtStart are due at once, the others
// an interval after their last refresh (or from now, when that has
// passed).
func (sc *scheduler) plan(start bool) {
	now := sc.now()
	seen := map[string]bool{}
	for _, reg := range sc.list() {
		k := reg.key()
		seen[k] = true
		if _, ok := sc.due[k]; ok && sc.every[k] == reg.RefreshInterval {
			continue
		}
		sc.every[k] = reg.RefreshInterval
		switch {
		case start && reg.RefreshAtStart:
			sc.due[k] = now
		case start && !reg.LastRefresh.IsZero() && reg.RefreshInterval > 0 && reg.LastRefresh.Add(reg.RefreshInterval).After(now):
			sc.due[k] = reg.LastRefresh.Add(sc.jitter(reg.RefreshInterval))
		default:
			sc.due[k] = sc.next(now, reg.RefreshInterval)
		}
	}
	for k := range sc.due {
		if !seen[k] {
			delete(sc.due, k)
			delete(sc.every, k)
		}
	}
}
