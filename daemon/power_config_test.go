package daemon

import (
	"errors"
	"strings"
	"testing"
)

const powerServer = `
[[server]]
name = "a"
host = "ftp.example.com"
user = "cam"
password = "pw"
`

// TestPowerConfig: the link and battery policy's defaults, good values,
// and one-line errors that say what to fix.
func TestPowerConfig(t *testing.T) {
	c, err := ParseConfig("cam.toml", powerServer)
	if err != nil {
		t.Fatal(err)
	}
	if c.SlowLink != 2_000_000 || c.BatteryLow != 15 || c.BatteryLowSend != "stills" || c.Profile.PowerSupply != "/sys/class/power_supply/battery" {
		t.Fatalf("defaults: slow_link %d battery_low %d battery_low_send %q power_supply %q",
			c.SlowLink, c.BatteryLow, c.BatteryLowSend, c.Profile.PowerSupply)
	}
	good := []struct {
		src      string
		slow     int64
		low      int
		send, ps string
	}{
		{`slow_link = "16Mbit/s"` + "\n" + `battery_low = "20%"` + "\n" + `battery_low_send = "protected"`, 2_000_000, 20, "protected", "/sys/class/power_supply/battery"},
		{`slow_link = "off"` + "\n" + `battery_low = "off"` + "\n" + `power_supply = ""`, 0, 0, "stills", ""},
		{`slow_link = 500000` + "\n" + `battery_low = 5` + "\n" + `battery_low_send = "nothing"` + "\n" + `power_supply = "/tmp/bat"`, 500000, 5, "nothing", "/tmp/bat"},
	}
	for _, g := range good {
		c, err := ParseConfig("cam.toml", g.src+"\n"+powerServer)
		if err != nil {
			t.Errorf("%s: %v", g.src, err)
			continue
		}
		if c.SlowLink != g.slow || c.BatteryLow != g.low || c.BatteryLowSend != g.send || c.Profile.PowerSupply != g.ps {
			t.Errorf("%s: got %d %d %q %q", g.src, c.SlowLink, c.BatteryLow, c.BatteryLowSend, c.Profile.PowerSupply)
		}
	}
	bad := []struct{ src, key, want string }{
		{`slow_link = "fast"`, "slow_link", `"fast" is not a rate; fix: give a rate such as "2MB/s"`},
		{`slow_link = "0MB/s"`, "slow_link", "is zero"},
		{`slow_link = -3`, "slow_link", "-3 is not a rate"},
		{`slow_link = true`, "slow_link", "must be a string, not a boolean"},
		{`battery_low = 150`, "battery_low", "150 % is out of range; fix: give a percentage from 1 to 99"},
		{`battery_low = "low"`, "battery_low", `"low" is not a percentage`},
		{`battery_low = 0`, "battery_low", "0 % is out of range"},
		{`battery_low_send = "movies"`, "battery_low_send", `"movies" is not allowed; fix: use one of "protected", "stills", "nothing"`},
		{`power_supply = "battery"`, "power_supply", `"battery" is not an absolute path`},
		{`slowlink = "1MB/s"`, "slowlink", `unknown key at the top level; fix: did you mean "slow_link"?`},
	}
	for _, b := range bad {
		_, err := ParseConfig("cam.toml", b.src+"\n"+powerServer)
		var ces ConfigErrors
		if !errors.As(err, &ces) || len(ces) != 1 {
			t.Errorf("%s: want one config error, got %v", b.src, err)
			continue
		}
		e := ces[0]
		if e.Key != b.key || e.Line != 1 || !strings.Contains(e.Error(), b.want) || strings.Contains(e.Error(), "\n") {
			t.Errorf("%s: got %q (key %q line %d), want one line on key %s containing %q", b.src, e.Error(), e.Key, e.Line, b.key, b.want)
		}
	}
}
