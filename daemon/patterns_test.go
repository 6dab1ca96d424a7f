package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/camftpd/camftpd/board"
)

// rawFormats are the camera RAW formats the default patterns send, named
// here independently of the list they come from: Sony, Canon (two), Nikon
// (two: NRW from its compacts), Fujifilm, Olympus/OM, Panasonic, Adobe DNG
// and Pentax.
var rawFormats = []string{".arw", ".cr2", ".cr3", ".nef", ".nrw", ".raf", ".orf", ".rw2", ".dng", ".pef"}

// TestDefaultRAWIsRAW: every RAW format in the default patterns, and in the
// built-in board profiles' patterns, is treated as RAW (second lane, and the
// RAW side of a RAW+JPEG pair), whatever its case. Before one list, NRW and
// PEF were sent by default but treated as "other": behind every RAW, and
// never paired with their JPEG.
func TestDefaultRAWIsRAW(t *testing.T) {
	prof, err := board.Lookup("generic")
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range []struct {
		name string
		pats []string
	}{{"DefaultPatterns", DefaultPatterns}, {"generic profile", prof.Patterns}} {
		exts := map[string]bool{}
		for _, p := range list.pats {
			exts[strings.ToLower(filepath.Ext(p))] = true
		}
		for _, ext := range rawFormats {
			if !exts[ext] {
				t.Errorf("%s: no pattern for %s", list.name, ext)
			}
		}
		for _, p := range list.pats {
			ext := strings.ToLower(filepath.Ext(p))
			if !slices.Contains(rawFormats, ext) {
				continue
			}
			for _, name := range []string{"DSC00001" + strings.ToUpper(ext), "dsc00001" + ext} {
				if k := kindOf(name); k != kindRAW {
					t.Errorf("%s: %s (pattern %s) is kind %d, want RAW (%d)", list.name, name, p, k, kindRAW)
				}
				if pr := priority(name); pr != 1 {
					t.Errorf("%s: %s has priority %d, want 1 (after JPEG, before video)", list.name, name, pr)
				}
			}
		}
	}
	if k := kindOf("DSC00001.JPG"); k != kindJPEG {
		t.Errorf("a JPEG is kind %d, want %d", k, kindJPEG)
	}
	if k := kindOf("DSC00001.XMP"); k != board.KindOther {
		t.Errorf("a sidecar is kind %d, want other (%d)", k, board.KindOther)
	}
}

// TestRawJPEGPairNRW: with raw_jpeg = "jpeg" the NRW and PEF of a pair are
// skipped and their JPEG sent (before: both sent, NRW and PEF not being RAW).
func TestRawJPEGPairNRW(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"DSCN0001.NRW", "DSCN0001.JPG", "IMGP0002.PEF", "IMGP0002.JPG"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := newMatcher(&Config{Include: DefaultPatterns, RawJPEG: "jpeg"})
	for n, skip := range map[string]bool{"DSCN0001.NRW": true, "DSCN0001.JPG": false, "IMGP0002.PEF": true, "IMGP0002.JPG": false} {
		if got := m.pairSkip(filepath.Join(dir, n)); got != skip {
			t.Errorf("raw_jpeg=jpeg: pairSkip(%s) = %v, want %v", n, got, skip)
		}
	}
}
