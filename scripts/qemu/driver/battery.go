package main

import (
	"fmt"
	"strings"
	"time"
)

// batteryLow: the guest's config points power_supply at a folder the
// scenario writes (a fake sysfs battery; issue 14 item 4). Missing at
// boot: the status says so in one line and the daemon runs on. Then 10 %,
// discharging, below battery_low 15 % with battery_low_send = "stills"
// (made known with SIGHUP): a movie and then two stills are shot; the
// stills arrive, the movie does not (the status says why). Then the
// battery charges (read on the daemon's 30 s period, no signal) and the
// movie arrives.
func batteryLow(e *env) result {
	const bat = "/fake-sys/class/power_supply/battery"
	cfg := e.defaultConfig()
	cfg.extra = fmt.Sprintf("power_supply = %q\nbattery_low = 15\nbattery_low_send = \"stills\"\nslow_link = \"off\"\n", bat)
	initrd, err := e.makeInitrd(cfg)
	if err != nil {
		return fail("%v", err)
	}
	state, media, err := e.disks("battery", nil)
	if err != nil {
		return fail("%v", err)
	}
	g, err := e.bootWith("battery", initrd, state, media, "ext4", "", "")
	if err != nil {
		return fail("%v", err)
	}
	defer g.Shutdown()
	missing := "battery:    unknown: board: cannot read " + bat + "/capacity"
	if st, ok := waitStatus(g, 30*time.Second, missing); !ok {
		return fail("the status does not say the battery folder is missing:\n%s", st)
	}
	if _, rc, err := g.Run(fmt.Sprintf("mkdir -p %[1]s && echo 10 >%[1]s/capacity && echo Discharging >%[1]s/status && /etc/init.d/camftpd reload", bat), 20*time.Second); err != nil || rc != 0 {
		return fail("writing the battery: rc %d %v", rc, err)
	}
	if st, ok := waitStatus(g, 30*time.Second, "battery:    10 % (discharging) (battery_low 15 %, then stills)"); !ok {
		return fail("the daemon did not read the battery after SIGHUP:\n%s", st)
	}

	mark := g.Mark()
	movie := "dir=/media/DCIM/100TEST; mkdir -p $dir; dd if=/dev/urandom of=$dir/MOV0001.MP4 bs=1024 count=2048 conv=fsync 2>/dev/null; sync; " +
		"echo \"SYNCED MOV0001.MP4 $(sha256sum <$dir/MOV0001.MP4 | cut -d' ' -f1)\""
	if _, rc, err := g.Run(movie, 60*time.Second); err != nil || rc != 0 {
		return fail("shooting the movie: rc %d %v", rc, err)
	}
	if err := g.Send("shoot DSC 2 300"); err != nil {
		return fail("shooting: console: %v", err)
	}
	if _, _, err := g.WaitPrefix(mark, 60*time.Second, "SHOOT-DONE DSC"); err != nil {
		return fail("shooting: %v", err)
	}
	want := map[string]string{}
	synced(g.Lines(mark), want)
	stills := map[string]string{}
	for n, sum := range want {
		if strings.HasSuffix(n, ".JPG") {
			stills[n] = sum
		}
	}
	if len(want) != 3 || len(stills) != 2 {
		return fail("the camera reported %d of 3 captures written", len(want))
	}
	tStills := time.Now()
	if _, err := e.waitArrived(stills, 60*time.Second); err != nil {
		return fail("stills on a low battery: %v", err)
	}
	stillsIn := time.Since(tStills)
	hold := 5 * time.Second
	time.Sleep(hold)
	final, temps := e.remote()
	if len(final["MOV0001.MP4"]) > 0 || len(temps) > 0 {
		return fail("the movie was uploaded on a low battery (final %v, temps %v)", final["MOV0001.MP4"], temps)
	}
	why := "waiting:    battery 10 % (discharging) is below battery_low 15 %: only stills are sent"
	if st, ok := waitStatus(g, 10*time.Second, why); !ok {
		return fail("the status does not say why the movie waits:\n%s", st)
	}

	if _, rc, err := g.Run("echo Charging >"+bat+"/status", 10*time.Second); err != nil || rc != 0 {
		return fail("charging: rc %d %v", rc, err)
	}
	tCharge := time.Now()
	seen, err := e.waitArrived(want, 90*time.Second)
	if err != nil {
		return fail("after charging: %v", err)
	}
	time.Sleep(2 * time.Second) // let a late duplicate show
	v := e.check(want, nil)
	r := result{pass: v.ok() && v.temps == 0, why: v.why()}
	r.figures = fmt.Sprintf("folder missing at boot: status says so; 10 %% discharging (SIGHUP): 2 stills arrived in %.1fs, the movie held %.0fs more; Charging -> movie arrived in %.1fs (battery read every 30 s); %s",
		stillsIn.Seconds(), hold.Seconds(), seen["MOV0001.MP4"].Sub(tCharge).Seconds(), v)
	return r
}

// waitStatus runs `camftpd status` in the guest until its output has a
// line starting with want, for at most timeout; it returns the last output.
func waitStatus(g *Guest, timeout time.Duration, want string) (string, bool) {
	deadline := time.Now().Add(timeout)
	var st string
	for {
		out, _, err := g.Run("camftpd status 2>&1", 15*time.Second)
		st = strings.Join(out, "\n")
		if err == nil {
			for _, l := range out {
				if strings.HasPrefix(strings.TrimSpace(l), strings.TrimSpace(want)) {
					return st, true
				}
			}
		}
		if time.Now().After(deadline) {
			return st, false
		}
		time.Sleep(time.Second)
	}
}
