package board

import (
	"path/filepath"
	"strings"
)

// Kind is what a capture file holds, by its extension.
type Kind int

const (
	KindOther Kind = iota // not a known capture, or sound (WAV)
	KindStill             // JPEG and HEIF stills: what an editor waits for
	KindRAW               // camera RAW
	KindVideo
)

// captureExts are the files a camera writes, by extension, with their kind:
// the one list behind the default capture patterns (CapturePatterns) and
// the kinds (KindOf). Sidecars (XMP, THM) and camera-internal files
// (database, thumbnails) are deliberately absent: they change after the
// capture or are not the photo.
var captureExts = []struct {
	ext  string
	kind Kind
}{
	{".jpg", KindStill}, {".jpeg", KindStill}, {".heif", KindStill}, {".hif", KindStill}, {".heic", KindStill},
	{".arw", KindRAW}, {".cr2", KindRAW}, {".cr3", KindRAW}, {".nef", KindRAW}, {".nrw", KindRAW},
	{".raf", KindRAW}, {".orf", KindRAW}, {".rw2", KindRAW}, {".dng", KindRAW}, {".pef", KindRAW},
	{".mp4", KindVideo}, {".mov", KindVideo}, {".mts", KindVideo}, {".mxf", KindVideo},
	{".wav", KindOther},
}

// CapturePatterns returns "*.<ext>" for every capture extension (lower
// case: patterns match ignoring case), the patterns of the built-in
// profiles.
func CapturePatterns() []string {
	pats := make([]string, len(captureExts))
	for i, c := range captureExts {
		pats[i] = "*" + c.ext
	}
	return pats
}

// KindOf returns the kind of a file by its extension, ignoring case;
// KindOther for a file that is no known capture.
func KindOf(name string) Kind {
	ext := strings.ToLower(filepath.Ext(name))
	for _, c := range captureExts {
		if c.ext == ext {
			return c.kind
		}
	}
	return KindOther
}
