package queue

import (
	"encoding/binary"
	"fmt"
	"os"
)

// pageWalker checks a bbolt file's page structure by reading it with
// ReadAt, never through a memory mapping, before bbolt touches it: every
// page reachable from the meta's root must lie below the high water mark,
// have a branch or leaf header, element offsets inside the page, and be
// referenced once; the freelist must name pages below the mark that are not
// reachable; and every page must be reachable, free or a meta page. This is
// what bbolt's Tx.Check verifies, but bounded: a corrupt overflow count or
// pointer gives an error here instead of a fault or an endless loop there.
type pageWalker struct {
	f      *os.File
	ps     int64
	hwm    uint64
	owner  []uint64 // bit per page: reachable or freelist
	budget int      // pages still allowed to be read
	// bufs holds one page buffer per tree depth, reused: a 250,000-shot
	// queue has 27,000 pages, read at every start.
	bufs [][]byte
}

func (w *pageWalker) owned(id uint64) bool { return w.owner[id/64]&(1<<(id%64)) != 0 }
func (w *pageWalker) own(id uint64)        { w.owner[id/64] |= 1 << (id % 64) }

const (
	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagFreelist = 0x10
	flagBucket   = 0x01
	noFreelist   = ^uint64(0)
)

var le = binary.LittleEndian

// readPage reads page id with its overflow pages into the buffer of depth.
func (w *pageWalker) readPage(id uint64, depth int) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d outside 2..%d", id, w.hwm-1)
	}
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, make([]byte, w.ps))
	}
	hdr := w.bufs[depth][:16]
	if _, err := w.f.ReadAt(hdr, int64(id)*w.ps); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	if got := le.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d has id %d in its header", id, got)
	}
	ov := uint64(le.Uint32(hdr[12:]))
	if id+ov >= w.hwm {
		return nil, fmt.Errorf("page %d: overflow %d runs past the high water mark %d", id, ov, w.hwm)
	}
	for i := id; i <= id+ov; i++ {
		if w.owned(i) {
			return nil, fmt.Errorf("page %d referenced twice", i)
		}
		w.own(i)
	}
	w.budget -= int(ov) + 1
	if w.budget < 0 {
		return nil, fmt.Errorf("more pages referenced than the file holds")
	}
	if need := int64(ov+1) * w.ps; int64(cap(w.bufs[depth])) < need {
		w.bufs[depth] = make([]byte, need)
	}
	buf := w.bufs[depth][:int64(ov+1)*w.ps]
	if _, err := w.f.ReadAt(buf, int64(id)*w.ps); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	return buf, nil
}

// node checks a branch or leaf node held in buf (a page, or an inline
// bucket's page) and walks what it points to.
func (w *pageWalker) node(buf []byte, where fmt.Stringer, depth int) error {
	if depth > 64 {
		return fmt.Errorf("%s: tree deeper than 64", where)
	}
	if len(buf) < 16 {
		return fmt.Errorf("%s: short node", where)
	}
	flags, count := le.Uint16(buf[8:]), int(le.Uint16(buf[10:]))
	if 16+count*16 > len(buf) {
		return fmt.Errorf("%s: %d elements do not fit", where, count)
	}
	for i := 0; i < count; i++ {
		e := 16 + i*16
		switch flags {
		case flagBranch:
			pos, ksize, child := int64(le.Uint32(buf[e:])), int64(le.Uint32(buf[e+4:])), le.Uint64(buf[e+8:])
			if int64(e)+pos+ksize > int64(len(buf)) {
				return fmt.Errorf("%s: branch element %d outside the page", where, i)
			}
			if err := w.walk(child, depth+1); err != nil {
				return err
			}
		case flagLeaf:
			fl, pos, ksize, vsize := le.Uint32(buf[e:]), int64(le.Uint32(buf[e+4:])), int64(le.Uint32(buf[e+8:])), int64(le.Uint32(buf[e+12:]))
			end := int64(e) + pos + ksize + vsize
			if end > int64(len(buf)) {
				return fmt.Errorf("%s: leaf element %d outside the page", where, i)
			}
			if fl&flagBucket == 0 {
				continue
			}
			v := buf[int64(e)+pos+ksize : end]
			if len(v) < 16 {
				return fmt.Errorf("%s: bucket value of %d bytes", where, len(v))
			}
			if root := le.Uint64(v); root != 0 {
				if err := w.walk(root, depth+1); err != nil {
					return err
				}
			} else if err := w.node(v[16:], inlineIn{where}, depth+1); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: not a branch or leaf page (flags %#x)", where, flags)
		}
	}
	if flags != flagBranch && flags != flagLeaf && count == 0 {
		return fmt.Errorf("%s: not a branch or leaf page (flags %#x)", where, flags)
	}
	return nil
}

func (w *pageWalker) walk(id uint64, depth int) error {
	buf, err := w.readPage(id, depth)
	if err != nil {
		return err
	}
	return w.node(buf, pageName(id), depth)
}

// pageName names page id in errors (a type, so that no string is built
// for the thousands of pages that pass).
type pageName uint64

func (p pageName) String() string { return fmt.Sprintf("page %d", uint64(p)) }

// inlineIn names an inline bucket inside the node named by Stringer.
type inlineIn struct{ fmt.Stringer }

func (i inlineIn) String() string { return i.Stringer.String() + " inline bucket" }

func (w *pageWalker) freelist(id uint64) error {
	if id == noFreelist {
		return nil
	}
	buf, err := w.readPage(id, 0)
	if err != nil {
		return fmt.Errorf("freelist: %v", err)
	}
	if le.Uint16(buf[8:])&flagFreelist == 0 {
		return fmt.Errorf("freelist page %d has flags %#x", id, le.Uint16(buf[8:]))
	}
	idx, count := 0, uint64(le.Uint16(buf[10:]))
	if count == 0xFFFF {
		idx, count = 1, le.Uint64(buf[16:])
	}
	if count > uint64(len(buf)-16)/8-uint64(idx) {
		return fmt.Errorf("freelist page %d: %d ids do not fit", id, count)
	}
	for i := uint64(0); i < count; i++ {
		p := le.Uint64(buf[16+8*(uint64(idx)+i):])
		if p < 2 || p >= w.hwm {
			return fmt.Errorf("freelist names page %d outside 2..%d", p, w.hwm-1)
		}
		if w.owned(p) {
			return fmt.Errorf("page %d is both in use and free", p)
		}
		w.own(p)
	}
	return nil
}

// checkPageTree runs the walk for the chosen meta page.
func checkPageTree(f *os.File, m metaInfo) error {
	w := &pageWalker{f: f, ps: int64(m.pageSize), hwm: m.pgid, owner: make([]uint64, m.pgid/64+1), budget: int(m.pgid)}
	w.own(0)
	w.own(1)
	if err := w.walk(m.root, 0); err != nil {
		return err
	}
	if err := w.freelist(m.freelist); err != nil {
		return err
	}
	for i := uint64(2); i < w.hwm; i++ {
		if !w.owned(i) {
			return fmt.Errorf("page %d is neither reachable nor free", i)
		}
	}
	return nil
}
