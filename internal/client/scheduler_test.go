package client

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestJittered(t *testing.T) {
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		d := jittered(time.Hour)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 54*time.Minute || hi > 66*time.Minute {
		t.Errorf("jittered(1h) ranged over [%v, %v], want within ±10%%", lo, hi)
	}
	if hi-lo < 6*time.Minute {
		t.Errorf("jittered(1h) ranged over [%v, %v] only: clients started together would refresh together", lo, hi)
	}
}

// TestScheduler: refresh at start for those that ask, every interval for
// those that have one, never for the others; a registration added later is
// picked up on a kick and refreshed at its interval; ctx stops it all.
func TestScheduler(t *testing.T) {
	var mu sync.Mutex
	regs := []Registration{
		{Name: "atstart", RefreshAtStart: true, Owner: alice},
		{Name: "often", RefreshInterval: 40 * time.Millisecond, Owner: alice},
		{Name: "never", Owner: alice},
	}
	counts := map[string]int{}
	count := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[name]
	}
	kick := make(chan struct{}, 1)
	sc := &scheduler{
		list: func() []Registration {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(regs)
		},
		refresh: func(_ context.Context, reg Registration) {
			mu.Lock()
			counts[reg.Name]++
			mu.Unlock()
		},
		kick:   kick,
		tick:   5 * time.Millisecond,
		jitter: func(d time.Duration) time.Duration { return d },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		sc.run(ctx)
		close(done)
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (counts %v)", what, counts)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("three refreshes of often", func() bool { return count("often") >= 3 })
	if n := count("atstart"); n != 1 {
		t.Errorf("atstart refreshed %d times, want once (at start, no interval)", n)
	}
	if n := count("never"); n != 0 {
		t.Errorf("never refreshed %d times", n)
	}

	mu.Lock()
	regs = append(regs, Registration{Name: "late", RefreshAtStart: true, RefreshInterval: 150 * time.Millisecond, Owner: alice})
	mu.Unlock()
	kick <- struct{}{}
	added := time.Now()
	waitFor("late's first refresh", func() bool { return count("late") >= 1 })
	if since := time.Since(added); since < 100*time.Millisecond {
		t.Errorf("late was refreshed %v after it was added: refresh at start is for the service's start", since)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the scheduler did not stop with its context")
	}
}
