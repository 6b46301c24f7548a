package main

import (
	"sync"

	"github.com/schollz/progressbar/v3"
)

// progress draws a byte progress bar on stderr when it is a terminal; it is a
// no-op otherwise, so scripts and logs stay clean.
type progress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

func newProgress(g *globals, total int64, what string) *progress {
	if !g.interactive() {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(g.stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100e6),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
	)}
}

// set records progress; safe for concurrent use.
func (p *progress) set(done, total int64) {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < p.bar.State().CurrentNum {
		return // a slower goroutine reporting an older count
	}
	if p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
