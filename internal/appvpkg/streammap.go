package appvpkg

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// StreamMap.xml names what a client must fetch before it can do something
// with a package:
//
//	<StreamMap xmlns="http://schemas.microsoft.com/appv/2010/streammap">
//	  <FeatureBlock Id="PublishingFeatureBlock">
//	    <File Name="Root\VFS\Windows\Installer\{…}\app.exe.0.ico" />
//	    <File Name="Root\app.exe"><Blocks Index="0" Count="1" /></File>
//	  </FeatureBlock>
//	  <FeatureBlock Id="PrimaryFeatureBlock">
//	    <File Name="Root\app.exe">
//	      <Blocks Index="0" Count="3" />
//	      <Blocks Index="20" Count="2" />
//	    </File>
//	  </FeatureBlock>
//	</StreamMap>
//
// The publishing feature block is what publishing needs (icons, the first
// blocks of executables); the primary feature block is what the first launch
// reads, in the order the sequencer saw it read. A File without Blocks
// stands for the whole file. Blocks are the block map's 64 KiB blocks,
// counted from 0. Some packages carry LoadAll="true" on a feature block.

// NSStreamMap is the namespace of StreamMap.xml.
const NSStreamMap = "http://schemas.microsoft.com/appv/2010/streammap"

// Feature block identifiers in StreamMap.xml.
const (
	PublishingFeatureBlockID = "PublishingFeatureBlock"
	PrimaryFeatureBlockID    = "PrimaryFeatureBlock"
)

// maxStreamBlock bounds Index+Count of a block range: 2^31 blocks of 64 KiB
// is 128 TiB, beyond any file, and keeps the sum inside an int everywhere.
const maxStreamBlock = math.MaxInt32

// StreamMap is StreamMap.xml. Attributes and elements it does not model
// (other feature blocks included) are kept and written back.
type StreamMap struct {
	// Publishing is what must be local to publish the package.
	Publishing FeatureBlock `json:"publishing"`
	// Primary is what the first launch reads (empty if the package was not
	// optimized for streaming).
	Primary FeatureBlock `json:"primary"`

	extra xmlExtra
}

// FeatureBlock is one feature block: files and the blocks of them it needs.
type FeatureBlock struct {
	// LoadAll asks the client to load the whole package.
	LoadAll bool `json:"loadAll,omitempty"`
	// Files in the order the sequencer recorded them (for the primary
	// feature block, the order the application read them), one per name.
	Files []FeatureFile `json:"files,omitempty"`

	extra xmlExtra
}

// FeatureFile names a file and the blocks of it a feature block needs.
type FeatureFile struct {
	// Name is the block-map name: "\"-separated, e.g. `Root\bin\app`.
	Name string `json:"name"`
	// Ranges are the needed blocks, sorted and coalesced. None means the
	// whole file.
	Ranges []BlockRange `json:"ranges,omitempty"`

	extra xmlExtra
}

// BlockRange is Count consecutive blocks starting at block Index.
type BlockRange struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Whole reports whether the whole file is needed.
func (f FeatureFile) Whole() bool { return len(f.Ranges) == 0 }

// Contains reports whether block (counted from 0) of the file is needed.
func (f FeatureFile) Contains(block int) bool {
	if block < 0 {
		return false
	}
	if f.Whole() {
		return true
	}
	i, _ := slices.BinarySearchFunc(f.Ranges, block, func(r BlockRange, b int) int {
		switch {
		case r.Index+r.Count <= b:
			return -1
		case r.Index > b:
			return 1
		}
		return 0
	})
	return i < len(f.Ranges) && f.Ranges[i].Index <= block && block < f.Ranges[i].Index+f.Ranges[i].Count
}

