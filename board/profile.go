package board

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Profile describes one kind of camera board: where captures appear, where
// the daemon keeps its state, which files are captures, which network
// interface and storage mount to follow, and which LED shows the status.
type Profile struct {
	Name     string
	MediaDir string // folder the camera writes captures into
	StateDir string // folder for the queue database and status socket
	// Patterns are shell patterns (path.Match syntax) matched against a
	// file's base name, case-insensitively; see Match.
	Patterns     []string
	Interface    string // network interface whose link state gates uploads
	StorageMount string // mount point of the card; "" = not followed
	LED          string // sysfs LED directory or a writable value file; "" = none
	// PowerSupply is the battery's folder in /sys/class/power_supply (its
	// capacity and status files, see ReadBattery); "" = no battery.
	PowerSupply string
}

// capturePatterns are the still, movie and sound files a camera writes
// (see captureExts).
var capturePatterns = CapturePatterns()

var profiles = map[string]Profile{
	"generic": {
		Name:         "generic",
		MediaDir:     "/mnt/media/DCIM",
		StateDir:     "/var/lib/camftpd",
		Patterns:     capturePatterns,
		Interface:    "wlan0",
		StorageMount: "/mnt/media",
		PowerSupply:  "/sys/class/power_supply/battery",
	},
	"qemu-virt": {
		Name:         "qemu-virt",
		MediaDir:     "/media/DCIM",
		StateDir:     "/state",
		Patterns:     capturePatterns,
		Interface:    "eth0",
		StorageMount: "/media",
	},
}

// Names lists the known profile names, sorted.
func Names() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup returns the named profile. The returned value is a copy: changing
// it (a config override) does not change the built-in profile.
func Lookup(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("board: unknown profile %q: set board to one of %s", name, strings.Join(Names(), ", "))
	}
	p.Patterns = append([]string(nil), p.Patterns...)
	return p, nil
}

// Match reports whether the file name (a path or a base name) is a capture
// by the profile's patterns, ignoring case: cameras write "DSC01234.JPG".
// Hidden files (".foo.jpg", the temp names of some writers) never match.
func (p Profile) Match(name string) bool {
	base := strings.ToLower(filepath.Base(name))
	if base == "" || strings.HasPrefix(base, ".") {
		return false
	}
	for _, pat := range p.Patterns {
		if ok, err := filepath.Match(strings.ToLower(pat), base); err == nil && ok {
			return true
		}
	}
	return false
}
