package source

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const (
	// coalesceGap: ranges closer than this are asked for as one, gap
	// included; a few KiB more on the wire is cheaper than another part or
	// request.
	coalesceGap = 16 << 10
	// maxRangesPerRequest keeps Range headers well under servers' header
	// limits (nginx and Apache take about 8 KiB).
	maxRangesPerRequest = 64
	// parallelRequests is how many requests ReadRanges keeps in flight.
	parallelRequests = 4
)

// span is a run of asked ranges fetched as one range: [off, end).
type span struct {
	off, end int64
	buf      []byte
	members  []int // indexes of the ranges it holds
}

// coalesce sorts the non-empty ranges of rs and merges those that overlap
// or lie less than gap bytes apart into spans, in order, none overlapping.
func coalesce(rs []Range, gap int64) []*span {
	idx := make([]int, 0, len(rs))
	for i, r := range rs {
		if r.Len > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(rs[a].Off, rs[b].Off) })
	var spans []*span
	for _, i := range idx {
		r := rs[i]
		if n := len(spans); n > 0 && r.Off-spans[n-1].end < gap {
			sp := spans[n-1]
			sp.end = max(sp.end, r.Off+r.Len)
			sp.members = append(sp.members, i)
			continue
		}
		spans = append(spans, &span{off: r.Off, end: r.Off + r.Len, members: []int{i}})
	}
	for _, sp := range spans {
		sp.buf = make([]byte, sp.end-sp.off)
	}
	return spans
}

// split hands each range of rs its bytes from the spans that hold them.
func split(rs []Range, spans []*span) [][]byte {
	out := make([][]byte, len(rs))
	for _, sp := range spans {
		if len(sp.members) == 1 { // the span is that range
			out[sp.members[0]] = sp.buf
			continue
		}
		for _, i := range sp.members {
			r := rs[i]
			out[i] = slices.Clone(sp.buf[r.Off-sp.off : r.Off-sp.off+r.Len])
		}
	}
	for i := range out {
		if out[i] == nil {
			out[i] = []byte{}
		}
	}
	return out
}

// ReadRanges reads rs, merging ranges less than 16 KiB apart, in
// multi-range requests of up to 64 ranges where the server answers them
// with multipart/byteranges, else with one request per range; up to 4
// requests at a time. Every range must lie within the package.
func (s *httpSource) ReadRanges(ctx context.Context, rs []Range) ([][]byte, error) {
	if err := checkRanges(rs, s.size); err != nil {
		return nil, fmt.Errorf("source: read ranges %s: %w", s.loc, err)
	}
	spans := coalesce(rs, coalesceGap)
	if err := s.readSpans(ctx, spans); err != nil {
		return nil, fmt.Errorf("source: read %d ranges from %s: %w", len(rs), s.loc, err)
	}
	return split(rs, spans), nil
}

// readSpans fills spans, learning on the first multi-range request whether
// the server answers them.
func (s *httpSource) readSpans(ctx context.Context, spans []*span) error {
	switch {
	case len(spans) == 0:
		return nil
	case len(spans) == 1:
		return s.fetch(ctx, spans[0].off, spans[0].buf)
	case s.multi.Load() == multiNo:
		return s.fetchEach(ctx, spans)
	}
	var batches [][]*span
	for b := range slices.Chunk(spans, maxRangesPerRequest) {
		batches = append(batches, b)
	}
	if s.multi.Load() == multiUnknown {
		ok, err := s.fetchMulti(ctx, batches[0])
		if err != nil {
			return err
		}
		if !ok {
			return s.fetchEach(ctx, spans)
		}
		batches = batches[1:]
	}
	return parallel(ctx, len(batches), func(ctx context.Context, i int) error {
		ok, err := s.fetchMulti(ctx, batches[i])
		if err == nil && !ok { // another ReadRanges learnt otherwise meanwhile
			err = s.fetchEach(ctx, batches[i])
		}
		return err
	})
}

// fetchEach fills spans with one request each.
func (s *httpSource) fetchEach(ctx context.Context, spans []*span) error {
	return parallel(ctx, len(spans), func(ctx context.Context, i int) error {
		return s.fetch(ctx, spans[i].off, spans[i].buf)
	})
}

