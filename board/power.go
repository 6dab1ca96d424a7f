package board

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Battery is what a power_supply folder in sysfs says of the battery.
type Battery struct {
	Capacity int    // percent, 0-100
	Status   string // Charging, Discharging, Not charging, Full or Unknown
}

// batteryStatuses are the values the kernel writes to a power supply's
// status file (Documentation/ABI/testing/sysfs-class-power).
var batteryStatuses = []string{"Charging", "Discharging", "Not charging", "Full", "Unknown"}

// OnBattery reports whether the camera may be running from the battery: it
// is not charging, full or held by its charger ("Not charging": on
// external power). Unknown counts as on battery.
func (b Battery) OnBattery() bool {
	return b.Status == "Discharging" || b.Status == "Unknown"
}

// ReadBattery reads the capacity and status files of the power_supply
// folder dir (e.g. /sys/class/power_supply/battery). A missing folder or
// file, or a value that is not what the kernel writes, is a one-line error
// naming the file.
func ReadBattery(dir string) (Battery, error) {
	var b Battery
	if dir == "" {
		return b, errors.New("board: no power_supply folder configured")
	}
	c, err := readValue(filepath.Join(dir, "capacity"))
	if err != nil {
		return b, err
	}
	n, err := strconv.Atoi(c)
	if err != nil || n < 0 || n > 100 {
		return b, fmt.Errorf("board: %s holds %q, not a percentage from 0 to 100", filepath.Join(dir, "capacity"), c)
	}
	s, err := readValue(filepath.Join(dir, "status"))
	if err != nil {
		return b, err
	}
	for _, known := range batteryStatuses {
		if s == known {
			return Battery{Capacity: n, Status: s}, nil
		}
	}
	return b, fmt.Errorf("board: %s holds %q, not one of %s", filepath.Join(dir, "status"), s, strings.Join(batteryStatuses, ", "))
}

// readValue reads a small sysfs value file, without its trailing newline.
func readValue(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("board: cannot read %s: %w (is power_supply the battery's folder in /sys/class/power_supply?)", path, err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return "", fmt.Errorf("board: cannot read %s: %w", path, err)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}
