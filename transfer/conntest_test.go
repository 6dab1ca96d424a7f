package transfer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// walk runs the connection test on cfg with Remote remote and logs it.
func walk(t *testing.T, cfg Config, remote string) map[string]StepResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within(60*time.Second))
	defer cancel()
	var order []string
	rs := Test(ctx, cfg, TestOptions{Remote: remote, Report: func(r StepResult) { order = append(order, r.Step) }})
	m := map[string]StepResult{}
	for _, r := range rs {
		t.Logf("%-12s %-7s %s", r.Step, r.Verdict, r.Detail)
		if r.Fix != "" {
			t.Logf("%-12s %-7s fix: %s", "", "", r.Fix)
		}
		if _, dup := m[r.Step]; dup {
			t.Errorf("step %s reported twice", r.Step)
		}
		m[r.Step] = r
	}
	if strings.Join(order, ",") != strings.Join(stepsOf(rs), ",") {
		t.Errorf("Report saw %v, Test returned %v", order, stepsOf(rs))
	}
	return m
}

func stepsOf(rs []StepResult) []string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Step)
	}
	return s
}

// leftOnServer lists files of the test found under root.
func leftOnServer(t *testing.T, root string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), "camftpd-check-") {
			left = append(left, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

func TestConnTestSmoke(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	walk(t, tg.config(t, false), "2026-11-30/sub/CHECK0001.JPG")
	t.Log(leftOnServer(t, tg.inproc.Root))
}