// fetchMulti fills batch, sorted spans that do not overlap, with one
// multi-range request. It reports false, and remembers it, if the server
// answered with a single range it was not asked for or with the whole
// package: batch is then left unfilled.
func (s *httpSource) fetchMulti(ctx context.Context, batch []*span) (bool, error) {
	if len(batch) == 1 {
		return true, s.fetch(ctx, batch[0].off, batch[0].buf)
	}
	var b strings.Builder
	b.WriteString("bytes=")
	for i, sp := range batch {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(sp.off, 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatInt(sp.end-1, 10))
	}
	ranges := b.String()
	first, last := batch[0].off, batch[len(batch)-1].end-1

	var single bool
	err := s.retry(ctx, func(ctx context.Context) error {
		single = false
		resp, err := s.get(ctx, ranges)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case 206:
			if err := s.checkSame(resp.Header, -1); err != nil {
				return err
			}
			mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if err == nil && mt == "multipart/byteranges" {
				return s.readParts(resp.Body, params["boundary"], batch)
			}
			cr, err := parseContentRange(resp.Header.Get("Content-Range"))
			if err != nil {
				return fmt.Errorf("%w: %w", ErrBadResponse, err)
			}
			if err := s.checkSame(resp.Header, cr.Size); err != nil {
				return err
			}
			if cr.First == first && cr.Last == last {
				// The server merged the ranges into one (RFC 9110
				// allows it): take each from its place.
				return readMerged(resp.Body, first, batch)
			}
			single = true
			return nil
		case 200:
			if err := s.whole(resp.Header, resp.ContentLength); err != nil {
				return err
			}
			single = true
			return nil
		case 416:
			return s.unsatisfiable(resp.Header)
		default:
			return s.statusError(resp)
		}
	})
	if err != nil {
		return false, err
	}
	if single {
		if s.multi.Swap(multiNo) != multiNo {
			s.log.Info("source: the server does not answer multi-range requests; asking for each range on its own", "url", s.loc)
		}
		return false, nil
	}
	s.multi.CompareAndSwap(multiUnknown, multiYes)
	return true, nil
}

// readParts reads a multipart/byteranges body into batch. The parts may
// come in any order but must be exactly the ranges asked, each once.
func (s *httpSource) readParts(body io.Reader, boundary string, batch []*span) error {
	if boundary == "" {
		return fmt.Errorf("%w: multipart/byteranges without a boundary", ErrBadResponse)
	}
	at := make(map[int64]int, len(batch))
	for i, sp := range batch {
		at[sp.off] = i
	}
	got := make([]bool, len(batch))
	mr := multipart.NewReader(body, boundary)
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err // cut short, most likely: worth a retry
		}
		cr, err := parseContentRange(part.Header.Get("Content-Range"))
		if err != nil {
			return fmt.Errorf("%w: part: %w", ErrBadResponse, err)
		}
		if cr.Size >= 0 && cr.Size != s.size {
			return fmt.Errorf("%w (its size went from %d to %d bytes)", ErrChanged, s.size, cr.Size)
		}
		i, ok := at[cr.First]
		if !ok || cr.Last != batch[i].end-1 {
			return fmt.Errorf("%w: part %s was not asked for", ErrBadResponse, cr)
		}
		if got[i] {
			return fmt.Errorf("%w: part %s came twice", ErrBadResponse, cr)
		}
		got[i] = true
		if err := readBody(part, batch[i].buf); err != nil {
			return fmt.Errorf("part %s: %w", cr, err)
		}
	}
	for i, ok := range got {
		if !ok {
			return fmt.Errorf("%w: the answer lacks bytes %d-%d", ErrBadResponse, batch[i].off, batch[i].end-1)
		}
	}
	return nil
}

// readMerged reads a body holding bytes first… up to the end of the last
// span into the sorted spans of batch, skipping the gaps between them.
func readMerged(body io.Reader, first int64, batch []*span) error {
	pos := first
	for i, sp := range batch {
		if _, err := io.CopyN(io.Discard, body, sp.off-pos); err != nil {
			return fmt.Errorf("answer cut short: %w", io.ErrUnexpectedEOF)
		}
		if i == len(batch)-1 {
			return readBody(body, sp.buf)
		}
		if _, err := io.ReadFull(body, sp.buf); err != nil {
			return fmt.Errorf("answer cut short: %w", io.ErrUnexpectedEOF)
		}
		pos = sp.end
	}
	return nil
}

// parallel calls f(ctx, i) for i in [0, n), up to parallelRequests at a
// time, and returns the first error, which ends the others' ctx. It returns
// when every call has.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, parallelRequests)
	)
loop:
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				once.Do(func() {
					first = err
					cancel()
				})
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