// streamName turns a package path ("/"-separated) or block-map name into the
// block-map spelling used in StreamMap.xml.
func streamName(name string) string { return strings.ReplaceAll(name, "/", `\`) }

// File returns the entry for name (a block-map name or "/"-separated package
// path) and whether the feature block lists it. It searches the list; a
// caller asking for many names should index Files itself.
func (b *FeatureBlock) File(name string) (FeatureFile, bool) {
	name = streamName(name)
	for _, f := range b.Files {
		if f.Name == name {
			return f, true
		}
	}
	return FeatureFile{}, false
}

// Contains reports whether the feature block needs block (counted from 0) of
// the file name (a block-map name or "/"-separated package path).
func (b *FeatureBlock) Contains(name string, block int) bool {
	f, ok := b.File(name)
	return ok && f.Contains(block)
}

// Add records that the feature block needs the given blocks of the file
// name (a block-map name or "/"-separated package path); no ranges means the
// whole file. Ranges are merged with what is already recorded, sorted and
// coalesced; a file that is needed whole stays whole. A file not yet listed
// is appended, so the order of first use is kept.
func (b *FeatureBlock) Add(name string, ranges ...BlockRange) error {
	name = streamName(name)
	if err := checkStreamName(name); err != nil {
		return err
	}
	for _, r := range ranges {
		if err := checkBlockRange(name, r); err != nil {
			return err
		}
	}
	for i := range b.Files {
		if b.Files[i].Name != name {
			continue
		}
		f := &b.Files[i]
		if f.Whole() {
			return nil
		}
		if len(ranges) == 0 {
			f.Ranges = nil
			return nil
		}
		f.Ranges = coalesceRanges(append(f.Ranges, ranges...))
		return nil
	}
	f := FeatureFile{Name: name}
	if len(ranges) > 0 {
		f.Ranges = coalesceRanges(slices.Clone(ranges))
	}
	b.Files = append(b.Files, f)
	return nil
}

// Merge adds everything other needs to b (see Add); LoadAll is or-ed.
func (b *FeatureBlock) Merge(other FeatureBlock) error {
	b.LoadAll = b.LoadAll || other.LoadAll
	for _, f := range other.Files {
		if err := b.Add(f.Name, f.Ranges...); err != nil {
			return err
		}
	}
	return nil
}

// empty reports whether the feature block has nothing to write.
func (b *FeatureBlock) empty() bool {
	return !b.LoadAll && len(b.Files) == 0 && b.extra.empty()
}

func checkStreamName(name string) error {
	if !validXMLString(name) {
		return formatErr(StreamMapPart, nil, "File Name %q is not valid XML text", name)
	}
	if _, err := fromBlockMapName(name); err != nil {
		return formatErr(StreamMapPart, err, "File Name %q is not a valid block-map name", name)
	}
	return nil
}

func checkBlockRange(file string, r BlockRange) error {
	switch {
	case r.Index < 0:
		return formatErr(StreamMapPart, nil, "File %q: Blocks Index %d is negative", file, r.Index)
	case r.Count < 1:
		return formatErr(StreamMapPart, nil, "File %q: Blocks Count %d is not positive", file, r.Count)
	case r.Index > maxStreamBlock-r.Count:
		return formatErr(StreamMapPart, nil, "File %q: Blocks Index %d + Count %d is beyond %d blocks", file, r.Index, r.Count, maxStreamBlock)
	}
	return nil
}

// coalesceRanges sorts valid ranges and merges overlapping and adjacent
// ones. It reuses rs.
func coalesceRanges(rs []BlockRange) []BlockRange {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b BlockRange) int {
		if a.Index != b.Index {
			return a.Index - b.Index
		}
		return a.Count - b.Count
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.Index <= last.Index+last.Count {
			if end := r.Index + r.Count; end > last.Index+last.Count {
				last.Count = end - last.Index
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// normalized returns a copy of b with one entry per name (in order of first
// appearance, unknown content merged), ranges sorted and coalesced, and a
// whole-file entry absorbing any ranges.
func (b *FeatureBlock) normalized() (FeatureBlock, error) {
	out := FeatureBlock{LoadAll: b.LoadAll, extra: b.extra}
	at := make(map[string]int, len(b.Files))
	for _, f := range b.Files {
		if err := checkStreamName(f.Name); err != nil {
			return FeatureBlock{}, err
		}
		for _, r := range f.Ranges {
			if err := checkBlockRange(f.Name, r); err != nil {
				return FeatureBlock{}, err
			}
		}
		i, seen := at[f.Name]
		if !seen {
			at[f.Name] = len(out.Files)
			out.Files = append(out.Files, FeatureFile{Name: f.Name, Ranges: slices.Clone(f.Ranges), extra: f.extra})
			continue
		}
		g := &out.Files[i]
		g.extra.merge(f.extra)
		if g.Whole() {
			continue
		}
		if f.Whole() {
			g.Ranges = nil
			continue
		}
		g.Ranges = append(g.Ranges, f.Ranges...)
	}
	for i := range out.Files {
		out.Files[i].Ranges = coalesceRanges(out.Files[i].Ranges)
	}
	return out, nil
}

// ParseStreamMap parses StreamMap.xml. Duplicate file entries in a feature
// block are merged and block ranges coalesced, so the result is canonical.
func ParseStreamMap(data []byte) (*StreamMap, error) {
	doc, err := parsePart(StreamMapPart, data)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	if !isElem(root, NSStreamMap, "StreamMap") {
		return nil, formatErr(StreamMapPart, nil, "root element is <%s>, not <StreamMap> in namespace %s", root.FullTag(), NSStreamMap)
	}
	if err := checkAttrNames(StreamMapPart, root); err != nil {
		return nil, err
	}
	sm := &StreamMap{}
	for _, a := range root.Attr {
		if !isNSDecl(a) {
			sm.extra.keepAttr(root, a)
		}
	}
	seen := map[string]bool{}
	for _, c := range root.ChildElements() {
		if !isElem(c, NSStreamMap, "FeatureBlock") {
			sm.extra.keepElem(c)
			continue
		}
		id, _ := attrNS(c, "", "Id")
		var fb *FeatureBlock
		switch id {
		case PublishingFeatureBlockID:
			fb = &sm.Publishing
		case PrimaryFeatureBlockID:
			fb = &sm.Primary
		default:
			sm.extra.keepElem(c)
			continue
		}
		if seen[id] {
			return nil, formatErr(StreamMapPart, nil, "more than one FeatureBlock with Id %q", id)
		}
		seen[id] = true
		if err := parseFeatureBlock(c, fb); err != nil {
			return nil, err
		}
		if *fb, err = fb.normalized(); err != nil {
			return nil, err
		}
	}
	return sm, nil
}

func parseFeatureBlock(e *etree.Element, fb *FeatureBlock) error {
	if err := checkAttrNames(StreamMapPart, e); err != nil {
		return err
	}
	for _, a := range e.Attr {
		switch {
		case isNSDecl(a):
		case a.Space == "" && a.Key == "Id":
		case a.Space == "" && a.Key == "LoadAll":
			v, ok := parseXSDBool(a.Value)
			if !ok {
				return formatErr(StreamMapPart, nil, "FeatureBlock LoadAll %q is not a boolean", a.Value)
			}
			fb.LoadAll = v
		default:
			fb.extra.keepAttr(e, a)
		}
	}
	for _, c := range e.ChildElements() {
		if !isElem(c, NSStreamMap, "File") {
			fb.extra.keepElem(c)
			continue
		}
		f, err := parseFeatureFile(c)
		if err != nil {
			return err
		}
		fb.Files = append(fb.Files, f)
	}
	return nil
}

func parseFeatureFile(e *etree.Element) (FeatureFile, error) {
	var f FeatureFile
	if err := checkAttrNames(StreamMapPart, e); err != nil {
		return f, err
	}
	hasName := false
	for _, a := range e.Attr {
		switch {
		case isNSDecl(a):
		case a.Space == "" && a.Key == "Name":
			f.Name, hasName = a.Value, true
		default:
			f.extra.keepAttr(e, a)
		}
	}
	if !hasName {
		return f, formatErr(StreamMapPart, nil, "File element without a Name")
	}
	if err := checkStreamName(f.Name); err != nil {
		return f, err
	}
	for _, c := range e.ChildElements() {
		if !isElem(c, NSStreamMap, "Blocks") {
			f.extra.keepElem(c)
			continue
		}
		idx, err := streamIntAttr(c, "Index", f.Name)
		if err != nil {
			return f, err
		}
		cnt, err := streamIntAttr(c, "Count", f.Name)
		if err != nil {
			return f, err
		}
		r := BlockRange{Index: idx, Count: cnt}
		if err := checkBlockRange(f.Name, r); err != nil {
			return f, err
		}
		f.Ranges = append(f.Ranges, r)
	}
	return f, nil
}

func streamIntAttr(e *etree.Element, name, file string) (int, error) {
	s, ok := attrNS(e, "", name)
	if !ok {
		return 0, formatErr(StreamMapPart, nil, "Blocks of File %q without %s", file, name)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, formatErr(StreamMapPart, nil, "Blocks %s %q of File %q is not an integer in range", name, s, file)
	}
	return int(v), nil
}

// Marshal writes the stream map: deterministic, indented, with what it did
// not model written back. The publishing feature block is always written,
// the primary one only when it has content.
func (sm *StreamMap) Marshal() ([]byte, error) {
	root := etree.NewElement("StreamMap")
	root.CreateAttr("xmlns", NSStreamMap)
	sm.extra.writeAttrs(root)
	skip := map[*etree.Element]bool{}
	blocks := []struct {
		id string
		fb *FeatureBlock
	}{{PublishingFeatureBlockID, &sm.Publishing}, {PrimaryFeatureBlockID, &sm.Primary}}
	for _, b := range blocks {
		if b.id == PrimaryFeatureBlockID && b.fb.empty() {
			continue
		}
		fb, err := b.fb.normalized()
		if err != nil {
			return nil, err
		}
		if err := writeFeatureBlock(root, b.id, &fb, skip); err != nil {
			return nil, err
		}
	}
	if err := sm.extra.writeElems(StreamMapPart, root, skip); err != nil {
		return nil, err
	}
	return writeXMLPart(root, skip)
}

func writeFeatureBlock(parent *etree.Element, id string, fb *FeatureBlock, skip map[*etree.Element]bool) error {
	e := parent.CreateElement("FeatureBlock")
	setElemNS(e, NSStreamMap, "FeatureBlock", "sm")
	e.CreateAttr("Id", id)
	if fb.LoadAll {
		e.CreateAttr("LoadAll", "true")
	}
	fb.extra.writeAttrs(e)
	for _, f := range fb.Files {
		fe := e.CreateElement("File")
		setElemNS(fe, NSStreamMap, "File", "sm")
		fe.CreateAttr("Name", f.Name)
		f.extra.writeAttrs(fe)
		for _, r := range f.Ranges {
			be := fe.CreateElement("Blocks")
			setElemNS(be, NSStreamMap, "Blocks", "sm")
			be.CreateAttr("Index", strconv.Itoa(r.Index))
			be.CreateAttr("Count", strconv.Itoa(r.Count))
		}
		if err := f.extra.writeElems(StreamMapPart, fe, skip); err != nil {
			return err
		}
	}
	return fb.extra.writeElems(StreamMapPart, e, skip)
}
