package daemon

import (
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/camftpd/camftpd/board"
)

// DefaultPatterns are the capture files sent when neither the config nor the
// board profile lists any: the built-in profiles' list.
var DefaultPatterns = board.CapturePatterns()

// A file's kind comes from board's one list of capture extensions, the one
// the default patterns come from.
type kind = board.Kind

const (
	kindJPEG = board.KindStill // JPEG and HEIF stills: the priority lane
	kindRAW  = board.KindRAW
)

func kindOf(name string) kind { return board.KindOf(name) }

// priority puts JPEG/HEIF stills first (what an editor waits for), then RAW, then video.
func priority(name string) int {
	switch kindOf(name) {
	case kindJPEG:
		return 2
	case kindRAW:
		return 1
	}
	return 0
}

// protectedBoost is added to the queue priority of a protected still (the
// camera's "protect": the FAT read-only attribute), which goes before
// every other shot; a protected movie keeps its rank.
const protectedBoost = 3

// capturePriority is the queue priority of a capture: priority, plus
// protectedBoost for a protected still.
func capturePriority(name string, protected bool) int {
	p := priority(name)
	if protected && p > 0 {
		p += protectedBoost
	}
	return p
}

// rawJPEGFirst is raw_jpeg = "jpeg-first": both files of a RAW+JPEG pair
// are sent, the JPEG/HEIF ones first; a RAW upload is overtaken by a
// JPEG/HEIF still (see overtake.go).
const rawJPEGFirst = "jpeg-first"

func checkPattern(p string) error {
	_, err := path.Match(strings.ToLower(p), "x")
	return err
}

// matcher decides which files are captures to send.
type matcher struct {
	include, exclude []string
	rawJPEG          string
}

// globMatch matches case-insensitively: a pattern with a '/' against the
// path relative to the media root, one without against the base name.
func globMatch(pats []string, rel string) bool {
	rel = strings.ToLower(filepath.ToSlash(rel))
	base := path.Base(rel)
	for _, p := range pats {
		target := base
		if strings.Contains(p, "/") {
			target = rel
		}
		if ok, _ := path.Match(p, target); ok {
			return true
		}
	}
	return false
}

// wanted reports whether rel (relative to the media root) names a capture
// to send, before the RAW+JPEG choice.
func (m *matcher) wanted(rel string) bool {
	b := filepath.Base(rel)
	if strings.HasPrefix(b, ".") {
		return false // hidden and temporary files
	}
	return globMatch(m.include, rel) && !globMatch(m.exclude, rel)
}

// pairSkip applies the RAW+JPEG choice to a complete file at abs: with
// "jpeg" the RAW of a RAW+JPEG pair is skipped, with "raw" its JPEG; a file
// without its pair is always sent.
func (m *matcher) pairSkip(abs string) bool {
	var want kind
	switch m.rawJPEG {
	case "jpeg":
		want = kindJPEG
	case "raw":
		want = kindRAW
	default:
		return false
	}
	k := kindOf(abs)
	if k != kindJPEG && k != kindRAW || k == want {
		return false
	}
	dir, base := filepath.Split(abs)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		n := e.Name()
		if n != base && strings.EqualFold(strings.TrimSuffix(n, filepath.Ext(n)), stem) && kindOf(n) == want {
			return true
		}
	}
	return false
}
