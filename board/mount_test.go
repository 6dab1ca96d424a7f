package board

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v (the mount tests need root with CAP_SYS_ADMIN: run them as root)", dir, err)
	}
}

func umount(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatalf("umount %s: %v", dir, err)
	}
}

func nextMount(t *testing.T, ch <-chan MountEvent, want bool, what string) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("%s: mount channel closed, want Mounted=%v", what, want)
		}
		if ev.Mounted != want {
			t.Fatalf("%s: got %+v, want Mounted=%v", what, ev, want)
		}
	case <-time.After(within(5 * time.Second)):
		t.Fatalf("%s: no mount event within %v, want Mounted=%v", what, within(5*time.Second), want)
	}
}

func TestWatchMountTmpfs(t *testing.T) {
	base := t.TempDir()
	card := filepath.Join(base, "card with space")
	other := filepath.Join(base, "other")
	for _, d := range []string{card, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// Only a test that stopped halfway leaves something mounted.
		for _, d := range []string{card, other} {
			m, err := mounted(d)
			if err != nil {
				t.Error(err)
			} else if m {
				if err := unix.Unmount(d, unix.MNT_DETACH); err != nil {
					t.Errorf("umount %s after the test: %v", d, err)
				}
			}
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := WatchMount(ctx, card+"/")
	if err != nil {
		t.Fatal(err)
	}
	nextMount(t, ch, false, "first event, nothing mounted")
	mountTmpfs(t, card)
	nextMount(t, ch, true, "card inserted")

	// A mount elsewhere changes the table but not our state: no event.
	mountTmpfs(t, other)
	umount(t, other)
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %+v for a mount elsewhere", ev)
	case <-time.After(300 * time.Millisecond): // a window to see a wrong event in, not a wait
	}

	umount(t, card)
	nextMount(t, ch, false, "card removed")
	mountTmpfs(t, card)
	nextMount(t, ch, true, "card inserted again")

	ch2, err := WatchMount(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	nextMount(t, ch2, true, "first event of a watcher started while mounted")
	umount(t, card)
	nextMount(t, ch, false, "card removed, first watcher")
	nextMount(t, ch2, false, "card removed, second watcher")

	cancel()
	for _, c := range []<-chan MountEvent{ch, ch2} {
		select {
		case _, ok := <-c:
			if ok {
				t.Fatal("event after cancel")
			}
		case <-time.After(within(2 * time.Second)):
			t.Fatalf("channel not closed within %v of cancel", within(2*time.Second))
		}
	}
}

func TestWatchMountRelativePath(t *testing.T) {
	if _, err := WatchMount(context.Background(), "media"); err == nil {
		t.Fatal("relative path accepted")
	}
}

func TestMountinfoHas(t *testing.T) {
	mi := []byte("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
		"40 22 0:35 / /mnt/my\\040card rw - vfat /dev/mmcblk0p1 rw\n" +
		"41 22 0:36 / /media rw - ext4 /dev/vda rw\n")
	for path, want := range map[string]bool{"/": true, "/mnt/my card": true, "/media": true, "/mnt": false, "/media/DCIM": false} {
		if got := mountinfoHas(mi, path); got != want {
			t.Errorf("mountinfoHas(%q) = %v, want %v", path, got, want)
		}
	}
}

func FuzzMountinfoHas(f *testing.F) {
	f.Add([]byte("40 22 0:35 / /mnt/a\\040b rw - vfat x rw\n"), "/mnt/a b")
	f.Fuzz(func(t *testing.T, b []byte, p string) { mountinfoHas(b, p) })
}
