package daemon

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// The upload policy's defaults, as a camera maker would set them: a link
// slower than 2 MB/s (a weak Wi-Fi or a phone's hotspot at the edge of its
// range) carries stills, not movies; below 15 % on battery only stills are
// sent (movies, the long transfers that cost the most radio time, wait
// for the charger), so the camera keeps power for shooting.
const (
	defaultSlowLink       = 2_000_000 // bytes per second
	defaultBatteryLow     = 15        // percent
	defaultBatteryLowSend = "stills"
)

// Values of battery_low_send.
const (
	lowSendProtected = "protected"
	lowSendStills    = "stills"
	lowSendNothing   = "nothing"
)

// powerKeys are the top-level keys read by power.
var powerKeys = []string{"power_supply", "slow_link", "battery_low", "battery_low_send"}

// power reads the battery's folder and the link and battery policy.
func (p *cfgParser) power(raw map[string]any, c *Config) {
	c.Profile.PowerSupply = p.str(raw, "", "power_supply", c.Profile.PowerSupply)
	if ps := c.Profile.PowerSupply; ps != "" && !filepath.IsAbs(ps) {
		p.add("power_supply", fmt.Sprintf("%q is not an absolute path", ps),
			`give the battery's sysfs folder, e.g. "/sys/class/power_supply/battery", or "" for none`)
	}
	c.SlowLink = p.slowLink(raw)
	c.BatteryLow = p.batteryLow(raw)
	c.BatteryLowSend = p.enum(raw, "", "battery_low_send", defaultBatteryLowSend, lowSendProtected, lowSendStills, lowSendNothing)
}

// slowLink reads slow_link: a rate ("2MB/s", "16Mbit/s", bytes per second
// as an integer) or "off" (0).
func (p *cfgParser) slowLink(raw map[string]any) int64 {
	v, ok := raw["slow_link"]
	if !ok {
		return defaultSlowLink
	}
	fix := `give a rate such as "2MB/s", "500KB/s" or "16Mbit/s", or "off" to send movies on any link`
	switch x := v.(type) {
	case string:
		if strings.EqualFold(strings.TrimSpace(x), "off") {
			return 0
		}
		n, err := parseRate(x)
		if err != nil {
			p.add("slow_link", err.Error(), fix)
			return defaultSlowLink
		}
		if n == 0 {
			p.add("slow_link", fmt.Sprintf("%q is zero", x), fix)
			return defaultSlowLink
		}
		return n
	case int64:
		if x <= 0 {
			p.add("slow_link", fmt.Sprintf("%d is not a rate", x), fix)
			return defaultSlowLink
		}
		return x
	}
	p.add("slow_link", "must be a string, not "+typeName(v), fix)
	return defaultSlowLink
}

// batteryLow reads battery_low: a percentage from 1 to 99 (an integer, or
// a string "15%"), or "off" (0).
func (p *cfgParser) batteryLow(raw map[string]any) int {
	v, ok := raw["battery_low"]
	if !ok {
		return defaultBatteryLow
	}
	fix := `give a percentage from 1 to 99, e.g. battery_low = 15 or "15%", or "off" to send whatever the battery`
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case string:
		s := strings.TrimSpace(x)
		if strings.EqualFold(s, "off") {
			return 0
		}
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(s, "%")), 10, 64); err != nil {
			p.add("battery_low", fmt.Sprintf("%q is not a percentage", x), fix)
			return defaultBatteryLow
		}
	default:
		p.add("battery_low", "must be an integer or a string, not "+typeName(v), fix)
		return defaultBatteryLow
	}
	if n < 1 || n > 99 {
		p.add("battery_low", fmt.Sprintf("%d %% is out of range", n), fix)
		return defaultBatteryLow
	}
	return int(n)
}
