package board

import (
	"fmt"
	"os"
	"path/filepath"
)

// Indicator states the daemon shows on the status LED.
const (
	StateOff   = "off"   // daemon stopped or disabled: LED off
	StateIdle  = "idle"  // connected, nothing to send: LED on
	StateBusy  = "busy"  // uploading: LED blinks (kernel "timer" trigger)
	StateError = "error" // cannot upload (link, auth, certificate): "heartbeat" trigger
)

// Indicate shows state on the profile's LED. LED is either a sysfs LED
// folder (/sys/class/leds/NAME, with brightness and trigger files), or a
// single writable file such as a GPIO value, which gets "1" or "0" (blinking
// states light it). An empty LED makes Indicate a no-op.
func (p Profile) Indicate(state string) error {
	if p.LED == "" {
		return nil
	}
	var trigger, brightness string
	switch state {
	case StateOff:
		trigger, brightness = "none", "0"
	case StateIdle:
		trigger, brightness = "none", "max"
	case StateBusy:
		trigger, brightness = "timer", "max"
	case StateError:
		trigger, brightness = "heartbeat", "max"
	default:
		return fmt.Errorf("board: unknown indicator state %q: use off, idle, busy or error", state)
	}
	st, err := os.Stat(p.LED)
	if err != nil {
		return fmt.Errorf("board: status LED %s: %w: fix the profile's LED path or set it empty", p.LED, err)
	}
	if !st.IsDir() {
		v := "1"
		if brightness == "0" {
			v = "0"
		}
		return writeSysfs(p.LED, v)
	}
	if brightness == "max" {
		brightness = "1"
		if b, err := os.ReadFile(filepath.Join(p.LED, "max_brightness")); err == nil && len(b) > 0 {
			brightness = string(trimNL(b))
		}
	}
	// Setting a trigger first, then brightness: writing brightness 0 clears
	// any trigger, and a trigger the kernel lacks (no ledtrig-timer module)
	// falls back to steady on rather than failing the daemon.
	if err := writeSysfs(filepath.Join(p.LED, "trigger"), trigger); err != nil && trigger == "none" {
		return err
	} else if err != nil {
		trigger = "none"
	}
	if trigger != "none" {
		return nil
	}
	return writeSysfs(filepath.Join(p.LED, "brightness"), brightness)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

func writeSysfs(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("board: status LED: %w", err)
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("board: status LED: write %q to %s: %w", v, path, err)
	}
	return nil
}
